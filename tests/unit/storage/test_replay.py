"""Journal replay through the real pipeline: byte-identical log, or the first difference."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from engine_adapters.storage.alerts_json import AlertsFile
from engine_adapters.storage.journal_writer import JournalWriter
from engine_adapters.storage.log_writer import LogWriter
from engine_adapters.storage.verify import verify
from engine_app.bootstrap import replay_journal as replay
from engine_core.alerts import Alert
from engine_core.canonical import CanonicalBatch
from engine_core.config import Config
from engine_core.pipeline import initial_state, step
from engine_core.record import Record

from .test_journal import simple_tick

SYMS = ("AAAUSDT", "BBBUSDT", "CCCUSDT")


def live_run(d: Path, sessions: Sequence[range], tamper_tick: int | None = None) -> None:
    """What the app does: step, journal the batches, log the records, append the alerts."""
    cfg = Config()
    jw = JournalWriter.open(d, cfg, SYMS, "test-1", rotate_ticks=16)
    lw = LogWriter.open(d, cfg, SYMS, "test-1", rotate_ticks=16)
    af = AlertsFile(d / "alerts.jsonl")
    for ticks in sessions:
        state: Any = initial_state(cfg, SYMS)
        for t in ticks:
            batches: tuple[CanonicalBatch, ...] = simple_tick(t, 1 + t % 3)
            state, recs, alerts = step(state, batches, t)
            if t == tamper_tick:
                recs = (recs[0], attrs.evolve(recs[1], n_events=recs[1].n_events + 1), recs[2])
            jw.append_tick(t, batches, session_start=t == ticks[0])
            lw.append_tick(t, recs, alerts)
            af.append(alerts)
    jw.close()
    lw.close()
    af.close()


def test_replay_is_byte_identical(tmp_path: Path) -> None:
    live_run(tmp_path / "live", [range(1000, 1040), range(1100, 1110)])
    assert verify(tmp_path / "live").ok
    rep = replay(tmp_path / "live", tmp_path / "again")
    assert rep.identical, rep.message
    assert rep.n_ticks == 50
    assert verify(tmp_path / "again").ok
    assert ((tmp_path / "live" / "alerts.jsonl").read_bytes()
            == (tmp_path / "again" / "alerts.jsonl").read_bytes())


def test_replay_names_the_first_difference(tmp_path: Path) -> None:
    live_run(tmp_path / "live", [range(1000, 1030)], tamper_tick=1021)
    rep = replay(tmp_path / "live", tmp_path / "again")
    assert rep.identical is False and rep.exit_code == 1
    d = rep.difference
    assert d is not None
    assert (d.tick_id, d.token_id, d.field) == (1021, 1, "n_events")


def test_replay_with_custom_step(tmp_path: Path) -> None:
    live_run(tmp_path / "live", [range(1000, 1005)])

    def other_step(s: Any, b: Sequence[CanonicalBatch], t: int
                   ) -> tuple[Any, tuple[Record, ...], tuple[Alert, ...]]:
        s, recs, alerts = step(s, b, t)
        return s, tuple(attrs.evolve(r, spread_bps=r.spread_bps + 1) for r in recs), alerts

    rep = replay(tmp_path / "live", tmp_path / "again", step_fn=other_step)
    assert rep.difference is not None
    assert (rep.difference.tick_id, rep.difference.token_id, rep.difference.field) == (
        1000, 0, "spread_bps")
