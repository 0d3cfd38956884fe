"""The fake exchange's REST side: USD-M market endpoints with weights, 429, 418 and faults.

Weights follow fixtures README fact 13 (premiumIndex 1/10, ticker/24hr 1/40, openInterest 1,
exchangeInfo 1) plus aggTrades 20 and time 1. Every answer carries `X-MBX-USED-WEIGHT-1M`
(fact 14). Past the limit the answer is 429 with `Retry-After` (seconds to the window end);
a request that arrives before that Retry-After has run out earns a ban: 418 with
`Retry-After` = seconds until the ban ends and a body naming the end in epoch ms (fact 14).
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine_core.events import FundingReceived, OpenInterestReceived, TradeReceived
from engine_sim import render
from engine_sim.fake_exchange.faults import FakeConfig, FakeStats, Faults

WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
_JSON = "application/json"


def _constant(weight: int) -> Callable[[dict[str, str]], int]:
    return lambda query: weight


def _per_symbol(one: int, every: int) -> Callable[[dict[str, str]], int]:
    """Fact 13: weight `one` with a symbol, `every` for the all-symbols form."""
    return lambda query: one if "symbol" in query else every


class MarketState:
    """What REST serves: last OI and premium per symbol, agg trade history per symbol."""

    def __init__(self, symbols: tuple[str, ...], history: int) -> None:
        self.symbols = symbols
        self.open_interest: dict[str, OpenInterestReceived] = {}
        self.premium: dict[str, FundingReceived] = {}
        self.trades: dict[str, list[TradeReceived]] = {s: [] for s in symbols}
        self.trade_ids: dict[str, list[int]] = {s: [] for s in symbols}
        self._history = history
        #: exchangeInfo `status` per symbol where it is not TRADING (TRADING_HALT,
        #: SETTLING, ...); a symbol mapped to "" is left out of the answer (delisted).
        self.status: dict[str, str] = {}
        #: Served verbatim as the exchangeInfo body when set (answers of a wrong shape,
        #: duplicate symbols: what a client must refuse clearly).
        self.exchange_info_body: str | None = None
        #: fundingInfo entries: symbol -> (interval hours, cap, floor); only adjusted symbols
        #: are listed, as on Binance.
        self.funding_info: dict[str, tuple[int, float, float]] = {}
        #: openInterestHist points per symbol, (epoch ms, contracts), time-ascending.
        self.oi_history: dict[str, list[tuple[int, float]]] = {}

    def add_trade(self, ev: TradeReceived) -> None:
        trades = self.trades.setdefault(ev.symbol, [])
        ids = self.trade_ids.setdefault(ev.symbol, [])
        if ids and ev.trade_id <= ids[-1]:
            return  # REST history is the exchange's truth: one entry per id, in order
        trades.append(ev)
        ids.append(ev.trade_id)
        if len(ids) > self._history:
            cut = len(ids) - self._history
            del trades[:cut]
            del ids[:cut]


class RestApi:
    """aiohttp handlers plus the per-window weight account and the ban state."""

    def __init__(
        self, *, config: FakeConfig, faults: Faults, stats: FakeStats, market: MarketState
    ) -> None:
        self.config = config
        self.faults = faults
        self.stats = stats
        self.market = market
        self.used = 0
        self._window = -1
        self._cooldown_until = 0.0
        self._banned_until = 0.0
        self._5xx_turn = 0

    def routes(self) -> list[web.RouteDef]:
        g = self._guarded
        one = _constant(1)
        return [
            web.get("/fapi/v1/time", g(self._time, one)),
            web.get("/fapi/v1/openInterest", g(self._open_interest, one)),
            web.get("/fapi/v1/premiumIndex", g(self._premium, _per_symbol(1, 10))),
            web.get("/fapi/v1/exchangeInfo", g(self._exchange_info, one)),
            web.get("/fapi/v1/ticker/24hr", g(self._ticker, _per_symbol(1, 40))),
            web.get("/fapi/v1/aggTrades", g(self._agg_trades, _constant(20))),
            # Binance: no request weight, rate-limited per IP on their own (rest_history.py)
            web.get("/fapi/v1/fundingInfo", g(self._funding_info, _constant(0))),
            web.get("/futures/data/openInterestHist", g(self._oi_history, _constant(0))),
        ]

    # ---- the guard: faults, ban, weight --------------------------------------------------
    def _guarded(
        self,
        handler: Callable[[web.Request], web.Response],
        weight_of: Callable[[dict[str, str]], int],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            self.stats.rest_requests += 1
            f = self.faults
            if f.rest_slow_next > 0:
                f.rest_slow_next -= 1
                self.stats.rest_slow += 1
                await asyncio.sleep(f.rest_slow_s)
            now = asyncio.get_running_loop().time()
            # The exchange counts per calendar minute: align the window to wall time.
            win = self.config.weight_window_s
            window = int(time.time() // win)
            if window != self._window:
                self._window, self.used = window, 0
            self.used += weight_of(dict(request.query))
            if now < self._banned_until:
                return self._banned(now)
            if now < self._cooldown_until:
                # Fact 14: ignoring a 429's Retry-After earns an automatic ban.
                self.stats.rest_ignored_retry_after += 1
                self._banned_until = now + self.config.ban_s
                return self._banned(now)
            if f.rest_418_next > 0:
                f.rest_418_next -= 1
                self._banned_until = now + f.ban_s
                return self._banned(now)
            if f.rest_429_next > 0:
                f.rest_429_next -= 1
                return self._too_many(now, float(f.retry_after_s))
            if f.rest_5xx_next > 0 or (f.rest_5xx_prob and f.rng.random() < f.rest_5xx_prob):
                f.rest_5xx_next = max(0, f.rest_5xx_next - 1)
                self.stats.rest_5xx += 1
                status = (500, 502, 503)[self._5xx_turn % 3]
                self._5xx_turn += 1
                return self._answer(status, render.ERROR_INTERNAL_BODY)
            if self.used > self.config.weight_limit:
                return self._too_many(now, (window + 1) * win - time.time())
            resp = handler(request)
            resp.headers[WEIGHT_HEADER] = str(self.used)
            if resp.status == 200:
                self.stats.rest_200 += 1
            else:
                self.stats.rest_4xx += 1
            return resp

        return wrapped

    def _answer(self, status: int, body: str, retry_after: float | None = None) -> web.Response:
        headers = {WEIGHT_HEADER: str(self.used)}
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
        return web.Response(status=status, text=body, content_type=_JSON, headers=headers)

    def _too_many(self, now: float, retry_after: float) -> web.Response:
        self.stats.rest_429 += 1
        self._cooldown_until = now + max(1, math.ceil(retry_after))
        return self._answer(429, render.ERROR_429_BODY, retry_after)

    def _banned(self, now: float) -> web.Response:
        self.stats.rest_418 += 1
        left = self._banned_until - now
        until_ms = time.time_ns() // 1_000_000 + int(left * 1000)
        return self._answer(418, render.error_418_body(until_ms), left)

    # ---- endpoints -----------------------------------------------------------------------
    def _symbol(self, request: web.Request) -> tuple[str | None, web.Response | None]:
        sym = request.query.get("symbol")
        if not sym:
            return None, web.Response(
                status=400, text=render.ERROR_MISSING_SYMBOL_BODY, content_type=_JSON
            )
        if sym not in self.market.symbols:
            return None, web.Response(
                status=400, text=render.ERROR_INVALID_SYMBOL_BODY, content_type=_JSON
            )
        return sym, None

    @staticmethod
    def _ok(body: str) -> web.Response:
        return web.Response(status=200, text=body, content_type=_JSON)

    def _time(self, request: web.Request) -> web.Response:
        return self._ok(f'{{"serverTime":{time.time_ns() // 1_000_000}}}')

    def _open_interest(self, request: web.Request) -> web.Response:
        sym, err = self._symbol(request)
        if err is not None or sym is None:
            return err or self._ok("{}")
        ev = self.market.open_interest.get(sym)
        if ev is None and self.config.initial_open_interest is not None:
            ev = OpenInterestReceived(symbol=sym, exchange_ts=time.time_ns() // 1_000_000,
                                      open_interest=self.config.initial_open_interest)
        if ev is None:  # nothing published yet: like an unknown symbol, never a made-up zero
            return web.Response(status=400, text=render.ERROR_INVALID_SYMBOL_BODY,
                                content_type=_JSON)
        return self._ok(render.open_interest_body(ev))

    def _funding_info(self, request: web.Request) -> web.Response:
        return self._ok(render.funding_info_body(sorted(self.market.funding_info.items())))

    def _oi_history(self, request: web.Request) -> web.Response:
        sym, err = self._symbol(request)
        if err is not None or sym is None:
            return err or self._ok("[]")
        q = request.query
        try:
            lo, hi = int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
            limit = min(int(q.get("limit", 30)), 500)
        except ValueError:
            return web.Response(status=400, text=render.ERROR_MISSING_SYMBOL_BODY,
                                content_type=_JSON)
        pts = [p for p in self.market.oi_history.get(sym, []) if lo <= p[0] <= hi]
        return self._ok(render.oi_history_body(sym, pts[-limit:]))

    def _default_premium(self, sym: str) -> FundingReceived:
        return FundingReceived(
            symbol=sym, exchange_ts=time.time_ns() // 1_000_000, funding_rate=0.0,
            mark_price=0.0, index_price=0.0,
        )

    def _premium(self, request: web.Request) -> web.Response:
        if "symbol" not in request.query:
            # like Binance, list only symbols that have a mark price (no zero placeholders)
            known = [self.market.premium[s] for s in self.market.symbols
                     if s in self.market.premium]
            return self._ok(render.premium_index_body(known))
        sym, err = self._symbol(request)
        if err is not None or sym is None:
            return err or self._ok("{}")
        ev = self.market.premium.get(sym) or self._default_premium(sym)
        return self._ok(render.premium_index_body(ev))

    def _exchange_info(self, request: web.Request) -> web.Response:
        m = self.market
        if m.exchange_info_body is not None:
            return self._ok(m.exchange_info_body)
        listed = [s for s in m.symbols if m.status.get(s, "TRADING")]
        body = render.exchange_info_body(listed, server_time_ms=time.time_ns() // 1_000_000)
        if m.status:
            doc = json.loads(body)
            for info in doc["symbols"]:
                info["status"] = m.status.get(info["symbol"], info["status"])
            body = render.dumps(doc)
        return self._ok(body)

    def _ticker(self, request: web.Request) -> web.Response:
        now_ms = time.time_ns() // 1_000_000
        start = now_ms - 86_400_000

        def obj(sym: str) -> dict[str, object]:
            trades = [t for t in self.market.trades.get(sym, []) if t.exchange_ts >= start]
            return render.ticker_24hr_obj(sym, trades, open_ms=start, close_ms=now_ms)

        if "symbol" not in request.query:
            return self._ok(render.dumps([obj(s) for s in self.market.symbols]))
        sym, err = self._symbol(request)
        if err is not None or sym is None:
            return err or self._ok("{}")
        return self._ok(render.dumps(obj(sym)))

    def _agg_trades(self, request: web.Request) -> web.Response:
        sym, err = self._symbol(request)
        if err is not None or sym is None:
            return err or self._ok("[]")
        q = request.query
        try:
            limit = min(1000, max(1, int(q.get("limit", "500"))))
            from_id = int(q["fromId"]) if "fromId" in q else None
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            return web.Response(
                status=400, content_type=_JSON,
                text='{"code":-1100,"msg":"Illegal characters found in a parameter."}',
            )
        trades = self.market.trades.get(sym, [])
        ids = self.market.trade_ids.get(sym, [])
        if from_id is not None:
            i = bisect.bisect_left(ids, from_id)
            chosen = trades[i : i + limit]
        else:
            sel = [
                t for t in trades
                if (start is None or t.exchange_ts >= start)
                and (end is None or t.exchange_ts <= end)
            ]
            chosen = sel[:limit] if start is not None else sel[-limit:]
        return self._ok(render.agg_trades_body(chosen))
