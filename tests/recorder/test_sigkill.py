"""A recorder process SIGKILLed at random moments: every line it had flushed reads back."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from engine_adapters.capture_files import MultiSource, resolve_source

CHILD = Path(__file__).with_name("_kill_child.py")
ROOT = Path(__file__).resolve().parents[2]


def _kill_after(out: Path, delay_s: float) -> int:
    """Start the child, SIGKILL it `delay_s` after its first flush; the last flushed count."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, str(CHILD), str(out)], stdout=subprocess.PIPE,
                            env=env)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = None
    try:
        while True:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            wait = 5.0 if deadline is None else deadline - now
            ready, _, _ = select.select([fd], [], [], wait)
            assert ready or deadline is not None, "child never flushed"
            if ready:
                chunk = os.read(fd, 65536)
                assert chunk, f"child exited early: {proc.wait()}"
                buf += chunk
                if deadline is None:
                    deadline = time.monotonic() + delay_s
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        buf += proc.stdout.read()  # what it reported before dying
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    counts = [int(x) for x in buf.split(b"\n")[:-1]]  # a partial last report is ignored
    return counts[-1]


def test_sigkill_at_random_moments_loses_nothing_flushed(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for run in range(3):
        out = tmp_path / f"run{run}"
        flushed = _kill_after(out, rng.uniform(0.0, 0.6))
        src = MultiSource(resolve_source(out))
        seqs = [orjson.loads(orjson.loads(line)["raw"])["seq"] for _, line in src]
        msg = f"seed {seed} run {run}: {len(seqs)} lines read, {flushed} reported flushed"
        assert seqs == list(range(len(seqs))), msg  # in order, nothing before the tear lost
        assert len(seqs) >= flushed, msg
        # the only tear there can be is at the end of the last file
        assert all(t.path == src.paths[-1] for t in src.tails), msg
        for t in src.tails:  # the tail report points just past the last line read
            assert src.spans[-1].first_line + t.line_no - 1 == len(seqs) + 1, msg
            assert t.offset + t.tail_bytes == t.path.stat().st_size, msg
