"""The evidence an alert states: the sentence, the chat facts and the JSON round trip."""

from __future__ import annotations

import pytest

from engine_adapters.chat_sinks import discord_payload, slack_payload, telegram_payload
from engine_adapters.evidence_text import (
    AlertEvidence,
    evidence_facts,
    evidence_from_json,
    evidence_json,
    evidence_text,
    money,
    price_text,
)
from engine_core.alerts import Alert
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

FLUSH = AlertEvidence(price=60_120.5, move_pct=-2.3, move_sigma=-4.1, oi_change_pct=-4.1,
                      window_s=60, liq_long_usd=3.2e6, liq_short_usd=0.0,
                      funding_per_hour=0.0001, oi=81_234.5, mark=60_110.0, index=60_150.0)


def test_the_sentence_a_trader_reads() -> None:
    assert evidence_text(FLUSH) == ("OI \u22124.1 % in 60 s, $3.2 M of longs liquidated, "
                                    "price \u22122.3 % = 4.1\u03c3, funding 0.0100 %/h")


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
        ("Price", "60,120.5"), ("Move in 60 s", "\u22122.3 % = 4.1\u03c3"),
        ("OI change in 60 s", "\u22124.1 %"), ("Liquidated", "$3.2 M longs"),
        ("Funding", "0.0100 %/h")]


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
    assert "Price: 60,120.5" in tg and "OI change in 60 s: \u22124.1 %" in tg
    dc = discord_payload(a, evidence=FLUSH)["embeds"][0]
    assert dc["description"].endswith("\n" + said)
    assert {"name": "Liquidated", "value": "$3.2 M longs", "inline": True} in dc["fields"]
    sl = slack_payload(a, evidence=FLUSH)
    assert sl["text"].endswith(said) and sl["blocks"][1]["text"]["text"].endswith(said)
    assert {"type": "mrkdwn", "text": "*Funding*\n0.0100 %/h"} in sl["blocks"][1]["fields"]
    # without evidence, the payloads are what they were
    assert said not in telegram_payload(a, chat_id="1")["text"]
    assert discord_payload(a)["embeds"][0]["description"] == a.message
