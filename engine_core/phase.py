"""Event phase FSM: where the market is in the current event; forward only (design note step 9).

It runs with the cluster (every 4th tick) and reads only the cluster state. The pair
(event_id, phase) never decreases: a move to an earlier phase is always the start of a new
event epoch with event_id + 1 (SPEC section 3, point 9). The note's override — "may jump
forward when cluster UNWIND persists" — is the END/POST -> MID row: a fresh cascade that
persists does not wait out the aftermath of the last one; it opens the next event directly in
MID.
"""

from __future__ import annotations

import enum

import attrs

from engine_core.config import PhaseConfig
from engine_core.fsm import AT_ONCE, FROZEN, Compiled, Rule, advance, compile_table
from engine_core.states import ClusterState, EventPhase

P = EventPhase


class PhaseGuard(enum.IntEnum):
    """The conditions the phase table is written in (computed in `update`)."""

    #: The cluster is DEGRADED this update: no phase decision on a market we cannot see.
    CLUSTER_DEGRADED = 0
    #: The cluster is CLUSTER_FRAGILE or CLUSTER_UNWIND.
    ESCALATED = 1
    #: The cluster is CLUSTER_UNWIND.
    CLUSTER_UNWIND = 2
    #: The cluster is neither CLUSTER_FRAGILE nor CLUSTER_UNWIND.
    NOT_ESCALATED = 3
    #: The cluster is CLUSTER_COOLDOWN or CLUSTER_CALM.
    SETTLED = 4
    #: The phase's age has reached `end_hold_updates`.
    END_HELD = 5
    #: The phase's age has reached `post_hold_updates`.
    POST_HELD = 6


G = PhaseGuard

#: Source: design note step 9, "PREP -> START -> MID -> END -> POST, forward only; may jump
#: forward when cluster UNWIND persists". SPEC section 3 point 9: (event_id, phase) never
#: decreases, so each backward row opens a new epoch (`new_epoch=True`, event_id + 1).
#: The frozen rows: while the cluster is degraded the phase machine is not evaluated at all.
TABLE: tuple[Rule, ...] = (
    Rule(source=P.PREP, when=G.CLUSTER_DEGRADED, target=P.PREP, hold=FROZEN),
    Rule(source=P.PREP, when=G.ESCALATED, target=P.START, hold="start_confirm_updates"),
    Rule(source=P.START, when=G.CLUSTER_DEGRADED, target=P.START, hold=FROZEN),
    Rule(source=P.START, when=G.CLUSTER_UNWIND, target=P.MID, hold="mid_unwind_updates"),
    Rule(source=P.START, when=G.NOT_ESCALATED, target=P.END, hold="fizzle_calm_updates"),
    Rule(source=P.MID, when=G.CLUSTER_DEGRADED, target=P.MID, hold=FROZEN),
    Rule(source=P.MID, when=G.SETTLED, target=P.END, hold="end_confirm_updates"),
    Rule(source=P.END, when=G.CLUSTER_DEGRADED, target=P.END, hold=FROZEN),
    # the override: a fresh cascade opens the next event directly in MID
    Rule(source=P.END, when=G.CLUSTER_UNWIND, target=P.MID, hold="mid_unwind_updates",
         new_epoch=True),
    Rule(source=P.END, when=G.END_HELD, target=P.POST, hold=AT_ONCE),
    Rule(source=P.POST, when=G.CLUSTER_DEGRADED, target=P.POST, hold=FROZEN),
    Rule(source=P.POST, when=G.CLUSTER_UNWIND, target=P.MID, hold="mid_unwind_updates",
         new_epoch=True),
    Rule(source=P.POST, when=G.POST_HELD, target=P.PREP, hold=AT_ONCE, new_epoch=True),
)

_ESCALATED = (int(ClusterState.CLUSTER_FRAGILE), int(ClusterState.CLUSTER_UNWIND))
_SETTLED = (int(ClusterState.CLUSTER_COOLDOWN), int(ClusterState.CLUSTER_CALM))
_UNWIND = int(ClusterState.CLUSTER_UNWIND)


def compile_rules(c: PhaseConfig) -> Compiled:
    return compile_table("phase", EventPhase, PhaseGuard, TABLE, c, epochs=True)


@attrs.frozen(kw_only=True, slots=True)
class PhaseContext:
    """Current event id and phase, updates spent in the phase, and the move being counted."""

    event_id: int = 0
    phase: int = int(P.PREP)
    age: int = 0
    pending: int = -1
    count: int = 0


def update(ctx: PhaseContext, cluster_state: int, degraded: bool, c: PhaseConfig,
           rules: Compiled) -> PhaseContext:
    """One phase evaluation after the cluster's update of the same tick."""
    escalated = cluster_state in _ESCALATED
    g = (
        degraded,  # CLUSTER_DEGRADED
        escalated,  # ESCALATED
        cluster_state == _UNWIND,  # CLUSTER_UNWIND
        not escalated,  # NOT_ESCALATED
        cluster_state in _SETTLED,  # SETTLED
        ctx.age + 1 >= c.end_hold_updates,  # END_HELD
        ctx.age + 1 >= c.post_hold_updates,  # POST_HELD
    )
    phase, age, pending, count = advance(ctx.phase, ctx.age, ctx.pending, ctx.count, g, rules)
    event_id = ctx.event_id + 1 if (ctx.phase, phase) in rules.epoch_moves else ctx.event_id
    return PhaseContext(event_id=event_id, phase=phase, age=age, pending=pending, count=count)
