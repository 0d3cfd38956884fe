"""The asyncio driver of the backfill scheduler: a bounded number of fetch tasks, no more.

`BackfillRunner` owns no policy (backfill.py has it all): it feeds gaps to the scheduler,
starts the pages the scheduler allows (at most `max_in_flight` tasks exist at any time, so
memory cannot grow with the gap rate), hands each give-up to `on_give_up` once, in order,
and sleeps until a gap, an answer or `idle_s` wakes it. `rest_fetch` adapts a `RestClient`
(its answers also go upward through the client's `on_response`, so they are captured and
parsed like every REST body; a failed page is retried until its deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from engine_adapters.binance.backfill import (
    AGG_TRADES_WEIGHT,
    BackfillRequest,
    BackfillScheduler,
    GivenUp,
)
from engine_adapters.binance.dedup import IdGap
from engine_adapters.binance.rest_client import AGG_TRADES, RestClient, last_agg_id

#: `fetch(request) -> highest agg id in the page` (< from_id for an empty page; None: failed).
Fetch = Callable[[BackfillRequest], Awaitable[int | None]]


def rest_fetch(rest: RestClient) -> Fetch:
    """A `Fetch` over a RestClient: its answers also go upward (captured, parsed) as usual."""
    async def fetch(req: BackfillRequest) -> int | None:
        res = await rest.request(AGG_TRADES, {"symbol": req.symbol, "fromId": req.from_id,
                                              "limit": req.limit},
                                 weight=AGG_TRADES_WEIGHT, health_key=f"backfill:{req.symbol}",
                                 symbols=(req.symbol,))
        if res is None or res.status != 200:
            return None
        last = last_agg_id(res.body)
        return req.from_id - 1 if last is None else last
    return fetch


class BackfillRunner:
    """Drives a scheduler on asyncio: at most `max_in_flight` fetch tasks, never more.

    `gap()` is synchronous and cheap (the shell calls it from the dedup callback); give-ups
    go to `on_give_up` in the order decided, from the runner's task, each exactly once.
    """

    def __init__(self, scheduler: BackfillScheduler, fetch: Fetch, *,
                 on_give_up: Callable[[GivenUp], None], now_ms: Callable[[], int],
                 wall_s: Callable[[], float], idle_s: float = 0.25) -> None:
        self.scheduler = scheduler
        self._fetch = fetch
        self._on_give_up = on_give_up
        self._now_ms = now_ms
        self._wall_s = wall_s
        self._idle_s = idle_s
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: Exception | None = None

    def gap(self, gap: IdGap) -> None:
        self.scheduler.add_gap(gap, self._now_ms())
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self) -> None:
        """Until stop(): expire, hand out give-ups, start what the budget allows, wait."""
        sched = self.scheduler
        try:
            while not self._stop.is_set():
                now = self._now_ms()
                sched.expire(now)
                self._deliver()
                while (req := sched.next_request(now, self._wall_s())) is not None:
                    task = asyncio.get_running_loop().create_task(self._one(req))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_s)
        finally:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._deliver()
        if self._error is not None:
            raise self._error

    async def _one(self, req: BackfillRequest) -> None:
        try:
            last = await self._fetch(req)
        except (OSError, TimeoutError):  # the network, not a bug: retried until the deadline
            last = None
        except Exception as exc:
            self._error = exc  # a bug in fetch: run() re-raises it after cleaning up
            self.stop()
            return
        self.scheduler.on_result(req, last, self._now_ms())
        self._wake.set()

    def _deliver(self) -> None:
        for g in self.scheduler.take_given_up():
            self._on_give_up(g)


__all__ = ["BackfillRunner", "Fetch", "rest_fetch"]
