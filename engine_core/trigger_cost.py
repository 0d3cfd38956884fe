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

from collections.abc import Callable
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


class CostParams(NamedTuple):
    """`TriggerCostConfig` with the per-call constants worked out once (a named tuple)."""

    thin: float
    one_minus_thin: float
    wide: float
    wide_minus_one: float
    full: float
    one_minus_full: float
    div_oi: float
    div_price: float
    div_premium: float
    elastic: float
    elastic_minus_one: float
    wd: float
    wc: float
    wv: float
    we: float
    w_sum: float
    m_overleveraged: float
    m_expansion: float
    m_exhausted: float
    m_neutral: float
    div_w_oi: float

    @classmethod
    def from_config(cls, c: TriggerCostConfig) -> CostParams:
        wd, wc, wv, we = c.weight_density, c.weight_compression, c.weight_divergence, \
            c.weight_elasticity
        return cls(c.density_thin_ratio, 1.0 - c.density_thin_ratio,
                   c.density_wide_spread_ratio, c.density_wide_spread_ratio - 1.0,
                   c.compression_full_ratio, 1.0 - c.compression_full_ratio,
                   c.divergence_oi_build, c.divergence_move_sigma, c.divergence_premium_pct,
                   c.elasticity_full_ratio, c.elasticity_full_ratio - 1.0,
                   wd, wc, wv, we, wd + wc + wv + we, c.multiplier_overleveraged,
                   c.multiplier_expansion, c.multiplier_exhausted, c.multiplier_neutral,
                   c.weight_divergence_oi)


#: `compute_with` with its params bound (`cost_kernel`): (frame, tier) -> TriggerCost.
CostKernel = Callable[[FeatureFrame, int], TriggerCost]


def compute(f: FeatureFrame, tier: int, c: TriggerCostConfig) -> TriggerCost:
    """The trigger cost of a frame under a regime (see the module docstring)."""
    return compute_with(f, tier, CostParams.from_config(c))


def cost_kernel(p: CostParams) -> CostKernel:
    """`compute_with` with `p` bound once: the function the pipeline calls per token per tick.

    Its constants are the closure's (unpacking a 21-field named tuple on every call was ~3 %
    of a quiet token-tick, with the other two kernels, `structural.scores_kernel` and
    `features.feature_kernel`).
    """
    (thin, one_minus_thin, wide, wide_minus_one, full, one_minus_full, div_oi, div_price,
     div_premium, elastic, elastic_minus_one, wd, wc, wv, we, w_sum, m_over, m_exp, m_exh,
     m_neutral, div_w_oi) = p

    def compute(f: FeatureFrame, tier: int) -> TriggerCost:
        # `ramp` is written out inline below (same operations, same bits): this runs per
        # token per tick and the calls were a tenth of a quiet tick's cost.
        x = f.depth_ratio
        depth_ok = 0.0 if x <= thin else (1.0 if x >= 1.0 else (x - thin) / one_minus_thin)
        x = f.spread_ratio
        spread_ok = 1.0 - (0.0 if x <= 1.0 else
                           (1.0 if x >= wide else (x - 1.0) / wide_minus_one))
        density = 100.0 * (depth_ok if depth_ok < spread_ok else spread_ok)
        vol = f.vol_ratio
        compression = 100.0 * (1.0 - (0.0 if vol <= full else (1.0 if vol >= 1.0 else
                                                               (vol - full) / one_minus_full)))
        x = f.oi_build
        built = 0.0 if x <= 0.0 else (1.0 if x >= div_oi else (x - 0.0) / (div_oi - 0.0))
        x = abs(f.move_sigma)
        moved = 0.0 if x <= 0.0 else (1.0 if x >= div_price else (x - 0.0) / (div_price - 0.0))
        oi_vs_price = div_w_oi * built * (1.0 - moved)
        x = abs(f.premium_pct)
        premium = 0.0 if x <= 0.0 else (1.0 if x >= div_premium else
                                        (x - 0.0) / (div_premium - 0.0))
        divergence = 100.0 * (oi_vs_price if oi_vs_price > premium else premium)
        # price response per unit of relative volume; volume below a quarter of its norm
        # counts as a quarter, so a silent tape does not look infinitely elastic
        vr = f.volume_ratio if f.volume_ratio > 0.25 else 0.25
        x = vol / vr
        elasticity = 100.0 * (0.0 if x <= 1.0 else (1.0 if x >= elastic else
                                                    (x - 1.0) / elastic_minus_one))
        fragility = (wd * (100.0 - density) + wc * compression + wv * divergence
                     + we * elasticity) / w_sum
        if tier == _OVERLEVERAGED:
            fragility *= m_over
        elif tier == _EXPANSION:
            fragility *= m_exp
        elif tier == _EXHAUSTED:
            fragility *= m_exh
        else:
            fragility *= m_neutral
        fragility = 0.0 if fragility < 0.0 else (100.0 if fragility > 100.0 else fragility)
        return _new(TriggerCost, (density, compression, divergence, elasticity,
                                  100.0 - fragility))

    return compute


def compute_with(f: FeatureFrame, tier: int, p: CostParams) -> TriggerCost:
    """`compute` with the config already prepared (builds the kernel: off the hot path)."""
    return cost_kernel(p)(f, tier)
