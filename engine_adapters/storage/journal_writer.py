"""Appending ticks to the input journal, with the log's recovery, rotation and fsync rules.

A tick frame is written with one `os.write` loop, like a log tick. On open, a torn last frame
(a crash mid-write) is truncated away and reported; a bad frame followed by a valid one is
corruption and refused with file and offset. A new session, a multiple of `rotate_ticks` or
the size limit starts a new segment; with `compress_closed` the segment just closed is
zstd-compressed (synchronously: on the live loop, prefer compressing from a separate job).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from engine_adapters.storage.journal import (
    check_journal_compatible,
    compress_segment,
    encode_tick,
    journal_base_header,
    new_segment_bytes,
    read_segment,
    scan_journal_segment,
    segment_path,
)
from engine_adapters.storage.log_reader import torn_header
from engine_adapters.storage.log_writer import (
    DEFAULT_MAX_SEGMENT_BYTES,
    DEFAULT_ROTATE_TICKS,
    FsyncMode,
    FsyncPolicy,
    fsync_or_die,
    write_all,
)
from engine_adapters.storage.segment import (
    JOURNAL_SUFFIX,
    ZSTD_SUFFIX,
    StorageError,
    decode_header,
    fsync_dir,
    list_segments,
    truncate_to,
)
from engine_core.canonical import CanonicalBatch
from engine_core.config import Config


@attrs.frozen(kw_only=True, slots=True)
class JournalRecovery:
    """What opening did to the journal's last segment."""

    truncated_bytes: int
    last_tick: int | None
    message: str


def trim_journal(data_dir: Path | str, last_tick: int | None) -> int:
    """Drop journaled ticks after `last_tick` (all of them when None); returns ticks dropped.

    A tick is journaled before it is stepped and logged, so a crash in between leaves the
    journal one tick ahead of the log. Opening a data dir aligns the two, or `replay` of
    the journal would produce a tick the log never had.
    """
    folder = Path(data_dir) / "journal"
    if not folder.is_dir():
        return 0
    dropped = 0
    for seg in reversed(list_segments(folder, JOURNAL_SUFFIX)):
        data = read_segment(seg)
        if torn_header(data):
            continue  # opening the journal deals with it
        s = scan_journal_segment(seg, data)
        extra = [f for f in s.frames if last_tick is None or f[2] > last_tick]
        if not extra:
            break
        if seg.name.endswith(ZSTD_SUFFIX):
            raise StorageError(seg, extra[0][0], "a compressed journal segment is ahead of "
                                                 "the log; restore the log or move it away")
        dropped += len(extra)
        if len(extra) == len(s.frames):
            seg.unlink()
            fsync_dir(folder)
            continue
        truncate_to(seg, extra[0][0])
        break
    return dropped


class JournalWriter:
    """Appends tick frames to `<dir>/journal/`; open with `JournalWriter.open`."""

    def __init__(self, folder: Path, cfg: Config, symbols: Sequence[str], engine_version: str,
                 fsync: FsyncPolicy, rotate_ticks: int, max_bytes: int, compress_closed: bool,
                 next_no: int, last_tick: int | None, recovery: JournalRecovery) -> None:
        params = json.dumps({"max_segment_bytes": max_bytes, "rotate_ticks": rotate_ticks},
                            sort_keys=True, separators=(",", ":"))
        self.folder = folder
        self._base = journal_base_header(cfg, symbols, engine_version, params)
        self._index = {s: i for i, s in enumerate(symbols)}
        self._fsync = fsync
        self._rotate = rotate_ticks
        self._max = max_bytes
        self._compress = compress_closed
        self._no = next_no
        self.last_tick = last_tick
        self.recovery = recovery
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._first = 0
        self._since = 0

    @classmethod
    def open(cls, data_dir: Path | str, cfg: Config, symbols: Sequence[str],
             engine_version: str, *, fsync: FsyncPolicy | str = "interval:4",
             rotate_ticks: int = DEFAULT_ROTATE_TICKS,
             max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
             compress_closed: bool = False, allow_config_change: bool = False
             ) -> JournalWriter:
        """Open (creating or recovering) a data dir's journal. Each open starts a new segment
        at its first tick, which must be journaled with `session_start=True`."""
        policy = FsyncPolicy.parse(fsync) if isinstance(fsync, str) else fsync
        folder = Path(data_dir) / "journal"
        folder.mkdir(parents=True, exist_ok=True)
        segs = list_segments(folder, JOURNAL_SUFFIX)
        rec = JournalRecovery(truncated_bytes=0, last_tick=None, message="journal is clean")
        next_no, last = 0, None
        while segs:
            seg = segs[-1]
            data = read_segment(seg)
            if torn_header(data):
                seg.unlink()  # torn header: the segment never held a tick
                segs.pop()
                continue
            s = scan_journal_segment(seg, data)
            check_journal_compatible(s.header, seg, cfg, symbols, allow_config_change)
            if s.problem is not None and not s.torn:
                raise StorageError(seg, s.problem_offset or 0,
                                   f"corruption inside the journal: {s.problem}; refusing "
                                   f"to open (move the file away or restore it)")
            cut = len(data) - s.good_end
            if cut and seg.name.endswith(ZSTD_SUFFIX):
                raise StorageError(seg, s.good_end, "compressed segment is incomplete")
            if not s.frames:
                seg.unlink()
                segs.pop()
                continue
            if cut:
                truncate_to(seg, s.good_end)
            last = s.frames[-1][2]
            next_no = s.header.segment_no + 1
            msg = (f"truncated a torn tick frame ({cut} bytes) from {seg.name} at byte "
                   f"{s.good_end}; last complete tick is {last}") if cut else "journal is clean"
            rec = JournalRecovery(truncated_bytes=cut, last_tick=last, message=msg)
            break
        fsync_dir(folder)
        return cls(folder, cfg, symbols, engine_version, policy, rotate_ticks,
                   max_segment_bytes, compress_closed, next_no, last, rec)

    def append_tick(self, tick_id: int, batches: Sequence[CanonicalBatch],
                    session_start: bool) -> None:
        """Journal one tick's batches (one per token, token order)."""
        last = self.last_tick
        if last is not None and (tick_id <= last or (not session_start and tick_id != last + 1)):
            raise ValueError(f"journal: tick_id must be {last + 1} (or later with a session "
                             f"start): got {tick_id} after {last}")
        if self._fd is None and not session_start:
            raise ValueError(f"journal: tick {tick_id} opens a session and must be journaled "
                             f"with session_start=True")
        frame = encode_tick(tick_id, batches, session_start, self._index)
        if (self._fd is None or session_start
                or tick_id // self._rotate != self._first // self._rotate
                or self._size + len(frame) > self._max):
            self._new_segment(tick_id)
        assert self._fd is not None
        write_all(self._fd, frame)
        self._size += len(frame)
        self.last_tick = tick_id
        self._since += 1
        if self._fsync.mode is not FsyncMode.NONE and self._since >= self._fsync.every:
            self.sync()

    def _new_segment(self, tick_id: int) -> None:
        closed = self._path
        self._close_fd()
        header = new_segment_bytes(self._base, self._no, tick_id)
        path = segment_path(self.folder, self._no, tick_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        write_all(fd, header)
        fsync_or_die(fd, path)
        fsync_dir(self.folder)
        decode_header(header, path, self._base.magic)  # our own bytes must read back
        self._fd, self._path, self._size, self._first = fd, path, len(header), tick_id
        self._no += 1
        if closed is not None and self._compress:
            compress_segment(closed)

    def sync(self) -> None:
        if self._fd is not None and self._path is not None:
            fsync_or_die(self._fd, self._path)
        self._since = 0

    def _close_fd(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """fsync and close (the active segment stays uncompressed: it may be continued)."""
        self._close_fd()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
