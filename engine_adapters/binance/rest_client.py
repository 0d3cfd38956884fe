"""The rate-limit-aware REST poller: weight budget, 429/418 discipline, retries, schedules.

Binance counts request weight per IP per minute, 2400 by default (fixtures README fact 12),
and reports the count in `X-MBX-USED-WEIGHT-1M` on every answer (fact 14); this client keeps
its own estimate, corrects it from that header, and never plans to spend more than the
budget minus a safety margin. On 429 every request pauses for `Retry-After`; on 418 (a ban)
nothing is sent until the ban ends — retrying earlier lengthens bans from minutes to days
(fact 14). Timeouts and 5xx are retried with jittered backoff. Open interest has no stream
(fact 16), so it is polled round-robin over the symbols (weight 1 each, fact 13), and
funding for all symbols at once via `premiumIndex` without a symbol (weight 10, fact 13).
Every answer goes upward as `(recv_ms, path, query, status, body_text)` so it can be
captured and parsed elsewhere; sustained failure becomes REST_DEGRADED health notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlencode

import aiohttp
import attrs

from engine_adapters.binance.ws_client import HealthNotice
from engine_adapters.clock import OffsetSample, best_offset, offset_from
from engine_core.events import HealthKind

RestSink = Callable[[int, str, str, int, str], None]
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
OPEN_INTEREST = "/fapi/v1/openInterest"
PREMIUM_INDEX = "/fapi/v1/premiumIndex"
AGG_TRADES = "/fapi/v1/aggTrades"
SERVER_TIME = "/fapi/v1/time"
_BANNED_UNTIL = re.compile(r"banned until (\d+)")


@attrs.frozen(kw_only=True, slots=True)
class RestClientConfig:
    """Budget, retry and schedule knobs; defaults suit the live exchange."""

    weight_limit: int = 2400
    #: Plan to use at most (1 - margin) of the limit: other tools may share the IP.
    safety_margin: float = 0.2
    window_s: float = 60.0
    timeout_s: float = 5.0
    max_attempts: int = 4
    retry_base_s: float = 0.5
    retry_cap_s: float = 10.0
    #: Full cycle over all symbols' open interest.
    oi_interval_s: float = 10.0
    premium_interval_s: float = 5.0
    #: Share of the budget the pollers may use; the rest is for backfill.
    poll_share: float = 0.6
    degraded_after_failures: int = 3
    #: Retry-After when a 429/418 carries none (seconds).
    default_retry_after_s: float = 60.0


@attrs.frozen(kw_only=True, slots=True)
class RestResult:
    """One answered request."""

    recv_ms: int
    path: str
    query: str
    status: int
    body: str


@attrs.define(kw_only=True, slots=True)
class RestCounters:
    requests: int = 0
    ok: int = 0
    status_429: int = 0
    status_418: int = 0
    status_5xx: int = 0
    status_4xx: int = 0
    timeouts: int = 0
    errors: int = 0
    retries: int = 0
    paused_s: float = 0.0


class WeightBudget:
    """Local estimate of the weight used in the current window, corrected by the header."""

    def __init__(self, *, limit: int, margin: float, window_s: float) -> None:
        self.cap = int(limit * (1 - margin))
        self.window_s = window_s
        self.used = 0
        self._window = -1

    def _roll(self, wall_s: float) -> None:
        w = int(wall_s // self.window_s)
        if w != self._window:
            self._window, self.used = w, 0

    def delay(self, weight: int, wall_s: float) -> float:
        """Seconds to wait before `weight` fits; 0 means spend now."""
        self._roll(wall_s)
        if self.used + weight <= self.cap:
            return 0.0
        return (self._window + 1) * self.window_s - wall_s + 0.001

    def spend(self, weight: int, wall_s: float) -> None:
        self._roll(wall_s)
        self.used += weight

    def observe(self, used: int, wall_s: float) -> None:
        """The exchange's count is the truth; it includes other clients on our IP."""
        self._roll(wall_s)
        self.used = max(self.used, used)


class RestClient:
    """GET requests under the weight budget; pollers; backfill. One per IP."""

    def __init__(
        self,
        rest_base: str,
        *,
        on_response: RestSink | None = None,
        on_health: Callable[[HealthNotice], None] | None = None,
        config: RestClientConfig | None = None,
        seed: int = 0,
        now_ms: Callable[[], int] | None = None,
        wall_s: Callable[[], float] = time.time,
    ) -> None:
        self.rest_base = rest_base.rstrip("/")
        self.config = cfg = config or RestClientConfig()
        self.budget = WeightBudget(limit=cfg.weight_limit, margin=cfg.safety_margin,
                                   window_s=cfg.window_s)
        self.counters = RestCounters()
        self.pause_until = 0.0
        self.banned_until = 0.0
        self._on_response = on_response
        self._on_health = on_health
        self._rng = random.Random(seed)
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._wall = wall_s
        self._stop = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._failures: dict[str, int] = {}
        self._degraded: set[str] = set()

    async def __aenter__(self) -> RestClient:
        self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def stop(self) -> None:
        self._stop.set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped first; returns False when stopped."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
        return not self._stop.is_set()

    async def _gate(self, weight: int) -> bool:
        """Wait until no pause or ban runs and `weight` fits in the budget."""
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            now = loop.time()
            hold = max(self.banned_until, self.pause_until) - now
            if hold > 0:
                self.counters.paused_s += hold
                if not await self._sleep(hold):
                    return False
                continue
            wait = self.budget.delay(weight, self._wall())
            if wait <= 0:
                self.budget.spend(weight, self._wall())
                return True
            if not await self._sleep(wait):
                return False
        return False

    async def request(
        self, path: str, params: Mapping[str, str | int] | None = None, *, weight: int = 1,
        health_key: str = "", symbols: Sequence[str] = (),
    ) -> RestResult | None:
        """GET `path`; None when it could not be answered (stopped, banned, out of retries)."""
        if self._session is None:
            raise RuntimeError("RestClient.request outside `async with RestClient(...)`")
        cfg, c = self.config, self.counters
        query = urlencode(params or {})
        url = f"{self.rest_base}{path}" + (f"?{query}" if query else "")
        key = health_key or path
        loop = asyncio.get_running_loop()
        for attempt in range(1, cfg.max_attempts + 1):
            if attempt > 1:
                c.retries += 1
            if not await self._gate(weight):
                return None
            c.requests += 1
            try:
                async with self._session.get(
                    url, timeout=aiohttp.ClientTimeout(total=cfg.timeout_s)
                ) as resp:
                    body = await resp.text()
                    status = resp.status
                    headers = resp.headers
            except TimeoutError:
                c.timeouts += 1
                self._failed(key, symbols)
                await self._sleep(self._backoff(attempt))
                continue
            except (aiohttp.ClientError, OSError, UnicodeDecodeError):
                c.errors += 1
                self._failed(key, symbols)
                await self._sleep(self._backoff(attempt))
                continue
            result = RestResult(recv_ms=self._now_ms(), path=path, query=query, status=status,
                                body=body)
            used = headers.get(WEIGHT_HEADER)
            if used is not None and used.isdigit():
                self.budget.observe(int(used), self._wall())
            if self._on_response is not None:
                self._on_response(result.recv_ms, path, query, status, body)
            if status == 200:
                c.ok += 1
                self._recovered(key, symbols)
                return result
            retry_after = _retry_after(headers.get("Retry-After"), cfg.default_retry_after_s)
            if status == 418:
                # Fact 14: banned; the end is in Retry-After and in the body. Never earlier.
                c.status_418 += 1
                until = retry_after
                m = _BANNED_UNTIL.search(body)
                if m is not None:
                    until = max(until, (int(m.group(1)) - self._now_ms()) / 1000)
                self.banned_until = max(self.banned_until, loop.time() + until)
                self._failed(key, symbols, force=True)
                return None
            if status == 429:
                # Fact 14: back off for Retry-After, for every request, or earn a ban.
                c.status_429 += 1
                self.pause_until = max(self.pause_until, loop.time() + retry_after)
                self._failed(key, symbols)
                continue
            if status >= 500:
                c.status_5xx += 1
                self._failed(key, symbols)
                await self._sleep(self._backoff(attempt))
                continue
            c.status_4xx += 1
            return result
        return None

    def _backoff(self, attempt: int) -> float:
        cfg = self.config
        return self._rng.uniform(0, min(cfg.retry_cap_s, cfg.retry_base_s * 2 ** (attempt - 1)))

    def _failed(self, key: str, symbols: Sequence[str], *, force: bool = False) -> None:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        if (force or n >= self.config.degraded_after_failures) and key not in self._degraded:
            self._degraded.add(key)
            self._health(symbols, HealthKind.REST_DEGRADED, key)

    def _recovered(self, key: str, symbols: Sequence[str]) -> None:
        self._failures.pop(key, None)
        self._degraded.discard(key)

    def _health(self, symbols: Sequence[str], kind: HealthKind, detail: str) -> None:
        if self._on_health is None:
            return
        now = self._now_ms()
        for sym in symbols:
            self._on_health(HealthNotice(symbol=sym, kind=kind, at_ms=now, conn_id="rest",
                                         detail=detail))

    # ---- schedules -----------------------------------------------------------------------
    def poll_intervals(self, n_symbols: int) -> tuple[float, float]:
        """(OI cycle, premium interval) stretched so the pollers fit their budget share."""
        cfg = self.config
        per_min = n_symbols * cfg.window_s / cfg.oi_interval_s
        per_min += 10 * cfg.window_s / cfg.premium_interval_s
        allowed = self.budget.cap * cfg.poll_share
        factor = max(1.0, per_min / allowed) if allowed > 0 else 1.0
        return cfg.oi_interval_s * factor, cfg.premium_interval_s * factor

    async def poll_forever(self, symbols: Sequence[str], *, oi_cycle_s: float | None = None,
                           premium_interval_s: float | None = None) -> None:
        """Poll open interest round-robin and premiumIndex (all symbols) until stop().

        The cadences default to `poll_intervals`; a whole-market plan
        (market_plan.plan_polling) passes its own."""
        syms = sorted(symbols)
        if not syms:
            return
        oi_cycle, prem = self.poll_intervals(len(syms))
        oi_cycle = oi_cycle if oi_cycle_s is None else oi_cycle_s
        prem = prem if premium_interval_s is None else premium_interval_s
        await asyncio.gather(self._poll_oi(syms, oi_cycle), self._poll_premium(syms, prem))

    async def _poll_oi(self, syms: list[str], cycle_s: float) -> None:
        loop = asyncio.get_running_loop()
        spacing = cycle_s / len(syms)
        due = loop.time()
        i = 0
        while not self._stop.is_set():
            sym = syms[i % len(syms)]
            await self.request(OPEN_INTEREST, {"symbol": sym}, weight=1,
                               health_key=f"oi:{sym}", symbols=(sym,))
            i += 1
            due += spacing
            if not await self._sleep(due - loop.time()):
                return

    async def _poll_premium(self, syms: list[str], interval_s: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._stop.is_set():
            await self.request(PREMIUM_INDEX, None, weight=10, health_key="premium", symbols=syms)
            due += interval_s
            if not await self._sleep(due - loop.time()):
                return

    async def aggtrades_backfill(
        self, symbol: str, from_id: int, to_id: int, *, max_calls: int = 100
    ) -> list[RestResult]:
        """Fetch agg trades `from_id..to_id` (1000 per call, weight 20 each, in the budget).

        Returns the answered pages in order; stops early when a page is empty, on failure,
        or after `max_calls`. The caller parses the bodies (they were also sent upward).
        """
        pages: list[RestResult] = []
        next_id = from_id
        for _ in range(max_calls):
            if next_id > to_id:
                break
            limit = min(1000, to_id - next_id + 1)
            res = await self.request(AGG_TRADES, {"symbol": symbol, "fromId": next_id,
                                                  "limit": limit},
                                     weight=20, health_key=f"backfill:{symbol}",
                                     symbols=(symbol,))
            if res is None or res.status != 200:
                break
            pages.append(res)
            last = _last_agg_id(res.body)
            if last is None:
                break
            next_id = last + 1
        return pages

    async def server_time_offset(self, samples: int = 3) -> OffsetSample | None:
        """Exchange clock minus local clock from `GET /fapi/v1/time` (best of `samples`)."""
        got: list[OffsetSample] = []
        for _ in range(samples):
            sent = self._now_ms()
            res = await self.request(SERVER_TIME, None, weight=1)
            if res is None or res.status != 200:
                continue
            m = re.search(r'"serverTime"\s*:\s*(\d+)', res.body)
            if m is not None:
                got.append(offset_from(sent, int(m.group(1)), res.recv_ms))
        return best_offset(got)


def _retry_after(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        return default


_AGG_ID = re.compile(r'"a"\s*:\s*(\d+)')


def last_agg_id(body: str) -> int | None:
    """The last `a` of an aggTrades page (ids only: parsing values is not our job)."""
    ids = _AGG_ID.findall(body)
    return int(ids[-1]) if ids else None


_last_agg_id = last_agg_id
