"""The whole USD-M market: choosing its symbols, checking exchange answers, watching status.

`--top all` follows every symbol that `GET /fapi/v1/exchangeInfo` lists as `status`
TRADING, `contractType` PERPETUAL and `quoteAsset` USDT (rest_payloads.usdt_perpetuals;
TRADIFI_PERPETUAL and dated contracts are other products). Exchange answers are checked
here once, at the boundary, and every way they can be unusable becomes one
`ExchangeAnswerError` naming the endpoint and what was wrong: an HTTP/API error, a body of
the wrong shape, a symbol listed twice (before, a `ValueError` traceback from
`initial_state`), or an empty universe. The CLI prints `str(exc)` and exits 2.
`resolve_universe` does the start-up requests and the choice (`--top all`, `--top N`,
`--symbols`) with those checks, for `live` and `capture`.

`UniverseWatch` re-reads exchangeInfo every hour (`REFRESH_MS`) and turns status changes of
followed symbols into `StatusChange` values: a symbol that stops trading is HALTED, one that
settles, closes or leaves the answer is DELISTED, and TRADING again is a resume. Statuses
(Binance "Common Definitions", contract status): PENDING_TRADING, TRADING, PRE_DELIVERING,
DELIVERING, DELIVERED, PRE_SETTLE, SETTLING, CLOSE, TRADING_HALT, TRADING_CANCEL_ONLY; a
delisted perpetual shows SETTLING (134 of 924 symbols on 2026-10-07). The marking exists so
that a symbol's silence after a halt is read as "not trading", not as a liquidity collapse;
the engine core has no HealthKind for it yet (see docs/operations.md, "The whole market").
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

import attrs

from engine_adapters.binance.messages import ApiError
from engine_adapters.binance.rest_client import RestClient
from engine_adapters.binance.rest_payloads import (
    PATH_EXCHANGE_INFO,
    PATH_TICKER_24HR,
    SymbolInfo,
    parse_exchange_info,
    parse_ticker_24hr,
    top_by_quote_volume,
    usdt_perpetuals,
)

#: exchangeInfo is re-read this often (its weight is 1: nothing against the budget).
REFRESH_MS = 3_600_000
#: Statuses after which a perpetual does not come back: settled, closed, delivered.
DELISTED_STATUSES = frozenset({"SETTLING", "CLOSE", "DELIVERED", "DELIVERING",
                               "PRE_DELIVERING"})


class AnswerProblem(enum.Enum):
    """What made an exchange answer unusable."""

    #: A non-2xx status or a `{"code","msg"}` error body.
    HTTP_ERROR = "http_error"
    #: Not the documented structure (not JSON, a key missing, a wrong type).
    WRONG_SHAPE = "wrong_shape"
    #: The same symbol listed more than once.
    DUPLICATE_SYMBOLS = "duplicate_symbols"
    #: Nothing left to follow.
    EMPTY_UNIVERSE = "empty_universe"
    #: A symbol asked for is not a TRADING USDT perpetual of the answer.
    NOT_TRADING = "not_trading"


class ExchangeAnswerError(Exception):
    """An exchange answer the universe cannot be built from: `endpoint`, `problem`, detail."""

    def __init__(self, endpoint: str, problem: AnswerProblem, detail: str) -> None:
        super().__init__(f"{endpoint}: {detail}")
        self.endpoint = endpoint
        self.problem = problem
        self.detail = detail


def _check(endpoint: str, parsed: object) -> None:
    if isinstance(parsed, ApiError):
        raise ExchangeAnswerError(endpoint, AnswerProblem.HTTP_ERROR,
                                  f"the exchange answered an error: {parsed}")
    if not isinstance(parsed, tuple):
        reason = getattr(parsed, "reason", parsed)
        raise ExchangeAnswerError(endpoint, AnswerProblem.WRONG_SHAPE,
                                  f"unexpected answer shape: {reason}")


def unique_symbols(endpoint: str, symbols: Iterable[str]) -> tuple[str, ...]:
    """`symbols` sorted, or `ExchangeAnswerError` listing every symbol given twice."""
    counts = Counter(symbols)
    twice = sorted(s for s, n in counts.items() if n > 1)
    if twice:
        shown = ", ".join(f"{s} (x{counts[s]})" for s in twice[:10])
        more = f" and {len(twice) - 10} more" if len(twice) > 10 else ""
        raise ExchangeAnswerError(endpoint, AnswerProblem.DUPLICATE_SYMBOLS,
                                  f"the answer lists symbols more than once: {shown}{more}")
    return tuple(sorted(counts))


def exchange_symbols(status: int, body: str | bytes) -> tuple[SymbolInfo, ...]:
    """Every symbol of an exchangeInfo answer, checked: right shape, each symbol once."""
    infos = parse_exchange_info(body, status)
    _check(PATH_EXCHANGE_INFO, infos)
    assert isinstance(infos, tuple)
    unique_symbols(PATH_EXCHANGE_INFO, (i.symbol for i in infos))
    return infos


def whole_market(infos: Iterable[SymbolInfo]) -> tuple[str, ...]:
    """`--top all`: every TRADING USDT perpetual, sorted; an empty result is an error."""
    infos = tuple(infos)
    symbols = usdt_perpetuals(infos)
    if not symbols:
        raise ExchangeAnswerError(
            PATH_EXCHANGE_INFO, AnswerProblem.EMPTY_UNIVERSE,
            f"no symbol is TRADING, PERPETUAL and quoted in USDT (of {len(infos)} listed)")
    return symbols


def top_from_ticker(status: int, body: str | bytes, n: int,
                    allowed: Collection[str]) -> tuple[str, ...]:
    """`--top N` from a ticker/24hr answer, checked like exchangeInfo."""
    pairs = parse_ticker_24hr(body, status)
    _check(PATH_TICKER_24HR, pairs)
    assert isinstance(pairs, tuple)
    unique_symbols(PATH_TICKER_24HR, (s for s, _ in pairs))
    chosen = top_by_quote_volume(pairs, n, allowed=allowed)
    if not chosen:
        raise ExchangeAnswerError(PATH_TICKER_24HR, AnswerProblem.EMPTY_UNIVERSE,
                                  f"none of the {len(pairs)} tickers is a TRADING USDT "
                                  f"perpetual of exchangeInfo")
    return chosen


#: `top=ALL` in `resolve_universe`: every TRADING USDT perpetual (`--top all`).
ALL = "all"


async def resolve_universe(rest: RestClient, *, symbols: Sequence[str] | None = None,
                           top: int | str | None = None,
                           default: Sequence[str] = ()) -> tuple[str, ...]:
    """The symbols of a session: `top=ALL`, `top=N` by 24 h quote volume, or `symbols`
    (else `default`) checked against exchangeInfo. Raises `ExchangeAnswerError`.

    With explicit symbols an unreachable exchangeInfo is tolerated (they are used unchecked,
    as before); an answer of the wrong shape never is. `--top` needs the answers.
    """
    res = await rest.request(PATH_EXCHANGE_INFO, None, weight=1)
    infos = None if res is None else exchange_symbols(res.status, res.body)
    if top is not None:
        if infos is None:
            raise ExchangeAnswerError(PATH_EXCHANGE_INFO, AnswerProblem.HTTP_ERROR,
                                      "no answer (the exchange is unreachable), needed for --top")
        tradable = whole_market(infos)
        if top == ALL:
            return tradable
        if not isinstance(top, int) or top <= 0:
            raise ValueError(f"top must be a positive int or {ALL!r}, got {top!r}")
        t = await rest.request(PATH_TICKER_24HR, None, weight=40)
        if t is None:
            raise ExchangeAnswerError(PATH_TICKER_24HR, AnswerProblem.HTTP_ERROR,
                                      "no answer (the exchange is unreachable), needed for --top")
        return top_from_ticker(t.status, t.body, top, tradable)
    wanted = tuple(symbols or default)
    if not wanted:
        raise ExchangeAnswerError("--symbols", AnswerProblem.EMPTY_UNIVERSE, "no symbols given")
    if infos is not None:
        tradable_set = set(usdt_perpetuals(infos))
        missing = sorted(set(wanted) - tradable_set)
        if missing:
            raise ExchangeAnswerError(
                PATH_EXCHANGE_INFO, AnswerProblem.NOT_TRADING,
                f"not TRADING USDT perpetuals on this exchange: {', '.join(missing)}")
    return tuple(sorted(set(wanted)))


class SymbolState(enum.Enum):
    """A followed symbol's trading state, as exchangeInfo says."""

    #: status TRADING.
    TRADING = "trading"
    #: Listed but not trading now (TRADING_HALT, TRADING_CANCEL_ONLY, PRE_SETTLE, ...).
    HALTED = "halted"
    #: Settling, closed or delivered, or no longer listed at all: it will not come back.
    DELISTED = "delisted"


def state_of(info: SymbolInfo | None) -> SymbolState:
    if info is None or info.status in DELISTED_STATUSES:
        return SymbolState.DELISTED
    return SymbolState.TRADING if info.status == "TRADING" else SymbolState.HALTED


@attrs.frozen(kw_only=True, slots=True)
class StatusChange:
    """`symbol` went from `before` to `after` (exchange `status`, "" if no longer listed)."""

    symbol: str
    before: SymbolState
    after: SymbolState
    status: str
    at_ms: int


class UniverseWatch:
    """The followed symbols' states across hourly exchangeInfo refreshes (pure: time passed in).
    """

    def __init__(self, symbols: Sequence[str], infos: Iterable[SymbolInfo], now_ms: int) -> None:
        self.symbols = unique_symbols("followed symbols", symbols)
        by_name = {i.symbol: i for i in infos}
        self._state = {s: state_of(by_name.get(s)) for s in self.symbols}
        self.last_refresh_ms = now_ms
        #: TRADING USDT perpetuals listed since the start (reported, not followed: the
        #: universe of a session is fixed, like its token order).
        self.new_listings: tuple[str, ...] = ()
        self._known = set(by_name)

    def due(self, now_ms: int) -> bool:
        return now_ms - self.last_refresh_ms >= REFRESH_MS

    def state(self, symbol: str) -> SymbolState:
        return self._state[symbol]

    def update(self, infos: Iterable[SymbolInfo], now_ms: int) -> tuple[StatusChange, ...]:
        """Take a fresh exchangeInfo (already checked); the changes, in symbol order."""
        by_name = {i.symbol: i for i in infos}
        self.last_refresh_ms = now_ms
        changes = []
        for sym in self.symbols:
            info = by_name.get(sym)
            new = state_of(info)
            old = self._state[sym]
            if new is not old:
                self._state[sym] = new
                changes.append(StatusChange(symbol=sym, before=old, after=new,
                                            status="" if info is None else info.status,
                                            at_ms=now_ms))
        fresh = [s for s in usdt_perpetuals(by_name.values()) if s not in self._known]
        self.new_listings = tuple(sorted({*self.new_listings, *fresh} - set(self.symbols)))
        self._known |= set(by_name)
        return tuple(changes)


__all__ = [
    "ALL",
    "DELISTED_STATUSES",
    "REFRESH_MS",
    "AnswerProblem",
    "ExchangeAnswerError",
    "StatusChange",
    "SymbolState",
    "UniverseWatch",
    "exchange_symbols",
    "resolve_universe",
    "state_of",
    "top_from_ticker",
    "unique_symbols",
    "whole_market",
]
