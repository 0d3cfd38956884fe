"""Render engine_core events as Binance USD-M JSON text, byte-shaped like the real exchange.

The fake exchange and the tests use these to produce frames and REST bodies that a real
parser must accept. Key order and field sets follow the fixtures in
`/work/shared/fixtures/binance/` (live frames carry `nq`/`st` on aggTrade, `ps`/`st` on
bookTicker, `o.ps`/`o.st` on forceOrder and `ap`/`st` on markPrice: fixtures README fact 11).
Numbers that Binance sends as decimal strings are rendered as decimal strings without
exponent notation; ids and times are JSON integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import orjson

from engine_core.events import (
    BookTickerReceived,
    FundingReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

#: Binance's `st` (symbol type) value seen in every live frame of the fixtures.
SYMBOL_TYPE = 1

#: REST error bodies, verbatim from fixtures/binance/rest/error_429.json and error_418.json
#: (IP replaced by TEST-NET there; the 418 ban end is filled in).
ERROR_429_BODY = (
    '{"code":-1003,"msg":"Too many requests; current limit of IP(203.0.113.7) is 2400 requests'
    ' per minute. Please use the websocket for live updates to avoid polling the API."}'
)
_ERROR_418_TEMPLATE = (
    '{{"code":-1003,"msg":"Way too many requests; IP(203.0.113.7) banned until {until}. '
    'Please use the websocket for live updates to avoid bans."}}'
)
ERROR_MISSING_SYMBOL_BODY = (
    '{"code":-1102,"msg":"Mandatory parameter \'symbol\' was not sent, was empty/null, '
    'or malformed."}'
)
ERROR_INVALID_SYMBOL_BODY = '{"code":-1121,"msg":"Invalid symbol."}'
ERROR_INTERNAL_BODY = (
    '{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}'
)
#: WS request errors, verbatim from fixtures/binance/ws/error_response*.json.
WS_ERROR_INVALID_STREAM = "Invalid request: invalid stream"
WS_ERROR_MISSING_METHOD = "Invalid request: missing field `method`"


def error_418_body(banned_until_ms: int) -> str:
    """The 418 body naming the epoch ms at which the ban ends (fixtures README fact 14)."""
    return _ERROR_418_TEMPLATE.format(until=banned_until_ms)


def fmt_decimal(value: float, places: int | None = None) -> str:
    """A Binance-style decimal string: fixed `places` if given, else the shortest exact form.

    Never uses exponent notation (`1e-05` becomes `0.00001`). NaN and infinities render as
    `NaN` / `Infinity` / `-Infinity`, which is what a hostile or broken feed would send.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if places is not None:
        return f"{value:.{places}f}"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    if text.endswith(".0"):
        text = text[:-2]
    return text


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def combined(stream: str, payload_text: str) -> str:
    """Wrap a payload as a combined-stream frame `{"stream":...,"data":...}` (fact 4)."""
    return '{"stream":"' + stream + '","data":' + payload_text + "}"


def agg_trade_payload(
    ev: TradeReceived,
    *,
    event_time_ms: int | None = None,
    first_trade_id: int | None = None,
    last_trade_id: int | None = None,
    price_places: int | None = None,
    qty_places: int | None = None,
) -> dict[str, Any]:
    """The aggTrade payload dict, key order as in combined_aggTrade_st.json."""
    qty = fmt_decimal(ev.qty, qty_places)
    return {
        "e": "aggTrade",
        "E": ev.exchange_ts if event_time_ms is None else event_time_ms,
        "a": ev.trade_id,
        "s": ev.symbol,
        "p": fmt_decimal(ev.price, price_places),
        "q": qty,
        "nq": qty,
        "f": ev.trade_id if first_trade_id is None else first_trade_id,
        "l": ev.trade_id if last_trade_id is None else last_trade_id,
        "T": ev.exchange_ts,
        "m": ev.buyer_is_maker,
        "st": SYMBOL_TYPE,
    }


def book_ticker_payload(
    ev: BookTickerReceived, *, price_places: int | None = None, qty_places: int | None = None
) -> dict[str, Any]:
    """The bookTicker payload dict, key order as in raw_bookTicker_ps_st.json."""
    return {
        "e": "bookTicker",
        "u": ev.update_id,
        "s": ev.symbol,
        "ps": ev.symbol,
        "b": fmt_decimal(ev.bid, price_places),
        "B": fmt_decimal(ev.bid_qty, qty_places),
        "a": fmt_decimal(ev.ask, price_places),
        "A": fmt_decimal(ev.ask_qty, qty_places),
        "T": ev.exchange_ts,
        "E": ev.exchange_ts,
        "st": SYMBOL_TYPE,
    }


def force_order_payload(
    ev: LiquidationReceived, *, event_time_ms: int | None = None
) -> dict[str, Any]:
    """The forceOrder payload dict, key order as in raw_forceOrder.json.

    The event holds the filled quantity and average price, so `q`, `l`, `z` all carry the
    quantity and `p`, `ap` the price (a live frame's `l` is the last fill only: fact 9).
    """
    qty = fmt_decimal(ev.qty)
    price = fmt_decimal(ev.price)
    return {
        "e": "forceOrder",
        "E": ev.exchange_ts if event_time_ms is None else event_time_ms,
        "o": {
            "s": ev.symbol,
            "S": "SELL" if ev.side is Side.SELL else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": qty,
            "p": price,
            "ap": price,
            "X": "FILLED",
            "l": qty,
            "z": qty,
            "T": ev.exchange_ts,
            "ps": ev.symbol,
            "st": SYMBOL_TYPE,
        },
    }


def mark_price_payload(ev: MarkPriceReceived) -> dict[str, Any]:
    """The markPriceUpdate payload dict, key order as in combined_markPrice_3s_ap_st.json."""
    mark = fmt_decimal(ev.mark_price, 8)
    return {
        "e": "markPriceUpdate",
        "E": ev.exchange_ts,
        "s": ev.symbol,
        "p": mark,
        "ap": mark,
        "P": fmt_decimal(ev.index_price, 8),
        "i": fmt_decimal(ev.index_price, 8),
        "r": fmt_decimal(ev.funding_rate, 8),
        "T": ev.next_funding_ts,
        "st": SYMBOL_TYPE,
    }


def render_payload(ev: object) -> str | None:
    """Payload text of a streamed event, or None for events that have no stream (OI, ...)."""
    if isinstance(ev, TradeReceived):
        return dumps(agg_trade_payload(ev))
    if isinstance(ev, BookTickerReceived):
        return dumps(book_ticker_payload(ev))
    if isinstance(ev, LiquidationReceived):
        return dumps(force_order_payload(ev))
    if isinstance(ev, MarkPriceReceived):
        return dumps(mark_price_payload(ev))
    return None


def funding_info_body(entries: list[tuple[str, tuple[int, float, float]]]) -> str:
    """`GET /fapi/v1/fundingInfo` body: (symbol, (interval hours, cap, floor)) entries."""
    return dumps([{"symbol": sym, "adjustedFundingRateCap": f"{cap:.8f}",
                   "adjustedFundingRateFloor": f"{floor:.8f}", "fundingIntervalHours": hours,
                   "disclaimer": False} for sym, (hours, cap, floor) in entries])


def oi_history_body(symbol: str, points: list[tuple[int, float]]) -> str:
    """`GET /futures/data/openInterestHist` body (the value column times a nominal price)."""
    return dumps([{"symbol": symbol, "sumOpenInterest": fmt_decimal(oi, 8),
                   "sumOpenInterestValue": fmt_decimal(oi * 100.0, 8), "timestamp": ts}
                  for ts, oi in points])


def depth20_payload(ev: BookTickerReceived, *, levels: int = 20, step_bps: float = 2.0,
                    price_places: int | None = None) -> dict[str, Any]:
    """A partial-book depthUpdate (as `combined_depth5.json`) grown from a top of book:
    `levels` per side, `step_bps` apart, each level 25 % larger than the one inside it."""
    step = ev.bid * step_bps / 10_000
    bids = [[fmt_decimal(ev.bid - k * step, price_places),
             fmt_decimal(ev.bid_qty * (1 + 0.25 * k), 3)] for k in range(levels)]
    asks = [[fmt_decimal(ev.ask + k * step, price_places),
             fmt_decimal(ev.ask_qty * (1 + 0.25 * k), 3)] for k in range(levels)]
    return {"e": "depthUpdate", "E": ev.exchange_ts, "T": ev.exchange_ts, "s": ev.symbol,
            "U": ev.update_id, "u": ev.update_id, "pu": max(ev.update_id - 1, 0),
            "b": bids, "a": asks}


def open_interest_body(ev: OpenInterestReceived, *, qty_places: int | None = None) -> str:
    """`GET /fapi/v1/openInterest` body, key order as in rest/openInterest.json."""
    return dumps(
        {
            "symbol": ev.symbol,
            "openInterest": fmt_decimal(ev.open_interest, qty_places),
            "time": ev.exchange_ts,
        }
    )


def premium_index_obj(ev: FundingReceived, *, interest_rate: float = 0.0001) -> dict[str, Any]:
    """One `GET /fapi/v1/premiumIndex` object, key order as in rest/premiumIndex_one.json."""
    return {
        "symbol": ev.symbol,
        "markPrice": fmt_decimal(ev.mark_price, 8),
        "indexPrice": fmt_decimal(ev.index_price, 8),
        "estimatedSettlePrice": fmt_decimal(ev.index_price, 8),
        "lastFundingRate": fmt_decimal(ev.funding_rate, 8),
        "interestRate": fmt_decimal(interest_rate, 8),
        "nextFundingTime": ev.next_funding_ts,
        "time": ev.exchange_ts,
    }


def premium_index_body(events: FundingReceived | Sequence[FundingReceived]) -> str:
    """The body for one symbol (an object) or for all symbols (an array: fixture docs example)."""
    if isinstance(events, FundingReceived):
        return dumps(premium_index_obj(events))
    return dumps([premium_index_obj(ev) for ev in events])


def rest_agg_trade_obj(ev: TradeReceived) -> dict[str, Any]:
    """One element of `GET /fapi/v1/aggTrades` (fields a, p, q, f, l, T, m)."""
    return {
        "a": ev.trade_id,
        "p": fmt_decimal(ev.price),
        "q": fmt_decimal(ev.qty),
        "f": ev.trade_id,
        "l": ev.trade_id,
        "T": ev.exchange_ts,
        "m": ev.buyer_is_maker,
    }


def agg_trades_body(trades: Iterable[TradeReceived]) -> str:
    """`GET /fapi/v1/aggTrades` body: a JSON array, oldest first."""
    return dumps([rest_agg_trade_obj(t) for t in trades])


def ticker_24hr_obj(
    symbol: str, trades: Sequence[TradeReceived], *, open_ms: int, close_ms: int
) -> dict[str, Any]:
    """One `GET /fapi/v1/ticker/24hr` object (keys as ticker24hr_one_docs_example.json)."""
    if trades:
        prices = [t.price for t in trades]
        volume = sum(t.qty for t in trades)
        quote = sum(t.qty * t.price for t in trades)
        first, last = trades[0], trades[-1]
        open_p, last_p, last_q = first.price, last.price, last.qty
        first_id, last_id = first.trade_id, last.trade_id
        high, low = max(prices), min(prices)
    else:
        volume = quote = open_p = last_p = last_q = high = low = 0.0
        first_id = last_id = -1
    change = last_p - open_p
    return {
        "symbol": symbol,
        "priceChange": fmt_decimal(change, 8),
        "priceChangePercent": fmt_decimal(100 * change / open_p if open_p else 0.0, 3),
        "weightedAvgPrice": fmt_decimal(quote / volume if volume else 0.0, 8),
        "lastPrice": fmt_decimal(last_p, 8),
        "lastQty": fmt_decimal(last_q, 8),
        "openPrice": fmt_decimal(open_p, 8),
        "highPrice": fmt_decimal(high, 8),
        "lowPrice": fmt_decimal(low, 8),
        "volume": fmt_decimal(volume, 8),
        "quoteVolume": fmt_decimal(quote, 8),
        "openTime": open_ms,
        "closeTime": close_ms,
        "firstId": first_id,
        "lastId": last_id,
        "count": len(trades),
    }


def exchange_info_body(symbols: Sequence[str], *, server_time_ms: int) -> str:
    """`GET /fapi/v1/exchangeInfo` with the real rateLimits (fact 12) and minimal symbols."""
    rate_limits = [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
        {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
    ]
    syms = []
    for sym in symbols:
        base = sym[:-4] if sym.endswith("USDT") else sym
        syms.append(
            {
                "symbol": sym,
                "pair": sym,
                "contractType": "PERPETUAL",
                "deliveryDate": 4133404800000,
                "onboardDate": 1569398400000,
                "status": "TRADING",
                "baseAsset": base,
                "quoteAsset": "USDT",
                "marginAsset": "USDT",
                "pricePrecision": 2,
                "quantityPrecision": 3,
                "underlyingType": "COIN",
                "underlyingSubType": [],
                "filters": [],
                "orderTypes": ["LIMIT", "MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            }
        )
    return dumps(
        {
            "timezone": "UTC",
            "serverTime": server_time_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "assets": [],
            "symbols": syms,
        }
    )


def ws_ack(request_id: int | None, result: Any = None) -> str:
    """A request ack `{"result":null,"id":N}` (fixtures ws/subscribe_response.json)."""
    return dumps({"result": result, "id": request_id})


def ws_error(request_id: int | None, msg: str, code: int = 2) -> str:
    """A request error frame (fixtures ws/error_response.json, error_response_null_id.json)."""
    return dumps({"error": {"code": code, "msg": msg}, "id": request_id})
