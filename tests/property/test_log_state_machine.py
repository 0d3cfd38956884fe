"""Model-based test of the log: appends, crashes mid-write, torn tails, rotation, reopening.

A deliberately simple model (the list of committed ticks) runs next to the real LogWriter.
Rules append ticks, rotate by tick count, "crash" by cutting the newest segment at any byte
or appending garbage/zeros, and reopen. The invariant: what the log holds is exactly the
model up to its last complete tick, and it always verifies (research note 4.8).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engine_adapters.storage import LogWriter, iter_ticks, verify
from engine_core.alerts import initial_alert_state
from engine_core.config import Config
from engine_core.record import RECORD_SIZE
from tests.unit.storage.helpers import SYMBOLS, make_records, with_alerts

N = 3
CFG = Config()


class LogMachine(RuleBasedStateMachine):
    @initialize()
    def start(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="logsm-"))
        self.model: list[tuple[int, tuple[bytes, ...]]] = []  # (tick, record bytes)
        self.next_tick = 7_000_000_000
        self.writer: LogWriter | None = None
        self.session_open = False
        self.alert_state = initial_alert_state(SYMBOLS[:N], 4)

    def teardown(self) -> None:
        if self.writer is not None:
            self.writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _open(self) -> LogWriter:
        if self.writer is None:
            self.writer = LogWriter.open(self.dir, CFG, SYMBOLS[:N], "sm", fsync="none",
                                         rotate_ticks=5)
            self.session_open = False
            self.alert_state = initial_alert_state(SYMBOLS[:N], 4)
        return self.writer

    @rule(n=st.integers(1, 4), gap=st.booleans())
    def append(self, n: int, gap: bool) -> None:
        w = self._open()
        if not self.session_open and gap:
            self.next_tick += 3  # a restart may jump ahead (SESSION_START marks it)
        for _ in range(n):
            t = self.next_tick
            start = not self.session_open
            self.alert_state, recs, alerts = with_alerts(
                self.alert_state, make_records(t, N, start=start, salt=t % 3))
            w.append_tick(t, recs, alerts)
            self.model.append((t, tuple(r.to_bytes() for r in recs)))
            self.session_open = True
            self.next_tick += 1

    @rule()
    def reopen(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def crash_and_cut(self, data: st.DataObject) -> None:
        """The process dies mid-write: the newest segment loses any number of tail bytes."""
        self.reopen()
        seg = sorted((self.dir / "log").iterdir())[-1]
        size = seg.stat().st_size
        cut = data.draw(st.integers(0, min(size, 3 * (N + 1) * RECORD_SIZE)), label="cut")
        with open(seg, "r+b") as f:
            f.truncate(size - cut)
        self._forget_incomplete(lost_at_most=cut // ((N + 1) * RECORD_SIZE) + 1)

    @precondition(lambda self: self.model)
    @rule(junk=st.sampled_from([b"\x00" * 64, b"\x00" * 200, b"\xff" * 37]))
    def crash_with_junk(self, junk: bytes) -> None:
        """Preallocated zeros or garbage after the last write: never valid, always dropped."""
        self.reopen()
        seg = sorted((self.dir / "log").iterdir())[-1]
        with open(seg, "ab") as f:
            f.write(junk)

    def _forget_incomplete(self, lost_at_most: int) -> None:
        # Reopening truncates back to the last complete tick (a tick is complete with its
        # commit record, or not at all): what survives must be a prefix of the model, and
        # only the ticks the cut reached may be gone.
        w = self._open()
        survived = [t.tick_id for t in iter_ticks(self.dir)]
        assert survived == [m[0] for m in self.model[:len(survived)]]
        assert len(self.model) - len(survived) <= lost_at_most
        self.model = self.model[:len(survived)]
        self.next_tick = max(self.next_tick, (w.last_tick or 0) + 1)
        w.close()
        self.writer = None

    @invariant()
    def log_equals_model(self) -> None:
        if self.writer is not None:
            return  # compare only closed logs (the writer buffers nothing, but keep it simple)
        if not (self.dir / "log").exists():
            assert not self.model
            return
        self._open()
        assert self.writer is not None
        self.writer.close()
        self.writer = None
        got = [(t.tick_id, tuple(r.to_bytes() for r in t.records)) for t in iter_ticks(self.dir)]
        assert got == self.model
        if self.model:
            assert verify(self.dir, check_alerts=False).exit_code == 0


TestLogMachine = LogMachine.TestCase
TestLogMachine.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
