"""The fake exchange's WebSocket side: routed bases, subscriptions, pings, limits, faults.

Protocol rules implemented here, each from the fixtures README:
* fact 1/2: `/public` serves book streams, `/market` the rest; the legacy root (`/ws`,
  `/stream`) accepts any subscription but only ever delivers public streams — market streams
  there stay silent with no error. A stream subscribed on the wrong routed base is silent too.
* fact 4: raw `/<base>/ws/<s1>/<s2>` frames are bare payloads; combined
  `/<base>/stream?streams=` frames are wrapped `{"stream":..,"data":..}`.
* fact 5: at most `max_streams` streams per connection (error frame beyond).
* fact 6: more than `max_incoming_per_s` incoming messages in one second disconnects.
* fact 7: the connection is closed after `lifetime_s`.
* fact 8: a ping every `ping_interval_s`; no pong for `pong_timeout_s` disconnects.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from engine_adapters.binance.endpoints import Base, base_of
from engine_sim import render
from engine_sim.fake_exchange.faults import (
    FakeConfig,
    FakeStats,
    Faults,
    padded,
    truncated,
    with_nan,
)

_STREAM_NAME = re.compile(
    r"^(?:[a-z0-9_]+@(?:aggTrade|trade|bookTicker|forceOrder|markPrice(?:@1s)?"
    r"|depth(?:5|10|20)?(?:@(?:100|250|500)ms)?|kline_[0-9a-z]+)"
    r"|!bookTicker|!forceOrder@arr|!markPrice@arr(?:@1s)?)$"
)


def valid_stream(name: str) -> bool:
    return _STREAM_NAME.match(name) is not None


#: Bytes a client's socket buffer may hold before `deliver_many` waits for it to drain.
SLOW_CLIENT_BYTES = 4 << 20


def _ws_text_frame(text: str) -> bytes:
    """One unmasked, final text frame (what a server sends; RFC 6455 section 5.2)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 1 << 16:
        return bytes((0x81, 126, n >> 8, n & 0xFF)) + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


class FakeConnection:
    """One client connection: its base, its form (raw/combined) and its subscriptions."""

    def __init__(
        self, *, conn_no: int, ws: web.WebSocketResponse, base: Base, combined: bool,
        request: web.Request, opened_at: float,
    ) -> None:
        self.conn_no = conn_no
        self.ws = ws
        self.base = base
        self.combined = combined
        self.request = request
        self.opened_at = opened_at
        self.last_pong = opened_at
        self.last_ping = opened_at
        self.subscriptions: dict[str, None] = {}
        self.incoming: deque[float] = deque()
        self.held: str | None = None
        self.closing = False

    def serves(self, stream: str) -> bool:
        """Fact 2: market streams are silent on the legacy root and on the wrong base."""
        routed = base_of(stream)
        if self.base is Base.LEGACY_ROOT:
            return routed is Base.PUBLIC
        return routed is self.base


class WsHub:
    """Every live connection, the stream -> connections index, and frame delivery."""

    def __init__(self, *, config: FakeConfig, faults: Faults, stats: FakeStats) -> None:
        self.config = config
        self.faults = faults
        self.stats = stats
        self.conns: dict[int, FakeConnection] = {}
        self.index: dict[str, dict[int, FakeConnection]] = {}
        self.stall_until = 0.0
        self._next_no = 0

    # ---- subscriptions -------------------------------------------------------------------
    def subscribe(self, conn: FakeConnection, streams: list[str]) -> str | None:
        """Add streams; returns an error message (fact 4/5) or None."""
        if any(not isinstance(s, str) or not valid_stream(s) for s in streams):
            return render.WS_ERROR_INVALID_STREAM
        if len(conn.subscriptions) + len(streams) > self.config.max_streams:
            return f"Invalid request: too many streams (max {self.config.max_streams})"
        for s in streams:
            conn.subscriptions[s] = None
            if conn.serves(s):
                self.index.setdefault(s, {})[conn.conn_no] = conn
        return None

    def unsubscribe(self, conn: FakeConnection, streams: list[str]) -> None:
        for s in streams:
            conn.subscriptions.pop(s, None)
            subs = self.index.get(s)
            if subs is not None:
                subs.pop(conn.conn_no, None)

    def remove(self, conn: FakeConnection) -> None:
        self.unsubscribe(conn, list(conn.subscriptions))
        self.conns.pop(conn.conn_no, None)

    # ---- delivery ------------------------------------------------------------------------
    def subscribers(self, stream: str) -> bool:
        return bool(self.index.get(stream))

    async def deliver(self, stream: str, payload: str) -> int:
        """Send one payload to every subscriber of `stream`; returns frames attempted."""
        subs = self.index.get(stream)
        if not subs:
            self.stats.frames_dropped_no_conn += 1
            return 0
        if asyncio.get_running_loop().time() < self.stall_until:
            self.stats.frames_dropped_stall += len(subs)
            return 0
        f = self.faults
        if f.drop_prob and stream.endswith(f.drop_suffix) and f.rng.random() < f.drop_prob:
            self.stats.dropped += 1
            return 0
        wrapped: str | None = None
        sent = 0
        for conn in list(subs.values()):
            if conn.closing:
                continue
            if conn.combined:
                if wrapped is None:
                    wrapped = render.combined(stream, payload)
                text = wrapped
            else:
                text = payload
            await self._send(conn, text)
            sent += 1
        return sent

    async def deliver_many(self, items: Sequence[tuple[str, str]]) -> int:
        """`deliver` for many (stream, payload) pairs, with one socket write per connection.

        The same stall, no-subscriber and `drop_prob` rules as `deliver`, and the same frames
        in the same order on each connection; they are framed here (RFC 6455 section 5.2: a
        server's text frame, unmasked) and written to each transport at once, which is what
        lets one process publish 50 k frames/s. With frame faults on (duplicates, reorders,
        NaN...) each frame goes through `deliver` instead. Waits while a client's socket
        buffer holds more than `SLOW_CLIENT_BYTES` (time counted in `slow_client_wait_s`).
        """
        if self.faults.frame_faults_on():
            return sum([await self.deliver(st, pl) for st, pl in items])
        loop = asyncio.get_running_loop()
        st, f = self.stats, self.faults
        stalled = loop.time() < self.stall_until
        drop_p, drop_suffix, rand = f.drop_prob, f.drop_suffix, f.rng.random
        out: dict[int, tuple[FakeConnection, list[bytes]]] = {}
        sent = 0
        for stream, payload in items:
            subs = self.index.get(stream)
            if not subs:
                st.frames_dropped_no_conn += 1
                continue
            if stalled:
                st.frames_dropped_stall += len(subs)
                continue
            if drop_p and stream.endswith(drop_suffix) and rand() < drop_p:
                st.dropped += 1
                continue
            wrapped: bytes | None = None
            raw: bytes | None = None
            for no, conn in subs.items():
                if conn.closing:
                    continue
                if conn.combined:
                    if wrapped is None:
                        wrapped = _ws_text_frame(render.combined(stream, payload))
                    frame = wrapped
                else:
                    if raw is None:
                        raw = _ws_text_frame(payload)
                    frame = raw
                entry = out.get(no)
                if entry is None:
                    out[no] = entry = (conn, [])
                entry[1].append(frame)
                sent += 1
        for conn, frames in out.values():
            transport = conn.request.transport
            if transport is None or transport.is_closing():
                conn.closing = True
                continue
            blob = b"".join(frames)
            transport.write(blob)
            st.frames_sent += len(frames)
            st.bytes_sent += len(blob)
            t0 = loop.time()
            while transport.get_write_buffer_size() > SLOW_CLIENT_BYTES \
                    and not transport.is_closing():
                await asyncio.sleep(0.002)
            st.slow_client_wait_s += loop.time() - t0
        return sent

    async def _send(self, conn: FakeConnection, text: str) -> None:
        f = self.faults
        frames = [text]
        if f.frame_faults_on():
            r = f.rng.random
            if f.nan_prob and r() < f.nan_prob:
                frames = [with_nan(text)]
                self.stats.nan += 1
            elif f.malformed_prob and r() < f.malformed_prob:
                frames = [truncated(text)]
                self.stats.malformed += 1
            elif f.oversized_prob and r() < f.oversized_prob:
                frames = [padded(text, f.oversized_bytes)]
                self.stats.oversized += 1
            if f.duplicate_prob and r() < f.duplicate_prob:
                frames.append(frames[0])
                self.stats.duplicated += 1
            if conn.held is not None:
                frames.append(conn.held)
                conn.held = None
            elif f.reorder_prob and r() < f.reorder_prob:
                conn.held = frames.pop(0)
                self.stats.reordered += 1
        for frame in frames:
            try:
                await conn.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                # The peer went away mid-send: the read loop will see the close.
                conn.closing = True
                return
            self.stats.frames_sent += 1
            self.stats.bytes_sent += len(frame)

    # ---- connection lifecycle ------------------------------------------------------------
    async def handle(self, request: web.Request, base: Base, combined: bool) -> web.StreamResponse:
        streams: list[str] = []
        if combined:
            q = request.query.get("streams", "")
            streams = [s for s in q.split("/") if s]
        else:
            tail = request.match_info.get("streams", "")
            streams = [s for s in tail.split("/") if s]
        ws = web.WebSocketResponse(
            autoping=False, compress=False, max_msg_size=self.config.max_incoming_bytes,
            timeout=2.0,  # close-handshake wait
        )
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        self._next_no += 1
        conn = FakeConnection(
            conn_no=self._next_no, ws=ws, base=base, combined=combined, request=request,
            opened_at=loop.time(),
        )
        self.conns[conn.conn_no] = conn
        self.stats.ws_connections += 1
        self.stats.ws_active += 1
        if streams and self.subscribe(conn, streams) is not None:
            # Bad names in the URL: refuse like a failed request (fact 4).
            await ws.close(code=1008, message=b"invalid stream")
        keeper = asyncio.create_task(self._housekeep(conn))
        try:
            await self._read(conn)
        finally:
            keeper.cancel()
            self.remove(conn)
            self.stats.ws_active -= 1
            if not ws.closed:
                await ws.close()
        return ws

    async def _read(self, conn: FakeConnection) -> None:
        ws = conn.ws
        loop = asyncio.get_running_loop()
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                now = loop.time()
                conn.incoming.append(now)
                while conn.incoming and conn.incoming[0] <= now - 1.0:
                    conn.incoming.popleft()
                if len(conn.incoming) > self.config.max_incoming_per_s:
                    # Fact 6: over 10 incoming messages per second disconnects.
                    self.stats.disconnects_rate_limit += 1
                    conn.closing = True
                    await ws.close(code=1008, message=b"Too many requests")
                    return
                await self._request(conn, msg.data)
            elif msg.type is WSMsgType.PING:
                conn.incoming.append(loop.time())
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.PONG:
                conn.last_pong = loop.time()
                self.stats.pongs_received += 1
            elif msg.type is WSMsgType.BINARY:
                continue
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return

    async def _request(self, conn: FakeConnection, text: str) -> None:
        self.stats.ws_requests += 1
        try:
            req: Any = orjson.loads(text)
        except orjson.JSONDecodeError:
            req = None
        if not isinstance(req, dict) or "method" not in req:
            self.stats.ws_request_errors += 1
            await conn.ws.send_str(render.ws_error(None, render.WS_ERROR_MISSING_METHOD))
            return
        rid = req.get("id")
        rid = rid if isinstance(rid, int) and not isinstance(rid, bool) else None
        method, params = req.get("method"), req.get("params", [])
        if not isinstance(params, list):
            params = []
        if method == "SUBSCRIBE":
            err = self.subscribe(conn, params)
        elif method == "UNSUBSCRIBE":
            self.unsubscribe(conn, [p for p in params if isinstance(p, str)])
            err = None
        elif method == "LIST_SUBSCRIPTIONS":
            await conn.ws.send_str(render.ws_ack(rid, list(conn.subscriptions)))
            return
        else:
            err = "Invalid request: unknown method"
        if err is not None:
            self.stats.ws_request_errors += 1
            await conn.ws.send_str(render.ws_error(rid, err))
        else:
            await conn.ws.send_str(render.ws_ack(rid))

    async def _housekeep(self, conn: FakeConnection) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        step = max(0.005, min(cfg.ping_interval_s, cfg.pong_timeout_s, cfg.lifetime_s, 1.0) / 4)
        ws = conn.ws
        while not ws.closed:
            await asyncio.sleep(step)
            now = loop.time()
            if now - conn.opened_at >= cfg.lifetime_s:
                self.stats.disconnects_lifetime += 1
                conn.closing = True
                await ws.close(code=1000, message=b"connection lifetime reached")
                return
            if now - conn.last_pong >= cfg.pong_timeout_s:
                self.stats.disconnects_pong_timeout += 1
                conn.closing = True
                # The peer is unresponsive: a close handshake would hang, so cut the socket.
                transport = conn.request.transport
                if transport is not None:
                    transport.abort()
                else:
                    await ws.close(code=1008, message=b"pong timeout")
                return
            if now - conn.last_ping >= cfg.ping_interval_s:
                conn.last_ping = now
                self.stats.pings_sent += 1
                try:
                    await ws.ping(str(int(now * 1000)).encode())
                except (ConnectionError, RuntimeError):
                    return

    async def drop_all(self, *, abrupt: bool = True) -> int:
        """Close every connection now; abrupt = reset the TCP stream, no close frame."""
        n = 0
        for conn in list(self.conns.values()):
            conn.closing = True
            n += 1
            self.stats.disconnects_forced += 1
            transport = conn.request.transport
            if abrupt and transport is not None:
                transport.abort()
            else:
                await conn.ws.close(code=1001, message=b"going away")
        return n
