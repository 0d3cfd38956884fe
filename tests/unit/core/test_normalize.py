"""Normalization and the canonical flush: validation as values, deterministic order."""

from __future__ import annotations

import pytest

import engine_core as ec


def trade(sym: str = "BTCUSDT", ts: int = 1000, **kw: object) -> ec.TradeReceived:
    base: dict[str, object] = dict(symbol=sym, exchange_ts=ts, price=100.0, qty=1.0,
                                   buyer_is_maker=False, trade_id=1)
    base.update(kw)
    return ec.TradeReceived(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("field,value,fragment", [
    ("price", float("nan"), "finite"),
    ("price", float("inf"), "finite"),
    ("price", 0.0, "> 0"),
    ("qty", -1.0, "> 0"),
    ("qty", "1", "number"),
    ("qty", True, "number"),
    ("price", 1e300, "implausibly"),
    ("exchange_ts", -5, "out of range"),
    ("exchange_ts", 1.5, "integer"),
    ("trade_id", -1, "out of range"),
    ("buyer_is_maker", 1, "bool"),
])
def test_invalid_trade_is_a_rejection_naming_the_field(field: str, value: object,
                                                       fragment: str) -> None:
    q = ec.CanonicalEngine(["BTCUSDT"])
    rej = q.ingest(trade(**{field: value}))
    assert isinstance(rej, ec.Rejection)
    assert rej.field == field and fragment in rej.reason
    assert q.pending() == 0


def test_unknown_symbol_and_crossed_book_are_rejected() -> None:
    q = ec.CanonicalEngine(["BTCUSDT"])
    rej = q.ingest(trade(sym="DOGEUSDT"))
    assert rej is not None and "unknown symbol" in rej.reason
    rej = q.ingest(ec.BookTickerReceived(symbol="BTCUSDT", exchange_ts=1, bid=101.0,
                                         bid_qty=1.0, ask=100.0, ask_qty=1.0))
    assert rej is not None and "crossed" in rej.reason
    rej = q.ingest(ec.OpenInterestReceived(symbol="BTCUSDT", exchange_ts=1,
                                           open_interest=float("nan")))
    assert rej is not None and rej.field == "open_interest"


def test_flush_sorts_by_exchange_time_then_arrival_and_clears() -> None:
    q = ec.CanonicalEngine(["BTCUSDT", "ETHUSDT"])
    for ts, tid in ((30, 3), (10, 1), (30, 4), (20, 2)):
        assert q.ingest(trade(ts=ts, trade_id=tid)) is None
    batches = q.flush(7)
    assert [b.token_id for b in batches] == [0, 1]
    assert [e.payload.trade_id for e in batches[0].events] == [1, 2, 3, 4]  # type: ignore[union-attr]
    assert [e.local_seq for e in batches[0].events] == [1, 3, 0, 2]
    assert batches[1].events == () and batches[1].tick_id == 7
    assert all(not b.events for b in q.flush(8))


def test_symbols_must_be_sorted_and_unique() -> None:
    with pytest.raises(ValueError, match="sorted"):
        ec.CanonicalEngine(["ETHUSDT", "BTCUSDT"])
    with pytest.raises(ValueError, match="sorted"):
        ec.initial_state(ec.Config(), ["BTCUSDT", "BTCUSDT"])


def test_fast_constructor_matches_keywords() -> None:
    from engine_core.canonical import new_canonical_event

    e = trade()
    fast = new_canonical_event(3, ec.SourceType.TRADE, 1000, 7, e)
    slow = ec.CanonicalEvent(token_id=3, source=ec.SourceType.TRADE, exchange_ts=1000,
                             local_seq=7, payload=e)
    # what the normalizer builds positionally is the same value, field by field
    n = ec.EventNormalizer(["AUSDT", "BUSDT", "CUSDT", "DUSDT"], first_seq=7)
    out = n.normalize(trade("DUSDT"))
    assert type(out) is ec.CanonicalEvent and out.token_id == 3 and out.local_seq == 7
    assert out.source is ec.SourceType.TRADE and out.payload == trade("DUSDT")
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert type(fast) is type(slow) is ec.CanonicalEvent
    with pytest.raises(AttributeError):
        fast.local_seq = 8  # type: ignore[misc]


def test_fast_batch_and_record_constructors_match_attrs() -> None:
    import attrs

    from engine_core.canonical import new_batch
    from engine_core.record import new_record

    fast_b = new_batch(2, 41, ())
    assert fast_b == ec.CanonicalBatch(token_id=2, tick_id=41) and repr(fast_b) == repr(
        ec.CanonicalBatch(token_id=2, tick_id=41))
    values = {name: k * 3 + 1 for k, name in enumerate(ec.FIELDS)}
    fast_r = new_record(*values.values())
    slow_r = ec.Record(**values)
    assert fast_r == slow_r and repr(fast_r) == repr(slow_r)
    assert fast_r.to_bytes() == slow_r.to_bytes()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast_r.fsm = 1  # type: ignore[misc]


def _depth(**kw: object) -> ec.DepthReceived:
    base: dict[str, object] = dict(symbol="BTCUSDT", exchange_ts=1, edges_bps=(10, 25),
                                   bid_notional=(1e5, 3e5), ask_notional=(2e5, 2e5))
    base.update(kw)
    return ec.DepthReceived(**base)  # type: ignore[arg-type]


def test_new_inputs_are_accepted_when_valid() -> None:
    n = ec.EventNormalizer(["BTCUSDT"])
    good: list[ec.MarketEvent] = [
        _depth(), _depth(mid=60_000.0, reach_bps=18.5),
        ec.FundingInfoReceived(symbol="BTCUSDT", exchange_ts=1, interval_hours=4, cap=0.02,
                               floor=-0.02),
        ec.OpenInterestHistoryReceived(symbol="BTCUSDT", exchange_ts=600_000,
                                       points=((300_000, 10.0), (600_000, 11.5))),
        ec.DataHealthReceived(symbol="BTCUSDT", exchange_ts=1, kind=ec.HealthKind.SYMBOL_HALTED),
    ]
    for e in good:
        out = n.normalize(e)
        assert isinstance(out, ec.CanonicalEvent), out
        assert out.source is ec.events.SOURCE_OF[type(e)]


@pytest.mark.parametrize(("event", "field"), [
    (_depth(edges_bps=()), "edges_bps"),
    (_depth(edges_bps=(25, 10)), "edges_bps"),
    (_depth(edges_bps=(0, 10)), "edges_bps"),
    (_depth(bid_notional=(1e5,)), "bid_notional"),
    (_depth(bid_notional=(3e5, 1e5)), "bid_notional"),
    (_depth(ask_notional=(1.0, float("nan"))), "ask_notional"),
    (_depth(mid=-1.0), "mid"),
    (_depth(reach_bps=float("inf")), "reach_bps"),
    (ec.FundingInfoReceived(symbol="BTCUSDT", exchange_ts=1, interval_hours=0, cap=0.02,
                            floor=-0.02), "interval_hours"),
    (ec.FundingInfoReceived(symbol="BTCUSDT", exchange_ts=1, interval_hours=8, cap=0.0,
                            floor=-0.02), "cap"),
    (ec.FundingInfoReceived(symbol="BTCUSDT", exchange_ts=1, interval_hours=8, cap=0.02,
                            floor=0.01), "floor"),
    (ec.OpenInterestHistoryReceived(symbol="BTCUSDT", exchange_ts=9, points=()), "points"),
    (ec.OpenInterestHistoryReceived(symbol="BTCUSDT", exchange_ts=9,
                                    points=((5, 1.0), (5, 2.0))), "points"),
    (ec.OpenInterestHistoryReceived(symbol="BTCUSDT", exchange_ts=9,
                                    points=((5, 0.0),)), "points"),
    (ec.OpenInterestHistoryReceived(symbol="BTCUSDT", exchange_ts=4,
                                    points=((5, 1.0),)), "exchange_ts"),
])
def test_invalid_new_inputs_are_rejections_naming_the_field(event: ec.MarketEvent,
                                                            field: str) -> None:
    out = ec.EventNormalizer(["BTCUSDT"]).normalize(event)
    assert isinstance(out, ec.Rejection), out
    assert out.field == field, out
