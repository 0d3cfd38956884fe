"""Event phase FSM: where the market is in the current event; forward only (design note step 9).

It runs with the cluster (every 4th tick) and reads only the cluster state. The pair
(event_id, phase) never decreases: a move to an earlier phase is always the start of a new
event epoch with event_id + 1 (SPEC section 3, point 9). The note's override — "may jump
forward when cluster UNWIND persists" — is the END/POST -> MID row: a fresh cascade that
persists does not wait out the aftermath of the last one; it opens the next event directly in
MID.
"""

from __future__ import annotations

import attrs

from engine_core.config import PhaseConfig
from engine_core.fsm import AT_ONCE, Compiled, Rule, advance, compile_table, legal_moves
from engine_core.states import ClusterState, EventPhase

P = EventPhase

TABLE: tuple[Rule, ...] = (
    Rule(source=P.PREP, when="escalated", target=P.START, hold="start_confirm_updates"),
    Rule(source=P.START, when="cluster_unwind", target=P.MID, hold="mid_unwind_updates"),
    Rule(source=P.START, when="not_escalated", target=P.END, hold="fizzle_calm_updates"),
    Rule(source=P.MID, when="settled", target=P.END, hold="end_confirm_updates"),
    Rule(source=P.END, when="cluster_unwind", target=P.MID, hold="mid_unwind_updates"),
    Rule(source=P.END, when="end_held", target=P.POST, hold=AT_ONCE),
    Rule(source=P.POST, when="cluster_unwind", target=P.MID, hold="mid_unwind_updates"),
    Rule(source=P.POST, when="post_held", target=P.PREP, hold=AT_ONCE),
)
GUARDS = ("escalated", "cluster_unwind", "not_escalated", "settled", "end_held", "post_held")
LEGAL = legal_moves(TABLE)

_ESCALATED = (int(ClusterState.CLUSTER_FRAGILE), int(ClusterState.CLUSTER_UNWIND))
_SETTLED = (int(ClusterState.CLUSTER_COOLDOWN), int(ClusterState.CLUSTER_CALM))
_UNWIND = int(ClusterState.CLUSTER_UNWIND)


def compile_rules(c: PhaseConfig) -> Compiled:
    return compile_table("phase", EventPhase, TABLE, GUARDS, c)


@attrs.frozen(kw_only=True, slots=True)
class PhaseContext:
    """Current event id and phase, updates spent in the phase, and the move being counted."""

    event_id: int = 0
    phase: int = int(P.PREP)
    age: int = 0
    pending: int = -1
    count: int = 0


def update(ctx: PhaseContext, cluster_state: int, c: PhaseConfig, rules: Compiled
           ) -> PhaseContext:
    escalated = cluster_state in _ESCALATED
    g = {
        "escalated": escalated,
        "cluster_unwind": cluster_state == _UNWIND,
        "not_escalated": not escalated,
        "settled": cluster_state in _SETTLED,
        "end_held": ctx.age + 1 >= c.end_hold_updates,
        "post_held": ctx.age + 1 >= c.post_hold_updates,
    }
    phase, pending, count = advance(ctx.phase, ctx.pending, ctx.count, g, rules)
    if phase == ctx.phase:
        return PhaseContext(event_id=ctx.event_id, phase=phase, age=ctx.age + 1,
                            pending=pending, count=count)
    event_id = ctx.event_id + 1 if phase < ctx.phase else ctx.event_id
    return PhaseContext(event_id=event_id, phase=phase, age=0, pending=pending, count=count)
