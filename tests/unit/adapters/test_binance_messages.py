"""Binance WS frame parser: real fixtures, every field mutation, arbitrary input."""

from __future__ import annotations

import json
import math
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_adapters.binance import frame_builders as messages
from engine_adapters.binance.messages import ControlKind, FrameParser, Parsed, Reject
from engine_core.events import (
    BookTickerReceived,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    Side,
    TradeReceived,
)
from engine_core.ingest import CanonicalEngine
from engine_core.normalize import Rejection
from tests.fixtures_path import BINANCE_FIXTURES, binance_text

UNIVERSE = sorted({"BTCUSDT", "ETHUSDT", "STGUSDT", "XRPUSDT", "MANTAUSDT", "ILVUSDT",
                   "SUSHIUSDT"})

# Expected values typed from the fixture text (not from the parser).
EXPECTED: dict[str, MarketEvent] = {
    "ws/combined_aggTrade.json": TradeReceived(
        symbol="BTCUSDT", exchange_ts=1771263510041, price=68005.00, qty=2.695,
        buyer_is_maker=True, trade_id=3141966230),
    "ws/combined_aggTrade_2026-08-08.json": TradeReceived(
        symbol="BTCUSDT", exchange_ts=1786171884471, price=64990.90, qty=0.002,
        buyer_is_maker=True, trade_id=3404749954),
    "ws/combined_aggTrade_st.json": TradeReceived(
        symbol="BTCUSDT", exchange_ts=1791391081874, price=83434.40, qty=0.016,
        buyer_is_maker=True, trade_id=3478018549),
    "ws/combined_trade.json": TradeReceived(
        symbol="BTCUSDT", exchange_ts=1771263510064, price=68005.00, qty=0.100,
        buyer_is_maker=True, trade_id=7297376207),
    "ws/combined_bookTicker.json": BookTickerReceived(
        symbol="BTCUSDT", exchange_ts=1771263510337, bid=68005.00, bid_qty=2.394,
        ask=68005.10, ask_qty=0.857, update_id=9924360161244),
    "ws/raw_bookTicker_ps_st.json": BookTickerReceived(
        symbol="BTCUSDT", exchange_ts=1791091007473, bid=84788.20, bid_qty=5.923,
        ask=84788.30, ask_qty=2.824, update_id=11730346419457),
    "ws/combined_forceOrder_arr.json": LiquidationReceived(
        symbol="ILVUSDT", exchange_ts=1791391082119, side=Side.SELL, price=3.85642, qty=116.5),
    "ws/combined_forceOrder_symbol.json": LiquidationReceived(
        symbol="STGUSDT", exchange_ts=1786172556607, side=Side.SELL, price=0.1355, qty=5.0),
    "ws/combined_forceOrder_symbol_xrp.json": LiquidationReceived(
        symbol="XRPUSDT", exchange_ts=1791091174219, side=Side.BUY, price=1.4912, qty=127.2),
    "ws/raw_forceOrder.json": LiquidationReceived(
        symbol="MANTAUSDT", exchange_ts=1791091026103, side=Side.SELL, price=0.0722187,
        qty=2049.1),
    "ws/combined_markPrice.json": MarkPriceReceived(
        symbol="BTCUSDT", exchange_ts=1771263510000, mark_price=68005.80802899,
        index_price=68035.14043478, funding_rate=-0.00004435, next_funding_ts=1771286400000),
    "ws/combined_markPrice_3s_ap_st.json": MarkPriceReceived(
        symbol="BTCUSDT", exchange_ts=1786171884000, mark_price=64991.37858696,
        index_price=65016.05673913, funding_rate=0.00003936, next_funding_ts=1786176000000),
}


@pytest.fixture
def parser() -> FrameParser:
    return FrameParser(UNIVERSE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_fixture_parses_to_the_values_in_its_text(parser: FrameParser, name: str) -> None:
    got = parser.parse(binance_text(name).strip())
    assert got == Parsed(events=(EXPECTED[name],))
    assert parser.parse(binance_text(name).encode()) == got  # bytes in, same value out


def test_every_ws_fixture_has_a_test() -> None:
    covered = set(EXPECTED) | {"ws/markPrice_arr_raw_first2.json", "ws/combined_depth5.json",
                               "ws/subscribe_request.json", "ws/subscribe_response.json",
                               "ws/error_response.json", "ws/error_response_null_id.json"}
    on_disk = {f"ws/{p.name}" for p in (BINANCE_FIXTURES / "ws").glob("*.json")}
    assert on_disk <= covered, f"fixtures without a test: {sorted(on_disk - covered)}"


def test_mark_price_array_frame_yields_every_item(parser: FrameParser) -> None:
    got = parser.parse(binance_text("ws/markPrice_arr_raw_first2.json"))
    assert got.rejects == () and got.ignored == 0
    marks = [e for e in got.events if isinstance(e, MarkPriceReceived)]
    assert [(e.symbol, e.mark_price, e.index_price, e.funding_rate) for e in marks] == [
        ("BTCUSDT", 86141.0, 86181.65630435, 0.00003779),
        ("ETHUSDT", 2715.93, 2717.21325581, 0.00006061)]


def test_array_items_outside_the_universe_are_counted_not_rejected() -> None:
    only_eth = FrameParser(["ETHUSDT"])
    got = only_eth.parse(binance_text("ws/markPrice_arr_raw_first2.json"))
    assert [e.symbol for e in got.events] == ["ETHUSDT"]
    assert got.ignored == 1 and got.rejects == ()
    # `!forceOrder@arr` carries every symbol: outside ones are ignored too.
    assert only_eth.parse(binance_text("ws/combined_forceOrder_arr.json")) == Parsed(ignored=1)


def test_single_symbol_frame_outside_the_universe_is_rejected() -> None:
    got = FrameParser(["ETHUSDT"]).parse(binance_text("ws/combined_aggTrade.json"))
    assert got.events == ()
    assert got.rejects == (Reject(reason="unknown symbol 'BTCUSDT': not in this run's universe",
                                  field="s", stream="btcusdt@aggTrade", symbol="BTCUSDT"),)


def test_no_universe_accepts_every_symbol() -> None:
    got = FrameParser(None).parse(binance_text("ws/combined_forceOrder_arr.json"))
    assert got.events == (EXPECTED["ws/combined_forceOrder_arr.json"],)


def test_partial_depth_becomes_bands_and_the_diff_stream_is_unused(parser: FrameParser) -> None:
    # a partial book (depth5/10/20) is a DepthReceived (tests/unit/adapters/test_depth_bands.py)
    (ev,) = parser.parse(binance_text("ws/combined_depth5.json")).events
    assert type(ev).__name__ == "DepthReceived" and ev.symbol == "BTCUSDT"
    # the diff stream (same event type) is a kind the engine does not use: unused, not outside
    diff = binance_text("ws/combined_depth5.json").replace("@depth5@", "@depth@")
    assert parser.parse(diff) == Parsed(unused=1)
    assert FrameParser(["ETHUSDT"]).parse(diff) == Parsed(unused=1)


@pytest.mark.parametrize("kind", ["aggTrade", "bookTicker"])
def test_real_sequences_parse_in_order(parser: FrameParser, kind: str) -> None:
    lines = binance_text(f"ws/sequence_sushiusdt_{kind}_2021-07-22.jsonl").splitlines()
    events = [ev for line in lines for ev in parser.parse(line).events]
    assert len(events) == len(lines) == 20
    if kind == "aggTrade":
        ids = [e.trade_id for e in events if isinstance(e, TradeReceived)]
        assert ids == list(range(87353230, 87353250))  # README: none missing


def test_force_order_price_falls_back_to_order_price_when_ap_is_zero(parser: FrameParser) -> None:
    doc = orjson.loads(binance_text("ws/raw_forceOrder.json"))
    doc["o"]["ap"] = "0"
    (ev,) = parser.parse(orjson.dumps(doc)).events
    assert isinstance(ev, LiquidationReceived) and ev.price == 0.07115
    del doc["o"]["ap"]
    assert parser.parse(orjson.dumps(doc)).events == (ev,)


def test_book_ticker_time_falls_back_to_event_time(parser: FrameParser) -> None:
    doc = orjson.loads(binance_text("ws/raw_bookTicker_ps_st.json"))
    del doc["T"]
    doc["E"] = 1791091007999
    (ev,) = parser.parse(orjson.dumps(doc)).events
    assert ev.exchange_ts == 1791091007999


@pytest.mark.parametrize(("name", "kind", "rid", "code"), [
    ("ws/subscribe_response.json", ControlKind.ACK, 1, None),
    ("ws/error_response.json", ControlKind.ERROR, 1, 2),
    ("ws/error_response_null_id.json", ControlKind.ERROR, None, 2),
])
def test_control_frames_are_values(parser: FrameParser, name: str, kind: ControlKind,
                                   rid: int | None, code: int | None) -> None:
    got = parser.parse(binance_text(name))
    assert got.events == () and got.rejects == () and got.control is not None
    assert (got.control.kind, got.control.request_id, got.control.code) == (kind, rid, code)
    if kind is ControlKind.ERROR:
        assert got.control.message.startswith("Invalid request")


def test_list_subscriptions_result_is_kept(parser: FrameParser) -> None:
    got = parser.parse('{"result":["btcusdt@aggTrade","btcusdt@depth"],"id":3}')
    assert got.control is not None
    assert got.control.result == ("btcusdt@aggTrade", "btcusdt@depth")


@pytest.mark.parametrize(("text", "reason"), [
    ("", "not JSON"),
    ("{", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    ("42", "frame must be a JSON object or array, got integer"),
    ('{"foo": 1}', "unrecognised frame with keys 'foo'"),
    ('{"stream": 5, "data": {}}', "'stream' must be a string, got integer"),
    ('{"stream": "x@aggTrade"}', "combined frame without 'data'"),
    ('{"stream": "x@aggTrade", "data": "s"}', "'data' must be an object or array, got string"),
    ('{"stream": "x", "data": {"s": "BTCUSDT"}}', "missing key 'e' (event type)"),
    ('{"e": "bogus", "s": "BTCUSDT"}', "unknown event type 'bogus'"),
    ('{"e": ["aggTrade"]}', "'e' must be a string, got array"),
    ("[1]", "array item must be an object, got integer"),
])
def test_structurally_bad_frames_are_rejects_with_a_reason(parser: FrameParser,
                                                           text: str | bytes,
                                                           reason: str) -> None:
    got = parser.parse(text)
    assert got.events == () and len(got.rejects) == 1
    assert got.rejects[0].reason.startswith(reason)


def test_oversized_frame_is_rejected_before_decoding() -> None:
    small = FrameParser(UNIVERSE, max_frame_bytes=100)
    frame = binance_text("ws/combined_aggTrade.json").strip()
    (rej,) = small.parse(frame).rejects
    assert rej.reason == f"frame of {len(frame)} bytes exceeds the limit of 100"
    # Multi-byte characters count in bytes, not characters.
    (rej,) = FrameParser(max_frame_bytes=100).parse('"' + "é" * 60 + '"').rejects
    assert "exceeds the limit" in rej.reason


def test_one_bad_item_does_not_cost_the_others(parser: FrameParser) -> None:
    doc = orjson.loads(binance_text("ws/markPrice_arr_raw_first2.json"))
    doc[0]["p"] = 5
    got = parser.parse(orjson.dumps(doc))
    assert [e.symbol for e in got.events] == ["ETHUSDT"]
    assert got.rejects == (Reject(reason="'p' must be a decimal string, got integer",
                                  field="p", symbol="BTCUSDT"),)


def test_fast_constructors_build_the_same_values_as_attrs() -> None:
    assert messages._TRADE is not None and messages._BOOK is not None  # fields still match
    assert messages._PARSED is not None
    ev = EXPECTED["ws/combined_aggTrade.json"]
    assert messages._parsed_one(ev) == Parsed(events=(ev,))
    assert isinstance(ev, TradeReceived)
    fast = messages._new_trade(ev.symbol, ev.exchange_ts, ev.price, ev.qty, ev.buyer_is_maker,
                               ev.trade_id)
    assert fast == ev and attrs.asdict(fast) == attrs.asdict(ev)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.price = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("name", ["ws/combined_aggTrade.json", "ws/combined_aggTrade_st.json",
                                  "ws/combined_bookTicker.json", "ws/combined_markPrice.json",
                                  "ws/combined_markPrice_3s_ap_st.json", "ws/combined_trade.json",
                                  "ws/combined_depth5.json", "ws/combined_forceOrder_symbol.json"])
def test_typed_fast_path_gives_what_the_dict_path_gives(name: str) -> None:
    text = binance_text(name)
    universe = frozenset({"BTCUSDT", "ETHUSDT", "XRPUSDT"})
    dict_path = FrameParser(universe)._dispatch(orjson.loads(text))
    fast = messages.decode_fast(text, universe)
    if fast is not None:  # None = "take the full path" (depth, forceOrder: not typed)
        assert fast == dict_path
    assert FrameParser(universe).parse(text) == dict_path
    assert messages.decode_fast(text, frozenset({"NOPEUSDT"})) is None


def test_typed_fast_path_keeps_the_json_types_strict() -> None:
    doc = orjson.loads(binance_text("ws/combined_aggTrade.json"))
    for key, bad in (("p", 68005.0), ("a", "3141966230"), ("m", "true"), ("T", True)):
        mutated = {**doc, "data": {**doc["data"], key: bad}}
        assert messages.decode_fast(orjson.dumps(mutated), None) is None, key
    doc["data"]["p"] = "abc"
    assert messages.decode_fast(orjson.dumps(doc), None) is None


# --- every field mutation of every fixture ----------------------------------------------------

#: Keys each kind must have (Binance key names; forceOrder's live inside `o`).
REQUIRED = {
    "aggTrade": {"e", "s", "a", "p", "q", "T", "m"},
    "trade": {"e", "s", "t", "p", "q", "T", "m"},
    "bookTicker": {"e", "s", "u", "b", "B", "a", "A"},  # T falls back to E
    "forceOrder": {"e", "o", "o.s", "o.S", "o.p", "o.z", "o.T"},
    "markPriceUpdate": {"e", "s", "E", "p", "i", "r", "T"},
}
WRONG_TYPES: list[Any] = [None, True, 1.5, 7, "x", [], {}]
VALUE_MUTATIONS: list[Any] = ["NaN", "-1", "inf", "", "1e999", -1, 0]


def _paths(data: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for key, value in data.items():
        out.append((key,))
        if isinstance(value, dict):
            out += [(key, sub) for sub in value]
    return out


def _mutants(doc: Any) -> list[tuple[str, str, Any]]:
    """(dotted key, mutation name, mutated frame) for every key of the payload."""
    wrapped = isinstance(doc, dict) and "data" in doc
    data = doc["data"] if wrapped else doc
    out = []
    for path in _paths(data):
        original = data[path[0]] if len(path) == 1 else data[path[0]][path[1]]
        # A "type" mutation changes the JSON type; same-typed values are "value" mutations.
        muts = [("remove", None)] + [
            (f"{'value' if type(v) is type(original) else 'type'} {v!r}", v)
            for v in WRONG_TYPES + VALUE_MUTATIONS]
        for name, value in muts:
            copy = orjson.loads(orjson.dumps(doc))
            target = copy["data"] if wrapped else copy
            for key in path[:-1]:
                target = target[key]
            if name == "remove":
                del target[path[-1]]
            else:
                target[path[-1]] = value
            out.append((".".join(path), name, copy))
    return out


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if "markPrice_arr" not in n))
def test_every_field_mutation_is_a_reject_or_a_valid_event(name: str) -> None:
    doc = orjson.loads(binance_text(name))
    kind = (doc.get("data") or doc)["e"]
    parser = FrameParser(UNIVERSE)
    for key, mutation, frame in _mutants(doc):
        engine = CanonicalEngine(UNIVERSE)
        got = parser.parse(orjson.dumps(frame))
        assert isinstance(got, Parsed)
        rejections = [r for r in (engine.ingest(e) for e in got.events) if r is not None]
        accepted = len(got.events) - len(rejections)
        where = f"{name} {key} {mutation}"
        for rej in got.rejects:
            assert rej.reason and "internal parser error" not in rej.reason, where
        assert all(isinstance(r, Rejection) and r.reason for r in rejections), where
        assert accepted + len(got.rejects) + len(rejections) + got.ignored + got.unused \
            == 1, where
        if key in REQUIRED[kind] and (mutation == "remove" or mutation.startswith("type")):
            # A required key that is missing or of the wrong JSON type never gets through.
            assert accepted == 0, where
            if mutation == "remove" and key not in ("e", "o"):
                assert got.rejects and got.rejects[0].field == key, where
        if key in REQUIRED[kind] and mutation in ("value 'NaN'", "value 'inf'", "value '1e999'") \
                and key not in ("e", "s", "o.s", "o.S"):
            assert accepted == 0, where


# --- arbitrary input --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)
kinds = st.sampled_from(["aggTrade", "trade", "bookTicker", "forceOrder", "markPriceUpdate",
                         "depthUpdate", "kline"])
keys = st.sampled_from(["s", "p", "q", "a", "t", "T", "E", "m", "u", "b", "B", "A", "i", "r",
                        "o", "S", "z", "ap"])
field_values = st.one_of(json_values, st.sampled_from(
    ["BTCUSDT", "1.5", "NaN", "-1", "inf", "BUY", "SELL", "0"]), st.integers(0, 2**63))


@st.composite
def frames(draw: st.DrawFn) -> Any:
    payload = draw(st.dictionaries(keys, field_values, max_size=10))
    payload["e"] = draw(kinds)
    if draw(st.booleans()):
        payload["o"] = draw(st.dictionaries(keys, field_values, max_size=8))
    shape = draw(st.sampled_from(["raw", "combined", "array"]))
    if shape == "combined":
        return {"stream": draw(st.sampled_from(["btcusdt@aggTrade", "!forceOrder@arr"])),
                "data": payload}
    return [payload] if shape == "array" else payload


def _check_total(parser: FrameParser, frame: str | bytes) -> None:
    got = parser.parse(frame)
    assert isinstance(got, Parsed)
    for rej in got.rejects:
        assert "internal parser error" not in rej.reason, rej
    engine = CanonicalEngine(UNIVERSE)
    for ev in got.events:
        engine.ingest(ev)  # must not raise either
        for name in ("price", "qty", "bid", "ask", "mark_price"):
            v = getattr(ev, name, 1.0)
            assert isinstance(v, float) or math.isnan(v)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_arbitrary_text_and_bytes_never_raise(frame: str | bytes) -> None:
    _check_total(FrameParser(UNIVERSE), frame)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises(doc: Any) -> None:
    _check_total(FrameParser(UNIVERSE), json.dumps(doc))  # json: allows ints beyond 64 bits


@settings(max_examples=400, deadline=None)
@given(frames(), st.booleans())
def test_frame_shaped_garbage_never_raises(doc: Any, universe: bool) -> None:
    _check_total(FrameParser(UNIVERSE if universe else None), json.dumps(doc))
