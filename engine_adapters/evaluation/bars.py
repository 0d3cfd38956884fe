"""One-minute market bars per symbol, built from the engine's input events, and their files.

`BarBuilder.feed(event)` / `.feed_all(events)` take the `engine_core.events` objects the core
receives and close a symbol's bar when an event of a later minute arrives (the rules, and the
numpy-free builder `BarRows` that `run` uses, are in `engine_adapters.evaluation.bar_rows`);
`drain()` / `flush()` give the closed bars as `BAR_DTYPE` arrays.

File format (DIR/bars/<SYMBOL>.bars), appendable and loaded with one `np.fromfile`:
a 16-byte header `b"CXBARS01"` + u32 record size + u32 0, then packed little-endian records
of `BAR_DTYPE` (fields `bar_rows.BAR_FIELDS`) in minute order. A torn last record (a crash
mid-append) is ignored on load. `bars_from_journal(data_dir)` rebuilds the bars of a data dir
from its input journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from engine_adapters.evaluation.bar_rows import (
    BAR_FIELDS,
    BAR_RECORD,
    HEADER,
    MAGIC,
    MINUTE_MS,
    BarRows,
    read_header,
)
from engine_adapters.storage.journal import iter_journal

BAR_DTYPE = np.dtype([(name, "<i8" if code == "q" else "<f8") for name, code in BAR_FIELDS])
assert BAR_DTYPE.itemsize == BAR_RECORD.size  # the same records as `bar_rows` writes


class BarBuilder(BarRows):
    """Feeds events, yields closed bars per symbol as `BAR_DTYPE` arrays (`BarRows` gives
    the same bars as rows)."""

    def drain(self) -> dict[str, np.ndarray]:
        """The bars closed since the last drain, per symbol, as BAR_DTYPE arrays."""
        return {s: np.array(rows, dtype=BAR_DTYPE) for s, rows in self.drain_rows().items()}

    def flush(self) -> dict[str, np.ndarray]:
        """Close every open bar (end of data) and drain."""
        return {s: np.array(rows, dtype=BAR_DTYPE) for s, rows in self.flush_rows().items()}


def append_bars(folder: Path, bars: Mapping[str, np.ndarray]) -> None:
    """Append records to folder/<SYMBOL>.bars (created with its header when new)."""
    folder.mkdir(parents=True, exist_ok=True)
    for sym, arr in bars.items():
        path = folder / f"{sym}.bars"
        new = not path.exists() or path.stat().st_size < HEADER.size
        with open(path, "ab") as f:
            if new:
                f.truncate(0)
                f.write(HEADER.pack(MAGIC, BAR_DTYPE.itemsize, 0))
            f.write(np.ascontiguousarray(arr, dtype=BAR_DTYPE).tobytes())


def load_bars(folder: Path) -> dict[str, np.ndarray]:
    """Every symbol's bars in `folder`; ValueError naming a file that is not a bars file."""
    out: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.bars")):
        with open(path, "rb") as f:
            if not read_header(f, path):
                continue
            data = f.read()
        n = len(data) // BAR_DTYPE.itemsize
        out[path.stem] = np.frombuffer(data, dtype=BAR_DTYPE, count=n)
    return out


def bars_from_events(events: Iterable[object]) -> dict[str, np.ndarray]:
    b = BarBuilder()
    b.feed_all(events)
    return b.flush()


def bars_from_journal(data_dir: Path) -> dict[str, np.ndarray]:
    """The bars of a data dir rebuilt from its input journal (every journaled event)."""
    b = BarBuilder()
    feed = b.feed_all
    for tick in iter_journal(data_dir):
        for batch in tick.batches:
            feed([ev.payload for ev in batch.events])
    return b.flush()


def dense(arr: np.ndarray) -> np.ndarray:
    """Bars on a complete minute grid: missing minutes get zero flows and carried levels;
    close is carried forward (then back-filled from mark, then from the first close)."""
    if len(arr) == 0:
        return arr.copy()
    arr = np.sort(arr, order="minute_ms")
    first, last = int(arr["minute_ms"][0]), int(arr["minute_ms"][-1])
    n = (last - first) // MINUTE_MS + 1
    out = np.zeros(n, dtype=BAR_DTYPE)
    out["minute_ms"] = first + MINUTE_MS * np.arange(n, dtype=np.int64)
    pos = (arr["minute_ms"] - first) // MINUTE_MS
    for name in BAR_DTYPE.names or ():
        if name in ("minute_ms",):
            continue
        if name in ("open", "high", "low", "close", "oi", "oi_value", "mark", "index",
                    "funding", "mid"):
            col = np.full(n, np.nan)
            col[pos] = arr[name]
            if name not in ("open", "high", "low"):
                col = _ffill(col)
            out[name] = col
        else:
            out[name][pos] = arr[name]
    c = out["close"]
    miss = np.isnan(c)
    c[miss] = out["mark"][miss]
    out["close"] = _bfill(_ffill(c))
    return out


def _ffill(col: np.ndarray) -> np.ndarray:
    idx = np.where(np.isnan(col), 0, np.arange(len(col)))
    np.maximum.accumulate(idx, out=idx)
    res = col[idx]
    return res


def _bfill(col: np.ndarray) -> np.ndarray:
    return _ffill(col[::-1])[::-1]


__all__ = ["BAR_DTYPE", "MAGIC", "MINUTE_MS", "BarBuilder", "append_bars", "bars_from_events",
           "bars_from_journal", "dense", "load_bars"]
