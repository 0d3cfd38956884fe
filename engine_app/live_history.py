"""What `live` reads over REST besides the polls: funding settings and 30 days of OI history.

    task = asyncio.create_task(read_history(rest, symbols, stop))

- `GET /fapi/v1/fundingInfo` at start and then hourly (`FUNDING_INFO_EVERY_S`): each
  symbol's funding interval and cap reach the rules as `FundingInfoReceived`.
- `GET /futures/data/openInterestHist` at start, `oi_history_windows` (18 per symbol for 30
  days) oldest first: the long OI baseline is seeded before the first minute ends.

Every answer goes through the client's `on_response`, like the polls: it is ingested and,
with `--capture`, written as a `rest` line, so `run` of the capture replays it. These
endpoints have no request weight but a per-IP limit of their own (`OI_HISTORY_BUDGET`
requests per 5 minutes): the history is paced to half of it, so the polls' weight budget
is untouched and a restart within 5 minutes stays under the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from engine_adapters.binance.rest_client import RestClient
from engine_adapters.binance.rest_history import (
    LIMIT,
    OI_HISTORY_BUDGET,
    PATH_FUNDING_INFO,
    PATH_OI_HISTORY,
    oi_history_windows,
)

FUNDING_INFO_EVERY_S = 3600.0
#: Seconds between two history requests: half the per-IP budget of 1000 per 300 s.
HISTORY_SPACING_S = 300.0 / (OI_HISTORY_BUDGET / 2)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stop` is set first; True when it is time to go on."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return not stop.is_set()


async def read_history(rest: RestClient, symbols: Sequence[str], stop: asyncio.Event, *,
                       days: int = 30, spacing_s: float = HISTORY_SPACING_S,
                       funding_every_s: float = FUNDING_INFO_EVERY_S) -> int:
    """fundingInfo now, the OI history of every symbol, then fundingInfo hourly until `stop`.

    Returns the number of requests answered (the answers themselves went to `on_response`).
    """
    answered = 0
    if await rest.request(PATH_FUNDING_INFO, None, weight=0) is not None:
        answered += 1
    now_ms = time.time_ns() // 1_000_000
    for sym in symbols:
        for start, end in oi_history_windows(now_ms, days):
            if stop.is_set():
                return answered
            res = await rest.request(PATH_OI_HISTORY, {
                "symbol": sym, "period": "5m", "limit": LIMIT, "startTime": start,
                "endTime": end}, weight=0, health_key=PATH_OI_HISTORY, symbols=(sym,))
            answered += res is not None
            if not await _wait(stop, spacing_s):
                return answered
    while await _wait(stop, funding_every_s):
        if await rest.request(PATH_FUNDING_INFO, None, weight=0) is not None:
            answered += 1
    return answered
