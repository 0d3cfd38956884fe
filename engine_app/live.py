"""`live`: Binance (or the loopback fake) -> the shared Session, on the real 250 ms clock.

Wiring only (STYLE rule 7): the transport adapters deliver raw frames, REST bodies and health
notices; each goes to the session's `Ingest` (parse, dedup, tick assignment, quarantine) and, with
`--capture`, to a capture file with the same receive time (moved into the tick being filled
if it falls in one already stepped), so that `run` of that capture replays this very session:
live steps from the first message's tick to the newest's, with events or not, as `run` does.
The clock steps every tick in order; a late tick is stepped with CATCH_UP, a tick that
started more than `overload_lag_ms` late with OVERLOAD, both visible in the records' flags.
aggTrade id gaps go to one bounded backfill (binance/backfill.py:
coalesced per symbol, a bounded queue, within the weight the pollers leave); what it gives up
is recorded as TRADE_GAP with the number of trades still missing (captured, so replayable).
The universe is `--symbols`, `--top N` or `--top all` (binance/universe.py), the OI and
funding cadences those of `market_plan.plan_polling`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

import engine_core as ec
from engine_adapters.binance.backfill import BackfillConfig, BackfillScheduler, GivenUp
from engine_adapters.binance.backfill_runner import BackfillRunner, rest_fetch
from engine_adapters.binance.dedup import IdGap
from engine_adapters.binance.endpoints import LIVE_REST_BASE, LIVE_WS_BASE, universe_streams
from engine_adapters.binance.market_plan import plan_market, plan_polling
from engine_adapters.binance.rest_client import RestClient, RestClientConfig
from engine_adapters.binance.rest_payloads import PATH_EXCHANGE_INFO
from engine_adapters.binance.universe import (
    ALL,
    REFRESH_MS,
    ExchangeAnswerError,
    UniverseWatch,
    exchange_symbols,
    resolve_universe,
)
from engine_adapters.binance.ws_client import HealthNotice, WsClientConfig, WsFeed
from engine_adapters.clock import RealClock
from engine_app.bootstrap import open_session
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_app.live_history import read_history
from engine_app.live_recording import (
    Recording,
    RecordingThread,
    poll_recording,
    wall_ms,
)
from engine_app.live_recording import open_recording as open_recording  # re-exported
from engine_app.metrics import Metrics, serve_metrics
from engine_app.session import AlertSink, Session, tune_gc

#: A documented default universe: the most liquid USDT perpetuals (SPEC section 6).
DEFAULT_SYMBOLS = ("BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


@attrs.frozen(kw_only=True)
class LiveOptions:
    data_dir: Path
    cfg: ec.Config
    symbols: tuple[str, ...] | None = None
    #: N most traded by 24 h quote volume, or "all" (every TRADING USDT perpetual).
    top: int | str | None = None
    duration_s: float | None = None
    ws_url: str = LIVE_WS_BASE
    rest_url: str = LIVE_REST_BASE
    metrics_port: int | None = None
    capture: Path | None = None
    #: File-name prefix of the hour files when `capture` is a folder.
    capture_prefix: str = "capture"
    fsync: str = "interval:4"
    allow_config_change: bool = False
    overload_lag_ms: int = 1000
    ws_config: WsClientConfig = attrs.field(factory=WsClientConfig)
    rest_config: RestClientConfig = attrs.field(factory=RestClientConfig)
    #: Bounds of the aggTrade backfill (its window is the REST config's).
    backfill: BackfillConfig = attrs.field(factory=BackfillConfig)
    seed: int = 0


class LiveError(Exception):
    """The live path cannot start (no symbols, exchange unreachable at start-up...)."""


async def resolve_symbols(rest: RestClient, opts: LiveOptions) -> tuple[str, ...]:
    """--symbols (checked against exchangeInfo when reachable), --top N or --top all.

    Raises `ExchangeAnswerError` naming the endpoint for an unusable exchange answer
    (wrong shape, duplicate symbols, an empty universe).
    """
    return await resolve_universe(rest, symbols=opts.symbols, top=opts.top,
                                  default=DEFAULT_SYMBOLS)


#: From this many symbols on (and for `--top all`) the all-market markPrice and forceOrder
#: streams replace two streams per symbol (market_plan: 2N + 2 streams instead of 4N).
WHOLE_MARKET_FROM = 50


def market_streams(symbols: Sequence[str], opts: LiveOptions) -> tuple[str, ...]:
    """The streams of a session: per symbol for a small universe, else the whole-market
    plan (checked: <= 200 streams and < 10 messages/s per connection)."""
    if opts.top != ALL and len(symbols) < WHOLE_MARKET_FROM:
        return universe_streams(symbols, depth=True)  # depth bands for the liquidity leg
    return plan_market(symbols, ws=opts.ws_config, rest=opts.rest_config).streams


class LiveRunner:
    """Owns the transport tasks and the tick loop of one live session."""

    def __init__(self, opts: LiveOptions, *, sinks: Sequence[AlertSink] = (),
                 on_tick: Callable[[LiveRunner], None] | None = None,
                 say: Callable[[str], None] = print) -> None:
        self.opts = opts
        self.sinks = list(sinks)
        self.on_tick = on_tick
        self.say = say
        self.metrics = Metrics()
        self.session: Session | None = None
        self.capture: Recording | RecordingThread | None = None
        self.feed: WsFeed | None = None
        self.rest: RestClient | None = None
        self.clock = RealClock()
        self._stop = asyncio.Event()
        #: How often exchangeInfo is re-read for status changes (hourly; tests shorten it).
        self.universe_refresh_ms = REFRESH_MS
        #: The bounded aggTrade backfill (set once the universe is known).
        self.backfill: BackfillRunner | None = None
        #: Where /metrics and /health are served (set once the server is up).
        self.metrics_url: str | None = None
        #: Receive times of the first and newest message taken (events or not): `run` of the
        #: capture steps from the first line's tick to the tick before the newest line's
        #: whether a line carries events or not, so live steps that span too (`_took`).
        self.first_recv_ms: int | None = None
        self.last_recv_ms: int | None = None
        #: (recv_ms, text) of the frames received since the last `take_frames`.
        self._frames: list[tuple[int, str]] = []

    def stop(self) -> None:
        """Finish the current tick, then shut down cleanly (SIGINT/SIGTERM land here)."""
        self._stop.set()
        self.clock.stop()

    # ---------------------------------------------------------------- transport callbacks
    def _took(self, recv_ms: int) -> int:
        """The receive time a message is captured and ingested with, noted for the span.

        Never in a tick already stepped: such a message (a receive time stamped before an
        await, a wall clock stepped back) goes into the tick being filled in `Ingest`, and is
        recorded there too, so `run` of the capture puts it in that tick as well.
        """
        assert self.session is not None
        stepped = self.session.ingest.last_stepped
        if stepped is not None and recv_ms < stepped * ec.TICK_MS:
            recv_ms = stepped * ec.TICK_MS  # the first ms of tick `stepped + 1`
        if self.first_recv_ms is None:
            self.first_recv_ms = recv_ms
        if self.last_recv_ms is None or recv_ms > self.last_recv_ms:
            self.last_recv_ms = recv_ms
        return recv_ms

    def _frame(self, recv_ms: int, _conn: str, text: str) -> None:
        """A WebSocket frame: stamped and kept for `take_frames` (short reader stretches)."""
        self._frames.append((self._took(recv_ms), text))
        self.metrics.frames += 1

    def take_frames(self) -> int:
        """Record and ingest the frames kept since the last call, in arrival order.

        Called before each step and before any other message (REST, health, a give-up) is
        recorded or ingested: capture and ingest see every message in arrival order, and no
        tick is stepped between a frame's arrival and its ingest (so its tick is unchanged).
        """
        frames = self._frames
        if not frames:
            return 0
        self._frames = []
        assert self.session is not None
        cap = self.capture
        if isinstance(cap, RecordingThread):
            cap.write_ws_many(frames)  # encoded and compressed off the loop, in this order
        elif cap is not None:
            write = cap.write_ws
            for recv_ms, text in frames:
                write(recv_ms, text)
        ws = self.session.ingest.ws
        for recv_ms, text in frames:
            ws(recv_ms, text)
        return len(frames)

    def _rest(self, recv_ms: int, path: str, query: str, status: int, body: str) -> None:
        if self.session is None or path == PATH_EXCHANGE_INFO:
            return  # start-up requests and the hourly universe refresh are not market data
        self.take_frames()
        recv_ms = self._took(recv_ms)
        if self.capture is not None:
            self.capture.write_rest(recv_ms, path, query, status, body)
        self.session.ingest.rest(recv_ms, path, query, status, body)

    def _health(self, n: HealthNotice) -> None:
        self._note_health(n.at_ms, n.symbol, n.kind)

    def _note_health(self, at_ms: int, symbol: str, kind: ec.HealthKind, count: int = 0,
                     gap: IdGap | None = None) -> None:
        if self.session is None or symbol not in self.session.symbols:
            return
        self.take_frames()
        at_ms = self._took(at_ms)
        if self.capture is not None:
            self.capture.write_health(at_ms, symbol, kind.name, count,
                                      first=None if gap is None else gap.first,
                                      last=None if gap is None else gap.last)
        self.session.ingest.health(at_ms, symbol, kind, count, gap=gap)
        self.metrics.health[kind.name] += 1

    def _gap(self, gap: IdGap) -> None:
        """An aggTrade id gap: queued for the bounded backfill (coalesced per symbol)."""
        self.metrics.gaps += 1
        if self.backfill is not None:
            self.backfill.gap(gap)

    def _given_up(self, g: GivenUp) -> None:
        """Ids the backfill will not fetch: whatever is still missing is a TRADE_GAP notice,
        captured (so `run` of the capture closes the same gap) and counted."""
        if self.session is None:
            return
        self.take_frames()  # trades received meanwhile may have closed part of the gap
        lost = self.session.ingest.dedup.missing_in(g.gap)
        if lost > 0:
            self.metrics.trades_lost += lost
            self._note_health(wall_ms(), g.symbol, ec.HealthKind.TRADE_GAP, lost, gap=g.gap)

    async def _watch_universe(self, rest: RestClient, symbols: Sequence[str]) -> None:
        """Re-read exchangeInfo hourly; a followed symbol that halts, is delisted or trades
        again is logged and counted (metrics health SYMBOL_HALTED / _DELISTED / _TRADING:
        engine_core has no HealthKind for it yet, so it does not reach the records)."""
        watch: UniverseWatch | None = None
        while not self._stop.is_set():
            res = await rest.request(PATH_EXCHANGE_INFO, None, weight=1)
            try:
                infos = None if res is None else exchange_symbols(res.status, res.body)
            except ExchangeAnswerError as exc:
                self.say(f"live: universe refresh: {exc}")
                infos = None
            if infos is not None and watch is None:
                watch = UniverseWatch(symbols, infos, wall_ms())
            elif infos is not None and watch is not None:
                for ch in watch.update(infos, wall_ms()):
                    self.metrics.health[f"SYMBOL_{ch.after.name}"] += 1
                    self.say(f"live: {ch.symbol} is now {ch.after.value} (exchange status "
                             f"{ch.status or 'no longer listed'}, was {ch.before.value})")
                if watch.new_listings:
                    self.say(f"live: listed since the start (not followed): "
                             f"{', '.join(watch.new_listings)}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.universe_refresh_ms / 1000)

    # ---------------------------------------------------------------- main
    async def run(self) -> Session:
        opts = self.opts
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        async with RestClient(opts.rest_url, on_response=self._rest, on_health=self._health,
                              config=opts.rest_config, seed=opts.seed) as rest:
            self.rest = rest
            symbols = await resolve_symbols(rest, opts)
            if not symbols:
                raise LiveError("no symbols to follow")
            poll = plan_polling(len(symbols), opts.rest_config)
            window_s = opts.rest_config.window_s
            sched = BackfillScheduler(
                attrs.evolve(opts.backfill, window_s=window_s),
                weight_per_window=int(poll.backfill_per_min * window_s / 60.0))
            self.backfill = backfill = BackfillRunner(
                sched, rest_fetch(rest), on_give_up=self._given_up, now_ms=wall_ms,
                wall_s=time.time)
            off = await rest.server_time_offset()
            if off is not None:
                self.metrics.clock_offset_ms = off.offset_ms
                if abs(off.offset_ms) > 1000:
                    self.say(f"live: warning: local clock is {off.offset_ms} ms off the "
                             f"exchange's; tick assignment uses the local clock")
            dd = DataDir.at(opts.data_dir)
            self.session = session = open_session(
                dd, opts.cfg, symbols, engine_version=ENGINE_VERSION, fsync=opts.fsync,
                allow_config_change=opts.allow_config_change, sinks=self.sinks,
                on_gap=self._gap)
            for m in session.recovery_messages:
                self.say(f"live: {m}")
            if opts.capture is not None:
                self.capture = RecordingThread(open_recording(opts.capture,
                                                              opts.capture_prefix))
            self.feed = feed = WsFeed(opts.ws_url, market_streams(symbols, opts),
                                      on_frame=self._frame, on_health=self._health,
                                      config=opts.ws_config, seed=opts.seed, universe=symbols)
            metrics_runner = None
            if opts.metrics_port is not None:
                metrics_runner = await serve_metrics(self, opts.metrics_port)
                self.say(f"live: metrics on {self.metrics_url}/metrics and /health")
            self.say(f"live: {len(symbols)} symbols, {len(feed.specs)} connections, "
                     f"ws {opts.ws_url}, rest {opts.rest_url} -> {dd.root}")
            if opts.top == ALL or len(symbols) >= WHOLE_MARKET_FROM:  # streams, connections
                plan = plan_market(symbols, ws=opts.ws_config, rest=opts.rest_config)
                for line in plan.describe()[:2]:
                    self.say(f"live: {line}")
            self.say(f"live: {poll.describe()}")
            tasks = [asyncio.create_task(feed.run()), asyncio.create_task(
                rest.poll_forever(symbols, oi_cycle_s=poll.oi_cycle_s,
                                  premium_interval_s=poll.premium_interval_s)),
                     asyncio.create_task(backfill.run()),
                     asyncio.create_task(self._watch_universe(rest, symbols)),
                     # fundingInfo (start, hourly) and 30 days of OI history (start)
                     asyncio.create_task(read_history(rest, symbols, self._stop))]
            tune_gc()  # start-up objects need no more GC scans: shorter tick pauses
            try:
                await self._tick_loop(session)
            finally:
                feed.stop()
                rest.stop()
                backfill.stop()
                self._stop.set()  # the universe watch sleeps on it
                await asyncio.gather(*tasks, return_exceptions=True)
                # the tick in progress: its messages are stepped, not dropped
                with contextlib.suppress(ValueError):
                    self.finish_ticks(session)
                if metrics_runner is not None:
                    await metrics_runner.cleanup()
                session.close()
                if self.capture is not None:
                    self.capture.close()
        return session

    def first_tick(self, session: Session) -> int | None:
        """The tick the session starts at: the first message's, with events or not (`run` of
        the capture starts at its first line), never one a continued log already holds."""
        if self.first_recv_ms is None:
            return None
        first, nxt = ec.tick_of_recv_ms(self.first_recv_ms), session.next_tick
        return first if nxt is None else max(first, nxt)

    def finish_ticks(self, session: Session) -> None:
        """At shutdown, step what `run` of the capture steps at its end: every tick before
        the newest message's (with events or not), then the newest messages' own."""
        self.take_frames()  # frames handed in while the transports were being stopped
        if self.last_recv_ms is not None:
            end = ec.tick_of_recv_ms(self.last_recv_ms)
            nxt = self.first_tick(session) if session.state.last_tick is None \
                else session.next_tick
            while nxt is not None and nxt < end:
                session.step_tick(nxt)
                nxt += 1
        session.drain()

    async def _tick_loop(self, session: Session) -> None:
        """Step every tick in order from the tick of the first message on.

        The session starts at the first message's tick (`first_tick`: with or without
        events), not at the clock's first tick, and shell conditions (a late or catch-up
        tick) enter as health notices stamped with the time they were noticed — both exactly
        as `run` sees them in a capture of this session.
        """
        opts = self.opts
        deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
        symbols = session.symbols
        async for tick in self.clock.ticks():
            stop = self._stop.is_set() or (deadline is not None
                                            and time.monotonic() >= deadline)
            t0, c0 = time.perf_counter(), time.thread_time()
            self.take_frames()  # everything received up to now, in order, before the step
            if session.state.last_tick is None:  # not started: wait for the first message
                first = self.first_tick(session)
                if first is None or tick.tick_id < first:
                    if stop:
                        break
                    continue
            if tick.catch_up or tick.lag_ms > opts.overload_lag_ms:
                kind = ec.HealthKind.OVERLOAD if tick.lag_ms > opts.overload_lag_ms \
                    else ec.HealthKind.CATCH_UP
                if kind is ec.HealthKind.OVERLOAD:
                    self.metrics.overloaded_ticks += 1
                now = time.time_ns() // 1_000_000
                for sym in symbols:  # flags the next tick: this one's records are computed
                    self._note_health(now, sym, kind, 1)
            session.step_tick(tick.tick_id)
            self.metrics.observe_tick(tick.lag_ms, time.perf_counter() - t0,
                                      time.thread_time() - c0)
            if self.capture is not None:
                poll_recording(self.capture)
            if self.on_tick is not None:
                self.on_tick(self)
            if stop:
                break
