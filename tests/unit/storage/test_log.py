"""Output log: round trip, rotation, sessions, every byte flip, every truncation, chain edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import attrs
import pytest

from engine_adapters.storage.alerts_json import AlertsFile
from engine_adapters.storage.log_reader import iter_ticks, log_segments
from engine_adapters.storage.log_writer import FsyncMode, FsyncPolicy, LogWriter
from engine_adapters.storage.segment import StorageError
from engine_adapters.storage.verify import VerifyStatus, verify
from engine_core.config import Config
from engine_core.record import Record, crc32c

from .helpers import SYMBOLS, make_records, ticks

CFG = Config()


def write(d: Path, tks: list[tuple[int, list[Record], tuple]], **kw: object) -> LogWriter:
    w = LogWriter.open(d, CFG, SYMBOLS, "test-1", fsync="none", **kw)  # type: ignore[arg-type]
    for t, recs, alerts in tks:
        w.append_tick(t, recs, alerts)
    w.close()
    return w


def test_round_trip_and_rotation(tmp_path: Path) -> None:
    tks = ticks(1000, 10)
    write(tmp_path, tks, rotate_ticks=4)
    names = [p.name for p in log_segments(tmp_path)]
    # rotation is aligned to multiples of rotate_ticks: 1000-1003, 1004-1007, 1008-1009
    assert names == ["000000-00000000000000001000.cxlog", "000001-00000000000000001004.cxlog",
                     "000002-00000000000000001008.cxlog"]
    got = list(iter_ticks(tmp_path))
    assert [t.tick_id for t in got] == list(range(1000, 1010))
    assert [list(t.records) for t in got] == [r for _, r, _ in tks]
    assert [t.commit.n_alerts for t in got] == [len(a) for _, _, a in tks]
    assert verify(tmp_path).ok


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a", ticks(5, 6), rotate_ticks=4)
    write(tmp_path / "b", ticks(5, 6), rotate_ticks=4)
    for a, b in zip(log_segments(tmp_path / "a"), log_segments(tmp_path / "b"), strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_session_restart_opens_a_new_segment_and_may_jump(tmp_path: Path) -> None:
    write(tmp_path, ticks(10, 3))
    w = LogWriter.open(tmp_path, CFG, SYMBOLS, "test-1", fsync="tick")
    with pytest.raises(ValueError, match="tick_id must be 13"):
        w.append_tick(20, make_records(20, 3), ())
    for t, r, a in ticks(20, 2):
        w.append_tick(t, r, a)
    w.close()
    assert len(log_segments(tmp_path)) == 2
    assert [t.tick_id for t in iter_ticks(tmp_path)] == [10, 11, 12, 20, 21]
    assert verify(tmp_path).ok


def test_reopen_continues_the_active_segment(tmp_path: Path) -> None:
    tks = ticks(10, 6)
    write(tmp_path / "one", tks)
    write(tmp_path / "two", tks[:2])
    write(tmp_path / "two", tks[2:])
    assert ([p.read_bytes() for p in log_segments(tmp_path / "one")]
            == [p.read_bytes() for p in log_segments(tmp_path / "two")])


def test_config_and_symbol_mismatch_are_refused(tmp_path: Path) -> None:
    write(tmp_path, ticks(10, 2))
    other = CFG.evolve(alerts={"ticks_per_bucket": 7})
    with pytest.raises(StorageError, match="config digest"):
        LogWriter.open(tmp_path, other, SYMBOLS, "test-1")
    with pytest.raises(StorageError, match="symbol table"):
        LogWriter.open(tmp_path, CFG, SYMBOLS[:2], "test-1")
    w = LogWriter.open(tmp_path, other, SYMBOLS, "test-1", allow_config_change=True)
    w.close()


def test_fsync_policy_parse() -> None:
    assert FsyncPolicy.parse("interval:8") == FsyncPolicy(mode=FsyncMode.INTERVAL, every=8)
    assert FsyncPolicy.parse("tick").mode is FsyncMode.TICK
    for bad in ("interval:0", "sometimes", "interval:x"):
        with pytest.raises(ValueError, match="fsync policy"):
            FsyncPolicy.parse(bad)


def test_every_single_byte_flip_is_detected_and_located(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write(src, ticks(50, 3))
    (seg,) = log_segments(src)
    clean = seg.read_bytes()
    work = tmp_path / "work"
    shutil.copytree(src, work)
    (wseg,) = log_segments(work)
    hl = int.from_bytes(clean[12:16], "little")
    for pos in range(len(clean)):
        bad = bytearray(clean)
        bad[pos] ^= 0x5A
        wseg.write_bytes(bytes(bad))
        rep = verify(work)
        assert rep.status is VerifyStatus.CORRUPTION, pos
        assert rep.file is not None and rep.offset is not None, (pos, rep.message)
        # a header flip is located in the header (its CRC covers all of it); a body flip at
        # or before the damaged byte (the record, or the start of a tick whose chain broke)
        assert (rep.offset < hl) if pos < hl else (hl <= rep.offset <= pos), (pos, rep.message)


def test_every_truncation_recovers_each_complete_tick_and_can_continue(tmp_path: Path) -> None:
    tks = ticks(50, 3)
    src = tmp_path / "src"
    write(src, tks)
    (seg,) = log_segments(src)
    clean = seg.read_bytes()
    hl = int.from_bytes(clean[12:16], "little")
    blk = 4 * 64
    # Every offset of the body; inside the header (all cuts there are the same case, a torn
    # header) the first 80 bytes, the last 80 and every 37th, to keep the test fast.
    cuts = [c for c in range(len(clean)) if c >= hl - 80 or c < 80 or c % 37 == 0]
    for cut in cuts:
        d = tmp_path / f"c{cut}"
        (d / "log").mkdir(parents=True)
        (d / "log" / seg.name).write_bytes(clean[:cut])
        w = LogWriter.open(d, CFG, SYMBOLS, "test-1", fsync="none")
        kept = max(0, (cut - hl) // blk)
        assert w.last_tick == (50 + kept - 1 if kept else None), cut
        if cut > hl and (cut - hl) % blk:
            assert "truncated" in w.recovery.message
        for t, r, a in tks[kept:]:
            w.append_tick(t, r, a)
        w.close()
        assert (d / "log" / seg.name).read_bytes() == clean, cut
        shutil.rmtree(d)


def test_zero_tail_is_torn_not_valid(tmp_path: Path) -> None:
    write(tmp_path, ticks(50, 2))
    (seg,) = log_segments(tmp_path)
    with open(seg, "ab") as f:
        f.write(bytes(64 * 9))
    assert verify(tmp_path).status is VerifyStatus.CORRUPTION
    w = LogWriter.open(tmp_path, CFG, SYMBOLS, "test-1")
    assert w.recovery.truncated_bytes == 64 * 9
    w.close()
    assert verify(tmp_path).ok


def test_mid_log_corruption_is_refused_with_offset(tmp_path: Path) -> None:
    write(tmp_path, ticks(50, 3))
    (seg,) = log_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    hl = int.from_bytes(data[12:16], "little")
    data[hl + 64 + 30] ^= 1  # token 1 of the first tick
    seg.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corruption inside the log") as ei:
        LogWriter.open(tmp_path, CFG, SYMBOLS, "test-1")
    assert ei.value.offset == hl + 64 and ei.value.path == str(seg)


def test_edited_record_with_recomputed_crc_breaks_the_chain(tmp_path: Path) -> None:
    write(tmp_path, ticks(50, 3))
    (seg,) = log_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    hl = int.from_bytes(data[12:16], "little")
    o = hl + 4 * 64 + 2 * 64  # tick 51, token 2
    rec = Record.from_bytes(bytes(data[o:o + 64]))
    data[o:o + 64] = attrs.evolve(rec, pressure=rec.pressure + 1).to_bytes()
    assert crc32c(bytes(data[o:o + 60])) == int.from_bytes(data[o + 60:o + 64], "little")
    seg.write_bytes(bytes(data))
    rep = verify(tmp_path)
    assert rep.status is VerifyStatus.CORRUPTION and "hash chain" in rep.message
    assert rep.offset == hl + 4 * 64


def test_wrong_alert_bits_with_valid_chain_are_a_determinism_breach(tmp_path: Path) -> None:
    tks = ticks(50, 3)
    t, recs, alerts = tks[1]
    recs = [attrs.evolve(recs[0], alerts=recs[0].alerts ^ 0b100), *recs[1:]]
    write(tmp_path, [tks[0], (t, recs, alerts), tks[2]])
    rep = verify(tmp_path)
    assert rep.status is VerifyStatus.DETERMINISM_BREACH and rep.exit_code == 1
    assert rep.breach is not None
    assert (rep.breach.tick_id, rep.breach.token_id, rep.breach.field) == (51, 0, "alerts")


def test_alerts_file_is_compared(tmp_path: Path) -> None:
    tks = ticks(50, 8)
    write(tmp_path, tks)
    af = AlertsFile(tmp_path / "alerts.jsonl")
    for _, _, a in tks:
        af.append(a)
    af.close()
    assert verify(tmp_path).ok
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    assert lines
    (tmp_path / "alerts.jsonl").write_text("\n".join(lines[:-1]) + "\n")
    rep = verify(tmp_path)
    assert rep.status is VerifyStatus.DETERMINISM_BREACH
    assert rep.breach is not None and "alerts.jsonl" in rep.breach.field


def test_fast_encoder_matches_the_record_codec() -> None:
    from engine_adapters.storage.log_writer import encode_records

    for t, recs, _ in ticks(7, 5):
        assert encode_records(t, recs) == b"".join(r.to_bytes() for r in recs)
    with pytest.raises(ValueError, match="token order"):
        encode_records(7, list(reversed(make_records(7, 3))))
