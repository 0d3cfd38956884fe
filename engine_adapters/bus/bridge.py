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
logged, and passed to `on_gap`. Closing the iterator early stops the consumer; lines it had
already queued count as handed out, so a durable consumer resumes after them (use the async
`BusConsumer` directly where the resume point must be exact).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from types import TracebackType

from engine_adapters.bus.consumer import BusConsumer, ConsumerStats
from engine_adapters.bus.port import SourceGap, SourceLine
from engine_adapters.bus.url import BusUrl
from engine_adapters.capture import CaptureLine, CaptureProblem, iter_capture

_END = object()


class BusLineReader:
    """Iterate the capture lines of `url`'s stream (to its end unless `follow`)."""

    def __init__(self, url: BusUrl | str, *, follow: bool = False, queue_lines: int = 20_000,
                 on_gap: Callable[[SourceGap], None] | None = None) -> None:
        self.url = url if isinstance(url, BusUrl) else BusUrl.parse(url)
        self.follow = follow
        self.on_gap = on_gap
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
        while True:
            item = self._q.get()
            if item is _END:
                break
            if isinstance(item, SourceGap):
                if self.on_gap is not None:
                    self.on_gap(item)
                continue
            assert isinstance(item, bytes)
            yield item
        if self._error is not None:
            raise self._error

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
        consumer = await BusConsumer(self.url, follow=self.follow).start()
        try:
            async for item in consumer.items():
                if self._stop.is_set():
                    break
                while not self._put(item.data if isinstance(item, SourceLine) else item):
                    if self._stop.is_set():
                        return
                    await asyncio.sleep(0.005)  # queue full: the reader is behind
        finally:
            self._stats = await consumer.close()

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


def iter_bus_capture(reader: BusLineReader) -> Iterator[CaptureLine | CaptureProblem]:
    """The reader's lines as capture items, decoded by `iter_capture` through a pipe."""
    r, w = os.pipe()
    failed: list[BaseException] = []

    def pump() -> None:
        try:
            with os.fdopen(w, "wb", buffering=1 << 16) as out:
                for line in reader:
                    out.write(line)
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


__all__ = ["BusLineReader", "iter_bus_capture"]
