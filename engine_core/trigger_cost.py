"""Trigger cost: how little it would take to tip a symbol over (design note step 6).

Four component scores, each 0..100, from the feature frame:

    density      liquidity near the touch vs its norm: 100 = a normal book, 0 = the book
                 has thinned to `density_thin_ratio` of its norm or the spread has widened
                 to `density_wide_spread_ratio` times its norm
    compression  how squeezed short-term volatility is vs its norm: 100 = 10 s volatility at
                 or below `compression_full_ratio` of its 10-min norm (a coiled spring)
    divergence   positioning out of line with price: open interest built up while price
                 stayed flat, or mark price away from the index
    elasticity   how much more price moves per unit of volume than normal

The fragility is `w_d (100 - density) + w_c compression + w_v divergence + w_e elasticity`
(weights normalized to sum 1), scaled by the regime multiplier, clamped to 0..100, and
`trigger_cost = 100 - fragility`: 100 means it would take a lot to start a cascade, 0 means a
nudge would do. It is a function of the frame and the tier only (determinism point 3).
"""

from __future__ import annotations

import attrs

from engine_core.config import TriggerCostConfig
from engine_core.features import FeatureFrame
from engine_core.states import Tier


def ramp(x: float, lo: float, hi: float) -> float:
    """0 at or below lo, 1 at or above hi, linear in between."""
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


@attrs.frozen(kw_only=True, slots=True)
class TriggerCost:
    """The four component scores (0..100) and the resulting cost (0..100)."""

    density: float
    compression: float
    divergence: float
    elasticity: float
    cost: float


def compute(f: FeatureFrame, tier: int, c: TriggerCostConfig) -> TriggerCost:
    depth_ok = ramp(f.depth_ratio, c.density_thin_ratio, 1.0)
    spread_ok = 1.0 - ramp(f.spread_ratio, 1.0, c.density_wide_spread_ratio)
    density = 100.0 * (depth_ok if depth_ok < spread_ok else spread_ok)
    compression = 100.0 * (1.0 - ramp(f.vol_ratio, c.compression_full_ratio, 1.0))
    oi_vs_price = ramp(f.oi_build, 0.0, c.divergence_oi_build) * (
        1.0 - ramp(abs(f.price_trend_pct), 0.0, c.divergence_price_pct))
    premium = ramp(abs(f.premium_pct), 0.0, c.divergence_premium_pct)
    divergence = 100.0 * (oi_vs_price if oi_vs_price > premium else premium)
    # price response per unit of relative volume; volume below a quarter of its norm counts as
    # a quarter, so a silent tape does not look infinitely elastic
    vr = f.volume_ratio if f.volume_ratio > 0.25 else 0.25
    elasticity = 100.0 * ramp(f.vol_ratio / vr, 1.0, c.elasticity_full_ratio)
    wd, wc, wv, we = c.weight_density, c.weight_compression, c.weight_divergence, \
        c.weight_elasticity
    fragility = (wd * (100.0 - density) + wc * compression + wv * divergence
                 + we * elasticity) / (wd + wc + wv + we)
    if tier == Tier.TIER_OVERLEVERAGED:
        fragility *= c.multiplier_overleveraged
    elif tier == Tier.TIER_EXPANSION:
        fragility *= c.multiplier_expansion
    elif tier == Tier.TIER_EXHAUSTED:
        fragility *= c.multiplier_exhausted
    else:
        fragility *= c.multiplier_neutral
    fragility = 0.0 if fragility < 0.0 else (100.0 if fragility > 100.0 else fragility)
    return TriggerCost(density=density, compression=compression, divergence=divergence,
                       elasticity=elasticity, cost=100.0 - fragility)
