"""The research commands: `archive fetch`, `archive import` and `evaluate`.

`archive fetch` downloads Binance public-data zips (verified against their .CHECKSUM),
`archive import` merges a tree into one capture that `run` plays, and `evaluate` labels
flushes and squeezes from a data dir's market data and scores its alerts
(docs/evaluation.md, docs/research.md). Registered on the main parser by `add_commands`.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from engine_app.cli_support import (
    EXIT_CORRUPT,
    EXIT_OK,
    InputError,
    UsageError,
    parse_symbols,
    say,
)


def _date(text: str | None, what: str) -> dt.date | None:
    from engine_adapters.archive.layout import parse_date

    if text is None:
        return None
    try:
        return parse_date(text, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_archive_fetch(a: argparse.Namespace) -> int:
    from engine_adapters.archive.fetch import FileResult, FileStatus, fetch_files
    from engine_adapters.archive.layout import parse_kinds, plan
    from engine_app.view import progress

    symbols = parse_symbols(a.symbols)
    start, end = _date(a.start, "--start"), _date(a.end, "--end")
    assert start is not None and end is not None
    try:
        kinds = parse_kinds(a.kinds)
        files = plan(symbols, kinds, start, end)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if a.parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {a.parallel}")
    root = Path(a.dir)
    root.mkdir(parents=True, exist_ok=True)
    say(f"archive fetch: {len(files)} files ({len(symbols)} symbols, {len(kinds)} kinds, "
        f"{start}..{end}) from {a.base_url} -> {root}")
    with progress(len(files), "fetch (files)") as advance:
        def done(_r: FileResult) -> None:
            advance(1)

        report = asyncio.run(fetch_files(files, root, base_url=a.base_url,
                                         parallel=a.parallel, on_done=done))
    for r in report.having(FileStatus.MISSING):
        say(f"missing in the archive (not filled): {r.file.rel_path}")
    for r in report.having(FileStatus.BAD_CHECKSUM):
        say(f"checksum mismatch twice, not used: {r.file.rel_path} ({r.detail})")
    for r in report.having(FileStatus.FAILED):
        say(f"failed: {r.file.rel_path}: {r.detail}")
    doc = report.to_json()
    counts: Any = doc["counts"]
    say("archive fetch: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if a.json:
        print(json.dumps(doc, sort_keys=True))
    return EXIT_OK if report.ok else EXIT_CORRUPT


def cmd_archive_import(a: argparse.Namespace) -> int:
    from engine_adapters.archive.importer import import_archive
    from engine_adapters.archive.layout import ArchiveError

    root, out = Path(a.archive), Path(a.out)
    if not root.is_dir():
        raise InputError(f"archive {root} does not exist or is not a directory")
    symbols = parse_symbols(a.symbols) if a.symbols else None
    start, end = _date(a.start, "--start"), _date(a.end, "--end")
    if start and end and end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    try:
        report = import_archive(root, out, symbols=symbols, start=start, end=end)
    except ArchiveError as exc:
        raise InputError(str(exc)) from None
    for kind, sym, day in report.missing:
        say(f"missing day (not filled): {kind} {sym} {day}")
    for kind, sym, st in report.per_stream:
        for ex in st.examples:
            say(f"refused row ({kind} {sym}): {ex}")
        if st.refused > len(st.examples):
            say(f"refused rows ({kind} {sym}): {st.refused} in all")
    say(f"archive import: {report.rows} rows -> {report.lines} lines in {out} "
        f"({report.elapsed_s:.1f} s, {report.rows / max(report.elapsed_s, 1e-9):,.0f} rows/s)")
    if a.json:
        print(json.dumps(report.to_json(), sort_keys=True))
    return EXIT_OK


def cmd_evaluate(a: argparse.Namespace) -> int:
    from engine_adapters.evaluation.evaluate import EvaluationError, evaluate_dir
    from engine_adapters.evaluation.labels import LabelRules

    root = Path(a.dir)
    if not root.is_dir():
        raise InputError(f"{root}: no such data dir")
    try:
        rules = LabelRules.from_toml(Path(a.rules)) if a.rules else LabelRules()
    except (OSError, ValueError) as exc:
        raise InputError(f"--rules {a.rules}: {exc}") from None
    try:
        result = evaluate_dir(root, rules=rules, seed=a.seed)
    except EvaluationError as exc:
        raise InputError(str(exc)) from None
    if a.json:
        print(json.dumps(result.to_json(), sort_keys=True))
    else:
        sys.stdout.write(result.table())
    if a.out:
        from engine_adapters.evaluation.html_report import write_report

        path = write_report(result, Path(a.out))
        say(f"evaluate: wrote {path}")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Register `archive` (fetch, import) and `evaluate` on the main parser's subparsers."""
    from engine_adapters.archive.layout import DEFAULT_BASE_URL, KINDS

    ar = sub.add_parser("archive", help="fetch and import the Binance public-data archive")
    asub = ar.add_subparsers(dest="archive_command", required=True,
                             parser_class=type(ar))
    f = asub.add_parser("fetch", help="download archive zips, verified against .CHECKSUM")
    f.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    f.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    f.add_argument("--end", required=True, help="last day, YYYY-MM-DD (included)")
    f.add_argument("--dir", required=True, help="local archive directory (same layout)")
    f.add_argument("--kinds", help=f"comma-separated (default: all of {','.join(KINDS)})")
    f.add_argument("--base-url", default=DEFAULT_BASE_URL,
                   help=f"archive or mirror base URL (default {DEFAULT_BASE_URL})")
    f.add_argument("--parallel", type=int, default=8, help="downloads in flight (default 8)")
    f.add_argument("--json", action="store_true", help="result as one JSON object")
    f.set_defaults(func=cmd_archive_fetch)

    im = asub.add_parser("import", help="merge an archive tree into one capture file")
    im.add_argument("archive", help="local archive directory")
    im.add_argument("--out", required=True, help="capture to write (.jsonl or .jsonl.gz)")
    im.add_argument("--symbols", help="only these symbols (default: all in the tree)")
    im.add_argument("--start", help="first day, YYYY-MM-DD (default: first in the tree)")
    im.add_argument("--end", help="last day, YYYY-MM-DD (default: last in the tree)")
    im.add_argument("--json", action="store_true", help="result as one JSON object")
    im.set_defaults(func=cmd_archive_import)

    ev = sub.add_parser("evaluate", help="label market events in a data dir, score its alerts")
    ev.add_argument("dir", help="data dir")
    ev.add_argument("--json", action="store_true", help="events and scores as one JSON object")
    ev.add_argument("--out", help="also write an HTML report here")
    ev.add_argument("--rules", help="TOML file of labelling rules (docs/evaluation.md)")
    ev.add_argument("--seed", type=int, default=1, help="seed of the random baseline")
    ev.set_defaults(func=cmd_evaluate)
