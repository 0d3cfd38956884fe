"""Scoring on hand-made events and alerts whose figures are worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_adapters.evaluation.scoring import (
    AlertMark,
    LabelledEvent,
    alerts_from_data_dir,
    dump_events,
    load_events,
    score,
)

H = 3_600_000
DAY = 86_400_000
T0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY)


def ev(sym: str, onset_h: float, end_h: float, direction: str = "long_flush") -> LabelledEvent:
    return LabelledEvent(symbol=sym, onset_ms=T0 + int(onset_h * H), end_ms=T0 + int(end_h * H),
                         direction=direction, drawdown=-0.05, oi_change=-0.04, how="hand")


def al(sym: str, at_h: float, kind: str) -> AlertMark:
    return AlertMark(symbol=sym, at_ms=T0 + int(at_h * H), kind=kind)


EVENTS = [ev("BTCUSDT", 10, 11), ev("ETHUSDT", 20, 20.5, "short_squeeze")]


def card(alerts: list[AlertMark]) -> dict:  # type: ignore[type-arg]
    return score(EVENTS, alerts, symbols=["BTCUSDT", "ETHUSDT"], start_ms=T0,
                 end_ms=T0 + 2 * DAY).to_json()


def test_early_alert_recall_by_horizon_and_lead() -> None:
    # BTC warned 30 min ahead, ETH warned 3 h ahead; one far-off false alarm on ETH.
    out = card([al("BTCUSDT", 9.5, "STRUCTURAL_FRAGILE"), al("ETHUSDT", 17, "STRUCTURAL_FRAGILE"),
                al("ETHUSDT", 40, "STRUCTURAL_FRAGILE")])
    k = out["kinds"]["STRUCTURAL_FRAGILE"]
    assert k["recall"] == {"15m": 0.0, "1h": 0.5, "6h": 1.0}
    assert k["precision"] == {"15m": 0.0, "1h": pytest.approx(1 / 3), "6h": pytest.approx(2 / 3)}
    assert k["lead_ms"]["median"] == pytest.approx((0.5 * H + 3 * H) / 2)
    assert k["lead_ms"]["iqr"] == pytest.approx(0.5 * (3 * H - 0.5 * H))
    assert k["lead_ms"]["share_ge_60s"] == 1.0
    assert k["false_alarms"] == 1
    assert k["false_alarms_per_symbol_day"] == pytest.approx(1 / 4)  # 2 symbols x 2 days
    assert out["kinds"]["EARLY_ANY"]["n_alerts"] == 3


def test_an_alert_of_the_wrong_symbol_is_no_hit() -> None:
    k = card([al("ETHUSDT", 9.9, "STRUCTURAL_TRIGGER_READY")])["kinds"][
        "STRUCTURAL_TRIGGER_READY"]
    assert k["recall"]["6h"] == 0.0 and k["precision"]["6h"] == 0.0
    # ETH's own event is 10 h later: more than 6 h before onset, so a false alarm
    assert k["false_alarms"] == 1


def test_unwind_matches_during_the_event_and_measures_delay() -> None:
    alerts = [al("BTCUSDT", 10 + 30 / 3600, "STRUCTURAL_UNWIND"),   # 30 s after onset
              al("ETHUSDT", 20.25, "STRUCTURAL_UNWIND"),            # 15 min after onset
              al("ETHUSDT", 19.5, "STRUCTURAL_UNWIND")]             # before onset: no hit
    k = card(alerts)["kinds"]["STRUCTURAL_UNWIND"]
    assert k["recall"] == {"15m": 1.0, "1h": 1.0, "6h": 1.0}
    assert k["precision"]["1h"] == pytest.approx(2 / 3)
    assert k["detection_delay_ms"]["median"] == pytest.approx((30_000 + 900_000) / 2)
    assert k["detection_delay_ms"]["share_within_60s"] == 0.5
    assert k["false_alarms"] == 0  # 30 min before onset is inside the 6 h grace
    assert k["lead_ms"]["n"] == 0


def test_systemic_alert_matches_any_symbol() -> None:
    k = card([al("", 10.5, "SYSTEMIC_ALERT")])["kinds"]["SYSTEMIC_ALERT"]
    assert k["recall"]["15m"] == 0.5 and k["precision"]["15m"] == 1.0
    assert k["detection_delay_ms"]["n"] == 1


def test_no_alerts_no_events_and_window_filtering() -> None:
    out = score([ev("BTCUSDT", 60, 61)], [al("BTCUSDT", 59, "X_BASELINE")],
                symbols=["BTCUSDT"], start_ms=T0, end_ms=T0 + DAY,
                state_share={"BUILD": 0.9, "FRAGILE": 0.1}).to_json()
    assert out["n_events"] == 0 and out["kinds"]["STRUCTURAL_UNWIND"]["recall"]["1h"] is None
    assert out["kinds"]["STRUCTURAL_UNWIND"]["precision"]["1h"] is None
    assert "X_BASELINE" not in out["kinds"]  # its only alert lies outside the window
    assert out["state_share"] == {"BUILD": 0.9, "FRAGILE": 0.1}
    with pytest.raises(ValueError, match="end_ms"):
        score([], [], symbols=["A"], start_ms=5, end_ms=5)


def test_baseline_kinds_are_scored_as_early_kinds() -> None:
    out = card([al("BTCUSDT", 9.8, "BASELINE_NAIVE")])
    assert out["kinds"]["BASELINE_NAIVE"]["recall"]["15m"] == 0.5


def test_events_round_trip_and_bad_files(tmp_path: Path) -> None:
    p = tmp_path / "events.json"
    dump_events(EVENTS, p)
    assert load_events(p) == EVENTS
    p.write_text('[{"symbol": "A"}]')
    with pytest.raises(ValueError, match="item 0: missing key"):
        load_events(p)
    with pytest.raises(ValueError, match="direction"):
        LabelledEvent(symbol="A", onset_ms=0, end_ms=1, direction="up", drawdown=0,
                      oi_change=0, how="x")


def test_alerts_from_data_dir(tmp_path: Path) -> None:
    assert alerts_from_data_dir(tmp_path) == []
    line = ('{"cluster":"CLUSTER_FRAGILE","event_id":0,"fsm":null,"kind":"SYSTEMIC_ALERT",'
            '"message":"m","phase":"PREP","symbol":"*","tick_id":4,"tier":null,'
            '"time":"x","token_id":-1,"trigger_cost":null}\n')
    (tmp_path / "alerts.jsonl").write_text(line)
    assert alerts_from_data_dir(tmp_path) == [AlertMark(symbol="", at_ms=1000,
                                                        kind="SYSTEMIC_ALERT")]
