"""Test helper: play (recv_ms, event) pairs through the pure core, tick by tick."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import engine_core as ec
from engine_core.canonical import CanonicalBatch

TICK_MS = 250


def tick_of(recv_ms: int) -> int:
    """The tick whose 250 ms window (end exclusive of the previous boundary) holds recv_ms."""
    return recv_ms // TICK_MS + 1


def batches(symbols: Sequence[str], events: Iterable[tuple[int, ec.MarketEvent]],
            first_tick: int | None = None, last_tick: int | None = None
            ) -> Iterator[tuple[int, tuple[CanonicalBatch, ...]]]:
    """Assign events to ticks by receive time and flush every tick in order (empty ones too)."""
    q = ec.CanonicalEngine(symbols)
    cur = first_tick
    for recv, ev in events:
        t = tick_of(recv)
        if cur is None:
            cur = t
        while cur < t:
            yield cur, q.flush(cur)
            cur += 1
        q.ingest(ev)
    if cur is not None:
        end = last_tick if last_tick is not None else cur
        while cur <= end:
            yield cur, q.flush(cur)
            cur += 1


def run(cfg: ec.Config, symbols: Sequence[str], events: Iterable[tuple[int, ec.MarketEvent]],
        ) -> Iterator[tuple[int, tuple[ec.Record, ...], tuple[ec.Alert, ...]]]:
    state = ec.initial_state(cfg, symbols)
    for tick, tb in batches(symbols, events):
        state, recs, alerts = ec.step(state, tb, tick)
        yield tick, recs, alerts
