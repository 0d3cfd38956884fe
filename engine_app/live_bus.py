"""`live --from nats://...`: an engine that follows a bus stream, stepped by its receive times.

The recorder (`capture --to nats://...`) publishes every raw message with its receive time;
this engine reads them through a durable consumer (`BusLineReader(follow=True)`) and feeds
them, decoded by the capture reader, to `bootstrap.run_lines`: the virtual clock of `run`,
driven by each line's `recv_ms`. So the records do not depend on how fast this process
consumes (a slow or restarted engine writes what a fast one writes), and `run` of a capture
file of the same messages gives the same log. A tick is stepped when the first message of a
later tick arrives (the recorder's markPrice and polls keep arriving every second).

Restarts resume exactly from the data dir: when the log already holds ticks up to T, the
durable consumer is re-created at the stream time of tick T's end minus `REWIND_MS`, and every
line received before the end of tick T is dropped (the log has it); nothing is lost or read
twice, whether the previous process was stopped or killed. A stop does not drain the tick in
progress (its lines come again after a restart). As at any restart of `live`, the core starts
a new session then (docs/operations.md). Retention gaps become `LIQUIDATION_GAP` notices for
every symbol, said on stderr and counted.

The tick lag is measured as `live` measures it: when a tick is stepped, how long after its
end (the stream's latency from the recorder plus this process's backlog), not how old the
last stepped tick is (that would count the up to 250 ms until the next one is due). While
no tick is stepped, the lag shown (`/metrics`, `/health`) grows with how overdue the next
tick is, so a stream gone quiet still turns `/health` to 503 after 2 s.

The loop runs in a worker thread (the reader blocks); alert sinks are handed their alerts on
the event loop (`call_soon_threadsafe`), the view and the metrics read the session from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import engine_core as ec
from engine_adapters.bus import BusUrl, SourceGap
from engine_adapters.bus.bridge import BusLineReader, iter_bus_capture
from engine_app.bootstrap import CaptureItem, open_session, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_app.live import LiveError, LiveOptions
from engine_app.metrics import Metrics, serve_metrics
from engine_app.session import AlertSink, Session, tune_gc

if TYPE_CHECKING:
    from engine_adapters.binance.rest_client import RestClient
    from engine_adapters.binance.ws_client import WsFeed

#: How far before its log's last tick a restarted engine re-reads the stream (the stream's
#: timestamps are the server's, the receive times the recorder's: this covers clock skew).
REWIND_MS = 120_000


class _Stopped(Exception):
    """The reader was closed by a stop: leave `run_lines` without draining the open tick."""


class BusLiveRunner:
    """Follows `url` into `opts.data_dir`; the same face to the view and metrics as `LiveRunner`."""

    def __init__(self, url: BusUrl, opts: LiveOptions, *, sinks: Sequence[AlertSink] = (),
                 on_tick: Callable[[Any], None] | None = None,
                 say: Callable[[str], None] = print) -> None:
        if not opts.symbols:
            raise LiveError("live --from needs --symbols (the universe this engine steps)")
        self.url = url
        self.opts = opts
        self.sinks = list(sinks)
        self.on_tick = on_tick
        self.say = say
        self.metrics = Metrics()
        self.metrics_url: str | None = None
        self.session: Session | None = None
        self.reader: BusLineReader | None = None
        self.feed: WsFeed | None = None  # no WebSocket, no REST: the recorder has them
        self.rest: RestClient | None = None
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Stop after the tick being stepped; the stream position is kept (SIGINT/SIGTERM)."""
        self._stopping.set()

    def _on_gap(self, gap: SourceGap) -> None:
        self.metrics.health["LIQUIDATION_GAP"] += len(self.opts.symbols or ())
        self.say(f"live: warning: {gap.count} message(s) skipped: {gap.reason}; noted as "
                 f"LIQUIDATION_GAP for every symbol")

    async def run(self) -> Session:
        opts = self.opts
        symbols = tuple(opts.symbols or ())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        from engine_app.bus_cmd import check_bus

        await asyncio.to_thread(check_bus, self.url)

        def on_loop(sink: AlertSink) -> AlertSink:
            def hand_over(alerts: Sequence[ec.Alert]) -> None:
                loop.call_soon_threadsafe(sink, alerts)
            return hand_over

        dd = DataDir.at(opts.data_dir)
        self.session = session = open_session(
            dd, opts.cfg, symbols, engine_version=ENGINE_VERSION, fsync=opts.fsync,
            allow_config_change=opts.allow_config_change,
            sinks=[on_loop(s) for s in self.sinks])
        for m in session.recovery_messages:
            self.say(f"live: {m}")
        last = session.ports.log.last_tick
        skip = None if last is None else last * ec.TICK_MS  # the end of tick `last`
        u = self.url
        self.reader = reader = BusLineReader(
            u, follow=True, on_gap=self._on_gap, gap_symbols=symbols, skip_before_ms=skip,
            rewind_ms=None if skip is None else skip - REWIND_MS,
            new_start_ms=time.time_ns() // 1_000_000)
        metrics_runner = None
        if opts.metrics_port is not None:
            metrics_runner = await serve_metrics(self, opts.metrics_port)
            self.say(f"live: metrics on {self.metrics_url}/metrics and /health")
        where = f"after tick {last}, the log's last" if last is not None else \
            "start=/seq= if new, else where it stopped" \
            if u.start_ms is not None or u.start_seq is not None else \
            "from now if new, else where it stopped"
        self.say(f"live: {len(symbols)} symbols from {u.server}/{u.subject} (consumer "
                 f"{u.durable}, {where}) -> {dd.root}")
        tune_gc()
        play = asyncio.ensure_future(asyncio.to_thread(self._play, session, reader))
        deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
        try:
            while not play.done():
                await asyncio.wait([play], timeout=0.25)
                self._observe(session)
                if self.on_tick is not None:
                    self.on_tick(self)
                if deadline is not None and time.monotonic() >= deadline:
                    self.stop()
                if self._stopping.is_set() and not play.done():
                    await asyncio.to_thread(reader.close)
            try:
                await play  # raises what the loop raised (a consumer that failed, say)
            except (ConnectionError, LookupError) as exc:
                raise LiveError(f"{u.server}/{u.subject}: {exc}") from None
        finally:
            self._stopping.set()
            await asyncio.to_thread(reader.close)
            with contextlib.suppress(BaseException):
                await play
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            session.close()
        return session

    def _play(self, session: Session, reader: BusLineReader) -> int:
        stopping = self._stopping
        stats, metrics = session.stats, self.metrics

        def items() -> Iterator[CaptureItem]:
            seen = stats.last_tick
            for item in iter_bus_capture(reader):
                yield item
                if stats.last_tick != seen:  # a tick was just stepped: how late, as `live`
                    seen = stats.last_tick
                    if seen is not None:
                        lag = max(0, time.time_ns() // 1_000_000 - seen * ec.TICK_MS)
                        metrics.last_lag_ms = lag
                        metrics.lag_samples.append(lag)
            if stopping.is_set():
                raise _Stopped

        try:
            return run_lines(session, items(), stop=stopping.is_set)
        except _Stopped:
            return 0

    def _observe(self, session: Session) -> None:
        last = session.stats.last_tick
        if last is not None:  # a stream gone quiet: the next tick is already this late
            overdue = time.time_ns() // 1_000_000 - (last + 1) * ec.TICK_MS
            self.metrics.last_lag_ms = max(self.metrics.last_lag_ms, overdue)
        self.metrics.frames = session.counts.frames


__all__ = ["REWIND_MS", "BusLiveRunner"]
