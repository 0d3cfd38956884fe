"""The core's per-tick evidence records, stored in DIR/evidence/ beside the log.

    store = EvidenceStore.open(DIR)         # repairs a torn tail, as the log does
    store.append_tick(tick_id, records.evidence)   # one 64-byte record per token
    store.truncate_after(log.last_tick)     # a crash may leave evidence ahead of the log
    read_evidence(DIR)                      # {(tick_id, token_id): EvidenceRecord}

Files: `evidence/ev-<first tick, 12 digits>.bin`, a new one at each opening of the store
(each session), each a plain run of 64-byte evidence records (`engine_core.evidence`), each
with its own CRC-32C, in tick order, tokens in token order. No header: the tick and token
are in every record. On open the newest file's tail is cut back to the last whole record
whose CRC holds (a torn write of a crash); `read_evidence` raises StorageError naming the
file and offset of any other bad record, so a tampered byte is not silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from engine_adapters.storage.segment import StorageError
from engine_core.evidence import EvidenceRecord
from engine_core.record import RECORD_SIZE, ChecksumError

EVIDENCE_DIR = "evidence"


def evidence_files(root: Path | str) -> list[Path]:
    """The evidence files of a data dir, oldest first (empty when it has none)."""
    d = Path(root) / EVIDENCE_DIR
    return sorted(d.glob("ev-*.bin")) if d.is_dir() else []


def _good_prefix(data: bytes) -> tuple[int, int | None]:
    """(bytes of whole records whose CRC holds, tick of the last of them)."""
    good, last = 0, None
    for off in range(0, len(data) - len(data) % RECORD_SIZE, RECORD_SIZE):
        try:
            rec = EvidenceRecord.from_bytes(data[off:off + RECORD_SIZE])
        except (ChecksumError, ValueError):
            break
        good, last = off + RECORD_SIZE, rec.tick_id
    return good, last


class EvidenceStore:
    """Appender of DIR/evidence/ (see the module docstring)."""

    def __init__(self, root: Path, repaired: int, last_tick: int | None) -> None:
        self.root = root
        #: Bytes cut from a torn tail when the store was opened (0: none).
        self.repaired = repaired
        self.last_tick = last_tick
        self._fd: int | None = None
        self._path: Path | None = None

    @classmethod
    def open(cls, root: Path | str) -> EvidenceStore:
        root = Path(root)
        (root / EVIDENCE_DIR).mkdir(parents=True, exist_ok=True)
        repaired, last = 0, None
        files = evidence_files(root)
        if files:
            data = files[-1].read_bytes()
            good, last = _good_prefix(data)
            if good < len(data):
                repaired = len(data) - good
                with open(files[-1], "r+b") as f:
                    f.truncate(good)
            if last is None and len(files) > 1:
                last = _good_prefix(files[-2].read_bytes())[1]
        return cls(root, repaired, last)

    def append_tick(self, tick_id: int, evidence: bytes) -> None:
        """Append one tick's evidence (a multiple of 64 bytes); ticks must increase."""
        if len(evidence) % RECORD_SIZE:
            raise ValueError(f"tick {tick_id}: evidence must be a multiple of {RECORD_SIZE} "
                             f"bytes, got {len(evidence)}")
        if self.last_tick is not None and tick_id <= self.last_tick:
            raise ValueError(f"evidence tick {tick_id} is not after the stored {self.last_tick}")
        if self._fd is None:
            self._path = self.root / EVIDENCE_DIR / f"ev-{tick_id:012d}.bin"
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(self._fd, evidence)
        self.last_tick = tick_id

    def truncate_after(self, tick_id: int | None) -> int:
        """Drop records of ticks after `tick_id` (all for None); return how many went."""
        dropped = 0
        for path in reversed(evidence_files(self.root)):
            data = path.read_bytes()
            keep = 0
            for off in range(0, len(data), RECORD_SIZE):
                tick = int.from_bytes(data[off:off + 8], "little")
                if tick_id is None or tick > tick_id:
                    break
                keep = off + RECORD_SIZE
            dropped += (len(data) - keep) // RECORD_SIZE
            if keep == 0:
                path.unlink()
                continue
            if keep < len(data):
                with open(path, "r+b") as f:
                    f.truncate(keep)
            break
        if dropped:
            self.last_tick = tick_id
        return dropped

    def sync(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def iter_evidence_files(root: Path | str) -> Iterator[EvidenceRecord]:
    """Every stored record, oldest first; StorageError naming file/offset for a bad one."""
    for path in evidence_files(root):
        data = path.read_bytes()
        if len(data) % RECORD_SIZE:
            raise StorageError(path, len(data) - len(data) % RECORD_SIZE,
                               f"{len(data)} bytes is not a whole number of "
                               f"{RECORD_SIZE}-byte evidence records")
        for off in range(0, len(data), RECORD_SIZE):
            try:
                yield EvidenceRecord.from_bytes(data[off:off + RECORD_SIZE])
            except (ChecksumError, ValueError) as e:
                raise StorageError(path, off, f"evidence record: {e}") from e


def read_evidence(root: Path | str) -> dict[tuple[int, int], EvidenceRecord]:
    """{(tick_id, token_id): record} of a data dir (empty for a dir without evidence)."""
    return {(r.tick_id, r.token_id): r for r in iter_evidence_files(root)}
