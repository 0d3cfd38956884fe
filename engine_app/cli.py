"""Command line: `python -m engine_app <command>` (SPEC section 6 is the contract).

Exit codes: 0 success; 1 determinism breach; 2 corruption, unreadable or invalid input;
64 usage error (EX_USAGE). Messages go to stderr, data to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from engine_adapters.storage import StorageError, export, verify
from engine_app.cli_support import (
    EXIT_CORRUPT,
    EXIT_OK,
    EXIT_USAGE,
    InputError,
    UsageError,
    existing_dir,
    fsync_policy,
    load_config,
    parse_symbols,
    say,
    symbols_in_capture,
)
from engine_app.datadir import ENGINE_VERSION, DataDir


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's default is exit 2: ours is 64
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


# ---------------------------------------------------------------------------- commands
def cmd_run(a: argparse.Namespace) -> int:
    from engine_adapters.bus import is_bus_url

    if is_bus_url(a.capture):  # a stream on the bus, not a file (engine_app/bus_cmd.py)
        from engine_app.bus_cmd import cmd_run_bus

        return cmd_run_bus(a)
    from engine_adapters.capture import CaptureBytes, SourceError
    from engine_adapters.capture_runs import CaptureRuns
    from engine_app.bootstrap import open_session, run_lines
    from engine_app.summary import print_summary

    cap = Path(a.capture)
    try:  # a file, a folder of hour files or a glob, in time order
        src = CaptureBytes(a.capture)
    except (SourceError, OSError) as exc:
        raise InputError(f"run: {exc}") from None
    cfg = load_config(a.config)
    symbols = parse_symbols(a.symbols) if a.symbols else symbols_in_capture(src.paths)
    if not symbols:
        raise InputError(f"{cap}: no symbol found in the capture; pass --symbols")
    if len(src.paths) > 1:
        say(f"run: {len(src.paths)} capture files in time order, {src.paths[0].name} .. "
            f"{src.paths[-1].name}")
    stem = cap.name.split(".")[0]
    if not stem or set(stem) & set("*?["):  # a glob: name the data dir after its folder
        stem = cap.parent.name or "capture"
    dd = DataDir.at(a.data_dir or Path("data") / stem)
    if dd.log.is_dir() and any(dd.log.iterdir()):
        raise UsageError(f"{dd.root} already holds a log; `run` writes a fresh data dir "
                         f"(pick another --data-dir or delete it)")
    say(f"run: {cap} -> {dd.root} ({len(symbols)} symbols, config {cfg.digest().hex()[:12]})")
    t0 = time.perf_counter()
    session = open_session(dd, cfg, symbols, engine_version=ENGINE_VERSION, fsync=a.fsync)
    from engine_app.session import tune_gc
    from engine_app.view import progress

    tune_gc()
    try:
        with progress(None, f"run {cap.name} (lines)") as advance:
            seen = [0]

            def on_lines(n: int) -> None:
                advance(n - seen[0])
                seen[0] = n

            lines = run_lines(session, CaptureRuns(src), progress=on_lines)
    finally:
        session.close()
    for tail in src.tails:  # what a killed writer left: said, not an error (exit 0)
        say(f"run: {tail}")
    elapsed = time.perf_counter() - t0
    print_summary(session, dd, elapsed=elapsed, lines=lines, as_json=a.json)
    return EXIT_OK


def cmd_verify(a: argparse.Namespace) -> int:
    dd = existing_dir(a.dir)
    from engine_app.view import progress

    with progress(None, "verify (records)") as advance:
        seen = [0]

        def on_progress(done: int, _total: int) -> None:
            if done > seen[0]:
                advance(done - seen[0])
                seen[0] = done

        report = verify(dd.root, check_alerts=not a.no_alerts, progress=on_progress)
    (print if report.exit_code == 0 else say)(report.message)
    if a.json:
        print(json.dumps({"status": report.status.name, "exit_code": report.exit_code,
                          "message": report.message,
                          "final_chain": report.final_chain or None}))
    return report.exit_code


def cmd_replay(a: argparse.Namespace) -> int:
    dd = existing_dir(a.dir)
    out = Path(a.out) if a.out else dd.root.with_name(dd.root.name + "-replay")
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; pick another --out")
    from engine_app.bootstrap import replay_journal
    from engine_app.view import progress

    with progress(None, "replay (journal -> core -> log)"):  # a pulsing bar on a terminal
        report = replay_journal(dd.root, out, compare=a.compare, engine_version=ENGINE_VERSION)
    (print if report.exit_code == 0 else say)(report.message)
    return report.exit_code


def cmd_export(a: argparse.Namespace) -> int:
    dd = existing_dir(a.dir)
    out = Path(a.out) if a.out else dd.root / f"records.{a.format}"
    from engine_app.export_columns import market_columns
    from engine_app.view import progress

    with progress(None, f"export {a.format}"):
        path = export(dd.root, a.format, out, extra_columns=market_columns)
    say(f"export: wrote {path}")
    print(path)
    return EXIT_OK


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m engine_app",
                description="Deterministic market-structure engine for Binance USD-M futures.")
    p.add_argument("--version", action="version", version=f"engine {ENGINE_VERSION}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="play a capture file offline (virtual clock) into a data dir")
    r.add_argument("capture", help="capture file (.jsonl or .jsonl.gz), a folder of hour files "
                                   "or a quoted glob of them (played in time order), or a bus "
                                   "stream nats://HOST:PORT/SUBJECT[?start=ISO|seq=N]"
                                   "[&durable=NAME]")
    r.add_argument("--data-dir", help="output data dir (default: data/<capture name>)")
    r.add_argument("--config", help="TOML config file (default: built-in defaults)")
    r.add_argument("--symbols", help="universe, e.g. BTCUSDT,ETHUSDT (default: from capture; "
                                     "required for nats://)")
    r.add_argument("--fsync", default="interval:4", type=fsync_policy,
                   help="none | tick | interval:N (default interval:4)")
    r.add_argument("--json", action="store_true", help="summary as one JSON object")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("verify", help="check checksums, hash chain and alerts of a data dir")
    v.add_argument("dir", help="data dir")
    v.add_argument("--no-alerts", action="store_true", help="skip the alert re-run")
    v.add_argument("--json", action="store_true", help="result as one JSON object on stdout")
    v.set_defaults(func=cmd_verify)

    rp = sub.add_parser("replay", help="run the input journal through the core again")
    rp.add_argument("dir", help="data dir")
    rp.add_argument("--out", help="where to write the new log (default: DIR-replay)")
    rp.add_argument("--compare", action="store_true",
                    help="compare with the original log: identical, or the first difference")
    rp.set_defaults(func=cmd_replay)

    e = sub.add_parser("export", help="export records as a table")
    e.add_argument("dir", help="data dir")
    e.add_argument("--format", choices=("csv", "parquet"), required=True)
    e.add_argument("--out", help="output file (default: DIR/records.<format>)")
    e.set_defaults(func=cmd_export)

    from engine_app.commands_live import add_commands

    add_commands(sub)
    from engine_app.commands_research import add_commands as add_research_commands

    add_research_commands(sub)
    from engine_app.sweep import add_commands as add_sweep_commands

    add_sweep_commands(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
        return rc
    except UsageError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    except (InputError, StorageError) as exc:
        say(f"error: {exc}")
        return EXIT_CORRUPT
    except KeyboardInterrupt:
        say("interrupted")
        return 130
