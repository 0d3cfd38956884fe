"""Capture sources on disk: hour-file names, folder/glob resolution, torn-tail-tolerant lines.

A recording is a set of files named for the UTC hour of their receive times (recorder.py),
`PREFIX-YYYYMMDDTHH[-N].jsonl[.gz]`, where `-N` marks the N-th restart inside the same hour
(a restart never appends to a file a crash may have torn). `resolve_source` turns what the
user typed — one file, a folder, or a glob — into those files in time order: by the hour in
the name, then by the first line's `recv_ms`, then by restart number and name.

`LineSource` yields `(line_no, line)` for one file, gzip (any number of members, RFC 1952
section 2.2) or plain: 1-based numbers, and `line` ends in its `\\n` as when iterating a
file object, so it is a drop-in for today's `enumerate(open_capture(path), 1)`. A killed
writer leaves a torn tail: a gzip member cut short, junk or zero padding after the last
member, or a last line without its newline. Every complete line before the tear is
delivered; the tear itself is reported once, after the last line, as a `TornTail` value
(`.tail`), never as an exception: it is what a SIGKILL leaves, not a usage error. A final
line without newline that is still a whole JSON object is delivered (a hand-written file),
not reported. Only failing to open a file raises (`OSError`).

`MultiSource` chains files with one running line number and maps it back to (file, line).
"""

from __future__ import annotations

import calendar
import glob as _glob
import io
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, count
from pathlib import Path
from typing import IO

import attrs
import orjson

#: RFC 1952 section 2.3.1: ID1 ID2 of every gzip member.
GZIP_MAGIC = b"\x1f\x8b"
HOUR_MS = 3_600_000
#: Compressed bytes read per step: large enough that per-chunk costs vanish, small enough
#: that memory stays flat (one decompressed chunk, ~8x this, is held at a time).
CHUNK_BYTES = 256 * 1024
#: What a folder source picks up.
CAPTURE_SUFFIXES = (".jsonl", ".jsonl.gz", ".gz")
_HOUR_NAME = re.compile(r"-(\d{8})T(\d{2})(?:-(\d+))?\.jsonl(?:\.gz)?$")
_GLOB_CHARS = frozenset("*?[")


class SourceError(Exception):
    """A capture source names no readable capture file; the message says which and why."""


def hour_stamp(hour_ms: int) -> str:
    """`YYYYMMDDTHH` of the UTC hour holding `hour_ms` (epoch ms)."""
    return time.strftime("%Y%m%dT%H", time.gmtime(hour_ms // 1000))


def hour_file_name(prefix: str, hour_ms: int, restart: int = 0, *, gz: bool = True) -> str:
    """`PREFIX-YYYYMMDDTHH[-N].jsonl[.gz]` for the hour holding `hour_ms`; N = restart > 0."""
    tail = f"-{restart}" if restart else ""
    return f"{prefix}-{hour_stamp(hour_ms)}{tail}.jsonl" + (".gz" if gz else "")


def parse_hour_name(name: str) -> tuple[int, int] | None:
    """(hour start in epoch ms, restart number) from a recorder file name, else None."""
    m = _HOUR_NAME.search(name)
    if m is None:
        return None
    try:
        t = time.strptime(m.group(1) + m.group(2), "%Y%m%d%H")
    except ValueError:
        return None
    return calendar.timegm(t) * 1000, int(m.group(3) or 0)


@attrs.frozen(kw_only=True, slots=True)
class TornTail:
    """The unreadable end of one capture file, and how much of it was lost."""

    path: Path
    #: Line number the next complete line would have had (all lines before it were read).
    line_no: int
    #: Byte offset in the file where the unreadable part starts (start of the torn member).
    offset: int
    #: Bytes of the file from `offset` to its end.
    tail_bytes: int
    #: Decoded bytes of a partial last line that were dropped.
    dropped_bytes: int
    reason: str

    def __str__(self) -> str:
        return (f"{self.path}: torn tail after line {self.line_no - 1}: the last "
                f"{self.tail_bytes} bytes (from byte {self.offset}) {self.reason}; "
                f"{self.dropped_bytes} bytes of a partial line dropped, every line before "
                f"it was read")


def _whole_object(text: bytes) -> bool:
    try:
        return type(orjson.loads(text)) is dict
    except orjson.JSONDecodeError:
        return False


class LineSource:
    """`(line_no, line)` of one capture file; `.tail` is set if its end was torn.

    Iterating it is a C-level chain of `enumerate(io.BytesIO(chunk))` (one Python step per
    chunk, none per line), so it reads as fast as iterating a file object. `first_line`
    numbers the first line (`MultiSource` continues the numbering across files); `.lines`
    is how many lines were delivered, set when the iteration ends.
    """

    __slots__ = ("chunk_bytes", "first_line", "lines", "path", "tail")

    def __init__(self, path: str | Path, *, chunk_bytes: int = CHUNK_BYTES,
                 first_line: int = 1) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.first_line = first_line
        self.tail: TornTail | None = None
        self.lines = 0

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return chain.from_iterable(self._blocks())

    def _blocks(self) -> Iterator[Iterable[tuple[int, bytes]]]:
        self.tail = None
        self.lines = 0
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            gz = f.peek(2)[:2] == GZIP_MAGIC
            if not gz and size and os.pread(f.fileno(), 1, size - 1) == b"\n":
                # Fast path, a plain file that ends cleanly: iterate the file object itself.
                # zip takes from `numbers` before `f`, so after the end it is 1 past the count.
                numbers = count(self.first_line)
                yield zip(numbers, f, strict=False)
                self.lines = next(numbers) - self.first_line - 1
                return
            gunzip = _Gunzip(f, self.chunk_bytes) if gz else None
            chunks = gunzip if gunzip is not None else iter(
                lambda: f.read(self.chunk_bytes), b"")
            n = 0
            pending = b""
            for out in chunks:
                cut = out.rfind(b"\n") + 1
                if not cut:  # no line ends in this chunk
                    pending += out
                    continue
                buf = pending + out[:cut] if pending else out[:cut]
                pending = out[cut:]
                # BytesIO splits on b"\n" only, in C (memchr), like iterating a file; the
                # list's length is the count (buf.count scanned every byte again: ~2 % of run)
                lines = io.BytesIO(buf).readlines()
                yield enumerate(lines, self.first_line + n)
                n += len(lines)
            self.lines = n
            torn = None if gunzip is None else gunzip.torn
            if pending and torn is None and _whole_object(pending):
                yield ((self.first_line + n, pending),)
                self.lines = n = n + 1
                pending = b""
            if torn is None and not pending:
                return
            if torn is None:  # the file ends in a partial line (plain, or a whole gzip)
                offset = size if gz else size - len(pending)
                torn = (offset, "end in a line without newline that is not a whole JSON object")
            self.tail = TornTail(path=self.path, line_no=n + 1, offset=torn[0],
                                 tail_bytes=size - torn[0], dropped_bytes=len(pending),
                                 reason=torn[1])


class _Gunzip:
    """Decompressed chunks of a multi-member gzip file; `.torn` = (offset, why) at a tear."""

    __slots__ = ("_chunk", "_f", "_gen", "torn")

    def __init__(self, f: IO[bytes], chunk: int) -> None:
        self._f = f
        self._chunk = chunk
        self.torn: tuple[int, str] | None = None
        self._gen = self._run()

    def __iter__(self) -> Iterator[bytes]:
        return self._gen

    def __next__(self) -> bytes:
        return next(self._gen)

    def _run(self) -> Iterator[bytes]:
        read = self._f.read
        d = zlib.decompressobj(31)
        member_start = 0  # file offset where the member being decoded starts
        pos = 0  # file offset just after the bytes read so far
        fed = False  # bytes of the current member were given to `d`
        while True:
            data = read(self._chunk)
            if not data:
                break
            pos += len(data)
            while data:
                try:
                    out = d.decompress(data)
                except zlib.error as exc:
                    self.torn = (member_start, f"are not gzip data ({exc})")
                    return
                fed = True
                if out:
                    yield out
                if not d.eof:
                    break
                rest = d.unused_data
                member_start = pos - len(rest)
                d = zlib.decompressobj(31)
                fed = False
                data = rest
        if fed:
            try:
                out = d.flush()
            except zlib.error:
                out = b""
            if out:
                yield out
            self.torn = (member_start, "are an incomplete gzip member (writer killed?)")


@attrs.frozen(kw_only=True, slots=True)
class FileSpan:
    """Where one file's lines sit in a `MultiSource`'s running line numbers."""

    path: Path
    #: Running line number of the file's first line.
    first_line: int


class MultiSource:
    """The lines of several capture files in order, numbered as one stream."""

    __slots__ = ("chunk_bytes", "paths", "spans", "tails")

    def __init__(self, paths: Sequence[str | Path], *, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.chunk_bytes = chunk_bytes
        self.spans: list[FileSpan] = []
        self.tails: list[TornTail] = []

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return chain.from_iterable(self._files())

    def _files(self) -> Iterator[Iterable[tuple[int, bytes]]]:
        self.spans, self.tails = [], []
        base = 0
        for path in self.paths:
            self.spans.append(FileSpan(path=path, first_line=base + 1))
            src = LineSource(path, chunk_bytes=self.chunk_bytes, first_line=base + 1)
            yield src  # chain asks for the next file only once this one is exhausted
            if src.tail is not None:
                self.tails.append(src.tail)
            base += src.lines

    def locate(self, line_no: int) -> tuple[Path, int]:
        """(file, line number inside it) of a running line number already read."""
        for span in reversed(self.spans):
            if line_no >= span.first_line:
                return span.path, line_no - span.first_line + 1
        raise ValueError(f"line {line_no} is before the first file's first line")


def first_recv_ms(path: Path) -> int | None:
    """`recv_ms` of the first line of `path` that has one (None: empty or unreadable)."""
    try:
        for _, line in LineSource(path, chunk_bytes=16 * 1024):
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(doc) is dict and type(doc.get("recv_ms")) is int:
                return int(doc["recv_ms"])
    except OSError:
        return None
    return None


def order_files(paths: Sequence[Path]) -> tuple[Path, ...]:
    """Time order: hour in the name (else the first line's hour), first recv_ms, restart."""
    def key(p: Path) -> tuple[int, int, int, str]:
        named = parse_hour_name(p.name)
        first = first_recv_ms(p)
        first_key = first if first is not None else 1 << 62
        if named is not None:
            return named[0], first_key, named[1], p.name
        hour = first - first % HOUR_MS if first is not None else 1 << 62
        return hour, first_key, 0, p.name
    return tuple(sorted(dict.fromkeys(paths), key=key))


def resolve_source(source: str | Path) -> tuple[Path, ...]:
    """One file, a folder (its capture files) or a glob -> existing files in time order.

    Raises `SourceError` naming the source when nothing matches.
    """
    text = str(source)
    p = Path(text)
    if p.is_file():
        return (p,)
    if p.is_dir():
        found = [c for c in p.iterdir() if c.is_file() and c.name.endswith(CAPTURE_SUFFIXES)]
        if not found:
            raise SourceError(f"capture folder {text} holds no capture files "
                              f"(names ending in {', '.join(CAPTURE_SUFFIXES)})")
        return order_files(found)
    if _GLOB_CHARS & set(text):
        found = [Path(m) for m in _glob.glob(text) if Path(m).is_file()]
        if not found:
            raise SourceError(f"no capture file matches the pattern {text}")
        return order_files(found)
    raise SourceError(f"capture {text} does not exist (give a file, a folder or a glob)")


__all__ = [
    "CAPTURE_SUFFIXES",
    "FileSpan",
    "LineSource",
    "MultiSource",
    "SourceError",
    "TornTail",
    "first_recv_ms",
    "hour_file_name",
    "hour_stamp",
    "order_files",
    "parse_hour_name",
    "resolve_source",
]
