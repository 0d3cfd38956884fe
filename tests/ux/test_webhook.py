"""The webhook sink against a loopback receiver that fails, stalls, then recovers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from engine_adapters.sinks import WebhookConfig, WebhookSink, webhooks_from_toml
from engine_core.alerts import Alert
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier


def alert(tick: int, kind: AlertKind = AlertKind.STRUCTURAL_FRAGILE) -> Alert:
    return Alert(tick_id=tick, kind=kind, token_id=tick % 5, symbol="BTCUSDT",
                 fsm=StructuralState.FRAGILE, tier=Tier.TIER_EXPANSION,
                 cluster=ClusterState.CLUSTER_HEATING, phase=EventPhase.PREP, event_id=0,
                 trigger_cost=12.5, message="m")


class Receiver:
    """Loopback webhook receiver following a script of answers: 'fail', 'stall', then 'ok'."""

    def __init__(self, script: list[str], stall_s: float) -> None:
        self.script = script
        self.stall_s = stall_s
        self.accepted: list[dict[str, object]] = []
        self.keys: list[str] = []
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        what = self.script.pop(0) if self.script else "ok"
        if what == "fail":
            return web.Response(status=500)
        if what == "stall":
            await asyncio.sleep(self.stall_s)
            return web.Response(status=503)  # too late: the client has given up
        self.accepted.append(body)
        self.keys.append(request.headers["Idempotency-Key"])
        return web.Response(status=204)


async def serving(receiver: Receiver, body: Callable[[str], Awaitable[None]]) -> None:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await body(f"http://127.0.0.1:{port}/hook")
    finally:
        await runner.cleanup()


def test_every_alert_arrives_once_in_order_and_the_tick_loop_never_waits() -> None:
    receiver = Receiver(["fail", "fail", "stall", "fail", "ok", "ok", "stall"], stall_s=0.5)
    n_ticks = 30
    call_s: list[float] = []

    async def body(url: str) -> None:
        sink = WebhookSink(url, timeout_s=0.15, backoff_base_s=0.01, backoff_cap_s=0.05, seed=1)
        await sink.start()
        for tick in range(n_ticks):  # a 250 ms tick loop, 10x faster
            alerts = [alert(tick)] if tick % 3 else [alert(tick), alert(tick, AlertKind.
                                                                        SYSTEMIC_ALERT)]
            t0 = time.perf_counter()
            sink(alerts)
            call_s.append(time.perf_counter() - t0)
            await asyncio.sleep(0.025)
        stats = await sink.stop(drain_timeout_s=5)
        assert stats.pending == 0 and stats.delivered == 40
        assert stats.dropped_on_overflow == stats.abandoned == stats.rejected == 0
        assert stats.retries == stats.failed_attempts == 5

    asyncio.run(serving(receiver, body))
    ticks = [(d["tick_id"], d["kind"]) for d in receiver.accepted]
    expected = [(t, k.name) for t in range(n_ticks) for k in (
        (AlertKind.STRUCTURAL_FRAGILE,) if t % 3 else
        (AlertKind.STRUCTURAL_FRAGILE, AlertKind.SYSTEMIC_ALERT))]
    assert ticks == expected  # each exactly once, in order
    assert len(set(receiver.keys)) == len(receiver.keys)
    assert max(call_s) < 1e-3


def test_a_full_queue_counts_and_keeps_the_oldest_alerts() -> None:
    sink = WebhookSink("http://127.0.0.1:9/hook", queue_limit=3)
    sink([alert(t) for t in range(5)])  # not started: alerts wait in the queue
    s = sink.stats
    assert (s.pending, s.dropped_on_overflow, s.delivered) == (3, 2, 0)


def test_gives_up_after_max_retries_and_moves_on() -> None:
    receiver = Receiver(["fail", "fail", "fail"], stall_s=0)

    async def body(url: str) -> None:
        sink = WebhookSink(url, max_retries=2, backoff_base_s=0.001, backoff_cap_s=0.002)
        await sink.start()
        sink([alert(1), alert(2)])
        stats = await sink.stop(drain_timeout_s=3)
        assert (stats.abandoned, stats.delivered, stats.failed_attempts) == (1, 1, 3)

    asyncio.run(serving(receiver, body))
    assert [d["tick_id"] for d in receiver.accepted] == [2]


def test_kind_filter_only_sends_the_chosen_kinds() -> None:
    sink = WebhookSink("http://127.0.0.1:9/hook", kinds=frozenset({AlertKind.SYSTEMIC_ALERT}))
    sink([alert(1), alert(1, AlertKind.SYSTEMIC_ALERT)])
    assert sink.stats.pending == 1


def test_webhooks_from_toml_reads_the_array_and_names_bad_entries() -> None:
    data = {"sinks": {"webhook": [
        {"url": "https://hooks.example.com/a", "timeout_s": 2, "headers": {"X-Token": "t"},
         "kinds": ["SYSTEMIC_ALERT"]},
        {"url": "http://10.0.0.1:8080/b", "max_retries": 5},
    ]}}
    a, b = webhooks_from_toml(data)
    assert a == WebhookConfig(url="https://hooks.example.com/a", timeout_s=2,
                              headers=(("X-Token", "t"),),
                              kinds=frozenset({AlertKind.SYSTEMIC_ALERT}))
    assert b.max_retries == 5 and b.timeout_s == 5.0
    assert WebhookSink.from_config(a).config == a
    assert webhooks_from_toml({}) == ()
    for bad, match in (
        ({"url": "ftp://x"}, r"sinks.webhook\[0\]: webhook url must start with http"),
        ({"url": "http://x", "timeout_s": 0}, r"sinks.webhook\[0\]: timeout_s must be > 0"),
        ({"url": "http://x", "timout_s": 1}, r"sinks.webhook\[0\]: unknown key\(s\) timout_s"),
        ({"url": "http://x", "kinds": ["PANIC"]}, r"unknown alert kind\(s\) \['PANIC'\]"),
        ({"timeout_s": 1}, r"sinks.webhook\[0\]: url is required"),
        ({"url": "http://x", "queue_limit": "big"}, r"queue_limit must be an integer"),
    ):
        with pytest.raises(ValueError, match=match):
            webhooks_from_toml({"sinks": {"webhook": [bad]}})
    with pytest.raises(ValueError, match=r"\[\[sinks.webhook\]\]"):
        webhooks_from_toml({"sinks": {"webhook": {"url": "http://x"}}})
