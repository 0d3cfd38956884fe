"""Where `live` and `capture` record: hour files or one file, and a writer thread for them.

`open_recording` picks the writer (a folder -> the crash-safe hour files of
`engine_adapters.recorder.Recorder`, a `.jsonl[.gz]` name -> one `CaptureWriter` file).

`RecordingThread` runs such a writer on one worker thread, so the gzip work of a flush
(a 1 MiB member at level 6 takes 5 to 20 ms, far more on a loaded box) never holds up the
event loop and the tick timer: `zlib` releases the GIL while it compresses. Calls are queued
and carried out in the order they were made, so the file holds the lines in exactly the
order the shell ingested them (what makes `run` of the capture replay the session). The
queue is bounded (`max_lines` lines queued and not yet written): a disk that stalls makes
the caller wait rather than memory grow. A writer error (disk full, a folder that vanished)
is raised by the next call, and by `close()`. A crash loses what is queued as well as what
the writer buffers: the queue normally holds one tick of frames (the thread keeps up), so
a crash still costs about a second.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from engine_adapters.capture import CaptureWriter
from engine_adapters.recorder import Recorder

#: What `capture --out` / `live --capture` write: hour files, or one file for a file name.
Recording = Recorder | CaptureWriter
#: File names that mean "one capture file" rather than "a folder of hour files".
SINGLE_FILE_SUFFIXES = (".jsonl", ".jsonl.gz")


def wall_ms() -> int:
    """The wall clock in epoch ms: the receive times of frames and the recorder's hours."""
    return time.time_ns() // 1_000_000


def open_recording(out: Path, prefix: str = "capture", *,
                   clock_ms: Callable[[], int] = wall_ms) -> Recording:
    """A folder `out` -> crash-safe hour files `out/PREFIX-YYYYMMDDTHH[-N].jsonl.gz`;
    a name ending in .jsonl or .jsonl.gz -> that one file (no rotation; for short runs)."""
    if out.name.endswith(SINGLE_FILE_SUFFIXES):
        return CaptureWriter(out)
    return Recorder(out, prefix, clock_ms=clock_ms)


def poll_recording(rec: Recording | RecordingThread) -> None:
    """The timer hook: flush what is due (and end a finished hour of a Recorder)."""
    if isinstance(rec, Recorder | RecordingThread):
        rec.poll()
    else:
        rec.flush()


class RecordingError(Exception):
    """The writer thread failed; the message names the writer, the cause is chained."""


#: A queued call and the number of lines it writes (None ends the thread).
_Job = tuple[Callable[[], None], int] | None


class RecordingThread:
    """A `Recording` driven from one worker thread, in call order (see the module doc)."""

    def __init__(self, rec: Recording, *, max_lines: int = 200_000) -> None:
        self.rec = rec
        self.max_lines = max_lines
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._queued = 0  # lines queued and not yet written
        self._room = threading.Condition()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="recording", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        jobs, room = self._jobs, self._room
        while (item := jobs.get()) is not None:
            job, lines = item
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # handed to the caller's thread
                    self._error = exc
            with room:
                self._queued -= lines
                room.notify()

    def _check(self) -> None:
        if self._error is not None:
            raise RecordingError(f"recording {self._where()} failed: {self._error}") \
                from self._error
        if self._closed:
            raise RecordingError(f"recording {self._where()} is closed")

    def _where(self) -> str:
        rec = self.rec
        return f"{rec.directory}/{rec.prefix}-*" if isinstance(rec, Recorder) else str(rec.path)

    def _put(self, job: Callable[[], None], lines: int = 1) -> None:
        self._check()
        room = self._room
        with room:  # wait while `max_lines` are queued: memory stays bounded
            while self._queued >= self.max_lines and self._error is None:
                room.wait(0.1)
            self._queued += lines
        self._jobs.put((job, lines))

    # ---- the Recording interface -----------------------------------------------------------
    def write_ws_many(self, frames: Sequence[tuple[int, str]]) -> None:
        """Record `(recv_ms, text)` frames in order (one queued job for all of them)."""
        write = self.rec.write_ws

        def job() -> None:
            for recv_ms, text in frames:
                write(recv_ms, text)

        self._put(job, len(frames))

    def write_ws(self, recv_ms: int, raw: str | bytes) -> None:
        self._put(lambda: self.rec.write_ws(recv_ms, raw))

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None:
        self._put(lambda: self.rec.write_rest(recv_ms, path, query, status, raw))

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None:
        self._put(lambda: self.rec.write_health(recv_ms, symbol, kind, count, first=first,
                                                last=last))

    def poll(self) -> None:
        """Flush what is due (a Recorder also ends a finished hour), on the thread."""
        rec = self.rec
        self._put(rec.poll if isinstance(rec, Recorder) else rec.flush, 0)

    @property
    def lines_written(self) -> int:
        """Lines the writer has taken so far (queued ones not yet)."""
        return self.rec.lines_written

    def close(self) -> None:
        """Carry out every queued call, close the writer, stop the thread; raise its error
        (again on every later call: a failed recording is never passed off as complete)."""
        if not self._closed:
            self._closed = True
            self._jobs.put((self.rec.close, 0))
            self._jobs.put(None)
            self._thread.join()
        if self._error is not None:
            raise RecordingError(f"recording {self._where()} failed: {self._error}") \
                from self._error

    def __enter__(self) -> RecordingThread:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["SINGLE_FILE_SUFFIXES", "Recording", "RecordingError", "RecordingThread",
           "open_recording", "poll_recording", "wall_ms"]
