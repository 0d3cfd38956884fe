"""Raw capture files (SPEC section 6): a streaming reader and a crash-tolerant writer.

A capture is one JSON object per line, in receive order, optionally gzip-compressed:

    {"recv_ms": 1771263510195, "channel": "ws", "raw": "<frame text exactly as received>"}
    {"recv_ms": 1771263510200, "channel": "rest", "path": "/fapi/v1/openInterest",
     "query": "symbol=BTCUSDT", "status": 200, "raw": "<body text>"}

(one line each; `docs/capture-format.md` is the full description). The reader streams: it
never holds more than one line, detects gzip by its magic bytes (RFC 1952: 1f 8b), ignores
unknown keys, and turns every malformed line, a clock going backwards, and an unreadable or
truncated compressed tail into a `CaptureProblem` value with its line number. Only failing to
open the file at all raises (`OSError`): that is a usage error, not bad data.

The writer (`capture_writer.py`, re-exported here) flushes at least once per
`flush_interval_s` of its clock, so a killed capture loses
at most about the last second; gzip output is sync-flushed, so a truncated file still decodes
up to the last flush.
"""

from __future__ import annotations

import errno
import gzip
import io
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal, cast

import msgspec
import orjson

from engine_adapters.capture_diagnose import PROBLEM_TEXT_CHARS, diagnose, problem_text
from engine_adapters.capture_files import MultiSource, SourceError, TornTail, resolve_source
from engine_adapters.capture_items import WS_SETTERS as _WS_SETTERS  # noqa: F401 - tested here
from engine_adapters.capture_items import (
    CaptureLine,
    CaptureProblem,
    Channel,
    DepthLine,
    HealthLine,
    ProblemKind,
    RestLine,
    WsLine,
)
from engine_adapters.capture_items import new_ws_line as _new_ws_line
from engine_adapters.capture_writer import (  # re-exported: the writer lives beside the reader
    CaptureWriter,
    encode_line,
    health_doc,
    rest_doc,
    ws_doc,
)

#: First bytes of every gzip member (RFC 1952 section 2.3.1, ID1 ID2).
GZIP_MAGIC = b"\x1f\x8b"
_GLOB_CHARS = frozenset("*?[")


class _WsEnvelope(msgspec.Struct):
    """A ws capture line as the typed fast path reads it (unknown keys ignored)."""

    recv_ms: int
    channel: Literal["ws"]
    raw: str


_decode_ws_envelope = msgspec.json.Decoder(_WsEnvelope).decode


def open_capture(path: str | Path) -> IO[bytes]:
    """Open a capture for binary reading, decompressing when it starts with the gzip magic."""
    return cast(IO[bytes], _open(path))


def _open(path: str | Path) -> io.BufferedReader | gzip.GzipFile:
    f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        if f.peek(2)[:2] == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=f, mode="rb")
    except BaseException:
        f.close()
        raise
    return f


class CaptureBytes:
    """`(line_no, line bytes)` of a capture source in time order: one file, a folder, a glob.

    The one byte source of capture reading (`capture_byte_lines` builds it). A regular file,
    a folder of hour files or a glob is read by `capture_files.MultiSource` (files in time
    order, one running line number, a torn gzip or a cut last line read up to its last
    complete line; `.tails` then says what was unreadable, `.locate(n)` maps a running line
    number back to (file, line)). A pipe (`/dev/fd/N`, no seeking) is read as one stream.
    Opening happens at construction: a missing file raises `FileNotFoundError`, a folder or
    glob naming no capture file `SourceError`.
    """

    __slots__ = ("_f", "_lines", "_multi", "compressed", "paths")

    def __init__(self, source: str | Path) -> None:
        text = str(source)
        p = Path(text)
        self._f: io.BufferedReader | gzip.GzipFile | None = None
        self._multi: MultiSource | None = None
        if p.exists() and not p.is_file() and not p.is_dir():  # a pipe: one forward pass
            self._f = f = _open(p)
            self.paths: tuple[Path, ...] = (p,)
            self.compressed = isinstance(f, gzip.GzipFile)
            self._lines: Iterable[tuple[int, bytes]] = enumerate(f, 1)
            return
        if p.is_file():
            self.paths = (p,)
        elif not p.exists() and not _GLOB_CHARS & set(text):
            raise FileNotFoundError(errno.ENOENT, "capture does not exist (give a file, a "
                                    "folder or a glob of capture files)", text)
        else:
            self.paths = resolve_source(text)
        heads = []
        for q in self.paths:  # every file opens now (an OSError here, not mid-run)
            with open(q, "rb") as f0:
                heads.append(f0.read(2))
        #: Read through gzip (a failure past the start is "unreadable compressed data").
        self.compressed = any(h == GZIP_MAGIC for h in heads)
        self._multi = MultiSource(self.paths)
        self._lines = self._multi

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self._lines)

    @property
    def streaming(self) -> bool:
        """A pipe: its lines arrive over time (a reader must not wait for many at once)."""
        return self._multi is None

    @property
    def tails(self) -> tuple[TornTail, ...]:
        """The torn ends met so far (complete once the iteration has ended)."""
        return () if self._multi is None else tuple(self._multi.tails)

    def locate(self, line_no: int) -> tuple[Path, int]:
        """(file, line in it) of a running line number already read."""
        if self._multi is None:
            return self.paths[0], line_no
        return self._multi.locate(line_no)

    def running_line(self, tail: TornTail) -> int:
        """The running line number at which `tail`'s file became unreadable."""
        if self._multi is not None:
            for span in self._multi.spans:
                if span.path == tail.path:
                    return span.first_line + tail.line_no - 1
        return tail.line_no

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


def tail_problem(src: CaptureBytes, tail: TornTail) -> CaptureProblem:
    """The `UNREADABLE_TAIL` problem of one torn file end (every line before it was read)."""
    what = "compressed data" if tail.path.name.endswith(".gz") or src.compressed else "file"
    return CaptureProblem(line_no=src.running_line(tail), kind=ProblemKind.UNREADABLE_TAIL,
                          reason=f"unreadable {what} after line {tail.line_no - 1} "
                                 f"(cut off: writer killed?): {tail}")


def capture_byte_lines(path: str | Path) -> CaptureBytes:
    """The byte source of `iter_capture` (see `CaptureBytes`)."""
    return CaptureBytes(path)


def iter_capture(path: str | Path) -> Iterator[CaptureLine | CaptureProblem]:
    """Stream a capture's lines in file order, with problems as values at their line number.

    Blank lines are skipped silently. Raises `OSError` only if the file cannot be opened
    (at the call, before the first line).
    """
    return decode_capture(capture_byte_lines(path))


def decode_capture(src: CaptureBytes) -> Iterator[CaptureLine | CaptureProblem]:
    """Decode `(line_no, line)` pairs into capture lines and problems; closes `src` at the end.

    One line at a time (a pipe's lines are used as they come); `capture_runs.CaptureRuns`
    decodes many lines per C call with the same results, for files.
    """
    ws_envelope = _decode_ws_envelope
    envelope_error = msgspec.DecodeError
    new_ws = _new_ws_line
    last_ms = -1
    line_no = 0
    try:
        for line_no, line in src:
            # Hottest path: a well-formed ws line, decoded into a typed struct in one C pass.
            try:
                env = ws_envelope(line)
            except envelope_error:
                pass  # anything else: `decode_line` accepts or explains it
            else:
                ms = env.recv_ms
                if ms >= 0:
                    if ms < last_ms:
                        yield CaptureProblem(
                            line_no=line_no, kind=ProblemKind.CLOCK_BACKWARDS,
                            reason=f"recv_ms went backwards: {ms} after {last_ms}")
                    last_ms = ms
                    yield new_ws(line_no, ms, env.raw)
                    continue
            items, last_ms = decode_line(src, line_no, line, last_ms)
            yield from items
        yield from (tail_problem(src, tail) for tail in src.tails)  # torn ends, after the lines
    except (EOFError, OSError, zlib.error) as exc:
        yield read_failure(src, line_no, exc)
    finally:
        src.close()


def read_failure(src: CaptureBytes, line_no: int, exc: BaseException) -> CaptureProblem:
    """The `UNREADABLE_TAIL` problem of a read that failed after line `line_no`."""
    # EOFError: gzip stream ends without its trailer (killed writer, partial copy);
    # BadGzipFile (an OSError) / zlib.error: corrupt bytes. Nothing after this is usable.
    what = "compressed data" if src.compressed else "file"
    return CaptureProblem(line_no=line_no + 1, kind=ProblemKind.UNREADABLE_TAIL,
                          reason=f"unreadable {what} after line {line_no}: "
                                 f"{type(exc).__name__}: {exc}")


def decode_line(src: CaptureBytes, line_no: int, line: bytes, last_ms: int
                ) -> tuple[list[CaptureLine | CaptureProblem], int]:
    """One line in full: its items (a clock note before its line) and the new last recv_ms.

    The path of every line the typed envelope does not take: rest and health lines, bad
    lines (a problem saying what is wrong), blank lines (nothing).
    """
    try:
        env = _decode_ws_envelope(line)
    except msgspec.DecodeError:
        pass
    else:
        if env.recv_ms >= 0:
            return _noted(line_no, env.recv_ms, last_ms, _new_ws_line(line_no, env.recv_ms,
                                                                      env.raw))
    try:
        doc: Any = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if not line.strip():
            return [], last_ms
        cut = "" if line.endswith(b"\n") else " (last line has no newline: cut off?)"
        return [CaptureProblem(line_no=line_no, reason=f"{_at(src, line_no)}not JSON: {exc}{cut}",
                               text=problem_text(line))], last_ms
    # Plain dict lookups and exact type checks (STYLE rule 6).
    if type(doc) is dict:
        recv_ms = doc.get("recv_ms")
        raw = doc.get("raw")
        channel = doc.get("channel")
        health: CaptureLine | None = None
        if channel == "health" and type(recv_ms) is int and recv_ms >= 0:
            sym, kind, count = doc.get("symbol"), doc.get("kind"), doc.get("count", 0)
            first, last = doc.get("first"), doc.get("last")
            if type(sym) is str and type(kind) is str and type(count) is int and \
                    type(first) in (int, type(None)) and type(last) in (int, type(None)):
                raw = ""
                health = HealthLine(line_no=line_no, recv_ms=recv_ms, symbol=sym, kind=kind,
                                    count=count, first=first, last=last)
        elif channel == "depth" and type(recv_ms) is int and recv_ms >= 0:
            sym, source, bands = doc.get("symbol"), doc.get("source", ""), doc.get("bands")
            if type(sym) is str and type(source) is str and type(bands) is list:
                raw = ""
                health = DepthLine(line_no=line_no, recv_ms=recv_ms, symbol=sym,
                                   source=source, bands=bands)
        if type(recv_ms) is int and type(raw) is str and recv_ms >= 0:
            item: CaptureLine | None = health
            if channel == "ws":
                item = _new_ws_line(line_no, recv_ms, raw)
            elif channel == "rest":
                rpath = doc.get("path")
                status = doc.get("status")
                query = doc.get("query", "")
                if type(rpath) is str and type(status) is int and type(query) is str:
                    item = RestLine(line_no=line_no, recv_ms=recv_ms, path=rpath,
                                    query=query, status=status, raw=raw)
            if item is not None:
                return _noted(line_no, recv_ms, last_ms, item)
    return [CaptureProblem(line_no=line_no, reason=_at(src, line_no) + diagnose(doc),
                           text=problem_text(line))], last_ms


def _noted(line_no: int, recv_ms: int, last_ms: int, item: CaptureLine
           ) -> tuple[list[CaptureLine | CaptureProblem], int]:
    if recv_ms >= last_ms:
        return [item], recv_ms
    return [CaptureProblem(line_no=line_no, kind=ProblemKind.CLOCK_BACKWARDS,
                           reason=f"recv_ms went backwards: {recv_ms} after {last_ms}"),
            item], recv_ms


def _at(src: CaptureBytes, n: int) -> str:
    """Several files: a problem's reason names the file and its own line."""
    if len(src.paths) < 2:
        return ""
    path, local = src.locate(n)
    return f"{path.name}:{local}: "


__all__ = [
    "GZIP_MAGIC",
    "PROBLEM_TEXT_CHARS",
    "CaptureBytes",
    "CaptureLine",
    "CaptureProblem",
    "CaptureWriter",
    "Channel",
    "DepthLine",
    "HealthLine",
    "ProblemKind",
    "RestLine",
    "SourceError",
    "WsLine",
    "capture_byte_lines",
    "decode_capture",
    "decode_line",
    "encode_line",
    "health_doc",
    "iter_capture",
    "open_capture",
    "read_failure",
    "rest_doc",
    "tail_problem",
    "ws_doc",
]
