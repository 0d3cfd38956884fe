"""REST chaos against the fake exchange: 429, 418 bans, 5xx, slow answers, the weight budget."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from engine_adapters.binance.rest_client import OPEN_INTEREST, RestClient, RestClientConfig
from engine_adapters.binance.ws_client import HealthNotice
from engine_core.events import FundingReceived, HealthKind, OpenInterestReceived
from engine_sim.fake_exchange import FakeBinance, FakeConfig, Faults

OI = {"symbol": "BTCUSDT"}
#: Symbols that already have open interest to serve.
SEEDED = FakeConfig(initial_open_interest=1000.0)


def test_429_retry_after_is_honoured_without_earning_a_ban(arun: Any) -> None:
    async def body() -> None:
        faults = Faults(rest_429_next=1, retry_after_s=1)
        async with FakeBinance(["BTCUSDT"], faults=faults, config=SEEDED) as fake, RestClient(
            fake.rest_base, config=RestClientConfig(retry_base_s=0.01)
        ) as rest:
            await fake.publish(OpenInterestReceived(symbol="BTCUSDT", exchange_ts=5,
                                                    open_interest=109039.496))
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            res = await rest.request(OPEN_INTEREST, OI)
            waited = loop.time() - t0
            assert res is not None and res.status == 200
            assert json.loads(res.body) == {"symbol": "BTCUSDT", "openInterest": "109039.496",
                                            "time": 5}
            assert waited >= 0.95
            assert fake.stats.rest_429 == 1
            assert fake.stats.rest_ignored_retry_after == 0 and fake.stats.rest_418 == 0

    arun(body())


def test_418_ban_stops_every_request_until_it_ends(arun: Any) -> None:
    async def body() -> None:
        faults = Faults(rest_418_next=1, ban_s=1.5)
        health: list[HealthNotice] = []
        async with FakeBinance(["BTCUSDT"], faults=faults, config=SEEDED) as fake, RestClient(
            fake.rest_base, on_health=health.append
        ) as rest:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            assert await rest.request(OPEN_INTEREST, OI, symbols=("BTCUSDT",)) is None
            res = await rest.request(OPEN_INTEREST, OI)
            waited = loop.time() - t0
            assert res is not None and res.status == 200
            assert waited >= 1.4
            assert fake.stats.rest_418 == 1  # nothing was sent during the ban
            assert fake.stats.rest_requests == 2
            assert [h.kind for h in health] == [HealthKind.REST_DEGRADED]

    arun(body())


def test_5xx_is_retried_with_backoff(arun: Any) -> None:
    async def body() -> None:
        faults = Faults(rest_5xx_next=2)
        async with FakeBinance(["BTCUSDT"], faults=faults, config=SEEDED) as fake, RestClient(
            fake.rest_base, config=RestClientConfig(retry_base_s=0.02)
        ) as rest:
            res = await rest.request(OPEN_INTEREST, OI)
            assert res is not None and res.status == 200
            assert rest.counters.status_5xx == 2 and rest.counters.retries == 2

    arun(body())


def test_slow_answer_times_out_and_is_retried(arun: Any) -> None:
    async def body() -> None:
        faults = Faults(rest_slow_next=1, rest_slow_s=2.0)
        async with FakeBinance(["BTCUSDT"], faults=faults, config=SEEDED) as fake, RestClient(
            fake.rest_base, config=RestClientConfig(timeout_s=0.3, retry_base_s=0.02)
        ) as rest:
            res = await rest.request(OPEN_INTEREST, OI)
            assert res is not None and res.status == 200
            assert rest.counters.timeouts == 1

    arun(body())


def test_budget_keeps_the_client_under_the_exchange_limit(arun: Any) -> None:
    """Limit 20 per 1 s window; 45 requests must spread over windows with no 429."""

    async def body() -> None:
        cfg = FakeConfig(weight_limit=20, weight_window_s=1.0, initial_open_interest=1000.0)
        async with FakeBinance(["BTCUSDT"], config=cfg) as fake, RestClient(
            fake.rest_base, config=RestClientConfig(weight_limit=20, window_s=1.0)
        ) as rest:
            results = [await rest.request(OPEN_INTEREST, OI) for _ in range(45)]
            assert all(r is not None and r.status == 200 for r in results)
            assert fake.stats.rest_429 == 0
            assert rest.budget.used <= rest.budget.cap

    arun(body())


def test_pollers_cover_every_symbol_and_deliver_raw_answers(arun: Any) -> None:
    syms = ["BTCUSDT", "ETHUSDT", "XRPUSDT"]

    async def body() -> None:
        got: list[tuple[int, str, str, int, str]] = []
        async with FakeBinance(syms, config=SEEDED) as fake, RestClient(
            fake.rest_base, on_response=lambda *a: got.append(a),
            config=RestClientConfig(oi_interval_s=0.3, premium_interval_s=0.4),
        ) as rest:
            for sym in syms:  # the exchange lists only symbols that have a mark price
                await fake.publish(FundingReceived(symbol=sym, exchange_ts=1, funding_rate=1e-4,
                                                   mark_price=10.0, index_price=10.0))
            task = asyncio.create_task(rest.poll_forever(syms))
            await asyncio.sleep(1.0)
            rest.stop()
            await task
            offset = await RestClient(fake.rest_base).__aenter__()
            sample = await offset.server_time_offset(samples=2)
            await offset.__aexit__(None, None, None)
        oi_syms = {q for _, p, q, _, _ in got if p == OPEN_INTEREST}
        assert oi_syms == {f"symbol={s}" for s in syms}
        premium = [b for _, p, _, _, b in got if p == "/fapi/v1/premiumIndex"]
        assert len(premium) >= 2 and len(json.loads(premium[0])) == 3
        assert all(status == 200 for _, _, _, status, _ in got)
        assert sample is not None and abs(sample.offset_ms) < 100

    arun(body())
