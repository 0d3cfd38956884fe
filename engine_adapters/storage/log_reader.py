"""Reading the output log: scan and check a segment, recover a torn tail, iterate ticks.

`scan_segment` checks a whole segment at once: every record's CRC-32C (google-crc32c, one
call per record, ~5 M/s), the structure of every tick block with numpy over the whole body
(rec_type, token order, one tick id per block, tick +1 unless SESSION_START), then the hash
chain, one BLAKE2b call per tick (research note 4.4 idioms). The first problem ends the scan.

Torn tail or corruption (research note 4.6): bad bytes with no CRC-valid commit record after
them are a torn write (a crash while appending) and `recover_log` truncates them; bad bytes
followed by a valid commit are corruption in the middle of the log, an error naming file and
byte offset, never skipped. A zeroed tail never validates (CRC-32C of zeros is not zero).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import google_crc32c

from engine_adapters.storage.chain import (
    FLAG_SESSION_START,
    REC_COMMIT,
    Commit,
    chain_next,
    decode_commit,
    segment_seed,
)
from engine_adapters.storage.segment import (
    LOG_MAGIC,
    LOG_SUFFIX,
    SegmentHeader,
    StorageError,
    decode_header,
    fsync_dir,
    list_segments,
    truncate_to,
)
from engine_core.record import REC_TOKEN, RECORD_SIZE, Record, crc32c
from engine_core.states import Quality

if TYPE_CHECKING:
    import numpy as np


@functools.cache
def head_dtype() -> np.dtype[np.void]:
    """The fields the structure check needs, viewed in place over 64-byte records.

    numpy is imported here, at the first scan, not with the module: a `run` into a fresh
    data dir scans no segment and so never imports it (its start-up is part of `run`).
    """
    import numpy as np

    return np.dtype({"names": ["tick", "tok", "rt", "flags", "quality", "crc"],
                     "formats": ["<u8", "<u2", "u1", "u1", "<u2", "<u4"],
                     "offsets": [0, 8, 10, 13, 20, 60], "itemsize": RECORD_SIZE})


_SESSION = int(Quality.SESSION_START)
#: The C function itself: engine_core.record.crc32c adds a Python call per record.
_crc: Callable[[bytes], int] = google_crc32c.value


@attrs.frozen(kw_only=True, slots=True)
class SegmentScan:
    """What a scan found in one segment: the valid prefix, and the first problem if any."""

    path: Path
    header: SegmentHeader
    #: Complete, valid ticks from the start of the body.
    n_ticks: int
    first_tick: int | None
    last_tick: int | None
    #: Chain value after the last valid tick (the header seed if none).
    last_chain: bytes
    #: File offset just past the last valid tick.
    good_end: int
    file_size: int
    #: Offset and description of the first problem; None when the whole file is valid.
    problem_offset: int | None = None
    problem: str | None = None
    #: True when nothing valid follows the problem: a torn write at the end.
    torn: bool = False


@attrs.frozen(kw_only=True, slots=True)
class LogTick:
    """One committed tick of the log."""

    tick_id: int
    records: tuple[Record, ...]
    commit: Commit


@attrs.frozen(kw_only=True, slots=True)
class RecoveryReport:
    """What `recover_log` did to the active segment; `message` is for the operator."""

    truncated_bytes: int
    dropped_ticks: tuple[int, ...]
    removed_files: tuple[str, ...]
    message: str


def scan_segment(path: Path, data: bytes, *, prev_tick: int | None = None) -> SegmentScan:
    """Check one segment's bytes; raise StorageError only if its header is unreadable."""
    header = decode_header(data, path, LOG_MAGIC)
    if header.record_size != RECORD_SIZE:
        raise StorageError(path, 10, f"record size {header.record_size}, expected {RECORD_SIZE}")
    hl = header.header_len
    n = header.n_tokens
    blk = (n + 1) * RECORD_SIZE
    body = data[hl:]
    n_rec = len(body) // RECORD_SIZE
    import numpy as np

    arr = np.frombuffer(data, dtype=head_dtype(), count=n_rec, offset=hl)
    stored = arr["crc"].tolist()
    computed = [_crc(body[o:o + 60]) for o in range(0, n_rec * 64, 64)]
    crc_ok = [True] * n_rec if computed == stored else [
        c == s for c, s in zip(computed, stored, strict=True)]
    seed = segment_seed(data[:hl])
    bad_rec: int | None = None
    what = ""
    if not all(crc_ok):
        bad_rec = crc_ok.index(False)
        what = "record crc32c mismatch"
    n_blk = n_rec // (n + 1)
    if bad_rec is not None:
        n_blk = min(n_blk, bad_rec // (n + 1))
    bad_rec_s, what_s = _structure(arr[:n_blk * (n + 1)], n, n_blk, header, prev_tick)
    if bad_rec_s is not None:
        bad_rec, what = bad_rec_s, what_s
        n_blk = bad_rec // (n + 1)
    chain = seed
    good = 0
    for b in range(n_blk):
        o = b * blk
        c = o + n * RECORD_SIZE
        nxt = chain_next(chain, body[o:c], body[c:c + 24], body[c + 40:c + 56])
        if nxt != body[c + 24:c + 40]:
            bad_rec, what = b * (n + 1), "hash chain broken (a record or commit was altered)"
            break
        chain = nxt
        good = b + 1
    if bad_rec is None and len(body) > good * blk:
        bad_rec, what = good * (n + 1), "incomplete tick at the end"
    ticks = arr["tick"]
    first = int(ticks[0]) if good else None
    last = int(ticks[(good - 1) * (n + 1)]) if good else None
    good_end = hl + good * blk
    if bad_rec is None:
        return SegmentScan(path=path, header=header, n_ticks=good, first_tick=first,
                           last_tick=last, last_chain=chain, good_end=good_end,
                           file_size=len(data))
    # A valid commit after the problem means the bad bytes are not a torn tail.
    rt = arr["rt"]
    later = [k for k in range(bad_rec, n_rec) if crc_ok[k] and rt[k] == REC_COMMIT]
    offset = hl + bad_rec * RECORD_SIZE
    return SegmentScan(path=path, header=header, n_ticks=good, first_tick=first,
                       last_tick=last, last_chain=chain, good_end=good_end,
                       file_size=len(data), problem_offset=offset,
                       problem=f"{what} (record {bad_rec}, after tick {last})",
                       torn=not later)


def _structure(arr: np.ndarray, n: int, n_blk: int, header: SegmentHeader,
               prev_tick: int | None) -> tuple[int | None, str]:
    """First record breaking the block structure, with what is wrong, or (None, "")."""
    import numpy as np

    if n_blk == 0:
        return None, ""
    a = arr.reshape(n_blk, n + 1)
    rt, tok, tick = a["rt"], a["tok"], a["tick"]
    bad = np.zeros((n_blk, n + 1), dtype=bool)
    bad[:, :n] |= rt[:, :n] != REC_TOKEN
    bad[:, n] |= rt[:, n] != REC_COMMIT
    bad[:, :n] |= tok[:, :n] != np.arange(n, dtype=np.uint16)
    bad[:, n] |= tok[:, n] != n
    bad |= tick != tick[:, :1]
    ticks = tick[:, 0].astype(np.int64)
    start = (a["flags"][:, n] & FLAG_SESSION_START) != 0
    if n:
        bad[:, 0] |= ((a["quality"][:, 0] & _SESSION) != 0) != start
    prev = np.empty(n_blk, dtype=np.int64)
    prev[0] = -1 if prev_tick is None else prev_tick
    prev[1:] = ticks[:-1]
    jump = ~start & (ticks != prev + 1)
    if prev_tick is None:
        jump[0] = False
    back = ticks <= prev
    bad[:, n] |= jump | back
    bad[0, 0] |= int(ticks[0]) != header.first_tick
    if not bad.any():
        return None, ""
    flat = int(np.argmax(bad.reshape(-1)))
    b, i = divmod(flat, n + 1)
    t = int(ticks[b])
    if i == n:
        if rt[b, n] != REC_COMMIT:
            return flat, f"tick {t}: rec_type {rt[b, n]} where the commit record (2) belongs"
        if tok[b, n] != n:
            return flat, f"tick {t}: commit says {tok[b, n]} tokens, header says {n}"
        if tick[b, n] != t:
            return flat, f"tick {t}: commit carries tick {tick[b, n]}"
        return flat, (f"tick {t} follows tick {int(prev[b])} without SESSION_START "
                      f"(tick ids must go +1 within a session and always increase)")
    if rt[b, i] != REC_TOKEN:
        return flat, f"tick {t}: rec_type {rt[b, i]} where token record {i} belongs"
    if tok[b, i] != i:
        return flat, f"tick {t}: token {tok[b, i]} where token {i} belongs (token order)"
    if tick[b, i] != t:
        return flat, f"tick {t}: token record {i} carries tick {tick[b, i]}"
    if b == 0 and i == 0 and t != header.first_tick:
        return flat, f"first tick {t} differs from the header's first_tick {header.first_tick}"
    return flat, f"tick {t}: SESSION_START in the records disagrees with the commit flags"


def log_dir_of(path: Path) -> Path:
    """Accept a data dir (with log/), a log dir, or a single segment file."""
    if path.is_dir() and (path / "log").is_dir():
        return path / "log"
    return path


def log_segments(path: Path) -> list[Path]:
    p = log_dir_of(path)
    return [p] if p.is_file() else list_segments(p, LOG_SUFFIX)


def scan_log(path: Path) -> Iterator[tuple[SegmentScan, bytes]]:
    """Scan every segment in order, checking the links between them."""
    prev_tick: int | None = None
    prev_chain: bytes | None = None
    segs = log_segments(path)
    for no, seg in enumerate(segs):
        data = seg.read_bytes()
        try:
            s = scan_segment(seg, data, prev_tick=prev_tick)
        except StorageError:
            if no == len(segs) - 1 and torn_header(data):
                raise StorageError(seg, len(data), "torn tail: the segment header is "
                                   "incomplete (a crash while creating it); opening the "
                                   "log removes the file") from None
            raise
        h = s.header
        if h.segment_no != no:
            raise StorageError(seg, 24, f"segment number {h.segment_no}, expected {no}")
        if prev_chain is not None and h.prev_chain != prev_chain:
            raise StorageError(seg, 48, "prev_chain does not match the previous segment's last "
                                        "tick (a segment is missing or was replaced)")
        yield s, data
        if s.problem is not None:
            return
        prev_tick = s.last_tick if s.last_tick is not None else prev_tick
        prev_chain = s.last_chain


def iter_ticks(path: Path) -> Iterator[LogTick]:
    """Every committed tick in order; raises StorageError at the first problem."""
    for s, data in scan_log(path):
        n = s.header.n_tokens
        blk = (n + 1) * RECORD_SIZE
        for b in range(s.n_ticks):
            o = s.header.header_len + b * blk
            recs = tuple(Record.from_bytes(data[o + i * 64:o + i * 64 + 64], check=False)
                         for i in range(n))
            commit = decode_commit(data[o + n * 64:o + blk])
            yield LogTick(tick_id=commit.tick_id, records=recs, commit=commit)
        if s.problem is not None:
            raise StorageError(s.path, s.problem_offset or 0,
                               ("torn tail: " if s.torn else "") + s.problem)


def recover_log(log_dir: Path) -> tuple[RecoveryReport, SegmentScan | None]:
    """Truncate a torn tail of the last segment back to its last complete tick.

    Raises StorageError for corruption followed by valid data. A last segment left without
    any complete tick (or with a torn header) is removed, so the next session starts afresh.
    """
    segs = list_segments(log_dir, LOG_SUFFIX)
    removed: list[str] = []
    truncated = 0
    dropped: tuple[int, ...] = ()
    while segs:
        last = segs[-1]
        data = last.read_bytes()
        try:
            s = scan_segment(last, data)
        except StorageError:
            if not torn_header(data):
                raise
            last.unlink()  # header torn while being written: nothing was ever committed
            fsync_dir(log_dir)
            removed.append(last.name)
            segs.pop()
            continue
        if s.problem is not None and not s.torn:
            raise StorageError(last, s.problem_offset or 0,
                               f"corruption inside the log: {s.problem}; refusing to open "
                               f"(run verify; restore the file or move it away)")
        if s.problem is not None:
            truncated = len(data) - s.good_end
            dropped = _partial_ticks(data, s)
        if s.n_ticks == 0:
            last.unlink()
            fsync_dir(log_dir)
            removed.append(last.name)
            segs.pop()
            continue
        if truncated:
            truncate_to(last, s.good_end)
        return _report(truncated, dropped, removed, s), s
    return _report(truncated, dropped, removed, None), None


def torn_header(data: bytes) -> bool:
    """True if the file ends inside its header: a crash while the segment was being created.

    The length is also recomputed from the header's string fields rather than only trusted
    from `header_len`, so a flipped bit in one of them is corruption, not a reason to delete.
    """
    if len(data) < 64:
        return True
    off = 64
    for _ in range(4):
        if off + 4 > len(data):
            off = len(data)
            break
        off += 4 + int.from_bytes(data[off:off + 4], "little")
    claimed = int.from_bytes(data[12:16], "little")
    # Both the length field and the string fields must say the file ends inside the header:
    # a single damaged byte in either cannot make a segment holding ticks look torn.
    return len(data) < claimed and len(data) < -(-(off + 4) // 64) * 64


def _partial_ticks(data: bytes, s: SegmentScan) -> tuple[int, ...]:
    """Tick ids visible in the dropped tail (from records whose CRC still holds)."""
    out: set[int] = set()
    for o in range(s.good_end, len(data) - 63, 64):
        rec = data[o:o + 64]
        if crc32c(rec[:60]) == int.from_bytes(rec[60:], "little"):
            out.add(int.from_bytes(rec[:8], "little"))
    return tuple(sorted(out))


def _report(truncated: int, dropped: tuple[int, ...], removed: list[str],
            s: SegmentScan | None) -> RecoveryReport:
    if not truncated and not removed:
        msg = "log is clean"
    else:
        parts = []
        if truncated:
            where = f"{s.path.name} at byte {s.good_end}" if s else "?"
            ticks = (f"incomplete tick(s) {', '.join(map(str, dropped))}" if dropped
                     else "an incomplete tick")
            parts.append(f"truncated {truncated} torn bytes ({ticks}) from {where}; "
                         f"last complete tick is {s.last_tick if s else None}")
        if removed:
            parts.append(f"removed segment(s) without a complete tick: {', '.join(removed)}")
        msg = "; ".join(parts)
    return RecoveryReport(truncated_bytes=truncated, dropped_ticks=dropped,
                          removed_files=tuple(removed), message=msg)
