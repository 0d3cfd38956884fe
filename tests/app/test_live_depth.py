"""live follows @depth20 into DepthReceived; the fake exchange serves fundingInfo and OI history."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import aiohttp

from engine_adapters.binance.rest_client import RestClient
from engine_adapters.binance.rest_history import (
    PATH_FUNDING_INFO,
    PATH_OI_HISTORY,
    oi_history_query,
    oi_history_windows,
)
from engine_adapters.binance.rest_payloads import parse_rest
from engine_adapters.storage import iter_journal
from engine_app.live_history import read_history
from engine_core.events import FundingInfoReceived, OpenInterestHistoryReceived
from engine_sim.fake_exchange import FakeBinance
from tests.app.test_live import SYMBOLS, live_session


def test_live_journals_depth_bands_for_every_symbol(tmp_path: Path) -> None:
    dd = tmp_path / "live"
    asyncio.run(live_session(dd, 2.0))
    depth = Counter(ev.payload.symbol for t in iter_journal(dd) for b in t.batches
                    for ev in b.events if type(ev.payload).__name__ == "DepthReceived")
    assert set(depth) == set(SYMBOLS) and min(depth.values()) > 3


async def _fetch(base: str, path: str, query: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}{path}?{query}") as resp:
        return resp.status, await resp.text()


def test_fake_exchange_serves_funding_info_and_oi_history() -> None:
    async def go() -> None:
        async with FakeBinance(SYMBOLS) as fake:
            fake.market.funding_info["ETHUSDT"] = (4, 0.02, -0.02)
            now = 1_764_640_000_000
            fake.market.oi_history["BTCUSDT"] = [(now - k * 300_000, 1000.0 + k)
                                                 for k in range(700, -1, -1)]
            status, body = await _fetch(fake.rest_base, PATH_FUNDING_INFO, "")
            assert status == 200
            assert parse_rest(PATH_FUNDING_INFO, "", status, body, SYMBOLS, 5).events == (
                FundingInfoReceived(symbol="ETHUSDT", exchange_ts=5, interval_hours=4,
                                    cap=0.02, floor=-0.02),)
            got: list[tuple[int, float]] = []
            for w in oi_history_windows(now, days=3):
                q = oi_history_query("BTCUSDT", w)
                status, body = await _fetch(fake.rest_base, PATH_OI_HISTORY, q)
                for ev in parse_rest(PATH_OI_HISTORY, q, status, body, SYMBOLS).events:
                    assert isinstance(ev, OpenInterestHistoryReceived)
                    got.extend(ev.points)
            assert got == sorted(fake.market.oi_history["BTCUSDT"])  # every point, once
    asyncio.run(go())


def test_read_history_asks_funding_info_and_30_days_of_oi_history_and_ingests_them() -> None:
    async def go() -> list[tuple[str, str, int, str]]:
        seen: list[tuple[str, str, int, str]] = []
        async with FakeBinance(SYMBOLS) as fake:
            fake.market.funding_info["SOLUSDT"] = (4, 0.03, -0.03)
            now = time.time_ns() // 1_000_000 // 300_000 * 300_000
            fake.market.oi_history["BTCUSDT"] = [(now - k * 300_000, 500.0 + k)
                                                 for k in range(8639, -1, -1)]
            async with RestClient(fake.rest_base, on_response=lambda _ms, p, q, st, b: seen.append(
                    (p, q, st, b))) as rest:
                stop = asyncio.Event()
                task = asyncio.create_task(read_history(rest, ("BTCUSDT",), stop, spacing_s=0,
                                                        funding_every_s=0.05))
                await asyncio.sleep(1.0)
                stop.set()
                assert await task >= 1 + 18
        return seen
    seen = asyncio.run(go())
    paths = [p for p, *_ in seen]
    assert paths[0] == PATH_FUNDING_INFO and paths.count(PATH_OI_HISTORY) == 18
    assert paths.count(PATH_FUNDING_INFO) >= 2  # and again on its own cadence
    points = [pt for p, q, st, b in seen if p == PATH_OI_HISTORY
              for ev in parse_rest(p, q, st, b, SYMBOLS).events
              if isinstance(ev, OpenInterestHistoryReceived) for pt in ev.points]
    assert len(points) == 8640 and points == sorted(points)  # 30 days, each point once
