"""One-minute market bars as plain rows, and their file records: the part `run` needs.

`BarRows.feed_all(events)` takes the `engine_core.events` objects the core receives (trades,
book tickers, mark prices, open interest, funding, liquidations) and closes a symbol's bar
when an event of a later minute arrives (a bar stays open one extra minute for late events;
later ones are counted in `late` and dropped). Bars are keyed by the exchange time of the
events, never by a local clock. Values that are levels (OI, mark, index, funding) carry the
last known value forward; flows (volumes, liquidations) are sums over the minute.

A closed bar is a tuple in `BAR_FIELDS` order; `append_rows` packs them as the records of
DIR/bars/<SYMBOL>.bars (the format is in `engine_adapters.evaluation.bars`, whose
`BAR_DTYPE` is built from `BAR_FIELDS`). No numpy here: the bars port of the one loop writes
its files with `struct`, so a `run` never imports numpy.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

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
#: A bar record's fields in file order, with their struct codes (q: little-endian i8,
#: d: f8). `bars.BAR_DTYPE` is the same layout as a numpy dtype.
BAR_FIELDS: tuple[tuple[str, str], ...] = (
    ("minute_ms", "q"),            # bar start, epoch ms (a multiple of 60000)
    ("open", "d"), ("high", "d"), ("low", "d"), ("close", "d"),  # trades; NaN if none
    ("base_volume", "d"), ("quote_volume", "d"),
    ("taker_sell_quote", "d"),     # quote volume whose aggressor sold (buyer was maker)
    ("trades", "q"),
    ("oi", "d"), ("oi_value", "d"),  # last open interest, and times the last price
    ("mark", "d"), ("index", "d"), ("funding", "d"),  # last known; NaN before any
    ("mid", "d"),                  # last book mid; NaN without a book
    ("liq_long_quote", "d"), ("liq_short_quote", "d"),  # longs / shorts force-closed
)
BAR_RECORD = struct.Struct("<" + "".join(code for _, code in BAR_FIELDS))
#: The file header: magic, record size, 0.
HEADER = struct.Struct("<8sII")
#: The events a bar takes besides trades (the most frequent first: `isinstance` tries them in
#: order). Trades, most events, are taken by their exact class (the core's own, never derived).
_BAR_EVENTS = (BookTickerReceived, MarkPriceReceived, OpenInterestReceived, FundingReceived,
               LiquidationReceived)
NAN = math.nan
Row = tuple[object, ...]


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

    def record(self, last_price: float) -> Row:
        px = self.close if self.close == self.close else (
            self.mark if self.mark == self.mark else last_price)
        return (self.minute, self.open, self.high, self.low, self.close, self.base,
                self.quote, self.sell, self.trades, self.oi, self.oi * px, self.mark,
                self.index, self.funding, self.mid, self.liq_l, self.liq_s)


class BarRows:
    """Feeds events, yields closed bars per symbol as rows (see the module docstring)."""

    def __init__(self) -> None:
        self._open: dict[str, list[_Open]] = {}
        self._last_px: dict[str, float] = {}
        self._done: dict[str, list[Row]] = {}
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

    def drain_rows(self) -> dict[str, list[Row]]:
        """The bars closed since the last drain, per symbol, in minute order."""
        out = {s: rows for s, rows in self._done.items() if rows}
        self._done = {}
        return out

    def flush_rows(self) -> dict[str, list[Row]]:
        """Close every open bar (end of data) and drain."""
        for sym, bars in self._open.items():
            for b in bars:
                self._close(sym, b)
        self._open = {}
        return self.drain_rows()


def append_rows(folder: Path, bars: Mapping[str, Sequence[Row]]) -> None:
    """Append bar rows to folder/<SYMBOL>.bars (created with its header when new)."""
    folder.mkdir(parents=True, exist_ok=True)
    pack = BAR_RECORD.pack
    for sym, rows in bars.items():
        path = folder / f"{sym}.bars"
        new = not path.exists() or path.stat().st_size < HEADER.size
        with open(path, "ab") as f:
            if new:
                f.truncate(0)
                f.write(HEADER.pack(MAGIC, BAR_RECORD.size, 0))
            f.write(b"".join([pack(*r) for r in rows]))


def read_header(f: BinaryIO, path: Path) -> bool:
    """Read a bars file's header from `f`: False when there is none yet (a torn start),
    ValueError naming `path` when it is not a bars file of this version."""
    head = f.read(HEADER.size)
    if len(head) < HEADER.size:
        return False
    magic, size, _ = HEADER.unpack(head)
    if magic != MAGIC or size != BAR_RECORD.size:
        raise ValueError(f"{path}: not a bars file of this version "
                         f"(magic {magic!r}, record size {size})")
    return True


def last_minutes(folder: Path) -> dict[str, int]:
    """symbol -> minute of the last whole record of each bars file in `folder` (files
    without a whole record are left out); ValueError naming a file that is not a bars file."""
    out: dict[str, int] = {}
    for path in sorted(folder.glob("*.bars")):
        with open(path, "rb") as f:
            if not read_header(f, path):
                continue
            size = BAR_RECORD.size
            n = (path.stat().st_size - HEADER.size) // size
            if n:
                f.seek(HEADER.size + (n - 1) * size)
                out[path.stem] = int.from_bytes(f.read(8), "little", signed=True)
    return out


__all__ = ["BAR_FIELDS", "BAR_RECORD", "HEADER", "MAGIC", "MINUTE_MS", "BarRows", "Row",
           "append_rows", "last_minutes", "read_header"]
