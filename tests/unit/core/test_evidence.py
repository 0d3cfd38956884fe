"""Evidence records: the 64-byte codec, its views, and what `step` puts beside the records."""

from __future__ import annotations

import pytest

import engine_core as ec
from engine_core.canonical import make_batch, new_canonical_event
from engine_core.evidence import (
    EvidenceFlag,
    EvidenceRecord,
    EvidenceWindows,
    iter_evidence,
    pack_evidence,
)

F = EvidenceFlag


def test_pack_round_trips_and_quantizes() -> None:
    raw = pack_evidence(7_000_000_000, 3, int(F.OI_BASELINE_SESSION), 60_120.5, 60_150.0,
                        60_100.0, 81_234.5678, 0.0001 / 8, 3.2e6, 0.0, 3.25e6, 1.0e3, -4.1,
                        -0.023, -0.041, 0.143)
    assert len(raw) == ec.RECORD_SIZE
    r = EvidenceRecord.from_bytes(raw)
    assert r.to_bytes() == raw
    assert (r.tick_id, r.token_id) == (7_000_000_000, 3)
    assert r.price_value == pytest.approx(60_120.5, abs=1e-9)
    assert r.mark_value == pytest.approx(60_150.0, rel=1e-5)
    assert r.index_value == pytest.approx(60_100.0, rel=1e-5)
    assert r.oi_value == pytest.approx(81_234.5678)
    assert r.funding_per_hour_value == pytest.approx(1.25e-5)
    assert (r.liq_long_tick, r.liq_short_tick, r.liq_long_window, r.liq_short_window) == (
        3_200_000, 0, 3_250_000, 1_000)
    assert r.move_sigma_value == -4.1 and r.move_pct == pytest.approx(-2.3)
    assert r.oi_change_pct == pytest.approx(-4.1)
    assert r.oi_build == 14 and r.oi_build_pct == 14.0
    assert r.flags == int(F.OI_BASELINE_SESSION)


def test_out_of_range_values_saturate_and_say_so() -> None:
    r = EvidenceRecord.from_bytes(pack_evidence(1, 0, 0, 100.0, 100.0, 100.0, 1.0, 0.0,
                                                1e12, 0.0, 0.0, 0.0, 900.0, 0.0, 0.0))
    assert r.liq_long_tick == 2**32 - 1 and r.move_sigma == 2**15 - 1
    assert r.has(F.CLAMPED)
    # OI at 3x its long norm (+200 %) saturates the one-byte field, and says so
    r = EvidenceRecord.from_bytes(pack_evidence(1, 0, 0, 100.0, 100.0, 100.0, 1.0, 0.0,
                                                0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0))
    assert r.oi_build == 127 and r.has(F.CLAMPED)
    r = EvidenceRecord.from_bytes(pack_evidence(1, 0, 0, 100.0, 100.0, 100.0, 1.0, 0.0,
                                                0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.5))
    assert r.oi_build == -127 and r.has(F.CLAMPED)


def test_unknown_values_read_as_none() -> None:
    flags = int(F.NO_PRICE | F.NO_MARK | F.NO_OI | F.NO_SIGMA)
    r = EvidenceRecord.from_bytes(pack_evidence(1, 0, flags, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                                0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    assert r.price_value is r.mark_value is r.oi_value is r.move_sigma_value is None
    assert r.funding_per_hour_value is None and r.oi_change_pct is None
    assert r.oi_build_pct is None


def test_a_flipped_bit_is_a_checksum_error() -> None:
    raw = bytearray(pack_evidence(1, 0, 0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                                  0.0, 0.0))
    raw[20] ^= 1
    with pytest.raises(ec.ChecksumError):
        EvidenceRecord.from_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not an evidence record"):
        EvidenceRecord.from_bytes(ec.Record(**dict.fromkeys(ec.FIELDS, 0)).to_bytes(),
                                  check=False)


def _ev(sym: str, tick: int, seq: int, e: ec.MarketEvent) -> ec.CanonicalEvent:
    return new_canonical_event(0 if sym == "AUSDT" else 1, ec.events.SOURCE_OF[type(e)],
                               e.exchange_ts, seq, e)


def test_step_puts_one_evidence_record_per_token_beside_the_records() -> None:
    syms = ("AUSDT", "BUSDT")
    cfg = ec.Config()
    state = ec.initial_state(cfg, syms)
    t0 = 7_000_000_000
    ts = t0 * 250 - 100
    a_events: list[ec.MarketEvent] = [
        ec.BookTickerReceived(symbol="AUSDT", exchange_ts=ts, bid=99.9, bid_qty=5.0, ask=100.1,
                              ask_qty=5.0),
        ec.MarkPriceReceived(symbol="AUSDT", exchange_ts=ts, mark_price=100.05,
                             index_price=99.95, funding_rate=0.0004),
        ec.FundingInfoReceived(symbol="AUSDT", exchange_ts=ts, interval_hours=4, cap=0.02,
                               floor=-0.02),
        ec.OpenInterestHistoryReceived(symbol="AUSDT", exchange_ts=ts - 300_000,
                                       points=((ts - 600_000, 900.0), (ts - 300_000, 1000.0))),
        ec.LiquidationReceived(symbol="AUSDT", exchange_ts=ts, side=ec.Side.SELL, price=100.0,
                               qty=20.0),
    ]
    batches = (make_batch(0, t0, [_ev("AUSDT", t0, i, e) for i, e in enumerate(a_events)]),
               make_batch(1, t0, []))
    state, recs, _ = ec.step(state, batches, t0)
    assert isinstance(recs, ec.TickRecords)
    evs = iter_evidence(recs.evidence)
    assert [(e.tick_id, e.token_id) for e in evs] == [(t0, 0), (t0, 1)]
    a, b = evs
    assert a.price_value == pytest.approx(100.0)
    assert a.mark_value == pytest.approx(100.05, rel=1e-5)
    assert a.funding_per_hour_value == pytest.approx(0.0001)  # 0.04 % per 4 h
    assert a.oi_value == pytest.approx(1000.0)  # the history's newest point
    assert a.liq_long_tick == 2000 and a.liq_short_tick == 0
    assert not a.has(F.FUNDING_INTERVAL_ASSUMED) and not a.has(F.OI_BASELINE_SESSION)
    assert a.has(F.DEPTH_TOP_OF_BOOK) and not a.has(F.NO_MID)
    assert b.has(F.NO_PRICE) and b.has(F.NO_MARK) and b.has(F.NO_OI)
    assert b.has(F.FUNDING_INTERVAL_ASSUMED) and b.has(F.OI_BASELINE_SESSION)


def test_windows_come_from_the_config() -> None:
    w = EvidenceWindows.from_config(ec.Config())
    assert (w.move_s, w.oi_change_s, w.liquidation_s) == (60.0, 60.0, 10.0)


def test_depth_bands_make_a_book_and_a_halt_is_marked() -> None:
    syms = ("AUSDT",)
    state = ec.initial_state(ec.Config(), syms)
    t0 = 7_000_000_000
    ts = t0 * 250 - 100
    d = ec.DepthReceived(symbol="AUSDT", exchange_ts=ts, edges_bps=(100, 200),
                         bid_notional=(5e5, 9e5), ask_notional=(4e5, 8e5), mid=50.0)
    h = ec.DataHealthReceived(symbol="AUSDT", exchange_ts=ts, kind=ec.HealthKind.SYMBOL_HALTED)
    state, recs, _ = ec.step(state, (make_batch(0, t0, [_ev("AUSDT", t0, 0, d),
                                                        _ev("AUSDT", t0, 1, h)]),), t0)
    r = recs[0]
    assert not r.quality & ec.Quality.NO_BOOK  # depth bands are a book
    e = iter_evidence(recs.evidence)[0]
    assert e.price_value == pytest.approx(50.0) and e.has(F.NO_MID)
    assert e.has(F.HALTED) and not e.has(F.DEPTH_TOP_OF_BOOK)
