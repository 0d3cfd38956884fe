"""Bounded aggTrade backfill: coalesced per symbol, inside a weight share, given up on time.

Before, every id gap spawned its own task that waited for REST weight; under a 2 % gap storm
on 100 symbols the tasks piled up without bound (issue 12: RSS +0.7 MB/s). Here the work is
data, not tasks, and every part of it is bounded:

* **Coalesced.** Missing ids are kept per symbol as sorted, disjoint ranges. One request,
  `GET /fapi/v1/aggTrades?symbol=S&fromId=F&limit=L` (L <= 1000, Binance's maximum), returns
  the trades with ids F.. F+L-1 (agg ids are contiguous per symbol, dedup.py), so it covers
  every range that starts inside that window.
* **Bounded.** At most `max_ranges_per_symbol` ranges per symbol (beyond that the two
  closest merge: refetching ids we already have is harmless, the deduper drops them) and
  `max_ranges` in all (beyond that the oldest range is given up at once). A range wider than
  `max_gap_ids` is given up at once: it could not be fetched within the deadline anyway.
  At most `max_in_flight` requests run at a time, one per symbol.
* **Inside the budget.** Requests spend from a `WeightBudget` of their own, sized to what
  the pollers leave of the IP's limit (`share_after_pollers`); the RestClient's global gate
  still applies on top (429/418 discipline).
* **Given up promptly.** A range not fetched within `deadline_ms` of being opened is given
  up, oldest first, as a `GivenUp` value; the shell turns it into a TRADE_GAP health notice
  (counted, written to the capture, so `run` replays the same decision).

Pages all cost the same weight, so the next page is the one that brings back the most
missing ids (oldest first among equals): under a storm the budget recovers as many trades
as it can, and the rest is given up at its deadline. `BackfillScheduler` is pure: time comes
in as arguments and no I/O happens, so it unit-tests without a network.
`backfill_runner.BackfillRunner` drives it on asyncio with an injected `fetch`.
"""

from __future__ import annotations

import enum
import heapq

import attrs

from engine_adapters.binance.dedup import IdGap
from engine_adapters.binance.rest_client import WeightBudget

#: Binance USD-M aggTrades: at most 1000 trades per page; weight as charged in rest_client.
PAGE_LIMIT = 1000
AGG_TRADES_WEIGHT = 20


class GiveUpReason(enum.Enum):
    """Why a range of trade ids will not be fetched back."""

    #: Not fetched within the deadline (budget spent elsewhere, REST failing, too much work).
    DEADLINE = "deadline"
    #: The queue was full; the oldest range made room for a new one.
    QUEUE_FULL = "queue_full"
    #: Wider than `max_gap_ids`: more pages than the deadline allows.
    TOO_WIDE = "too_wide"
    #: The exchange answered an empty page for ids that should exist.
    NOT_SERVED = "not_served"


@attrs.frozen(kw_only=True, slots=True)
class BackfillConfig:
    """Bounds of the scheduler; defaults suit a whole-market live session."""

    page_limit: int = PAGE_LIMIT
    weight_per_request: int = AGG_TRADES_WEIGHT
    deadline_ms: int = 30_000
    max_gap_ids: int = 20_000
    max_ranges_per_symbol: int = 32
    max_ranges: int = 4096
    max_in_flight: int = 4
    #: After a failed request, the symbol waits this long before its next attempt.
    retry_ms: int = 2_000
    window_s: float = 60.0


@attrs.frozen(kw_only=True, slots=True)
class BackfillRequest:
    """One page to fetch: ids `from_id .. from_id + limit - 1` of `symbol`."""

    symbol: str
    from_id: int
    limit: int


@attrs.frozen(kw_only=True, slots=True)
class GivenUp:
    """Ids `first..last` of `symbol` that will not be fetched back (a TRADE_GAP notice)."""

    symbol: str
    first: int
    last: int
    at_ms: int
    reason: GiveUpReason

    @property
    def gap(self) -> IdGap:
        return IdGap(symbol=self.symbol, first=self.first, last=self.last)

    @property
    def ids(self) -> int:
        return self.last - self.first + 1


@attrs.define(kw_only=True, slots=True)
class BackfillCounters:
    """Running totals for metrics and the benchmark (mutable)."""

    gaps: int = 0
    ids_missing: int = 0
    requests: int = 0
    failures: int = 0
    ids_covered: int = 0
    given_up: int = 0
    ids_given_up: int = 0
    merges: int = 0
    #: Ids that were not missing but joined a range when two closest ranges merged.
    ids_padded: int = 0
    queue_high_water: int = 0


def share_after_pollers(weight_limit: int, safety_margin: float, pollers_per_min: float,
                        window_s: float = 60.0) -> int:
    """Weight per window left for backfill once the pollers' planned use is taken out."""
    cap = int(weight_limit * (1 - safety_margin))
    return max(0, int(cap - pollers_per_min * window_s / 60.0))


class BackfillScheduler:
    """The pure part: ranges per symbol, bounds, budget, deadlines. Time is passed in."""

    def __init__(self, config: BackfillConfig, *, weight_per_window: int) -> None:
        self.config = config
        self.budget = WeightBudget(limit=weight_per_window, margin=0.0, window_s=config.window_s)
        #: symbol -> sorted disjoint [first, last, opened_ms] ranges still missing.
        self._ranges: dict[str, list[list[int]]] = {}
        #: symbol -> opened_ms of its oldest range; the heap holds (oldest, symbol) entries,
        #: stale ones (not equal to `_oldest_of`) are skipped when they surface.
        self._oldest_of: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._in_flight: set[str] = set()
        self._not_before: dict[str, int] = {}
        self._given_up: list[GivenUp] = []
        self._total = 0
        self.counters = BackfillCounters()

    # ---- input ---------------------------------------------------------------------------
    def add_gap(self, gap: IdGap, now_ms: int) -> None:
        """Queue a newly opened gap (coalesced with the symbol's others)."""
        c, cfg = self.counters, self.config
        c.gaps += 1
        c.ids_missing += gap.count
        if gap.count > cfg.max_gap_ids:
            self._give_up(gap.symbol, gap.first, gap.last, now_ms, GiveUpReason.TOO_WIDE)
            return
        ranges = self._ranges.setdefault(gap.symbol, [])
        before = len(ranges)
        _insert(ranges, gap.first, gap.last, now_ms)
        if len(ranges) > cfg.max_ranges_per_symbol:
            c.ids_padded += _merge_closest(ranges)
            c.merges += 1
        self._total += len(ranges) - before
        self._touch(gap.symbol)
        while self._total > cfg.max_ranges:
            sym = self._top()
            assert sym is not None  # _total > 0
            r = min(self._ranges[sym], key=lambda r: (r[2], r[0]))
            self._drop(sym, [r], now_ms, GiveUpReason.QUEUE_FULL)
        c.queue_high_water = max(c.queue_high_water, self._total)

    # ---- planning ------------------------------------------------------------------------
    def expire(self, now_ms: int) -> None:
        """Give up every range older than the deadline (they collect in `take_given_up`)."""
        limit = now_ms - self.config.deadline_ms
        while (sym := self._top()) is not None and self._oldest_of[sym] <= limit:
            self._drop(sym, [r for r in self._ranges[sym] if r[2] <= limit], now_ms,
                       GiveUpReason.DEADLINE)

    def next_request(self, now_ms: int, wall_s: float) -> BackfillRequest | None:
        """The most urgent page that may be fetched now (its weight is spent), or None."""
        cfg = self.config
        # cheap refusals first: this is called after every gap, mostly to be told "not now"
        if len(self._in_flight) >= cfg.max_in_flight or not self._ranges or \
                self.budget.delay(cfg.weight_per_request, wall_s) > 0:
            return None
        # Every page costs the same weight, so the page that brings back the most missing
        # ids goes first; among equals, the one whose oldest range expires first.
        best: tuple[int, int, str] | None = None
        span = cfg.page_limit - 1
        for sym, opened in self._oldest_of.items():
            if sym in self._in_flight or self._not_before.get(sym, 0) > now_ms:
                continue
            ranges = self._ranges[sym]
            end = ranges[0][0] + span
            ids = sum(min(r[1], end) - r[0] + 1 for r in ranges if r[0] <= end)
            if best is None or (-ids, opened, sym) < best:
                best = (-ids, opened, sym)
        if best is None:
            return None
        self.budget.spend(cfg.weight_per_request, wall_s)
        sym = best[2]
        ranges = self._ranges[sym]
        from_id = ranges[0][0]
        end = from_id + span
        want = max(min(r[1], end) for r in ranges if r[0] <= end)
        self._in_flight.add(sym)
        self.counters.requests += 1
        return BackfillRequest(symbol=sym, from_id=from_id, limit=want - from_id + 1)

    def on_result(self, req: BackfillRequest, last_id: int | None, now_ms: int) -> None:
        """The page's answer: the highest id it held (< from_id: empty), None: it failed."""
        self._in_flight.discard(req.symbol)
        ranges = self._ranges.get(req.symbol)
        if last_id is None:
            self.counters.failures += 1
            self._not_before[req.symbol] = now_ms + self.config.retry_ms
            return
        self._not_before.pop(req.symbol, None)
        if ranges is None:
            return
        before = len(ranges)
        if last_id < req.from_id:  # empty page: those ids are not there to be had
            end = req.from_id + req.limit - 1
            for r in [r for r in ranges if r[0] <= end]:
                self._give_up(req.symbol, r[0], min(r[1], end), now_ms, GiveUpReason.NOT_SERVED)
            _cut_below(ranges, end)
        else:
            self.counters.ids_covered += _cut_below(ranges, last_id)
        self._total += len(ranges) - before
        self._touch(req.symbol)

    def take_given_up(self) -> list[GivenUp]:
        """The give-ups since the last call, in the order they were decided."""
        out, self._given_up = self._given_up, []
        return out

    # ---- introspection -------------------------------------------------------------------
    @property
    def queued_ranges(self) -> int:
        return self._total

    def missing(self, symbol: str) -> tuple[IdGap, ...]:
        return tuple(IdGap(symbol=symbol, first=a, last=b) for a, b, _ in
                     self._ranges.get(symbol, ()))

    def next_deadline_ms(self) -> int | None:
        """When the oldest queued range will expire (None when nothing is queued)."""
        sym = self._top()
        return None if sym is None else self._oldest_of[sym] + self.config.deadline_ms

    # ---- internals -----------------------------------------------------------------------
    def _touch(self, sym: str) -> None:
        """Re-index `sym` after its ranges changed (forget it when it has none left)."""
        ranges = self._ranges.get(sym)
        if not ranges:
            self._ranges.pop(sym, None)
            self._oldest_of.pop(sym, None)
            return
        oldest = min(r[2] for r in ranges)
        if self._oldest_of.get(sym) != oldest:
            self._oldest_of[sym] = oldest
            heapq.heappush(self._heap, (oldest, sym))

    def _top(self) -> str | None:
        """The symbol holding the oldest range (stale heap entries are dropped)."""
        heap = self._heap
        while heap:
            opened, sym = heap[0]
            if self._oldest_of.get(sym) == opened:
                return sym
            heapq.heappop(heap)
        return None

    def _drop(self, sym: str, gone: list[list[int]], now_ms: int, why: GiveUpReason) -> None:
        ranges = self._ranges[sym]
        for r in gone:
            ranges.remove(r)
            self._total -= 1
            self._give_up(sym, r[0], r[1], now_ms, why)
        self._touch(sym)

    def _give_up(self, sym: str, first: int, last: int, now_ms: int, why: GiveUpReason) -> None:
        self.counters.given_up += 1
        self.counters.ids_given_up += last - first + 1
        self._given_up.append(GivenUp(symbol=sym, first=first, last=last, at_ms=now_ms,
                                      reason=why))


def _insert(ranges: list[list[int]], first: int, last: int, now_ms: int) -> None:
    """Add [first, last] to sorted disjoint ranges, merging overlaps (oldest time kept)."""
    out: list[list[int]] = []
    new = [first, last, now_ms]
    placed = False
    for r in ranges:
        if r[1] < new[0] - 1:
            out.append(r)
        elif r[0] > new[1] + 1:
            if not placed:
                out.append(new)
                placed = True
            out.append(r)
        else:
            new = [min(r[0], new[0]), max(r[1], new[1]), min(r[2], new[2])]
    if not placed:
        out.append(new)
    ranges[:] = out


def _merge_closest(ranges: list[list[int]]) -> int:
    """Merge the two ranges with the smallest hole between; returns the hole's size."""
    i = min(range(len(ranges) - 1), key=lambda k: (ranges[k + 1][0] - ranges[k][1], k))
    a, b = ranges[i], ranges[i + 1]
    ranges[i : i + 2] = [[a[0], b[1], min(a[2], b[2])]]
    return b[0] - a[1] - 1


def _cut_below(ranges: list[list[int]], last_id: int) -> int:
    """Remove ids <= last_id; returns how many missing ids that covered."""
    covered = 0
    keep: list[list[int]] = []
    for r in ranges:
        if r[1] <= last_id:
            covered += r[1] - r[0] + 1
        elif r[0] <= last_id:
            covered += last_id - r[0] + 1
            keep.append([last_id + 1, r[1], r[2]])
        else:
            keep.append(r)
    ranges[:] = keep
    return covered


__all__ = [
    "AGG_TRADES_WEIGHT",
    "PAGE_LIMIT",
    "BackfillConfig",
    "BackfillCounters",
    "BackfillRequest",
    "BackfillScheduler",
    "GiveUpReason",
    "GivenUp",
    "share_after_pollers",
]
