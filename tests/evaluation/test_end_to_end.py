"""fetch -> import -> run -> evaluate through the CLI, and evaluate on the real captures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from engine_app.cli import main
from engine_sim.archive_server import ArchiveServer
from engine_sim.archive_tree import Flush, build_tree
from tests.fixtures_path import BINANCE_FIXTURES

DAY = dt.date(2024, 8, 5)
REAL = BINANCE_FIXTURES.parent / "real"


def _json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_fetch_import_run_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote, local = tmp_path / "remote", tmp_path / "archive"
    build_tree(remote, symbols=["BTCUSDT", "ETHUSDT"], dates=[DAY], hours=1.0,
               flushes={("BTCUSDT", DAY): Flush(minute=35), ("ETHUSDT", DAY): Flush(minute=37)},
               headerless={"aggTrades"}, missing={("bookTicker", "ETHUSDT", DAY)})
    with ArchiveServer(remote) as srv:
        assert main(["archive", "fetch", "--symbols", "BTCUSDT,ETHUSDT", "--start", str(DAY),
                     "--end", str(DAY), "--dir", str(local), "--base-url", srv.base_url,
                     "--json"]) == 0
    assert _json(capsys)["missing"] == [
        "data/futures/um/daily/bookTicker/ETHUSDT/ETHUSDT-bookTicker-2024-08-05.zip"]
    cap = tmp_path / "cap.jsonl.gz"
    assert main(["archive", "import", str(local), "--out", str(cap)]) == 0
    dd = tmp_path / "dd"
    assert main(["run", str(cap), "--data-dir", str(dd), "--json"]) == 0
    capsys.readouterr()
    report = tmp_path / "report.html"
    assert main(["evaluate", str(dd), "--json", "--out", str(report)]) == 0
    doc = _json(capsys)
    events = doc["events"]
    assert [(e["symbol"], e["direction"], e["market"]) for e in events] == [
        ("BTCUSDT", "long_flush", True), ("ETHUSDT", "long_flush", True)]
    onset = int(dt.datetime(2024, 8, 5, 0, 35, tzinfo=dt.UTC).timestamp() * 1000)
    assert abs(events[0]["onset_ms"] - onset) <= 4 * 60_000
    assert all(-0.08 < e["drawdown"] < -0.04 and e["oi_change"] < -0.04 for e in events)
    scores = doc["scores"]
    assert {"STRUCTURAL_UNWIND", "BASELINE_OI_FUNDING", "BASELINE_RANDOM"} <= set(scores)
    for k in scores.values():
        assert set(k) >= {"recall", "precision", "lead_ms", "detection_delay_ms",
                          "false_alarms_per_symbol_day"}
    assert abs(sum(doc["state_share"].values()) - 1) < 1e-9
    page = report.read_text()
    assert page.count("data:image/png;base64,") >= 1 and "BTCUSDT" in page
    # the table form names every kind
    assert main(["evaluate", str(dd)]) == 0
    table = capsys.readouterr().out
    assert "STRUCTURAL_UNWIND" in table and "BASELINE_RANDOM" in table


@pytest.mark.parametrize("name", ["real_cryptofeed_usdm_4sym_20210722T2225",
                                  "real_hftbt_usdm_btc_20230404T2358"])
def test_real_captures_have_no_event_so_alerts_are_false_alarms(
        name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dd = tmp_path / "dd"
    assert main(["run", str(REAL / f"{name}.jsonl.gz"), "--data-dir", str(dd), "--json"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(dd), "--json"]) == 0
    doc = _json(capsys)
    assert doc["events"] == []
    for kind, k in doc["scores"].items():
        assert k["recall"]["1h"] is None, kind  # nothing to recall
        assert k["false_alarms"] == k["n_alerts"], kind


def test_evaluate_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "neither bars/ nor journal/" in capsys.readouterr().err
    (tmp_path / "r.toml").write_text("bogus = 1\n")
    assert main(["evaluate", str(tmp_path), "--rules", str(tmp_path / "r.toml")]) == 2
    assert "unknown labelling rule" in capsys.readouterr().err
