"""Binance REST bodies: real fixtures, errors, universe selection, mutations never raise."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_adapters.binance.messages import ApiError, Parsed, Reject
from engine_adapters.binance.rest_payloads import (
    SymbolInfo,
    api_error,
    parse_exchange_info,
    parse_rest,
    parse_server_time,
    parse_ticker_24hr,
    top_by_quote_volume,
    usdt_perpetuals,
)
from engine_core.events import FundingReceived, OpenInterestReceived, TradeReceived
from engine_core.ingest import CanonicalEngine
from tests.fixtures_path import binance_text

OI = "/fapi/v1/openInterest"
PREMIUM = "/fapi/v1/premiumIndex"


def test_open_interest_fixture() -> None:
    got = parse_rest(OI, "symbol=BTCUSDT", 200, binance_text("rest/openInterest.json"))
    assert got == Parsed(events=(OpenInterestReceived(
        symbol="BTCUSDT", exchange_ts=1787866530443, open_interest=109039.496),))
    body = binance_text("rest/openInterest_docs_example.json")
    docs = parse_rest(OI, "symbol=BTCUSDT", 200, body)
    assert docs.events == (OpenInterestReceived(symbol="BTCUSDT", exchange_ts=1589437530011,
                                                open_interest=10659.509),)


def test_premium_index_object_and_array() -> None:
    one = parse_rest(PREMIUM, "symbol=BTCUSDT", 200, binance_text("rest/premiumIndex_one.json"))
    assert one.events == (FundingReceived(
        symbol="BTCUSDT", exchange_ts=1787866534004, funding_rate=0.00008390,
        mark_price=80065.24544928, index_price=80098.66195652, next_funding_ts=1787875200000),)
    arr = parse_rest(PREMIUM, "", 200, binance_text("rest/premiumIndex_all_docs_example.json"))
    assert arr.events == (FundingReceived(
        symbol="BTCUSDT", exchange_ts=1597370495002, funding_rate=0.00038246,
        mark_price=11793.63104562, index_price=11781.80495970, next_funding_ts=1597392000000),)
    outside = parse_rest(PREMIUM, "", 200, binance_text("rest/premiumIndex_all_docs_example.json"),
                         symbols=["ETHUSDT"])
    assert outside == Parsed(ignored=1)


def test_agg_trades_backfill_takes_the_symbol_from_the_query() -> None:
    body = ('[{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,'
            '"T":1498793709153,"m":true}]')
    got = parse_rest("/fapi/v1/aggTrades", "symbol=BTCUSDT&fromId=26129", 200, body)
    assert got.events == (TradeReceived(symbol="BTCUSDT", exchange_ts=1498793709153,
                                        price=0.01633102, qty=4.70443515, buyer_is_maker=True,
                                        trade_id=26129),)
    assert parse_rest("/fapi/v1/aggTrades", "", 200, body).rejects[0].field == "symbol"


@pytest.mark.parametrize(("name", "status", "text"), [
    ("rest/error_429.json", 429, "Too many requests"),
    ("rest/error_418.json", 418, "Way too many requests"),
])
def test_rate_limit_bodies_are_api_errors(name: str, status: int, text: str) -> None:
    got = parse_rest(OI, "symbol=BTCUSDT", status, binance_text(name))
    assert got.events == () and got.api_error is not None
    assert (got.api_error.status, got.api_error.code) == (status, -1003)
    assert got.api_error.message.startswith(text) and got.api_error.path == OI


def test_non_json_error_status_is_an_api_error() -> None:
    assert api_error(403, "<html>blocked</html>") == ApiError(status=403, code=None,
                                                              message="<html>blocked</html>")
    assert api_error(200, binance_text("rest/openInterest.json")) is None


def test_unknown_path_is_a_reject() -> None:
    assert parse_rest("/fapi/v9/nope", "", 200, "{}").rejects[0].reason.startswith(
        "unknown REST path")


def test_exchange_info_and_usdt_perpetual_selection() -> None:
    infos = parse_exchange_info(binance_text("rest/exchangeInfo_usdm_excerpt.json"))
    assert isinstance(infos, tuple)
    assert SymbolInfo(symbol="BTCSTUSDT", status="PENDING_TRADING", contract_type="",
                      quote_asset="USDT") in infos
    assert usdt_perpetuals(infos) == ("BTCUSDT", "ETHUSDT", "SUSHIUSDT")
    infos26 = parse_exchange_info(binance_text("rest/exchangeInfo_usdm_nautilus_trimmed_2026.json"))
    assert isinstance(infos26, tuple)
    assert any(i.contract_type == "TRADIFI_PERPETUAL" for i in infos26)
    assert all(i.contract_type == "PERPETUAL" for i in infos26 if i.symbol in
               usdt_perpetuals(infos26))
    assert "XAUUSDT" not in usdt_perpetuals(infos26)
    # exchangeInfo does not feed the core: the dispatcher yields nothing, and no error.
    assert parse_rest("/fapi/v1/exchangeInfo", "", 200, "{}") == Parsed()


def test_ticker_and_top_n() -> None:
    one = parse_ticker_24hr(binance_text("rest/ticker24hr_one_docs_example.json"))
    assert one == (("BTCUSDT", 15.3),)
    pairs = [("AUSDT", 5.0), ("BUSDT", 9.0), ("CUSDT", 9.0), ("DUSDT", float("nan")),
             ("EUSDT", 1.0)]
    assert top_by_quote_volume(pairs, 2) == ("BUSDT", "CUSDT")
    assert top_by_quote_volume(pairs, 3) == ("AUSDT", "BUSDT", "CUSDT")
    assert top_by_quote_volume(pairs, 2, allowed={"AUSDT", "EUSDT"}) == ("AUSDT", "EUSDT")


def test_server_time() -> None:
    assert parse_server_time('{"serverTime":1499827319559}') == 1499827319559
    bad = parse_server_time('{"serverTime":"soon"}')
    assert isinstance(bad, Reject) and bad.field == "serverTime"
    assert isinstance(parse_server_time(binance_text("rest/error_429.json"), 429), ApiError)


@pytest.mark.parametrize(("path", "name"), [(OI, "rest/openInterest.json"),
                                            (PREMIUM, "rest/premiumIndex_one.json")])
def test_every_field_mutation_is_a_reject_or_a_valid_event(path: str, name: str) -> None:
    doc = orjson.loads(binance_text(name))
    used = {"symbol", "time", "openInterest", "lastFundingRate", "markPrice", "indexPrice",
            "nextFundingTime"}
    for key in doc:
        values: list[Any] = [None, True, 1.5, [], {}, "NaN", "-1", "inf", "x", -1, "remove"]
        for value in values:
            copy = dict(doc)
            if value == "remove":
                del copy[key]
            else:
                copy[key] = value
            got = parse_rest(path, "symbol=BTCUSDT", 200, json.dumps(copy))
            engine = CanonicalEngine(["BTCUSDT"])
            rejected = [r for r in map(engine.ingest, got.events) if r is not None]
            accepted = len(got.events) - len(rejected)
            assert accepted + len(got.rejects) + len(rejected) == 1, (key, value)
            if key in used and (value == "remove" or type(value) is not type(doc[key])):
                assert accepted == 0, (key, value)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([OI, PREMIUM, "/fapi/v1/aggTrades", "/fapi/v1/exchangeInfo",
                        "/fapi/v1/ticker/24hr", "/fapi/v1/time"]),
       st.integers(100, 599),
       st.one_of(st.text(max_size=80), st.recursive(
           st.none() | st.booleans() | st.integers() | st.text(max_size=8),
           lambda inner: st.lists(inner, max_size=3)
           | st.dictionaries(st.sampled_from(["symbol", "time", "openInterest", "code", "msg",
                                              "markPrice", "a", "p", "q", "T", "m"]),
                             inner, max_size=6),
           max_leaves=10).map(json.dumps)))
def test_arbitrary_bodies_never_raise(path: str, status: int, body: str) -> None:
    got = parse_rest(path, "symbol=BTCUSDT", status, body)
    assert all("internal parser error" not in r.reason for r in got.rejects)
    typed: list[Any] = [parse_exchange_info(body, status), parse_ticker_24hr(body, status),
                        parse_server_time(body, status)]
    assert len(typed) == 3
