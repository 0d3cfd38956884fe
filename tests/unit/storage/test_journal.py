"""Input journal: exact round trip of every event type, rotation, zstd, torn tails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine_adapters.storage.journal import compress_segment, iter_journal
from engine_adapters.storage.journal_writer import JournalWriter
from engine_adapters.storage.segment import JOURNAL_SUFFIX, StorageError, list_segments
from engine_core.canonical import CanonicalBatch, CanonicalEvent
from engine_core.config import Config
from engine_core.events import (
    SOURCE_OF,
    BookTickerReceived,
    DataHealthReceived,
    DepthReceived,
    FundingInfoReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

from .helpers import SYMBOLS

CFG = Config()
F = st.floats(allow_nan=False, allow_infinity=True, width=64)
I64 = st.integers(-(2**63), 2**63 - 1)


def payloads(sym: str) -> st.SearchStrategy[MarketEvent]:
    return st.one_of(
        st.builds(TradeReceived, symbol=st.just(sym), exchange_ts=I64, price=F, qty=F,
                  buyer_is_maker=st.booleans(), trade_id=I64),
        st.builds(BookTickerReceived, symbol=st.just(sym), exchange_ts=I64, bid=F, bid_qty=F,
                  ask=F, ask_qty=F, update_id=I64),
        st.builds(LiquidationReceived, symbol=st.just(sym), exchange_ts=I64,
                  side=st.sampled_from(Side), price=F, qty=F),
        st.builds(MarkPriceReceived, symbol=st.just(sym), exchange_ts=I64, mark_price=F,
                  index_price=F, funding_rate=F, next_funding_ts=I64),
        st.builds(OpenInterestReceived, symbol=st.just(sym), exchange_ts=I64, open_interest=F),
        st.builds(FundingReceived, symbol=st.just(sym), exchange_ts=I64, funding_rate=F,
                  mark_price=F, index_price=F, next_funding_ts=I64),
        st.builds(DataHealthReceived, symbol=st.just(sym), exchange_ts=I64,
                  kind=st.sampled_from(HealthKind), count=I64),
        st.integers(0, 6).flatmap(lambda n: st.builds(
            DepthReceived, symbol=st.just(sym), exchange_ts=I64,
            edges_bps=st.tuples(*[st.integers(0, 65535)] * n),
            bid_notional=st.tuples(*[F] * n), ask_notional=st.tuples(*[F] * n), mid=F,
            reach_bps=F)),
        st.builds(FundingInfoReceived, symbol=st.just(sym), exchange_ts=I64,
                  interval_hours=st.integers(0, 65535), cap=F, floor=F),
        st.builds(OpenInterestHistoryReceived, symbol=st.just(sym), exchange_ts=I64,
                  points=st.lists(st.tuples(I64, F), max_size=5).map(tuple)),
    )


def event(tok: int, seq: int, p: MarketEvent) -> CanonicalEvent:
    return CanonicalEvent(token_id=tok, source=SOURCE_OF[type(p)], exchange_ts=p.exchange_ts,
                          local_seq=seq, payload=p)


@st.composite
def tick_batches(draw: st.DrawFn, tick: int) -> tuple[CanonicalBatch, ...]:
    out = []
    for tok, sym in enumerate(SYMBOLS):
        ps = draw(st.lists(payloads(sym), max_size=4))
        out.append(CanonicalBatch(token_id=tok, tick_id=tick,
                                  events=tuple(event(tok, i, p) for i, p in enumerate(ps))))
    return tuple(out)


def simple_tick(tick: int, k: int = 2) -> tuple[CanonicalBatch, ...]:
    return tuple(CanonicalBatch(token_id=i, tick_id=tick, events=tuple(
        event(i, tick * 10 + j, TradeReceived(symbol=s, exchange_ts=tick * 250 + j,
                                              price=100.5 + j, qty=0.1 * (i + 1),
                                              buyer_is_maker=bool(j % 2), trade_id=tick + j))
        for j in range(k))) for i, s in enumerate(SYMBOLS))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_round_trip_is_exact_for_every_event_type(tmp_path_factory: pytest.TempPathFactory,
                                                  data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("j")
    tks = [(t, data.draw(tick_batches(t))) for t in range(100, 104)]
    with JournalWriter.open(d, CFG, SYMBOLS, "test-1", fsync="none") as w:
        for t, b in tks:
            w.append_tick(t, b, session_start=t == 100)
    got = list(iter_journal(d))
    assert [(g.tick_id, g.batches) for g in got] == tks
    assert [g.session_start for g in got] == [True, False, False, False]


def test_rotation_sessions_and_zstd(tmp_path: Path) -> None:
    with JournalWriter.open(tmp_path, CFG, SYMBOLS, "test-1", rotate_ticks=4,
                            compress_closed=True) as w:
        for t in range(10, 19):
            w.append_tick(t, simple_tick(t), session_start=t == 10)
    with JournalWriter.open(tmp_path, CFG, SYMBOLS, "test-1", rotate_ticks=4) as w:
        with pytest.raises(ValueError, match="session_start=True"):
            w.append_tick(19, simple_tick(19), session_start=False)
        w.append_tick(30, simple_tick(30), session_start=True)
    names = [p.name for p in list_segments(tmp_path / "journal", JOURNAL_SUFFIX)]
    assert sum(n.endswith(".zst") for n in names) == 2 and len(names) == 4
    got = list(iter_journal(tmp_path))
    assert [g.tick_id for g in got] == [*range(10, 19), 30]
    assert [g.session_start for g in got] == [True] + [False] * 8 + [True]
    assert got[3].batches == simple_tick(13)
    seg = list_segments(tmp_path / "journal", JOURNAL_SUFFIX)[-1]
    assert iter_journal(compress_segment(seg)).__next__().tick_id == 30


def test_every_truncation_recovers_complete_ticks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    with JournalWriter.open(src, CFG, SYMBOLS, "test-1", fsync="none") as w:
        for t in range(5, 8):
            w.append_tick(t, simple_tick(t, 1), session_start=t == 5)
    (seg,) = list_segments(src / "journal", JOURNAL_SUFFIX)
    clean = seg.read_bytes()
    hl = int.from_bytes(clean[12:16], "little")
    ends = []
    off = hl
    while off < len(clean):
        off += int.from_bytes(clean[off + 4:off + 8], "little")
        ends.append(off)
    for cut in [c for c in range(len(clean)) if c >= hl - 40 or c % 41 == 0]:
        d = tmp_path / f"c{cut}"
        (d / "journal").mkdir(parents=True)
        (d / "journal" / seg.name).write_bytes(clean[:cut])
        w = JournalWriter.open(d, CFG, SYMBOLS, "test-1", fsync="none")
        kept = sum(e <= cut for e in ends)
        assert w.last_tick == (4 + kept if kept else None), cut
        w.close()
        assert [g.tick_id for g in iter_journal(d)] == list(range(5, 5 + kept))
        shutil.rmtree(d)


def test_mid_journal_corruption_is_refused(tmp_path: Path) -> None:
    with JournalWriter.open(tmp_path, CFG, SYMBOLS, "test-1") as w:
        for t in range(5, 8):
            w.append_tick(t, simple_tick(t), session_start=t == 5)
    (seg,) = list_segments(tmp_path / "journal", JOURNAL_SUFFIX)
    data = bytearray(seg.read_bytes())
    hl = int.from_bytes(data[12:16], "little")
    data[hl + 30] ^= 0xFF
    seg.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corruption inside the journal") as ei:
        JournalWriter.open(tmp_path, CFG, SYMBOLS, "test-1")
    assert ei.value.offset == hl
    with pytest.raises(StorageError):
        list(iter_journal(tmp_path))
