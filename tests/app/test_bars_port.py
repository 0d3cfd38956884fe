"""Every `run` data dir gets DIR/bars, equal to the bars rebuilt from its journal."""

from __future__ import annotations

from pathlib import Path

import engine_core as ec
from engine_adapters.evaluation.bars import bars_from_journal, load_bars
from engine_adapters.evaluation.evaluate import evaluate_dir
from engine_app.bootstrap import open_session, run_events
from engine_app.datadir import DataDir
from engine_core.events import LiquidationReceived, OpenInterestReceived, Side, TradeReceived

T0 = 1_722_816_000_000  # 2024-08-05 00:00 UTC


def _events(minutes: int, start: int = T0) -> list[tuple[int, ec.MarketEvent]]:
    out: list[tuple[int, ec.MarketEvent]] = []
    for s in range(minutes * 60):
        ts = start + s * 1000
        for sym, px in (("BTCUSDT", 60_000.0), ("ETHUSDT", 3_000.0)):
            out.append((ts + 5, TradeReceived(symbol=sym, exchange_ts=ts, price=px + s % 7,
                                              qty=0.1, buyer_is_maker=s % 2 == 0,
                                              trade_id=s + 1)))
            if s % 5 == 0:
                out.append((ts + 6, OpenInterestReceived(symbol=sym, exchange_ts=ts,
                                                         open_interest=1000.0 + s)))
            if s % 97 == 0:
                out.append((ts + 7, LiquidationReceived(symbol=sym, exchange_ts=ts,
                                                        side=Side.SELL, price=px, qty=0.5)))
    return out


def _run(dd: DataDir, events: list[tuple[int, ec.MarketEvent]]) -> None:
    s = open_session(dd, ec.Config(), ("BTCUSDT", "ETHUSDT"), engine_version="test",
                     fsync="none")
    try:
        run_events(s, events)
    finally:
        s.close()


def test_run_writes_the_journal_bars(tmp_path: Path) -> None:
    dd = DataDir.at(tmp_path / "dd")
    _run(dd, _events(5))
    on_disk = load_bars(dd.bars)
    rebuilt = bars_from_journal(dd.root)
    assert set(on_disk) == {"BTCUSDT", "ETHUSDT"}
    for sym, arr in rebuilt.items():
        assert len(arr) == 5
        assert on_disk[sym].tobytes() == arr.tobytes()  # NaN levels too
    assert on_disk["BTCUSDT"]["liq_long_quote"].sum() == 60_000.0 * 0.5 * 4
    assert evaluate_dir(dd.root).bars_source == "bars files"


def test_restart_never_writes_a_minute_twice(tmp_path: Path) -> None:
    dd = DataDir.at(tmp_path / "dd")
    events = _events(6)
    half = len(events) // 2 + 3  # stop in the middle of minute 3
    _run(dd, events[:half])
    first = load_bars(dd.bars)["BTCUSDT"]
    _run(dd, events[half:])
    bars = load_bars(dd.bars)["BTCUSDT"]
    minutes = bars["minute_ms"]
    assert list(minutes) == sorted(set(minutes)) and len(minutes) == 6
    assert bars[: len(first)].tobytes() == first.tobytes()
