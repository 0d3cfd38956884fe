"""The feature extractor's values: smoothing factors, a token's rolling state, one tick's frame.

Also the two EMA helpers the extractor seeds the long OI norm with (`seed_oi_norm`).

All are immutable named tuples (built and unpacked in C: `extract` rebuilds a state and a
frame for every token on every tick; profiled, see benchmarks/bench_core). `features.extract`
builds them positionally, in field order (checked by test_feature_tuples_are_built_in_field_order).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from engine_core.canonical import CanonicalBatch
from engine_core.config import FeatureConfig
from engine_core.ticks import TICK_MS

NEVER = -(10**18)


def alpha(window_ticks: int) -> float:
    """EMA smoothing factor of a window counted in ticks."""
    return 2.0 / (window_ticks + 1)


def unit(x: float) -> float:
    """Clamp into [-1, 1]: a ratio of EMAs can overshoot by an ulp after rounding."""
    return -1.0 if x < -1.0 else (1.0 if x > 1.0 else x)


def _pow(b: float, k: int) -> float:
    """b ** k for an integer k >= 0, by squaring (multiplications only: no libm)."""
    r = 1.0
    while k:
        if k & 1:
            r *= b
        b *= b
        k >>= 1
    return r


def seed_oi_norm(points: tuple[tuple[int, float], ...], a: float) -> float:
    """The long OI norm at the newest point of a history: the same EMA the live ticks keep,
    stepped by the ticks between points (each interval held at the point's value)."""
    ema = points[0][1]
    prev = points[0][0]
    keep = 1.0 - a
    for ts, v in points[1:]:
        ema = v + _pow(keep, (ts - prev) // TICK_MS) * (ema - v)
        prev = ts
    return ema


class EmaWeights(NamedTuple):
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
    a_liq_base: float = 0.0
    liq_base_floor: float = 0.001
    a_sustain: float = 0.0
    a_move: float = 0.0
    a_sigma: float = 0.0
    depth_band_bps: int = 50
    funding_hours: int = 8
    liq_window_ticks: int = 40
    a_basis: float = 0.0

    @classmethod
    def from_config(cls, c: FeatureConfig) -> FeatureParams:
        return cls(
            a_fast=alpha(c.fast_window_ticks), a_slow=alpha(c.slow_window_ticks),
            a_vol_fast=alpha(c.vol_fast_window_ticks), a_vol_slow=alpha(c.vol_slow_window_ticks),
            a_oi_fast=alpha(c.oi_fast_window_ticks), a_oi_slow=alpha(c.oi_slow_window_ticks),
            a_liq=alpha(c.liq_window_ticks), warmup_ticks=c.warmup_ticks,
            stale_book_ticks=c.stale_book_ticks, stale_mark_ticks=c.stale_mark_ticks,
            stale_oi_ticks=c.stale_oi_ticks, hold_ticks=c.health_hold_ticks,
            late_ms=c.late_event_ms, a_liq_base=alpha(c.liq_baseline_window_ticks),
            liq_base_floor=c.liq_baseline_floor, a_sustain=alpha(c.liq_sustain_window_ticks),
            a_move=alpha(c.move_window_ticks), a_sigma=alpha(c.sigma_window_ticks),
            depth_band_bps=c.depth_band_bps, funding_hours=c.funding_interval_hours,
            liq_window_ticks=c.liq_window_ticks, a_basis=alpha(c.basis_window_ticks),
        )


class FeatureState(NamedTuple):
    """One token's rolling state between ticks. `*_tick` fields hold the tick of last sight."""

    session_tick: int  # first tick of the session (staleness counts from here)
    bid: float = 0.0
    ask: float = 0.0
    bid_qty: float = 0.0
    ask_qty: float = 0.0
    book_update_id: int = -1
    book_tick: int = NEVER
    mark: float = 0.0
    index_price: float = 0.0
    funding: float = 0.0
    mark_ts: int = -1
    mark_tick: int = NEVER
    oi: float = 0.0
    oi_ts: int = -1
    oi_tick: int = NEVER
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
    liq_saturated_tick: int = NEVER
    trade_gap_tick: int = NEVER
    liq_gap_tick: int = NEVER
    reconnect_tick: int = NEVER
    rest_tick: int = NEVER
    feed_stale: bool = False
    # issue 10: units of the symbol's own market
    move_ref: float = 0.0  # EMA of the mid over the move window
    move_var: float = 0.0  # EMA of (mid / move_ref - 1)^2 over the sigma window
    move_w: float = 0.0  # its bias-correction weight (counted from the first book)
    liq_base: float = 0.0  # EMA of liquidated notional per tick over the baseline window
    liq_base_w: float = 0.0
    liq_active: float = 0.0  # EMA of "a liquidation this tick" over the sustain window
    funding_hours: int = 0  # 0 = no FundingInfoReceived yet (the config's default applies)
    oi_seeded: bool = False  # the OI norm was seeded from an OpenInterestHistoryReceived
    band: float = 0.0  # depth within the chosen band, last DepthReceived
    band_mid: float = 0.0  # the mid it gave (0 = none)
    depth_tick: int = NEVER
    last_price: float = 0.0  # last trade price (the price when there is no book)
    halted: bool = False
    delisted: bool = False
    basis_ema: float = 0.0  # EMA of the premium (mid vs index, %) over the basis window
    basis_w: float = 0.0  # its bias-correction weight (counted from the first mark)


class FeatureFrame(NamedTuple):
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
    depth_ratio: float  # 5 s depth (band, else top of book) notional / 10 min norm
    vol_ratio: float  # sqrt(10 s realized variance / 10 min norm)
    price_trend_pct: float  # (mid / 10 min mean mid - 1) * 100
    oi: float
    oi_velocity: float  # oi / 1 min norm - 1
    oi_build: float  # oi / long (24 h) norm - 1
    funding_rate: float  # rate of one funding interval
    premium_pct: float  # basis: (mid / index - 1) * 100 (mark / index without a book)
    mark_vs_mid_pct: float  # (mark / mid - 1) * 100
    liq_long_notional: float  # longs force-closed this tick (forced SELL orders)
    liq_short_notional: float  # shorts force-closed this tick (forced BUY orders)
    liquidation_imbalance: float  # (long - short) / (long + short) over 10 s, in [-1, 1]
    liq_intensity: float  # 10 s liquidation rate / 10 min traded-notional norm
    quality: int  # Quality flags (bit 16 and up: not stored in the token record)
    move: float  # mid / its 1-min average - 1 (a fraction)
    move_sigma: float  # the same in units of its own RMS (0 while unknown)
    funding_per_hour: float  # funding_rate / the symbol's interval in hours
    liq_long_window: float  # USD of longs liquidated over the liquidation window
    liq_short_window: float  # idem, shorts
    liq_excess: float  # liquidations on the move's side vs the symbol's own norm (x norm)
    liq_sustained: float  # share of recent ticks with a liquidation (0..1)
    price: float  # mid, else depth mid, else mark, else last trade (0 = none)
    mark: float
    index_price: float
    evidence_flags: int  # EvidenceFlag bits
    basis_pct: float  # the premium's 10-min average (%): the basis the crowd keeps paying


#: What an empty tick can take over from the last one (`features.extract_quiet`): the params
#: it was computed with, the ticks [from, until) it holds for, then the quality flags, the
#: evidence flags but NO_SIGMA, premium %, mark vs mid %, funding per hour and the price.
#: Those read only fields that change with events, and the flags step only at deadlines.
QuietValues = tuple[FeatureParams, int, int, int, int, float, float, float, float]

#: `features.extract_quiet` with its params bound (`features.feature_kernel`): (state, batch,
#: weights, quiet) -> (state, frame, quiet).
FeatureKernel = Callable[[FeatureState, CanonicalBatch, EmaWeights, QuietValues | None],
                         tuple[FeatureState, FeatureFrame, QuietValues | None]]
