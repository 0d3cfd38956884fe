"""The items a capture reader yields: capture lines by channel, and problems at a line.

`capture.py` (the reader) and `capture_runs.py` (its many-lines-per-call form) build them;
`engine_adapters.capture` re-exports every name, so callers import them from there.
"""

from __future__ import annotations

import enum

import attrs


class Channel(enum.Enum):
    """Where a captured message came from."""

    #: A WebSocket frame (combined `{"stream","data"}` or raw form).
    WS = "ws"
    #: A REST response body, with the request path, query and HTTP status.
    REST = "rest"
    #: A data-health notice of the recording shell (reconnect, stale stream, unrepaired gap):
    #: not an exchange message, but needed to reproduce the recording session exactly.
    HEALTH = "health"
    #: Book depth bands with no exchange message of their own (the archive's bookDepth).
    DEPTH = "depth"


@attrs.frozen(kw_only=True, slots=True)
class WsLine:
    """A captured WebSocket frame."""

    line_no: int
    recv_ms: int
    raw: str

    @property
    def channel(self) -> Channel:
        return Channel.WS


@attrs.frozen(kw_only=True, slots=True)
class RestLine:
    """A captured REST response: `path` and `query` of the request, HTTP `status`, body."""

    line_no: int
    recv_ms: int
    path: str
    query: str
    status: int
    raw: str

    @property
    def channel(self) -> Channel:
        return Channel.REST


@attrs.frozen(kw_only=True, slots=True)
class HealthLine:
    """A data-health notice the recording shell raised: `kind` is a HealthKind name."""

    line_no: int
    recv_ms: int
    symbol: str
    kind: str
    count: int
    #: For TRADE_GAP: the aggTrade id range given up (so a replay closes the same gap).
    first: int | None = None
    last: int | None = None

    @property
    def channel(self) -> Channel:
        return Channel.HEALTH


@attrs.frozen(kw_only=True, slots=True)
class DepthLine:
    """Depth bands of one snapshot: `bands` as stored, [[percentage, depth, notional], ...]."""

    line_no: int
    recv_ms: int
    symbol: str
    source: str
    bands: list[object]

    @property
    def channel(self) -> Channel:
        return Channel.DEPTH


CaptureLine = WsLine | RestLine | HealthLine | DepthLine

# `WsLine(...)` through attrs' frozen __init__ costs as much as decoding the line; setting the
# slots directly builds the same value ~2x faster (the field list is checked, and tested).
WS_SETTERS = tuple(WsLine.__dict__[n].__set__ for n in ("line_no", "recv_ms", "raw")) \
    if tuple(f.name for f in attrs.fields(WsLine)) == ("line_no", "recv_ms", "raw") else None


def new_ws_line(line_no: int, recv_ms: int, raw: str) -> WsLine:
    if WS_SETTERS is None:
        return WsLine(line_no=line_no, recv_ms=recv_ms, raw=raw)
    s0, s1, s2 = WS_SETTERS
    o: WsLine = object.__new__(WsLine)
    s0(o, line_no)
    s1(o, recv_ms)
    s2(o, raw)
    return o


class ProblemKind(enum.Enum):
    """What a `CaptureProblem` means for the lines around it."""

    #: The line could not be used and was skipped; the lines after it are read as usual.
    MALFORMED = "malformed"
    #: recv_ms went backwards (allowed: clocks step); the line itself follows, unchanged.
    CLOCK_BACKWARDS = "clock_backwards"
    #: A file cannot be read past this line (truncated/corrupt gzip, a cut last line, a read
    #: error); every line before it was read. One per torn file, after the lines.
    UNREADABLE_TAIL = "unreadable_tail"


@attrs.frozen(kw_only=True, slots=True)
class CaptureProblem:
    """Something wrong at `line_no` (1-based) of a capture, with the offending text."""

    line_no: int
    reason: str
    text: str = ""
    kind: ProblemKind = ProblemKind.MALFORMED

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}"


__all__ = [
    "WS_SETTERS",
    "CaptureLine",
    "CaptureProblem",
    "Channel",
    "DepthLine",
    "HealthLine",
    "ProblemKind",
    "RestLine",
    "WsLine",
    "new_ws_line",
]
