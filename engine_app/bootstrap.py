"""Wiring: the real ports of a data dir, the session over them, and the two offline clocks.

    ports = open_ports(data_dir, cfg, symbols, engine_version=..., fsync=...)   real defaults
    session = Session(cfg, symbols, ports)         or open_session(...) for both at once
    n = run_lines(session, CaptureRuns(src))       virtual clock driven by receive times
    report = replay_journal(src_dir, out_dir)      a journal source through the same step

`live` drives the same `Session` from the real clock (`engine_app.live`). A source is
anything that yields capture-format items (`WsLine`, `RestLine`, `HealthLine`,
`CaptureProblem`): a capture file, a folder of hour files, an archive importer, a bus
consumer; tests hand in lists of them and in-memory ports.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import engine_core as ec
from engine_adapters.binance.dedup import IdGap
from engine_adapters.capture import (
    CaptureLine,
    CaptureProblem,
    ProblemKind,
    WsLine,
    capture_byte_lines,
)
from engine_adapters.capture_runs import CaptureRuns, WsEnvelope, WsRun
from engine_adapters.quarantine import QuarantineWriter
from engine_adapters.storage import AlertsFile, JournalWriter, LogWriter, trim_journal
from engine_adapters.storage.alerts_json import ALERTS_FILE
from engine_adapters.storage.evidence_store import EvidenceStore
from engine_adapters.storage.journal import iter_journal, journal_header
from engine_adapters.storage.replay import ReplayReport, compare_logs, log_params, replay_message
from engine_app.bars_port import BarsWriter
from engine_app.datadir import DataDir
from engine_app.ports import AlertSink, MemoryQuarantine, Ports
from engine_app.session import Session, StepFn

ProgressFn = Callable[[int], None]
CaptureItem = CaptureLine | CaptureProblem


def open_ports(data_dir: DataDir, cfg: ec.Config, symbols: Sequence[str], *,
               engine_version: str, fsync: str = "interval:4",
               allow_config_change: bool = False, sinks: Sequence[AlertSink] = ()) -> Ports:
    """Open (or continue) a data dir's log, journal, alerts.jsonl and quarantine file."""
    data_dir.ensure()
    log = LogWriter.open(data_dir.root, cfg, symbols, engine_version, fsync=fsync,
                         allow_config_change=allow_config_change)
    # a crash between journaling a tick and logging it leaves the journal ahead
    ahead = trim_journal(data_dir.root, log.last_tick)
    journal = JournalWriter.open(data_dir.root, cfg, symbols, engine_version, fsync=fsync,
                                 allow_config_change=allow_config_change)
    recovery = [r.message for r in (log.recovery, journal.recovery) if _dropped(r)]
    if ahead:
        recovery.append(f"journal was {ahead} tick(s) ahead of the log (a crash between the "
                        f"two); dropped them so replay matches the log")
    alerts = AlertsFile(data_dir.alerts)
    # alerts of ticks a crash dropped from the log must go too, or verify would disagree
    alerts.truncate_after(log.last_tick)
    evidence = EvidenceStore.open(data_dir.root)
    if evidence.repaired:
        recovery.append(f"evidence: cut a torn tail of {evidence.repaired} byte(s)")
    # evidence of ticks a crash dropped from the log goes too (it is written after the log)
    evidence.truncate_after(log.last_tick)
    return Ports(log=log, journal=journal, alerts=alerts,
                 quarantine=QuarantineWriter(data_dir.quarantine), sinks=tuple(sinks),
                 data_dir=data_dir, recovery=tuple(recovery),
                 bars=BarsWriter(data_dir.bars), evidence=evidence)


def open_session(data_dir: DataDir, cfg: ec.Config, symbols: Sequence[str], *,
                 engine_version: str, fsync: str = "interval:4",
                 allow_config_change: bool = False, sinks: Sequence[AlertSink] = (),
                 on_gap: Callable[[IdGap], None] | None = None) -> Session:
    """A session over the real ports of `data_dir` (what `live`, `run` and `demo` use)."""
    ports = open_ports(data_dir, cfg, symbols, engine_version=engine_version, fsync=fsync,
                       allow_config_change=allow_config_change, sinks=sinks)
    return Session(cfg, tuple(symbols), ports, on_gap=on_gap)


def run_lines(session: Session, items: Iterable[CaptureItem] | CaptureRuns, *,
              progress: ProgressFn | None = None, stop: Callable[[], bool] | None = None,
              until_ms: int | None = None) -> int:
    """The virtual clock: feed capture-format items, stepping every tick before each one's.

    Before a message of tick T is taken, every tick before T is stepped (empty ones too),
    exactly as the live clock stepped them while the message was in flight; at the end the
    tick holding the last messages is stepped. Returns the number of capture lines read
    (a "recv_ms went backwards" note is not a line: its line follows and is counted).
    A `CaptureRuns` source is read through its `runs()`: ws lines come in `WsRun`s,
    taken without a per-line item (the same lines, in the same order, as iterating it).
    """
    n = 0
    nxt = session.next_tick  # None until the first message fixes the first tick
    last_t = -1
    ingest = session.ingest
    take_ws = ingest.ws
    take_tick = ingest.ws_tick
    step_tick = session.step_tick
    tick_of = ec.tick_of_recv_ms

    def env_tick(e: WsEnvelope) -> int:
        return tick_of(e.recv_ms)

    def env_recv(e: WsEnvelope) -> int:
        return e.recv_ms

    def clock_to(t: int) -> bool:
        """Step every tick before `t` (empty ones too); True if `stop` said so meanwhile."""
        nonlocal nxt
        if nxt is None:
            nxt = t
        while nxt < t:
            step_tick(nxt)
            nxt += 1
            if stop is not None and stop():
                return True
        return False

    for item in items.runs() if isinstance(items, CaptureRuns) else items:
        if isinstance(item, WsRun):  # many ws lines, taken a tick at a time (the common case)
            envs = item.envelopes
            i, m = 0, len(envs)
            while i < m:  # receive times never go back in a run, so neither do their ticks
                t = tick_of(envs[i].recv_ms)
                j = bisect_right(envs, t, i, m, key=env_tick)  # lines [i, j) are of tick t
                if until_ms is not None and envs[j - 1].recv_ms >= until_ms:
                    j = bisect_left(envs, until_ms, i, j, key=env_recv)
                    if j == i:  # this line is at the end time: counted, not taken
                        n += 1
                        if progress is not None and not n % 50_000:
                            progress(n)
                        session.drain()
                        return n
                if progress is not None:
                    for k in range(n + 50_000 - n % 50_000, n + j - i + 1, 50_000):
                        progress(k)
                if t != last_t:
                    last_t = t
                    if clock_to(t):
                        return n + 1
                take_tick(t, envs[i:j], item.first_line + i)
                n += j - i
                i = j
            continue
        if isinstance(item, CaptureProblem):
            if item.kind is not ProblemKind.CLOCK_BACKWARDS:
                n += 1
            ingest.problem(item)
            continue
        n += 1
        if progress is not None and not n % 50_000:
            progress(n)
        recv = item.recv_ms
        if until_ms is not None and recv >= until_ms:
            break
        t = tick_of(recv)
        if t != last_t:
            last_t = t
            if clock_to(t):
                return n
        if item.__class__ is WsLine:
            take_ws(recv, item.raw, line_no=item.line_no)  # no dispatch
        else:
            ingest.line(item)
    session.drain()
    return n


def run_events(session: Session, events: Iterable[tuple[int, ec.MarketEvent]]) -> int:
    """The virtual clock over (recv_ms, event) pairs already parsed (a simulator, tests).

    Same stepping as `run_lines`; returns the number of events fed.
    """
    n = 0
    nxt = session.next_tick
    take = session.ingest.event
    for recv, ev in events:
        t = ec.tick_of_recv_ms(recv)
        if nxt is None:
            nxt = t
        while nxt < t:
            session.step_tick(nxt)
            nxt += 1
        take(recv, ev)
        n += 1
    session.drain()
    return n


def run_capture(session: Session, path: Path, *, progress: ProgressFn | None = None,
                stop: Callable[[], bool] | None = None, until_ms: int | None = None) -> int:
    """`run_lines` over a capture file (plain or gzip), a folder or a glob of them."""
    return run_lines(session, CaptureRuns(capture_byte_lines(path)), progress=progress,
                     stop=stop, until_ms=until_ms)


def replay_journal(data_dir: Path | str, out_dir: Path | str, *, compare: bool = True,
                   engine_version: str | None = None, step_fn: StepFn = ec.step
                   ) -> ReplayReport:
    """Rebuild the log of `data_dir` from its journal into `out_dir` (log/ + alerts.jsonl).

    The journal is the source, the same `Session.step_batches` the step: a fresh core state
    at every session start the journal marks. The new log is written with the original's
    config and writer parameters; `compare` names the first difference; `step_fn` replaces the
    core's `step` (to show a replay notices a changed core). Raises StorageError for an
    unreadable journal.
    """
    src, out = Path(data_dir), Path(out_dir)
    jh = journal_header(src)
    cfg = ec.Config.from_dict(json.loads(jh.config_json))
    params = log_params(src) or json.loads(jh.params_json)
    version = engine_version if engine_version is not None else jh.engine_version
    out.mkdir(parents=True, exist_ok=True)
    log = LogWriter.open(out, cfg, jh.symbols, version, fsync="none",
                         rotate_ticks=int(params["rotate_ticks"]),
                         max_segment_bytes=int(params["max_segment_bytes"]))
    alerts = AlertsFile(out / ALERTS_FILE)
    ports = Ports(log=log, alerts=alerts, quarantine=MemoryQuarantine(),
                  evidence=EvidenceStore.open(out))
    session = Session(cfg, jh.symbols, ports, step_fn=step_fn)
    n_ticks = n_events = 0
    try:
        for jt in iter_journal(src):
            session.step_batches(jt.tick_id, jt.batches, session_start=jt.session_start)
            n_ticks += 1
            n_events += sum(len(b.events) for b in jt.batches)
    finally:
        session.close()
    diff = compare_logs(src, out) if compare else None
    return replay_message(n_ticks, n_events, out, compared=compare, diff=diff)


def _dropped(recovery: object) -> bool:
    """Did opening the file have to cut a torn tail? (Clean opens say nothing.)"""
    return bool(getattr(recovery, "truncated_bytes", 0) or getattr(recovery, "dropped_ticks", ())
                or getattr(recovery, "removed_files", ()))

