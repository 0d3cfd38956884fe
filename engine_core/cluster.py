"""Cluster FSM: the market-wide state over all symbols, once per second (design note step 8).

It runs only on ticks with `tick_id % 4 == 0` and reads nothing but the array of symbol states
of that tick and which symbols have live data; it never changes a symbol's state
(determinism point 5). Shares are of *live* symbols (not stale, not bookless), so a dead feed
does not pass for a calm market: when fewer than `min_live_fraction` of the symbols are live
the cluster is DEGRADED — it holds its state (no decision on missing data) and every record
of the tick carries the CLUSTER_DEGRADED flag.

Shares counted:
    heat     PRESSURE, FRAGILE, TRIGGER_READY or UNWIND
    fragile  FRAGILE or TRIGGER_READY
    unwind   UNWIND
FRAGILE and UNWIND also need at least `min_symbols` symbols (capped at the universe size), so
one symbol alone is never "systemic" in a large universe.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from engine_core.config import ClusterConfig
from engine_core.fsm import AT_ONCE, Compiled, Rule, advance, compile_table, legal_moves
from engine_core.states import NOT_LIVE, ClusterState, StructuralState

C = ClusterState
#: Cadence fixed by the design note: "only if tickId % 4 == 0".
CLUSTER_EVERY_TICKS = 4

TABLE: tuple[Rule, ...] = (
    Rule(source=C.CLUSTER_CALM, when="unwind_hot", target=C.CLUSTER_UNWIND, hold="persist_updates"),
    Rule(source=C.CLUSTER_CALM, when="fragile_hot", target=C.CLUSTER_FRAGILE,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_CALM, when="heat_hot", target=C.CLUSTER_HEATING, hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when="unwind_hot", target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when="fragile_hot", target=C.CLUSTER_FRAGILE,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when="heat_cold", target=C.CLUSTER_CALM, hold="decay_updates"),
    Rule(source=C.CLUSTER_FRAGILE, when="unwind_hot", target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_FRAGILE, when="fragile_cold", target=C.CLUSTER_HEATING,
         hold="decay_updates"),
    Rule(source=C.CLUSTER_UNWIND, when="unwind_cold", target=C.CLUSTER_COOLDOWN,
         hold="decay_updates"),
    Rule(source=C.CLUSTER_COOLDOWN, when="unwind_hot", target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_COOLDOWN, when="cooled", target=C.CLUSTER_CALM, hold=AT_ONCE),
)
GUARDS = ("unwind_hot", "unwind_cold", "fragile_hot", "fragile_cold", "heat_hot", "heat_cold",
          "cooled")
LEGAL = legal_moves(TABLE)

_PRESSURE = int(StructuralState.PRESSURE)
_FRAGILE = int(StructuralState.FRAGILE)
_TRIGGER_READY = int(StructuralState.TRIGGER_READY)
_UNWIND = int(StructuralState.UNWIND)
_NOT_LIVE = int(NOT_LIVE)


def compile_rules(c: ClusterConfig) -> Compiled:
    return compile_table("cluster", ClusterState, TABLE, GUARDS, c)


@attrs.frozen(kw_only=True, slots=True)
class ClusterContext:
    """Cluster state, updates spent in it, the move being counted, and the last shares."""

    state: int = int(C.CLUSTER_CALM)
    age: int = 0
    pending: int = -1
    count: int = 0
    degraded: bool = False
    live: int = 0
    heat: float = 0.0
    fragile: float = 0.0
    unwind: float = 0.0


def update(ctx: ClusterContext, fsm_states: Sequence[int], qualities: Sequence[int],
           c: ClusterConfig, rules: Compiled) -> ClusterContext:
    """One cluster evaluation over this tick's symbol states."""
    n = len(fsm_states)
    live = n_heat = n_fragile = n_unwind = 0
    for s, q in zip(fsm_states, qualities, strict=True):
        if q & _NOT_LIVE:
            continue
        live += 1
        if s >= _PRESSURE:
            if s == _UNWIND:
                n_unwind += 1
                n_heat += 1
            elif s <= _TRIGGER_READY:
                n_heat += 1
                if s >= _FRAGILE:
                    n_fragile += 1
    degraded = n == 0 or live < c.min_live_fraction * n
    heat = n_heat / live if live else 0.0
    fragile = n_fragile / live if live else 0.0
    unwind = n_unwind / live if live else 0.0
    if degraded:
        return ClusterContext(state=ctx.state, age=ctx.age + 1, pending=-1, count=0,
                              degraded=True, live=live, heat=heat, fragile=fragile, unwind=unwind)
    need = c.min_symbols if c.min_symbols < n else n
    g = {
        "unwind_hot": n_unwind >= need and unwind >= c.unwind_enter,
        "unwind_cold": unwind < c.unwind_exit,
        "fragile_hot": n_fragile >= need and fragile >= c.fragile_enter,
        "fragile_cold": fragile < c.fragile_exit,
        "heat_hot": heat >= c.heat_enter,
        "heat_cold": heat < c.heat_exit,
        "cooled": ctx.age + 1 >= c.cooldown_updates,
    }
    state, pending, count = advance(ctx.state, ctx.pending, ctx.count, g, rules)
    return ClusterContext(state=state, age=ctx.age + 1 if state == ctx.state else 0,
                          pending=pending, count=count, degraded=False, live=live, heat=heat,
                          fragile=fragile, unwind=unwind)
