"""The bounded backfill scheduler: coalescing, bounds, budget, deadlines (pure, no network)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine_adapters.binance.backfill import (
    BackfillConfig,
    BackfillRequest,
    BackfillScheduler,
    GiveUpReason,
    share_after_pollers,
)
from engine_adapters.binance.dedup import IdGap

W = 960.0  # wall seconds at the start of a (minute-aligned) budget window


def gap(sym: str, a: int, b: int) -> IdGap:
    return IdGap(symbol=sym, first=a, last=b)


def sched(**kw: int) -> BackfillScheduler:
    weight = kw.pop("weight", 10_000)
    return BackfillScheduler(BackfillConfig(**kw), weight_per_window=weight)


def test_many_gaps_of_a_symbol_coalesce_into_one_request() -> None:
    s = sched()
    for a in range(100, 1000, 50):  # 18 one-id gaps within one 1000-id page
        s.add_gap(gap("BTCUSDT", a, a), 0)
    req = s.next_request(10, W)
    assert req == BackfillRequest(symbol="BTCUSDT", from_id=100, limit=851)
    assert s.next_request(10, W) is None  # one request in flight per symbol
    s.on_result(req, 950, 20)
    assert s.queued_ranges == 0 and s.counters.ids_covered == 18
    assert s.counters.requests == 1 and s.take_given_up() == []


def test_a_page_covers_only_its_window_the_rest_stays_queued() -> None:
    s = sched()
    s.add_gap(gap("ETHUSDT", 10, 20), 0)
    s.add_gap(gap("ETHUSDT", 900, 1500), 0)
    req = s.next_request(0, W)
    assert req is not None and (req.from_id, req.limit) == (10, 1000)
    s.on_result(req, 1009, 5)
    assert s.missing("ETHUSDT") == (gap("ETHUSDT", 1010, 1500),)
    req2 = s.next_request(6, W)
    assert req2 is not None and (req2.from_id, req2.limit) == (1010, 491)


def test_overlapping_and_adjacent_gaps_merge() -> None:
    s = sched()
    for a, b in ((10, 20), (21, 30), (25, 40), (50, 60)):
        s.add_gap(gap("X", a, b), 0)
    assert s.missing("X") == (gap("X", 10, 40), gap("X", 50, 60))


def test_deadline_gives_up_promptly_oldest_first() -> None:
    s = sched(deadline_ms=30_000)
    s.add_gap(gap("A", 1, 5), 1_000)
    s.add_gap(gap("B", 7, 9), 2_000)
    s.expire(30_999)
    assert s.take_given_up() == []
    s.expire(32_000)
    out = s.take_given_up()
    assert [(g.symbol, g.first, g.last, g.reason) for g in out] == [
        ("A", 1, 5, GiveUpReason.DEADLINE), ("B", 7, 9, GiveUpReason.DEADLINE)]
    assert s.queued_ranges == 0 and s.counters.ids_given_up == 8
    assert s.next_deadline_ms() is None


def test_in_flight_range_past_its_deadline_is_given_up_and_late_answer_is_harmless() -> None:
    s = sched(deadline_ms=1_000)
    s.add_gap(gap("A", 1, 5), 0)
    req = s.next_request(0, W)
    assert req is not None
    s.expire(1_000)
    assert [g.reason for g in s.take_given_up()] == [GiveUpReason.DEADLINE]
    s.on_result(req, 5, 3_000)  # the answer came after all
    assert s.queued_ranges == 0 and s.take_given_up() == []
    s.add_gap(gap("A", 9, 9), 3_000)  # the symbol is schedulable again
    assert s.next_request(3_000, W) is not None


def test_weight_share_limits_requests_per_window() -> None:
    s = sched(weight=100, max_in_flight=100)  # 5 requests of weight 20 per minute
    for i in range(20):
        s.add_gap(gap(f"S{i:02d}", 5, 5), 0)
    reqs = [r for _ in range(20) if (r := s.next_request(0, W)) is not None]
    assert len(reqs) == 5
    assert s.next_request(0, W + 59.0) is None
    assert s.next_request(0, W + 60.0) is not None  # the next window


def test_most_ids_per_page_first_then_oldest_and_in_flight_bound() -> None:
    s = sched(max_in_flight=3)
    s.add_gap(gap("ZZZ", 1, 1), 100)
    s.add_gap(gap("AAA", 1, 1), 300)
    s.add_gap(gap("MMM", 1, 1), 200)
    s.add_gap(gap("BIG", 1, 50), 400)  # the youngest, but 50 ids in one page
    order = [r.symbol for _ in range(4) if (r := s.next_request(400, W)) is not None]
    assert order == ["BIG", "ZZZ", "MMM"]  # then oldest first; AAA waits for a free slot


def test_failure_backs_off_then_retries_until_the_deadline() -> None:
    s = sched(retry_ms=2_000, deadline_ms=10_000)
    s.add_gap(gap("A", 1, 3), 0)
    req = s.next_request(0, W)
    assert req is not None
    s.on_result(req, None, 100)
    assert s.next_request(2_099, W) is None
    assert s.next_request(2_100, W) is not None
    assert s.counters.failures == 1


def test_empty_page_gives_the_window_up_as_not_served() -> None:
    s = sched()
    s.add_gap(gap("A", 10, 12), 0)
    s.add_gap(gap("A", 5_000, 5_001), 0)
    req = s.next_request(0, W)
    assert req is not None
    s.on_result(req, req.from_id - 1, 50)
    assert [(g.first, g.last, g.reason) for g in s.take_given_up()] == [
        (10, 12, GiveUpReason.NOT_SERVED)]
    assert s.missing("A") == (gap("A", 5_000, 5_001),)


def test_bounds_too_wide_queue_full_and_merge() -> None:
    s = sched(max_gap_ids=100, max_ranges=3, max_ranges_per_symbol=2)
    s.add_gap(gap("A", 1, 500), 0)
    assert [g.reason for g in s.take_given_up()] == [GiveUpReason.TOO_WIDE]
    s.add_gap(gap("A", 10, 10), 1)
    s.add_gap(gap("A", 20, 20), 2)
    s.add_gap(gap("A", 90, 90), 3)  # third range of A: the two closest merge
    assert s.missing("A") == (gap("A", 10, 20), gap("A", 90, 90)) and s.counters.merges == 1
    s.add_gap(gap("B", 1, 1), 4)
    s.add_gap(gap("C", 1, 1), 5)  # four ranges > max 3: the oldest (A 10..20) goes
    out = s.take_given_up()
    assert [(g.symbol, g.first, g.last, g.reason) for g in out] == [
        ("A", 10, 20, GiveUpReason.QUEUE_FULL)]
    assert s.queued_ranges == 3 and s.counters.queue_high_water == 3


def test_share_after_pollers() -> None:
    # 2400 limit, 20 % margin -> 1920; pollers use 720/min -> 1200 left for backfill
    assert share_after_pollers(2400, 0.2, 720.0) == 1200
    assert share_after_pollers(2400, 0.2, 5000.0) == 0


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5000), st.integers(0, 300),
                          st.integers(0, 2)), max_size=80))
def test_storm_model_every_missing_id_is_covered_or_given_up_exactly_once(
        ops: list[tuple[int, int, int, int]]) -> None:
    """Against a model (a set of ids): nothing is lost silently, the queue stays bounded."""
    s = sched(max_ranges=8, max_ranges_per_symbol=3, max_gap_ids=250, deadline_ms=50)
    missing: dict[str, set[int]] = {}
    accounted: dict[str, set[int]] = {}
    now = 0
    for sym_i, a, width, action in ops:
        now += 7
        sym = f"S{sym_i}"
        g = gap(sym, a, a + width)
        s.add_gap(g, now)
        missing.setdefault(sym, set()).update(range(a, a + width + 1))
        if action == 1 and (req := s.next_request(now, W)) is not None:
            last = req.from_id + req.limit - 1
            s.on_result(req, last, now)
            accounted.setdefault(req.symbol, set()).update(range(req.from_id, last + 1))
        elif action == 2:
            s.expire(now)
        assert s.queued_ranges <= 8
        for gu in s.take_given_up():
            accounted.setdefault(gu.symbol, set()).update(range(gu.first, gu.last + 1))
    s.expire(now + 10_000)
    for gu in s.take_given_up():
        accounted.setdefault(gu.symbol, set()).update(range(gu.first, gu.last + 1))
    for sym, ids in missing.items():
        assert ids <= accounted.get(sym, set()), sym
    assert s.queued_ranges == 0
