"""DIR/evidence: round trip, torn tail cut on reopen, truncation behind the log, tampering."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_adapters.storage.evidence_store import (
    EvidenceStore,
    evidence_files,
    iter_evidence_files,
    read_evidence,
)
from engine_adapters.storage.segment import StorageError
from engine_core.evidence import EvidenceFlag, pack_evidence


def _tick(tick: int, n: int = 3) -> bytes:
    return b"".join(
        pack_evidence(tick, i, int(EvidenceFlag.NO_SIGMA) if i == 2 else 0, 100.0 + tick + i,
                      100.1 + tick, 99.9 + tick, 5000.0 + i, 1e-5, 10.0 * i, 0.0, 1000.0 * i,
                      0.0, -4.1, -0.023, 0.01 * i)
        for i in range(n))


def test_round_trip_across_sessions(tmp_path: Path) -> None:
    s = EvidenceStore.open(tmp_path)
    for t in range(100, 105):
        s.append_tick(t, _tick(t))
    s.close()
    s = EvidenceStore.open(tmp_path)
    assert s.last_tick == 104 and s.repaired == 0
    s.append_tick(200, _tick(200))
    s.close()
    assert [p.name for p in evidence_files(tmp_path)] == ["ev-000000000100.bin",
                                                          "ev-000000000200.bin"]
    ev = read_evidence(tmp_path)
    assert len(ev) == 6 * 3
    r = ev[(102, 1)]
    assert r.price_value == pytest.approx(203.0) and r.liq_long_window == 1000
    assert r.move_sigma_value == pytest.approx(-4.1) and ev[(102, 2)].move_sigma_value is None
    with pytest.raises(ValueError, match="not after"):
        EvidenceStore.open(tmp_path).append_tick(200, _tick(200))


def test_torn_tail_is_cut_on_reopen(tmp_path: Path) -> None:
    s = EvidenceStore.open(tmp_path)
    for t in range(10, 13):
        s.append_tick(t, _tick(t))
    s.close()
    path = evidence_files(tmp_path)[-1]
    with open(path, "ab") as f:
        f.write(_tick(13)[:100])  # a crash in the middle of tick 13's second record
    s = EvidenceStore.open(tmp_path)
    assert s.repaired == 36 and s.last_tick == 13  # 13's first record is whole
    assert path.stat().st_size == (9 + 1) * 64
    s.truncate_after(12)
    assert s.last_tick == 12 and path.stat().st_size == 9 * 64
    s.append_tick(13, _tick(13))
    s.close()
    assert sorted({k[0] for k in read_evidence(tmp_path)}) == [10, 11, 12, 13]


def test_truncate_after_drops_whole_newer_files(tmp_path: Path) -> None:
    for first in (10, 20):
        s = EvidenceStore.open(tmp_path)
        for t in range(first, first + 3):
            s.append_tick(t, _tick(t))
        s.close()
    s = EvidenceStore.open(tmp_path)
    assert s.truncate_after(11) == 4 * 3
    assert [p.name for p in evidence_files(tmp_path)] == ["ev-000000000010.bin"]
    assert max(k[0] for k in read_evidence(tmp_path)) == 11


def test_a_tampered_record_names_file_and_offset(tmp_path: Path) -> None:
    s = EvidenceStore.open(tmp_path)
    s.append_tick(5, _tick(5))
    s.append_tick(6, _tick(6))
    s.close()
    path = evidence_files(tmp_path)[0]
    data = bytearray(path.read_bytes())
    data[64 * 4 + 20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match=r"byte 256: evidence record: .*crc32c"):
        list(iter_evidence_files(tmp_path))
