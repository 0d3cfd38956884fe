"""Where the shared Binance fixtures live: `../shared/fixtures/binance` beside the clone.

CI checks the repository out with `shared/` as a sibling directory, as on the dev machines, so
tests find the real payloads through this one helper instead of each spelling the path.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root (this file is `<repo>/tests/fixtures_path.py`).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real Binance USD-M payloads, see its README.md for the source of each file.
BINANCE_FIXTURES = (REPO_ROOT / ".." / "shared" / "fixtures" / "binance").resolve()


def binance_fixture(relative: str) -> Path:
    """Path of one fixture, e.g. `binance_fixture("ws/combined_aggTrade.json")`."""
    path = BINANCE_FIXTURES / relative
    if not path.is_file():
        raise FileNotFoundError(f"Binance fixture {relative!r} not found under {BINANCE_FIXTURES}"
                                " (expected ../shared beside the repository clone)")
    return path


def binance_text(relative: str) -> str:
    """A fixture's text exactly as stored (one payload per file; `.jsonl` = one per line)."""
    return binance_fixture(relative).read_text(encoding="utf-8")
