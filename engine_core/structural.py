"""Structural FSM: the per-symbol state machine and its four scores (design note step 7).

Everything that moves a symbol between states is in this module: the score recipes, the
guards, and one transition table (STYLE rule 1). The machine reads only its own symbol's
features, tier and trigger cost, never the cluster (determinism point 4).

Scores, each 0..1:
    pressure  leverage build-up: OI above its 24-h norm, and the crowd's carry (funding per
              hour or the basis, whichever is further from normal), regime
    fragile   a loaded build-up: sqrt(OI leg x carry leg), i.e. new positions that pay to
              stay on, discounted by the trigger cost (x (1 - w + w (1 - cost / 100)))
    trigger   the trigger being pulled: cheapness, aggressive flow against the crowded side
              (the side paying funding), first liquidations
    unwind    it is happening: liquidations on the move's side vs the symbol's own norm,
              counted only when corroborated (an OI drop or sustained prints: one print
              alone never makes UNWIND), OI falling, the move in sigma

Guards compare a score with its enter threshold (escalation) or its lower exit threshold
(de-escalation), so a score hovering at a threshold does not make the state flicker.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import NamedTuple

from engine_core.config import StructuralConfig
from engine_core.features import FeatureFrame
from engine_core.fsm import AT_ONCE, Compiled, Rule, advance, compile_table
from engine_core.states import NOT_LIVE, UNHEALTHY, Quality, StructuralState, Tier

S = StructuralState


class StructuralGuard(enum.IntEnum):
    """The conditions the structural table is written in (computed by `guards`)."""

    #: A signal and the unwind score at or above `unwind_enter`.
    UNWIND_HOT = 0
    #: The unwind score below `unwind_exit`.
    UNWIND_COLD = 1
    #: Live data and the pressure score at or above `pressure_enter`.
    PRESSURE_HOT = 2
    #: The pressure score below `pressure_exit`.
    PRESSURE_COLD = 3
    #: Live data and the fragile score at or above `fragile_enter`.
    FRAGILE_HOT = 4
    #: The fragile score below `fragile_exit`.
    FRAGILE_COLD = 5
    #: A signal, healthy data and the trigger score at or above `trigger_enter`.
    TRIGGER_HOT = 6
    #: The trigger score below `trigger_exit`.
    TRIGGER_COLD = 7
    #: Any UNHEALTHY quality flag.
    UNHEALTHY = 8
    #: The state's age has reached `cooldown_ticks`.
    COOLED = 9


G = StructuralGuard

#: The transition table. Rows of one source state are in priority order.
#: Source: design note step 7, "BUILD -> PRESSURE -> FRAGILE -> TRIGGER_READY -> UNWIND ->
#: COOLDOWN, persist rule + decay rule"; the escape to UNWIND from every watching state and
#: the decays one level down are this engine's reading of that rule (docs/rules.md 6.4).
TABLE: tuple[Rule, ...] = (
    Rule(source=S.BUILD, when=G.UNWIND_HOT, target=S.UNWIND, hold="unwind_persist_ticks"),
    Rule(source=S.BUILD, when=G.PRESSURE_HOT, target=S.PRESSURE, hold="persist_ticks"),
    Rule(source=S.PRESSURE, when=G.UNWIND_HOT, target=S.UNWIND, hold="unwind_persist_ticks"),
    Rule(source=S.PRESSURE, when=G.FRAGILE_HOT, target=S.FRAGILE, hold="persist_ticks"),
    Rule(source=S.PRESSURE, when=G.PRESSURE_COLD, target=S.BUILD, hold="decay_ticks"),
    Rule(source=S.FRAGILE, when=G.UNWIND_HOT, target=S.UNWIND, hold="unwind_persist_ticks"),
    Rule(source=S.FRAGILE, when=G.TRIGGER_HOT, target=S.TRIGGER_READY, hold="persist_ticks"),
    Rule(source=S.FRAGILE, when=G.FRAGILE_COLD, target=S.PRESSURE, hold="decay_ticks"),
    Rule(source=S.TRIGGER_READY, when=G.UNWIND_HOT, target=S.UNWIND,
         hold="unwind_persist_ticks"),
    # "2 s of bad data demote TRIGGER_READY" (docs/rules.md 6.4, why these holds)
    Rule(source=S.TRIGGER_READY, when=G.UNHEALTHY, target=S.FRAGILE, hold="health_demote_ticks"),
    Rule(source=S.TRIGGER_READY, when=G.TRIGGER_COLD, target=S.FRAGILE, hold="decay_ticks"),
    Rule(source=S.TRIGGER_READY, when=G.FRAGILE_COLD, target=S.FRAGILE, hold="decay_ticks"),
    Rule(source=S.UNWIND, when=G.UNWIND_COLD, target=S.COOLDOWN, hold="unwind_end_ticks"),
    Rule(source=S.COOLDOWN, when=G.UNWIND_HOT, target=S.UNWIND, hold="unwind_persist_ticks"),
    # fixed waits count the state's age (docs/rules.md 6.3)
    Rule(source=S.COOLDOWN, when=G.COOLED, target=S.BUILD, hold=AT_ONCE),
)

_TIER_LEVEL = {int(Tier.TIER_NEUTRAL): 0.0, int(Tier.TIER_EXPANSION): 0.5,
               int(Tier.TIER_OVERLEVERAGED): 1.0, int(Tier.TIER_EXHAUSTED): 0.25}
_NO_SIGNAL = int(Quality.WARMUP | Quality.NO_BOOK | Quality.HALTED)
_UNHEALTHY = int(UNHEALTHY)
_NOT_LIVE = int(NOT_LIVE)
_new = tuple.__new__


def compile_rules(c: StructuralConfig) -> Compiled:
    return compile_table("structural", StructuralState, StructuralGuard, TABLE, c)


class Scores(NamedTuple):
    """The four structural scores of one tick, each within [0, 1] (a named tuple)."""

    pressure: float
    fragile: float
    trigger: float
    unwind: float


class FsmContext(NamedTuple):
    """A symbol's structural state, ticks spent in it, and the transition being counted.

    A named tuple (immutable, built in C): one is made per token per tick. `streak` is the
    consecutive count of the pending move (tuple already has a `count`).
    """

    state: int = 0  # StructuralState.BUILD
    age: int = 0
    pending: int = -1
    streak: int = 0


class ScoreParams(NamedTuple):
    """`StructuralConfig`'s score recipe with the per-call constants worked out once."""

    oi_full: float
    funding_floor: float
    funding_full: float
    funding_span: float
    basis_floor: float
    basis_full: float
    basis_span: float
    wp_oi: float
    wp_carry: float
    wp_tier: float
    wp_sum: float
    cost_weight: float
    flow_full: float
    trigger_liq_full: float
    wt_cost: float
    wt_flow: float
    wt_liq: float
    wt_sum: float
    liq_floor: float
    liq_full: float
    liq_span: float
    drop_full: float
    move_floor: float
    move_full: float
    move_span: float
    wu_liq: float
    wu_oi: float
    wu_move: float
    sustain_full: float
    wu_sum: float

    @classmethod
    def from_config(cls, c: StructuralConfig) -> ScoreParams:
        return cls(
            c.pressure_oi_build_full, c.pressure_funding_floor, c.pressure_funding_full,
            c.pressure_funding_full - c.pressure_funding_floor, c.pressure_basis_floor_pct,
            c.pressure_basis_full_pct, c.pressure_basis_full_pct - c.pressure_basis_floor_pct,
            c.pressure_weight_oi, c.pressure_weight_carry, c.pressure_weight_tier,
            c.pressure_weight_oi + c.pressure_weight_carry + c.pressure_weight_tier,
            c.fragile_cost_weight,
            c.trigger_flow_full, c.trigger_liq_full, c.trigger_weight_cost,
            c.trigger_weight_flow, c.trigger_weight_liq,
            c.trigger_weight_cost + c.trigger_weight_flow + c.trigger_weight_liq,
            c.unwind_liq_floor, c.unwind_liq_full, c.unwind_liq_full - c.unwind_liq_floor,
            c.unwind_oi_drop_full, c.unwind_move_floor_sigma, c.unwind_move_full_sigma,
            c.unwind_move_full_sigma - c.unwind_move_floor_sigma, c.unwind_weight_liq,
            c.unwind_weight_oi, c.unwind_weight_move, c.unwind_sustain_full,
            c.unwind_weight_liq + c.unwind_weight_oi + c.unwind_weight_move)


#: `scores_with` with its params bound (`scores_kernel`): (frame, tier, cost) -> Scores.
ScoresKernel = Callable[[FeatureFrame, int, float], Scores]


def scores(f: FeatureFrame, tier: int, trigger_cost: float, c: StructuralConfig) -> Scores:
    """The four scores of a frame (see the module docstring)."""
    return scores_with(f, tier, trigger_cost, ScoreParams.from_config(c))


def scores_kernel(p: ScoreParams) -> ScoresKernel:
    """`scores_with` with `p` bound once: the function the pipeline calls per token per tick
    (its constants are the closure's; see `trigger_cost.cost_kernel`)."""
    (oi_full, f_floor, f_full, f_span, b_floor, b_full, b_span, wp_oi, wp_carry, wp_tier,
     wp_sum, cost_w, flow_full, tliq_full, wt_cost, wt_flow, wt_liq, wt_sum, liq_floor, liq_full,
     liq_span, drop_full, move_floor, move_full, move_span, wu_liq, wu_oi, wu_move,
     sustain_full, wu_sum) = p

    def scores_of(f: FeatureFrame, tier: int, trigger_cost: float) -> Scores:
        # `ramp(x, lo, hi)` is written out inline (same operations, same bits: with lo = 0 it
        # is x / hi): this runs per token per tick and the calls were a tenth of its cost.
        x = f.oi_build
        r_oi = 0.0 if x <= 0.0 else (1.0 if x >= oi_full else x / oi_full)
        funding = f.funding_per_hour
        x = abs(funding)
        r_funding = 0.0 if x <= f_floor else (1.0 if x >= f_full else (x - f_floor) / f_span)
        basis = f.basis_pct
        x = abs(basis)
        r_basis = 0.0 if x <= b_floor else (1.0 if x >= b_full else (x - b_floor) / b_span)
        # the crowd pays for its leverage through funding or through the basis it buys at
        # (funding is the basis averaged over the interval): counted once, the larger
        r_carry = r_funding if r_funding > r_basis else r_basis
        pressure = (wp_oi * r_oi
                    + wp_carry * r_carry
                    + wp_tier * _TIER_LEVEL[tier]) / wp_sum if wp_sum > 0.0 else 0.0
        cheap = 1.0 - trigger_cost / 100.0
        # loaded: new positions (OI above its norm) that pay to stay on (carry) - both at once
        fragile = math.sqrt(r_oi * r_carry) * (1.0 - cost_w + cost_w * cheap)
        # The crowded side is the one paying funding beyond the normal rate (Binance's baseline
        # 0.01 % is paid by longs in a perfectly neutral market); the basis decides inside the band.
        if funding > f_floor:
            crowd = 1.0
        elif funding < -f_floor:
            crowd = -1.0
        else:
            crowd = basis
        against = -f.delta_ratio if crowd > 0.0 else (f.delta_ratio if crowd < 0.0 else 0.0)
        liq = f.liq_intensity
        r_flow = 0.0 if against <= 0.0 else (1.0 if against >= flow_full else against / flow_full)
        r_liq = 0.0 if liq <= 0.0 else (1.0 if liq >= tliq_full else liq / tliq_full)
        trigger = (wt_cost * cheap
                   + wt_flow * r_flow
                   + wt_liq * r_liq
                   ) / wt_sum if wt_sum > 0.0 else 0.0
        x = f.liq_excess
        r_liq = 0.0 if x <= liq_floor else (1.0 if x >= liq_full else (x - liq_floor) / liq_span)
        x = -f.oi_velocity
        r_drop = 0.0 if x <= 0.0 else (1.0 if x >= drop_full else x / drop_full)
        x = abs(f.move_sigma)
        r_move = 0.0 if x <= move_floor else (1.0 if x >= move_full else
                                              (x - move_floor) / move_span)
        x = f.liq_sustained
        r_sustain = 1.0 if x >= sustain_full else x / sustain_full
        # liquidations count only as far as positions are seen leaving (OI drop) or the prints
        # are sustained; a move in sigma is its own leg, so one print with a jump is not enough
        corroborated = r_drop if r_drop > r_sustain else r_sustain
        unwind = (wu_liq * r_liq * corroborated
                  + wu_oi * r_drop
                  + wu_move * r_move
                  ) / wu_sum if wu_sum > 0.0 else 0.0
        return _new(Scores, (pressure, fragile, trigger, unwind))

    return scores_of


def scores_with(f: FeatureFrame, tier: int, trigger_cost: float, p: ScoreParams) -> Scores:
    """`scores` with the config already prepared (builds the kernel: off the hot path)."""
    return scores_kernel(p)(f, tier, trigger_cost)


def guards(s: Scores, quality: int, age: int, c: StructuralConfig) -> tuple[bool, ...]:
    """Every guard of the table for this tick, indexed by `StructuralGuard`.

    No escalation while warming up or without a book; no build-up escalation on a stale or
    silent feed (a frozen book looks like compressed volatility, i.e. a cheap trigger).
    """
    ready = not quality & _NO_SIGNAL
    live = ready and not quality & _NOT_LIVE
    healthy = not quality & _UNHEALTHY
    return (
        ready and s.unwind >= c.unwind_enter,  # UNWIND_HOT
        s.unwind < c.unwind_exit,  # UNWIND_COLD
        live and s.pressure >= c.pressure_enter,  # PRESSURE_HOT
        s.pressure < c.pressure_exit,  # PRESSURE_COLD
        live and s.fragile >= c.fragile_enter,  # FRAGILE_HOT
        s.fragile < c.fragile_exit,  # FRAGILE_COLD
        # missing data must never make a symbol look ready to trigger
        ready and healthy and s.trigger >= c.trigger_enter,  # TRIGGER_HOT
        s.trigger < c.trigger_exit,  # TRIGGER_COLD
        not healthy,  # UNHEALTHY
        # the wait is counted by the state's age, so a one-tick blip cannot restart it
        age + 1 >= c.cooldown_ticks,  # COOLED
    )


def update(ctx: FsmContext, s: Scores, quality: int, c: StructuralConfig, rules: Compiled
           ) -> FsmContext:
    state, age, pending, count = ctx
    return _new(FsmContext, advance(state, age, pending, count, guards(s, quality, age, c), rules))
