"""The capture writer: appends capture lines (SPEC section 6) to a new file, crash-tolerant.

The writer flushes at least once per `flush_interval_s` of its clock, so a killed capture loses
at most about the last second; gzip output is sync-flushed, so a truncated file still decodes
up to the last flush. The line builders (`ws_doc`, `rest_doc`, `health_doc`, `encode_line`)
are shared with the rotating recorder, so both write the same bytes. `engine_adapters.capture`
re-exports everything here.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import orjson


class CaptureWriter:
    """Appends capture lines to a new file (gzip when the name ends with `.gz`).

    Lines are buffered and written out when `flush_interval_s` has passed on `clock` since the
    last flush, when the buffer passes `buffer_bytes`, on `flush()` and on `close()`. Call
    `flush()` from a timer too if messages may stop arriving: the writer has no thread.
    """

    __slots__ = ("_buf", "_buf_bytes", "_buffer_limit", "_clock", "_f", "_interval",
                 "_last_flush", "lines_written", "path")

    def __init__(self, path: str | Path, *, flush_interval_s: float = 1.0,
                 buffer_bytes: int = 1 << 20, compresslevel: int = 6,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._f: IO[bytes] | gzip.GzipFile | None
        if self.path.name.endswith(".gz"):
            self._f = gzip.GzipFile(self.path, "wb", compresslevel=compresslevel)
        else:
            self._f = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._buf: list[bytes] = []
        self._buf_bytes = 0
        self._buffer_limit = buffer_bytes
        self._interval = flush_interval_s
        self._clock = clock
        self._last_flush = clock()
        self.lines_written = 0

    def write_ws(self, recv_ms: int, raw: str | bytes) -> None:
        """Record one WebSocket frame exactly as received, with its local receive time."""
        self._add(ws_doc(recv_ms, raw))

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None:
        """Record one REST response body with the request's path, query and HTTP status."""
        self._add(rest_doc(recv_ms, path, query, status, raw))

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None:
        """Record a data-health notice of the recording shell (HealthKind name)."""
        self._add(health_doc(recv_ms, symbol, kind, count, first=first, last=last))

    def _add(self, doc: dict[str, object]) -> None:
        if self._f is None:
            raise ValueError(f"capture {self.path} is closed")
        self._buf.append(data := encode_line(doc))
        self._buf_bytes += len(data)
        self.lines_written += 1
        if self._buf_bytes >= self._buffer_limit or \
                self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Write buffered lines and push them to the OS (gzip: a sync flush point)."""
        if self._f is None:
            return
        if self._buf:
            self._f.write(b"".join(self._buf))
            self._buf.clear()
            self._buf_bytes = 0
        self._f.flush()
        self._last_flush = self._clock()

    def close(self) -> None:
        """Flush and close; closing twice is harmless."""
        if self._f is None:
            return
        try:
            self.flush()
        finally:
            self._f.close()
            self._f = None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def ws_doc(recv_ms: int, raw: str | bytes) -> dict[str, object]:
    """The capture line of one WebSocket frame, as a dict (`encode_line` makes the bytes)."""
    return {"recv_ms": recv_ms, "channel": "ws", "raw": _as_text(raw)}


def rest_doc(recv_ms: int, path: str, query: str, status: int, raw: str | bytes) -> dict[str, Any]:
    """The capture line of one REST answer, as a dict."""
    return {"recv_ms": recv_ms, "channel": "rest", "path": path, "query": query, "status": status,
            "raw": _as_text(raw)}


def health_doc(recv_ms: int, symbol: str, kind: str, count: int = 0, *,
               first: int | None = None, last: int | None = None) -> dict[str, object]:
    """The capture line of one health notice, as a dict (first/last only for a range)."""
    doc: dict[str, object] = {"recv_ms": recv_ms, "channel": "health", "symbol": symbol,
                              "kind": kind, "count": count}
    if first is not None and last is not None:
        doc["first"], doc["last"] = first, last
    return doc


def encode_line(doc: dict[str, object]) -> bytes:
    """One capture line: compact JSON plus newline (the one serialization of every writer)."""
    if type(doc["recv_ms"]) is not int:
        raise TypeError(f"recv_ms must be an int, got {type(doc['recv_ms']).__name__}")
    try:
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        # Only a str with lone surrogates gets here; keep the frame, mark what was lost.
        doc["raw"] = str(doc["raw"]).encode("utf-8", "replace").decode("utf-8")
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)


def _as_text(raw: str | bytes) -> str:
    # Binance sends text frames (UTF-8); bytes are decoded so the line stays valid JSON.
    if isinstance(raw, str):
        return raw
    return bytes(raw).decode("utf-8", "replace")
