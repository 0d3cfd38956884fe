"""A real data dir for the UX tests: the demo's cascade capture run offline through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_app.cli import main
from engine_sim.simulation import DEFAULT_SPECS, MarketSimulator, cascade_script
from engine_sim.synthetic_capture import write_capture

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOML = ROOT / "engine_app" / "resources" / "demo.toml"
SYMBOLS = tuple(sorted(s.symbol for s in DEFAULT_SPECS))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ux")
    capture = root / "demo.jsonl.gz"
    write_capture(capture, MarketSimulator(SYMBOLS, cascade_script(0.015), seed=7,
                                           oi_poll_ms=1000).events())
    dd = root / "dd"
    assert main(["run", str(capture), "--data-dir", str(dd), "--config", str(DEMO_TOML)]) == 0
    return dd
