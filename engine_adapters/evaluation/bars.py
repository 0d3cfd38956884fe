"""One-minute market bars per symbol, built from the engine's input events, and their files.

`BarBuilder.feed(event)` takes the `engine_core.events` objects the core receives (trades,
book tickers, mark prices, open interest, funding, liquidations) and closes a symbol's bar
when an event of a later minute arrives (a bar stays open one extra minute for late events;
later ones are counted in `late` and dropped). Bars are keyed by the exchange time of the
events, never by a local clock. Values that are levels (OI, mark, index, funding) carry the
last known value forward; flows (volumes, liquidations) are sums over the minute.

File format (DIR/bars/<SYMBOL>.bars), appendable and loaded with one `np.fromfile`:
a 16-byte header `b"CXBARS01"` + u32 record size + u32 0, then packed little-endian records
of `BAR_DTYPE` in minute order. A torn last record (a crash mid-append) is ignored on load.
`bars_from_journal(data_dir)` rebuilds the bars of a data dir from its input journal.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from engine_adapters.storage.journal import iter_journal
from engine_core.events import (
    BookTickerReceived,
    FundingReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

MINUTE_MS = 60_000
MAGIC = b"CXBARS01"
BAR_DTYPE = np.dtype([
    ("minute_ms", "<i8"),          # bar start, epoch ms (a multiple of 60000)
    ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),  # trades; NaN if none
    ("base_volume", "<f8"), ("quote_volume", "<f8"),
    ("taker_sell_quote", "<f8"),   # quote volume whose aggressor sold (buyer was maker)
    ("trades", "<i8"),
    ("oi", "<f8"), ("oi_value", "<f8"),   # last open interest, and times the last price
    ("mark", "<f8"), ("index", "<f8"), ("funding", "<f8"),  # last known; NaN before any
    ("mid", "<f8"),                # last book mid; NaN without a book
    ("liq_long_quote", "<f8"), ("liq_short_quote", "<f8"),  # longs / shorts force-closed
])
_HEADER = struct.Struct("<8sII")
#: The events a bar takes besides trades (the most frequent first: `isinstance` tries them in
#: order). Trades, most events, are taken by their exact class (the core's own, never derived).
_BAR_EVENTS = (BookTickerReceived, MarkPriceReceived, OpenInterestReceived, FundingReceived,
               LiquidationReceived)
NAN = math.nan


class _Open:
    """The bar of one symbol being filled, plus the levels carried from earlier bars."""

    __slots__ = ("base", "close", "funding", "high", "index", "liq_l", "liq_s", "low", "mark",
                 "mid", "minute", "oi", "open", "quote", "sell", "trades")

    def __init__(self, minute: int, prev: _Open | None) -> None:
        self.minute = minute
        self.open = self.high = self.low = self.close = NAN
        self.base = self.quote = self.sell = self.liq_l = self.liq_s = 0.0
        self.trades = 0
        if prev is None:
            self.oi = self.mark = self.index = self.funding = self.mid = NAN
        else:
            self.oi, self.mark, self.index = prev.oi, prev.mark, prev.index
            self.funding, self.mid = prev.funding, prev.mid

    def record(self, last_price: float) -> tuple[object, ...]:
        px = self.close if self.close == self.close else (
            self.mark if self.mark == self.mark else last_price)
        return (self.minute, self.open, self.high, self.low, self.close, self.base,
                self.quote, self.sell, self.trades, self.oi, self.oi * px, self.mark,
                self.index, self.funding, self.mid, self.liq_l, self.liq_s)


class BarBuilder:
    """Feeds events, yields closed bars per symbol (see the module docstring)."""

    def __init__(self) -> None:
        self._open: dict[str, list[_Open]] = {}
        self._last_px: dict[str, float] = {}
        self._done: dict[str, list[tuple[object, ...]]] = {}
        self.late = 0

    def _bar(self, symbol: str, ts: int) -> _Open | None:
        minute = ts - ts % MINUTE_MS
        bars = self._open.get(symbol)
        if not bars:
            b = _Open(minute, None)
            self._open[symbol] = [b]
            return b
        cur = bars[-1]
        if minute == cur.minute:
            return cur
        if minute > cur.minute:
            # close everything older than the previous minute: one minute of grace
            while len(bars) > 1:
                self._close(symbol, bars.pop(0))
            if minute - cur.minute > MINUTE_MS:
                self._close(symbol, bars.pop(0))
            b = _Open(minute, cur)
            bars.append(b)
            return b
        if len(bars) > 1 and bars[0].minute == minute:
            return bars[0]
        self.late += 1
        return None

    def _close(self, symbol: str, b: _Open) -> None:
        last = self._last_px.get(symbol, NAN)
        self._done.setdefault(symbol, []).append(b.record(last))
        if b.close == b.close:
            self._last_px[symbol] = b.close

    def feed(self, ev: object) -> None:
        """Add one engine input event (others, e.g. data-health notices, are ignored)."""
        self.feed_all((ev,))

    def feed_all(self, events: Iterable[object]) -> None:
        """`feed` each event in order (one call per batch: the hot path of `run` and `live`).

        A batch is one symbol's events, mostly of one minute: the open bar is looked up
        again only when the symbol or the minute changes (the lookup of the same symbol and
        minute returns the same bar, or None again for a late one, until another minute is
        fed); a trade is recognised by its exact class, the rest by one `isinstance` each.
        """
        bar = self._bar
        sym: str | None = None
        minute = -1
        b: _Open | None = None
        for ev in events:
            if type(ev) is TradeReceived:  # most events
                ts = ev.exchange_ts
                if ts - ts % MINUTE_MS != minute or ev.symbol != sym:
                    sym, minute = ev.symbol, ts - ts % MINUTE_MS
                    b = bar(sym, ts)
                elif b is None:
                    self.late += 1  # what `_bar` counts for each late event
                if b is None:
                    continue
                p = ev.price
                if b.trades == 0:
                    b.open = b.high = b.low = p
                elif p > b.high:
                    b.high = p
                elif p < b.low:
                    b.low = p
                b.close = p
                b.trades += 1
                q = ev.qty
                b.base += q
                b.quote += p * q
                if ev.buyer_is_maker:
                    b.sell += p * q
                continue
            if not isinstance(ev, _BAR_EVENTS):
                continue  # not a market event (a data-health notice): no bar
            ts = ev.exchange_ts
            if ts - ts % MINUTE_MS != minute or ev.symbol != sym:
                sym, minute = ev.symbol, ts - ts % MINUTE_MS
                b = bar(sym, ts)
            elif b is None:
                self.late += 1
            if b is None:
                continue
            if isinstance(ev, BookTickerReceived):
                b.mid = (ev.bid + ev.ask) / 2
            elif isinstance(ev, OpenInterestReceived):
                b.oi = ev.open_interest
            elif isinstance(ev, (MarkPriceReceived, FundingReceived)):
                b.mark, b.index = ev.mark_price, ev.index_price
                b.funding = ev.funding_rate
            elif isinstance(ev, LiquidationReceived):
                if ev.side is Side.SELL:
                    b.liq_l += ev.price * ev.qty
                else:
                    b.liq_s += ev.price * ev.qty

    def drain(self) -> dict[str, np.ndarray]:
        """The bars closed since the last drain, per symbol, as BAR_DTYPE arrays."""
        out = {s: np.array(rows, dtype=BAR_DTYPE) for s, rows in self._done.items() if rows}
        self._done = {}
        return out

    def flush(self) -> dict[str, np.ndarray]:
        """Close every open bar (end of data) and drain."""
        for sym, bars in self._open.items():
            for b in bars:
                self._close(sym, b)
        self._open = {}
        return self.drain()


def append_bars(folder: Path, bars: Mapping[str, np.ndarray]) -> None:
    """Append records to folder/<SYMBOL>.bars (created with its header when new)."""
    folder.mkdir(parents=True, exist_ok=True)
    for sym, arr in bars.items():
        path = folder / f"{sym}.bars"
        new = not path.exists() or path.stat().st_size < _HEADER.size
        with open(path, "ab") as f:
            if new:
                f.truncate(0)
                f.write(_HEADER.pack(MAGIC, BAR_DTYPE.itemsize, 0))
            f.write(np.ascontiguousarray(arr, dtype=BAR_DTYPE).tobytes())


def load_bars(folder: Path) -> dict[str, np.ndarray]:
    """Every symbol's bars in `folder`; ValueError naming a file that is not a bars file."""
    out: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.bars")):
        with open(path, "rb") as f:
            head = f.read(_HEADER.size)
            if len(head) < _HEADER.size:
                continue
            magic, size, _ = _HEADER.unpack(head)
            if magic != MAGIC or size != BAR_DTYPE.itemsize:
                raise ValueError(f"{path}: not a bars file of this version "
                                 f"(magic {magic!r}, record size {size})")
            data = f.read()
        n = len(data) // size
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
