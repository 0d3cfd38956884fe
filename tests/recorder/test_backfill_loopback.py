"""Backfill against a real aiohttp server speaking `GET /fapi/v1/aggTrades`: a gap storm.

The server answers pages of contiguous agg ids (`fromId`, `limit`) with the weight header,
rate-limits the first requests with 429 + Retry-After, and records how many requests were in
flight at once. Through the real `RestClient`, the runner must keep within `max_in_flight`,
stay inside its weight share, and account every missing id: fetched or given up, once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import web

from engine_adapters.binance.backfill import (
    BackfillConfig,
    BackfillScheduler,
    GivenUp,
)
from engine_adapters.binance.backfill_runner import BackfillRunner, rest_fetch
from engine_adapters.binance.dedup import IdGap
from engine_adapters.binance.rest_client import RestClient, RestClientConfig
from tests.conftest import run_bounded


class AggTradesServer:
    def __init__(self, rate_limited: int) -> None:
        self.rate_limited = rate_limited
        self.active = 0
        self.max_active = 0
        self.requests = 0
        self.served: dict[str, set[int]] = {}

    async def handle(self, req: web.Request) -> web.Response:
        self.requests += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(0.01)
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return web.Response(status=429, headers={"Retry-After": "0"},
                                    text='{"code":-1003,"msg":"Too many requests"}')
            sym, first, limit = (req.query["symbol"], int(req.query["fromId"]),
                                 int(req.query["limit"]))
            assert 1 <= limit <= 1000, limit
            ids = range(first, first + limit)
            self.served.setdefault(sym, set()).update(ids)
            body = [{"a": i, "p": "1.0", "q": "1", "f": i, "l": i, "T": 1, "m": True}
                    for i in ids]
            return web.Response(body=orjson.dumps(body), content_type="application/json",
                                headers={"X-MBX-USED-WEIGHT-1M": str(self.requests * 20)})
        finally:
            self.active -= 1


async def _storm() -> dict[str, Any]:
    server = AggTradesServer(rate_limited=3)
    app = web.Application()
    app.router.add_get("/fapi/v1/aggTrades", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    given_up: list[GivenUp] = []
    t0 = time.monotonic()
    try:
        cfg = RestClientConfig(retry_base_s=0.01, retry_cap_s=0.02, max_attempts=2)
        async with RestClient(f"http://127.0.0.1:{port}", config=cfg) as rest:
            sched = BackfillScheduler(
                BackfillConfig(deadline_ms=400, max_in_flight=3, window_s=0.5,
                               max_ranges=200, retry_ms=20),
                weight_per_window=200)  # 10 pages per half second
            bf = BackfillRunner(sched, rest_fetch(rest), on_give_up=given_up.append,
                                now_ms=lambda: int(time.monotonic() * 1000),
                                wall_s=time.monotonic, idle_s=0.02)
            task = asyncio.create_task(bf.run())
            missing: dict[str, set[int]] = {}
            next_id = dict.fromkeys((f"S{i:03d}USDT" for i in range(60)), 1000)
            high_water_tasks = 0
            for step in range(60):  # 60 x 20 ms: ~2 gaps per symbol per second, 60 symbols
                for k, sym in enumerate(next_id):
                    if (step + k) % 25 == 0:
                        a = next_id[sym]
                        g = IdGap(symbol=sym, first=a, last=a + (k % 7))
                        missing.setdefault(sym, set()).update(range(g.first, g.last + 1))
                        next_id[sym] = g.last + 50
                        bf.gap(g)
                high_water_tasks = max(high_water_tasks, bf.in_flight)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.6)  # past the deadline: everything left is given up
            bf.stop()
            await task
            status_429 = rest.counters.status_429
    finally:
        await runner.cleanup()
    return {"server": server, "sched": sched, "given_up": given_up, "missing": missing,
            "tasks": high_water_tasks, "elapsed": time.monotonic() - t0, "429": status_429}


def test_gap_storm_is_bounded_and_every_id_accounted() -> None:
    r = run_bounded(_storm())
    server, sched = r["server"], r["sched"]
    assert server.max_active <= 3 and r["tasks"] <= 3
    # inside the share: 10 pages per 0.5 s window (+1 window of slack for the edges)
    windows = r["elapsed"] / 0.5 + 1
    assert sched.counters.requests <= 10 * windows
    assert r["429"] == 3  # the 429s were met (RestClient backs off and retries), not fatal
    assert sched.counters.queue_high_water <= 200 and sched.queued_ranges == 0
    gave = r["given_up"]
    assert gave and all(g.ids > 0 for g in gave)
    seen: dict[str, list[int]] = {}
    for g in gave:
        seen.setdefault(g.symbol, []).extend(range(g.first, g.last + 1))
    for sym, ids in r["missing"].items():
        fetched = server.served.get(sym, set())
        dropped = set(seen.get(sym, []))
        assert len(seen.get(sym, [])) == len(dropped), f"{sym}: an id given up twice"
        assert ids <= fetched | dropped, f"{sym}: ids neither fetched nor given up"
