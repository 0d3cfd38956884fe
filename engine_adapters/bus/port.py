"""The bus port: a sink and a source of capture lines, and the bytes that travel on it.

Any transport that carries capture lines plugs in here. A **sink** is what a recorder writes
to (`engine_adapters.capture.CaptureWriter` is one, `BusPublisher` another); a **source** is
what an engine reads from (`FileLineSource` over a capture file, `BusConsumer` over a
stream). Both speak the capture format itself: one line is the exact bytes
`CaptureWriter` appends to a file (`docs/capture-format.md`), `\\n` included, so a stream
read to its end concatenates to the capture file of the same messages, byte for byte.

A Kafka adapter would implement the same two Protocols (see `docs/scale-out.md`).

Message ids: `message_id(line, occurrence)` is a pure function of the line's bytes (its
receive time and a BLAKE2b digest) and of how many identical lines came before it in the same
millisecond, so a publisher that re-sends after a lost acknowledgement, or two recorder
processes fed the same bytes, give JetStream the same `Nats-Msg-Id` and it stores one copy.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import attrs
import orjson

from engine_adapters.capture import encode_line, health_doc, open_capture, rest_doc, ws_doc


@runtime_checkable
class CaptureLineSink(Protocol):
    """Where a recorder puts raw messages (the three kinds of capture line). Never blocks."""

    def write_ws(self, recv_ms: int, raw: str | bytes) -> None: ...

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None: ...

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None: ...


class TeeSink:
    """One `CaptureLineSink` writing every line to several (a file and a bus, say), in order."""

    def __init__(self, *sinks: CaptureLineSink) -> None:
        self.sinks = sinks

    def write_ws(self, recv_ms: int, raw: str | bytes) -> None:
        for s in self.sinks:
            s.write_ws(recv_ms, raw)

    def write_rest(self, recv_ms: int, path: str, query: str, status: int,
                   raw: str | bytes) -> None:
        for s in self.sinks:
            s.write_rest(recv_ms, path, query, status, raw)

    def write_health(self, recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                     first: int | None = None, last: int | None = None) -> None:
        for s in self.sinks:
            s.write_health(recv_ms, symbol, kind, count, first=first, last=last)


@attrs.frozen(kw_only=True, slots=True)
class SourceLine:
    """One capture line from a source, at `position` (stream seq / line no), `index` within it."""

    position: int
    data: bytes
    #: Place of the line inside the message at `position` (a bus message packs several lines).
    index: int = 0


@attrs.frozen(kw_only=True, slots=True)
class SourceGap:
    """Positions `first`..`last` a source could not deliver (retention dropped them)."""

    first: int
    last: int
    reason: str

    @property
    def count(self) -> int:
        return self.last - self.first + 1


class CaptureLineSource(Protocol):
    """An ordered supply of capture lines, with what it had to skip as values."""

    def items(self) -> AsyncIterator[SourceLine | SourceGap]: ...


class FileLineSource:
    """A capture file (plain or gzip) as a `CaptureLineSource`: lines in file order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    async def items(self) -> AsyncIterator[SourceLine | SourceGap]:
        with open_capture(self.path) as f:
            for n, line in enumerate(f, 1):
                yield SourceLine(position=n, data=line)


# ------------------------------------------------------------------ capture-line bytes
def ws_line(recv_ms: int, raw: str | bytes) -> bytes:
    """The capture line of a WebSocket frame (the bytes CaptureWriter.write_ws appends)."""
    return encode_line(ws_doc(recv_ms, raw))


def rest_line(recv_ms: int, path: str, query: str, status: int, raw: str | bytes) -> bytes:
    """The capture line of a REST response (as CaptureWriter.write_rest)."""
    return encode_line(rest_doc(recv_ms, path, query, status, raw))


def health_line(recv_ms: int, symbol: str, kind: str, count: int = 0, *,
                first: int | None = None, last: int | None = None) -> bytes:
    """The capture line of a data-health notice (as CaptureWriter.write_health)."""
    return encode_line(health_doc(recv_ms, symbol, kind, count, first=first, last=last))


def recv_ms_of(line: bytes) -> int:
    """The receive time of a capture line (every line this port makes starts with it)."""
    if line.startswith(b'{"recv_ms":'):
        end = line.find(b",", 11)
        if end > 11 and line[11:end].isdigit():
            return int(line[11:end])
    value = orjson.loads(line).get("recv_ms")
    if type(value) is not int:
        raise ValueError(f"capture line without an integer recv_ms: {line[:80]!r}")
    return value


def message_id(line: bytes, occurrence: int = 0) -> str:
    """Deterministic `Nats-Msg-Id` of a line: recv_ms, content digest, repeat count."""
    digest = hashlib.blake2b(line, digest_size=10).hexdigest()
    return f"{recv_ms_of(line)}-{digest}-{occurrence}"


class MessageIds:
    """Gives each line its `message_id`, counting identical lines of the same millisecond.

    Counts are kept per receive millisecond for the last `history_ms` of receive time, so a
    clock that steps back (capture lines may go backwards) still tells a repeat apart from
    its first occurrence; memory stays bounded by the lines of that much time.
    """

    __slots__ = ("_by_ms", "_history_ms", "_max_ms", "_order")

    def __init__(self, history_ms: int = 10_000) -> None:
        self._by_ms: dict[int, dict[bytes, int]] = {}
        self._order: collections.deque[int] = collections.deque()  # ms keys, as created
        self._history_ms = history_ms
        self._max_ms = -1

    def __call__(self, line: bytes) -> str:
        ms = recv_ms_of(line)
        seen = self._by_ms.get(ms)
        if seen is None:
            seen = self._by_ms[ms] = {}
            self._order.append(ms)
            if ms > self._max_ms:
                self._max_ms = ms
                floor, order = ms - self._history_ms, self._order
                while order[0] < floor:
                    self._by_ms.pop(order.popleft(), None)
        digest = hashlib.blake2b(line, digest_size=10).digest()
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        return f"{ms}-{digest.hex()}-{n}"


__all__ = ["CaptureLineSink", "CaptureLineSource", "FileLineSource", "MessageIds", "SourceGap",
           "SourceLine", "TeeSink", "health_line", "message_id", "recv_ms_of", "rest_line",
           "ws_line"]
