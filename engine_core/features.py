"""Feature extraction: one token's batch + its rolling state -> a FeatureFrame (design note step 4).

The extractor knows nothing of tiers, state machines, clusters, alerts or logs. It is a pure
function of the batch and the token's previous `FeatureState` (determinism point 2). Every
rolling window counts ticks: baselines are exponential moving averages with
alpha = 2 / (window + 1), updated once per tick whether or not anything arrived.

Flow series (volume, delta, liquidations, squared returns) start at zero at the session start
and are bias-corrected by the shared weight `w = 1 - (1 - alpha)^t` (tracked by multiplication,
see `EmaWeights`), so a baseline is meaningful after a few ticks instead of creeping up from
zero for ten minutes. Level series (mid, spread, depth, open interest) start at their first
observation.

Only +, -, *, /, sqrt and comparisons are used (SPEC section 4: no libm transcendental).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from engine_core.canonical import CanonicalBatch
from engine_core.config import FeatureConfig
from engine_core.events import (
    BookTickerReceived,
    DataHealthReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)
from engine_core.quality import FLAG_OF, QualityGuard
from engine_core.ticks import TICK_MS

_NEVER = -(10**18)

# The flag of each quality guard, read from the compiled quality table once (plain ints: the
# per-token path cannot afford IntFlag arithmetic or a loop over the table).
_QG = QualityGuard
_OVERLOAD = FLAG_OF[_QG.OVERLOAD_REPORTED]
_CATCH_UP = FLAG_OF[_QG.CATCH_UP_REPORTED]
_NO_BOOK = FLAG_OF[_QG.NO_BOOK_YET]
_STALE_BOOK = FLAG_OF[_QG.BOOK_STALE]
_STALE_MARK = FLAG_OF[_QG.MARK_STALE]
_STALE_OI = FLAG_OF[_QG.OI_STALE]
_TRADE_GAP = FLAG_OF[_QG.TRADE_GAP_RECENT]
_LIQUIDATION_GAP = FLAG_OF[_QG.LIQUIDATION_GAP_RECENT]
_RECONNECT = FLAG_OF[_QG.RECONNECT_RECENT]
_REST_DEGRADED = FLAG_OF[_QG.REST_DEGRADED_RECENT]
_FEED_STALE = FLAG_OF[_QG.FEED_SILENT]
_LATE_DATA = FLAG_OF[_QG.EVENTS_LATE]
_LIQUIDATION_SATURATED = FLAG_OF[_QG.LIQUIDATION_CAP_BINDING]
_WARMUP = FLAG_OF[_QG.WARMING_UP]

def alpha(window_ticks: int) -> float:
    """EMA smoothing factor of a window counted in ticks."""
    return 2.0 / (window_ticks + 1)


class EmaWeights(NamedTuple):
    """Bias-correction weights (1 - (1 - alpha)^t) of the flow EMAs, shared by all tokens.

    A named tuple, like the per-token values below: `extract` unpacks it in one step.
    """

    fast: float = 0.0
    slow: float = 0.0
    vol_fast: float = 0.0
    vol_slow: float = 0.0
    liq: float = 0.0

    def advance(self, p: FeatureParams) -> EmaWeights:
        return EmaWeights(
            fast=self.fast + p.a_fast * (1.0 - self.fast),
            slow=self.slow + p.a_slow * (1.0 - self.slow),
            vol_fast=self.vol_fast + p.a_vol_fast * (1.0 - self.vol_fast),
            vol_slow=self.vol_slow + p.a_vol_slow * (1.0 - self.vol_slow),
            liq=self.liq + p.a_liq * (1.0 - self.liq),
        )


class FeatureParams(NamedTuple):
    """Smoothing factors and limits derived once from `FeatureConfig` (a named tuple)."""

    a_fast: float
    a_slow: float
    a_vol_fast: float
    a_vol_slow: float
    a_oi_fast: float
    a_oi_slow: float
    a_liq: float
    warmup_ticks: int
    stale_book_ticks: int
    stale_mark_ticks: int
    stale_oi_ticks: int
    hold_ticks: int
    late_ms: int

    @classmethod
    def from_config(cls, c: FeatureConfig) -> FeatureParams:
        return cls(
            a_fast=alpha(c.fast_window_ticks), a_slow=alpha(c.slow_window_ticks),
            a_vol_fast=alpha(c.vol_fast_window_ticks), a_vol_slow=alpha(c.vol_slow_window_ticks),
            a_oi_fast=alpha(c.oi_fast_window_ticks), a_oi_slow=alpha(c.oi_slow_window_ticks),
            a_liq=alpha(c.liq_window_ticks), warmup_ticks=c.warmup_ticks,
            stale_book_ticks=c.stale_book_ticks, stale_mark_ticks=c.stale_mark_ticks,
            stale_oi_ticks=c.stale_oi_ticks, hold_ticks=c.health_hold_ticks,
            late_ms=c.late_event_ms,
        )


class FeatureState(NamedTuple):
    """One token's rolling state between ticks. `*_tick` fields hold the tick of last sight.

    An immutable named tuple rather than an attrs class: it is rebuilt for every token on
    every tick, and a tuple is built and unpacked in C (profiled: see benchmarks/bench_core).
    """

    session_tick: int  # first tick of the session (staleness counts from here)
    bid: float = 0.0
    ask: float = 0.0
    bid_qty: float = 0.0
    ask_qty: float = 0.0
    book_update_id: int = -1
    book_tick: int = _NEVER
    mark: float = 0.0
    index_price: float = 0.0
    funding: float = 0.0
    mark_ts: int = -1
    mark_tick: int = _NEVER
    oi: float = 0.0
    oi_ts: int = -1
    oi_tick: int = _NEVER
    oi_fast: float = 0.0
    oi_slow: float = 0.0
    notional_fast: float = 0.0
    notional_slow: float = 0.0
    delta_fast: float = 0.0
    depth_fast: float = 0.0
    depth_slow: float = 0.0
    spread_fast: float = 0.0
    spread_slow: float = 0.0
    prev_mid: float = 0.0
    mid_slow: float = 0.0
    rv_fast: float = 0.0
    rv_slow: float = 0.0
    liq_long: float = 0.0
    liq_short: float = 0.0
    liq_sec: int = -1
    liq_streak: int = 0
    liq_saturated_tick: int = _NEVER
    trade_gap_tick: int = _NEVER
    liq_gap_tick: int = _NEVER
    reconnect_tick: int = _NEVER
    rest_tick: int = _NEVER
    feed_stale: bool = False


class FeatureFrame(NamedTuple):
    """What one token looked like at one tick. Ratios are "now / norm" (1.0 = normal).

    An immutable named tuple, like `FeatureState`, for the same reason.
    """

    token_id: int
    tick_id: int
    n_events: int
    trade_count: int
    trade_volume: float  # base-asset quantity traded this tick
    trade_notional: float  # quote notional traded this tick
    trade_delta: float  # aggressive buy notional - aggressive sell notional, this tick
    volume_ratio: float  # 5 s notional rate / 10 min norm
    delta_ratio: float  # 5 s net aggressive flow / 5 s notional, in [-1, 1]
    mid: float  # 0.0 until a book is seen
    spread_pct: float  # (ask - bid) / mid * 100
    spread_ratio: float  # 5 s spread / 10 min norm
    depth_ratio: float  # 5 s top-of-book notional / 10 min norm
    vol_ratio: float  # sqrt(10 s realized variance / 10 min norm)
    price_trend_pct: float  # (mid / 10 min mean mid - 1) * 100
    oi: float
    oi_velocity: float  # oi / 1 min norm - 1
    oi_build: float  # oi / 1 h norm - 1
    funding_rate: float
    premium_pct: float  # (mark / index - 1) * 100
    mark_vs_mid_pct: float  # (mark / mid - 1) * 100
    liq_long_notional: float  # longs force-closed this tick (forced SELL orders)
    liq_short_notional: float  # shorts force-closed this tick (forced BUY orders)
    liquidation_imbalance: float  # (long - short) / (long + short) over 10 s, in [-1, 1]
    liq_intensity: float  # 10 s liquidation rate / 10 min traded-notional norm
    quality: int  # Quality flags


def _unit(x: float) -> float:
    """Clamp into [-1, 1]: a ratio of EMAs can overshoot by an ulp after rounding."""
    return -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)


_tuple_new = tuple.__new__


def extract(st: FeatureState, batch: CanonicalBatch, p: FeatureParams, w: EmaWeights
            ) -> tuple[FeatureState, FeatureFrame]:
    """Fold one tick's batch into the token's state and describe the tick."""
    tick = batch.tick_id
    (a_fast, a_slow, a_vol_fast, a_vol_slow, a_oi_fast, a_oi_slow, a_liq, warmup_ticks,
     stale_book_ticks, stale_mark_ticks, stale_oi_ticks, hold, late_ms) = p
    w_fast, w_slow, w_vol_fast, w_vol_slow, w_liq = w
    (since, bid, ask, bid_qty, ask_qty, book_id, book_tick, mark, index, funding, mark_ts,
     mark_tick, oi, oi_ts, oi_tick, oi_fast0, oi_slow0, notional_fast0, notional_slow0,
     delta_fast0, depth_fast0, depth_slow0, spread_fast0, spread_slow0, prev_mid0, mid_slow0,
     rv_fast0, rv_slow0, liq_long0, liq_short0, liq_sec, liq_streak, liq_sat_tick,
     trade_gap_tick, liq_gap_tick, reconnect_tick, rest_tick, feed_stale) = st
    book_tick0, oi_tick0 = book_tick, oi_tick
    n_trades = 0
    volume = notional = delta = liq_l = liq_s = 0.0
    overload = catch_up = late = False
    events = batch.events
    if events:
        late_before = tick * TICK_MS - late_ms
        for ev in events:
            e = ev.payload
            if isinstance(e, TradeReceived):
                n_trades += 1
                volume += e.qty
                nt = e.price * e.qty
                notional += nt
                delta += -nt if e.buyer_is_maker else nt
            elif isinstance(e, BookTickerReceived):
                if e.update_id >= book_id or e.update_id == 0:
                    bid, ask, bid_qty, ask_qty = e.bid, e.ask, e.bid_qty, e.ask_qty
                    book_id = e.update_id
                    book_tick = tick
            elif isinstance(e, LiquidationReceived):
                if e.side is Side.SELL:
                    liq_l += e.price * e.qty
                else:
                    liq_s += e.price * e.qty
                sec = e.exchange_ts // 1000
                if sec == liq_sec + 1:
                    liq_streak += 1
                elif sec != liq_sec:
                    liq_streak = 1
                liq_sec = sec
                if liq_streak >= 2:  # a liquidation in consecutive seconds: the 1/s cap binds
                    liq_sat_tick = tick
            elif isinstance(e, MarkPriceReceived | FundingReceived):
                if e.exchange_ts >= mark_ts:
                    mark, index, funding, mark_ts = e.mark_price, e.index_price, \
                        e.funding_rate, e.exchange_ts
                    mark_tick = tick
            elif isinstance(e, OpenInterestReceived):
                if e.exchange_ts >= oi_ts:
                    oi, oi_ts, oi_tick = e.open_interest, e.exchange_ts, tick
            elif isinstance(e, DataHealthReceived):
                k = e.kind
                if k is HealthKind.RECONNECT:
                    reconnect_tick = tick
                elif k is HealthKind.TRADE_GAP:
                    trade_gap_tick = tick
                elif k is HealthKind.LIQUIDATION_GAP:
                    liq_gap_tick = tick
                elif k is HealthKind.STREAM_STALE:
                    feed_stale = True
                elif k is HealthKind.STREAM_RESUMED:
                    feed_stale = False
                elif k is HealthKind.OVERLOAD:
                    overload = True
                elif k is HealthKind.CATCH_UP:
                    catch_up = True
                elif k is HealthKind.REST_DEGRADED:
                    rest_tick = tick
                continue
            if ev.exchange_ts < late_before:
                late = True

    # --- flow EMAs (bias-corrected by the shared weights) ---------------------------------
    nf = notional_fast0 + a_fast * (notional - notional_fast0)
    ns = notional_slow0 + a_slow * (notional - notional_slow0)
    df = delta_fast0 + a_fast * (delta - delta_fast0)
    nf_hat, ns_hat = nf / w_fast, ns / w_slow
    volume_ratio = nf_hat / ns_hat if ns_hat > 0.0 else 1.0
    delta_ratio = _unit(df / nf) if nf > 0.0 else 0.0
    ll = liq_long0 + a_liq * (liq_l - liq_long0)
    ls = liq_short0 + a_liq * (liq_s - liq_short0)
    liq_sum = ll + ls
    liq_imb = _unit((ll - ls) / liq_sum) if liq_sum > 0.0 else 0.0
    liq_intensity = (liq_sum / w_liq) / ns_hat if ns_hat > 0.0 else (1.0 if liq_sum > 0.0 else 0.0)

    # --- book levels ----------------------------------------------------------------------
    has_book = book_tick != _NEVER
    if has_book:
        mid = (bid + ask) * 0.5
        spread = (ask - bid) / mid
        depth = bid * bid_qty + ask * ask_qty
        if book_tick0 == _NEVER:  # first book of the session: levels start here
            sf = ss = spread
            dpf = dps = depth
            mid_slow = prev_mid = mid
        else:
            sf = spread_fast0 + a_fast * (spread - spread_fast0)
            ss = spread_slow0 + a_slow * (spread - spread_slow0)
            dpf = depth_fast0 + a_fast * (depth - depth_fast0)
            dps = depth_slow0 + a_slow * (depth - depth_slow0)
            mid_slow = mid_slow0 + a_slow * (mid - mid_slow0)
            prev_mid = prev_mid0
        ret = mid / prev_mid - 1.0
        r2 = ret * ret
    else:
        mid = spread = 0.0
        sf = ss = dpf = dps = mid_slow = 0.0
        r2 = 0.0
    rvf = rv_fast0 + a_vol_fast * (r2 - rv_fast0)
    rvs = rv_slow0 + a_vol_slow * (r2 - rv_slow0)
    rvs_hat = rvs / w_vol_slow
    vol_ratio = math.sqrt((rvf / w_vol_fast) / rvs_hat) if rvs_hat > 0.0 else 1.0

    # --- open interest, mark ----------------------------------------------------------------
    if oi_tick != _NEVER:
        if oi_tick0 == _NEVER:
            oif = ois = oi
        else:
            oif = oi_fast0 + a_oi_fast * (oi - oi_fast0)
            ois = oi_slow0 + a_oi_slow * (oi - oi_slow0)
        oi_velocity = oi / oif - 1.0 if oif > 0.0 else 0.0
        oi_build = oi / ois - 1.0 if ois > 0.0 else 0.0
    else:
        oif = ois = oi_velocity = oi_build = 0.0
    has_mark = mark_tick != _NEVER
    premium_pct = (mark / index - 1.0) * 100.0 if has_mark else 0.0
    mark_vs_mid = (mark / mid - 1.0) * 100.0 if has_mark and has_book else 0.0

    # --- data quality: each flag comes from the quality table (quality.py) ----------------
    flags = _OVERLOAD if overload else 0
    if catch_up:
        flags |= _CATCH_UP
    if not has_book:
        flags |= _NO_BOOK
    elif tick - book_tick >= stale_book_ticks:
        flags |= _STALE_BOOK
    if tick - (mark_tick if mark_tick > since else since) >= stale_mark_ticks:
        flags |= _STALE_MARK
    if tick - (oi_tick if oi_tick > since else since) >= stale_oi_ticks:
        flags |= _STALE_OI
    if tick - trade_gap_tick < hold:
        flags |= _TRADE_GAP
    if tick - liq_gap_tick < hold:
        flags |= _LIQUIDATION_GAP
    if tick - reconnect_tick < hold:
        flags |= _RECONNECT
    if tick - rest_tick < hold:
        flags |= _REST_DEGRADED
    if feed_stale:
        flags |= _FEED_STALE
    if late:
        flags |= _LATE_DATA
    if tick - liq_sat_tick < hold:
        flags |= _LIQUIDATION_SATURATED
    if tick - since < warmup_ticks:
        flags |= _WARMUP

    # positional, in field order (checked by test_feature_tuples_are_built_in_field_order)
    new = _tuple_new(FeatureState, (
        since, bid, ask, bid_qty, ask_qty, book_id, book_tick, mark, index, funding, mark_ts,
        mark_tick, oi, oi_ts, oi_tick, oif, ois, nf, ns, df, dpf, dps, sf, ss,
        mid if has_book else 0.0, mid_slow, rvf, rvs, ll, ls, liq_sec, liq_streak, liq_sat_tick,
        trade_gap_tick, liq_gap_tick, reconnect_tick, rest_tick, feed_stale))
    frame = _tuple_new(FeatureFrame, (
        batch.token_id, tick, len(events), n_trades, volume, notional, delta, volume_ratio,
        delta_ratio, mid, spread * 100.0, sf / ss if ss > 0.0 else 1.0,
        dpf / dps if dps > 0.0 else 1.0, vol_ratio,
        (mid / mid_slow - 1.0) * 100.0 if has_book else 0.0, oi, oi_velocity, oi_build,
        funding, premium_pct, mark_vs_mid, liq_l, liq_s, liq_imb, liq_intensity, flags))
    return new, frame
