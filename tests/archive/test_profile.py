"""The archive input profile: named in the manifest and every report, and the engine works on it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from engine_adapters.storage import read_log
from engine_app.cli import main
from engine_core.states import Quality
from engine_sim.archive_tree import build_tree


def test_an_archive_run_is_named_as_such_and_never_permanently_blind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree, cap, dd = tmp_path / "tree", tmp_path / "cap.jsonl.gz", tmp_path / "dd"
    build_tree(tree, symbols=["BTCUSDT", "ETHUSDT"], dates=[dt.date(2024, 8, 4)], hours=0.5,
               seed=3)
    assert main(["archive", "import", str(tree), "--out", str(cap)]) == 0
    assert main(["run", str(cap), "--data-dir", str(dd), "--config", "archive"]) == 0
    assert json.loads((dd / "manifest.json").read_text())["config_profile"] == "archive"

    # after the warm-up no symbol is blind: depth bands are its book, 5-min OI is not stale
    q = read_log(dd)["quality"].astype(int)
    past_warmup = q[(q & int(Quality.WARMUP)) == 0]
    assert len(past_warmup) > 0
    for flag in (Quality.NO_BOOK, Quality.STALE_BOOK, Quality.STALE_OI, Quality.STALE_MARK):
        assert not ((past_warmup & int(flag)) != 0).any(), flag.name

    capsys.readouterr()
    assert main(["evaluate", str(dd), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config_profile"] == "archive"
    assert main(["evaluate", str(dd)]) == 0
    assert "not a live-equivalent run" in capsys.readouterr().out

    # a default run of the same capture is not labelled archive
    assert main(["run", str(cap), "--data-dir", str(tmp_path / "d2")]) == 0
    assert json.loads((tmp_path / "d2" / "manifest.json").read_text())["config_profile"] \
        == "default"
