"""`resolve_universe` against a loopback exchange serving exchangeInfo and ticker/24hr."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest
from aiohttp import web

from engine_adapters.binance.rest_client import RestClient, RestClientConfig
from engine_adapters.binance.universe import (
    ALL,
    AnswerProblem,
    ExchangeAnswerError,
    resolve_universe,
)
from tests.conftest import run_bounded
from tests.fixtures_path import binance_fixture

EXCERPT = binance_fixture("rest/exchangeInfo_usdm_excerpt.json").read_bytes()
TICKER = orjson.dumps([{"symbol": s, "quoteVolume": v} for s, v in (
    ("BTCUSDT", "900"), ("ETHUSDT", "800"), ("SUSHIUSDT", "5"), ("BTCUSDT_210924", "999"))])


async def _resolve(info: bytes | None, ticker: bytes, *, symbols: Sequence[str] | None = None,
                   top: int | str | None = None) -> tuple[str, ...]:
    async def exchange_info(_: web.Request) -> web.Response:
        if info is None:
            return web.Response(status=503, text="down")
        return web.Response(body=info, content_type="application/json")

    async def ticker_24hr(_: web.Request) -> web.Response:
        return web.Response(body=ticker, content_type="application/json")

    app = web.Application()
    app.router.add_get("/fapi/v1/exchangeInfo", exchange_info)
    app.router.add_get("/fapi/v1/ticker/24hr", ticker_24hr)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        cfg = RestClientConfig(max_attempts=1)
        async with RestClient(f"http://127.0.0.1:{runner.addresses[0][1]}", config=cfg) as rest:
            return await resolve_universe(rest, symbols=symbols, top=top, default=("BTCUSDT",))
    finally:
        await runner.cleanup()


def test_top_all_top_n_and_symbols() -> None:
    assert run_bounded(_resolve(EXCERPT, TICKER, top=ALL)) == ("BTCUSDT", "ETHUSDT",
                                                                "SUSHIUSDT")
    # the dated contract has the highest volume but is not a perpetual
    assert run_bounded(_resolve(EXCERPT, TICKER, top=2)) == ("BTCUSDT", "ETHUSDT")
    assert run_bounded(_resolve(EXCERPT, TICKER, symbols=["ETHUSDT", "BTCUSDT", "ETHUSDT"])) \
        == ("BTCUSDT", "ETHUSDT")
    assert run_bounded(_resolve(EXCERPT, TICKER)) == ("BTCUSDT",)  # the default


def test_errors_name_the_endpoint() -> None:
    doc = orjson.loads(EXCERPT)
    doc["symbols"].append(doc["symbols"][1])
    with pytest.raises(ExchangeAnswerError, match=r"^/fapi/v1/exchangeInfo: .*ETHUSDT \(x2\)"):
        run_bounded(_resolve(orjson.dumps(doc), TICKER, top=ALL))
    with pytest.raises(ExchangeAnswerError) as e:
        run_bounded(_resolve(EXCERPT, TICKER, symbols=["BTCSTUSDT", "BTCUSDT"]))
    assert e.value.problem is AnswerProblem.NOT_TRADING and "BTCSTUSDT" in str(e.value)
    with pytest.raises(ExchangeAnswerError) as e:
        run_bounded(_resolve(EXCERPT, b'{"symbol": "BTCUSDT"}', top=3))
    assert e.value.endpoint == "/fapi/v1/ticker/24hr"
    assert e.value.problem is AnswerProblem.WRONG_SHAPE and "quoteVolume" in str(e.value)
    with pytest.raises(ExchangeAnswerError) as e:  # 503: --top cannot do without it
        run_bounded(_resolve(None, TICKER, top=ALL))
    assert e.value.problem is AnswerProblem.HTTP_ERROR


def test_explicit_symbols_tolerate_an_unreachable_exchange_info() -> None:
    # a 5xx after the client's retries is no answer (RestClient.request gives None): the
    # symbols are used unchecked, as before; a 200 of the wrong shape is still an error
    assert run_bounded(_resolve(None, TICKER, symbols=["XRPUSDT"])) == ("XRPUSDT",)
    with pytest.raises(ExchangeAnswerError, match="unexpected answer shape"):
        run_bounded(_resolve(b"[]", TICKER, symbols=["XRPUSDT"]))
