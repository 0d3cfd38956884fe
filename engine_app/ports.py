"""The ports of the shell loop: what it writes to, as Protocols, and the bundle it is handed.

The real implementations live in `engine_adapters` (`JournalWriter`, `LogWriter`,
`AlertsFile`, `QuarantineWriter`, webhook/JSON-lines sinks); `bootstrap.open_ports` wires
them for a data dir. Tests hand in fakes of the same shape through the same functions.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import attrs

import engine_core as ec
from engine_adapters.evidence_text import AlertEvidence
from engine_adapters.ingest import QuarantinePort
from engine_adapters.quarantine import QuarantineEntry, reason_key
from engine_adapters.storage.evidence_store import EvidenceStore
from engine_app.datadir import DataDir

#: Told of every tick's alerts (webhooks, the JSON-lines output, the terminal view).
AlertSink = Callable[[Sequence[ec.Alert]], None]


class JournalPort(Protocol):
    """Freezes each tick's canonical batches before they are stepped (the replay input)."""

    def append_tick(self, tick_id: int, batches: Sequence[ec.CanonicalBatch],
                    session_start: bool) -> None: ...

    def close(self) -> None: ...


class LogPort(Protocol):
    """The output log: one record per token per tick, chained (the replay authority)."""

    @property
    def last_tick(self) -> int | None: ...

    def append_tick(self, tick_id: int, records: Sequence[ec.Record],
                    alerts: Sequence[ec.Alert]) -> bytes: ...

    def close(self) -> None: ...


class AlertsPort(Protocol):
    """`alerts.jsonl`: every alert, in tick order."""

    def append(self, alerts: Iterable[ec.Alert]) -> None: ...

    def close(self) -> None: ...


#: Each alert's evidence, in the order of the alerts (None where there is none).
Evidence = Sequence[AlertEvidence | None]


@runtime_checkable
class EvidenceAlertsPort(Protocol):
    """An `AlertsPort` that also states each alert's evidence (`AlertsFile`).

    The loop hands evidence only where `takes_evidence` says so: a port or sink written
    for `append(alerts)` alone keeps working.
    """

    takes_evidence: bool

    def append(self, alerts: Iterable[ec.Alert], evidence: Evidence | None = None) -> None: ...


@runtime_checkable
class EvidenceAlertSink(Protocol):
    """An `AlertSink` that also takes each alert's evidence (webhooks, `--json`, the view)."""

    takes_evidence: bool

    def __call__(self, alerts: Sequence[ec.Alert], evidence: Evidence | None = None) -> None: ...


class BarsPort(Protocol):
    """One-minute bars of the accepted events, for `evaluate` (`engine_app.bars_port`)."""

    def add_tick(self, tick_id: int, batches: Sequence[ec.CanonicalBatch]) -> None: ...

    def close(self) -> None: ...


class QuarantineSink(QuarantinePort, Protocol):
    """The quarantine port plus what the closing summary reads."""

    def summary(self) -> Mapping[str, int]: ...

    def close(self) -> None: ...


class TickMetrics(Protocol):
    """Told how late each tick was stepped and how long the step took (live only)."""

    def observe_tick(self, lag_ms: int, step_s: float) -> None: ...


@attrs.frozen(kw_only=True)
class Ports:
    """Everything one session writes to. `journal` is None when the input is a journal."""

    log: LogPort
    alerts: AlertsPort
    quarantine: QuarantineSink
    journal: JournalPort | None = None
    sinks: tuple[AlertSink, ...] = ()
    #: Where the manifest is written on close (None: no data dir, e.g. in memory).
    data_dir: DataDir | None = None
    #: What opening the files had to repair (torn tails, a journal ahead of the log).
    recovery: tuple[str, ...] = ()
    #: DIR/bars (None: no bars, e.g. a replay or in memory).
    bars: BarsPort | None = None
    #: DIR/evidence: the core's evidence records (None: not stored, e.g. in memory).
    evidence: EvidenceStore | None = None


class MemoryQuarantine:
    """A quarantine kept in memory (a journal source never quarantines; tests read it)."""

    def __init__(self) -> None:
        self.entries: list[QuarantineEntry] = []
        self.counts: collections.Counter[str] = collections.Counter()

    def write(self, entry: QuarantineEntry) -> None:
        self.entries.append(entry)
        self.counts[reason_key(entry.reason)] += 1

    def summary(self) -> Mapping[str, int]:
        return dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def close(self) -> None:
        """Nothing to flush."""
