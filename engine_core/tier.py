"""Tier engine: the leverage regime of one symbol (design note step 5).

The regime is read from the feature frame alone, by the rows of `TABLE` in priority order
(first match wins):

    TIER_EXHAUSTED      OI falling fast vs its 1-min norm, with liquidations or a volume burst
    TIER_OVERLEVERAGED  OI well above its 1-hour norm, and funding or premium stretched
    TIER_EXPANSION      OI growing with above-normal volume, or OI clearly above its 1-h norm
    TIER_NEUTRAL        no signal yet (warming up or no book), or none of the above

A new regime is adopted only after it has been the answer for `tier.persist_ticks`
consecutive ticks, so one noisy tick does not flip it. The tier changes neither features nor
the state machine; it is an input to the trigger cost and the structural scores.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import attrs

from engine_core.config import TierConfig
from engine_core.features import FeatureFrame
from engine_core.fsm import TableError
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


class TierGuard(enum.IntEnum):
    """The conditions the tier table is written in (computed by `classify`)."""

    #: Warming up or no book yet: no regime is read from missing data.
    NO_SIGNAL = 0
    #: OI falling fast vs its 1-min norm, with liquidations or a volume burst.
    OI_LEAVING = 1
    #: OI well above its 1-h norm, and funding or premium stretched.
    CROWDED = 2
    #: OI growing with above-normal volume, or OI clearly above its 1-h norm.
    BUILDING = 3


@attrs.frozen(kw_only=True, slots=True)
class TierRule:
    """When `when` holds (and no earlier row's guard does), the frame suggests `target`."""

    when: TierGuard
    target: Tier


G = TierGuard
T = Tier

#: Source: design note step 5 (leverage regimes); docs/rules.md section 4. Priority order;
#: when no row holds the frame suggests TIER_NEUTRAL.
TABLE: tuple[TierRule, ...] = (
    TierRule(when=G.NO_SIGNAL, target=T.TIER_NEUTRAL),
    TierRule(when=G.OI_LEAVING, target=T.TIER_EXHAUSTED),
    TierRule(when=G.CROWDED, target=T.TIER_OVERLEVERAGED),
    TierRule(when=G.BUILDING, target=T.TIER_EXPANSION),
)


def compile_tiers(rules: tuple[TierRule, ...]) -> tuple[tuple[int, int], ...]:
    """(guard, tier) rows in priority order; every guard exactly once."""
    seen = [r.when for r in rules if isinstance(r.when, TierGuard) and isinstance(r.target, Tier)]
    if len(seen) != len(rules) or sorted(seen) != list(TierGuard):
        raise TableError(f"tier: every TierGuard needs exactly one (TierGuard, Tier) row, got "
                         f"{[(r.when, r.target) for r in rules]}")
    return tuple((int(r.when), int(r.target)) for r in rules)


_ROWS = compile_tiers(TABLE)


def classify(f: FeatureFrame, c: TierConfig) -> int:
    """The regime this frame alone suggests."""
    g = (
        bool(f.quality & _NO_SIGNAL),  # NO_SIGNAL
        f.oi_velocity <= c.exhausted_oi_velocity and (  # OI_LEAVING
            f.liq_intensity >= c.exhausted_liq_intensity
            or f.volume_ratio >= c.exhausted_volume_ratio),
        f.oi_build >= c.overleveraged_oi_build and (  # CROWDED
            abs(f.funding_per_hour) >= c.overleveraged_funding
            or abs(f.premium_pct) >= c.overleveraged_premium_pct),
        (f.oi_velocity >= c.expansion_oi_velocity  # BUILDING
         and f.volume_ratio >= c.expansion_volume_ratio) or f.oi_build >= c.expansion_oi_build,
    )
    for guard, target in _ROWS:
        if g[guard]:
            return target
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
