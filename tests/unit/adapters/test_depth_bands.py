"""Depth bands from a real partial-depth frame, from archive depth lines, and bad shapes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from engine_adapters.binance.messages import FrameParser
from engine_adapters.depth_bands import (
    LIVE_BANDS_BPS,
    DepthError,
    archive_bands,
    bands_of_levels,
    depth20_bands,
)
from engine_core.normalize import validate
from tests.fixtures_path import binance_fixture


def _frame() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(binance_fixture("ws/combined_depth5.json").read_text())
    return doc


def test_real_partial_depth_frame() -> None:
    doc = _frame()
    assert doc["stream"] == "btcusdt@depth5@100ms"
    d = depth20_bands(doc["data"])
    assert (d.symbol, d.exchange_ts) == ("BTCUSDT", 1771263510139)  # T, not E
    assert d.mid == pytest.approx((68005.00 + 68005.10) / 2)
    assert d.edges_bps == LIVE_BANDS_BPS
    # both bid levels (68005.00, 68004.90) are within 10 bps of the mid, so every band holds them
    bid = 68005.00 * 2.214 + 68004.90 * 0.042
    ask = 68005.10 * 0.838 + 68005.20 * 0.218
    assert d.bid_notional == pytest.approx((bid,) * 4)
    assert d.ask_notional == pytest.approx((ask,) * 4)
    # the 2 levels reach ~0.02 bps: every band is a lower bound, and the value says so
    assert d.reach_bps == pytest.approx(0.15 / d.mid * 10_000)
    assert validate(d) is None  # what the core accepts


def test_levels_fall_into_the_bands_by_distance_from_the_mid() -> None:
    bids = [(99.95, 1.0), (99.8, 2.0), (99.5, 4.0), (98.0, 8.0)]   # 5, 20, 50, 200 bps away
    asks = [(100.05, 1.0), (100.3, 2.0), (100.9, 4.0)]             # 5, 30, 90 bps away
    mid, bid_n, ask_n, reach = bands_of_levels(bids, asks)
    assert mid == 100.0
    assert bid_n == pytest.approx((99.95, 99.95 + 199.6, 99.95 + 199.6 + 398.0,
                                   99.95 + 199.6 + 398.0))
    assert ask_n == pytest.approx((100.05, 100.05, 100.05 + 200.6, 100.05 + 200.6 + 403.6))
    assert reach == pytest.approx(90.0)  # the ask side ends first


@pytest.mark.parametrize(("mutate", "says"), [
    (lambda d: d.pop("b"), "`b` must be a non-empty list"),
    (lambda d: d.update(a=[]), "`a` must be a non-empty list"),
    (lambda d: d["b"].__setitem__(1, ["68004.90"]), r"`b\[1\]` must be"),
    (lambda d: d["a"].__setitem__(0, [68005.1, "0.8"]), r"`a\[0\]` must be"),
    (lambda d: d["a"].__setitem__(0, ["x", "0.8"]), r"`a\[0\]` is not a decimal pair"),
    (lambda d: d.pop("s"), "`s` must be the symbol"),
    (lambda d: (d.pop("T"), d.update(E="1")), r"`T` \(or `E`\) must be an integer"),
])
def test_broken_payloads_name_the_field(mutate: Any, says: str) -> None:
    data = copy.deepcopy(_frame()["data"])
    mutate(data)
    with pytest.raises(DepthError, match=says):
        depth20_bands(data)


def test_event_time_is_the_fallback() -> None:
    data = _frame()["data"]
    del data["T"]
    assert depth20_bands(data).exchange_ts == 1771263510140


def test_archive_depth_line() -> None:
    # the documented example of docs/capture-format.md, with both inner bands
    bands = [[-5.0, 2000.0, 200020.61], [-1.0, 400.0, 39_800.0], [1.0, 400.0, 40_200.0],
             [5.0, 2000.0, 200020.61]]
    d = archive_bands("BTCUSDT", 1722816000000, bands)
    assert d.edges_bps == (100, 500)
    assert d.bid_notional == (39_800.0, 200020.61)
    assert d.ask_notional == (40_200.0, 200020.61)
    assert d.mid == 0.0 and d.reach_bps == 0.0  # the archive gives no mid; bands complete
    assert validate(d) is None


@pytest.mark.parametrize(("bands", "says"), [
    ([], "non-empty list"),
    ([[-1.0, 1.0]], r"bands\[0\]` must be \[pct, depth, notional\]"),
    ([[-1.0, 1.0, "2"]], r"bands\[0\]` must be"),
    ([[0.0, 1.0, 2.0]], "percentage 0"),
    ([[-1.0, -1.0, 2.0]], "negative depth"),
    ([[-1.0, 1.0, 2.0], [2.0, 1.0, 2.0]], "both a bid"),
])
def test_bad_archive_bands(bands: list[Any], says: str) -> None:
    with pytest.raises(DepthError, match=says):
        archive_bands("BTCUSDT", 0, bands)


def test_the_frame_parser_reads_partial_depth_and_leaves_the_diff_unused() -> None:
    parser = FrameParser({"BTCUSDT"})
    doc = _frame()
    for stream in ("btcusdt@depth5@100ms", "btcusdt@depth20@100ms", "btcusdt@depth20"):
        doc["stream"] = stream
        got = parser.parse(json.dumps(doc))
        assert got.events == (depth20_bands(doc["data"]),) and not got.rejects
    doc["stream"] = "btcusdt@depth@100ms"  # the diff stream: not bands
    assert parser.parse(json.dumps(doc)).unused == 1
    diff = binance_fixture("ws/sequence_sushiusdt_depth100ms_2021-07-22.jsonl")
    first = diff.read_text().splitlines()[0]
    assert FrameParser({"SUSHIUSDT"}).parse(first).unused == 1
    doc["stream"] = "btcusdt@depth20@100ms"
    del doc["data"]["a"]
    (rej,) = parser.parse(json.dumps(doc)).rejects
    assert (rej.field, rej.stream, rej.symbol) == ("a", "btcusdt@depth20@100ms", "BTCUSDT")
    other = FrameParser({"ETHUSDT"}).parse(json.dumps(_frame() | {
        "stream": "btcusdt@depth20@100ms"}))
    assert "not in this run's universe" in other.rejects[0].reason
