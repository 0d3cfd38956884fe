"""The one loop of the shell: clock -> ingest -> flush -> journal -> step -> log -> alerts -> sinks.

    Session(cfg, symbols, ports)          wired by `bootstrap.open_session` (or by hand, in tests)
      .ingest.ws/rest/health/line(...)    every source feeds the adapter-side `Ingest`
      .step_tick(tick_id)                 the clock says a tick ended: flush its batches and step
      .step_batches(tick_id, batches, session_start)   a journal source: batches already frozen

`live` calls `step_tick` from the real clock, `run` from the virtual clock driven by the
capture's receive times (`bootstrap.run_lines`), `replay` calls `step_batches` with the
journal's batches (`bootstrap.replay_journal`). The step itself is written once, here.
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Callable, Collection, Sequence

import attrs

import engine_core as ec
from engine_adapters.binance.dedup import IdGap
from engine_adapters.evidence_text import AlertEvidence, evidence_from_record
from engine_adapters.ingest import Ingest, IngestStats
from engine_app.evidence_port import EvidenceTracker
from engine_app.ports import (
    AlertSink,
    EvidenceAlertSink,
    EvidenceAlertsPort,
    Ports,
    QuarantineSink,
)
from engine_core.evidence import EvidenceRecord, EvidenceWindows

__all__ = ["AlertSink", "Session", "StepFn", "TickStats", "tune_gc"]

#: The core's step (a parameter only so that a test can show a replay notices a changed core).
StepFn = Callable[[ec.EngineState, Sequence[ec.CanonicalBatch], int],
                  tuple[ec.EngineState, Sequence[ec.Record], tuple[ec.Alert, ...]]]


def tune_gc() -> None:
    """Collector settings for a long session: fewer young-generation passes, a frozen heap.

    Engine objects are acyclic and freed by reference counting; the cyclic collector mostly
    rescans live objects. Freezing what exists after start-up and raising the first
    threshold cut its share of a `run` by ~5% and shorten the pauses a tick can hit.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


@attrs.define
class TickStats:
    """What the loop stepped (the message side is counted by `Ingest.stats`)."""

    ticks: int = 0
    alerts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    states_reached: set[str] = attrs.field(factory=set)
    cluster_reached: set[str] = attrs.field(factory=set)
    phases_reached: set[str] = attrs.field(factory=set)
    first_tick: int | None = None
    last_tick: int | None = None


class Session:
    """One engine session: the core state, its ingest path and the ports it writes to."""

    def __init__(self, cfg: ec.Config, symbols: Sequence[str], ports: Ports, *,
                 on_gap: Callable[[IdGap], None] | None = None,
                 step_fn: StepFn = ec.step) -> None:
        self.cfg = cfg
        self._step = step_fn
        self.symbols = tuple(symbols)
        self.ports = ports
        self.sinks: list[AlertSink] = list(ports.sinks)
        #: The facts each alert states (price, OI change, liquidations, funding per hour).
        self.evidence = EvidenceTracker(self.symbols)
        self._windows = EvidenceWindows.from_config(cfg)
        self.stats = TickStats()
        self.recovery_messages = list(ports.recovery)
        #: A restart continues the log: the new session starts after its last tick.
        self.ingest = Ingest(self.symbols, ports.quarantine, last_stepped=ports.log.last_tick,
                             on_gap=on_gap)
        self.state = ec.initial_state(cfg, self.symbols)
        self.last_records: Sequence[ec.Record] = ()
        self.recent_alerts: collections.deque[ec.Alert] = collections.deque(maxlen=20)
        self._closed = False

    @property
    def counts(self) -> IngestStats:
        """The message-side counters (frames, events, duplicates, quarantined...)."""
        return self.ingest.stats

    @property
    def quarantine(self) -> QuarantineSink:
        return self.ports.quarantine

    @property
    def next_tick(self) -> int | None:
        """The tick to step next, or None before the first message of a fresh data dir."""
        last = self.ingest.last_stepped
        return None if last is None else last + 1

    def pending_tick(self) -> int | None:
        """Tick of the oldest message waiting to be stepped."""
        return self.ingest.pending_tick()

    # ------------------------------------------------------------------ ticks
    def step_tick(self, tick_id: int, *, health: Collection[ec.HealthKind] = ()
                  ) -> tuple[Sequence[ec.Record], tuple[ec.Alert, ...]]:
        """Step one tick: everything received for it (or late) goes in, files come out."""
        batches = self.ingest.flush(tick_id, health=health)
        return self.step_batches(tick_id, batches, session_start=self.state.last_tick is None)

    def step_batches(self, tick_id: int, batches: Sequence[ec.CanonicalBatch], *,
                     session_start: bool) -> tuple[Sequence[ec.Record], tuple[ec.Alert, ...]]:
        """journal -> step -> log -> alerts -> sinks for one tick's frozen batches.

        `session_start` begins a new session of the core (fresh state), as the journal marks.
        """
        ports = self.ports
        if session_start and self.state.last_tick is not None:
            self.state = ec.initial_state(self.cfg, self.symbols)
        if ports.journal is not None:
            ports.journal.append_tick(tick_id, batches, session_start)
        self.state, records, alerts = self._step(self.state, batches, tick_id)
        ports.log.append_tick(tick_id, records, alerts)
        ev_bytes = getattr(records, "evidence", b"")
        if ports.evidence is not None and ev_bytes:
            ports.evidence.append_tick(tick_id, ev_bytes)
        if ports.bars is not None:
            ports.bars.add_tick(tick_id, batches)
        if not ev_bytes:  # the shell's own tracker stands in only where the core gave none
            self.evidence.add_tick(tick_id, batches)
        st = self.stats
        if alerts:
            ev = self._alert_evidence(alerts, ev_bytes)
            port = ports.alerts
            if isinstance(port, EvidenceAlertsPort) and port.takes_evidence:
                port.append(alerts, ev)
            else:
                port.append(alerts)
            for a in alerts:
                st.alerts[a.kind.name] += 1
                self.recent_alerts.append(a)
            for sink in self.sinks:
                if isinstance(sink, EvidenceAlertSink) and sink.takes_evidence:
                    sink(alerts, ev)
                else:
                    sink(alerts)
        st.ticks += 1
        if st.first_tick is None:
            st.first_tick = tick_id
        st.last_tick = tick_id
        if records:
            r0 = records[0]
            st.cluster_reached.add(ec.ClusterState(r0.cluster).name)
            st.phases_reached.add(ec.EventPhase(r0.phase).name)
            fsms = records.fsm if isinstance(records, ec.TickRecords) else \
                [r.fsm for r in records]
            for s in set(fsms):  # the states' bytes: no record is decoded for this
                st.states_reached.add(ec.StructuralState(s).name)
        self.last_records = records
        return records, alerts

    def _alert_evidence(self, alerts: Sequence[ec.Alert], ev_bytes: bytes
                        ) -> tuple[AlertEvidence | None, ...]:
        """Each alert's facts: the core's evidence record of its token at this tick (the
        shell's own tracker only where the core gave no evidence bytes)."""
        if not ev_bytes:
            return self.evidence.evidence_for(alerts)
        size = ec.RECORD_SIZE
        return tuple(None if a.token_id < 0 else evidence_from_record(
            EvidenceRecord.from_bytes(ev_bytes[a.token_id * size:(a.token_id + 1) * size],
                                         check=False), self._windows) for a in alerts)

    def drain(self) -> int:
        """Step every tick up to the newest message's, so nothing received stays unstepped.

        `run` calls it at the end of a capture, `live` at shutdown (after the feeds stopped):
        the messages of the tick in progress are stepped then rather than dropped.
        """
        last = self.ingest.last_message_tick
        if last is None:
            return 0
        nxt = self.pending_tick() if self.next_tick is None or self.state.last_tick is None \
            else self.next_tick
        n = 0
        while nxt is not None and nxt <= last:
            self.step_tick(nxt)
            nxt += 1
            n += 1
        return n

    def log_bytes(self) -> int:
        """Bytes in the log segments (a metric; 0 without a data dir)."""
        dd = self.ports.data_dir
        if dd is None:
            return 0
        return sum(p.stat().st_size for p in dd.log.glob("*") if p.is_file())

    def close(self) -> None:
        """Flush and close every port (the current tick is complete: ticks are atomic)."""
        if self._closed:
            return
        self._closed = True
        p = self.ports
        closers = [p.log.close, p.alerts.close, p.quarantine.close]
        if p.journal is not None:
            closers.insert(1, p.journal.close)
        if p.bars is not None:
            closers.append(p.bars.close)
        if p.evidence is not None:
            closers.append(p.evidence.close)
        for closer in closers:
            closer()
        if p.data_dir is not None:
            p.data_dir.write_manifest(self.cfg, self.symbols, self.ingest.stats, self.stats)
