"""The quarantine file: rejected input, one JSON object per line, with why it was refused.

SPEC section 4: bad network input never reaches the core and never stops the engine; it is
counted and kept here for inspection. One line per entry:

    {"recv_ms": 1771263510195, "source": "ws", "reason": "missing key 'p'", "field": "p",
     "line_no": null, "raw": "<the offending text>"}

`raw` is cut to `MAX_RAW_CHARS` characters and then carries `"raw_truncated": true`, so one
huge frame cannot fill the disk. The writer counts entries by reason (the reason's head, so
"price must be > 0, got -1.0" and "..., got -2.0" count together) and stops writing, while
still counting, once the file reaches `max_bytes`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

import attrs
import orjson

from engine_adapters.capture import CaptureProblem, open_capture

#: Longest `raw` text kept per entry.
MAX_RAW_CHARS = 4096
#: Known sources; other strings are allowed (a new adapter may add its own).
SOURCE_WS = "ws"
SOURCE_REST = "rest"
SOURCE_CAPTURE = "capture"
SOURCE_CORE = "core"


@attrs.frozen(kw_only=True, slots=True)
class QuarantineEntry:
    """One refused input: when it arrived, from where, why, and the text itself."""

    recv_ms: int
    #: "ws", "rest", "capture" (a bad capture line) or "core" (refused by the normalizer).
    source: str
    reason: str
    #: The offending key (`p`, `o.ap`, `recv_ms`), or "" when the whole input was bad.
    field: str = ""
    #: Line number in the capture being replayed; None for live input.
    line_no: int | None = None
    raw: str = ""
    raw_truncated: bool = False


def reason_key(reason: str) -> str:
    """The part of a reason that names the rule, without the offending value."""
    for sep in (", got ", ": "):
        head, found, _ = reason.partition(sep)
        if found:
            reason = head
    return reason


class QuarantineWriter:
    """Appends entries to a quarantine file; counts them by reason. Flushes about once a second."""

    __slots__ = ("_bytes", "_clock", "_f", "_interval", "_last_flush", "counts", "dropped",
                 "max_bytes", "path")

    def __init__(self, path: str | Path, *, max_bytes: int = 1 << 30,
                 flush_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self._f: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        self._bytes = self.path.stat().st_size
        self.max_bytes = max_bytes
        self._interval = flush_interval_s
        self._clock = clock
        self._last_flush = clock()
        #: Entries seen this session by `reason_key(reason)`, including dropped ones.
        self.counts: Counter[str] = Counter()
        #: Entries not written because the file reached `max_bytes`.
        self.dropped = 0

    def write(self, entry: QuarantineEntry) -> None:
        """Append one entry (its `raw` cut to `MAX_RAW_CHARS`)."""
        if self._f is None:
            raise ValueError(f"quarantine file {self.path} is closed")
        self.counts[reason_key(entry.reason)] += 1
        raw = entry.raw
        truncated = entry.raw_truncated or len(raw) > MAX_RAW_CHARS
        doc: dict[str, object] = {
            "recv_ms": entry.recv_ms, "source": entry.source, "reason": entry.reason,
            "field": entry.field, "line_no": entry.line_no, "raw": raw[:MAX_RAW_CHARS]}
        if truncated:
            doc["raw_truncated"] = True
        try:
            data = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError:  # lone surrogates in text decoded from bad bytes
            doc["raw"] = raw[:MAX_RAW_CHARS].encode("utf-8", "replace").decode("utf-8")
            doc["reason"] = entry.reason.encode("utf-8", "replace").decode("utf-8")
            data = orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)
        if self._bytes + len(data) > self.max_bytes:
            self.dropped += 1
            return
        self._f.write(data)
        self._bytes += len(data)
        if self._clock() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()
            self._last_flush = self._clock()

    def summary(self) -> Mapping[str, int]:
        """Counts by reason, largest first (ties by reason, so the order is stable)."""
        return dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def close(self) -> None:
        if self._f is not None:
            try:
                self._f.flush()
            finally:
                self._f.close()
                self._f = None

    def __enter__(self) -> QuarantineWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _entry(doc: object) -> QuarantineEntry | str:
    if type(doc) is not dict:
        return "a quarantine line must be a JSON object"
    want = (("recv_ms", int), ("source", str), ("reason", str), ("field", str), ("raw", str))
    for key, typ in want:
        if type(doc.get(key)) is not typ:
            return f"missing or ill-typed key {key!r}"
    line_no = doc.get("line_no")
    if line_no is not None and type(line_no) is not int:
        return "'line_no' must be an integer or null"
    return QuarantineEntry(recv_ms=doc["recv_ms"], source=doc["source"], reason=doc["reason"],
                           field=doc["field"], line_no=line_no, raw=doc["raw"],
                           raw_truncated=doc.get("raw_truncated") is True)


def read_quarantine(path: str | Path) -> Iterator[QuarantineEntry | CaptureProblem]:
    """Stream a quarantine file's entries; a bad line is a `CaptureProblem`, not an error."""
    with open_capture(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                got = _entry(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                got = f"not JSON: {exc}"
            if isinstance(got, str):
                yield CaptureProblem(line_no=line_no, reason=got,
                                     text=line[:MAX_RAW_CHARS].decode("utf-8", "replace"))
            else:
                yield got


__all__ = [
    "MAX_RAW_CHARS",
    "SOURCE_CAPTURE",
    "SOURCE_CORE",
    "SOURCE_REST",
    "SOURCE_WS",
    "QuarantineEntry",
    "QuarantineWriter",
    "read_quarantine",
    "reason_key",
]
