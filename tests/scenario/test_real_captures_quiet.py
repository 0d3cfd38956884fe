"""The default config raises no alert on the four real USD-M recordings (calm 2021-2024).

These are third-party recordings of calm markets (fixtures/real/README.md): any alert on
them is a false alarm. Each is played through `run` exactly as a user would, with the default
config, and the data dir's alert file must hold no alert at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_adapters.storage.alerts_json import ALERTS_FILE
from engine_app.cli import main
from tests.fixtures_path import BINANCE_FIXTURES

REAL = BINANCE_FIXTURES.parent / "real"
NAMES = sorted(p.name for p in REAL.glob("real_*.jsonl.gz"))


def test_all_four_recordings_are_found() -> None:
    assert len(NAMES) == 4, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_no_alert_on_a_real_calm_recording(name: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    dd = tmp_path / "dd"
    assert main(["run", str(REAL / name), "--data-dir", str(dd), "--fsync", "none"]) == 0
    capsys.readouterr()
    alerts = (dd / ALERTS_FILE).read_text().splitlines() if (dd / ALERTS_FILE).exists() else []
    assert alerts == [], f"{name}: {len(alerts)} alert(s), first: {alerts[:1]}"
