"""Event builders of the frame parser: the typed fast decoder and the dict builders.

The hot path decodes a combined-stream frame of a known kind straight into a typed msgspec
struct (`decode_fast`: one C pass, with the exact JSON types checked — prices stay strings
and are converted with `float`, as the dict builders do), then builds the engine event
without the frozen-setattr indirection. Anything the typed decoder refuses (an unknown kind,
a missing key, a wrong JSON type, bad JSON) falls back to `orjson` and the dict builders in
`messages.py`, which re-check everything and explain what was wrong. Measured on the same
frames in one run (`benchmarks/bench_parse.py`): the typed path is about 2x the dict path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import msgspec

from engine_adapters.binance.parsed import Parsed
from engine_core.events import (
    BookTickerReceived,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    Side,
    TradeReceived,
)


class _Bad(Exception):
    """Raised inside the builders when they see a value they refuse; caught by the parser."""


_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


# --- fast constructors ----------------------------------------------------------------------
# A frozen attrs __init__ sets each field through object.__setattr__ (attrs' frozen guard),
# which is ~40% of the per-frame cost. For classes without validators or converters, setting
# the slot descriptors directly builds the *same* value ~2x faster. If a class's field list
# changes, `_slot_setters` returns None and the plain constructor is used instead (tested).

_new = object.__new__


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[object, object], None],
                                                                ...] | None:
    fields = attrs.fields(cls)
    if tuple(f.name for f in fields) != names or any(
            f.validator is not None or f.converter is not None for f in fields) \
            or hasattr(cls, "__attrs_post_init__"):
        return None
    return tuple(cls.__dict__[n].__set__ for n in names)


_TRADE = _slot_setters(TradeReceived, ("symbol", "exchange_ts", "price", "qty",
                                       "buyer_is_maker", "trade_id"))
_BOOK = _slot_setters(BookTickerReceived, ("symbol", "exchange_ts", "bid", "bid_qty", "ask",
                                           "ask_qty", "update_id"))
_PARSED = _slot_setters(Parsed, ("events", "rejects", "ignored", "control", "api_error",
                                 "unused"))


def _new_trade(sym: str, ts: int, price: float, qty: float, maker: bool,
               trade_id: int) -> TradeReceived:
    if _TRADE is None:
        return TradeReceived(symbol=sym, exchange_ts=ts, price=price, qty=qty,
                             buyer_is_maker=maker, trade_id=trade_id)
    s0, s1, s2, s3, s4, s5 = _TRADE
    o: TradeReceived = _new(TradeReceived)
    s0(o, sym)
    s1(o, ts)
    s2(o, price)
    s3(o, qty)
    s4(o, maker)
    s5(o, trade_id)
    return o


def _new_book(sym: str, ts: int, bid: float, bid_qty: float, ask: float, ask_qty: float,
              update_id: int) -> BookTickerReceived:
    if _BOOK is None:
        return BookTickerReceived(symbol=sym, exchange_ts=ts, bid=bid, bid_qty=bid_qty,
                                  ask=ask, ask_qty=ask_qty, update_id=update_id)
    s0, s1, s2, s3, s4, s5, s6 = _BOOK
    o: BookTickerReceived = _new(BookTickerReceived)
    s0(o, sym)
    s1(o, ts)
    s2(o, bid)
    s3(o, bid_qty)
    s4(o, ask)
    s5(o, ask_qty)
    s6(o, update_id)
    return o


def _parsed_one(event: MarketEvent) -> Parsed:
    """`Parsed(events=(event,))`, built without the frozen-setattr indirection."""
    if _PARSED is None:
        return Parsed(events=(event,))
    s0, s1, s2, s3, s4, s5 = _PARSED
    o: Parsed = _new(Parsed)
    s0(o, (event,))
    s1(o, ())
    s2(o, 0)
    s3(o, None)
    s4(o, None)
    s5(o, 0)
    return o


# --- fast builders: raise on anything unexpected; `_diagnose` explains afterwards ----------


def _trade_builder(id_key: str) -> Callable[[dict[str, Any], str], MarketEvent]:
    """aggTrade and trade differ only in the id key (`a` aggregate id, `t` trade id)."""

    def build(d: dict[str, Any], sym: str) -> MarketEvent:
        p = d["p"]
        q = d["q"]
        a = d[id_key]
        t = d["T"]
        m = d["m"]
        if type(p) is not str or type(q) is not str or type(a) is not int \
                or type(t) is not int or type(m) is not bool:
            raise _Bad
        return _new_trade(sym, t, float(p), float(q), m, a)

    return build


_agg_trade = _trade_builder("a")
_trade = _trade_builder("t")


def _book_ticker(d: dict[str, Any], sym: str) -> MarketEvent:
    b, bq, a, aq, u = d["b"], d["B"], d["a"], d["A"], d["u"]
    # Transaction time `T` is the matching-engine time; older frames may lack it, so fall back
    # to the event time `E` (both are in the USD-M "Individual Symbol Book Ticker" payload).
    t = d["T"] if "T" in d else d["E"]
    if type(b) is not str or type(bq) is not str or type(a) is not str or type(aq) is not str \
            or type(u) is not int or type(t) is not int:
        raise _Bad
    return _new_book(sym, t, float(b), float(bq), float(a), float(aq), u)


def _force_order(d: dict[str, Any], sym: str) -> MarketEvent:
    o = d["o"]
    side = _SIDES[o["S"]]
    p, z, t = o["p"], o["z"], o["T"]
    if type(p) is not str or type(z) is not str or type(t) is not int:
        raise _Bad
    price = float(p)
    # `o.p` is checked even when `o.ap` wins: a NaN order price means a corrupt payload.
    if not math.isfinite(price):
        raise _Bad
    if "ap" in o:
        ap = o["ap"]
        if type(ap) is not str:
            raise _Bad
        avg = float(ap)
        if not math.isfinite(avg):
            raise _Bad
        # The average fill price is the price actually paid; a "0" means nothing was filled
        # yet at push time, so the order price is the best remaining estimate.
        if avg > 0.0:
            price = avg
    return LiquidationReceived(symbol=sym, exchange_ts=t, side=side, price=price, qty=float(z))


def _mark_price(d: dict[str, Any], sym: str) -> MarketEvent:
    p, i, r, e, t = d["p"], d["i"], d["r"], d["E"], d["T"]
    if type(p) is not str or type(i) is not str or type(r) is not str or type(e) is not int \
            or type(t) is not int:
        raise _Bad
    return MarkPriceReceived(symbol=sym, exchange_ts=e, mark_price=float(p),
                             index_price=float(i), funding_rate=float(r), next_funding_ts=t)


def _symbol_of(d: dict[str, Any], kind: str) -> object:
    if kind == "forceOrder":
        o = d.get("o")
        return o.get("s") if type(o) is dict else None
    return d.get("s")


_Builder = Callable[[dict[str, Any], str], MarketEvent]
_BUILDERS: dict[str, _Builder] = {
    "aggTrade": _agg_trade,
    "trade": _trade,
    "bookTicker": _book_ticker,
    "forceOrder": _force_order,
    "markPriceUpdate": _mark_price,
}
#: Kinds whose symbol is the top-level `s` (forceOrder keeps it in `o.s`): the hot path's set.
_FAST_BUILDERS = {k: v for k, v in _BUILDERS.items() if k != "forceOrder"}


# --- the typed fast path: combined frames of the kinds the engine uses ----------------------


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    s: str
    a: int
    p: str
    q: str
    T: int
    m: bool


class _Trade(msgspec.Struct, tag_field="e", tag="trade"):
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class _BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    s: str
    u: int
    b: str
    B: str
    a: str
    A: str
    T: int | None = None
    E: int | None = None


class _MarkPrice(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    s: str
    p: str
    i: str
    r: str
    E: int
    T: int


class _Combined(msgspec.Struct):
    stream: str
    data: _AggTrade | _Trade | _BookTicker | _MarkPrice


_decode_combined = msgspec.json.Decoder(_Combined).decode
DecodeError = msgspec.DecodeError


def decode_fast(text: str | bytes | bytearray | memoryview,
                universe: frozenset[str] | None) -> Parsed | None:
    """`decode_event` as a `Parsed` (what `FrameParser.parse` returns), or None."""
    ev = decode_event(text, universe)
    return None if ev is None else _parsed_one(ev)


def decode_event(text: str | bytes | bytearray | memoryview,
                 universe: frozenset[str] | None) -> MarketEvent | None:
    """One event from a combined frame of a used kind for a universe symbol, or None.

    None means "take the full path" (never "refused"): the typed decoder did not accept the
    frame, its symbol is outside the universe, or a value did not convert.
    """
    try:
        d = _decode_combined(text).data
    except (DecodeError, ValueError):  # ValueError: a str with lone surrogates
        return None
    sym = d.s
    if universe is not None and sym not in universe:
        return None
    try:
        match d:
            case _AggTrade():
                ev: MarketEvent = _new_trade(sym, d.T, float(d.p), float(d.q), d.m, d.a)
            case _BookTicker():
                t = d.T if d.T is not None else d.E
                if t is None:
                    return None
                ev = _new_book(sym, t, float(d.b), float(d.B), float(d.a), float(d.A), d.u)
            case _MarkPrice():
                ev = MarkPriceReceived(symbol=sym, exchange_ts=d.E, mark_price=float(d.p),
                                       index_price=float(d.i), funding_rate=float(d.r),
                                       next_funding_ts=d.T)
            case _Trade():
                ev = _new_trade(sym, d.T, float(d.p), float(d.q), d.m, d.t)
    except (ValueError, TypeError):
        return None
    return ev
