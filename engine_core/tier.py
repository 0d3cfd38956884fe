"""Tier engine: the leverage regime of one symbol (design note step 5).

The regime is read from the feature frame alone, in priority order (first match wins):

    TIER_EXHAUSTED      OI falling fast vs its 1-min norm, with liquidations or a volume burst
    TIER_OVERLEVERAGED  OI well above its 1-hour norm, and funding or premium stretched
    TIER_EXPANSION      OI growing with above-normal volume, or OI clearly above its 1-h norm
    TIER_NEUTRAL        otherwise

A new regime is adopted only after it has been the answer for `tier.persist_ticks`
consecutive ticks, so one noisy tick does not flip it. The tier changes neither features nor
the state machine; it is an input to the trigger cost and the structural scores.
"""

from __future__ import annotations

from typing import NamedTuple

from engine_core.config import TierConfig
from engine_core.features import FeatureFrame
from engine_core.states import Quality, Tier

_NEUTRAL = int(Tier.TIER_NEUTRAL)
_EXPANSION = int(Tier.TIER_EXPANSION)
_OVERLEVERAGED = int(Tier.TIER_OVERLEVERAGED)
_EXHAUSTED = int(Tier.TIER_EXHAUSTED)
_NO_SIGNAL = int(Quality.WARMUP | Quality.NO_BOOK)
_new = tuple.__new__


class TierContext(NamedTuple):
    """The adopted regime, how long it has held, and a challenger being counted.

    A named tuple (immutable, built in C): one is made per token per tick.
    """

    tier: int = _NEUTRAL
    age: int = 0
    candidate: int = _NEUTRAL
    candidate_ticks: int = 0


def classify(f: FeatureFrame, c: TierConfig) -> int:
    """The regime this frame alone suggests."""
    if f.quality & _NO_SIGNAL:
        return _NEUTRAL
    if f.oi_velocity <= c.exhausted_oi_velocity and (
            f.liq_intensity >= c.exhausted_liq_intensity
            or f.volume_ratio >= c.exhausted_volume_ratio):
        return _EXHAUSTED
    if f.oi_build >= c.overleveraged_oi_build and (
            abs(f.funding_rate) >= c.overleveraged_funding
            or abs(f.premium_pct) >= c.overleveraged_premium_pct):
        return _OVERLEVERAGED
    if (f.oi_velocity >= c.expansion_oi_velocity and f.volume_ratio >= c.expansion_volume_ratio) \
            or f.oi_build >= c.expansion_oi_build:
        return _EXPANSION
    return _NEUTRAL


def update(ctx: TierContext, f: FeatureFrame, c: TierConfig) -> TierContext:
    """Adopt the suggested regime once it has held for `persist_ticks` ticks."""
    want = classify(f, c)
    tier, age, candidate, candidate_ticks = ctx
    if want == tier:
        return _new(TierContext, (tier, age + 1, want, 0))
    n = candidate_ticks + 1 if want == candidate else 1
    if n >= c.persist_ticks:
        return _new(TierContext, (want, 0, want, 0))
    return _new(TierContext, (tier, age + 1, want, n))
