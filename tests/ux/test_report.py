"""The researcher's report: timelines of a real offline run as PNG, HTML and a Figure."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import numpy as np
import pytest

from engine_adapters.evaluation.bars import load_bars
from engine_adapters.storage import read_log
from engine_app.report import figure_for, log_symbols, render_report, thin
from engine_core.evidence import PRICE_SCALE
from engine_core.states import AlertKind
from tests.ux.conftest import SYMBOLS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_figure_has_a_market_panel_and_price_and_state_panels_per_symbol(
        data_dir: Path) -> None:
    fig = figure_for(data_dir)
    # per symbol: a price panel (from DIR/bars), the state panel and its trigger-cost twin
    assert len(fig.axes) == 1 + 3 * len(SYMBOLS)
    labels = [ax.get_ylabel() for ax in fig.axes]
    for sym in SYMBOLS:
        assert sym in labels
    assert labels.count("price") == len(SYMBOLS)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["phase", "cluster"]


def test_price_panels_draw_the_cores_evidence_price_and_mark_each_alert(data_dir: Path) -> None:
    import matplotlib.dates as mdates

    from engine_adapters.storage.evidence_store import read_evidence

    fig = figure_for(data_dir, ["BTCUSDT"])
    price = next(ax for ax in fig.axes if ax.get_ylabel() == "price")
    (line,) = price.get_lines()[:1]
    tok = SYMBOLS.index("BTCUSDT")
    stored = read_evidence(data_dir)
    ev = {t: r for (t, k), r in stored.items() if k == tok and r.price_value is not None}
    # one point per tick the core knew a price in (this run is below MAX_POINTS ticks)
    assert len(line.get_xdata()) == len(ev)
    # each point is the core's evidence price of its tick, at that tick's time
    ticks = sorted(ev)
    want_x = mdates.date2num(  # type: ignore[no-untyped-call]
        (np.array(ticks, dtype="int64") * 250).astype("datetime64[ms]"))
    assert np.allclose(line.get_xdata(), want_x)
    assert np.allclose(line.get_ydata(), [ev[t].price / PRICE_SCALE for t in ticks])
    arr = read_log(data_dir)
    btc = arr[(arr["token_id"] == tok) & (arr["alerts"] != 0)]
    token_bits = sum(1 << (int(k) - 1) for k in AlertKind if k not in (
        AlertKind.NO_ALERT, AlertKind.SYSTEMIC_ALERT))
    n_marks = sum(bin(int(m) & token_bits).count("1") for m in btc["alerts"])
    assert n_marks > 0 and len(price.get_lines()) == 1 + n_marks
    assert {t.get_text().strip() for t in price.texts} <= {"FRAG", "TRIG", "UNW", "15M"}
    # the title names the evidence's windows (the demo config: 8, 8 and 4 ticks)
    assert ("evidence: move vs 2 s avg (\u03c3: the symbol's own RMS of that move), OI vs 2 s "
            "avg, liquidations 1 s decaying sum") in fig.axes[0].get_title(loc="left")


def test_without_evidence_the_price_is_the_bars_close(data_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"  # a dir written before the core's evidence records
    shutil.copytree(data_dir, old, ignore=shutil.ignore_patterns("evidence"))
    fig = figure_for(old, ["BTCUSDT"])
    price = next(ax for ax in fig.axes if ax.get_ylabel() == "price")
    bars = load_bars(data_dir / "bars")["BTCUSDT"]
    assert len(price.get_lines()[0].get_xdata()) == len(bars)  # one point per minute
    assert "evidence:" not in fig.axes[0].get_title(loc="left")


def test_without_bars_or_evidence_the_figure_has_no_price_panels(data_dir: Path,
                                                                 tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(data_dir, bare, ignore=shutil.ignore_patterns("bars", "evidence"))
    fig = figure_for(bare, ["BTCUSDT", "ETHUSDT"])
    assert len(fig.axes) == 1 + 2 * 2
    # evidence alone is enough for a price panel
    ev_only = tmp_path / "ev_only"
    shutil.copytree(data_dir, ev_only, ignore=shutil.ignore_patterns("bars"))
    assert len(figure_for(ev_only, ["BTCUSDT", "ETHUSDT"]).axes) == 1 + 3 * 2


def test_a_subset_of_symbols_gives_fewer_panels(data_dir: Path) -> None:
    fig = figure_for(data_dir, ["BTCUSDT", "ETHUSDT"])
    assert len(fig.axes) == 1 + 3 * 2


def test_png_report_is_a_non_empty_png(data_dir: Path, tmp_path: Path) -> None:
    out = render_report(data_dir, tmp_path / "sub" / "report.png")
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 20_000


def test_html_report_embeds_the_image_and_lists_the_alerts(data_dir: Path, tmp_path: Path
                                                           ) -> None:
    out = render_report(data_dir, tmp_path / "report.html", symbols=["BTCUSDT"])
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64,iVBORw0KGgo" in page  # base64 of the PNG magic
    for kind in ("STRUCTURAL_FRAGILE", "STRUCTURAL_UNWIND", "SYSTEMIC_ALERT"):
        assert kind in page
    n_alerts = sum(1 for line in (data_dir / "alerts.jsonl").read_text().splitlines() if line)
    assert f"Alerts ({n_alerts})" in page
    # each alert's evidence sentence, as alerts.jsonl states it, and the windows it uses
    import json
    said = [json.loads(x).get("evidence_text") for x in
            (data_dir / "alerts.jsonl").read_text().splitlines() if x]
    stated = [x for x in said if x]
    assert stated and all(f"<td>{html.escape(x)}</td>" in page for x in stated)
    assert "<p>evidence: move vs 2 s avg" in page and "<th>evidence</th>" in page


def test_symbols_come_from_the_log_header(data_dir: Path) -> None:
    assert log_symbols(data_dir) == SYMBOLS


def test_bad_requests_say_what_is_wrong(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"NOPEUSDT.*the log holds BNBUSDT"):
        figure_for(data_dir, ["NOPEUSDT"])
    with pytest.raises(ValueError, match=r"\.png or \.html"):
        render_report(data_dir, tmp_path / "report.pdf")


def test_thinning_keeps_every_state_change_and_both_ends() -> None:
    n = 50_000
    fsm = np.zeros(n, dtype=np.uint8)
    fsm[12_345:12_350] = 3
    fsm[40_001] = 4
    changes = np.zeros(n, dtype=bool)
    changes[1:] = fsm[1:] != fsm[:-1]
    idx = thin(changes, limit=1000)
    assert len(idx) < 1100
    assert {0, n - 1, 12_344, 12_345, 12_349, 12_350, 40_000, 40_001, 40_002} <= set(idx.tolist())
    # a step line through the kept points shows the same states as the full series
    kept = fsm[idx]
    assert set(kept.tolist()) == {0, 3, 4}
    assert len(thin(changes[:800], limit=1000)) == 800
