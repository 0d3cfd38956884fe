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

Each share is counted twice: by symbols, and by open-interest value (OI x price, the
leverage at stake), so a tiny alt does not weigh like BTC. The guards read the blend
`(1 - value_weight) * count share + value_weight * value share` (`cluster.value_weight`);
both shares are kept in the context.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from engine_core.config import ClusterConfig
from engine_core.fsm import AT_ONCE, Compiled, Rule, advance, compile_table
from engine_core.states import NOT_LIVE, ClusterState, StructuralState

C = ClusterState
#: Cadence fixed by the design note: "only if tickId % 4 == 0".
CLUSTER_EVERY_TICKS = 4

class ClusterGuard(enum.IntEnum):
    """The conditions the cluster table is written in (computed by `guards`)."""

    #: Fewer than `min_live_fraction` of the symbols have live data (or there are none).
    DEGRADED = 0
    #: At least `min_symbols` unwinding and their share at or above `unwind_enter`.
    UNWIND_HOT = 1
    #: The unwinding share below `unwind_exit`.
    UNWIND_COLD = 2
    #: At least `min_symbols` fragile or trigger-ready and their share at or above `fragile_enter`.
    FRAGILE_HOT = 3
    #: The fragile share below `fragile_exit`.
    FRAGILE_COLD = 4
    #: The share under pressure (or worse) at or above `heat_enter`.
    HEAT_HOT = 5
    #: The share under pressure below `heat_exit`.
    HEAT_COLD = 6
    #: The state's age has reached `cooldown_updates`.
    COOLED = 7


G = ClusterGuard

#: Source: design note step 8 (shares of symbol states, persist + decay, once per second);
#: the DEGRADED rows come first in every state: "no decision on missing data" (docs/rules.md 7),
#: the cluster holds its state and the count being made is dropped.
TABLE: tuple[Rule, ...] = (
    Rule(source=C.CLUSTER_CALM, when=G.DEGRADED, target=C.CLUSTER_CALM, hold=AT_ONCE),
    Rule(source=C.CLUSTER_CALM, when=G.UNWIND_HOT, target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_CALM, when=G.FRAGILE_HOT, target=C.CLUSTER_FRAGILE,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_CALM, when=G.HEAT_HOT, target=C.CLUSTER_HEATING, hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when=G.DEGRADED, target=C.CLUSTER_HEATING, hold=AT_ONCE),
    Rule(source=C.CLUSTER_HEATING, when=G.UNWIND_HOT, target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when=G.FRAGILE_HOT, target=C.CLUSTER_FRAGILE,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_HEATING, when=G.HEAT_COLD, target=C.CLUSTER_CALM, hold="decay_updates"),
    Rule(source=C.CLUSTER_FRAGILE, when=G.DEGRADED, target=C.CLUSTER_FRAGILE, hold=AT_ONCE),
    Rule(source=C.CLUSTER_FRAGILE, when=G.UNWIND_HOT, target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    Rule(source=C.CLUSTER_FRAGILE, when=G.FRAGILE_COLD, target=C.CLUSTER_HEATING,
         hold="decay_updates"),
    Rule(source=C.CLUSTER_UNWIND, when=G.DEGRADED, target=C.CLUSTER_UNWIND, hold=AT_ONCE),
    Rule(source=C.CLUSTER_UNWIND, when=G.UNWIND_COLD, target=C.CLUSTER_COOLDOWN,
         hold="decay_updates"),
    Rule(source=C.CLUSTER_COOLDOWN, when=G.DEGRADED, target=C.CLUSTER_COOLDOWN, hold=AT_ONCE),
    Rule(source=C.CLUSTER_COOLDOWN, when=G.UNWIND_HOT, target=C.CLUSTER_UNWIND,
         hold="persist_updates"),
    # fixed waits count the state's age (docs/rules.md 6.3)
    Rule(source=C.CLUSTER_COOLDOWN, when=G.COOLED, target=C.CLUSTER_CALM, hold=AT_ONCE),
)

_PRESSURE = int(StructuralState.PRESSURE)
_FRAGILE = int(StructuralState.FRAGILE)
_TRIGGER_READY = int(StructuralState.TRIGGER_READY)
_UNWIND = int(StructuralState.UNWIND)
_NOT_LIVE = int(NOT_LIVE)


def compile_rules(c: ClusterConfig) -> Compiled:
    return compile_table("cluster", ClusterState, ClusterGuard, TABLE, c)


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
    heat_value: float = 0.0
    fragile_value: float = 0.0
    unwind_value: float = 0.0


def update(ctx: ClusterContext, fsm_states: Sequence[int], qualities: Sequence[int],
           c: ClusterConfig, rules: Compiled, values: Sequence[float] | None = None
           ) -> ClusterContext:
    """One cluster evaluation over this tick's symbol states (and their OI values)."""
    n = len(fsm_states)
    vals = values if values is not None else [0.0] * n
    live = n_heat = n_fragile = n_unwind = 0
    v_live = v_heat = v_fragile = v_unwind = 0.0
    for s, q, v in zip(fsm_states, qualities, vals, strict=True):
        if q & _NOT_LIVE:
            continue
        live += 1
        v_live += v
        if s >= _PRESSURE:
            if s == _UNWIND:
                n_unwind += 1
                n_heat += 1
                v_unwind += v
                v_heat += v
            elif s <= _TRIGGER_READY:
                n_heat += 1
                v_heat += v
                if s >= _FRAGILE:
                    n_fragile += 1
                    v_fragile += v
    degraded = n == 0 or live < c.min_live_fraction * n
    heat_n = n_heat / live if live else 0.0
    fragile_n = n_fragile / live if live else 0.0
    unwind_n = n_unwind / live if live else 0.0
    if v_live > 0.0:  # without any OI value the count alone decides
        heat_v, fragile_v, unwind_v = v_heat / v_live, v_fragile / v_live, v_unwind / v_live
    else:
        heat_v, fragile_v, unwind_v = heat_n, fragile_n, unwind_n
    m = c.value_weight
    heat = (1.0 - m) * heat_n + m * heat_v
    fragile = (1.0 - m) * fragile_n + m * fragile_v
    unwind = (1.0 - m) * unwind_n + m * unwind_v
    need = c.min_symbols if c.min_symbols < n else n
    g = (
        degraded,  # DEGRADED
        n_unwind >= need and unwind >= c.unwind_enter,  # UNWIND_HOT
        unwind < c.unwind_exit,  # UNWIND_COLD
        n_fragile >= need and fragile >= c.fragile_enter,  # FRAGILE_HOT
        fragile < c.fragile_exit,  # FRAGILE_COLD
        heat >= c.heat_enter,  # HEAT_HOT
        heat < c.heat_exit,  # HEAT_COLD
        ctx.age + 1 >= c.cooldown_updates,  # COOLED
    )
    state, age, pending, count = advance(ctx.state, ctx.age, ctx.pending, ctx.count, g, rules)
    return ClusterContext(state=state, age=age, pending=pending, count=count, degraded=degraded,
                          live=live, heat=heat_n, fragile=fragile_n, unwind=unwind_n,
                          heat_value=heat_v, fragile_value=fragile_v, unwind_value=unwind_v)
