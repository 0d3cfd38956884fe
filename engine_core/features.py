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

import attrs

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
from engine_core.quality import flags_of
from engine_core.ticks import TICK_MS

_NEVER = -(10**18)

def alpha(window_ticks: int) -> float:
    """EMA smoothing factor of a window counted in ticks."""
    return 2.0 / (window_ticks + 1)


@attrs.frozen(kw_only=True, slots=True)
class EmaWeights:
    """Bias-correction weights (1 - (1 - alpha)^t) of the flow EMAs, shared by all tokens."""

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


@attrs.frozen(kw_only=True, slots=True)
class FeatureParams:
    """Smoothing factors and limits derived once from `FeatureConfig`."""

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


@attrs.frozen(kw_only=True, slots=True)
class FeatureState:
    """One token's rolling state between ticks. `*_tick` fields hold the tick of last sight."""

    session_tick: int  # first tick of the session (staleness counts from here)
    bid: float = 0.0
    ask: float = 0.0
    bid_qty: float = 0.0
    ask_qty: float = 0.0
    book_update_id: int = -1
    book_tick: int = _NEVER
    mark: float = 0.0
    index: float = 0.0
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


@attrs.frozen(kw_only=True, slots=True)
class FeatureFrame:
    """What one token looked like at one tick. Ratios are "now / norm" (1.0 = normal)."""

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


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0.0 else 1.0


def _unit(x: float) -> float:
    """Clamp into [-1, 1]: a ratio of EMAs can overshoot by an ulp after rounding."""
    return -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)


def extract(st: FeatureState, batch: CanonicalBatch, p: FeatureParams, w: EmaWeights
            ) -> tuple[FeatureState, FeatureFrame]:
    """Fold one tick's batch into the token's state and describe the tick."""
    tick = batch.tick_id
    bid, ask, bid_qty, ask_qty = st.bid, st.ask, st.bid_qty, st.ask_qty
    book_id, book_tick = st.book_update_id, st.book_tick
    mark, index, funding = st.mark, st.index, st.funding
    mark_ts, mark_tick = st.mark_ts, st.mark_tick
    oi, oi_ts, oi_tick = st.oi, st.oi_ts, st.oi_tick
    liq_sec, liq_streak, liq_sat_tick = st.liq_sec, st.liq_streak, st.liq_saturated_tick
    trade_gap_tick, liq_gap_tick = st.trade_gap_tick, st.liq_gap_tick
    reconnect_tick, rest_tick, feed_stale = st.reconnect_tick, st.rest_tick, st.feed_stale
    n_trades = 0
    volume = notional = delta = liq_l = liq_s = 0.0
    overload = catch_up = False
    late_before = tick * TICK_MS - p.late_ms
    late = False

    for ev in batch.events:
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
                mark, index, funding, mark_ts = e.mark_price, e.index_price, e.funding_rate, \
                    e.exchange_ts
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
    a_fast, a_slow = p.a_fast, p.a_slow
    nf = st.notional_fast + a_fast * (notional - st.notional_fast)
    ns = st.notional_slow + a_slow * (notional - st.notional_slow)
    df = st.delta_fast + a_fast * (delta - st.delta_fast)
    nf_hat, ns_hat = nf / w.fast, ns / w.slow
    volume_ratio = _ratio(nf_hat, ns_hat)
    delta_ratio = _unit(df / nf) if nf > 0.0 else 0.0
    a_liq = p.a_liq
    ll = st.liq_long + a_liq * (liq_l - st.liq_long)
    ls = st.liq_short + a_liq * (liq_s - st.liq_short)
    liq_sum = ll + ls
    liq_imb = _unit((ll - ls) / liq_sum) if liq_sum > 0.0 else 0.0
    liq_intensity = (liq_sum / w.liq) / ns_hat if ns_hat > 0.0 else (1.0 if liq_sum > 0.0 else 0.0)

    # --- book levels ----------------------------------------------------------------------
    has_book = book_tick != _NEVER
    if has_book:
        mid = (bid + ask) * 0.5
        spread = (ask - bid) / mid
        depth = bid * bid_qty + ask * ask_qty
        if st.book_tick == _NEVER:  # first book of the session: levels start here
            sf = ss = spread
            dpf = dps = depth
            mid_slow = prev_mid = mid
        else:
            sf = st.spread_fast + a_fast * (spread - st.spread_fast)
            ss = st.spread_slow + a_slow * (spread - st.spread_slow)
            dpf = st.depth_fast + a_fast * (depth - st.depth_fast)
            dps = st.depth_slow + a_slow * (depth - st.depth_slow)
            mid_slow = st.mid_slow + a_slow * (mid - st.mid_slow)
            prev_mid = st.prev_mid
        ret = mid / prev_mid - 1.0
        r2 = ret * ret
    else:
        mid = spread = 0.0
        sf = ss = dpf = dps = mid_slow = 0.0
        r2 = 0.0
    rvf = st.rv_fast + p.a_vol_fast * (r2 - st.rv_fast)
    rvs = st.rv_slow + p.a_vol_slow * (r2 - st.rv_slow)
    rvs_hat = rvs / w.vol_slow
    vol_ratio = math.sqrt((rvf / w.vol_fast) / rvs_hat) if rvs_hat > 0.0 else 1.0

    # --- open interest, mark ----------------------------------------------------------------
    if oi_tick != _NEVER:
        if st.oi_tick == _NEVER:
            oif = ois = oi
        else:
            oif = st.oi_fast + p.a_oi_fast * (oi - st.oi_fast)
            ois = st.oi_slow + p.a_oi_slow * (oi - st.oi_slow)
        oi_velocity = oi / oif - 1.0 if oif > 0.0 else 0.0
        oi_build = oi / ois - 1.0 if ois > 0.0 else 0.0
    else:
        oif = ois = oi_velocity = oi_build = 0.0
    has_mark = mark_tick != _NEVER
    premium_pct = (mark / index - 1.0) * 100.0 if has_mark else 0.0
    mark_vs_mid = (mark / mid - 1.0) * 100.0 if has_mark and has_book else 0.0

    # --- data quality: the conditions of the quality table (quality.py), in guard order ---
    since = st.session_tick
    hold = p.hold_ticks
    flags = flags_of((
        overload,  # OVERLOAD_REPORTED
        catch_up,  # CATCH_UP_REPORTED
        not has_book,  # NO_BOOK_YET
        has_book and tick - book_tick >= p.stale_book_ticks,  # BOOK_STALE
        tick - max(mark_tick, since) >= p.stale_mark_ticks,  # MARK_STALE
        tick - max(oi_tick, since) >= p.stale_oi_ticks,  # OI_STALE
        tick - trade_gap_tick < hold,  # TRADE_GAP_RECENT
        tick - liq_gap_tick < hold,  # LIQUIDATION_GAP_RECENT
        tick - reconnect_tick < hold,  # RECONNECT_RECENT
        tick - rest_tick < hold,  # REST_DEGRADED_RECENT
        feed_stale,  # FEED_SILENT
        late,  # EVENTS_LATE
        tick - liq_sat_tick < hold,  # LIQUIDATION_CAP_BINDING
        tick - since < p.warmup_ticks,  # WARMING_UP
    ))

    new = FeatureState(
        session_tick=since, bid=bid, ask=ask, bid_qty=bid_qty, ask_qty=ask_qty,
        book_update_id=book_id, book_tick=book_tick, mark=mark, index=index, funding=funding,
        mark_ts=mark_ts, mark_tick=mark_tick, oi=oi, oi_ts=oi_ts, oi_tick=oi_tick,
        oi_fast=oif, oi_slow=ois, notional_fast=nf, notional_slow=ns, delta_fast=df,
        depth_fast=dpf, depth_slow=dps, spread_fast=sf, spread_slow=ss,
        prev_mid=mid if has_book else 0.0, mid_slow=mid_slow, rv_fast=rvf, rv_slow=rvs,
        liq_long=ll, liq_short=ls, liq_sec=liq_sec, liq_streak=liq_streak,
        liq_saturated_tick=liq_sat_tick, trade_gap_tick=trade_gap_tick, liq_gap_tick=liq_gap_tick,
        reconnect_tick=reconnect_tick, rest_tick=rest_tick, feed_stale=feed_stale,
    )
    frame = FeatureFrame(
        token_id=batch.token_id, tick_id=tick, n_events=len(batch.events),
        trade_count=n_trades, trade_volume=volume, trade_notional=notional, trade_delta=delta,
        volume_ratio=volume_ratio, delta_ratio=delta_ratio, mid=mid, spread_pct=spread * 100.0,
        spread_ratio=_ratio(sf, ss), depth_ratio=_ratio(dpf, dps), vol_ratio=vol_ratio,
        price_trend_pct=(mid / mid_slow - 1.0) * 100.0 if has_book else 0.0,
        oi=oi, oi_velocity=oi_velocity, oi_build=oi_build, funding_rate=funding,
        premium_pct=premium_pct, mark_vs_mid_pct=mark_vs_mid, liq_long_notional=liq_l,
        liq_short_notional=liq_s, liquidation_imbalance=liq_imb, liq_intensity=liq_intensity,
        quality=flags,
    )
    return new, frame
