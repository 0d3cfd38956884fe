"""Event normalization and validation at the core's boundary (design note step 1).

`EventNormalizer.normalize(event)` either returns a `CanonicalEvent` (token id from the fixed
symbol table, source type, exchange time, next local sequence number) or a `Rejection` naming
what was wrong. It never raises on market data: bad input is a value (STYLE rule 3), which the
shell writes to the quarantine file. Validation happens here once, so the per-tick code can
trust every number it sees: prices and sizes are finite and positive, times are non-negative
integers, enums are members.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from engine_core.canonical import CanonicalEvent
from engine_core.events import (
    SOURCE_OF,
    BookTickerReceived,
    DataHealthReceived,
    DepthReceived,
    FundingInfoReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

#: Largest exchange timestamp accepted (year 2286 in epoch ms); anything above is garbage.
MAX_TS_MS = 10**13
#: Largest absolute value of any numeric field; a price or size beyond this is garbage.
MAX_ABS_VALUE = 1e15
#: Largest plausible absolute funding rate per interval (Binance caps are a few percent).
MAX_ABS_FUNDING = 1.0
#: Most bands one depth event may carry, and the widest band edge (bps of the mid: 100 %).
MAX_DEPTH_BANDS = 32
MAX_BAND_BPS = 10_000
#: Longest funding interval accepted, in hours (Binance uses 1, 4 and 8).
MAX_FUNDING_HOURS = 24
#: Most points one open-interest history may carry (30 days of 5-minute points is 8640).
MAX_OI_HISTORY_POINTS = 100_000
_new = tuple.__new__  # a CanonicalEvent built positionally, in one C call


@attrs.frozen(kw_only=True, slots=True)
class Rejection:
    """Why an event was refused. `field` names the offending field, when there is one."""

    reason: str
    symbol: str
    field: str = ""
    event: object = None

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.symbol or '?'}: {self.reason}{where}"


def _is_num(v: object) -> bool:
    return (type(v) is float or type(v) is int) and not isinstance(v, bool)


def _check_positive(event: MarketEvent, name: str) -> str | None:
    v = getattr(event, name)
    if not _is_num(v):
        return f"{name} must be a number, got {type(v).__name__}"
    if not math.isfinite(v):
        return f"{name} must be finite, got {v!r}"
    if v <= 0:
        return f"{name} must be > 0, got {v!r}"
    if v > MAX_ABS_VALUE:
        return f"{name} is implausibly large: {v!r}"
    return None


def _check_int(event: MarketEvent, name: str, hi: int) -> str | None:
    v = getattr(event, name)
    if type(v) is not int:
        return f"{name} must be an integer, got {type(v).__name__}"
    if v < 0 or v > hi:
        return f"{name} out of range [0, {hi}]: {v}"
    return None


_POSITIVE: dict[type, tuple[str, ...]] = {
    TradeReceived: ("price", "qty"),
    BookTickerReceived: ("bid", "bid_qty", "ask", "ask_qty"),
    LiquidationReceived: ("price", "qty"),
    MarkPriceReceived: ("mark_price", "index_price"),
    OpenInterestReceived: (),
    FundingReceived: ("mark_price", "index_price"),
    DataHealthReceived: (),
    DepthReceived: (),
    FundingInfoReceived: (),
    OpenInterestHistoryReceived: (),
}
_IDS: dict[type, tuple[str, ...]] = {
    TradeReceived: ("trade_id",),
    BookTickerReceived: ("update_id",),
    MarkPriceReceived: ("next_funding_ts",),
    FundingReceived: ("next_funding_ts",),
    DataHealthReceived: ("count",),
}
_ID_MAX = 2**63 - 1


def _fast_ok(event: MarketEvent) -> bool:
    """True for a plainly valid trade or book update, the bulk of all traffic.

    Chained comparisons are False for NaN and infinities, so `0.0 < x < MAX` checks finite,
    positive and plausible at once. Anything else takes the slow path, which says what is
    wrong (STYLE rule 6: validation at the boundary, once, and cheap when all is well).
    """
    if type(event) is TradeReceived:
        e = event
        p, q, ts, tid = e.price, e.qty, e.exchange_ts, e.trade_id
        return (type(p) is float and type(q) is float and type(ts) is int
                and type(tid) is int and 0.0 < p < MAX_ABS_VALUE and 0.0 < q < MAX_ABS_VALUE
                and 0 <= ts <= MAX_TS_MS and 0 <= tid <= _ID_MAX
                and type(e.buyer_is_maker) is bool
                and type(e.symbol) is str and e.symbol != "")
    if type(event) is BookTickerReceived:
        b, bq, a, aq = event.bid, event.bid_qty, event.ask, event.ask_qty
        ts, uid, sym = event.exchange_ts, event.update_id, event.symbol
        return (type(b) is float and type(bq) is float and type(a) is float
                and type(aq) is float and type(ts) is int and type(uid) is int
                and 0.0 < b <= a < MAX_ABS_VALUE and 0.0 < bq < MAX_ABS_VALUE
                and 0.0 < aq < MAX_ABS_VALUE and 0 <= ts <= MAX_TS_MS and 0 <= uid <= _ID_MAX
                and type(sym) is str and sym != "")
    return False


def validate(event: MarketEvent) -> tuple[str, str] | None:
    """Return (field, reason) for the first problem found, or None if the event is valid."""
    if _fast_ok(event):
        return None
    cls = type(event)
    if cls not in SOURCE_OF:
        return "", f"not a market event: {cls.__name__}"
    sym = event.symbol
    if type(sym) is not str or not sym:
        return "symbol", "symbol must be a non-empty string"
    err = _check_int(event, "exchange_ts", MAX_TS_MS)
    if err:
        return "exchange_ts", err
    for name in _POSITIVE[cls]:
        err = _check_positive(event, name)
        if err:
            return name, err
    for name in _IDS.get(cls, ()):
        err = _check_int(event, name, _ID_MAX)
        if err:
            return name, err
    # Fields are read as `object`: the annotations say what a valid event holds, and this
    # function exists for the events that do not.
    match event:
        case TradeReceived():
            maker: object = event.buyer_is_maker
            if type(maker) is not bool:
                return "buyer_is_maker", "buyer_is_maker must be a bool"
        case BookTickerReceived() if event.bid > event.ask:
            return "bid", f"crossed book: bid {event.bid!r} > ask {event.ask!r}"
        case LiquidationReceived():
            side: object = event.side
            if not isinstance(side, Side):
                return "side", f"side must be a Side, got {side!r}"
        case MarkPriceReceived() | FundingReceived():
            rate = event.funding_rate
            if not _is_num(rate) or not math.isfinite(rate) or abs(rate) > MAX_ABS_FUNDING:
                return "funding_rate", f"funding_rate must be a finite rate, got {rate!r}"
        case OpenInterestReceived():
            # zero is refused too: a symbol with open interest has some, and a zero would seed
            # the OI baselines at nothing (every later value would look like an infinite
            # build-up)
            oi = event.open_interest
            if not _is_num(oi) or not math.isfinite(oi) or oi <= 0 or oi > MAX_ABS_VALUE:
                return "open_interest", f"open_interest must be a finite number > 0, got {oi!r}"
        case DataHealthReceived():
            kind: object = event.kind
            if not isinstance(kind, HealthKind):
                return "kind", f"kind must be a HealthKind, got {kind!r}"
        case DepthReceived():
            return _check_depth(event)
        case FundingInfoReceived():
            return _check_funding_info(event)
        case OpenInterestHistoryReceived():
            return _check_oi_history(event)
    return None


def _finite_nonneg(v: object) -> bool:
    return (type(v) is float or type(v) is int) and math.isfinite(v) and 0 <= v <= MAX_ABS_VALUE


def _check_depth(e: DepthReceived) -> tuple[str, str] | None:
    edges: object = e.edges_bps
    if type(edges) is not tuple or not 0 < len(edges) <= MAX_DEPTH_BANDS:
        return "edges_bps", f"edges_bps must be a tuple of 1..{MAX_DEPTH_BANDS} band edges"
    prev = 0
    for x in edges:
        if type(x) is not int or not prev < x <= MAX_BAND_BPS:
            return "edges_bps", (f"edges_bps must be integers, strictly ascending in "
                                 f"(0, {MAX_BAND_BPS}], got {edges!r}")
        prev = x
    for name in ("bid_notional", "ask_notional"):
        side: object = getattr(e, name)
        if type(side) is not tuple or len(side) != len(edges):
            return name, f"{name} must be a tuple of one notional per band edge ({len(edges)})"
        last = 0.0
        for v in side:
            if not _finite_nonneg(v) or v < last:
                return name, (f"{name} must be finite, >= 0 and non-decreasing (cumulative "
                              f"from the mid), got {side!r:.80}")
            last = v
    for name in ("mid", "reach_bps"):
        if not _finite_nonneg(getattr(e, name)):
            return name, f"{name} must be a finite number >= 0 (0 = not given)"
    return None


def _check_funding_info(e: FundingInfoReceived) -> tuple[str, str] | None:
    h: object = e.interval_hours
    if type(h) is not int or not 0 < h <= MAX_FUNDING_HOURS:
        return "interval_hours", (f"interval_hours must be an integer in 1..{MAX_FUNDING_HOURS},"
                                  f" got {h!r}")
    cap, floor = e.cap, e.floor
    if not _is_num(cap) or not math.isfinite(cap) or not 0 < cap <= MAX_ABS_FUNDING:
        return "cap", f"cap must be a rate in (0, {MAX_ABS_FUNDING}], got {cap!r}"
    if not _is_num(floor) or not math.isfinite(floor) or not -MAX_ABS_FUNDING <= floor <= 0:
        return "floor", f"floor must be a rate in [-{MAX_ABS_FUNDING}, 0], got {floor!r}"
    return None


def _check_oi_history(e: OpenInterestHistoryReceived) -> tuple[str, str] | None:
    pts: object = e.points
    if type(pts) is not tuple or not 0 < len(pts) <= MAX_OI_HISTORY_POINTS:
        return "points", f"points must be a tuple of 1..{MAX_OI_HISTORY_POINTS} (ts, oi) pairs"
    prev = -1
    for i, pt in enumerate(pts):
        if type(pt) is not tuple or len(pt) != 2:
            return "points", f"points[{i}] must be a (ts, oi) pair, got {pt!r:.40}"
        ts, oi = pt
        if type(ts) is not int or not prev < ts <= MAX_TS_MS:
            return "points", (f"points[{i}]: ts must be integer ms, strictly ascending, "
                              f"got {ts!r} after {prev}")
        if not _is_num(oi) or not math.isfinite(oi) or not 0 < oi <= MAX_ABS_VALUE:
            return "points", f"points[{i}]: open interest must be a finite number > 0, got {oi!r}"
        prev = ts
    if e.exchange_ts < prev:
        return "exchange_ts", f"exchange_ts {e.exchange_ts} is before the newest point {prev}"
    return None


class EventNormalizer:
    """Binds events to token ids of a fixed symbol table and numbers them in arrival order."""

    __slots__ = ("_index", "next_seq", "symbols")

    def __init__(self, symbols: Sequence[str], *, first_seq: int = 0) -> None:
        self.symbols = tuple(symbols)
        if list(self.symbols) != sorted(set(self.symbols)):
            raise ValueError("symbols must be unique and sorted by name (token id = index)")
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self.next_seq = first_seq

    def normalize(self, event: MarketEvent) -> CanonicalEvent | Rejection:
        """Validate `event`; on success give it a token id and the next local sequence number."""
        if _fast_ok(event):
            token_id = self._index.get(event.symbol)
            if token_id is not None:
                seq = self.next_seq
                self.next_seq = seq + 1
                return _new(CanonicalEvent, (token_id, SOURCE_OF[type(event)],
                                             event.exchange_ts, seq, event))
        problem = validate(event)
        symbol = getattr(event, "symbol", "")
        if problem is not None:
            return Rejection(reason=problem[1], field=problem[0],
                             symbol=symbol if isinstance(symbol, str) else "", event=event)
        token_id = self._index.get(symbol)
        if token_id is None:
            return Rejection(reason=f"unknown symbol {symbol!r}: not in this run's universe",
                             field="symbol", symbol=symbol, event=event)
        seq = self.next_seq
        self.next_seq = seq + 1
        return _new(CanonicalEvent, (token_id, SOURCE_OF[type(event)], event.exchange_ts, seq,
                                     event))
