"""A gap storm against the loopback exchange through `live --capture`: the backfill stays
bounded, what it gives up is a captured TRADE_GAP notice, and `run` of the capture replays
the live log exactly."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import attrs
import numpy as np
import orjson

import engine_core as ec
from engine_adapters.binance.backfill import BackfillConfig
from engine_adapters.capture_files import MultiSource, resolve_source
from engine_adapters.storage import read_log, verify
from engine_app.cli import main
from engine_app.live import LiveOptions, LiveRunner
from engine_app.session import Session
from engine_sim.fake_exchange import FakeBinance
from engine_sim.fake_exchange.faults import FakeStats, Faults
from engine_sim.simulation import MarketSimulator, Regime, Segment
from tests.app.test_live import FAST_REST, FAST_WS

SYMBOLS = ("BNBUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
BUSY = Regime(activity=3.0, vol_bps_s=4.0, liq_prob=0.3, liq_size=0.05)
# a failed page waits longer than the deadline: it is given up; a served one is covered
# (the deadline leaves room for a loaded machine to fetch at all)
BOUNDS = BackfillConfig(deadline_ms=1000, max_in_flight=2, max_ranges=64,
                        max_ranges_per_symbol=4, retry_ms=3000)


async def _storm(dd: Path, rec: Path, seconds: float
                 ) -> tuple[Session, LiveRunner, FakeStats]:
    start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
    sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=seconds + 5, leader=BUSY,
                                            bystander=BUSY)], seed=8, start_ms=start_ms,
                          oi_poll_ms=1000)
    # 5 % of aggTrade payloads never reach the WS (REST still has them); 40 % of the REST
    # answers fail, so some gaps cannot be fetched in time and are given up
    faults = Faults(seed=2, drop_prob=0.05, rest_5xx_prob=0.4)
    async with FakeBinance(SYMBOLS, faults=faults) as fake:
        player = fake.play(sim.events())
        opts = LiveOptions(data_dir=dd, cfg=ec.Config(), symbols=SYMBOLS, duration_s=seconds,
                           ws_url=fake.ws_base, rest_url=fake.rest_base, capture=rec,
                           fsync="none", ws_config=FAST_WS,
                           rest_config=attrs.evolve(FAST_REST, max_attempts=1),  # 5xx: failed
                           backfill=BOUNDS)
        runner = LiveRunner(opts, say=lambda _m: None)
        try:
            session = await runner.run()
        finally:
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)
    return session, runner, fake.stats


def test_gap_storm_is_bounded_captured_and_replays_identically(tmp_path: Path) -> None:
    dd, rec = tmp_path / "live", tmp_path / "rec"
    session, runner, stats = asyncio.run(_storm(dd, rec, 5.0))
    assert stats.dropped > 10 and stats.rest_5xx > 0
    assert runner.backfill is not None
    c = runner.backfill.scheduler.counters
    assert c.gaps > 10 and runner.metrics.gaps == c.gaps, (c, stats)
    assert c.queue_high_water <= BOUNDS.max_ranges and runner.backfill.in_flight == 0, c
    # pages were fetched and some were given up: both paths ran
    assert c.ids_covered > 0 and c.given_up > 0, (c, stats)
    notes = [orjson.loads(line) for _, line in MultiSource(resolve_source(rec))]
    gaps = [d for d in notes if d["channel"] == "health" and d["kind"] == "TRADE_GAP"]
    assert gaps and len(gaps) == runner.metrics.health["TRADE_GAP"]
    assert sum(d["count"] for d in gaps) == runner.metrics.trades_lost > 0
    assert all(d["last"] - d["first"] + 1 >= d["count"] for d in gaps)
    assert session.counts.health_notices >= len(gaps)
    assert verify(dd).exit_code == 0
    # run of the recording replays the live session, TRADE_GAP decisions included
    assert main(["run", str(rec), "--data-dir", str(tmp_path / "run"), "--symbols",
                 ",".join(SYMBOLS), "--fsync", "none", "--json"]) == 0
    live_rows, run_rows = read_log(dd), read_log(tmp_path / "run")
    assert len(run_rows) >= len(SYMBOLS) * 10
    assert np.array_equal(live_rows[: len(run_rows)], run_rows)
    flags = np.bitwise_or.reduce(run_rows["quality"])
    assert flags & int(ec.Quality.TRADE_GAP)
