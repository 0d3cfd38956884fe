"""The evidence an alert states: the sentence, the chat facts and the JSON round trip.

The flush below is a real core evidence record (packed by `engine_core.evidence`, with a
config whose move, OI and liquidation windows all differ), so each figure must come out with
its own window, the one its rule reads.
"""

from __future__ import annotations

import pytest

import engine_core as ec
from engine_adapters.chat_sinks import discord_payload, slack_payload, telegram_payload
from engine_adapters.evidence_text import (
    AlertEvidence,
    Basis,
    duration,
    evidence_facts,
    evidence_from_json,
    evidence_from_record,
    evidence_json,
    evidence_text,
    money,
    price_text,
    windows_line,
)
from engine_core.alerts import Alert
from engine_core.evidence import EvidenceRecord, EvidenceWindows, pack_evidence
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

#: move over 2 min (480 ticks), OI over 30 s (120), liquidations over 10 s (40)
CFG = ec.Config().evolve(features={"move_window_ticks": 480, "oi_fast_window_ticks": 120,
                                   "liq_window_ticks": 40})
WINDOWS = EvidenceWindows.from_config(CFG)
RECORD = EvidenceRecord.from_bytes(pack_evidence(
    7_182_259_692, 0, 0, price=60_120.5, mark=60_110.0, index=60_150.0, open_interest=81_234.5,
    funding_per_hour=0.0001, liq_long_tick=1.2e6, liq_short_tick=0.0, liq_long_window=3.2e6,
    liq_short_window=0.0, move_sigma=-4.1, move=-0.023, oi_change=-0.041, oi_build=0.12))
FLUSH = evidence_from_record(RECORD, WINDOWS)


def test_each_figure_carries_the_window_of_its_rule() -> None:
    assert (FLUSH.move_window_s, FLUSH.oi_window_s, FLUSH.liq_window_s) == (120.0, 30.0, 10.0)
    assert FLUSH.basis is Basis.MEAN
    assert (FLUSH.price, FLUSH.oi, FLUSH.liq_long_usd) == (60_120.5, 81_234.5, 3.2e6)
    assert FLUSH.move_pct == pytest.approx(-2.3) and FLUSH.move_sigma == pytest.approx(-4.1)
    assert FLUSH.oi_change_pct == pytest.approx(-4.1)
    assert FLUSH.funding_per_hour == pytest.approx(0.0001)
    # the stock of leverage FRAGILE reads, and the basis, from the same record
    assert (FLUSH.oi_build_pct, FLUSH.oi_norm_s) == (12.0, 86_400.0)
    assert FLUSH.price_vs_index_pct == pytest.approx((60_120.5 / 60_150.0 - 1) * 100, abs=1e-3)
    # the default config: move and OI over 1 min, liquidations over 10 s
    dflt = evidence_from_record(RECORD, EvidenceWindows.from_config(ec.Config()))
    assert (dflt.move_window_s, dflt.oi_window_s, dflt.liq_window_s) == (60.0, 60.0, 10.0)


def test_the_sentence_a_trader_reads() -> None:
    assert evidence_text(FLUSH) == (
        "OI \u22124.1 % vs 30 s avg and +12 % vs 24 h norm, $3.2 M of longs liquidated "
        "(10 s decaying sum), price \u22122.3 % vs 2 min avg = 4.1\u03c3, funding 0.0100 %/h, "
        "basis \u22120.049 % (price vs index)")
    # the shell tracker's figures are plain changes over one window, and say so
    tracked = AlertEvidence(move_pct=-2.3, oi_change_pct=-4.1, liq_long_usd=3.2e6,
                            move_window_s=60, oi_window_s=60, liq_window_s=60)
    assert evidence_text(tracked) == ("OI \u22124.1 % in 60 s, $3.2 M of longs liquidated in "
                                      "60 s, price \u22122.3 % in 60 s")


def test_windows_are_named_the_same_everywhere() -> None:
    assert [duration(s) for s in (10.0, 60.0, 2.5, 120.0, 90.0, 300.0)] == [
        "10 s", "60 s", "2.5 s", "2 min", "90 s", "5 min"]
    assert windows_line(WINDOWS) == ("move vs 2 min avg (\u03c3: the symbol's own RMS of that "
                                     "move), OI vs 30 s avg, liquidations 10 s decaying sum")


def test_unknown_facts_are_left_out_never_zero() -> None:
    ev = AlertEvidence(move_pct=1.25, move_sigma=3.0, liq_short_usd=950.0)
    assert evidence_text(ev) == "$950 of shorts liquidated, price 1.2 % = 3.0\u03c3"
    assert evidence_text(AlertEvidence()) == ""
    assert evidence_facts(AlertEvidence()) == []


def test_both_sides_liquidated_and_no_liquidation() -> None:
    ev = AlertEvidence(liq_long_usd=1.5e6, liq_short_usd=12_400.0)
    assert evidence_text(ev) == "$1.5 M of longs and $12.4 k of shorts liquidated"
    assert ("Liquidated", "none") in evidence_facts(AlertEvidence(liq_long_usd=0.0))


def test_chat_facts() -> None:
    assert evidence_facts(FLUSH) == [
        ("Price", "60,120.5"), ("Move vs 2 min avg", "\u22122.3 % = 4.1\u03c3"),
        ("OI vs 30 s avg", "\u22124.1 %"), ("Liquidated (10 s decaying sum)", "$3.2 M longs"),
        ("Funding", "0.0100 %/h"), ("OI vs 24 h norm", "+12 %"),
        ("Basis (price vs index)", "\u22120.049 %")]


@pytest.mark.parametrize(("usd", "text"), [(0.0, "$0"), (999.4, "$999"), (1000.0, "$1 k"),
                                           (123_456.0, "$123 k"), (3.21e6, "$3.21 M"),
                                           (2.5e9, "$2.5 B")])
def test_money(usd: float, text: str) -> None:
    assert money(usd) == text


def test_prices_keep_the_digits_that_matter() -> None:
    assert [price_text(p) for p in (60_120.5, 3.456789, 25.5, 0.00123456)] == [
        "60,120.5", "3.457", "25.50", "0.0012346"]


def test_a_tiny_negative_rounds_without_a_minus() -> None:
    assert evidence_text(AlertEvidence(oi_change_pct=-0.01)) == "OI 0.0 %"


def test_json_round_trip_and_errors() -> None:
    assert evidence_from_json(evidence_json(FLUSH)) == FLUSH
    assert evidence_json(AlertEvidence())["price"] is None
    d = evidence_json(FLUSH)
    assert (d["move_window_s"], d["oi_window_s"], d["liq_window_s"], d["basis"]) == (
        120.0, 30.0, 10.0, "mean")
    with pytest.raises(ValueError, match=r"window_s was split into move_window_s"):
        evidence_from_json({"window_s": 60})
    with pytest.raises(ValueError, match=r"evidence\.basis must be one of mean, change"):
        evidence_from_json({"basis": "ema"})
    with pytest.raises(ValueError, match=r"unknown key.*colour"):
        evidence_from_json({"colour": 1})
    with pytest.raises(ValueError, match=r"evidence\.price must be a number"):
        evidence_from_json({"price": "1"})


def _unwind() -> Alert:
    return Alert(tick_id=7_182_259_692, kind=AlertKind.STRUCTURAL_UNWIND, token_id=0,
                 symbol="BTCUSDT", fsm=StructuralState.UNWIND, tier=Tier.TIER_OVERLEVERAGED,
                 cluster=ClusterState.CLUSTER_CALM, phase=EventPhase.PREP, event_id=0,
                 trigger_cost=12.5, message="BTCUSDT is UNWINDING: <liquidations>")


def test_each_chat_payload_states_the_evidence() -> None:
    a = _unwind()
    said = evidence_text(FLUSH)
    tg = telegram_payload(a, chat_id="1", evidence=FLUSH)["text"]
    assert "is UNWINDING: &lt;liquidations&gt;\n" + said in tg
    assert "Price: 60,120.5" in tg and "OI vs 30 s avg: \u22124.1 %" in tg
    dc = discord_payload(a, evidence=FLUSH)["embeds"][0]
    assert dc["description"].endswith("\n" + said)
    assert {"name": "Liquidated (10 s decaying sum)", "value": "$3.2 M longs",
            "inline": True} in dc["fields"]
    sl = slack_payload(a, evidence=FLUSH)
    assert sl["text"].endswith(said) and sl["blocks"][1]["text"]["text"].endswith(said)
    assert {"type": "mrkdwn", "text": "*Funding*\n0.0100 %/h"} in sl["blocks"][1]["fields"]
    # without evidence, the payloads are what they were
    assert said not in telegram_payload(a, chat_id="1")["text"]
    assert discord_payload(a)["embeds"][0]["description"] == a.message
