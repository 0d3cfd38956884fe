"""1-minute bars from engine input events, their file format and the dense grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine_adapters.evaluation.bar_rows import BarRows, append_rows, last_minutes
from engine_adapters.evaluation.bars import (
    BarBuilder,
    append_bars,
    bars_from_events,
    dense,
    load_bars,
)
from engine_core.events import (
    BookTickerReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

M = 60_000
T0 = 1_722_729_600_000


def trade(ts: int, p: float, q: float, sell: bool, sym: str = "BTCUSDT") -> TradeReceived:
    return TradeReceived(symbol=sym, exchange_ts=ts, price=p, qty=q, buyer_is_maker=sell)


def test_bars_sum_flows_and_carry_levels() -> None:
    evs = [trade(T0 + 1, 100, 1, True), trade(T0 + 2, 102, 2, False), trade(T0 + 3, 99, 1, True),
           OpenInterestReceived(symbol="BTCUSDT", exchange_ts=T0 + 4, open_interest=500.0),
           MarkPriceReceived(symbol="BTCUSDT", exchange_ts=T0 + 5, mark_price=100.5,
                             index_price=100.4, funding_rate=0.0001),
           LiquidationReceived(symbol="BTCUSDT", exchange_ts=T0 + 6, side=Side.SELL, price=99,
                               qty=2),
           LiquidationReceived(symbol="BTCUSDT", exchange_ts=T0 + 7, side=Side.BUY, price=101,
                               qty=1),
           BookTickerReceived(symbol="BTCUSDT", exchange_ts=T0 + 8, bid=99, bid_qty=1, ask=101,
                              ask_qty=1),
           trade(T0 + M + 5, 98, 1, True),
           trade(T0 + 3 * M, 97, 1, False)]
    b = bars_from_events(evs)["BTCUSDT"]
    assert list(b["minute_ms"]) == [T0, T0 + M, T0 + 3 * M]
    first = b[0]
    assert (first["open"], first["high"], first["low"], first["close"]) == (100, 102, 99, 99)
    assert first["base_volume"] == 4 and first["quote_volume"] == 100 + 204 + 99
    assert first["taker_sell_quote"] == 199 and first["trades"] == 3
    assert first["liq_long_quote"] == 198 and first["liq_short_quote"] == 101
    assert first["oi"] == 500 and first["oi_value"] == 500 * 99 and first["mid"] == 100
    # levels carry into later bars; flows do not
    assert b[2]["oi"] == 500 and b[2]["mark"] == 100.5 and b[2]["liq_long_quote"] == 0


def test_one_minute_of_grace_for_late_events() -> None:
    bb = BarBuilder()
    bb.feed(trade(T0 + M + 1, 100, 1, True))
    bb.feed(trade(T0 + 10, 90, 1, True))       # a minute before the first bar: dropped
    assert bb.late == 1
    bb.feed(trade(T0 + 2 * M, 101, 1, True))
    bb.feed(trade(T0 + M + 30, 99, 1, True))   # previous minute: still open, accepted
    bb.feed(trade(T0 + 4 * M, 102, 1, True))
    bb.feed(trade(T0 + 2 * M + 1, 1, 1, True))  # two minutes late: dropped
    assert bb.late == 2
    b = bb.flush()["BTCUSDT"]
    assert list(b["trades"]) == [2, 1, 1]
    assert b[0]["close"] == 99


def test_file_round_trip_append_and_torn_tail(tmp_path: Path) -> None:
    b = bars_from_events([trade(T0 + i * M, 100 + i, 1, i % 2 == 0) for i in range(5)])
    append_bars(tmp_path, {"BTCUSDT": b["BTCUSDT"][:3]})
    append_bars(tmp_path, {"BTCUSDT": b["BTCUSDT"][3:]})
    loaded = load_bars(tmp_path)["BTCUSDT"]
    assert loaded.tobytes() == b["BTCUSDT"].tobytes()
    with open(tmp_path / "BTCUSDT.bars", "ab") as f:
        f.write(b"\x00" * 17)  # a crash mid-append
    assert len(load_bars(tmp_path)["BTCUSDT"]) == 5
    (tmp_path / "X.bars").write_bytes(b"NOTBARS!" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not a bars file"):
        load_bars(tmp_path)


def test_dense_fills_gaps() -> None:
    b = bars_from_events([
        MarkPriceReceived(symbol="X", exchange_ts=T0, mark_price=50, index_price=50,
                          funding_rate=0),
        trade(T0 + 2 * M, 60, 1, True, "X"), trade(T0 + 5 * M, 70, 2, False, "X")])["X"]
    d = dense(b)
    assert list((d["minute_ms"] - T0) // M) == [0, 1, 2, 3, 4, 5]
    assert list(d["close"]) == [50, 50, 60, 60, 60, 70]
    assert list(d["quote_volume"]) == [0, 0, 60, 0, 0, 140]
    assert math.isnan(d["open"][1]) and np.all(d["mark"] == 50)


def test_feed_all_equals_feeding_one_event_at_a_time() -> None:
    """The batch path caches the open bar per (symbol, minute): late events, minutes going
    back and forth, two symbols interleaved and ignored events give the same bars and the
    same late count as one `feed` call per event."""
    import random

    rng = random.Random(7)
    evs: list[object] = []
    ts = T0
    for _ in range(3000):
        ts += rng.choice((0, 1, 500, 20_000, M)) - rng.choice((0, 0, 0, M, 2 * M + 1))
        sym = rng.choice(("BTCUSDT", "BTCUSDT", "ETHUSDT"))
        kind = rng.random()
        if kind < 0.7:
            evs.append(trade(ts, 100 + rng.random(), rng.random(), rng.random() < 0.5, sym))
        elif kind < 0.8:
            evs.append(BookTickerReceived(symbol=sym, exchange_ts=ts, bid=99.0, bid_qty=1.0,
                                          ask=99.0 + rng.random(), ask_qty=1.0))
        elif kind < 0.85:
            evs.append(OpenInterestReceived(symbol=sym, exchange_ts=ts,
                                            open_interest=rng.random()))
        elif kind < 0.9:
            evs.append(MarkPriceReceived(symbol=sym, exchange_ts=ts, mark_price=rng.random(),
                                         index_price=rng.random(), funding_rate=1e-4))
        elif kind < 0.95:
            evs.append(LiquidationReceived(symbol=sym, exchange_ts=ts, side=Side.SELL,
                                           price=100.0, qty=rng.random()))
        else:
            evs.append("not an event")
    one, batched = BarBuilder(), BarBuilder()
    for ev in evs:
        one.feed(ev)
    for i in range(0, len(evs), 97):
        batched.feed_all(evs[i:i + 97])
    assert one.late == batched.late > 0
    a, b = one.flush(), batched.flush()
    assert sorted(a) == sorted(b) == ["BTCUSDT", "ETHUSDT"]
    for sym in a:
        assert a[sym].tobytes() == b[sym].tobytes()


def test_rows_written_by_the_loop_are_the_records_of_bar_dtype(tmp_path: Path) -> None:
    """`append_rows` (struct, what `run` writes) gives the bytes `append_bars` (numpy) gives,
    NaN levels and integer prices included; `last_minutes` agrees with `load_bars`, a torn
    record after the last whole one included."""
    evs: list[object] = [trade(T0 + 1, 100, 1, True), trade(T0 + M + 2, 101.25, 0.5, False),
                         OpenInterestReceived(symbol="ETHUSDT", exchange_ts=T0 + 3,
                                              open_interest=7.5),
                         trade(T0 + 3 * M, 99, 2, False, "ETHUSDT")]
    rows_b, arrays_b = BarRows(), BarBuilder()
    rows_b.feed_all(evs)
    arrays_b.feed_all(evs)
    rows, arrays = rows_b.flush_rows(), arrays_b.flush()
    append_rows(tmp_path / "rows", rows)
    append_bars(tmp_path / "np", arrays)
    for sym in ("BTCUSDT", "ETHUSDT"):
        got = (tmp_path / "rows" / f"{sym}.bars").read_bytes()
        assert got == (tmp_path / "np" / f"{sym}.bars").read_bytes()
        assert math.isnan(load_bars(tmp_path / "rows")[sym][0]["mark"])
    with open(tmp_path / "rows" / "BTCUSDT.bars", "ab") as f:
        f.write(b"\x01" * 20)  # a torn record
    want = {s: int(a["minute_ms"][-1]) for s, a in load_bars(tmp_path / "rows").items()}
    assert last_minutes(tmp_path / "rows") == want == {"BTCUSDT": T0 + M, "ETHUSDT": T0 + 3 * M}
