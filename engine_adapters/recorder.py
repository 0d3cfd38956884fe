"""The crash-safe recorder: capture lines in UTC-hour files, written as whole gzip members.

Binance publishes no liquidation history, so a recording is the only copy there will ever
be (issue 12): a crash must cost seconds, not the file. Three rules make that so:

* **Whole members.** Each flush compresses the buffered lines into one complete gzip member
  (RFC 1952 section 2.2: a gzip file is a series of members) and hands it to the OS. A
  SIGKILL can tear at most the member being written; every member before it is complete,
  and `capture_files.LineSource` reads them all and reports the torn rest.
* **Flushed every second.** A flush happens when `flush_interval_ms` has passed on the
  injected clock since the last one (checked on every write and on `poll()`, which the shell
  calls from its tick timer), or when the buffer passes `buffer_bytes`. So a crash loses at
  most the last interval (one second by default) — in the process; with `fsync=True` each
  member is also forced to disk, which covers a power loss too.
* **A new file per hour and per start.** A line goes to the file of the UTC hour of its
  `recv_ms` (`PREFIX-YYYYMMDDTHH.jsonl.gz`); a line whose hour is earlier than the open
  file's (the clock stepped back) stays in the open file, so names only move forward. Files
  are created with O_EXCL: a restart within the same hour opens `...THH-1.jsonl.gz` (then
  `-2`, ...), never appending behind a tail the crash may have torn. `poll()` also closes
  the file once the clock has left its hour, so a finished hour is complete on disk.

Lines are the capture format of `capture.py`, built by its `ws_doc`/`rest_doc`/`health_doc`
and `encode_line` (one serialization for every writer). The write methods match
`CaptureWriter`'s, so the shell can use either.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from engine_adapters.capture import encode_line, health_doc, rest_doc, ws_doc
from engine_adapters.capture_files import HOUR_MS, hour_file_name

ClockMs = Callable[[], int]

#: How many same-hour restarts are tried before giving up (a sign of a wrong folder).
MAX_RESTARTS = 10_000


class RecorderError(Exception):
    """The recorder cannot create its next file; the message names the folder and why."""


class Recorder:
    """Writes capture lines into hour files under `directory`; flushes whole gzip members."""

    __slots__ = ("_buf", "_buf_bytes", "_closed", "_f", "_hour", "_last_flush", "buffer_bytes",
                 "clock_ms", "compress", "compresslevel", "directory", "files", "flush_interval_ms",
                 "fsync", "lines_flushed", "lines_written", "members_written", "path",
                 "prefix")

    def __init__(self, directory: str | Path, prefix: str, *, clock_ms: ClockMs,
                 flush_interval_ms: int = 1000, buffer_bytes: int = 1 << 20,
                 compress: bool = True, compresslevel: int = 6, fsync: bool = False) -> None:
        if not prefix or "/" in prefix or os.sep in prefix:
            raise ValueError(f"recorder prefix must be a plain file-name part, got {prefix!r}")
        if flush_interval_ms <= 0 or flush_interval_ms > 1000:
            raise ValueError(f"flush_interval_ms must be in 1..1000 (a crash may lose at most "
                             f"one second), got {flush_interval_ms}")
        self.directory = Path(directory)
        self.prefix = prefix
        self.clock_ms = clock_ms
        self.flush_interval_ms = flush_interval_ms
        self.buffer_bytes = buffer_bytes
        self.compress = compress
        self.compresslevel = compresslevel
        self.fsync = fsync
        self.directory.mkdir(parents=True, exist_ok=True)
        self._f: IO[bytes] | None = None
        self._hour = -1
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._last_flush = clock_ms()
        self._closed = False
        #: Every file this recorder created, in order.
        self.files: list[Path] = []
        #: The file being written (None before the first line and after an hour ended).
        self.path: Path | None = None
        #: Lines accepted (buffered or flushed) and lines in members handed to the OS. Only
        #: `lines_flushed` may be promised to survive a crash: an hour rotation flushes the old
        #: file *before* the line that opened the new one, which is still only buffered.
        self.lines_written = 0
        self.lines_flushed = 0
        self.members_written = 0

    # ---- the CaptureWriter interface -----------------------------------------------------
    def write_ws(self, recv_ms: int, raw: str | bytes) -> None:
        """Record one WebSocket frame exactly as received, with its local receive time."""
        self._add(recv_ms, encode_line(ws_doc(recv_ms, raw)))

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None:
        """Record one REST response body with the request's path, query and HTTP status."""
        self._add(recv_ms, encode_line(rest_doc(recv_ms, path, query, status, raw)))

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None:
        """Record a data-health notice of the recording shell (HealthKind name)."""
        self._add(recv_ms, encode_line(health_doc(recv_ms, symbol, kind, count,
                                                  first=first, last=last)))

    def flush(self) -> None:
        """Write the buffered lines as one complete gzip member and push it to the OS."""
        if self._buf and self._f is not None:
            data = b"".join(self._buf)
            if self.compress:
                data = gzip.compress(data, compresslevel=self.compresslevel, mtime=0)
            self._f.write(data)
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())
            self.members_written += 1
            self.lines_flushed += len(self._buf)
            self._buf.clear()
            self._buf_bytes = 0
        self._last_flush = self.clock_ms()

    def poll(self) -> None:
        """Timer hook (call at least once a second): flush when due; end a finished hour."""
        now = self.clock_ms()
        if now - self._last_flush >= self.flush_interval_ms:
            self.flush()
        if self._f is not None and now // HOUR_MS > self._hour:
            self._end_file()
            self._hour = now // HOUR_MS  # a late line of the old hour goes forward, not back

    def close(self) -> None:
        """Flush and close; closing twice is harmless. Writing after close is an error."""
        if self._closed:
            return
        self._closed = True
        self._end_file()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------
    def _add(self, recv_ms: int, line: bytes) -> None:
        if self._closed:
            raise ValueError(f"recorder {self.directory}/{self.prefix}-* is closed")
        hour = recv_ms // HOUR_MS
        if hour > self._hour or self._f is None:
            if self._f is not None:
                self._end_file()
            self._open(max(hour, self._hour))
        self._buf.append(line)
        self._buf_bytes += len(line)
        self.lines_written += 1
        if self._buf_bytes >= self.buffer_bytes or \
                self.clock_ms() - self._last_flush >= self.flush_interval_ms:
            self.flush()

    def _open(self, hour: int) -> None:
        for restart in range(MAX_RESTARTS):
            name = hour_file_name(self.prefix, hour * HOUR_MS, restart, gz=self.compress)
            path = self.directory / name
            try:
                # "xb": O_CREAT|O_EXCL — an existing file (a crash's torn one) is never reused.
                self._f = open(path, "xb")  # noqa: SIM115 - closed in _end_file()
            except FileExistsError:
                continue
            except OSError as exc:
                raise RecorderError(f"cannot create capture file {path}: {exc}") from exc
            self._hour = hour
            self.path = path
            self.files.append(path)
            return
        raise RecorderError(f"{self.directory} already holds {MAX_RESTARTS} files for hour "
                            f"{hour_file_name(self.prefix, hour * HOUR_MS)}: wrong folder?")

    def _end_file(self) -> None:
        if self._f is None:
            return
        try:
            self.flush()
        finally:
            self._f.close()
            self._f = None
            self.path = None


__all__ = ["MAX_RESTARTS", "ClockMs", "Recorder", "RecorderError"]
