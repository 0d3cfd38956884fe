"""`run_lines` over a `CaptureRuns` (a tick of ws lines at a time) = over its items one by one."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import attrs
import orjson
import pytest

import engine_core as ec
from engine_adapters.capture import CaptureBytes, iter_capture
from engine_adapters.capture_runs import CaptureRuns
from engine_app.bootstrap import open_session, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_sim.simulation import MarketSimulator, Regime, Segment
from engine_sim.synthetic_capture import write_capture

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
START_MS = 1_795_564_800_000


def _capture(tmp_path: Path) -> Path:
    """A simulated market with every kind of trouble a capture can hold mixed in."""
    sim = MarketSimulator(SYMBOLS, [Segment(name="s", seconds=20.0, leader=Regime(activity=3.0),
                                            bystander=Regime())], seed=3, start_ms=START_MS,
                          oi_poll_ms=2000)
    plain = tmp_path / "sim.jsonl"
    write_capture(plain, sim.events())
    lines = plain.read_bytes().splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        out.append(line)
        if i == 300:
            out.append(b"not json\n")
        if i == 500:
            out.append(lines[400])  # a repeat: duplicates, and the clock steps back
        if i == 700:  # a new trade (id 0: never a repeat) received in an already stepped tick
            ms = START_MS + 1_000
            out.append(b'{"recv_ms":%d,"channel":"ws","raw":"{\\"stream\\":\\"btcusdt@aggTrade\\",'
                       b'\\"data\\":{\\"e\\":\\"aggTrade\\",\\"s\\":\\"BTCUSDT\\",\\"a\\":0,'
                       b'\\"p\\":\\"100.5\\",\\"q\\":\\"0.5\\",\\"T\\":%d,\\"m\\":true}}"}\n'
                       % (ms, ms - 3))
        if i == 900:
            out.append(b'{"recv_ms":-5,"channel":"ws","raw":"x"}\n')
            out.append(b"\n")
        if i == 1200:  # a frame of an unused kind and one outside the universe
            ms = START_MS + 9_000
            out.append(b'{"recv_ms":%d,"channel":"ws","raw":"{\\"stream\\":\\"btcusdt@depth\\",'
                       b'\\"data\\":{\\"e\\":\\"depthUpdate\\",\\"s\\":\\"BTCUSDT\\"}}"}\n' % ms)
    path = tmp_path / "cap.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(out)))
    return path


def _play(tmp_path: Path, name: str, cap: Path, by_runs: bool, **kw: object
          ) -> tuple[int, dict[str, object], list[int], dict[str, bytes]]:
    dd = DataDir(tmp_path / name)
    s = open_session(dd, ec.Config(), SYMBOLS, engine_version=ENGINE_VERSION, fsync="none")
    seen: list[int] = []
    src = CaptureRuns(CaptureBytes(cap)) if by_runs else list(iter_capture(cap))
    try:
        n = run_lines(s, src, progress=seen.append, **kw)  # type: ignore[arg-type]
    finally:
        s.close()
    counts = attrs.asdict(s.counts) | {"ticks": s.stats.ticks, "last": s.stats.last_tick}
    files = {str(p.relative_to(dd.root)): p.read_bytes() for p in sorted(dd.root.rglob("*"))
             if p.is_file() and p.name != "manifest.json"}
    return n, counts, seen, files


@pytest.mark.parametrize("kw", [{}, {"until_ms": START_MS + 12_345}], ids=["all", "until"])
def test_runs_give_the_same_files_and_counters(tmp_path: Path, kw: dict[str, object]) -> None:
    cap = _capture(tmp_path)
    want = _play(tmp_path, "items", cap, False, **kw)
    got = _play(tmp_path, "runs", cap, True, **kw)
    assert got[0] == want[0] and got[1] == want[1] and got[3] == want[3]
    assert want[1]["duplicates"] and want[1]["clock_backwards"] and want[1]["unused_kinds"]
    assert want[1]["late_events"]
    assert want[1]["capture_problems"] == 2 and want[3]["quarantine.jsonl"]


def _stop_after(n: int) -> Callable[[], bool]:
    """A `stop` that says yes at its n-th question (asked after each stepped tick)."""
    asked = [0]

    def stop() -> bool:
        asked[0] += 1
        return asked[0] >= n

    return stop


def test_a_stop_leaves_at_the_same_line(tmp_path: Path) -> None:
    cap = _capture(tmp_path)
    results = [_play(tmp_path, f"stop{by_runs}", cap, by_runs, stop=_stop_after(37))
               for by_runs in (False, True)]
    assert results[0][:2] == results[1][:2] and results[0][3] == results[1][3]


def test_progress_is_told_every_50000_lines(tmp_path: Path) -> None:
    lines = []
    for i in range(120_001):
        ms = START_MS + i // 10
        frame = {"stream": "btcusdt@aggTrade", "data": {
            "e": "aggTrade", "E": ms, "s": "BTCUSDT", "a": i + 1, "p": "100.5", "q": "0.1",
            "f": 1, "l": 1, "T": ms, "m": i % 2 == 0}}
        lines.append(orjson.dumps({"recv_ms": ms, "channel": "ws",
                                   "raw": orjson.dumps(frame).decode()}) + b"\n")
    cap = tmp_path / "c.jsonl"
    cap.write_bytes(b"".join(lines))
    want = _play(tmp_path, "a", cap, False)
    got = _play(tmp_path, "b", cap, True)
    assert want[2] == got[2] == [50_000, 100_000]
    assert want[:2] == got[:2]
