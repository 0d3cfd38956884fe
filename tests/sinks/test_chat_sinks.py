"""Telegram, Discord and Slack sinks: their own payloads, their own 429s, never blocking."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from engine_adapters.chat_sinks import (
    ChatService,
    ChatSink,
    Verdict,
    chat_sinks_from_toml,
    discord_payload,
    read_answer,
    slack_payload,
    telegram_payload,
)
from engine_core.alerts import Alert
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier
from tests.sinks.chat_servers import TOKEN, ChatServer, serving

Run = Callable[..., Any]


def alert(tick: int, kind: AlertKind = AlertKind.STRUCTURAL_UNWIND,
          message: str = "BTCUSDT is UNWINDING: liquidations & OI <leaving>") -> Alert:
    return Alert(tick_id=7_182_259_692 + tick, kind=kind, token_id=0, symbol="BTCUSDT",
                 fsm=StructuralState.UNWIND, tier=Tier.TIER_OVERLEVERAGED,
                 cluster=ClusterState.CLUSTER_HEATING, phase=EventPhase.PREP, event_id=3,
                 trigger_cost=41.5, message=message)


def toml_for(service: str, url: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"backoff_base_s": 0.01, "backoff_cap_s": 2.0, "timeout_s": 2.0,
                             **extra}
    if service == "telegram":
        entry.update(token=TOKEN, chat_id="-100123", base_url=url)
    else:
        entry["url"] = url
    return {"sinks": {service: [entry]}}


# ---------------------------------------------------------------------------- payloads
def test_telegram_text_is_escaped_html_with_the_facts() -> None:
    p = telegram_payload(alert(0), chat_id="-100123")
    assert p["chat_id"] == "-100123" and p["parse_mode"] == "HTML"
    lines = p["text"].split("\n")
    assert lines[0] == "<b>Structural Unwind: BTCUSDT</b>"
    assert lines[1] == "BTCUSDT is UNWINDING: liquidations &amp; OI &lt;leaving&gt;"
    assert "Tier: TIER_OVERLEVERAGED" in lines and "Trigger cost: 41.50" in lines
    plain = telegram_payload(alert(0), chat_id="1", parse_mode="")
    assert "parse_mode" not in plain and "OI <leaving>" in plain["text"]


def test_discord_body_has_content_and_one_embed_with_inline_fields() -> None:
    p = discord_payload(alert(0))
    assert p["content"] == "**Structural Unwind: BTCUSDT**"
    (embed,) = p["embeds"]
    assert embed["color"] == 0xE74C3C and embed["timestamp"].endswith("Z")
    assert embed["description"] == alert(0).message  # Discord markdown, not HTML: unescaped
    assert {"name": "State", "value": "UNWIND", "inline": True} in embed["fields"]
    assert p["allowed_mentions"] == {"parse": []}
    systemic = Alert(tick_id=1, kind=AlertKind.SYSTEMIC_ALERT, token_id=-1, symbol="*",
                     fsm=None, tier=None, cluster=ClusterState.CLUSTER_UNWIND,
                     phase=EventPhase.START, event_id=1, trigger_cost=None, message="m")
    assert discord_payload(systemic)["content"] == "**Systemic Alert: market-wide**"


def test_slack_body_has_fallback_text_and_blocks() -> None:
    p = slack_payload(alert(0))
    assert p["text"].startswith("Structural Unwind: BTCUSDT: BTCUSDT is UNWINDING")
    header, section = p["blocks"]
    assert header == {"type": "header",
                      "text": {"type": "plain_text", "text": "Structural Unwind: BTCUSDT"}}
    assert section["text"]["type"] == "mrkdwn"
    assert {"type": "mrkdwn", "text": "*Phase*\nPREP"} in section["fields"]


# ---------------------------------------------------------------------------- config
def test_all_three_tables_load_with_the_webhook_delivery_settings() -> None:
    cfgs = chat_sinks_from_toml({"sinks": {
        "slack": [{"url": "https://hooks.slack.com/services/T/B/x", "kinds": ["SYSTEMIC_ALERT"]}],
        "telegram": [{"token": TOKEN, "chat_id": "@alerts", "max_retries": 3}],
        "discord": [{"url": "https://discord.com/api/webhooks/1/t", "timeout_s": 2}],
        "webhook": [{"url": "https://other.example"}]}})
    assert [c.service for c in cfgs] == [ChatService.TELEGRAM, ChatService.DISCORD,
                                         ChatService.SLACK]
    tg = cfgs[0]
    assert tg.url == f"https://api.telegram.org/bot{TOKEN}/sendMessage"
    assert tg.redacted_url == "https://api.telegram.org/bot<token>/sendMessage"
    assert tg.delivery.max_retries == 3 and cfgs[1].delivery.timeout_s == 2
    assert cfgs[2].delivery.kinds == frozenset({AlertKind.SYSTEMIC_ALERT})


@pytest.mark.parametrize(("table", "says"), [
    ({"telegram": [{"token": TOKEN}]}, r"sinks\.telegram\[0\]: chat_id is required"),
    ({"telegram": [{"chat_id": "1"}]}, "token is required"),
    ({"telegram": [{"token": TOKEN, "chat_id": "1", "parse_mode": "BBCode"}]}, "parse_mode"),
    ({"telegram": [{"token": TOKEN, "chat_id": "1", "timeout_s": "soon"}]},
     r"telegram\[0\]: timeout_s must be a number"),
    ({"discord": [{}]}, r"sinks\.discord\[0\]: url is required"),
    ({"discord": [{"url": "ftp://x"}]}, "must start with http"),
    ({"slack": [{"url": "https://h", "channel": "#x"}]}, "unknown key.*channel"),
    ({"slack": {"url": "https://h"}}, r"write \[\[sinks\.slack\]\]"),
])
def test_bad_tables_name_the_entry_and_key(table: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        chat_sinks_from_toml({"sinks": table})
    assert TOKEN not in str(info.value)


def test_answers_are_read_the_way_each_service_means_them() -> None:
    tg, dc, sl = ChatService.TELEGRAM, ChatService.DISCORD, ChatService.SLACK
    assert read_answer(tg, 200, b'{"ok":true,"result":{}}', {})[0] is Verdict.DELIVERED
    assert read_answer(tg, 200, b'{"ok":false,"description":"x"}', {})[0] is Verdict.REFUSED
    assert read_answer(tg, 429, b'{"ok":false,"parameters":{"retry_after":7}}', {})[:2] == \
        (Verdict.RETRY, 7.0)
    assert read_answer(dc, 429, b'{"retry_after":0.35,"global":false}',
                       {"Retry-After": "1"})[:2] == (Verdict.RETRY, 0.35)
    assert read_answer(dc, 204, b"", {})[0] is Verdict.DELIVERED
    assert read_answer(sl, 429, b"rate_limited", {"Retry-After": "3"})[:2] == (Verdict.RETRY, 3.0)
    verdict, _, why = read_answer(sl, 404, b"channel_not_found", {})
    assert verdict is Verdict.REFUSED and "channel_not_found" in why
    assert read_answer(sl, 503, b"", {})[0] is Verdict.RETRY


# ---------------------------------------------------------------------------- delivery
@pytest.mark.parametrize(("service", "retry_after"), [("telegram", 1.0), ("discord", 0.3),
                                                     ("slack", 1.0)])
def test_rate_limits_and_server_errors_are_waited_out_in_order(
        arun: Run, service: str, retry_after: float, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    server = ChatServer(service, ["429", "500", "ok", "bad", "ok"], retry_after=retry_after)

    async def main() -> Any:
        async with serving(server):
            sink = ChatSink(chat_sinks_from_toml(toml_for(service, server.url))[0], seed=1)
            await sink.start()
            sink([alert(1), alert(2), alert(3, AlertKind.SYSTEMIC_ALERT)])
            return await sink.stop(drain_timeout_s=6)

    stats = arun(main())
    assert (stats.delivered, stats.rejected, stats.retries, stats.pending) == (2, 1, 2, 0)
    gap = server.times[1] - server.times[0]
    assert gap >= retry_after * 0.95  # the service's own wait
    if service == "discord":
        assert gap < 0.9  # the body's float retry_after wins over the header's whole second
    got = [s.payload(a) for s in [ChatSink(chat_sinks_from_toml(
        toml_for(service, server.url))[0])] for a in (alert(1), alert(3, AlertKind.
                                                                     SYSTEMIC_ALERT))]
    assert server.accepted == got  # alert 2 was refused ("bad"), the others came in order
    assert TOKEN not in caplog.text and "refused" in caplog.text


def test_a_slow_service_never_holds_up_the_tick_loop(arun: Run) -> None:
    server = ChatServer("discord", [], stall_s=0.1)

    async def main() -> tuple[float, Any]:
        async with serving(server):
            sink = ChatSink(chat_sinks_from_toml(toml_for("discord", server.url))[0])
            await sink.start()
            worst = 0.0
            for tick in range(10):
                t0 = time.perf_counter()
                sink([alert(tick)])
                worst = max(worst, time.perf_counter() - t0)
                await asyncio.sleep(0.01)
            return worst, await sink.stop(drain_timeout_s=5)

    worst, stats = arun(main())
    assert worst < 0.005
    assert stats.delivered == 10 and len(server.accepted) == 10


def test_a_chat_sink_is_built_from_a_chat_config_only() -> None:
    (cfg,) = chat_sinks_from_toml({"sinks": {"slack": [{"url": "https://h/s"}]}})
    assert ChatSink.from_config(cfg).chat == cfg
    with pytest.raises(TypeError, match="ChatConfig"):
        ChatSink.from_config(cfg.delivery)
