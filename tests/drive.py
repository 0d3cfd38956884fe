"""Test helper: play (recv_ms, event) pairs through the shell's one loop, in memory.

The same `Session` as `live` and `run` (ingest -> flush -> step -> log -> alerts), with
in-memory ports: the log port hands each tick's records and alerts back to the test.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

import engine_core as ec
from engine_app.bootstrap import run_events
from engine_app.ports import MemoryQuarantine, Ports
from engine_app.session import Session

#: (tick, its records as `step` gave them (a `TickRecords`) or as a tuple, its alerts)
Stepped = tuple[int, Sequence[ec.Record], tuple[ec.Alert, ...]]


@attrs.define
class MemoryLog:
    """A log port that keeps what it is given, for the test to read."""

    ticks: list[Stepped] = attrs.field(factory=list)
    last_tick: int | None = None

    def append_tick(self, tick_id: int, records: Sequence[ec.Record],
                    alerts: Sequence[ec.Alert]) -> bytes:
        self.ticks.append((tick_id, records if isinstance(records, ec.TickRecords | tuple)
                           else tuple(records), tuple(alerts)))
        self.last_tick = tick_id
        return b""

    def close(self) -> None:
        """Nothing to close."""


@attrs.define
class MemoryAlerts:
    """An alerts port that keeps every alert."""

    alerts: list[ec.Alert] = attrs.field(factory=list)

    def append(self, alerts: Iterable[ec.Alert]) -> None:
        self.alerts.extend(alerts)

    def close(self) -> None:
        """Nothing to close."""


def memory_session(cfg: ec.Config, symbols: Sequence[str]) -> tuple[Session, MemoryLog]:
    """A session whose ports are all in memory."""
    log = MemoryLog()
    ports = Ports(log=log, alerts=MemoryAlerts(), quarantine=MemoryQuarantine())
    return Session(cfg, tuple(symbols), ports), log


def run(cfg: ec.Config, symbols: Sequence[str], events: Iterable[tuple[int, ec.MarketEvent]],
        ) -> list[Stepped]:
    """Every tick from the first event's to the last event's, with its records and alerts."""
    session, log = memory_session(cfg, symbols)
    run_events(session, events)
    return log.ticks
