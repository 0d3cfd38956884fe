"""Binance USD-M REST response bodies -> engine_core events and plain values. Pure, total.

`parse_rest(path, query, status, body)` is the one dispatcher, keyed by request path, so that
live polling and the replay of capture lines of channel "rest" share one code path. Bodies that
feed the core (openInterest, premiumIndex, aggTrades) become events; the others (exchangeInfo,
ticker/24hr, time) have typed parsers used when choosing the universe and checking the clock.

Field sources: Binance USD-M REST "Market Data" pages and the fixtures in
`fixtures/binance/rest` (README there):
- openInterest: `symbol`, `openInterest` (contracts), `time` -> exchange_ts.
- premiumIndex (object with `symbol`, array without): `lastFundingRate`, `markPrice`,
  `indexPrice`, `nextFundingTime`, `time`.
- aggTrades: array of `{a, p, q, f, l, T, m}`; the symbol is only in the request query.
- fundingInfo: array of `{symbol, fundingIntervalHours, adjustedFundingRateCap, ...Floor}`,
  one `FundingInfoReceived` each, timed at the answer's receive time (the body has none).
- openInterestHist: array of 5-minute points of the query's symbol, one
  `OpenInterestHistoryReceived` timed at its newest point (`rest_history.py`).
- errors: `{"code": -1003, "msg": ...}` with status 429 (rate limit) or 418 (IP banned).
As for frames, structure is checked here and values (NaN, <= 0) in `engine_core.normalize`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson

from engine_adapters.binance.messages import ApiError, Parsed, Reject
from engine_adapters.binance.rest_history import (
    PATH_FUNDING_INFO,
    PATH_OI_HISTORY,
    HistoryError,
    parse_funding_info,
    parse_oi_history,
)
from engine_core.events import (
    FundingInfoReceived,
    FundingReceived,
    MarketEvent,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    TradeReceived,
)

PATH_OPEN_INTEREST = "/fapi/v1/openInterest"
PATH_PREMIUM_INDEX = "/fapi/v1/premiumIndex"
PATH_AGG_TRADES = "/fapi/v1/aggTrades"
PATH_EXCHANGE_INFO = "/fapi/v1/exchangeInfo"
PATH_TICKER_24HR = "/fapi/v1/ticker/24hr"
PATH_TIME = "/fapi/v1/time"


@attrs.frozen(kw_only=True, slots=True)
class SymbolInfo:
    """One `exchangeInfo.symbols` entry, reduced to what universe selection needs."""

    symbol: str
    #: TRADING, PENDING_TRADING, SETTLING, CLOSE, ...
    status: str
    #: PERPETUAL, CURRENT_QUARTER, NEXT_QUARTER, TRADIFI_PERPETUAL (2026), or "" (pending).
    contract_type: str
    quote_asset: str


class _BadBody(Exception):
    """A body did not have the expected structure; `args` = (field, reason)."""


def _load(body: str | bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _BadBody("", f"body is not JSON: {exc}") from None


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def _get(d: object, key: str, typ: type, where: str = "") -> Any:
    if type(d) is not dict:
        raise _BadBody(where, f"{where or 'body'} must be an object, got {_json_type(d)}")
    name = f"{where}.{key}" if where else key
    if key not in d:
        raise _BadBody(name, f"missing key {name!r}")
    v = d[key]
    if type(v) is not typ:
        raise _BadBody(name, f"{name!r} must be a {_json_type(typ())}, got {_json_type(v)}")
    return v


def _dec(d: object, key: str, where: str = "") -> float:
    s = _get(d, key, str, where)
    try:
        return float(s)
    except ValueError:
        name = f"{where}.{key}" if where else key
        raise _BadBody(name, f"{name!r} is not a decimal number: {s[:40]!r}") from None


def api_error(status: int, body: str | bytes, path: str = "") -> ApiError | None:
    """The error carried by a response, or None for a 2xx body without an error code.

    Binance answers errors with `{"code": <negative>, "msg": ...}`; a WAF 403 or a proxy 5xx
    may send HTML or nothing, so any non-2xx status is an error even without a JSON body.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        doc = None
    if type(doc) is dict and type(doc.get("code")) is int and type(doc.get("msg")) is str \
            and (doc["code"] < 0 or not 200 <= status < 300):
        return ApiError(status=status, code=doc["code"], message=doc["msg"], path=path)
    if not 200 <= status < 300:
        text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
        return ApiError(status=status, code=None, message=text[:200], path=path)
    return None


# --- event bodies -------------------------------------------------------------------------


def _open_interest(doc: Any, _q: dict[str, str]) -> list[MarketEvent]:
    return [OpenInterestReceived(symbol=_get(doc, "symbol", str),
                                 exchange_ts=_get(doc, "time", int),
                                 open_interest=_dec(doc, "openInterest"))]


def _funding_one(d: Any, where: str) -> FundingReceived:
    return FundingReceived(
        symbol=_get(d, "symbol", str, where), exchange_ts=_get(d, "time", int, where),
        funding_rate=_dec(d, "lastFundingRate", where), mark_price=_dec(d, "markPrice", where),
        index_price=_dec(d, "indexPrice", where),
        next_funding_ts=_get(d, "nextFundingTime", int, where))


def _agg_trade_one(d: Any, where: str, symbol: str) -> TradeReceived:
    return TradeReceived(symbol=symbol, exchange_ts=_get(d, "T", int, where),
                         price=_dec(d, "p", where), qty=_dec(d, "q", where),
                         buyer_is_maker=_get(d, "m", bool, where),
                         trade_id=_get(d, "a", int, where))


def _query(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


class RestParser:
    """Parses REST bodies for a fixed universe (None = any symbol)."""

    __slots__ = ("_symbols",)

    def __init__(self, symbols: Collection[str] | None = None) -> None:
        self._symbols = None if symbols is None else frozenset(symbols)

    def parse(self, path: str, query: str, status: int, body: str | bytes,
              recv_ms: int = 0) -> Parsed:
        """One response -> events, rejects, ignored count, or an `ApiError`. Never raises.

        `recv_ms` times the events of a body that carries no time (fundingInfo)."""
        try:
            if path in _HISTORY_PATHS and api_error(status, body, path) is None:
                return self._history(path, query, body, recv_ms)
            return self._parse(path, query, status, body)
        except Exception as exc:  # safety net: a parser bug must not stop polling
            return Parsed(rejects=(Reject(
                reason=f"internal parser error {type(exc).__name__}: {exc}", stream=path),))

    def _parse(self, path: str, query: str, status: int, body: str | bytes) -> Parsed:
        err = api_error(status, body, path)
        if err is not None:
            return Parsed(api_error=err)
        if path not in _KNOWN_PATHS:
            return Parsed(rejects=(Reject(reason=f"unknown REST path {path[:80]!r}",
                                          stream=path),))
        if path not in _EVENT_PATHS:
            return Parsed()  # universe/clock data: see the typed parsers below
        try:
            doc = _load(body)
            q = _query(query)
            if path == PATH_OPEN_INTEREST:
                return self._keep(_open_interest(doc, q), path, single=True)
            if path == PATH_PREMIUM_INDEX:
                if type(doc) is list:
                    return self._items(doc, path, lambda d, w: _funding_one(d, w))
                return self._keep([_funding_one(doc, "")], path, single=True)
            # aggTrades: the body never names the symbol, the request did.
            symbol = q.get("symbol", "")
            if not symbol:
                return Parsed(rejects=(Reject(reason="aggTrades query has no symbol",
                                              field="symbol", stream=path),))
            if type(doc) is not list:
                raise _BadBody("", f"aggTrades body must be an array, got {_json_type(doc)}")
            return self._items(doc, path, lambda d, w: _agg_trade_one(d, w, symbol))
        except _BadBody as bad:
            return Parsed(rejects=(Reject(reason=bad.args[1], field=bad.args[0], stream=path),))

    def _history(self, path: str, query: str, body: str | bytes, recv_ms: int) -> Parsed:
        try:
            if path == PATH_FUNDING_INFO:
                events: list[MarketEvent] = [
                    FundingInfoReceived(symbol=f.symbol, exchange_ts=recv_ms,
                                        interval_hours=f.interval_hours, cap=f.cap,
                                        floor=f.floor) for f in parse_funding_info(body)]
                keep = [e for e in events if self._symbols is None or e.symbol in self._symbols]
                return Parsed(events=tuple(keep), ignored=len(events) - len(keep))
            symbol = _query(query).get("symbol", "")
            if not symbol:
                return Parsed(rejects=(Reject(reason="openInterestHist query has no symbol",
                                              field="symbol", stream=path),))
            points = parse_oi_history(body, symbol)
        except HistoryError as exc:
            return Parsed(rejects=(Reject(reason=str(exc), stream=path),))
        if not points:
            return Parsed()
        return self._keep([OpenInterestHistoryReceived(
            symbol=symbol, exchange_ts=points[-1][0], points=points)], path, single=True)

    def _keep(self, events: list[MarketEvent], path: str, single: bool) -> Parsed:
        sym = events[0].symbol
        if self._symbols is not None and sym not in self._symbols:
            # We asked for this symbol, so an outside symbol is an anomaly, not noise.
            return Parsed(rejects=(Reject(reason=f"unknown symbol {sym[:40]!r}", field="symbol",
                                          stream=path, symbol=sym[:40]),))
        return Parsed(events=tuple(events))

    def _items(self, doc: list[Any], path: str,
               one: Callable[[Any, str], MarketEvent]) -> Parsed:
        events: list[MarketEvent] = []
        rejects: list[Reject] = []
        ignored = 0
        for i, d in enumerate(doc):
            try:
                ev = one(d, f"[{i}]")
            except _BadBody as bad:
                rejects.append(Reject(reason=bad.args[1], field=bad.args[0], stream=path))
                continue
            if self._symbols is not None and ev.symbol not in self._symbols:
                ignored += 1
            else:
                events.append(ev)
        return Parsed(events=tuple(events), rejects=tuple(rejects), ignored=ignored)


_EVENT_PATHS = frozenset({PATH_OPEN_INTEREST, PATH_PREMIUM_INDEX, PATH_AGG_TRADES})
_HISTORY_PATHS = frozenset({PATH_FUNDING_INFO, PATH_OI_HISTORY})
_KNOWN_PATHS = _EVENT_PATHS | _HISTORY_PATHS | {PATH_EXCHANGE_INFO, PATH_TICKER_24HR, PATH_TIME}


def parse_rest(path: str, query: str, status: int, body: str | bytes,
               symbols: Collection[str] | None = None, recv_ms: int = 0) -> Parsed:
    """Dispatch one REST response by path (convenience over `RestParser(symbols).parse`)."""
    return RestParser(symbols).parse(path, query, status, body, recv_ms)


# --- universe and clock bodies --------------------------------------------------------------

Failure = ApiError | Reject


def _typed(path: str, status: int, body: str | bytes,
           read: Callable[[Any], Any]) -> Any:
    err = api_error(status, body, path)
    if err is not None:
        return err
    try:
        return read(_load(body))
    except _BadBody as bad:
        return Reject(reason=bad.args[1], field=bad.args[0], stream=path)


def parse_exchange_info(body: str | bytes, status: int = 200) -> tuple[SymbolInfo, ...] | Failure:
    """`GET /fapi/v1/exchangeInfo` -> every symbol's status, contract type and quote asset."""
    def read(doc: Any) -> tuple[SymbolInfo, ...]:
        items = _get(doc, "symbols", list)
        return tuple(SymbolInfo(
            symbol=_get(d, "symbol", str, f"symbols[{i}]"),
            status=_get(d, "status", str, f"symbols[{i}]"),
            contract_type=_get(d, "contractType", str, f"symbols[{i}]"),
            quote_asset=_get(d, "quoteAsset", str, f"symbols[{i}]")) for i, d in enumerate(items))
    out: tuple[SymbolInfo, ...] | Failure = _typed(PATH_EXCHANGE_INFO, status, body, read)
    return out


def usdt_perpetuals(infos: Iterable[SymbolInfo]) -> tuple[str, ...]:
    """Symbols that are TRADING, `PERPETUAL` and quoted in USDT, sorted by name.

    `TRADIFI_PERPETUAL` (gold, indices: exchangeInfo 2026) and dated contracts are excluded:
    they follow other hours and funding rules than crypto perpetuals.
    """
    return tuple(sorted(i.symbol for i in infos if i.status == "TRADING"
                        and i.contract_type == "PERPETUAL" and i.quote_asset == "USDT"))


def parse_ticker_24hr(body: str | bytes,
                      status: int = 200) -> tuple[tuple[str, float], ...] | Failure:
    """`GET /fapi/v1/ticker/24hr` (array, or one object with `?symbol=`) -> (symbol, volume).

    The volume is `quoteVolume`: 24 h traded notional in the quote asset (USDT).
    """
    def read(doc: Any) -> tuple[tuple[str, float], ...]:
        items = doc if type(doc) is list else [doc]
        return tuple((_get(d, "symbol", str, f"[{i}]"), _dec(d, "quoteVolume", f"[{i}]"))
                     for i, d in enumerate(items))
    out: tuple[tuple[str, float], ...] | Failure = _typed(PATH_TICKER_24HR, status, body, read)
    return out


def top_by_quote_volume(pairs: Iterable[tuple[str, float]], n: int,
                        allowed: Collection[str] | None = None) -> tuple[str, ...]:
    """The `n` symbols with the largest 24 h quote volume, sorted by name (the token order).

    Ties are broken by name so the choice is the same on every run; NaN volumes never win.
    """
    ok = [(v, s) for s, v in pairs if (allowed is None or s in allowed) and v == v]
    ok.sort(key=lambda vs: (-vs[0], vs[1]))
    return tuple(sorted(s for _, s in ok[:max(n, 0)]))


def parse_server_time(body: str | bytes, status: int = 200) -> int | Failure:
    """`GET /fapi/v1/time` -> `serverTime` in epoch ms."""
    out: int | Failure = _typed(PATH_TIME, status, body, lambda d: _get(d, "serverTime", int))
    return out


__all__ = [
    "PATH_AGG_TRADES",
    "PATH_EXCHANGE_INFO",
    "PATH_OPEN_INTEREST",
    "PATH_PREMIUM_INDEX",
    "PATH_TICKER_24HR",
    "PATH_TIME",
    "Failure",
    "RestParser",
    "SymbolInfo",
    "api_error",
    "parse_exchange_info",
    "parse_rest",
    "parse_server_time",
    "parse_ticker_24hr",
    "top_by_quote_volume",
    "usdt_perpetuals",
]
