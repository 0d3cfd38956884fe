"""A flush whose figures are known, run end to end: every output states them, each with its window.

The capture is calm (a 100.00 book with cent-sized noise, OI 1000, funding 0.08 % per 8 h),
then at tick `FLUSH` the book drops to 97.70, OI to 959 and a long liquidation of
$1,563,200 prints (and again 4 ticks later). `expected` re-derives each figure from its
definition (docs/concepts.md, "The evidence an alert states") — price vs its EMA over the move
window and that move over its own RMS, OI vs its EMA over the fast OI window, liquidations as
the decaying sum of the liquidation window — independently of the engine's code. The run's
UNWIND alert (alerts.jsonl: JSON and sentence), `export`'s ev_* columns, the live view's
market columns for that tick and `report`'s HTML must all state those numbers, with each
figure's own window, under two configs whose three windows differ.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import attrs
import pytest

import engine_core as ec
from engine_adapters.evidence_text import money
from engine_adapters.storage import iter_ticks
from engine_adapters.storage.evidence_store import read_evidence
from engine_app.cli import main
from engine_app.view import TerminalView
from engine_core.events import (
    BookTickerReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)
from engine_sim.synthetic_capture import write_capture
from tests.ux.test_evidence import wide_text_of

SYM = "BTCUSDT"
T0 = 1_700_000_000_000  # a tick boundary (x 250 ms)
N_TICKS = 2830
FLUSH = 2800
LIQ_QTY, LIQ_PRICE = 16_000.0, 97.7  # $1,563,200 a print
#: The capture ends 7.5 s after the flush. These tests check the figures and their windows,
#: not the entry hold (10 s by default since config v4, docs/rules.md section 13), so they
#: let UNWIND enter after 1 s.
HOLD = {"unwind_persist_ticks": 4}


def _books() -> list[tuple[float, float]]:
    rnd = random.Random(3)
    out = []
    for k in range(N_TICKS):
        bid = 97.69 if k >= FLUSH else round(99.99 + 0.01 * round(rnd.gauss(0, 1.5)), 2)
        out.append((bid, round(bid + 0.02, 2)))
    return out


BOOKS = _books()


def _events() -> list[tuple[int, ec.MarketEvent]]:
    out: list[tuple[int, ec.MarketEvent]] = []
    for k, (bid, ask) in enumerate(BOOKS):
        ts = T0 + k * 250 + 10
        mid = (bid + ask) / 2
        out.append((ts, BookTickerReceived(symbol=SYM, exchange_ts=ts, bid=bid, bid_qty=50.0,
                                           ask=ask, ask_qty=50.0)))
        out.append((ts + 1, TradeReceived(symbol=SYM, exchange_ts=ts + 1, price=bid, qty=10.0,
                                          buyer_is_maker=k % 2 == 0, trade_id=k + 1)))
        if k % 4 == 0:
            out.append((ts + 2, MarkPriceReceived(symbol=SYM, exchange_ts=ts + 2, mark_price=mid,
                                                  index_price=mid, funding_rate=0.0008)))
            out.append((ts + 3, OpenInterestReceived(
                symbol=SYM, exchange_ts=ts + 3, open_interest=1000.0 if k < FLUSH else 959.0)))
        if k in (FLUSH, FLUSH + 4):
            out.append((ts + 4, LiquidationReceived(symbol=SYM, exchange_ts=ts + 4,
                                                    side=Side.SELL, price=LIQ_PRICE,
                                                    qty=LIQ_QTY)))
    return out


@attrs.frozen
class Expected:
    move_pct: float
    move_sigma: float
    oi_change_pct: float
    liq_long_usd: float


def expected(cfg: ec.Config, at: int) -> Expected:
    """The figures of tick `at` (counted from the first), from their definitions."""
    f = cfg.features

    def alpha(ticks: int) -> float:
        return 2.0 / (ticks + 1)

    a_m, a_s = alpha(f.move_window_ticks), alpha(f.sigma_window_ticks)
    a_oi, a_liq = alpha(f.oi_fast_window_ticks), alpha(f.liq_window_ticks)
    ref = var = w = 0.0
    oi_avg = liq = 0.0
    move = sigma = oi_change = 0.0
    for k in range(at + 1):
        bid, ask = BOOKS[k]
        mid = (bid + ask) / 2
        ref = mid if k == 0 else ref + a_m * (mid - ref)
        move = mid / ref - 1
        var += a_s * (move * move - var)
        w += a_s * (1 - w)
        sigma = move / math.sqrt(var / w) if var > 0 else 0.0
        oi = 1000.0 if k < FLUSH else 959.0  # polled at k % 4 == 0; FLUSH is one
        oi_avg = oi if k == 0 else oi_avg + a_oi * (oi - oi_avg)
        oi_change = oi / oi_avg - 1
        liq += a_liq * ((LIQ_QTY * LIQ_PRICE if k in (FLUSH, FLUSH + 4) else 0.0) - liq)
    return Expected(move_pct=move * 100, move_sigma=sigma, oi_change_pct=oi_change * 100,
                    liq_long_usd=liq / a_liq)


#: config name -> (features changed, the windows the alert text must name: move, OI, liq)
CONFIGS = {
    "default": ({}, ("60 s", "60 s", "10 s"), ("60s", "60s", "10s")),
    "split": ({"move_window_ticks": 480, "oi_fast_window_ticks": 120, "liq_window_ticks": 80},
              ("2 min", "30 s", "20 s"), ("2m", "30s", "20s")),
}


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flush") / "flush.jsonl"
    write_capture(path, _events())
    return path


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_known_flush_is_stated_with_each_figures_window_everywhere(
        name: str, capture: Path, tmp_path: Path) -> None:
    changes, words, short = CONFIGS[name]
    cfg = ec.Config().evolve(features=changes, structural=HOLD)
    dd = tmp_path / "dd"
    toml = tmp_path / "flush.toml"
    toml.write_text("[features]\n" + "".join(f"{k} = {v}\n" for k, v in changes.items())
                    + "[structural]\n" + "".join(f"{k} = {v}\n" for k, v in HOLD.items()))
    args = ["run", str(capture), "--data-dir", str(dd), "--config", str(toml)]
    assert main(args) == 0
    lines = [json.loads(x) for x in (dd / "alerts.jsonl").read_text().splitlines() if x]
    unwind = next(d for d in lines if d["kind"] == "STRUCTURAL_UNWIND")
    tick0 = T0 // ec.TICK_MS + 1  # a tick is named by its end: T0 + 10 ms is in this one
    at = unwind["tick_id"] - tick0
    assert FLUSH <= at <= FLUSH + 8  # the flush raised it, within 2 s
    want = expected(cfg, at)
    ev = unwind["evidence"]
    # the numbers: the stored record's quantization (0.01 %, 0.01 sigma, 1 USD) at most
    assert ev["price"] == pytest.approx(97.7, abs=1e-9)
    assert ev["move_pct"] == pytest.approx(want.move_pct, abs=0.006)
    assert ev["move_sigma"] == pytest.approx(want.move_sigma, abs=0.006)
    assert ev["oi_change_pct"] == pytest.approx(want.oi_change_pct, abs=0.006)
    assert ev["liq_long_usd"] == pytest.approx(want.liq_long_usd, abs=1.0)
    assert ev["liq_short_usd"] == 0.0 and ev["oi"] == 959.0
    assert ev["funding_per_hour"] == pytest.approx(0.0001)  # 0.08 % over the 8-h default
    f = cfg.features
    windows = (f.move_window_ticks / 4, f.oi_fast_window_ticks / 4, f.liq_window_ticks / 4)
    assert (ev["move_window_s"], ev["oi_window_s"], ev["liq_window_s"]) == windows
    assert ev["basis"] == "mean"
    # the sentence: each figure with its own window
    m = "\u2212"
    text = unwind["evidence_text"]
    assert f"OI {m}{abs(ev['oi_change_pct']):.1f} % vs {words[1]} avg" in text
    assert (f"{money(ev['liq_long_usd'])} of longs liquidated ({words[2]} decaying sum)"
            in text)
    assert (f"price {m}{abs(ev['move_pct']):.1f} % vs {words[0]} avg = "
            f"{abs(ev['move_sigma']):.1f}\u03c3") in text
    assert "funding 0.0100 %/h" in text
    # the stock of leverage and the basis, from the same evidence record
    plain = text.replace(m, "").replace("+", "")
    assert f"and {abs(ev['oi_build_pct']):.0f} % vs 24 h norm" in plain
    assert text.endswith("(price vs index)") and ev["price_vs_index_pct"] is not None

    # export: the same figures and windows in the ev_* columns of the alert's row
    import pandas as pd

    assert main(["export", str(dd), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    df = pd.read_csv(tmp_path / "x.csv")
    row = df[(df["tick_id"] == unwind["tick_id"]) & (df["token_id"] == 0)].iloc[0]
    for col, key in (("ev_price", "price"), ("ev_move_pct", "move_pct"),
                     ("ev_move_sigma", "move_sigma"), ("ev_oi_change_pct", "oi_change_pct"),
                     ("ev_liq_long", "liq_long_usd"), ("ev_funding_per_hour", "funding_per_hour"),
                     ("ev_move_window_s", "move_window_s"), ("ev_oi_window_s", "oi_window_s"),
                     ("ev_liq_window_s", "liq_window_s")):
        assert row[col] == pytest.approx(ev[key]), col

    # the live view of that tick: the records as step gave them, with their evidence bytes
    stored = read_evidence(dd)
    tick = next(t for t in iter_ticks(dd) if t.tick_id == unwind["tick_id"])
    recs = ec.TickRecords(tick.records, b"", stored[(tick.tick_id, 0)].to_bytes())
    out = wide_text_of(TerminalView(), (SYM,), recs, [], None, "live", config=cfg)
    for s in (f"move {short[0]}", f"OI {short[1]}", f"liq {short[2]}", "97.70",
              f"{ev['move_pct']:+.2f}%", f"{ev['move_sigma']:+.1f}",
              f"{ev['oi_change_pct']:+.2f}%", "+0.0100%", f"{money(ev['liq_long_usd'])} L"):
        assert s in out, s

    # report: the alert's sentence and the windows, in the same words
    assert main(["report", str(dd), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert text in page
    assert (f"evidence: move vs {words[0]} avg (\u03c3: the symbol&#x27;s own RMS of that "
            f"move), OI vs {words[1]} avg, liquidations {words[2]} decaying sum") in page


def test_the_live_views_update_path_shows_the_sessions_last_tick() -> None:
    """What `live` does each tick (`Output.on_tick`): `update(session.last_records, ...,
    config=session.cfg)`; the refresh thread then draws the core's evidence of that tick."""
    import io

    from rich.console import Console

    from engine_app.bootstrap import run_events
    from tests.drive import memory_session

    cfg = ec.Config()
    session, _log = memory_session(cfg, (SYM,))
    end = T0 + (FLUSH + 2) * 250  # two ticks into the flush: before its alert
    run_events(session, [(t, e) for t, e in _events() if t < end])
    recs = session.last_records
    at = recs[0].tick_id - (T0 // ec.TICK_MS + 1)
    assert at == FLUSH + 1
    want = expected(cfg, at)
    buf = io.StringIO()
    view = TerminalView(Console(file=buf, width=200), refresh_per_second=20)
    with view:
        view.update(session.symbols, recs, session.recent_alerts, None, "live", config=cfg)
    got = buf.getvalue()
    for s in ("move 60s", "\u03c3", "OI 60s", "liq 10s", "97.70", f"{want.move_pct:+.2f}%",
              f"{want.move_sigma:+.1f}", f"{want.oi_change_pct:+.2f}%", "+0.0100%",
              f"{money(want.liq_long_usd)} L"):
        assert s in got, s
    # without the config the view cannot name the windows, so it shows no market columns
    buf2 = io.StringIO()
    bare = TerminalView(Console(file=buf2, width=200), refresh_per_second=20)
    with bare:
        bare.update(session.symbols, recs, (), None, "live")
    assert "move 60s" not in buf2.getvalue() and SYM in buf2.getvalue()
