"""A crash between journaling a tick and logging it: reopening aligns journal and log."""

from __future__ import annotations

from pathlib import Path

import engine_core as ec
from engine_adapters.storage import iter_journal, iter_ticks, verify
from engine_app.bootstrap import open_session, replay_journal, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_app.session import Session
from engine_sim.simulation import MarketSimulator, Regime, Segment
from engine_sim.synthetic_capture import capture_items

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def feed(session: Session, start_ms: int, seconds: float, seed: int) -> None:
    sim = MarketSimulator(SYMBOLS, [Segment(name="s", seconds=seconds, leader=Regime(),
                                            bystander=Regime())], seed=seed, start_ms=start_ms)
    run_lines(session, capture_items(sim.events()))


def test_journal_ahead_of_the_log_is_trimmed_on_reopen(tmp_path: Path) -> None:
    dd = DataDir(tmp_path / "dd")
    s = open_session(dd, ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION, fsync="none")
    feed(s, 1_795_564_800_000, 3.0, seed=1)
    last = s.stats.last_tick
    assert last is not None
    # the crash: the next tick reached the journal, then the process died before the log
    journal = s.ports.journal
    assert journal is not None
    journal.append_tick(last + 1, s.ingest.flush(last + 1), session_start=False)
    journal.close()
    s.ports.log.close()
    assert max(t.tick_id for t in iter_journal(dd.root)) == last + 1
    s2 = open_session(dd, ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION, fsync="none")
    assert any("ahead of the log" in m for m in s2.recovery_messages)
    feed(s2, 1_795_564_900_000, 2.0, seed=2)  # a new session continues the data dir
    s2.close()
    journal_ticks = [t.tick_id for t in iter_journal(dd.root)]
    log_ticks = [t.tick_id for t in iter_ticks(dd.root)]
    assert journal_ticks == log_ticks
    assert verify(dd.root).exit_code == 0
    assert replay_journal(dd.root, tmp_path / "re", compare=True).exit_code == 0


def test_evidence_ahead_of_the_log_or_torn_is_repaired_on_reopen(tmp_path: Path) -> None:
    import attrs

    from engine_adapters.storage.evidence_store import evidence_files, read_evidence
    from engine_core.evidence import EvidenceRecord

    dd = DataDir(tmp_path / "dd")
    s = open_session(dd, ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION, fsync="none")
    feed(s, 1_795_564_800_000, 3.0, seed=1)
    last = s.stats.last_tick
    assert last is not None and s.ports.evidence is not None
    s.close()
    # the crash: evidence of a tick the log never got, then half a record more
    path = evidence_files(dd.root)[-1]
    tail = path.read_bytes()[-2 * 64:]
    with open(path, "ab") as f:
        f.write(attrs.evolve(EvidenceRecord.from_bytes(tail[:64]), tick_id=last + 1).to_bytes())
        f.write(tail[64:100])
    s2 = open_session(dd, ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION, fsync="none")
    assert any("evidence: cut a torn tail of 36 byte(s)" in m for m in s2.recovery_messages)
    assert max(k[0] for k in read_evidence(dd.root)) == last  # the tick after the log went
    feed(s2, 1_795_564_900_000, 2.0, seed=2)
    s2.close()
    ev_ticks = sorted({k[0] for k in read_evidence(dd.root)})
    assert ev_ticks == [t.tick_id for t in iter_ticks(dd.root)]
    assert verify(dd.root).exit_code == 0
    assert replay_journal(dd.root, tmp_path / "re", compare=True).exit_code == 0
