"""The bus for synchronous readers: capture lines from a stream as a plain iterator.

`run`'s virtual clock (`engine_app.bootstrap.run_lines`) takes an ordinary iterable of
capture items. `BusLineReader` runs a `BusConsumer` on an event loop of its own in a
background thread and hands its lines over through a bounded queue (back-pressure: the
consumer fetches no further ahead than `queue_lines`), so a synchronous loop reads a stream
exactly as it reads a file. `iter_bus_capture` decodes those lines with the capture reader
itself (`engine_adapters.capture.iter_capture`, fed through an OS pipe), so a stream and a
file go through one parser and give the same `WsLine` / `RestLine` / `HealthLine` /
`CaptureProblem` values.

Gaps (retention dropped messages before this consumer read them) are counted in `stats`,
logged, and passed to `on_gap`; with `gap_symbols` each gap also becomes a `LIQUIDATION_GAP`
health line per symbol, stamped with the receive time of the line after the gap, so the
engine's records carry it (in-band: journaled and replayable like any health notice).
`skip_before_ms` drops the lines before the first one received at or after that time (a
restarted `live --from` re-reads from a little before its log's last tick and drops what that
tick already holds). Closing the reader (from any thread) ends the iteration; lines it had
already queued count as handed out, so a durable consumer resumes after them (use the async
`BusConsumer` directly where the resume point must be exact).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType

import nats
import nats.errors
import nats.js.errors

from engine_adapters.bus.consumer import BusConsumer, ConsumerStats
from engine_adapters.bus.port import SourceGap, SourceLine, health_line, recv_ms_of
from engine_adapters.bus.url import BusUrl
from engine_adapters.capture import CaptureLine, CaptureProblem, iter_capture

_END = object()


class BusLineReader:
    """Iterate the capture lines of `url`'s stream (to its end unless `follow`)."""

    def __init__(self, url: BusUrl | str, *, follow: bool = False, queue_lines: int = 20_000,
                 on_gap: Callable[[SourceGap], None] | None = None,
                 gap_symbols: Sequence[str] = (), skip_before_ms: int | None = None,
                 ephemeral: bool = False, rewind_ms: int | None = None,
                 new_start_ms: int | None = None) -> None:
        self.url = url if isinstance(url, BusUrl) else BusUrl.parse(url)
        self.follow = follow
        self.on_gap = on_gap
        self.gap_symbols = tuple(gap_symbols)
        self.skip_before_ms = skip_before_ms
        #: Lines dropped by `skip_before_ms`; gaps seen (each also counted in `stats.skipped`).
        self.skipped_lines = 0
        self.gaps = 0
        self._ephemeral, self._rewind_ms, self._new_start_ms = ephemeral, rewind_ms, new_start_ms
        self._q: queue.Queue[object] = queue.Queue(maxsize=max(1, queue_lines))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats: ConsumerStats | None = None
        self._error: BaseException | None = None

    @property
    def stats(self) -> ConsumerStats | None:
        """The consumer's counters once it has finished (None while running)."""
        return self._stats

    def __iter__(self) -> Iterator[bytes]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name=f"bus {self.url.subject}",
                                            daemon=True)
            self._thread.start()
        gap: SourceGap | None = None
        skip = self.skip_before_ms
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    break
                continue
            if item is _END:
                break
            if isinstance(item, SourceGap):
                self.gaps += 1
                if self.on_gap is not None:
                    self.on_gap(item)
                gap = item if gap is None else SourceGap(first=gap.first, last=item.last,
                                                         reason=item.reason)
                continue
            assert isinstance(item, bytes)
            if skip is not None:
                if recv_ms_of(item) < skip:
                    self.skipped_lines += 1
                    continue
                skip = None
            if gap is not None and self.gap_symbols:
                at = recv_ms_of(item)
                for sym in self.gap_symbols:
                    yield health_line(at, sym, "LIQUIDATION_GAP", gap.count)
            gap = None
            yield item
        if self._error is not None:
            raise self._error

    def idle(self) -> bool:
        """True when no line is waiting in the queue (a follower has caught up)."""
        return self._q.empty()

    def _main(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as exc:  # handed to the reading thread, raised there
            self._error = exc
        finally:
            while not self._stop.is_set():  # the end marker waits for room, unless closed
                try:
                    self._q.put(_END, timeout=0.1)
                    break
                except queue.Full:
                    continue

    async def _consume(self) -> None:
        consumer = await BusConsumer(self.url, follow=self.follow, ephemeral=self._ephemeral,
                                     rewind_ms=self._rewind_ms,
                                     new_start_ms=self._new_start_ms).start()
        pump = asyncio.create_task(self._pump(consumer))
        try:
            while not pump.done():  # a following consumer waits for ever: close() cancels it
                await asyncio.wait([pump], timeout=0.05)
                if self._stop.is_set():
                    pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        finally:
            self._stats = await consumer.close()

    async def _pump(self, consumer: BusConsumer) -> None:
        async for item in consumer.items():
            if self._stop.is_set():
                break
            while not self._put(item.data if isinstance(item, SourceLine) else item):
                if self._stop.is_set():
                    return
                await asyncio.sleep(0.005)  # queue full: the reader is behind

    def _put(self, item: object) -> bool:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            return False
        return True

    def close(self) -> None:
        """Stop the consumer (its durable position is kept) and wait for its thread."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    self._q.get_nowait()  # unblock a consumer waiting for room
                self._thread.join(timeout=0.05)

    def __enter__(self) -> BusLineReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def probe(url: BusUrl, *, timeout_s: float = 5.0) -> None:
    """Check that `url`'s server answers and holds its stream, before anything is written.

    Raises `ConnectionError` (server unreachable) or `LookupError` (no such stream), each
    naming the server and the stream.
    """
    async def check() -> None:
        try:
            nc = await nats.connect(url.server, allow_reconnect=False, connect_timeout=timeout_s,
                                    max_reconnect_attempts=0)
        except (nats.errors.Error, OSError) as exc:
            raise ConnectionError(f"{url.server}: cannot connect to the NATS server "
                                  f"({type(exc).__name__}: {exc})") from None
        try:
            await nc.jetstream().stream_info(url.stream)
        except nats.js.errors.NotFoundError:
            raise LookupError(f"{url.server}: no stream {url.stream} for subject {url.subject} "
                              f"(has a recorder published to it yet?)") from None
        finally:
            await nc.close()

    asyncio.run(check())


def iter_bus_capture(reader: BusLineReader) -> Iterator[CaptureLine | CaptureProblem]:
    """The reader's lines as capture items, decoded by `iter_capture` through a pipe."""
    r, w = os.pipe()
    failed: list[BaseException] = []

    def pump() -> None:
        try:
            with os.fdopen(w, "wb", buffering=1 << 16) as out:
                for line in reader:
                    out.write(line)
                    if reader.idle():  # nothing more in hand: hand the decoder what we have
                        out.flush()
        except BrokenPipeError:  # the reading side stopped early
            reader.close()
        except BaseException as exc:  # the consumer failed: raised in the reading thread
            failed.append(exc)

    pumper = threading.Thread(target=pump, name="bus pipe", daemon=True)
    pumper.start()
    try:
        yield from iter_capture(f"/dev/fd/{r}")
    finally:
        os.close(r)
        reader.close()
        pumper.join(timeout=5)
    if failed:
        raise failed[0]


__all__ = ["BusLineReader", "iter_bus_capture", "probe"]
