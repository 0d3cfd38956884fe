"""evaluate_dir on a data dir of bars files and alerts, and the two baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine_adapters.evaluation.bars import append_bars
from engine_adapters.evaluation.evaluate import (
    BASELINE_NAIVE,
    BASELINE_RANDOM,
    evaluate_dir,
    naive_alerts,
    random_alerts,
)
from tests.evaluation.test_labels import FLUSH_AT, T0, series


def _alert(sym: str, at_ms: int, kind: str) -> str:
    return json.dumps({"cluster": "CLUSTER_CALM", "event_id": 0, "fsm": None, "kind": kind,
                       "message": "", "phase": "PREP", "symbol": sym, "tick_id": at_ms // 250,
                       "tier": None, "time": "", "token_id": 0, "trigger_cost": None}) + "\n"


def test_naive_baseline_fires_once_per_rising_edge() -> None:
    b = series()
    b["funding"] = 0.001
    oi = b["oi"].copy()
    oi[1000:] *= 1.05          # +5 % at minute 1000: true for the next hour
    b["oi"] = oi
    marks = naive_alerts({"BTCUSDT": b})
    assert [((m.at_ms - T0) // 60_000, m.kind) for m in marks] == [(1001, BASELINE_NAIVE)]
    b["funding"] = 0.0001      # funding too low: never
    assert naive_alerts({"BTCUSDT": b}) == []


def test_random_baseline_is_seeded() -> None:
    a = random_alerts(50, ["A", "B"], 0, 10**9, seed=3)
    assert a == random_alerts(50, ["A", "B"], 0, 10**9, seed=3)
    assert a != random_alerts(50, ["A", "B"], 0, 10**9, seed=4)
    assert len(a) == 50 and {m.symbol for m in a} == {"A", "B"}
    assert all(m.kind == BASELINE_RANDOM for m in a)


def test_evaluate_a_dir_of_bars_files(tmp_path: Path) -> None:
    append_bars(tmp_path / "bars", {"BTCUSDT": series()})
    onset = T0 + FLUSH_AT * 60_000
    (tmp_path / "alerts.jsonl").write_text(
        _alert("BTCUSDT", onset - 1_800_000, "STRUCTURAL_FRAGILE")
        + _alert("BTCUSDT", onset + 30_000, "STRUCTURAL_UNWIND")
        + _alert("BTCUSDT", T0 + 3_600_000, "STRUCTURAL_UNWIND"))
    res = evaluate_dir(tmp_path)
    doc = res.to_json()
    assert res.bars_source == "bars files" and len(doc["events"]) == 1
    s = doc["scores"]
    assert s["STRUCTURAL_FRAGILE"]["recall"] == {"15m": 0.0, "1h": 1.0, "6h": 1.0}
    assert abs(s["STRUCTURAL_FRAGILE"]["lead_ms"]["median"] - 1_800_000) <= 4 * 60_000
    assert s["STRUCTURAL_UNWIND"]["recall"]["1h"] == 1.0
    assert s["STRUCTURAL_UNWIND"]["false_alarms"] == 1
    assert s["STRUCTURAL_UNWIND"]["false_alarms_per_symbol_day"] == \
        np.float64(1 / doc["window"]["symbol_days"])
    assert s[BASELINE_RANDOM]["n_alerts"] == 3  # as many as the engine's per-symbol alerts
    assert doc["state_share"] is None  # no log in this dir
    assert "STRUCTURAL_FRAGILE" in res.table()
