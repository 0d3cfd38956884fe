"""The network-facing commands: `live`, `capture`, `demo`, and the `report` renderer.

Each builds its options from the command line, picks the operator's output (the rich view on a
terminal, JSON lines otherwise or with --json), starts the configured alert sinks inside the
event loop, runs, and prints the closing summary.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine_adapters.binance.endpoints import LIVE_REST_BASE, LIVE_WS_BASE
from engine_app.cli_support import (
    EXIT_OK,
    InputError,
    UsageError,
    existing_dir,
    fsync_policy,
    load_config_file,
    parse_symbols,
    say,
)
from engine_app.datadir import DataDir
from engine_app.session import AlertSink, Session
from engine_app.summary import print_summary

if TYPE_CHECKING:  # the network stack and rich load only when a network command runs
    from engine_adapters.sinks import WebhookSink
    from engine_app.live import LiveOptions, LiveRunner
    from engine_app.view import TerminalView


class Output:
    """The terminal view or JSON lines, plus webhook and chat sinks started inside the loop."""

    def __init__(self, *, as_json: bool, app: dict[str, Any], title: str) -> None:
        from engine_adapters.chat_sinks import chat_sinks
        from engine_adapters.sinks import WebhookSink, webhooks_from_toml
        from engine_app.view import JsonLinesOut, TerminalView

        try:
            self.webhooks: list[WebhookSink] = [
                WebhookSink.from_config(c) for c in webhooks_from_toml(app)]
            self.webhooks += chat_sinks(app)  # [[sinks.telegram]], discord, slack
        except ValueError as exc:
            raise InputError(f"config [sinks]: {exc}") from None
        self.view: TerminalView | None = \
            TerminalView() if (not as_json and TerminalView.wanted()) else None
        self.sinks: list[AlertSink] = [*self.webhooks]
        if self.view is None:
            self.sinks.append(JsonLinesOut())
        self.title = title

    def on_tick(self, runner: LiveRunner) -> None:
        s = runner.session
        if s is None:
            return
        m = runner.metrics
        rate = m.rate(s.counts.events_accepted)
        if self.view is None:
            return
        from engine_app.view import IngestHealth

        feed, rest = runner.feed, runner.rest
        health = IngestHealth(
            events_per_s=rate, tick_lag_ms=m.last_lag_ms,
            reconnects=None if feed is None else feed.counters.reconnects,
            quarantined=s.counts.rejected, duplicates=s.counts.duplicates, gaps=m.gaps,
            rest_weight_used=None if rest is None else rest.budget.used)
        self.view.update(s.symbols, s.last_records, s.recent_alerts, health, self.title,
                         config=s.cfg)  # market columns: the core's evidence records

    async def around(self, body: Callable[[], Awaitable[Session]]) -> Session:
        for w in self.webhooks:
            await w.start()
        if self.view is not None:
            self.view.start()
        try:
            return await body()
        finally:
            if self.view is not None:
                self.view.stop()
            for w in self.webhooks:
                st = await w.stop(drain_timeout_s=5.0)
                if st.pending or st.dropped_on_overflow or st.abandoned:
                    say(f"webhook: undelivered or dropped alerts: {st}")


def _options(a: argparse.Namespace, cfg: Any, data_dir: Path) -> LiveOptions:
    from engine_app.live import LiveOptions

    if a.symbols and a.top:
        raise UsageError("use --symbols or --top, not both")
    top = _top(a.top)
    if a.duration is not None and a.duration <= 0:
        raise UsageError("--duration wants a positive number of seconds")
    return LiveOptions(
        data_dir=data_dir, cfg=cfg, symbols=parse_symbols(a.symbols) if a.symbols else None,
        top=top, duration_s=a.duration, ws_url=a.ws_url, rest_url=a.rest_url,
        metrics_port=getattr(a, "metrics_port", None),
        capture=Path(a.capture) if getattr(a, "capture", None) else None,
        capture_prefix=_prefix(getattr(a, "prefix", None) or "capture"),
        fsync=getattr(a, "fsync", "interval:4"),
        allow_config_change=getattr(a, "allow_config_change", False))


def _top(text: str | None) -> int | str | None:
    if text is None:
        return None
    if text.strip().lower() == "all":
        return "all"
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise UsageError(f"--top wants a positive number or 'all', got {text!r}")
    return n


def _prefix(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text):
        raise UsageError(f"--prefix wants a plain file-name part (letters, digits, _ . -), "
                         f"got {text!r}")
    return text


def _check_recording(out: Path, flag: str) -> None:
    """A file name must be new; a folder may exist (hour files are never overwritten)."""
    from engine_app.live_recording import SINGLE_FILE_SUFFIXES

    if out.name.endswith(SINGLE_FILE_SUFFIXES):
        if out.exists():
            raise UsageError(f"{flag} {out} exists; capture never overwrites a recording "
                             f"(give a new name, or a folder for hour files)")
    elif out.exists() and not out.is_dir():
        raise UsageError(f"{flag} {out} is a file that is not .jsonl/.jsonl.gz; give a folder "
                         f"for hour files or a new .jsonl.gz name")


def _network_errors() -> tuple[type[Exception], ...]:
    """What a network command turns into one line and exit 2 (no traceback)."""
    from engine_adapters.binance.universe import ExchangeAnswerError
    from engine_adapters.recorder import RecorderError
    from engine_app.live import LiveError

    return LiveError, ExchangeAnswerError, RecorderError


def cmd_live(a: argparse.Namespace) -> int:
    from engine_app.live import LiveRunner

    cfg, app = load_config_file(a.config)
    dd = Path(a.data_dir or "data/live")
    opts = _options(a, cfg, dd)
    if opts.capture is not None:
        _check_recording(opts.capture, "--capture")
    out = Output(as_json=a.json, app=app, title="live")
    runner: Any = LiveRunner(opts, sinks=out.sinks, on_tick=out.on_tick, say=say)
    if a.from_bus:  # follow a bus stream instead of Binance (engine_app/live_bus.py)
        from engine_app.bus_cmd import bus_url
        from engine_app.live_bus import BusLiveRunner

        if not opts.symbols or getattr(a, "capture", None):
            raise UsageError("live --from needs --symbols (the universe to step) and takes no "
                             "--capture/--top (the recorder has the recording)")
        runner = BusLiveRunner(bus_url(a.from_bus), opts, sinks=out.sinks,
                               on_tick=out.on_tick, say=say)
    t0 = time.monotonic()
    try:
        session = asyncio.run(out.around(runner.run))
    except _network_errors() as exc:
        raise InputError(f"live: {exc}") from None
    print_summary(session, DataDir.at(dd), elapsed=time.monotonic() - t0, as_json=a.json)
    return EXIT_OK


def cmd_capture(a: argparse.Namespace) -> int:
    from engine_app.capture_cmd import capture

    to = a.to
    if a.out is None and to is None:
        raise UsageError("capture needs --out (a folder or a file), --to (a bus URL), or both")
    out = Path(a.out) if a.out is not None else None
    if out is not None:
        _check_recording(out, "--out")
    opts = _options(a, None, Path("."))
    try:
        if to is None:
            lines, symbols = asyncio.run(capture(opts, out, say=say))
        else:  # publish to the bus too (engine_app/bus_cmd.py)
            from engine_app.bus_cmd import bus_url, capture_to_bus

            lines, symbols = asyncio.run(capture_to_bus(opts, out, bus_url(to), say=say))
    except _network_errors() as exc:
        raise InputError(f"capture: {exc}") from None
    say(f"capture: {lines:,} lines for {len(symbols)} symbols"
        + (f" in {out}" if out is not None else ""))
    print(out if out is not None else to)
    return EXIT_OK


def cmd_demo(a: argparse.Namespace) -> int:
    from engine_adapters.storage import verify
    from engine_app.demo import DEMO_SCALE, demo_data_dir, run_demo

    dd = Path(a.data_dir) if a.data_dir else demo_data_dir()
    if dd.exists() and any(dd.iterdir()):
        raise UsageError(f"{dd} is not empty; the demo writes a fresh data dir")
    say("demo: a simulated Binance USD-M exchange on 127.0.0.1 plays a scripted market: "
        "calm, leverage build-up, liquidation cascade, recovery.")
    say(f"demo: the 100-minute story is compressed {1 / DEMO_SCALE:.0f}x into about 90 s, "
        "with a demo config whose windows are compressed to match "
        "(engine_app/resources/demo.toml); the real `live` path runs against it.")
    app = load_config_file(a.config)[1] if a.config else {}  # only its [sinks] tables
    out = Output(as_json=a.json, app=app, title="demo (simulated exchange)")
    t0 = time.monotonic()
    result = asyncio.run(out.around(lambda: _demo_session(run_demo, dd, out)))
    print_summary(result, DataDir.at(dd), elapsed=time.monotonic() - t0, as_json=a.json)
    report = verify(dd)
    say(f"demo: verify {dd}: {report.message}")
    if report.exit_code == 0:
        say(f"demo: done. Look around: python -m engine_app report {dd} --out demo.html")
    return report.exit_code


async def _demo_session(run_demo: Any, dd: Path, out: Output) -> Session:
    res = await run_demo(dd, sinks=out.sinks, on_tick=out.on_tick, say=say)
    session: Session = res.session
    return session


def cmd_report(a: argparse.Namespace) -> int:
    try:
        from engine_app.report import render_report
    except ImportError as exc:
        raise InputError(str(exc)) from None
    dd = existing_dir(a.dir)
    try:
        path = render_report(dd.root, Path(a.out),
                             symbols=parse_symbols(a.symbols) if a.symbols else None)
    except ImportError as exc:
        raise InputError(str(exc)) from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    say(f"report: wrote {path}")
    print(path)
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Register live, capture, demo and report on the main parser's subparsers."""
    def network(p: argparse.ArgumentParser) -> None:
        p.add_argument("--symbols", help="comma-separated universe, e.g. BTCUSDT,ETHUSDT")
        p.add_argument("--top", help="N: the N USDT perpetuals with most 24h volume; all: "
                                     "every TRADING USDT perpetual (the whole market)")
        p.add_argument("--duration", type=float, help="stop cleanly after this many seconds")
        p.add_argument("--ws-url", default=LIVE_WS_BASE,
                       help=f"WebSocket base (default {LIVE_WS_BASE}; /public and /market "
                            f"are appended)")
        p.add_argument("--rest-url", default=LIVE_REST_BASE,
                       help=f"REST base (default {LIVE_REST_BASE})")

    lv = sub.add_parser("live", help="connect to Binance USD-M and run the engine")
    network(lv)
    lv.add_argument("--config", help="TOML config (engine tables plus [[sinks.webhook]])")
    lv.add_argument("--data-dir", help="data dir (default data/live; a restart continues it)")
    lv.add_argument("--from", dest="from_bus", metavar="NATS_URL",
                    help="follow a bus stream instead of Binance: nats://HOST:PORT/SUBJECT"
                         "[?durable=NAME] (needs --symbols; stepped by receive times)")
    lv.add_argument("--metrics-port", type=int, help="serve /metrics and /health on 127.0.0.1")
    lv.add_argument("--capture", metavar="DIR_OR_FILE",
                    help="also record every raw message: a folder gets crash-safe UTC-hour "
                         "files PREFIX-YYYYMMDDTHH.jsonl.gz; a .jsonl[.gz] name one file")
    lv.add_argument("--prefix", default="capture",
                    help="file-name prefix of the hour files (default capture)")
    lv.add_argument("--fsync", default="interval:4", type=fsync_policy,
                    help="none | tick | interval:N (default interval:4)")
    lv.add_argument("--allow-config-change", action="store_true",
                    help="continue a data dir written with another config (new segment)")
    lv.add_argument("--json", action="store_true", help="alerts as JSON lines, no live view")
    lv.set_defaults(func=cmd_live)

    cp = sub.add_parser("capture", help="record raw messages to capture files (no engine)")
    network(cp)
    cp.add_argument("--out", metavar="DIR_OR_FILE",
                    help="a folder: crash-safe UTC-hour files PREFIX-YYYYMMDDTHH[-N].jsonl.gz "
                         "(gzip members flushed every second, a new file per hour and per "
                         "start); a .jsonl or .jsonl.gz name: one file")
    cp.add_argument("--prefix", default="capture",
                    help="file-name prefix of the hour files (default capture)")
    cp.add_argument("--to", metavar="NATS_URL",
                    help="also publish every line to a bus stream: nats://HOST:PORT/SUBJECT"
                         "[?max_age=7d&max_bytes=20G] (with or without --out)")
    cp.set_defaults(func=cmd_capture)

    dm = sub.add_parser("demo", help="the built-in default: a simulated exchange, ~90 s")
    dm.add_argument("--data-dir", help="data dir (default data/demo/<UTC time>)")
    dm.add_argument("--config", help="TOML whose [[sinks.webhook]] / [[sinks.telegram]] / "
                                     "[[sinks.discord]] / [[sinks.slack]] get the demo's alerts "
                                     "(the engine config stays the demo's)")
    dm.add_argument("--json", action="store_true", help="alerts as JSON lines, no live view")
    dm.set_defaults(func=cmd_demo)

    rp = sub.add_parser("report", help="render timelines of a data dir (png or html)")
    rp.add_argument("dir", help="data dir")
    rp.add_argument("--out", required=True, help="output file: .png or .html")
    rp.add_argument("--symbols", help="only these symbols")
    rp.set_defaults(func=cmd_report)
