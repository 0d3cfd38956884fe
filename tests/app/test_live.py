"""The live path against a loopback fake Binance: files, capture equivalence, chaos, restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs
import numpy as np
import pytest

import engine_core as ec
from engine_adapters.binance.rest_client import RestClientConfig
from engine_adapters.binance.ws_client import WsClientConfig
from engine_adapters.storage import iter_journal, read_log, verify
from engine_app.bootstrap import replay_journal as replay
from engine_app.cli import main
from engine_app.live import LiveOptions, LiveRunner
from engine_app.session import Session
from engine_sim.fake_exchange import FakeBinance
from engine_sim.fake_exchange.faults import FakeConfig, Faults
from engine_sim.simulation import MarketSimulator, Regime, Segment

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BUSY = Regime(activity=2.0, vol_bps_s=4.0, liq_prob=0.5, liq_size=0.05)
FAST_WS = WsClientConfig(backoff_base_s=0.05, backoff_cap_s=0.3, stale_after_s=2.0,
                         stream_stale_after_s=3.0, watchdog_interval_s=0.1)
FAST_REST = RestClientConfig(oi_interval_s=1.0, premium_interval_s=1.0, timeout_s=1.0,
                             retry_base_s=0.05, retry_cap_s=0.2, default_retry_after_s=1.0)


async def live_session(dd: Path, seconds: float, *, faults: Faults | None = None,
                       capture: Path | None = None, chaos: bool = False,
                       fake_config: FakeConfig | None = None,
                       ws_config: WsClientConfig = FAST_WS,
                       during: Callable[[FakeBinance], Awaitable[None]] | None = None,
                       ) -> tuple[Session, LiveRunner]:
    start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
    sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=seconds + 5, leader=BUSY,
                                            bystander=BUSY)], seed=3, start_ms=start_ms,
                          oi_poll_ms=1000)
    async with FakeBinance(SYMBOLS, faults=faults, config=fake_config) as fake:
        player = fake.play(sim.events())
        opts = LiveOptions(data_dir=dd, cfg=ec.Config(), symbols=SYMBOLS, duration_s=seconds,
                           ws_url=fake.ws_base, rest_url=fake.rest_base, capture=capture,
                           fsync="none", ws_config=ws_config, rest_config=FAST_REST)
        runner = LiveRunner(opts, say=lambda _m: None)
        engine = asyncio.create_task(runner.run())
        if during is not None:
            await during(fake)
        if chaos:
            await asyncio.sleep(1.0)
            await fake.drop_connections(abrupt=True)  # mid-burst
            await asyncio.sleep(1.0)
            fake.faults.rest_429_next = 2
            fake.faults.rest_5xx_next = 2
            await fake.drop_connections(abrupt=False)
        try:
            session = await engine
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
    return session, runner


def test_live_writes_a_data_dir_that_verifies_replays_and_matches_run_of_its_capture(
        tmp_path: Path) -> None:
    dd, cap = tmp_path / "live", tmp_path / "live.jsonl"
    session, _runner = asyncio.run(live_session(dd, 3.0, capture=cap))
    st = session.counts
    assert session.stats.ticks >= 8 and st.events_accepted > 200 and st.rejected == 0
    health = st.health_notices
    journaled = sum(len(b.events) for t in iter_journal(dd) for b in t.batches)
    assert journaled == st.events_accepted + health  # the last tick's messages were stepped
    assert verify(dd).exit_code == 0
    assert replay(dd, tmp_path / "re", compare=True).exit_code == 0
    # run of the capture made by this live session reproduces its log tick for tick
    assert main(["run", str(cap), "--data-dir", str(tmp_path / "run"), "--symbols",
                 ",".join(SYMBOLS), "--fsync", "none"]) == 0
    live_rows, run_rows = read_log(dd), read_log(tmp_path / "run")
    assert len(run_rows) >= len(SYMBOLS) * 8
    # live may step a few empty ticks after the last message; everything before is identical
    assert np.array_equal(live_rows[: len(run_rows)], run_rows)


def test_chaos_reconnects_backfills_and_still_verifies_and_replays(tmp_path: Path) -> None:
    dd = tmp_path / "chaos"
    faults = Faults(seed=11, duplicate_prob=0.02, reorder_prob=0.02, malformed_prob=0.005)
    session, runner = asyncio.run(live_session(dd, 4.0, faults=faults, chaos=True))
    assert runner.feed is not None and runner.feed.counters.reconnects >= 2
    st = session.counts
    # every valid message was processed, dropped as a duplicate, or quarantined
    assert st.events_received == st.events_accepted + st.duplicates + st.rejected - \
        st.parse_rejects
    assert st.duplicates > 0 and st.rejected > 0
    rows = read_log(dd)
    flags = np.bitwise_or.reduce(rows["quality"])
    assert flags & int(ec.Quality.RECONNECT)
    assert verify(dd).exit_code == 0
    assert replay(dd, tmp_path / "re", compare=True).exit_code == 0


async def _stall(fake: FakeBinance) -> None:
    await asyncio.sleep(1.0)
    fake.stall(2.5)  # connected, pinging, but silent: the watchdog must notice


async def _ban(fake: FakeBinance) -> None:
    await asyncio.sleep(0.5)
    fake.faults.rest_418_next = 1  # a 418: no request until the ban ends


async def _slow(fake: FakeBinance) -> None:
    await asyncio.sleep(0.5)
    fake.faults.rest_slow_next = 2  # answers slower than the client's timeout


CHAOS = {
    "silent stall": dict(during=_stall),
    "forced disconnect at connection lifetime": dict(
        fake_config=FakeConfig(lifetime_s=1.5),
        ws_config=attrs.evolve(FAST_WS, planned_reconnect_s=1.0)),
    "418 ban": dict(faults=Faults(ban_s=1.0), during=_ban),
    "slow REST answers": dict(faults=Faults(rest_slow_s=1.5), during=_slow),
    "oversized and NaN frames": dict(faults=Faults(seed=5, oversized_prob=0.01,
                                                   oversized_bytes=300_000, nan_prob=0.01)),
}


@pytest.mark.parametrize("name", sorted(CHAOS))
def test_each_fault_keeps_the_clock_ticking_and_the_data_dir_sound(name: str,
                                                                   tmp_path: Path) -> None:
    dd = tmp_path / "dd"
    session, runner = asyncio.run(live_session(dd, 4.0, **CHAOS[name]))  # type: ignore[arg-type]
    st = session.counts
    assert session.stats.ticks >= 14  # the clock kept ticking through the fault
    assert st.events_received == st.events_accepted + st.duplicates + st.rejected - \
        st.parse_rejects
    journaled = sum(len(b.events) for t in iter_journal(dd) for b in t.batches)
    assert journaled == st.events_accepted + st.health_notices
    assert verify(dd).exit_code == 0
    assert replay(dd, tmp_path / "re", compare=True).exit_code == 0
    c = runner.feed.counters if runner.feed is not None else None
    r = runner.rest.counters if runner.rest is not None else None
    assert c is not None and r is not None
    if name == "silent stall":
        assert c.stalls >= 1 and runner.metrics.health["STREAM_STALE"] >= 1
    elif name.startswith("forced"):
        assert c.planned_rotations >= 1
    elif name == "418 ban":
        assert r.status_418 == 1
    elif name == "slow REST answers":
        assert r.timeouts >= 1
    else:
        assert st.rejected > 0  # quarantined with a reason, the connection kept


def test_a_restart_on_the_same_data_dir_continues_the_log(tmp_path: Path) -> None:
    dd = tmp_path / "dd"
    asyncio.run(live_session(dd, 1.5))
    first = read_log(dd)
    asyncio.run(live_session(dd, 1.5))
    both = read_log(dd)
    assert len(both) > len(first) and np.array_equal(both[: len(first)], first)
    starts = both[(both["quality"] & int(ec.Quality.SESSION_START)) != 0]
    assert len(set(starts["tick_id"].tolist())) == 2
    assert verify(dd).exit_code == 0
    assert replay(dd, tmp_path / "re", compare=True).exit_code == 0


@pytest.mark.parametrize("argv,code", [
    (["live", "--symbols", "BTCUSDT", "--top", "3"], 64),
    (["live", "--duration", "-1"], 64),
    (["live", "--symbols", "btc usdt!"], 64),
])
def test_live_usage_errors(argv: list[str], code: int) -> None:
    assert main(argv) == code


def test_metrics_and_health_are_served_while_live(tmp_path: Path) -> None:
    import aiohttp

    async def body() -> tuple[str, dict[str, object]]:
        start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
        sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=8, leader=BUSY,
                                                bystander=BUSY)], seed=4, start_ms=start_ms)
        async with FakeBinance(SYMBOLS) as fake:
            player = fake.play(sim.events())
            opts = LiveOptions(data_dir=tmp_path / "dd", cfg=ec.Config(), symbols=SYMBOLS,
                               duration_s=3.0, ws_url=fake.ws_base, rest_url=fake.rest_base,
                               metrics_port=0, fsync="none", ws_config=FAST_WS,
                               rest_config=FAST_REST)
            runner = LiveRunner(opts, say=lambda _m: None)
            engine = asyncio.create_task(runner.run())
            await asyncio.sleep(2.0)
            assert runner.metrics_url is not None
            async with aiohttp.ClientSession() as http:
                async with http.get(runner.metrics_url + "/metrics") as r:
                    text = await r.text()
                async with http.get(runner.metrics_url + "/health") as r:
                    health = await r.json()
            await engine
            player.cancel()
            return text, health

    text, health = asyncio.run(body())
    for name in ("engine_ticks_total", "engine_tick_lag_ms", "engine_ws_reconnects_total",
                 "engine_rest_weight_used", "engine_quarantined_total", "engine_log_bytes",
                 'engine_events_by_stream_total{source="TradeReceived"}',
                 'engine_event_latency_ms{quantile="0.99"}'):
        assert name in text, name
    assert health["ok"] is True and isinstance(health["last_tick"], int)


def test_demo_runs_end_to_end_shortened_and_verifies(tmp_path: Path) -> None:
    """The demo's live path with a webhook sink: every alert in alerts.jsonl is POSTed once."""
    import json

    from aiohttp import web

    from engine_adapters.sinks import WebhookSink
    from engine_app.demo import run_demo

    dd = tmp_path / "demo"
    posted: list[dict[str, object]] = []

    async def body() -> tuple[object, WebhookSink]:
        async def hook(req: web.Request) -> web.Response:
            posted.append(await req.json())
            return web.Response(status=200)

        app = web.Application()
        app.router.add_post("/hook", hook)
        server = web.AppRunner(app)
        await server.setup()
        site = web.TCPSite(server, "127.0.0.1", 0)
        await site.start()
        host, port = server.addresses[0][:2]
        sink = WebhookSink(f"http://{host}:{port}/hook")
        await sink.start()
        try:
            res = await run_demo(dd, scale=0.003, say=lambda _m: None, align=False,
                                 sinks=[sink])
            await sink.stop(drain_timeout_s=5.0)
        finally:
            await server.cleanup()
        return res, sink

    res, sink = asyncio.run(body())
    st = res.session.stats  # type: ignore[attr-defined]
    assert st.ticks > 40 and res.session.counts.events_accepted > 1000  # type: ignore[attr-defined]
    assert {"BUILD", "PRESSURE"} <= st.states_reached
    assert verify(dd).exit_code == 0
    assert res.seconds < 40  # type: ignore[attr-defined]
    written = [json.loads(x) for x in (dd / "alerts.jsonl").read_text().splitlines()]
    assert posted == written and sink.stats.delivered == len(written)
    assert written, "the shortened story still raises alerts"


def test_top_n_picks_trading_perpetuals_by_quote_volume(tmp_path: Path) -> None:
    from engine_adapters.binance.rest_client import RestClient
    from engine_app.live import resolve_symbols

    async def body() -> tuple[str, ...]:
        async with FakeBinance(SYMBOLS) as fake, RestClient(fake.rest_base) as rest:
            opts = LiveOptions(data_dir=tmp_path, cfg=ec.Config(), top=2,
                               ws_url=fake.ws_base, rest_url=fake.rest_base)
            return await resolve_symbols(rest, opts)

    top = asyncio.run(body())
    assert len(top) == 2 and set(top) <= set(SYMBOLS) and list(top) == sorted(top)


def _log_has_ticks(log: Path) -> bool:
    """A segment of `log` holds bytes past its header (header_len: u32 at offset 12)."""
    for f in log.glob("*.cxlog"):
        with open(f, "rb") as fh:
            head = fh.read(16)
        if len(head) == 16 and f.stat().st_size > int.from_bytes(head[12:16], "little"):
            return True
    return False


def test_sigterm_finishes_the_tick_and_closes_files_cleanly(tmp_path: Path) -> None:
    import os
    import signal
    import sys

    dd = tmp_path / "dd"

    async def body() -> int:
        start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
        sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=20, leader=BUSY,
                                                bystander=BUSY)], seed=6, start_ms=start_ms)
        async with FakeBinance(SYMBOLS) as fake:
            player = fake.play(sim.events())
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "engine_app", "live", "--symbols", ",".join(SYMBOLS),
                "--ws-url", fake.ws_base, "--rest-url", fake.rest_base, "--data-dir", str(dd),
                "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=dict(os.environ))
            # a loaded machine can take seconds to start the process: stop it once it has
            # been stepping for a while (its log holds ticks), not at a fixed moment
            waited = 0.0
            while waited < 60 and not _log_has_ticks(dd / "log"):
                await asyncio.sleep(0.25)
                waited += 0.25
            await asyncio.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            out, err = await asyncio.wait_for(proc.communicate(), 30)
            player.cancel()
            assert b'"ticks"' in out, err.decode()[-2000:]
            return proc.returncode if proc.returncode is not None else -1

    assert asyncio.run(body()) == 0
    assert verify(dd).exit_code == 0  # every tick complete, files closed
    assert replay(dd, tmp_path / "re", compare=True).exit_code == 0
