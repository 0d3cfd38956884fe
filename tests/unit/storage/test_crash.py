"""SIGKILL while appending: the log reopens, recovers its torn tail and keeps appending."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from engine_adapters.storage.log_reader import iter_ticks
from engine_adapters.storage.verify import verify

CHILD = r"""
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from storage.helpers import SYMBOLS, make_records, with_alerts
from engine_adapters.storage.log_writer import LogWriter
from engine_core.alerts import initial_alert_state
from engine_core.config import Config
w = LogWriter.open(Path(sys.argv[1]), Config(), SYMBOLS, "test-1", fsync="none",
                   rotate_ticks=50)
t = start = 0 if w.last_tick is None else w.last_tick + 1
print(start, w.recovery.message, flush=True)
st = initial_alert_state(SYMBOLS, Config().alerts.ticks_per_bucket)
while True:  # one session, as fast as possible, until killed
    st, recs, alerts = with_alerts(st, make_records(t, 3, start=t == start))
    w.append_tick(t, recs, alerts)
    if t == start:  # the parent kills only a session that has written something
        print("appended", flush=True)
    t += 1
"""


def test_sigkill_during_append_recovers_and_continues(tmp_path: Path) -> None:
    tests_unit = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    starts = []
    for round_no in range(5):
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), tests_unit],
                             stdout=subprocess.PIPE, text=True, env=env)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line, f"child failed in round {round_no}"
        starts.append(int(line.split()[0]))
        # a loaded machine may give the child no time before the kill: wait for its first
        # tick, so every session leaves one (the starts below must all differ)
        assert p.stdout.readline() == "appended\n", f"child failed in round {round_no}"
        time.sleep(0.15 + 0.05 * round_no)
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
    rep = verify(tmp_path)
    # the last kill may have left a torn tail: verify says so; opening recovers it
    if not rep.ok:
        assert "torn tail" in rep.message, rep.message
    from engine_adapters.storage.log_writer import LogWriter
    from engine_core.config import Config

    from .helpers import SYMBOLS

    LogWriter.open(tmp_path, Config(), SYMBOLS, "test-1").close()
    assert verify(tmp_path).ok
    got = [t.tick_id for t in iter_ticks(tmp_path)]
    assert got == list(range(len(got)))  # each session resumed right after the last tick
    assert starts == sorted(starts) and len(set(starts)) == 5
