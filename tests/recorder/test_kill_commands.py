"""`capture` and `live --capture` SIGKILLed at random moments against the loopback exchange:
everything recorded before the tear runs and verifies (exit 0), a torn tail is reported."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from engine_adapters.capture_files import MultiSource, resolve_source
from engine_adapters.storage import read_log, verify
from engine_app.cli import main
from engine_sim.fake_exchange import FakeBinance
from engine_sim.simulation import MarketSimulator, Regime, Segment

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
BUSY = Regime(activity=2.0, vol_bps_s=4.0, liq_prob=0.5, liq_size=0.05)
ROOT = Path(__file__).resolve().parents[2]


async def _record_then_kill(argv: list[str], rec: Path, delay_s: float) -> None:
    """Start the recorder; SIGKILL it `delay_s` after its first member reached the disk."""
    start_ms = time.time_ns() // 1_000_000 // 1000 * 1000
    sim = MarketSimulator(SYMBOLS, [Segment(name="busy", seconds=30, leader=BUSY,
                                            bystander=BUSY)], seed=4, start_ms=start_ms,
                          oi_poll_ms=1000)
    async with FakeBinance(SYMBOLS) as fake:
        player = fake.play(sim.events())
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "engine_app", *argv, "--symbols", ",".join(SYMBOLS),
            "--ws-url", fake.ws_base, "--rest-url", fake.rest_base,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
        try:
            end = time.monotonic() + 60  # start-up on a loaded machine takes a while
            while not any(f.stat().st_size > 0 for f in rec.glob("*.jsonl.gz")):
                assert proc.returncode is None and time.monotonic() < end, \
                    (await proc.stderr.read()).decode()[-2000:] if proc.stderr else ""
                await asyncio.sleep(0.05)
            await asyncio.sleep(delay_s)
            assert proc.returncode is None, "the recorder ended before it was killed"
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            player.cancel()
            await asyncio.gather(player, return_exceptions=True)


def _run_and_verify(src: Path, dd: Path) -> None:
    assert main(["run", str(src), "--data-dir", str(dd), "--symbols", ",".join(SYMBOLS),
                 "--fsync", "none", "--json"]) == 0
    assert verify(dd).exit_code == 0
    assert len(read_log(dd)) >= len(SYMBOLS) * 2  # a few ticks of records at least


def _tear(path: Path) -> int:
    """Cut the last file inside its last gzip member, as a kill mid-write does; the bytes
    from that member's start to the new end (what `run` must call unreadable)."""
    data = path.read_bytes()
    last_member = data.rfind(b"\x1f\x8b\x08\x00\x00\x00\x00\x00")  # recorder: mtime=0
    assert last_member >= 0, path
    cut = last_member + max(1, (len(data) - last_member) // 2)
    path.write_bytes(data[:cut])
    return cut - last_member


@pytest.mark.parametrize("command", ["capture", "live"])
def test_sigkill_at_a_random_moment_then_run_and_verify(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(1.0, 2.5)  # mid-recording
    rec = tmp_path / "rec"
    argv = ["capture", "--out", str(rec)] if command == "capture" else \
        ["live", "--capture", str(rec), "--data-dir", str(tmp_path / "live"), "--json",
         "--fsync", "none"]
    asyncio.run(_record_then_kill(argv, rec, delay))
    files = resolve_source(rec)
    assert files and all(f.name.startswith("capture-") for f in files), (seed, files)
    lines = sum(1 for _ in MultiSource(files))
    assert lines > 50, f"seed {seed}: only {lines} lines recorded in {delay:.1f} s"
    # as killed: every flushed line runs and the result verifies
    _run_and_verify(rec, tmp_path / "run1")
    # a kill in the middle of writing a member: the member is lost, nothing before it
    cut = _tear(files[-1])
    capsys.readouterr()
    _run_and_verify(rec, tmp_path / "run2")
    err = capsys.readouterr().err
    assert "torn tail" in err and f"the last {cut} bytes" in err, err
    torn = MultiSource(files)
    assert 0 < sum(1 for _ in torn) <= lines and len(torn.tails) == 1
