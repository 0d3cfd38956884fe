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
