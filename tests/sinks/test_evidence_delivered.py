"""A known flush played through the shell's loop reaches a webhook and each chat service with
its evidence: the same figures, each with its own window, as alerts.jsonl states them.

The events are those of tests/ux/test_evidence_windows.py (figures re-derived there from their
definitions); the sinks are the real ones, delivering to loopback servers that speak the
webhook and the Telegram / Discord / Slack formats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import engine_core as ec
from engine_adapters.chat_sinks import chat_sinks
from engine_adapters.evidence_text import evidence_from_json, evidence_text, money
from engine_adapters.sinks import WebhookSink
from engine_app.bootstrap import run_events
from tests.drive import memory_session
from tests.sinks.chat_servers import ChatServer, serving
from tests.sinks.test_chat_sinks import toml_for
from tests.ux.test_evidence_windows import FLUSH, HOLD, SYM, T0, _events, expected
from tests.ux.test_webhook import Receiver
from tests.ux.test_webhook import serving as webhook_serving

Run = Callable[..., Any]
MINUS = "\u2212"


@pytest.mark.parametrize("service", ["telegram", "discord", "slack"])
def test_the_unwind_arrives_with_its_figures_and_their_windows(arun: Run, service: str
                                                               ) -> None:
    cfg = ec.Config().evolve(features={"move_window_ticks": 480, "oi_fast_window_ticks": 120,
                                       "liq_window_ticks": 80}, structural=HOLD)
    receiver = Receiver([], stall_s=0.0)
    chat = ChatServer(service, [])

    async def body(url: str) -> None:
        async with serving(chat):
            session, _log = memory_session(cfg, (SYM,))
            hook = WebhookSink(url, timeout_s=2.0, seed=1)
            sinks = [hook, *chat_sinks(toml_for(service, chat.url))]
            for s in sinks:
                await s.start()
            session.sinks.extend(sinks)
            run_events(session, _events())  # the sinks only queue: the loop never waits
            for s in sinks:
                st = await s.stop(drain_timeout_s=5.0)
                assert st.pending == 0 and st.delivered == 2  # the UNWIND and the SYSTEMIC

    arun(webhook_serving(receiver, body))
    unwind = next(d for d in receiver.accepted if d["kind"] == "STRUCTURAL_UNWIND")
    at = int(str(unwind["tick_id"])) - (T0 // ec.TICK_MS + 1)
    want = expected(cfg, at)
    ev_json = unwind["evidence"]
    assert isinstance(ev_json, dict)
    ev = evidence_from_json(ev_json)
    assert (ev.move_window_s, ev.oi_window_s, ev.liq_window_s) == (120.0, 30.0, 20.0)
    assert at >= FLUSH and ev.price == pytest.approx(97.7)
    assert ev.move_pct == pytest.approx(want.move_pct, abs=0.006)
    assert ev.move_sigma == pytest.approx(want.move_sigma, abs=0.006)
    assert ev.oi_change_pct == pytest.approx(want.oi_change_pct, abs=0.006)
    assert ev.liq_long_usd == pytest.approx(want.liq_long_usd, abs=1.0)
    said = evidence_text(ev)
    assert unwind["evidence_text"] == said and "vs 30 s avg" in said and "vs 2 min avg" in said
    assert "(20 s decaying sum)" in said
    # the chat service got the same sentence and the facts named with their windows
    assert ev.move_pct is not None and ev.oi_change_pct is not None and ev.liq_long_usd
    move = f"{MINUS}{abs(ev.move_pct):.1f} % = {abs(ev.move_sigma or 0):.1f}\u03c3"
    facts = {"Move vs 2 min avg": move, "OI vs 30 s avg": f"{MINUS}{abs(ev.oi_change_pct):.1f} %",
             "Liquidated (20 s decaying sum)": f"{money(ev.liq_long_usd)} longs"}
    (got,) = [p for p in chat.accepted if f"{SYM} is UNWINDING" in str(p)]
    if service == "telegram":
        text = got["text"]
        assert said in text and all(f"{k}: {v}" in text for k, v in facts.items())
    elif service == "discord":
        embed = got["embeds"][0]
        assert embed["description"].endswith(said)
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert all(fields[k] == v for k, v in facts.items())
    else:
        assert got["text"].endswith(said)
        blocks = [f["text"] for f in got["blocks"][1]["fields"]]
        assert all(f"*{k}*\n{v}" in blocks for k, v in facts.items())
