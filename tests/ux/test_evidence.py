"""Each alert states its evidence in alerts.jsonl, and verify still reproduces the alerts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import engine_core as ec
from engine_adapters.evidence_text import (
    AlertEvidence,
    Basis,
    evidence_from_json,
    evidence_text,
)
from engine_app.cli import main
from engine_app.evidence_port import WINDOW_TICKS, EvidenceTracker
from engine_app.view import TerminalView
from engine_core.canonical import CanonicalBatch, CanonicalEvent
from engine_core.events import (
    SOURCE_OF,
    BookTickerReceived,
    FundingInfoReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
)
from engine_core.states import StructuralState
from tests.ux.test_view import rec, text_of


def _batch(tick: int, *events: ec.MarketEvent) -> tuple[CanonicalBatch, ...]:
    evs = tuple(CanonicalEvent(token_id=0, source=SOURCE_OF[type(e)], exchange_ts=tick * 250,
                               local_seq=i, payload=e) for i, e in enumerate(events))
    return (CanonicalBatch(token_id=0, tick_id=tick, events=evs),)


def _book(ts: int, mid: float) -> BookTickerReceived:
    return BookTickerReceived(symbol="BTCUSDT", exchange_ts=ts, bid=mid - 0.5, bid_qty=1.0,
                              ask=mid + 0.5, ask_qty=1.0)


def test_the_tracker_states_the_last_minute() -> None:
    tr = EvidenceTracker(("BTCUSDT",))
    tr.set_interval("BTCUSDT", 4)
    t0 = 1000
    tr.add_tick(t0, _batch(t0, _book(0, 100.0), OpenInterestReceived(
        symbol="BTCUSDT", exchange_ts=0, open_interest=1000.0)))
    # a liquidation before the window starts is not counted
    tr.add_tick(t0 + 1, _batch(t0 + 1, LiquidationReceived(
        symbol="BTCUSDT", exchange_ts=1, side=Side.SELL, price=100.0, qty=5.0)))
    for k in range(2, WINDOW_TICKS + 1):
        tr.add_tick(t0 + k, _batch(t0 + k))
    end = t0 + WINDOW_TICKS + 1
    tr.add_tick(end, _batch(end, _book(2, 97.7), OpenInterestReceived(
        symbol="BTCUSDT", exchange_ts=2, open_interest=959.0), LiquidationReceived(
        symbol="BTCUSDT", exchange_ts=2, side=Side.SELL, price=98.0, qty=32_000.0),
        LiquidationReceived(symbol="BTCUSDT", exchange_ts=2, side=Side.BUY, price=98.0,
                            qty=10.0), MarkPriceReceived(
        symbol="BTCUSDT", exchange_ts=2, mark_price=97.6, index_price=97.8,
        funding_rate=0.0004)))
    ev = tr.evidence(0)
    assert (ev.move_window_s, ev.oi_window_s, ev.liq_window_s) == (60, 60, 60)
    assert ev.price == 97.7 and ev.oi == 959.0
    assert ev.move_pct == pytest.approx(-2.3) and ev.oi_change_pct == pytest.approx(-4.1)
    assert ev.liq_long_usd == pytest.approx(3_136_000.0) and ev.liq_short_usd == 980.0
    assert ev.funding_per_hour == pytest.approx(0.0001) and (ev.mark, ev.index) == (97.6, 97.8)
    assert evidence_text(ev) == ("OI \u22124.1 % in 60 s, $3.14 M of longs and $980 of shorts "
                                 "liquidated in 60 s, price \u22122.3 % in 60 s, "
                                 "funding 0.0100 %/h, basis \u22120.102 % (price vs index)")
    with pytest.raises(ValueError, match="BTCUSDT: funding interval must be > 0"):
        tr.set_interval("BTCUSDT", 0)
    # a fundingInfo answer sets the interval the same way (1 h: the rate is the hourly rate)
    nxt = end + 1
    tr.add_tick(nxt, _batch(nxt, FundingInfoReceived(symbol="BTCUSDT", exchange_ts=3,
                                                     interval_hours=1, cap=0.03, floor=-0.03)))
    assert tr.evidence(0).funding_per_hour == pytest.approx(0.0004)


def test_before_any_data_nothing_is_stated() -> None:
    tr = EvidenceTracker(("BTCUSDT",))
    assert evidence_text(tr.evidence(0)) == ""
    tr.add_tick(5, _batch(5))
    ev = tr.evidence(0)
    assert ev.price is None and ev.oi_change_pct is None and ev.move_window_s is None


def test_alerts_jsonl_states_the_evidence_and_verify_passes(data_dir: Path) -> None:
    lines = [json.loads(x) for x in (data_dir / "alerts.jsonl").read_text().splitlines()]
    token = [d for d in lines if d["token_id"] >= 0]
    market = [d for d in lines if d["token_id"] < 0]
    assert token and market
    for d in token:
        ev = evidence_from_json(d["evidence"])
        assert d["evidence_text"] == evidence_text(ev)
        # the demo config's windows: move and OI over 8 ticks, liquidations over 4
        assert ev.price is not None and ev.price > 0
        assert (ev.move_window_s, ev.oi_window_s, ev.liq_window_s) == (2.0, 2.0, 1.0)
    unwinds = [d for d in token if d["kind"] == "STRUCTURAL_UNWIND"]
    assert any("liquidated" in d["evidence_text"] for d in unwinds)
    assert all("evidence" not in d for d in market)
    assert main(["verify", str(data_dir)]) == 0


def wide_text_of(view: TerminalView, *args: object, **kw: object) -> str:
    """The view on a 200-column terminal (the market columns make the table wide)."""
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(view.render(*args, **kw))  # type: ignore[arg-type]
    return console.export_text()


def test_the_live_view_shows_the_market_columns() -> None:
    syms = ("AAAUSDT", "BBBUSDT")
    recs = [rec(0, StructuralState.UNWIND, 5000), rec(1, StructuralState.BUILD, 9000)]
    ev = (AlertEvidence(price=60_120.5, move_pct=-2.3, move_sigma=-4.1, oi_change_pct=-4.1,
                        move_window_s=60, oi_window_s=30, liq_window_s=10,
                        liq_long_usd=3.2e6, liq_short_usd=0.0, funding_per_hour=0.0001,
                        basis=Basis.MEAN),
          AlertEvidence())
    out = wide_text_of(TerminalView(), syms, recs, [], None, "live", evidence=ev)
    for s in ("AAAUSDT", "UNWIND", "price", "move 60s", "\u03c3", "OI 30s", "fund/h",
              "liq 10s", "60,120.5", "-2.30%", "-4.1", "-4.10%", "+0.0100%", "$3.2 M L",
              "vs their window's average", "decaying sum of the window"):
        assert s in out, s
    row_b = next(line for line in out.splitlines() if "BBBUSDT" in line)
    assert row_b.count(" - ") >= 5  # unknown facts are dashes, never zeros
    assert "move" not in text_of(TerminalView(), syms, recs, [], None, "live")


def test_export_has_the_market_columns_of_the_last_closed_minute(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    import pandas as pd

    from engine_adapters.evaluation.bars import load_bars
    from engine_app.export_columns import COLUMNS

    assert main(["export", str(data_dir), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    df = pd.read_csv(tmp_path / "x.csv")
    assert set(COLUMNS) <= set(df.columns)
    btc = df[df["symbol"] == "BTCUSDT"]
    bars = load_bars(data_dir / "bars")["BTCUSDT"]
    # a tick in the second minute shows the first minute's bar: never a later value
    m1 = int(bars["minute_ms"][1])
    row = btc[btc["tick_id"] == m1 // 250 + 10].iloc[0]
    assert row["oi"] == bars["oi"][0] and row["mark"] == bars["mark"][0]
    assert row["mid"] == bars["mid"][0] and row["liq_long_1m"] == bars["liq_long_quote"][0]
    assert np.isnan(row["move_1m_pct"])  # no bar before the first one to compare with
    assert not (btc["oi"] == bars["oi"][1]).any() or bars["oi"][1] == bars["oi"][0]
    # the first minute has no closed bar before it: unknown, not zero
    first = btc[btc["tick_id"] * 250 <= int(bars["minute_ms"][0]) + 60_000]
    assert first["mid"].isna().all() and first["oi"].isna().all()
    bare = tmp_path / "bare"
    import shutil
    shutil.copytree(data_dir, bare, ignore=shutil.ignore_patterns("bars"))
    assert main(["export", str(bare), "--format", "csv", "--out", str(tmp_path / "y.csv")]) == 0
    assert pd.read_csv(tmp_path / "y.csv")["oi"].isna().all()


def test_alert_evidence_is_the_cores_record_of_its_tick(data_dir: Path) -> None:
    from engine_adapters.evidence_text import evidence_from_record
    from engine_adapters.storage.evidence_store import read_evidence
    from engine_core.evidence import EvidenceWindows

    stored = read_evidence(data_dir)
    ticks = {k[0] for k in stored}
    from engine_adapters.storage.log_reader import scan_log
    hdr = next(iter(scan_log(data_dir)))[0].header
    assert len(stored) == len(ticks) * len(hdr.symbols)  # one record per token per tick
    cfg = ec.Config.from_dict(json.loads(hdr.config_json))
    windows = EvidenceWindows.from_config(cfg)
    lines = [json.loads(x) for x in (data_dir / "alerts.jsonl").read_text().splitlines()]
    token = [d for d in lines if d["token_id"] >= 0]
    with_sigma = 0
    for d in token:
        ev = evidence_from_record(stored[(d["tick_id"], d["token_id"])], windows)
        assert evidence_from_json(d["evidence"]) == ev
        assert d["evidence_text"] == evidence_text(ev)
        with_sigma += ev.move_sigma is not None
    assert with_sigma  # sigma is filled once the volatility norm is known
    assert any("σ" in d["evidence_text"] and " = " in d["evidence_text"] for d in token)


def test_verify_names_a_tampered_evidence_record(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    import attrs

    from engine_adapters.storage import verify
    from engine_adapters.storage.evidence_store import evidence_files
    from engine_core.evidence import EvidenceRecord

    dd = tmp_path / "dd"
    shutil.copytree(data_dir, dd)
    alert = next(d for d in map(json.loads, (dd / "alerts.jsonl").read_text().splitlines())
                 if d["token_id"] >= 0)
    for path in evidence_files(dd):
        data = bytearray(path.read_bytes())
        for off in range(0, len(data), 64):
            r = EvidenceRecord.from_bytes(bytes(data[off:off + 64]))
            if (r.tick_id, r.token_id) == (alert["tick_id"], alert["token_id"]):
                # a valid record (CRC recomputed) that says something else
                data[off:off + 64] = attrs.evolve(r, price=r.price + 10**10).to_bytes()
                path.write_bytes(bytes(data))
    rep = verify(dd)
    assert rep.exit_code == 1 and rep.breach is not None
    assert (rep.breach.tick_id, rep.breach.token_id) == (alert["tick_id"], alert["token_id"])
    assert rep.breach.field == "evidence.price"
    assert main(["verify", str(dd)]) == 1
    # a flipped byte without a new CRC is corruption, naming the file
    path = evidence_files(dd)[0]
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    path.write_bytes(bytes(data))
    rep = verify(dd)
    assert rep.exit_code == 2 and rep.file == str(path)


def test_verify_compares_only_evidence_in_the_current_wording(data_dir: Path,
                                                              tmp_path: Path) -> None:
    """A changed sentence in today's wording is a breach; the same sentence in a line an
    earlier release wrote (no `evidence_wording`, or another one) is counted, not compared."""
    import shutil

    from engine_adapters.evidence_text import EVIDENCE_WORDING
    from engine_adapters.storage import verify

    dd = tmp_path / "dd"
    shutil.copytree(data_dir, dd)
    path = dd / "alerts.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    stated = [d for d in lines if "evidence_text" in d]
    assert stated and all(d["evidence_wording"] == EVIDENCE_WORDING for d in stated)

    def rewrite(wording: object) -> None:
        out = []
        for d in lines:
            if "evidence_text" in d:
                d = dict(d, evidence_text=d["evidence_text"] + " (older words)")
                if wording is None:
                    d.pop("evidence_wording")
                else:
                    d["evidence_wording"] = wording
            out.append(json.dumps(d, sort_keys=True, separators=(",", ":")) + "\n")
        path.write_text("".join(out))

    rewrite(EVIDENCE_WORDING)
    rep = verify(dd)
    assert rep.exit_code == 1 and rep.breach is not None
    assert rep.breach.field == "evidence_text"
    for older in (None, EVIDENCE_WORDING - 1):
        rewrite(older)
        rep = verify(dd)
        assert rep.exit_code == 0, rep.message
        assert rep.n_evidence_older == len(stated)
        assert f"{len(stated)} state their evidence in an earlier release's wording" \
            in rep.message


def test_replay_compare_covers_the_evidence_bytes(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    from engine_adapters.storage.evidence_store import evidence_files
    from engine_app.bootstrap import replay_journal
    from engine_core.evidence import EvidenceRecord

    rep = replay_journal(data_dir, tmp_path / "re", compare=True)
    assert rep.exit_code == 0, rep.message
    assert evidence_files(tmp_path / "re")
    dd = tmp_path / "dd"
    shutil.copytree(data_dir, dd)
    path = evidence_files(dd)[0]
    data = bytearray(path.read_bytes())
    r = EvidenceRecord.from_bytes(bytes(data[64 * 7:64 * 8]))
    import attrs
    data[64 * 7:64 * 8] = attrs.evolve(r, move_sigma=r.move_sigma + 1).to_bytes()
    path.write_bytes(bytes(data))
    rep = replay_journal(dd, tmp_path / "re2", compare=True)
    assert rep.exit_code == 1 and rep.difference is not None
    d = rep.difference
    assert (d.tick_id, d.token_id, d.field) == (r.tick_id, r.token_id, "evidence move_sigma")


def test_export_has_the_cores_per_tick_evidence_columns(data_dir: Path, tmp_path: Path) -> None:
    import shutil

    import pandas as pd

    from engine_adapters.storage.evidence_store import read_evidence
    from engine_app.export_columns import EV_COLUMNS

    assert main(["export", str(data_dir), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    df = pd.read_csv(tmp_path / "x.csv")
    assert set(EV_COLUMNS) <= set(df.columns)
    stored = read_evidence(data_dir)
    checked = 0
    for row in df.iloc[::97].itertuples():
        r = stored[(int(row.tick_id), int(row.token_id))]
        for col, want in (("ev_price", r.price_value), ("ev_oi", r.oi_value),
                          ("ev_move_sigma", r.move_sigma_value), ("ev_move_pct", r.move_pct),
                          ("ev_liq_long", float(r.liq_long_window))):
            got = getattr(row, col)
            assert (np.isnan(got) if want is None else got == pytest.approx(want)), col
        checked += 1
    assert checked > 10 and df["ev_move_sigma"].notna().any()
    old = tmp_path / "old"  # a dir written before the core's evidence: NaN, bars still there
    shutil.copytree(data_dir, old, ignore=shutil.ignore_patterns("evidence"))
    assert main(["export", str(old), "--format", "csv", "--out", str(tmp_path / "y.csv")]) == 0
    dy = pd.read_csv(tmp_path / "y.csv")
    assert dy["ev_price"].isna().all() and dy["mid"].notna().any()
