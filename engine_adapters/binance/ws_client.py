"""The WebSocket connection manager: connect, deliver raw frames, watch, reconnect, rotate.

`WsFeed` opens one connection per `ConnectionSpec` (endpoints.plan_connections) and hands
every data frame upward as `(recv_ms, conn_id, text)`, unparsed. Around that it enforces the
protocol facts of the fixtures README:
* fact 8 — pings are answered by aiohttp's autoping (the pong echoes the payload); an
  unsolicited pong is sent every `pong_every_s` to keep the connection alive;
* fact 6 — our outgoing messages (SUBSCRIBE batches, pongs) go through a limiter set below
  10 per second;
* fact 2 — "connected but silent" is a fault: a connection with no data frame for
  `stale_after_s` is reported STREAM_STALE for each of its symbols and reconnected;
  STREAM_RESUMED follows the first frame after. A stream with a fixed cadence
  (markPrice: 1 s or 3 s, fact 10) silent for `stream_stale_after_s` is reported per symbol
  (every symbol for `!markPrice@arr@1s`) even while the connection carries other data;
* fact 7 — before the 24 h limit the connection is rotated: the new one is receiving before
  the old one closes; the overlap's duplicates are dropped upstream (dedup.py).
Reconnects use exponential backoff with full jitter and a cap, from a seeded RNG. Network
failures never escape `run()`: they become counters and health notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable, Sequence

import aiohttp
import attrs

from engine_adapters.binance.endpoints import ConnectionSpec, plan_connections, symbol_of
from engine_core.events import HealthKind

FrameSink = Callable[[int, str, str], None]


@attrs.frozen(kw_only=True, slots=True)
class WsClientConfig:
    """Knobs of the connection manager; defaults suit the live exchange."""

    per_connection: int = 200
    url_budget: int = 4000
    #: Connect to the retired root instead of the routed bases (tests of fact 2 only).
    legacy_root: bool = False
    stale_after_s: float = 10.0
    stream_stale_after_s: float = 5.0
    watchdog_interval_s: float = 0.5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    #: Rotate well before the 24 h forced disconnect (fact 7).
    planned_reconnect_s: float = 23.5 * 3600
    overlap_timeout_s: float = 10.0
    #: Fact 6 allows 10 incoming messages per second; stay at half.
    max_outgoing_per_s: float = 5.0
    subscribe_batch: int = 50
    #: Fact 8: unsolicited pongs are allowed; None disables them.
    pong_every_s: float | None = 300.0
    connect_timeout_s: float = 10.0
    max_msg_size: int = 8 * 1024 * 1024


@attrs.frozen(kw_only=True, slots=True)
class HealthNotice:
    """What the transport observed about one symbol's streams."""

    symbol: str
    kind: HealthKind
    at_ms: int
    conn_id: str
    detail: str = ""


@attrs.define(kw_only=True, slots=True)
class WsCounters:
    """Transport counters for metrics (mutable, shared by all connections of a feed)."""

    frames: int = 0
    bytes: int = 0
    control_frames: int = 0
    error_frames: int = 0
    connects: int = 0
    reconnects: int = 0
    connect_failures: int = 0
    stalls: int = 0
    planned_rotations: int = 0
    messages_sent: int = 0
    backoff_delays: deque[float] = attrs.field(factory=lambda: deque(maxlen=1000))


class WsFeed:
    """Connections for a set of streams; run() until stop()."""

    def __init__(
        self,
        ws_base: str,
        streams: Sequence[str],
        *,
        on_frame: FrameSink,
        on_health: Callable[[HealthNotice], None] | None = None,
        on_control: Callable[[str, str], None] | None = None,
        config: WsClientConfig | None = None,
        seed: int = 0,
        now_ms: Callable[[], int] | None = None,
        universe: Sequence[str] = (),
    ) -> None:
        """`universe`: the followed symbols, whose notices an all-market `!` stream raises."""
        self.config = cfg = config or WsClientConfig()
        self.ws_base = ws_base
        self.specs = plan_connections(
            streams, per_connection=cfg.per_connection, url_budget=cfg.url_budget,
            legacy_root=cfg.legacy_root,
        )
        self.counters = WsCounters()
        self._on_frame = on_frame
        self._on_health = on_health
        self._on_control = on_control
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._stop = asyncio.Event()
        self._links = [
            _Link(self, sp, random.Random(seed * 7919 + i), universe)
            for i, sp in enumerate(self.specs)]

    # ---- public --------------------------------------------------------------------------
    async def run(self) -> None:
        """Keep every connection up until stop(); returns after all are closed."""
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(link.run(session)) for link in self._links]
            try:
                await self._stop.wait()
            finally:
                self._stop.set()
                for link in self._links:
                    await link.close_all()
                _, pending = await asyncio.wait(tasks, timeout=5.0)
                for t in pending:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def connected(self) -> int:
        """How many connections currently have an open socket."""
        return sum(1 for link in self._links if link.ws is not None and not link.ws.closed)

    # ---- called by links -----------------------------------------------------------------
    def _frame(self, recv_ms: int, conn_id: str, text: str) -> None:
        c = self.counters
        c.frames += 1
        c.bytes += len(text)
        self._on_frame(recv_ms, conn_id, text)

    def _health(self, symbols: Sequence[str], kind: HealthKind, conn_id: str, detail: str) -> None:
        if self._on_health is None:
            return
        now = self._now_ms()
        for sym in symbols:
            self._on_health(
                HealthNotice(symbol=sym, kind=kind, at_ms=now, conn_id=conn_id, detail=detail)
            )


class _Link:
    """One planned connection and its successive sockets."""

    def __init__(self, feed: WsFeed, spec: ConnectionSpec, rng: random.Random,
                 universe: Sequence[str] = ()) -> None:
        self.feed = feed
        self.spec = spec
        self.rng = rng
        # whose data it carries: all of them with a `!` stream (market_plan.health_symbols)
        every = universe and any(st.startswith("!") for st in spec.streams)
        self.symbols: tuple[str, ...] = tuple(sorted(universe)) if every else spec.symbols
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.old_ws: aiohttp.ClientWebSocketResponse | None = None
        self.last_data = 0.0
        self.stale = False
        # fixed-cadence streams, all-market ones included (market_plan.cadence_streams)
        cad = [s for s in spec.streams if "markPrice@" in s or s.endswith("@markPrice")]
        self.cadence: dict[str, float] = dict.fromkeys(cad, 0.0)
        self.stale_streams: set[str] = set()
        self._next_send = 0.0
        self._ever_connected = False

    # ---- connect -------------------------------------------------------------------------
    async def run(self, session: aiohttp.ClientSession) -> None:
        feed = self.feed
        attempt = 0
        while not feed.stopping:
            ws = await self._open(session)
            if ws is None:
                attempt += 1
                await self._backoff(attempt)
                continue
            unplanned = self._ever_connected
            self._ever_connected = True
            feed.counters.connects += 1
            if unplanned:
                feed.counters.reconnects += 1
                feed._health(self.symbols, HealthKind.RECONNECT, self.spec.conn_id,
                             "reconnected")
                every, streams = "!forceOrder@arr" in self.spec.streams, self.spec.streams
                liq = [s for s in self.symbols if every or f"{s.lower()}@forceOrder" in streams]
                # Fact 9: liquidations pushed while we were away are gone for good.
                feed._health(liq, HealthKind.LIQUIDATION_GAP, self.spec.conn_id,
                             "forceOrder stream was down")
            healthy = await self._serve(session, ws)
            if feed._stop.is_set():
                break
            # A connection that delivered data restarts the backoff at its first step (a
            # short jitter, so a mass disconnect does not reconnect in lockstep); a
            # connection that never delivered keeps growing it.
            attempt = 1 if healthy else attempt + 1
            await self._backoff(attempt)
        await self.close_all()

    async def _open(self, session: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse | None:
        cfg = self.feed.config
        try:
            ws = await asyncio.wait_for(
                session.ws_connect(
                    self.spec.url(self.feed.ws_base), autoping=True, heartbeat=None,
                    max_msg_size=cfg.max_msg_size,
                    # A stalled peer may never answer our close frame: do not wait 10 s.
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                ),
                cfg.connect_timeout_s,
            )
        except (aiohttp.ClientError, OSError, TimeoutError):
            self.feed.counters.connect_failures += 1
            return None
        rest = self.spec.subscribe_streams
        try:
            for i in range(0, len(rest), cfg.subscribe_batch):
                batch = list(rest[i : i + cfg.subscribe_batch])
                await self._send(ws, {"method": "SUBSCRIBE", "params": batch, "id": i + 1})
        except (aiohttp.ClientError, OSError, RuntimeError):
            await ws.close()
            self.feed.counters.connect_failures += 1
            return None
        return ws

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, obj: dict[str, object]) -> None:
        """Send one JSON message, spaced to stay under the 10/s limit (fact 6)."""
        loop = asyncio.get_running_loop()
        wait = self._next_send - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        spacing = 1 / self.feed.config.max_outgoing_per_s
        self._next_send = max(loop.time(), self._next_send) + spacing
        await ws.send_json(obj)
        self.feed.counters.messages_sent += 1

    async def _backoff(self, attempt: int) -> None:
        """Full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
        if attempt <= 0:
            return
        cfg = self.feed.config
        ceiling = min(cfg.backoff_cap_s, cfg.backoff_base_s * 2 ** min(attempt - 1, 30))
        delay = self.rng.uniform(0, ceiling)
        self.feed.counters.backoff_delays.append(delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.feed._stop.wait(), delay)

    async def close_all(self) -> None:
        for ws in (self.ws, self.old_ws):
            if ws is not None and not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()

    # ---- serve ---------------------------------------------------------------------------
    async def _serve(self, session: aiohttp.ClientSession,
                     ws: aiohttp.ClientWebSocketResponse) -> bool:
        """Read until the socket dies or goes stale; rotate before the lifetime ends.

        Returns True when the connection delivered data (the backoff then restarts).
        """
        feed, cfg, spec = self.feed, self.feed.config, self.spec
        loop = asyncio.get_running_loop()
        self.ws = ws
        got = asyncio.Event()
        reader = asyncio.create_task(self._read(ws, got))
        opened = self.last_data = loop.time()
        for s in self.cadence:
            self.cadence[s] = max(self.cadence[s], opened)
        last_pong = opened
        rotate_at = opened + cfg.planned_reconnect_s
        try:
            while not feed.stopping:
                done, _ = await asyncio.wait({reader}, timeout=cfg.watchdog_interval_s)
                if done:
                    return got.is_set()
                now = loop.time()
                if now - self.last_data > cfg.stale_after_s:
                    feed.counters.stalls += 1
                    if not self.stale:
                        self.stale = True
                        feed._health(self.symbols, HealthKind.STREAM_STALE, spec.conn_id,
                                     f"no data for {cfg.stale_after_s:g} s")
                    await ws.close()
                    await reader
                    return False
                self._check_cadence(now)
                if cfg.pong_every_s is not None and now - last_pong >= cfg.pong_every_s:
                    last_pong = now
                    with contextlib.suppress(Exception):
                        await ws.pong(b"")
                if now >= rotate_at:
                    swapped = await self._rotate(session, ws, reader)
                    if swapped is None:
                        rotate_at = now + min(60.0, cfg.overlap_timeout_s)
                        continue
                    ws, reader, got = swapped
                    rotate_at = loop.time() + cfg.planned_reconnect_s
            return got.is_set()
        finally:
            if not reader.done():
                await ws.close()
                await asyncio.gather(reader, return_exceptions=True)

    async def _rotate(
        self, session: aiohttp.ClientSession, old: aiohttp.ClientWebSocketResponse,
        old_reader: asyncio.Task[None],
    ) -> tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None], asyncio.Event] | None:
        """Open the successor, wait for its first frame, then close the old (fact 7)."""
        new = await self._open(session)
        if new is None:
            return None
        got = asyncio.Event()
        reader = asyncio.create_task(self._read(new, got))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(got.wait(), self.feed.config.overlap_timeout_s)
        self.old_ws, self.ws = old, new
        await old.close()
        await asyncio.gather(old_reader, return_exceptions=True)
        self.old_ws = None
        self.feed.counters.planned_rotations += 1
        self.feed.counters.connects += 1
        return new, reader, got

    def _check_cadence(self, now: float) -> None:
        limit = self.feed.config.stream_stale_after_s
        for stream, seen in self.cadence.items():
            if now - seen > limit and stream not in self.stale_streams:
                self.stale_streams.add(stream)
                self.feed._health(self._stream_symbols(stream), HealthKind.STREAM_STALE,
                                  self.spec.conn_id, f"{stream} silent for {limit:g} s")

    def _stream_symbols(self, stream: str) -> Sequence[str]:
        sym = symbol_of(stream)  # a `!` stream carries every symbol
        return self.symbols if stream.startswith("!") else () if sym is None else (sym,)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, got: asyncio.Event) -> None:
        """Deliver every text frame; return when the socket closes or errors."""
        feed = self.feed
        loop = asyncio.get_running_loop()
        now_ms = feed._now_ms
        conn_id = self.spec.conn_id
        cadence = self.cadence
        text_type = aiohttp.WSMsgType.TEXT
        while True:
            try:
                msg = await ws.receive()
            except Exception:  # a transport failure is a closed connection, never a crash
                return
            if msg.type is not text_type:
                if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.PING,
                                aiohttp.WSMsgType.PONG):
                    continue
                return
            text: str = msg.data
            if text.startswith('{"result"') or text.startswith('{"error"'):
                # Request acks and errors (fixtures ws/subscribe_response.json, error_*.json).
                feed.counters.control_frames += 1
                if text.startswith('{"error"'):
                    feed.counters.error_frames += 1
                if feed._on_control is not None:
                    feed._on_control(conn_id, text)
                continue
            self.last_data = t = loop.time()
            if not got.is_set():
                got.set()
            if self.stale:
                self.stale = False
                feed._health(self.symbols, HealthKind.STREAM_RESUMED, conn_id, "data flows")
            if cadence and text.startswith('{"stream":"'):
                name = text[11 : text.find('"', 11)]
                if name in cadence:
                    cadence[name] = t
                    if name in self.stale_streams:
                        self.stale_streams.discard(name)
                        feed._health(self._stream_symbols(name), HealthKind.STREAM_RESUMED,
                                     conn_id, name)
            feed._frame(now_ms(), conn_id, text)
