"""`run nats://...`: play a bus stream offline (virtual clock), as `run` plays a capture file.

The stream's lines go through `engine_adapters.bus.bridge` (a consumer on its own thread,
decoded by the capture reader itself) into `bootstrap.run_lines`, so the log is the one
`run` writes for a capture file of the same lines, byte for byte. Without `durable=` in the
URL the consumer is ephemeral: every run reads the stream from its start (or `start=` /
`seq=`) to its last message as of start, and a killed run is simply run again. With
`durable=NAME` a run resumes where the last run of that name stopped. A retention gap is
never silent: it is said on stderr, counted, and enters the records as a `LIQUIDATION_GAP`
health notice for every symbol (journaled like any notice).
"""

from __future__ import annotations

import argparse
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import nats.errors

from engine_adapters.bus import BusUrl, BusUrlError, SourceGap
from engine_adapters.bus.bridge import BusLineReader, iter_bus_capture, probe
from engine_app.cli_support import EXIT_OK, InputError, UsageError, load_config, parse_symbols, say
from engine_app.datadir import ENGINE_VERSION, DataDir

if TYPE_CHECKING:
    from engine_app.live import LiveOptions

#: How long `capture --to` waits at the end for the buffered lines to be acknowledged.
DRAIN_S = 10.0


def bus_url(text: str) -> BusUrl:
    """Parse a bus URL given on the command line (a bad one is a usage error)."""
    try:
        return BusUrl.parse(text)
    except BusUrlError as exc:
        raise UsageError(str(exc)) from None


def names_durable(text: str) -> bool:
    """Does the URL say `durable=` itself (rather than taking the default name)?"""
    return "durable" in urllib.parse.parse_qs(urllib.parse.urlsplit(text).query,
                                              keep_blank_values=True)


def check_bus(url: BusUrl) -> None:
    """The server answers and holds the stream, or an input error naming both."""
    try:
        probe(url)
    except (ConnectionError, LookupError) as exc:
        raise InputError(str(exc)) from None


async def capture_to_bus(opts: LiveOptions, out: Path | None, url: BusUrl, *,
                         say: Callable[[str], None]) -> tuple[int, tuple[str, ...]]:
    """`capture --to nats://...`: the recorder's lines published (and written to `out` if any).

    The publisher buffers while the server is away and resends when it is back; at the end
    it gets `DRAIN_S` to send what is buffered, then its counters are said (what was
    published, what could not be: still buffered, or dropped because the buffer was full).
    """
    from engine_adapters.bus import BusPublisher
    from engine_adapters.bus.publisher import BusStreamError
    from engine_app.capture_cmd import capture

    try:
        pub = await BusPublisher(url).start()
    except BusStreamError as exc:
        raise InputError(str(exc)) from None
    except (nats.errors.Error, OSError) as exc:
        raise InputError(f"{url.server}: cannot connect to the NATS server "
                         f"({type(exc).__name__}: {exc})") from None
    say(f"capture: publishing to {url.server}/{url.subject} (stream {url.stream})")
    try:
        return await capture(opts, out, say=say, sink=pub)
    finally:
        st = await pub.close(drain_timeout_s=DRAIN_S)
        say(f"capture: bus {url.subject}: {st.published:,} lines published in "
            f"{st.messages:,} messages; not published: {st.pending:,} still buffered, "
            f"{st.dropped:,} dropped (buffer full); {st.disconnects} disconnect(s), "
            f"{st.resent:,} resend(s), {st.duplicates:,} duplicate(s)")


def cmd_run_bus(a: argparse.Namespace) -> int:
    """`run nats://HOST:PORT/SUBJECT[?start=...|seq=...][&durable=NAME] --symbols ...`."""
    from engine_app.bootstrap import open_session, run_lines
    from engine_app.session import tune_gc
    from engine_app.summary import print_summary
    from engine_app.view import progress

    url = bus_url(a.capture)
    if not a.symbols:
        raise UsageError(f"run {a.capture}: --symbols is required (a stream has no file to "
                         f"scan for its symbols)")
    symbols = parse_symbols(a.symbols)
    ephemeral = not names_durable(a.capture)
    if ephemeral:
        url = attrs.evolve(url, durable=f"run-{uuid.uuid4().hex[:16]}")
    cfg = load_config(a.config)
    dd = DataDir.at(a.data_dir or Path("data") / url.subject)
    if dd.log.is_dir() and any(dd.log.iterdir()):
        raise UsageError(f"{dd.root} already holds a log; `run` writes a fresh data dir "
                         f"(pick another --data-dir or delete it)")
    check_bus(url)
    where = f"consumer {url.durable}" if not ephemeral else \
        "from its start" if url.start_ms is None and url.start_seq is None else "from start/seq"
    say(f"run: {url.server}/{url.subject} (stream {url.stream}, {where}) -> {dd.root} "
        f"({len(symbols)} symbols, config {cfg.digest().hex()[:12]})")

    def on_gap(gap: SourceGap) -> None:
        say(f"run: warning: {gap.count} message(s) skipped: {gap.reason}; noted as "
            f"LIQUIDATION_GAP for every symbol")

    reader = BusLineReader(url, on_gap=on_gap, gap_symbols=symbols, ephemeral=ephemeral)
    t0 = time.perf_counter()
    session = open_session(dd, cfg, symbols, engine_version=ENGINE_VERSION, fsync=a.fsync)
    tune_gc()
    try:
        with progress(None, f"run {url.subject} (lines)") as advance:
            seen = [0]

            def on_lines(n: int) -> None:
                advance(n - seen[0])
                seen[0] = n

            lines = run_lines(session, iter_bus_capture(reader), progress=on_lines)
    except (ConnectionError, LookupError) as exc:
        raise InputError(f"run {a.capture}: {exc}") from None
    finally:
        reader.close()
        session.close()
    elapsed = time.perf_counter() - t0
    st = reader.stats
    if reader.gaps or (st is not None and st.skipped):
        say(f"run: {reader.gaps} gap(s) in the stream, "
            f"{st.skipped if st is not None else '?'} message(s) skipped (see the warnings)")
    print_summary(session, dd, elapsed=elapsed, lines=lines, as_json=a.json)
    return EXIT_OK


__all__ = ["DRAIN_S", "bus_url", "capture_to_bus", "check_bus", "cmd_run_bus", "names_durable"]
