"""Drop duplicate and stale events by (event type, symbol, id); report aggTrade id gaps.

Duplicates are normal: a planned reconnect overlaps the old and new connection (fixtures
README fact 7: the 24 h limit), and a flaky network or the fake exchange's fault knobs repeat
or reorder frames. Each keyed stream has a monotonic id, judged on the parsed event (the
ingest path parses every frame anyway, so the JSON is never decoded twice):

* aggTrade `a` — contiguous per symbol, so a jump opens a *gap* whose missing range is
  reported (it can be fetched back with REST `aggTrades?fromId=`); an id inside an open gap
  is accepted exactly once when it arrives late (from the backfill or a reordered frame);
  a gap given up (`close_gap`, a TRADE_GAP notice) turns its ids into duplicates; an id
  older than the first one kept (the opening frame was overtaken) is kept, and the ids
  between it and the first kept become a gap;
* bookTicker `u` — increasing but not contiguous: older or equal ids are dropped, no gaps;
* markPriceUpdate `E` and forceOrder `o.T` — increasing event times (forceOrder pushes at
  most one liquidation per symbol per second: fact 9), so an equal or older time is a repeat.

Events without such an id (open interest, funding, health) always pass.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from engine_core.events import (
    BookTickerReceived,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    TradeReceived,
)


@attrs.frozen(kw_only=True, slots=True)
class IdGap:
    """aggTrade ids `first..last` (inclusive) of `symbol` that never arrived."""

    symbol: str
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


class EventDeduper:
    """Judges parsed events new or repeated, by symbol and id (one per ingest path).

    The shell parses every frame anyway, so judging the parsed event avoids decoding the JSON
    twice on the hot path. Trades are keyed by aggregate trade id per symbol: a jump opens a
    gap (returned, for a REST backfill), and ids inside an open gap are accepted exactly once
    when they arrive late (from the backfill), so they are neither lost nor double counted.
    Book updates, mark prices and liquidations are dropped when their id/time is not newer.
    """

    __slots__ = (
        "_book",
        "_first",
        "_gaps",
        "_liq",
        "_mark",
        "_trade",
        "duplicates",
        "gap_ids_filled",
        "gaps_opened",
        "on_gap",
    )

    def __init__(self, on_gap: Callable[[IdGap], None] | None = None) -> None:
        #: Told of every newly opened trade-id gap (live fetches it back over REST).
        self.on_gap = on_gap
        self._trade: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self._gaps: dict[str, list[list[int]]] = {}
        self._book: dict[str, int] = {}
        self._mark: dict[str, int] = {}
        self._liq: dict[str, int] = {}
        self.duplicates = 0
        self.gaps_opened = 0
        self.gap_ids_filled = 0

    def keep(self, ev: MarketEvent) -> bool:
        """Is this parsed event new? Dispatches on the event type; other types always pass."""
        match ev:
            case TradeReceived():
                last = self._trade.get(ev.symbol)
                if last is not None and ev.trade_id == last + 1:  # the common case
                    self._trade[ev.symbol] = ev.trade_id
                    return True
                keep, gap = self.trade(ev.symbol, ev.trade_id)
                if gap is not None and self.on_gap is not None:
                    self.on_gap(gap)
                return keep
            case BookTickerReceived():
                return ev.update_id == 0 or self._newer(self._book, ev.symbol, ev.update_id)
            case MarkPriceReceived():
                return self._newer(self._mark, ev.symbol, ev.exchange_ts)
            case LiquidationReceived():
                return self._newer(self._liq, ev.symbol, ev.exchange_ts)
            case _:
                return True

    def trade(self, symbol: str, trade_id: int) -> tuple[bool, IdGap | None]:
        """(keep?, newly opened gap). Trade id 0 means "no id": always kept."""
        if trade_id == 0:
            return True, None
        last = self._trade.get(symbol)
        if last is None:
            self._trade[symbol] = self._first[symbol] = trade_id
            return True, None
        if trade_id == last + 1:
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
        first = self._first[symbol]
        if trade_id < first:
            # older than the first id kept (the opening frame was overtaken): never
            # delivered, so keep it; the ids between it and the first kept are a gap
            self._first[symbol] = trade_id
            if trade_id + 1 <= first - 1:
                gap = IdGap(symbol=symbol, first=trade_id + 1, last=first - 1)
                self._gaps.setdefault(symbol, []).append([gap.first, gap.last])
                self.gaps_opened += 1
                return True, gap
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
