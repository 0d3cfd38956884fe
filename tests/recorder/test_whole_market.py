"""The whole market over the loopback exchange: all-market streams speak for every symbol,
`live --top all` marks a halted symbol from the hourly exchangeInfo refresh, and `run` of its
recording replays it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import attrs
import numpy as np
import orjson

import engine_core as ec
from engine_adapters.binance.endpoints import (
    ALL_FORCE_ORDER,
    ALL_MARK_PRICE_1S,
    whole_market_streams,
)
from engine_adapters.binance.ws_client import HealthNotice, WsClientConfig, WsFeed
from engine_adapters.capture_files import MultiSource, resolve_source
from engine_adapters.storage import read_log, verify
from engine_app.cli import main
from engine_app.live import LiveOptions, LiveRunner
from engine_core.events import HealthKind, TradeReceived
from engine_sim.fake_exchange import FakeBinance
from engine_sim.simulation import MarketSimulator, Regime, Segment
from tests.app.test_live import FAST_REST, FAST_WS
from tests.conftest import run_bounded

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


async def _until(cond: object, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if callable(cond) and cond():
            return True
        await asyncio.sleep(0.02)
    return False


async def _all_market_connection() -> tuple[list[HealthNotice], str, str]:
    notes: list[HealthNotice] = []
    cfg = WsClientConfig(per_connection=2, backoff_base_s=0.05, backoff_cap_s=0.2,
                         stale_after_s=30.0, stream_stale_after_s=1.0, watchdog_interval_s=0.05)
    async with FakeBinance(SYMBOLS) as fake:
        feed = WsFeed(fake.ws_base, whole_market_streams(SYMBOLS), on_frame=lambda *_: None,
                      on_health=notes.append, config=cfg, universe=SYMBOLS)
        (bang,) = [s.conn_id for s in feed.specs if ALL_MARK_PRICE_1S in s.streams]
        (liq,) = [s.conn_id for s in feed.specs if ALL_FORCE_ORDER in s.streams]
        task = asyncio.create_task(feed.run())
        try:
            assert await _until(lambda: fake.stats.ws_active == len(feed.specs))
            for i in range(40):  # trades only: the markPrice@arr stream stays silent
                await fake.publish(TradeReceived(symbol="BTCUSDT", exchange_ts=i, price=1.0,
                                                 qty=1.0, buyer_is_maker=False, trade_id=i + 1))
                await asyncio.sleep(0.04)
            await fake.drop_connections(abrupt=True)
            assert await _until(lambda: {n.conn_id for n in notes
                                         if n.kind is HealthKind.RECONNECT} >= {bang, liq})
            await asyncio.sleep(0.1)
        finally:
            feed.stop()
            await task
    return notes, bang, liq


def test_the_all_market_connection_speaks_for_every_symbol() -> None:
    notes, bang, liq = run_bounded(_all_market_connection())
    ours = [n for n in notes if n.conn_id == bang]
    for kind in (HealthKind.STREAM_STALE, HealthKind.RECONNECT):
        got = {n.symbol for n in ours if n.kind is kind}
        assert got == set(SYMBOLS), (kind, got)
    # fact 9: liquidations pushed while !forceOrder@arr was down are lost, for every symbol
    got = {n.symbol for n in notes if n.conn_id == liq and n.kind is HealthKind.LIQUIDATION_GAP}
    assert got == set(SYMBOLS)
    stale = [n for n in ours if n.kind is HealthKind.STREAM_STALE]
    assert all(ALL_MARK_PRICE_1S in n.detail for n in stale)


async def _top_all(dd: Path, rec: Path) -> tuple[LiveRunner, list[str]]:
    said: list[str] = []
    start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
    busy = Regime(activity=2.0, vol_bps_s=4.0, liq_prob=0.5, liq_size=0.05)
    sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=10, leader=busy,
                                            bystander=busy)], seed=5, start_ms=start_ms,
                          oi_poll_ms=1000)
    async with FakeBinance(SYMBOLS) as fake:
        player = fake.play(sim.events())
        opts = LiveOptions(data_dir=dd, cfg=ec.Config(), top="all", duration_s=3.0,
                           ws_url=fake.ws_base, rest_url=fake.rest_base, capture=rec,
                           fsync="none", ws_config=attrs.evolve(FAST_WS, per_connection=3),
                           rest_config=FAST_REST)
        runner = LiveRunner(opts, say=said.append)
        runner.universe_refresh_ms = 300
        engine = asyncio.create_task(runner.run())
        await asyncio.sleep(1.2)
        fake.market.status["SOLUSDT"] = "TRADING_HALT"
        try:
            await engine
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
    return runner, said


def test_live_top_all_uses_all_market_streams_and_marks_a_halt(tmp_path: Path) -> None:
    dd, rec = tmp_path / "live", tmp_path / "rec"
    runner, said = asyncio.run(_top_all(dd, rec))
    assert runner.session is not None and runner.session.symbols == SYMBOLS
    assert runner.metrics.health["SYMBOL_HALTED"] == 1, said
    assert any("SOLUSDT is now halted (exchange status TRADING_HALT" in m for m in said), said
    assert any("3 symbols, 8 streams on" in m for m in said), said  # 2N + 2 streams
    frames = [line for _, line in MultiSource(resolve_source(rec))]
    assert any(b'!markPrice@arr@1s' in f for f in frames)
    assert not any(b'@markPrice@1s\\"' in f and b'!markPrice' not in f for f in frames)
    assert verify(dd).exit_code == 0
    assert main(["run", str(rec), "--data-dir", str(tmp_path / "run"), "--symbols",
                 ",".join(SYMBOLS), "--fsync", "none", "--json"]) == 0
    live_rows, run_rows = read_log(dd), read_log(tmp_path / "run")
    assert len(run_rows) >= len(SYMBOLS) * 6
    assert np.array_equal(live_rows[: len(run_rows)], run_rows)
    # the mark prices came from the all-market array stream, for every symbol, all accepted
    docs = [orjson.loads(orjson.loads(f)["raw"]) for f in frames if b"!markPrice@arr" in f]
    assert {item["s"] for d in docs for item in d["data"]} == set(SYMBOLS)
    assert runner.session.counts.rejected == 0
