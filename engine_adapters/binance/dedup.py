"""Drop duplicate and stale frames by (event type, symbol, id); report aggTrade id gaps.

Duplicates are normal: a planned reconnect overlaps the old and new connection (fixtures
README fact 7: the 24 h limit), and a flaky network or the fake exchange's fault knobs repeat
or reorder frames. Each keyed stream has a monotonic id:

* aggTrade `a` — contiguous per symbol, so a jump is a *gap* whose missing range is returned
  (it can be fetched back with REST `aggTrades?fromId=`);
* bookTicker `u` — increasing but not contiguous: older or equal ids are dropped, no gaps;
* markPriceUpdate `E` and forceOrder `o.T` — increasing event times (forceOrder pushes at
  most one liquidation per symbol per second: fact 9), so an equal or older time is a repeat.

An id at or below the last one seen is dropped: DUPLICATE if it is not inside a gap we
reported, OUT_OF_ORDER if it is (it arrived late; the gap was already announced and the
backfill will bring it back, so accepting it would count it twice). An aggTrade id older
than the first one kept (the opening frame was overtaken) is dropped as OUT_OF_ORDER with a
one-id gap, so it is still accounted for. Frames that carry no
known id (acks, arrays, malformed text) PASS untouched: judging them is the parser's job.
Only the ids are decoded here, never the market values.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Any

import attrs
import orjson


class Verdict(enum.Enum):
    """What to do with one frame."""

    #: New id: deliver it.
    KEEP = "keep"
    #: Already seen (same or older id, not in a reported gap): drop it.
    DUPLICATE = "duplicate"
    #: Older id that falls in a gap already reported: drop it, the backfill covers it.
    OUT_OF_ORDER = "out_of_order"
    #: No id to judge (ack, array, unknown event, malformed): deliver it unchanged.
    PASS = "pass"


@attrs.frozen(kw_only=True, slots=True)
class IdGap:
    """aggTrade ids `first..last` (inclusive) of `symbol` that never arrived."""

    symbol: str
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@attrs.frozen(kw_only=True, slots=True)
class DedupResult:
    """The verdict for one frame, with the gap it revealed (if any)."""

    verdict: Verdict
    gap: IdGap | None = None


_KEEP = DedupResult(verdict=Verdict.KEEP)
_PASS = DedupResult(verdict=Verdict.PASS)
_DUP = DedupResult(verdict=Verdict.DUPLICATE)
_OOO = DedupResult(verdict=Verdict.OUT_OF_ORDER)

#: How many recent gaps per symbol are remembered to classify late frames.
_GAP_MEMORY = 64


@attrs.define(kw_only=True, slots=True)
class DedupCounters:
    """Running totals (mutable; read them for metrics)."""

    kept: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    passed: int = 0
    gaps: int = 0
    missing_ids: int = 0


class Deduper:
    """Stateful judge of frame ids; one per feed (all connections share it)."""

    __slots__ = ("_first", "_gaps", "_last", "counters")

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], int] = {}
        self._first: dict[str, int] = {}
        self._gaps: dict[str, deque[tuple[int, int]]] = {}
        self.counters = DedupCounters()

    def check(self, text: str | bytes) -> DedupResult:
        """Judge one frame (combined or raw form) and remember its id if it is kept."""
        key = _frame_key(text)
        if key is None:
            self.counters.passed += 1
            return _PASS
        kind, symbol, ident = key
        return self.observe(kind, symbol, ident)

    def observe(self, kind: str, symbol: str, ident: int) -> DedupResult:
        """Judge an already-extracted id (used by `check` and by REST backfill merging)."""
        c = self.counters
        slot = (kind, symbol)
        last = self._last.get(slot)
        if last is None or ident > last:
            self._last[slot] = ident
            if last is None and kind == "aggTrade":
                self._first[symbol] = ident
            if kind == "aggTrade" and last is not None and ident > last + 1:
                gap = IdGap(symbol=symbol, first=last + 1, last=ident - 1)
                ring = self._gaps.get(symbol)
                if ring is None:
                    ring = self._gaps[symbol] = deque(maxlen=_GAP_MEMORY)
                ring.append((gap.first, gap.last))
                c.kept += 1
                c.gaps += 1
                c.missing_ids += gap.count
                return DedupResult(verdict=Verdict.KEEP, gap=gap)
            c.kept += 1
            return _KEEP
        if kind == "aggTrade" and ident < last:
            ring = self._gaps.get(symbol)
            for lo, hi in ring or ():
                if lo <= ident <= hi:
                    c.out_of_order += 1
                    return _OOO
            first = self._first.get(symbol, ident)
            if ident < first:
                # Older than the first id we kept (the opening frame was overtaken): it
                # was never delivered, so account it as a one-id gap for the backfill.
                self._first[symbol] = ident
                gap = IdGap(symbol=symbol, first=ident, last=ident)
                if ring is None:
                    ring = self._gaps[symbol] = deque(maxlen=_GAP_MEMORY)
                ring.append((ident, ident))
                c.out_of_order += 1
                c.gaps += 1
                c.missing_ids += 1
                return DedupResult(verdict=Verdict.OUT_OF_ORDER, gap=gap)
        c.duplicates += 1
        return _DUP

    def last_id(self, kind: str, symbol: str) -> int | None:
        """The highest id kept so far for (event type, symbol)."""
        return self._last.get((kind, symbol))


def _frame_key(text: str | bytes) -> tuple[str, str, int] | None:
    try:
        obj: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    data = obj.get("data", obj) if "stream" in obj else obj
    if not isinstance(data, dict):
        return None
    kind = data.get("e")
    if kind == "forceOrder":
        order = data.get("o")
        if not isinstance(order, dict):
            return None
        symbol, ident = order.get("s"), order.get("T")
    else:
        field = _ID_FIELD.get(kind) if isinstance(kind, str) else None
        if field is None:
            return None
        symbol, ident = data.get("s"), data.get(field)
    # bool is an int subclass; a true/false id is malformed input, not an id.
    if not isinstance(symbol, str) or not isinstance(ident, int) or isinstance(ident, bool):
        return None
    assert isinstance(kind, str)
    return kind, symbol, ident


_ID_FIELD = {"aggTrade": "a", "bookTicker": "u", "markPriceUpdate": "E"}


class EventDeduper:
    """The same rules as `Deduper`, applied to parsed events instead of frame text.

    The shell parses every frame anyway, so judging the parsed event avoids decoding the JSON
    twice on the hot path. Trades are keyed by aggregate trade id per symbol: a jump opens a
    gap (returned, for a REST backfill), and ids inside an open gap are accepted exactly once
    when they arrive late (from the backfill), so they are neither lost nor double counted.
    Book updates, mark prices and liquidations are dropped when their id/time is not newer.
    """

    __slots__ = (
        "_book",
        "_gaps",
        "_liq",
        "_mark",
        "_trade",
        "duplicates",
        "gap_ids_filled",
        "gaps_opened",
    )

    def __init__(self) -> None:
        self._trade: dict[str, int] = {}
        self._gaps: dict[str, list[list[int]]] = {}
        self._book: dict[str, int] = {}
        self._mark: dict[str, int] = {}
        self._liq: dict[str, int] = {}
        self.duplicates = 0
        self.gaps_opened = 0
        self.gap_ids_filled = 0

    def trade(self, symbol: str, trade_id: int) -> tuple[bool, IdGap | None]:
        """(keep?, newly opened gap). Trade id 0 means "no id": always kept."""
        if trade_id == 0:
            return True, None
        last = self._trade.get(symbol)
        if last is None or trade_id == last + 1:
            self._trade[symbol] = trade_id
            return True, None
        if trade_id > last:
            self._trade[symbol] = trade_id
            gap = IdGap(symbol=symbol, first=last + 1, last=trade_id - 1)
            self._gaps.setdefault(symbol, []).append([gap.first, gap.last])
            self.gaps_opened += 1
            return True, gap
        for g in self._gaps.get(symbol, ()):
            if g[0] <= trade_id <= g[1]:
                self._fill(symbol, g, trade_id)
                self.gap_ids_filled += 1
                return True, None
        self.duplicates += 1
        return False, None

    def _fill(self, symbol: str, g: list[int], trade_id: int) -> None:
        gaps = self._gaps[symbol]
        if g[0] == g[1]:
            gaps.remove(g)
        elif trade_id == g[0]:
            g[0] += 1
        elif trade_id == g[1]:
            g[1] -= 1
        else:
            gaps.insert(gaps.index(g) + 1, [trade_id + 1, g[1]])
            g[1] = trade_id - 1

    def open_gaps(self, symbol: str) -> tuple[IdGap, ...]:
        return tuple(IdGap(symbol=symbol, first=a, last=b) for a, b in self._gaps.get(symbol, ()))

    def missing_in(self, gap: IdGap) -> int:
        """How many ids of `gap` are still missing (nothing changes)."""
        n = 0
        for a, b in self._gaps.get(gap.symbol, ()):
            lo, hi = max(a, gap.first), min(b, gap.last)
            if lo <= hi:
                n += hi - lo + 1
        return n

    def close_gap(self, gap: IdGap) -> int:
        """Forget what is still missing of `gap` (given up); returns how many ids stay lost."""
        lost = 0
        kept = []
        for a, b in self._gaps.get(gap.symbol, ()):
            if b < gap.first or a > gap.last:
                kept.append([a, b])
            else:
                lo, hi = max(a, gap.first), min(b, gap.last)
                lost += hi - lo + 1
                if a < lo:
                    kept.append([a, lo - 1])
                if hi < b:
                    kept.append([hi + 1, b])
        self._gaps[gap.symbol] = kept
        return lost

    def _newer(self, table: dict[str, int], symbol: str, ident: int) -> bool:
        last = table.get(symbol)
        if last is not None and ident <= last:
            self.duplicates += 1
            return False
        table[symbol] = ident
        return True

    def book(self, symbol: str, update_id: int) -> bool:
        return update_id == 0 or self._newer(self._book, symbol, update_id)

    def mark(self, symbol: str, event_ms: int) -> bool:
        return self._newer(self._mark, symbol, event_ms)

    def liquidation(self, symbol: str, trade_ms: int) -> bool:
        return self._newer(self._liq, symbol, trade_ms)
