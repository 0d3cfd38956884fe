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
nudge would do. `ramp(x, lo, hi)` is 0 at or below lo, 1 at or above hi, linear in between
(written out inline in `compute` and `structural.scores`: they run per token per tick).
It is a function of the frame and the tier only (determinism point 3).
"""

from __future__ import annotations

from typing import NamedTuple

from engine_core.config import TriggerCostConfig
from engine_core.features import FeatureFrame
from engine_core.states import Tier

_new = tuple.__new__
_OVERLEVERAGED = int(Tier.TIER_OVERLEVERAGED)
_EXPANSION = int(Tier.TIER_EXPANSION)
_EXHAUSTED = int(Tier.TIER_EXHAUSTED)


class TriggerCost(NamedTuple):
    """The four component scores (0..100) and the resulting cost (0..100) (a named tuple)."""

    density: float
    compression: float
    divergence: float
    elasticity: float
    cost: float


def compute(f: FeatureFrame, tier: int, c: TriggerCostConfig) -> TriggerCost:
    # `ramp` is written out inline below (same operations, same bits): this runs per token
    # per tick and the calls were a tenth of a quiet tick's cost.
    x, lo = f.depth_ratio, c.density_thin_ratio
    depth_ok = 0.0 if x <= lo else (1.0 if x >= 1.0 else (x - lo) / (1.0 - lo))
    x, hi = f.spread_ratio, c.density_wide_spread_ratio
    spread_ok = 1.0 - (0.0 if x <= 1.0 else (1.0 if x >= hi else (x - 1.0) / (hi - 1.0)))
    density = 100.0 * (depth_ok if depth_ok < spread_ok else spread_ok)
    vol, lo = f.vol_ratio, c.compression_full_ratio
    compression = 100.0 * (1.0 - (0.0 if vol <= lo else (1.0 if vol >= 1.0 else
                                                         (vol - lo) / (1.0 - lo))))
    x, hi = f.oi_build, c.divergence_oi_build
    built = 0.0 if x <= 0.0 else (1.0 if x >= hi else (x - 0.0) / (hi - 0.0))
    x, hi = abs(f.price_trend_pct), c.divergence_price_pct
    moved = 0.0 if x <= 0.0 else (1.0 if x >= hi else (x - 0.0) / (hi - 0.0))
    oi_vs_price = built * (1.0 - moved)
    x, hi = abs(f.premium_pct), c.divergence_premium_pct
    premium = 0.0 if x <= 0.0 else (1.0 if x >= hi else (x - 0.0) / (hi - 0.0))
    divergence = 100.0 * (oi_vs_price if oi_vs_price > premium else premium)
    # price response per unit of relative volume; volume below a quarter of its norm counts as
    # a quarter, so a silent tape does not look infinitely elastic
    vr = f.volume_ratio if f.volume_ratio > 0.25 else 0.25
    x, hi = vol / vr, c.elasticity_full_ratio
    elasticity = 100.0 * (0.0 if x <= 1.0 else (1.0 if x >= hi else (x - 1.0) / (hi - 1.0)))
    wd, wc, wv, we = c.weight_density, c.weight_compression, c.weight_divergence, \
        c.weight_elasticity
    fragility = (wd * (100.0 - density) + wc * compression + wv * divergence
                 + we * elasticity) / (wd + wc + wv + we)
    if tier == _OVERLEVERAGED:
        fragility *= c.multiplier_overleveraged
    elif tier == _EXPANSION:
        fragility *= c.multiplier_expansion
    elif tier == _EXHAUSTED:
        fragility *= c.multiplier_exhausted
    else:
        fragility *= c.multiplier_neutral
    fragility = 0.0 if fragility < 0.0 else (100.0 if fragility > 100.0 else fragility)
    return _new(TriggerCost, (density, compression, divergence, elasticity, 100.0 - fragility))
