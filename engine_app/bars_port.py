"""The bars port of the one loop: every accepted event also feeds DIR/bars/<SYMBOL>.bars.

`evaluate` reads one-minute bars (`engine_adapters.evaluation.bars`); a data dir that has
them is scored without re-reading its journal (issue 11). The loop hands this port each
tick's frozen batches *after* the tick was journaled, stepped and logged, so the bars hold
exactly the events the engine saw, and nothing the bars do can delay a record.

Cost on the hot path: one `BarBuilder.feed_all` call per non-empty batch (per event, an
isinstance check and a few float operations; the open bar is looked up once per minute);
closed bars are written once a minute of ticks (every 240 ticks), never per event, packed with
`struct` (`bar_rows`: the loop never imports numpy). A bar stays open one extra minute for
late events (see `BarRows`).

Restarts and crashes: a new session starts a fresh builder. Bars already on disk are never
rewritten: a bar whose minute is not after the last one written for that symbol is dropped
(the minute in progress at a stop is written at close; at a crash, at most the two open
minutes are lost, and the journal still holds their events: `bars_from_journal` rebuilds
them all).
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from pathlib import Path

import engine_core as ec
from engine_adapters.evaluation.bar_rows import BarRows, Row, append_rows, last_minutes

#: Ticks between two writes of closed bars (one minute of 250-ms ticks).
WRITE_EVERY_TICKS = 240
_payload = operator.attrgetter("payload")


class BarsWriter:
    """Builds one-minute bars from each tick's batches and appends them to `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._builder = BarRows()
        self._feed = self._builder.feed_all
        self._last_minute = last_minutes(self.folder) if self.folder.is_dir() else {}
        self.written = 0

    def add_tick(self, tick_id: int, batches: Sequence[ec.CanonicalBatch]) -> None:
        """Feed one tick's events; write the bars closed so far once a minute of ticks."""
        feed = self._feed
        for b in batches:
            if b.events:
                feed(map(_payload, b.events))
        if tick_id % WRITE_EVERY_TICKS == 0:
            self._write(self._builder.drain_rows())

    def _write(self, bars: Mapping[str, list[Row]]) -> None:
        fresh: dict[str, list[Row]] = {}
        for sym, rows in bars.items():
            last = self._last_minute.get(sym)
            if last is not None:
                rows = [r for r in rows if _minute(r) > last]
            if rows:
                fresh[sym] = rows
                self._last_minute[sym] = _minute(rows[-1])
                self.written += len(rows)
        if fresh:
            append_rows(self.folder, fresh)

    def close(self) -> None:
        """Close every open bar and write it (the end of a capture, a stopped live)."""
        self._write(self._builder.flush_rows())


def _minute(row: Row) -> int:
    """The bar start of a row (its first field, `minute_ms`)."""
    m = row[0]
    assert isinstance(m, int)
    return m
