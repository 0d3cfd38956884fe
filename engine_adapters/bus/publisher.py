"""The recorder's side of the bus: capture lines published to a JetStream stream, buffered.

`BusPublisher` is a `CaptureLineSink`: `write_ws` / `write_rest` / `write_health` (the same
calls as `CaptureWriter`) only encode the line and append it to a bounded in-memory buffer,
so the recorder's receive loop never waits for the network. A background task packs the
buffer's head into messages of up to `lines_per_message` consecutive lines (the payload is
those capture lines concatenated, so a message is a piece of a capture file; a record batch in
Kafka's terms: per-message overhead in Python, not bytes, limits the rate) and sends up to
`window` messages at a time with JetStream's asynchronous publish, one future per message. A
message leaves the buffer only once the server acknowledged it. A packed message never changes
(same lines, same `Nats-Msg-Id` = `message_id` of its first line plus its line count), so
when the server was unreachable the task resends from the first unacknowledged message and
one that was stored but whose acknowledgement was lost is stored once (duplicate window).
When the buffer is full a *new* line is dropped and counted in `dropped` (never silently:
logged at the first drop and every 10 000th). `stats` says what was published, re-sent,
found duplicate, dropped and is still pending.

Order: one connection delivers in order, and a broken connection loses a suffix of what was
in flight, never a middle, so resending from the first unacknowledged message keeps the
stream in the order the lines were written.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

import attrs
import nats
import nats.errors
import nats.js.errors
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from engine_adapters.bus.port import MessageIds, health_line, rest_line, ws_line
from engine_adapters.bus.url import BusUrl

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True, slots=True)
class PublisherStats:
    """Counters of one publisher at one moment."""

    #: Lines the stream acknowledged as newly stored.
    published: int
    #: Messages (packs of lines) newly stored.
    messages: int
    #: Messages the stream acknowledged as already stored (a resend after a lost ack).
    duplicates: int
    #: Message sends that got no acknowledgement (server down, timeout) and were retried.
    resent: int
    #: Lines that could not be published: the buffer was full when they were written.
    dropped: int
    #: Lines waiting in the buffer (in flight included).
    pending: int
    #: Times the connection to the server was lost.
    disconnects: int


class BusStreamError(RuntimeError):
    """The stream of a bus URL cannot be created; the message says why and what to change."""


async def ensure_stream(js: Any, url: BusUrl) -> None:
    """Create the URL's stream with its retention settings, or check that it exists."""
    s = url.settings
    cfg = StreamConfig(name=url.stream, subjects=[url.subject], retention=RetentionPolicy.LIMITS,
                       max_age=s.max_age_s, max_bytes=s.max_bytes, storage=StorageType.FILE,
                       discard=DiscardPolicy.OLD, duplicate_window=s.dup_window_s)
    try:
        await js.add_stream(cfg)
    except nats.js.errors.BadRequestError as exc:
        # "stream name already in use with a different configuration": keep the one in place
        # (retention is the operator's call once the stream exists) and say so.
        try:
            info = await js.stream_info(url.stream)
        except nats.js.errors.NotFoundError:
            raise BusStreamError(f"{url.server}: cannot create stream {url.stream}: "
                                 f"{exc.description}") from None
        log.warning("bus: stream %s exists with other settings (%s); keeping max_age=%ss "
                    "max_bytes=%s", url.stream, exc.description, info.config.max_age,
                    info.config.max_bytes)
    except nats.js.errors.ServerError as exc:  # e.g. "insufficient storage resources"
        raise BusStreamError(f"{url.server}: cannot create stream {url.stream} with "
                             f"max_bytes={s.max_bytes}: {exc.description} (a lower max_bytes= "
                             f"in the URL, or more JetStream storage on the server)") from None


class BusPublisher:
    """Publishes capture lines to `url`'s subject from a background task; writing only queues."""

    def __init__(self, url: BusUrl | str, *, buffer_limit: int = 500_000,
                 lines_per_message: int = 64, max_message_bytes: int = 512 << 10,
                 window: int = 256, ack_timeout_s: float = 5.0,
                 retry_wait_s: float = 0.2) -> None:
        self.url = url if isinstance(url, BusUrl) else BusUrl.parse(url)
        for name, v in (("buffer_limit", buffer_limit), ("lines_per_message", lines_per_message),
                        ("max_message_bytes", max_message_bytes), ("window", window)):
            if v < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        self.buffer_limit = buffer_limit
        self.lines_per_message = lines_per_message
        self.max_message_bytes = max_message_bytes
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.retry_wait_s = retry_wait_s
        self._lines: collections.deque[tuple[bytes, str]] = collections.deque()
        self._packed: collections.deque[_Pack] = collections.deque()  # formed, unacknowledged
        self._packed_lines = 0
        self._ids = MessageIds()
        self._nc: Any = None
        self._js: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._published = self._messages = self._duplicates = self._resent = 0
        self._dropped = self._disconnects = 0
        self._closing = False

    # ------------------------------------------------------------------ writer side
    def write_ws(self, recv_ms: int, raw: str | bytes) -> None:
        self.write_line(ws_line(recv_ms, raw))

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None:
        self.write_line(rest_line(recv_ms, path, query, status, raw))

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None:
        self.write_line(health_line(recv_ms, symbol, kind, count, first=first, last=last))

    def write_line(self, line: bytes) -> None:
        """Queue one complete capture line (`\\n`-terminated); O(1), no I/O."""
        msg_id = self._ids(line)  # every written line gets its id, dropped or not
        if len(self._lines) + self._packed_lines >= self.buffer_limit:
            self._dropped += 1
            if self._dropped % 10_000 == 1:
                log.warning("bus %s: buffer full (%d lines), %d line(s) dropped so far",
                            self.url.subject, self.buffer_limit, self._dropped)
            return
        self._lines.append((line, msg_id))
        self._wake.set()

    @property
    def stats(self) -> PublisherStats:
        return PublisherStats(published=self._published, messages=self._messages,
                              duplicates=self._duplicates, resent=self._resent,
                              dropped=self._dropped,
                              pending=len(self._lines) + self._packed_lines,
                              disconnects=self._disconnects)

    @property
    def pending(self) -> int:
        return len(self._lines) + self._packed_lines

    # ------------------------------------------------------------------ background side
    async def start(self) -> BusPublisher:
        """Connect (retrying for ever on later losses), create the stream, start sending."""
        if self._task is not None:
            raise RuntimeError("BusPublisher.start() called twice")

        async def disconnected() -> None:
            if self._closing:
                return
            self._disconnects += 1
            log.warning("bus %s: disconnected from %s; buffering", self.url.subject,
                        self.url.server)

        async def reconnected() -> None:
            log.warning("bus %s: reconnected; resending %d buffered line(s)", self.url.subject,
                        self.pending)
            self._wake.set()

        async def error(exc: Exception) -> None:
            log.debug("bus %s: %s", self.url.subject, exc)

        self._nc = await nats.connect(
            self.url.server, allow_reconnect=True, max_reconnect_attempts=-1,
            reconnect_time_wait=self.retry_wait_s, disconnected_cb=disconnected,
            reconnected_cb=reconnected, error_cb=error, connect_timeout=self.ack_timeout_s)
        self._js = self._nc.jetstream(publish_async_max_pending=self.window)
        await ensure_stream(self._js, self.url)
        self._task = asyncio.create_task(self._run(), name=f"bus publish {self.url.subject}")
        return self

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued line is acknowledged (True) or `timeout_s` passed (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.pending and loop.time() < deadline:
            if self._task is None or self._task.done():
                return False
            await asyncio.sleep(0.005)
        return not self.pending

    async def close(self, drain_timeout_s: float = 10.0) -> PublisherStats:
        """Send what is buffered for up to `drain_timeout_s`, then disconnect; the counters."""
        if self._task is not None:
            await self.flush(drain_timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._nc is not None:
            self._closing = True
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._nc.close()
            self._nc = None
        if self.pending:
            log.warning("bus %s: closed with %d line(s) unpublished", self.url.subject,
                        self.pending)
        return self.stats

    async def _run(self) -> None:
        while True:
            if not self.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._nc.is_connected:
                await asyncio.sleep(self.retry_wait_s / 4)
                continue
            while len(self._packed) < self.window and self._lines:
                self._pack()
            if await self._send() == 0:
                await asyncio.sleep(self.retry_wait_s)

    def _pack(self) -> None:
        """Move the next lines into one message; it never changes after this."""
        lines: list[bytes] = []
        first_id = self._lines[0][1]
        size = 0
        while self._lines and len(lines) < self.lines_per_message:
            line = self._lines[0][0]
            if lines and size + len(line) > self.max_message_bytes:
                break
            self._lines.popleft()
            lines.append(line)
            size += len(line)
        self._packed.append(_Pack(payload=b"".join(lines), msg_id=f"{first_id}x{len(lines)}",
                                  lines=len(lines)))
        self._packed_lines += len(lines)

    async def _send(self) -> int:
        """Publish the packed messages; drop the acknowledged prefix; how many were."""
        js, subject = self._js, self.url.subject
        head = list(self._packed)
        futures: list[asyncio.Future[Any]] = []
        try:
            for pack in head:
                futures.append(await js.publish_async(subject, pack.payload,
                                                      headers={"Nats-Msg-Id": pack.msg_id}))
        except (nats.errors.Error, OSError) as exc:
            log.debug("bus %s: publish failed after %d: %s", subject, len(futures), exc)
        if futures:
            await asyncio.wait(futures, timeout=self.ack_timeout_s)
        done = 0
        for fut in futures:
            if not fut.done() or fut.cancelled() or fut.exception() is not None:
                break
            pack = self._packed.popleft()
            self._packed_lines -= pack.lines
            if fut.result().duplicate:
                self._duplicates += 1
            else:
                self._messages += 1
                self._published += pack.lines
            done += 1
        for fut in futures[done:]:  # resent from the first failure on (stored ones dedup)
            if not fut.done():
                fut.cancel()
        self._resent += len(head) - done
        return done


@attrs.frozen(slots=True, kw_only=True)
class _Pack:
    payload: bytes
    msg_id: str
    lines: int


__all__ = ["BusPublisher", "BusStreamError", "PublisherStats", "ensure_stream"]
