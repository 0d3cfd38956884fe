"""Binance REST bodies read at live start: funding intervals and caps, 30 days of OI history.

- `GET /fapi/v1/fundingInfo` (no parameters): only the symbols whose funding settings were
  adjusted appear, each `{symbol, adjustedFundingRateCap, adjustedFundingRateFloor,
  fundingIntervalHours, disclaimer}`; a symbol that is absent has the default 8 h interval
  and no adjusted cap (`DEFAULT_INTERVAL_HOURS`). Read at live start and hourly.
- `GET /futures/data/openInterestHist?symbol=S&period=5m&limit=500&startTime=..&endTime=..`:
  `[{symbol, sumOpenInterest, sumOpenInterestValue, timestamp}]`, the 5-minute open interest
  of the last 30 days at most (older points are not served). 500 points are 41 h 40 min, so
  30 days are `oi_history_windows` = 18 requests per symbol. These endpoints have a rate limit
  of their own per IP (1000 requests / 5 min for the `/futures/data` family in Binance's
  docs), separate from the request weight: `OI_HISTORY_BUDGET` paces them.

Both parsers are total: a body of the wrong shape raises `HistoryError` naming the field.
Decimal strings are parsed with `float`; values are validated where events are.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

PATH_FUNDING_INFO = "/fapi/v1/fundingInfo"
PATH_OI_HISTORY = "/futures/data/openInterestHist"
#: A symbol fundingInfo does not list settles every 8 hours.
DEFAULT_INTERVAL_HOURS = 8
PERIOD_MS = 5 * 60_000
LIMIT = 500
HISTORY_DAYS = 30
#: Requests of the /futures/data family allowed per 5 minutes and IP (Binance docs).
OI_HISTORY_BUDGET = 1000


class HistoryError(ValueError):
    """A REST body did not have the expected shape; the message names the field."""


@attrs.frozen(kw_only=True, slots=True)
class FundingInfo:
    """One symbol's funding settings: interval and the adjusted rate cap and floor."""

    symbol: str
    interval_hours: int
    cap: float
    floor: float


def _load(body: str | bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HistoryError(f"{what}: body is not JSON: {exc}") from None


def _dec(d: dict[str, Any], key: str, where: str) -> float:
    v = d.get(key)
    if type(v) is not str:
        raise HistoryError(f"{where}.{key} must be a decimal string, got {v!r:.40}")
    try:
        return float(v)
    except ValueError:
        raise HistoryError(f"{where}.{key} is not a decimal: {v!r:.40}") from None


def parse_funding_info(body: str | bytes) -> tuple[FundingInfo, ...]:
    """Every entry of a fundingInfo body, in body order."""
    doc = _load(body, PATH_FUNDING_INFO)
    if type(doc) is not list:
        raise HistoryError(f"{PATH_FUNDING_INFO}: expected an array, got "
                           f"{type(doc).__name__}")
    out = []
    for i, d in enumerate(doc):
        where = f"{PATH_FUNDING_INFO}[{i}]"
        if type(d) is not dict:
            raise HistoryError(f"{where} must be an object")
        sym, hours = d.get("symbol"), d.get("fundingIntervalHours")
        if type(sym) is not str or not sym:
            raise HistoryError(f"{where}.symbol must be a string, got {sym!r:.40}")
        if type(hours) is not int or hours <= 0:
            raise HistoryError(f"{where}.fundingIntervalHours must be a positive integer, "
                               f"got {hours!r:.40}")
        out.append(FundingInfo(symbol=sym, interval_hours=hours,
                               cap=_dec(d, "adjustedFundingRateCap", where),
                               floor=_dec(d, "adjustedFundingRateFloor", where)))
    return tuple(out)


def parse_oi_history(body: str | bytes, symbol: str) -> tuple[tuple[int, float], ...]:
    """(timestamp ms, open interest in contracts) of an openInterestHist body, time-sorted.

    The timestamp is an integer in current answers; older ones sent a decimal string, both
    are read. A point of another symbol is an error (the request named one).
    """
    doc = _load(body, PATH_OI_HISTORY)
    if type(doc) is not list:
        raise HistoryError(f"{PATH_OI_HISTORY}: expected an array, got {type(doc).__name__}")
    out = []
    for i, d in enumerate(doc):
        where = f"{PATH_OI_HISTORY}[{i}]"
        if type(d) is not dict:
            raise HistoryError(f"{where} must be an object")
        if d.get("symbol") != symbol:
            raise HistoryError(f"{where}.symbol is {d.get('symbol')!r:.40}, asked for {symbol}")
        ts = d.get("timestamp")
        if type(ts) is str and ts.isdigit():
            ts = int(ts)
        if type(ts) is not int:
            raise HistoryError(f"{where}.timestamp must be integer ms, got {ts!r:.40}")
        out.append((ts, _dec(d, "sumOpenInterest", where)))
    out.sort()
    return tuple(out)


def oi_history_windows(now_ms: int, days: int = HISTORY_DAYS) -> tuple[tuple[int, int], ...]:
    """(startTime, endTime) of the requests covering the last `days` days, oldest first.

    Each window spans `LIMIT` periods, so it holds at most `LIMIT` points; the first starts
    on a period boundary no earlier than `now_ms - days` (Binance serves nothing older), the
    last ends at `now_ms`.
    """
    if days <= 0:
        raise ValueError(f"days must be > 0, got {days}")
    first = now_ms - days * 86_400_000
    first += -first % PERIOD_MS
    span = LIMIT * PERIOD_MS
    out = []
    start = first
    while start <= now_ms:
        end = min(start + span - 1, now_ms)  # contiguous: no instant between two windows
        out.append((start, end))
        start += span
    return tuple(out)


def oi_history_query(symbol: str, window: tuple[int, int]) -> str:
    """The query string of one openInterestHist request."""
    return (f"symbol={symbol}&period=5m&limit={LIMIT}&startTime={window[0]}"
            f"&endTime={window[1]}")
