"""End to end offline: capture -> `run` -> data dir -> `verify` / `replay --compare` / `export`."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from engine_adapters.capture import CaptureWriter
from engine_adapters.storage import iter_journal
from engine_app.cli import main
from engine_sim.simulation import DEFAULT_SPECS, MarketSimulator, cascade_script
from engine_sim.synthetic_capture import capture_lines, write_capture
from tests.property.streams import streams

ROOT = Path(__file__).resolve().parents[2]
DEMO_TOML = ROOT / "engine_app" / "resources" / "demo.toml"
SYMBOLS = tuple(sorted(s.symbol for s in DEFAULT_SPECS))


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cap") / "demo.jsonl.gz"
    sim = MarketSimulator(SYMBOLS, cascade_script(0.015), seed=7, oi_poll_ms=1000)
    write_capture(path, sim.events())
    return path


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file that must be identical (the manifest holds wall-clock times)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def test_run_writes_a_data_dir_that_verifies_and_replays(capture: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    dd = tmp_path / "dd"
    assert main(["run", str(capture), "--data-dir", str(dd), "--config", str(DEMO_TOML),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["ticks"] > 300 and summary["quarantined"] == 0
    # config v3: the demo's loaded build-up holds FRAGILE through a whole bucket again
    assert set(summary["alerts"]) == {"STRUCTURAL_FRAGILE", "STRUCTURAL_TRIGGER_READY",
                                      "STRUCTURAL_UNWIND", "SYSTEMIC_ALERT", "STABLE_15M_ALERT"}
    assert summary["states_reached"] == ["BUILD", "PRESSURE", "FRAGILE", "TRIGGER_READY",
                                         "UNWIND", "COOLDOWN"]
    for sub in ("log", "journal", "alerts.jsonl", "quarantine.jsonl", "manifest.json"):
        assert (dd / sub).exists(), sub
    # nothing accepted is left out: every accepted event is in the journal (last tick too)
    journaled = sum(len(b.events) for t in iter_journal(dd) for b in t.batches)
    assert journaled == summary["events_accepted"]
    assert main(["verify", str(dd)]) == 0
    assert "reproduced" in capsys.readouterr().out
    assert main(["replay", str(dd), "--out", str(tmp_path / "re"), "--compare"]) == 0
    assert "byte-identical" in capsys.readouterr().out
    assert main(["export", str(dd), "--format", "csv"]) == 0
    header = (dd / "records.csv").read_text().splitlines()[0]
    assert header.startswith("tick_id,token_id,symbol,fsm,tier")


def test_two_runs_in_other_processes_give_identical_files(capture: Path, tmp_path: Path) -> None:
    digests = []
    for seed in ("0", "777"):
        dd = tmp_path / f"dd{seed}"
        env = dict(os.environ, PYTHONHASHSEED=seed)
        subprocess.run([sys.executable, "-m", "engine_app", "run", str(capture), "--data-dir",
                        str(dd), "--config", str(DEMO_TOML)], check=True, env=env, cwd=ROOT,
                       capture_output=True)
        digests.append(tree_digest(dd))
    assert digests[0] == digests[1]
    assert any(k.startswith("log/") for k in digests[0])


def test_bad_lines_are_quarantined_with_their_line_number_and_the_run_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "bad.jsonl"
    good = json.dumps({"recv_ms": 1_795_564_800_100, "channel": "ws", "raw": json.dumps({
        "stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1795564800050, "a": 5,
        "s": "BTCUSDT", "p": "86000.10", "q": "0.010", "f": 5, "l": 5, "T": 1795564800050,
        "m": True}})})
    nan = good.replace('\\"p\\": \\"86000.10\\"', '\\"p\\": \\"NaN\\"').replace('"a\\": 5',
                                                                               '"a\\": 6')
    lines = [good, "garbage", nan, json.dumps({"recv_ms": 1_795_564_800_400, "channel": "ws",
                                               "raw": "{not json"})]
    cap.write_text("\n".join(lines) + "\n")
    dd = tmp_path / "dd"
    assert main(["run", str(cap), "--data-dir", str(dd), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events_accepted"] == 1
    entries = [json.loads(x) for x in (dd / "quarantine.jsonl").read_text().splitlines()]
    assert [e["line_no"] for e in entries] == [2, 3, 4]
    assert "finite" in entries[1]["reason"] and entries[1]["field"] == "price"
    assert main(["verify", str(dd)]) == 0


def test_exit_codes_corruption_breach_usage(capture: Path, tmp_path: Path) -> None:
    dd = tmp_path / "dd"
    assert main(["run", str(capture), "--data-dir", str(dd), "--config", str(DEMO_TOML)]) == 0
    # a determinism breach: alerts.jsonl says something the records do not
    alerts = dd / "alerts.jsonl"
    lines = alerts.read_text().splitlines()
    doc = json.loads(lines[0])
    doc["symbol"] = "XRPUSDT"
    alerts.write_text("\n".join([json.dumps(doc), *lines[1:]]) + "\n")
    assert main(["verify", str(dd)]) == 1
    # corruption: one flipped byte in the middle of the log
    seg = next((dd / "log").iterdir())
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF
    seg.write_bytes(bytes(data))
    assert main(["verify", str(dd)]) == 2
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert main(["run", str(capture), "--data-dir", str(dd)]) == 64  # not a fresh data dir
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == 64


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(streams(max_ticks=30))
def test_random_streams_round_trip_through_capture_run_journal_replay(s) -> None:  # type: ignore[no-untyped-def]
    import tempfile

    symbols, first, ticks = s
    events = [((first + k) * 250 - 1, e) for k, evs in enumerate(ticks) for e in evs]
    with tempfile.TemporaryDirectory() as tmp:
        cap = Path(tmp) / "c.jsonl"
        with CaptureWriter(cap) as w:
            capture_lines(events, w)
        if not cap.read_bytes():
            return
        dd = Path(tmp) / "dd"
        assert main(["run", str(cap), "--data-dir", str(dd), "--symbols", ",".join(symbols),
                     "--fsync", "none"]) == 0
        assert main(["verify", str(dd)]) == 0
        assert main(["replay", str(dd), "--out", str(Path(tmp) / "re"), "--compare"]) == 0


def test_gzip_and_plain_captures_give_the_same_log(capture: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(gzip.decompress(capture.read_bytes()))
    for name, cap in (("a", capture), ("b", plain)):
        assert main(["run", str(cap), "--data-dir", str(tmp_path / name), "--config",
                     str(DEMO_TOML)]) == 0
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
