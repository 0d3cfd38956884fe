"""fundingInfo and openInterestHist bodies (Binance docs examples), mutations, request windows."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from engine_adapters.binance.rest_history import (
    LIMIT,
    PATH_FUNDING_INFO,
    PATH_OI_HISTORY,
    PERIOD_MS,
    FundingInfo,
    HistoryError,
    oi_history_query,
    oi_history_windows,
    parse_funding_info,
    parse_oi_history,
)
from engine_adapters.binance.rest_payloads import parse_rest
from engine_core.events import FundingInfoReceived, OpenInterestHistoryReceived
from engine_core.normalize import validate

#: GET /fapi/v1/fundingInfo, the example of Binance's "Get Funding Rate Info" page.
FUNDING_INFO = """[{"symbol": "BLZUSDT", "adjustedFundingRateCap": "0.02500000",
  "adjustedFundingRateFloor": "-0.02500000", "fundingIntervalHours": 8, "disclaimer": false},
 {"symbol": "ALTUSDT", "adjustedFundingRateCap": "0.02000000",
  "adjustedFundingRateFloor": "-0.02000000", "fundingIntervalHours": 4, "disclaimer": false}]"""
#: GET /futures/data/openInterestHist, the example of Binance's "Open Interest Statistics"
#: page (timestamp as a string) and the integer form current answers use.
OI_HIST = """[{"symbol": "BTCUSDT", "sumOpenInterest": "20403.63700000",
  "sumOpenInterestValue": "150570784.07809979", "CMCCirculatingSupply": "165880.538",
  "timestamp": "1583128200000"},
 {"symbol": "BTCUSDT", "sumOpenInterest": "20401.36700000",
  "sumOpenInterestValue": "149940752.14464448", "CMCCirculatingSupply": "165900.14853",
  "timestamp": 1583127900000}]"""


def test_funding_info() -> None:
    assert parse_funding_info(FUNDING_INFO) == (
        FundingInfo(symbol="BLZUSDT", interval_hours=8, cap=0.025, floor=-0.025),
        FundingInfo(symbol="ALTUSDT", interval_hours=4, cap=0.02, floor=-0.02))
    assert parse_funding_info("[]") == ()


def test_oi_history_is_time_sorted_contracts() -> None:
    assert parse_oi_history(OI_HIST, "BTCUSDT") == (
        (1583127900000, 20401.367), (1583128200000, 20403.637))


def _mutated(body: str, key: str, value: Any) -> str:
    doc = json.loads(body)
    if value is KeyError:
        del doc[0][key]
    else:
        doc[0][key] = value
    return json.dumps(doc)


@pytest.mark.parametrize(("key", "value", "says"), [
    ("fundingIntervalHours", "8", r"\[0\]\.fundingIntervalHours must be a positive integer"),
    ("fundingIntervalHours", 0, "must be a positive integer"),
    ("adjustedFundingRateCap", 0.025, r"\[0\]\.adjustedFundingRateCap must be a decimal"),
    ("adjustedFundingRateFloor", "low", "is not a decimal"),
    ("symbol", KeyError, r"\[0\]\.symbol must be a string"),
])
def test_bad_funding_info_names_the_field(key: str, value: Any, says: str) -> None:
    with pytest.raises(HistoryError, match=says):
        parse_funding_info(_mutated(FUNDING_INFO, key, value))


@pytest.mark.parametrize(("key", "value", "says"), [
    ("symbol", "ETHUSDT", "asked for BTCUSDT"),
    ("timestamp", 1.5e12, "timestamp must be integer ms"),
    ("sumOpenInterest", KeyError, "sumOpenInterest must be a decimal string"),
])
def test_bad_oi_history_names_the_field(key: str, value: Any, says: str) -> None:
    with pytest.raises(HistoryError, match=says):
        parse_oi_history(_mutated(OI_HIST, key, value), "BTCUSDT")


def test_not_json_or_not_an_array() -> None:
    with pytest.raises(HistoryError, match="fundingInfo: body is not JSON"):
        parse_funding_info("<html>")
    with pytest.raises(HistoryError, match="openInterestHist: expected an array, got dict"):
        parse_oi_history('{"code": -1121, "msg": "Invalid symbol."}', "BTCUSDT")


def test_thirty_days_are_eighteen_windows_of_at_most_500_points() -> None:
    now = 1_764_640_000_123
    w = oi_history_windows(now)
    assert len(w) == 18
    assert w[0][0] >= now - 30 * 86_400_000 and w[0][0] % PERIOD_MS == 0
    assert w[-1][1] == now
    for (s, e), (s2, _) in itertools.pairwise(w):
        assert (e - s) // PERIOD_MS + 1 == LIMIT and s2 == e + 1
    assert oi_history_query("BTCUSDT", w[0]) == (
        f"symbol=BTCUSDT&period=5m&limit=500&startTime={w[0][0]}&endTime={w[0][1]}")
    with pytest.raises(ValueError, match="days must be > 0"):
        oi_history_windows(now, 0)


def test_rest_dispatch_builds_the_core_events() -> None:
    got = parse_rest(PATH_FUNDING_INFO, "", 200, FUNDING_INFO, {"ALTUSDT"}, recv_ms=77)
    assert got.events == (FundingInfoReceived(symbol="ALTUSDT", exchange_ts=77,
                                              interval_hours=4, cap=0.02, floor=-0.02),)
    assert got.ignored == 1 and validate(got.events[0]) is None
    q = "symbol=BTCUSDT&period=5m&limit=500"
    (ev,) = parse_rest(PATH_OI_HISTORY, q, 200, OI_HIST, {"BTCUSDT"}).events
    assert ev == OpenInterestHistoryReceived(
        symbol="BTCUSDT", exchange_ts=1583128200000,
        points=((1583127900000, 20401.367), (1583128200000, 20403.637)))
    assert validate(ev) is None
    assert parse_rest(PATH_OI_HISTORY, q, 200, "[]", {"BTCUSDT"}).events == ()


def test_rest_dispatch_rejects_and_errors() -> None:
    q = "symbol=BTCUSDT&period=5m"
    assert "asked for BTCUSDT" in parse_rest(PATH_OI_HISTORY, q, 200, OI_HIST.replace(
        "BTCUSDT", "ETHUSDT"), None).rejects[0].reason
    assert parse_rest(PATH_OI_HISTORY, "period=5m", 200, OI_HIST).rejects[0].field == "symbol"
    assert "unknown symbol" in parse_rest(PATH_OI_HISTORY, q, 200, OI_HIST,
                                          {"ETHUSDT"}).rejects[0].reason
    limited = parse_rest(PATH_FUNDING_INFO, "", 429, '{"code": -1003, "msg": "Too many"}')
    assert limited.api_error is not None and limited.api_error.code == -1003
