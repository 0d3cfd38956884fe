"""The whole market: `--top all` selection, answer errors, status watch, and the plan."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from engine_adapters.binance.endpoints import (
    ALL_FORCE_ORDER,
    ALL_MARK_PRICE_1S,
    Base,
    base_of,
    whole_market_streams,
)
from engine_adapters.binance.market_plan import (
    cadence_streams,
    health_symbols,
    plan_market,
    plan_polling,
)
from engine_adapters.binance.rest_client import RestClient, RestClientConfig
from engine_adapters.binance.universe import (
    AnswerProblem,
    ExchangeAnswerError,
    SymbolState,
    UniverseWatch,
    exchange_symbols,
    top_from_ticker,
    whole_market,
)
from engine_adapters.binance.ws_client import WsClientConfig
from tests.fixtures_path import binance_fixture

EXCERPT = binance_fixture("rest/exchangeInfo_usdm_excerpt.json").read_bytes()
TRADIFI = binance_fixture("rest/exchangeInfo_usdm_nautilus_trimmed_2026.json").read_bytes()


def market_body(n: int, *, status: dict[str, str] | None = None,
                drop: tuple[str, ...] = ()) -> bytes:
    """An exchangeInfo with `n` perpetuals cloned from the real BTCUSDT entry."""
    doc: dict[str, Any] = orjson.loads(EXCERPT)
    btc = next(s for s in doc["symbols"] if s["symbol"] == "BTCUSDT")
    syms = []
    for i in range(n):
        s = copy.deepcopy(btc)
        s["symbol"] = f"C{i:03d}USDT"
        s["status"] = (status or {}).get(s["symbol"], "TRADING")
        if s["symbol"] not in drop:
            syms.append(s)
    doc["symbols"] = [*syms, *(s for s in doc["symbols"] if s["symbol"] != "BTCUSDT")]
    return orjson.dumps(doc)


def test_top_all_is_every_trading_usdt_perpetual() -> None:
    assert whole_market(exchange_symbols(200, EXCERPT)) == ("BTCUSDT", "ETHUSDT", "SUSHIUSDT")
    # TRADIFI_PERPETUAL (gold) and a dated contract are other products
    assert whole_market(exchange_symbols(200, TRADIFI)) == ("BTCUSDT",)


def _err(fn: Any, *args: Any) -> ExchangeAnswerError:
    with pytest.raises(ExchangeAnswerError) as info:
        fn(*args)
    return info.value


def test_duplicate_symbols_name_the_endpoint_and_the_symbols() -> None:
    doc = orjson.loads(EXCERPT)
    doc["symbols"].append(doc["symbols"][0])
    e = _err(exchange_symbols, 200, orjson.dumps(doc))
    assert e.problem is AnswerProblem.DUPLICATE_SYMBOLS
    assert str(e) == ("/fapi/v1/exchangeInfo: the answer lists symbols more than once: "
                      "BTCUSDT (x2)")
    ticker = b'[{"symbol":"BTCUSDT","quoteVolume":"5"},{"symbol":"BTCUSDT","quoteVolume":"6"}]'
    e = _err(top_from_ticker, 200, ticker, 5, ("BTCUSDT",))
    assert e.endpoint == "/fapi/v1/ticker/24hr" and "BTCUSDT (x2)" in str(e)


def test_wrong_shapes_and_errors_say_what_was_wrong() -> None:
    e = _err(exchange_symbols, 200, b'{"symbols": {"BTCUSDT": 1}}')
    assert e.problem is AnswerProblem.WRONG_SHAPE
    assert str(e) == "/fapi/v1/exchangeInfo: unexpected answer shape: 'symbols' must be a " \
                     "array, got object"
    e = _err(exchange_symbols, 200, b'{"symbols": [{"symbol": "X", "status": 1}]}')
    assert "symbols[0].status" in str(e)
    e = _err(exchange_symbols, 200, b"<html>")
    assert e.problem is AnswerProblem.WRONG_SHAPE and "not JSON" in str(e)
    e = _err(exchange_symbols, 418, b'{"code":-1003,"msg":"Way too many requests; IP banned"}')
    assert e.problem is AnswerProblem.HTTP_ERROR and "IP banned" in str(e)


def test_empty_universe_is_an_error() -> None:
    doc = orjson.loads(EXCERPT)
    doc["symbols"] = [s for s in doc["symbols"] if s["contractType"] != "PERPETUAL"]
    e = _err(whole_market, exchange_symbols(200, orjson.dumps(doc)))
    assert e.problem is AnswerProblem.EMPTY_UNIVERSE and "of 2 listed" in str(e)
    e = _err(top_from_ticker, 200, b'[{"symbol":"XAUUSDT","quoteVolume":"9"}]', 3, ("BTCUSDT",))
    assert e.problem is AnswerProblem.EMPTY_UNIVERSE


def test_watch_marks_halted_delisted_and_resumed_symbols() -> None:
    infos = exchange_symbols(200, market_body(4))
    syms = whole_market(infos)
    w = UniverseWatch(syms, infos, now_ms=0)
    assert not w.due(3_599_999) and w.due(3_600_000)
    later = exchange_symbols(200, market_body(
        5, status={"C001USDT": "TRADING_HALT", "C002USDT": "SETTLING"}, drop=("C003USDT",)))
    changes = w.update(later, 3_600_000)
    assert [(c.symbol, c.before, c.after, c.status) for c in changes] == [
        ("C001USDT", SymbolState.TRADING, SymbolState.HALTED, "TRADING_HALT"),
        ("C002USDT", SymbolState.TRADING, SymbolState.DELISTED, "SETTLING"),
        ("C003USDT", SymbolState.TRADING, SymbolState.DELISTED, ""),
    ]
    assert w.new_listings == ("C004USDT",) and w.state("C000USDT") is SymbolState.TRADING
    back = w.update(exchange_symbols(200, market_body(5)), 7_200_000)
    assert [(c.symbol, c.after) for c in back] == [
        ("C001USDT", SymbolState.TRADING), ("C002USDT", SymbolState.TRADING),
        ("C003USDT", SymbolState.TRADING)]


def test_whole_market_streams_use_the_all_market_streams() -> None:
    streams = whole_market_streams(["ETHUSDT", "BTCUSDT"])
    assert streams == ("btcusdt@bookTicker", "btcusdt@aggTrade", "ethusdt@bookTicker",
                       "ethusdt@aggTrade", ALL_MARK_PRICE_1S, ALL_FORCE_ORDER)
    assert base_of(ALL_MARK_PRICE_1S) is base_of(ALL_FORCE_ORDER) is Base.MARKET


@pytest.mark.parametrize("n", [1, 6, 100, 550, 700])
def test_plan_pools_connections_and_paces_subscriptions(n: int) -> None:
    symbols = [f"S{i:03d}USDT" for i in range(n)]
    plan = plan_market(symbols)
    assert len(plan.streams) == 2 * n + 2
    assert plan.max_streams_per_connection <= 200
    planned = [st for c in plan.connections for st in c.spec.streams]
    assert sorted(planned) == sorted(plan.streams)  # every stream exactly once
    for c in plan.connections:
        assert {base_of(st) for st in c.spec.streams} == {c.spec.base}  # bases never mix
        # <= 10 messages in any second: the pace is 5/s, so k messages take (k-1)/5 s
        assert c.subscribe_messages <= 1 + 5 * c.subscribe_s + 1e-9
    assert plan.connections_on(Base.PUBLIC) == -(-n // 200)
    assert plan.connections_on(Base.MARKET) == -(-(n + 2) // 200)


def test_plan_refuses_configs_that_break_binance_limits() -> None:
    with pytest.raises(ValueError, match="<= 200 streams"):
        plan_market(["BTCUSDT"], ws=WsClientConfig(per_connection=1024))
    with pytest.raises(ValueError, match="fact 6"):
        plan_market(["BTCUSDT"], ws=WsClientConfig(max_outgoing_per_s=12))


@pytest.mark.parametrize("n", [1, 6, 100, 300, 550, 2000])
def test_oi_schedule_covers_every_symbol_inside_the_budget(n: int) -> None:
    cfg = RestClientConfig()
    p = plan_polling(n, cfg)
    assert p.cap_per_min == 1920  # 2400/min less the 20 % safety margin
    assert p.pollers_per_min <= p.poll_cap_per_min + 1e-9
    assert p.pollers_per_min + p.backfill_per_min == pytest.approx(p.cap_per_min)
    assert p.oi_cycle_s >= cfg.oi_interval_s  # never faster than asked
    assert p.oi_per_min == pytest.approx(n * 60 / p.oi_cycle_s)  # every symbol, every cycle
    assert p.oi_spacing_s * n == pytest.approx(p.oi_cycle_s)
    if n <= 100:
        assert p.oi_cycle_s == cfg.oi_interval_s
    # never slower than the poll share allows: OI gets all of it beyond funding+exchangeInfo
    else:
        assert p.oi_per_min == pytest.approx(p.poll_cap_per_min - p.premium_per_min
                                             - p.exchange_info_per_min)
    # same share as the RestClient's own stretch (which slows funding too, this plan does not)
    oi_s, prem_s = RestClient("http://x", config=cfg).poll_intervals(n)
    assert n * 60 / oi_s + 600 / prem_s == pytest.approx(
        min(p.poll_cap_per_min, n * 6 + 120.0))


def test_plan_describes_the_cadence_achieved() -> None:
    p = plan_polling(550)
    assert p.describe().startswith("open interest of 550 symbols every 32.0 s (1032 weight/min)")


def test_a_connection_with_an_all_market_stream_speaks_for_every_symbol() -> None:
    symbols = [f"S{i:03d}USDT" for i in range(450)]
    plan = plan_market(symbols)
    holders = [c.spec for c in plan.connections if ALL_MARK_PRICE_1S in c.spec.streams]
    assert len(holders) == 1
    assert health_symbols(holders[0], symbols) == tuple(symbols)
    assert cadence_streams(holders[0]) == (ALL_MARK_PRICE_1S,)
    other = next(c.spec for c in plan.connections if c.spec.base is Base.PUBLIC)
    assert health_symbols(other, symbols) == other.symbols and len(other.symbols) == 200
    assert cadence_streams(other) == ()
