"""A capture file decoded many lines per C call: runs of ws lines, other items as they are.

`decode_capture` costs one Python step per line (a typed decode, a `WsLine`, a yield). A
file's lines are all there already, so `CaptureRuns` joins `BATCH_LINES` of them into one
JSON array and decodes it with one msgspec call into tagged envelopes; consecutive ws lines
whose receive time does not go back come out as one `WsRun` (their envelopes and the first
line's number), which `run`'s virtual clock consumes without a per-line object. Every other
line (rest, health, blank, bad, a ws line with a negative recv_ms) goes through
`capture.decode_line`, the per-line path itself; a batch the array decode refuses (one bad
or blank line) is decoded line by line. So the items are exactly `decode_capture`'s, in the
same order (tested on captures with every kind of line): iterating a `CaptureRuns` yields
them one by one, `runs()` with the ws lines grouped.

Why the array stays aligned with the lines: each line becomes one array element or the
decode fails. A blank line leaves `,,` (malformed); a line holding two values either lacks
the comma (malformed) or adds an element, and the count check catches that, since no line
can make fewer than one element without an array element (every element must be an object
with a known `channel` tag, so nesting fails too).

A pipe (`/dev/fd/N`: a bus stream) is decoded line by line as it arrives (`decode_capture`):
waiting for a whole batch would hold lines back.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import cast

import attrs
import msgspec

from engine_adapters.capture import (
    CaptureBytes,
    decode_capture,
    decode_line,
    read_failure,
    tail_problem,
)
from engine_adapters.capture_items import CaptureLine, CaptureProblem, ProblemKind, new_ws_line

#: Lines per array decode: per-call costs vanish, and a batch is ~100 KiB of text.
BATCH_LINES = 512


class WsEnvelope(msgspec.Struct, frozen=True, tag_field="channel", tag="ws"):
    """A ws capture line as the batch decode reads it (unknown keys ignored)."""

    recv_ms: int
    raw: str


class _Other(msgspec.Struct, frozen=True, tag_field="channel"):
    """A rest, health or depth line: only its tag is read; `decode_line` decodes it in full."""


class _Rest(_Other, frozen=True, tag="rest"):
    pass


class _Health(_Other, frozen=True, tag="health"):
    pass


class _Depth(_Other, frozen=True, tag="depth"):
    pass


_decode_batch = msgspec.json.Decoder(list[WsEnvelope | _Rest | _Health | _Depth]).decode


@attrs.frozen(slots=True)
class WsRun:
    """Consecutive ws lines, from line `first_line` on, whose recv_ms never goes back.

    The same lines as `WsLine(line_no=first_line + i, recv_ms=e.recv_ms, raw=e.raw)` for
    each `envelopes[i]`.
    """

    first_line: int
    envelopes: Sequence[WsEnvelope]

    def lines(self) -> Iterator[CaptureLine]:
        """The run as `WsLine` items."""
        for i, e in enumerate(self.envelopes, self.first_line):
            yield new_ws_line(i, e.recv_ms, e.raw)


CaptureRun = WsRun | CaptureLine | CaptureProblem


class CaptureRuns:
    """The decoded items of a capture source, read `BATCH_LINES` lines per C call.

    Iterate it for the same items as `decode_capture(src)`, or call `runs()` (once) for ws
    lines grouped as `WsRun`s. Closes `src` at the end.
    """

    __slots__ = ("_batch", "_src")

    def __init__(self, src: CaptureBytes, *, batch_lines: int = BATCH_LINES) -> None:
        if batch_lines < 1:
            raise ValueError(f"batch_lines must be >= 1, got {batch_lines}")
        self._src = src
        self._batch = batch_lines

    def __iter__(self) -> Iterator[CaptureLine | CaptureProblem]:
        for item in self.runs():
            if isinstance(item, WsRun):
                yield from item.lines()
            else:
                yield item

    def runs(self) -> Iterator[CaptureRun]:
        """Ws lines in `WsRun`s, every other item as `decode_capture` yields it."""
        if self._src.streaming:
            return decode_capture(self._src)
        return _runs(self._src, self._batch)


def _runs(src: CaptureBytes, size: int) -> Iterator[CaptureRun]:
    last_ms = -1
    line_no = 0
    lines = iter(src)
    try:
        while True:
            batch: list[tuple[int, bytes]] = []
            failure: BaseException | None = None
            try:
                batch.extend(islice(lines, size))  # keeps what was read before a failure
            except (EOFError, OSError, zlib.error) as exc:
                failure = exc
            if batch:
                line_no = batch[-1][0]
                out: list[CaptureRun] = []
                last_ms = _decode(src, batch, last_ms, out)
                yield from out
            if failure is not None:
                raise failure
            if len(batch) < size:
                break
        for tail in src.tails:  # torn ends (a killed writer): reported after the lines
            yield tail_problem(src, tail)
    except (EOFError, OSError, zlib.error) as exc:
        yield read_failure(src, line_no, exc)
    finally:
        src.close()


def _run(first_line: int, envelopes: list[WsEnvelope | _Rest | _Health | _Depth]) -> WsRun:
    """A run of envelopes `_decode` checked are all `WsEnvelope`s."""
    return WsRun(first_line, cast(list[WsEnvelope], envelopes))


def _decode(src: CaptureBytes, batch: list[tuple[int, bytes]], last_ms: int,
            out: list[CaptureRun]) -> int:
    """Append the items of `batch` to `out`; returns the last recv_ms after it."""
    first = batch[0][0]
    texts = [line for _, line in batch]
    try:
        envs = _decode_batch(b"[" + b",".join(texts) + b"]")
    except msgspec.DecodeError:
        envs = None
    if envs is None or len(envs) != len(texts) or batch[-1][0] - first != len(texts) - 1:
        for n, line in batch:  # the per-line path, line by line
            items, last_ms = decode_line(src, n, line, last_ms)
            out.extend(items)
        return last_ms
    start = 0  # index of the first envelope of the run being gathered
    for i, e in enumerate(envs):
        if isinstance(e, WsEnvelope):
            ms = e.recv_ms
            if ms >= last_ms and ms >= 0:
                last_ms = ms
                continue
            if ms >= 0:  # the clock stepped back: a note before the line, a new run from it
                if start < i:
                    out.append(_run(first + start, envs[start:i]))
                out.append(CaptureProblem(line_no=first + i, kind=ProblemKind.CLOCK_BACKWARDS,
                                          reason=f"recv_ms went backwards: {ms} after "
                                                 f"{last_ms}"))
                last_ms = ms
                start = i
                continue
        if start < i:
            out.append(_run(first + start, envs[start:i]))
        items, last_ms = decode_line(src, first + i, texts[i], last_ms)
        out.extend(items)
        start = i + 1
    if start < len(envs):
        out.append(_run(first + start, envs[start:]))
    return last_ms


__all__ = ["BATCH_LINES", "CaptureRun", "CaptureRuns", "WsEnvelope", "WsRun"]
