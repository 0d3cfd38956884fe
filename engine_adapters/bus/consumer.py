"""The engine's side of the bus: a durable pull consumer yielding capture lines in stream order.

`BusConsumer.items()` is a `CaptureLineSource`: it yields `SourceLine(position=stream seq,
index=line in the message, data=capture line bytes)` strictly in stream order, and a
`SourceGap` value where sequences are missing (the stream's retention removed them before this
consumer got there). It fetches in batches from a durable JetStream pull consumer
(`AckPolicy.ALL`) and acknowledges a batch when the caller asks for the line after it, i.e.
once every line of it was handled. `close()` acknowledges up to the last message handed out
completely and, when it stops inside a message (one message packs several lines), stores
`seq:lines handed out` under the durable's name in the KV bucket `CAPTURE_CURSORS`. So a
consumer started again with the same durable name resumes right after the last line the
previous one handed out, inside a message too.

Resuming exactly: if the durable consumer has delivered messages it has no acknowledgement
for (the previous process was killed mid-batch), the server would redeliver them only after
the ack wait, out of order with the new ones. So at start-up such a consumer is re-created at
its acknowledgement floor + 1 (`DeliverPolicy.BY_START_SEQUENCE`): every line comes again in
order, none twice. A graceful stop therefore resumes exactly; a killed one re-reads at most the
unacknowledged batch. One process per durable name: two processes sharing one would split
the stream between them.

Where to start, when the durable name is new: `start_seq` (`seq=N`), `start_ms`
(`start=ISO8601`, `DeliverPolicy.BY_START_TIME`, JetStream's own timestamps), else the first
message kept. `follow=False` (offline `run`) ends at the stream's last sequence as of start;
`follow=True` (`live`) waits for new messages for ever. `new_start_ms` places a new durable
at that time when the URL gives no start (`live --from` follows from now, not from a week
ago). `rewind_ms` re-creates the durable at that time whatever its position (a restarted
`live --from` re-reads from its log's last tick). `ephemeral=True` deletes the consumer at
`close()` (and the server removes a killed one after an hour idle): `run nats://...` without
`durable=` reads the stream afresh every time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

import attrs
import nats
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from engine_adapters.bus.port import SourceGap, SourceLine
from engine_adapters.bus.url import BusUrl

log = logging.getLogger(__name__)

#: KV bucket holding, per durable consumer, where inside a message a graceful stop left off.
CURSOR_BUCKET = "CAPTURE_CURSORS"


@attrs.frozen(kw_only=True, slots=True)
class ConsumerStats:
    """Counters of one consumer at one moment."""

    #: Lines handed out.
    lines: int
    #: Stream messages (sequences) skipped because retention had removed them.
    skipped: int
    #: Redelivered messages dropped because they were already handed out.
    redelivered: int
    #: The stream sequence of the next line expected (0 until the first line).
    next_seq: int


class BusConsumer:
    """Reads `url`'s stream through the durable consumer `url.durable`."""

    def __init__(self, url: BusUrl | str, *, follow: bool = False, batch: int = 2000,
                 fetch_timeout_s: float = 1.0, ack_wait_s: float = 300.0,
                 ephemeral: bool = False, rewind_ms: int | None = None,
                 new_start_ms: int | None = None) -> None:
        self.url = url if isinstance(url, BusUrl) else BusUrl.parse(url)
        self.follow = follow
        self.ephemeral = ephemeral
        self.rewind_ms = rewind_ms
        self.new_start_ms = new_start_ms
        self.batch = batch
        self.fetch_timeout_s = fetch_timeout_s
        self.ack_wait_s = ack_wait_s
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._unacked: Any = None  # the last message handed out completely, not acknowledged
        self._partial: tuple[int, int] | None = None  # (seq, lines handed out) mid-message
        self._skip: tuple[int, int] | None = None  # resume inside message seq: skip n lines
        self._kv: Any = None
        self._expected = 0  # the stream sequence of the next line; 0 = take the first
        self._lines = self._skipped = self._redelivered = 0

    @property
    def stats(self) -> ConsumerStats:
        return ConsumerStats(lines=self._lines, skipped=self._skipped,
                             redelivered=self._redelivered, next_seq=self._expected)

    async def start(self) -> BusConsumer:
        """Connect and bind to (or create) the durable consumer at its resume point."""
        self._nc = await nats.connect(self.url.server, allow_reconnect=True,
                                      max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        self._js = self._nc.jetstream()
        url = self.url
        try:
            await self._js.stream_info(url.stream)
        except nats.js.errors.NotFoundError:
            await self._nc.close()
            raise LookupError(f"{url.server}: no stream {url.stream} for subject {url.subject} "
                              f"(has a recorder published to it yet?)") from None
        cfg = await self._resume_config()
        self._sub = await self._js.pull_subscribe(url.subject, durable=url.durable,
                                                  stream=url.stream, config=cfg)
        await self._read_cursor()
        return self

    @property
    def _cursor_key(self) -> str:
        return f"{self.url.stream}.{self.url.durable}"

    async def _read_cursor(self) -> None:
        try:
            self._kv = await self._js.key_value(CURSOR_BUCKET)
        except nats.js.errors.BucketNotFoundError:
            self._kv = await self._js.create_key_value(bucket=CURSOR_BUCKET, history=1)
        try:
            entry = await self._kv.get(self._cursor_key)
        except nats.js.errors.KeyNotFoundError:
            return
        seq, _, n = (entry.value or b"").decode().partition(":")
        if seq.isdigit() and n.isdigit() and int(seq) == self._expected and int(n) > 0:
            self._skip = (int(seq), int(n))

    async def _resume_config(self) -> ConsumerConfig:
        """The config to create the durable with, after removing a half-acknowledged one."""
        url = self.url
        try:
            info = await self._js.consumer_info(url.stream, url.durable)
        except nats.js.errors.NotFoundError:
            info = None
        if self.rewind_ms is not None:
            if info is not None:
                await self._js.delete_consumer(url.stream, url.durable)
            return self._config(DeliverPolicy.BY_START_TIME, time=_utc(self.rewind_ms))
        if info is not None:
            acked = info.ack_floor.stream_seq if info.ack_floor else 0
            delivered = info.delivered.stream_seq if info.delivered else 0
            if url.start_seq is not None or url.start_ms is not None:
                log.warning("bus: durable consumer %s exists; it resumes after sequence %d "
                            "(start=/seq= only place a new durable name)", url.durable, acked)
            if delivered <= acked:
                self._expected = acked + 1 if acked else 0
                bound: ConsumerConfig = info.config  # as it is: resumes at acked + 1 itself
                return bound
            await self._js.delete_consumer(url.stream, url.durable)
            if acked:
                self._expected = acked + 1
                return self._config(DeliverPolicy.BY_START_SEQUENCE, seq=acked + 1)
            old = info.config
            return self._config(old.deliver_policy or DeliverPolicy.ALL, seq=old.opt_start_seq,
                                time=old.opt_start_time)
        if url.start_seq is not None:
            self._expected = url.start_seq
            return self._config(DeliverPolicy.BY_START_SEQUENCE, seq=url.start_seq)
        start_ms = url.start_ms if url.start_ms is not None else self.new_start_ms
        if start_ms is not None:
            return self._config(DeliverPolicy.BY_START_TIME, time=_utc(start_ms))
        self._expected = 1
        return self._config(DeliverPolicy.ALL)

    def _config(self, policy: DeliverPolicy, *, seq: int | None = None,
                time: dt.datetime | None = None) -> ConsumerConfig:
        if policy == DeliverPolicy.BY_START_SEQUENCE and seq is not None:
            self._expected = seq
        elif policy == DeliverPolicy.ALL:
            self._expected = 1
        return ConsumerConfig(durable_name=self.url.durable, name=self.url.durable,
                              deliver_policy=policy, opt_start_seq=seq, opt_start_time=time,
                              ack_policy=AckPolicy.ALL, ack_wait=self.ack_wait_s,
                              max_ack_pending=-1, filter_subject=self.url.subject,
                              inactive_threshold=3600.0 if self.ephemeral else None)

    async def items(self) -> AsyncIterator[SourceLine | SourceGap]:
        """Lines in stream order, and gaps as values; ends at the last seq unless following."""
        if self._sub is None:
            await self.start()
        end = None
        if not self.follow:
            end = (await self._js.stream_info(self.url.stream)).state.last_seq
        while end is None or self._expected == 0 or self._expected <= end:
            await self._ack()
            try:
                msgs = await self._sub.fetch(self.batch, timeout=self.fetch_timeout_s)
            except (nats.errors.TimeoutError, TimeoutError):
                if end is not None and self._expected == 0:
                    break  # nothing at or after the start time
                if end is not None:
                    first = (await self._js.stream_info(self.url.stream)).state.first_seq
                    if self._expected and first > end:
                        # everything up to the end was removed while we waited
                        yield self._gap(self._expected, end)
                        self._expected = end + 1
                continue
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if self._expected and seq < self._expected:
                    self._redelivered += 1
                    continue
                if self._expected and seq > self._expected:
                    yield self._gap(self._expected, seq - 1)
                self._expected = seq + 1
                skip = self._skip[1] if self._skip is not None and self._skip[0] == seq else 0
                self._skip = None
                for i, line in enumerate(msg.data.splitlines(keepends=True)):
                    if i < skip:
                        continue
                    self._partial = (seq, i + 1)
                    self._lines += 1
                    yield SourceLine(position=seq, index=i, data=line)
                self._partial = None
                self._unacked = msg
                if end is not None and seq >= end:
                    break
        await self._ack()

    async def lines(self) -> AsyncIterator[bytes]:
        """Only the capture lines (gaps are counted in `stats.skipped` and logged)."""
        async for item in self.items():
            if isinstance(item, SourceLine):
                yield item.data

    def _gap(self, first: int, last: int) -> SourceGap:
        gap = SourceGap(first=first, last=last,
                        reason=f"stream {self.url.stream} no longer holds messages "
                               f"{first}..{last} (removed by its retention limits before "
                               f"consumer {self.url.durable} read them)")
        self._skipped += gap.count
        log.warning("bus: skipped %d line(s): %s", gap.count, gap.reason)
        return gap

    async def _ack(self) -> None:
        msg = self._unacked
        if msg is not None:
            await msg.ack_sync()  # AckPolicy.ALL: acknowledges every line up to this one
            self._unacked = None  # only now: a cancelled ack is sent again by close()

    async def close(self) -> ConsumerStats:
        """Acknowledge what was handed out and disconnect; the durable position stays."""
        if self._nc is not None:
            with contextlib.suppress(nats.errors.Error, OSError, asyncio.TimeoutError):
                await self._ack()
                if self.ephemeral:
                    await self._js.delete_consumer(self.url.stream, self.url.durable)
                elif self._kv is not None:
                    cursor = f"{self._partial[0]}:{self._partial[1]}" if self._partial else ""
                    await self._kv.put(self._cursor_key, cursor.encode())
            with contextlib.suppress(nats.errors.Error, OSError):
                await self._nc.close()
            self._nc = self._sub = None
        return self.stats


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


__all__ = ["CURSOR_BUCKET", "BusConsumer", "ConsumerStats"]
