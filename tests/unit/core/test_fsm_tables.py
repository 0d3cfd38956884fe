"""Every row of the three state-machine tables, driven through the real guard functions.

The expected moves below are written from docs/rules.md (sections 6.4, 7 and 8), not read from
the tables: each case builds inputs (scores and quality flags, symbol states, a cluster state)
that make exactly that row the winner, runs the machine's real `update` and checks where it
lands, after how many evaluations, and what else it changes. Changing any row's target or hold
fails one of these cases (`tests/tools/mutate_tables.py` checks that claim row by row).
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine_core import cluster, phase, structural
from engine_core.config import ClusterConfig, PhaseConfig, StructuralConfig
from engine_core.fsm import AT_ONCE, Rule, TableError, TransitionError, advance, compile_table
from engine_core.states import ClusterState, EventPhase, Quality, StructuralState

S = StructuralState
C = ClusterState
P = EventPhase
# Distinct holds, so a row that fires with the wrong hold is noticed too.
SCFG = StructuralConfig(persist_ticks=3, unwind_persist_ticks=2, decay_ticks=5,
                        unwind_end_ticks=6, health_demote_ticks=4, cooldown_ticks=7)
CCFG = ClusterConfig(persist_updates=2, decay_updates=3, cooldown_updates=4)
PCFG = PhaseConfig(start_confirm_updates=2, mid_unwind_updates=3, end_confirm_updates=4,
                   fizzle_calm_updates=5, end_hold_updates=6, post_hold_updates=7)
HI = 0.9

# (source, scores, quality, target, evaluations until the move) — docs/rules.md 6.4.
STRUCTURAL_CASES = [
    (S.BUILD, {"unwind": HI}, 0, S.UNWIND, 2),
    (S.BUILD, {"pressure": HI}, 0, S.PRESSURE, 3),
    (S.PRESSURE, {"unwind": HI}, 0, S.UNWIND, 2),
    (S.PRESSURE, {"pressure": HI, "fragile": HI}, 0, S.FRAGILE, 3),
    (S.PRESSURE, {}, 0, S.BUILD, 5),
    (S.FRAGILE, {"unwind": HI}, 0, S.UNWIND, 2),
    (S.FRAGILE, {"pressure": HI, "fragile": HI, "trigger": HI}, 0, S.TRIGGER_READY, 3),
    (S.FRAGILE, {"pressure": HI}, 0, S.PRESSURE, 5),
    (S.TRIGGER_READY, {"unwind": HI}, 0, S.UNWIND, 2),
    (S.TRIGGER_READY, {"pressure": HI, "fragile": HI, "trigger": HI}, int(Quality.STALE_MARK),
     S.FRAGILE, 4),
    (S.TRIGGER_READY, {"pressure": HI, "fragile": HI}, 0, S.FRAGILE, 5),
    (S.TRIGGER_READY, {"pressure": HI, "trigger": HI}, 0, S.FRAGILE, 5),
    (S.UNWIND, {}, 0, S.COOLDOWN, 6),
    (S.COOLDOWN, {"unwind": HI}, 0, S.UNWIND, 2),
    (S.COOLDOWN, {}, 0, S.BUILD, 7),  # counted by the state's age: cooldown_ticks
]
# Every move the rules allow (besides staying put), written out from docs/rules.md 6.4.
STRUCTURAL_MOVES = {
    (S.BUILD, S.UNWIND), (S.BUILD, S.PRESSURE), (S.PRESSURE, S.UNWIND), (S.PRESSURE, S.FRAGILE),
    (S.PRESSURE, S.BUILD), (S.FRAGILE, S.UNWIND), (S.FRAGILE, S.TRIGGER_READY),
    (S.FRAGILE, S.PRESSURE), (S.TRIGGER_READY, S.UNWIND), (S.TRIGGER_READY, S.FRAGILE),
    (S.UNWIND, S.COOLDOWN), (S.COOLDOWN, S.UNWIND), (S.COOLDOWN, S.BUILD),
}


def scores(**kw: float) -> structural.Scores:
    return structural.Scores(**({"pressure": 0.0, "fragile": 0.0, "trigger": 0.0, "unwind": 0.0}
                                | kw))


@pytest.mark.parametrize("source,kw,quality,target,hold", STRUCTURAL_CASES,
                         ids=[f"{c[0].name}->{c[3].name}:{i}" for i, c in
                              enumerate(STRUCTURAL_CASES)])
def test_structural_row(source: S, kw: dict[str, float], quality: int, target: S, hold: int
                        ) -> None:
    rules = structural.compile_rules(SCFG)
    ctx = structural.FsmContext(state=int(source))
    sc = scores(**kw)
    for k in range(1, hold + 1):
        ctx = structural.update(ctx, sc, quality, SCFG, rules)
        if k < hold:
            assert ctx.state == source, f"{source.name} moved after {k} of {hold} evaluations"
    assert ctx.state == target, f"{source.name}: {kw} -> {S(ctx.state).name}, want {target.name}"
    assert (ctx.age, ctx.pending, ctx.streak) == (0, -1, 0)


@given(st.sampled_from(list(S)), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1),
       st.floats(0, 1), st.sampled_from([0, int(Quality.WARMUP), int(Quality.STALE_BOOK),
                                         int(Quality.STALE_MARK), int(Quality.FEED_STALE)]),
       st.integers(0, 10))
def test_structural_only_makes_documented_moves(s: S, p: float, f: float, t: float, u: float,
                                                quality: int, age: int) -> None:
    rules = structural.compile_rules(SCFG)
    ctx = structural.FsmContext(state=int(s), age=age)
    sc = structural.Scores(pressure=p, fragile=f, trigger=t, unwind=u)
    for _ in range(8):
        new = structural.update(ctx, sc, quality, SCFG, rules)
        assert new.state == ctx.state or (S(ctx.state), S(new.state)) in STRUCTURAL_MOVES
        ctx = new


def test_unhealthy_or_warming_data_never_escalates() -> None:
    g = structural.StructuralGuard
    sc = scores(pressure=1.0, fragile=1.0, trigger=1.0)
    held = structural.guards(sc, int(Quality.STALE_BOOK), 0, SCFG)
    assert not held[g.TRIGGER_HOT] and held[g.UNHEALTHY] and not held[g.FRAGILE_HOT]
    held = structural.guards(sc, int(Quality.STALE_MARK), 0, SCFG)
    assert not held[g.TRIGGER_HOT] and held[g.FRAGILE_HOT]
    held = structural.guards(scores(pressure=1.0, fragile=1.0, unwind=1.0),
                             int(Quality.WARMUP), 0, SCFG)
    assert not (held[g.PRESSURE_HOT] or held[g.FRAGILE_HOT] or held[g.UNWIND_HOT])


def test_a_blip_does_not_restart_the_cooldown() -> None:
    rules = structural.compile_rules(SCFG)
    ctx = structural.FsmContext(state=int(S.COOLDOWN))
    for k in range(7):
        ctx = structural.update(ctx, scores(unwind=HI) if k == 3 else scores(), 0, SCFG, rules)
    assert ctx.state == S.BUILD


def test_persist_count_restarts_when_interrupted() -> None:
    rules = structural.compile_rules(SCFG)
    ctx = structural.FsmContext()
    for sc in (scores(pressure=HI), scores(pressure=HI), scores(), scores(pressure=HI),
               scores(pressure=HI)):
        ctx = structural.update(ctx, sc, 0, SCFG, rules)
    assert (ctx.state, ctx.pending, ctx.streak) == (S.BUILD, S.PRESSURE, 2)
    ctx = structural.update(ctx, scores(pressure=HI), 0, SCFG, rules)
    assert ctx.state == S.PRESSURE


N_LIVE = 10
STALE = int(Quality.FEED_STALE)


def symbols(**counts: int) -> list[int]:
    out = [int(StructuralState[name]) for name, k in counts.items() for _ in range(k)]
    return out + [int(S.BUILD)] * (N_LIVE - len(out))


# (source, symbol states, target, updates until the move) — docs/rules.md 7.
CLUSTER_CASES = [
    (C.CLUSTER_CALM, symbols(UNWIND=3), C.CLUSTER_UNWIND, 2),
    (C.CLUSTER_CALM, symbols(FRAGILE=3), C.CLUSTER_FRAGILE, 2),
    (C.CLUSTER_CALM, symbols(PRESSURE=3), C.CLUSTER_HEATING, 2),
    (C.CLUSTER_HEATING, symbols(UNWIND=3), C.CLUSTER_UNWIND, 2),
    (C.CLUSTER_HEATING, symbols(TRIGGER_READY=3), C.CLUSTER_FRAGILE, 2),
    (C.CLUSTER_HEATING, symbols(), C.CLUSTER_CALM, 3),
    (C.CLUSTER_FRAGILE, symbols(UNWIND=3), C.CLUSTER_UNWIND, 2),
    (C.CLUSTER_FRAGILE, symbols(PRESSURE=3), C.CLUSTER_HEATING, 3),
    (C.CLUSTER_UNWIND, symbols(), C.CLUSTER_COOLDOWN, 3),
    (C.CLUSTER_COOLDOWN, symbols(UNWIND=3), C.CLUSTER_UNWIND, 2),
    (C.CLUSTER_COOLDOWN, symbols(), C.CLUSTER_CALM, 4),  # by age: cooldown_updates
]


@pytest.mark.parametrize("source,states,target,hold", CLUSTER_CASES,
                         ids=[f"{c[0].name}->{c[2].name}:{i}" for i, c in
                              enumerate(CLUSTER_CASES)])
def test_cluster_row(source: C, states: list[int], target: C, hold: int) -> None:
    rules = cluster.compile_rules(CCFG)
    ctx = cluster.ClusterContext(state=int(source))
    for k in range(1, hold + 1):
        ctx = cluster.update(ctx, states, [0] * N_LIVE, CCFG, rules)
        if k < hold:
            assert ctx.state == source, f"{source.name} moved after {k} of {hold} updates"
    assert ctx.state == target, f"{source.name} -> {C(ctx.state).name}, want {target.name}"
    assert (ctx.age, ctx.pending, ctx.count, ctx.degraded) == (0, -1, 0, False)


@pytest.mark.parametrize("source", list(C))
def test_cluster_degraded_holds_its_state_and_drops_the_count(source: C) -> None:
    rules = cluster.compile_rules(CCFG)
    ctx = cluster.ClusterContext(state=int(source), age=5, pending=int(C.CLUSTER_UNWIND), count=1)
    # 6 of 10 feeds dead, and every live symbol unwinding: still no decision
    states = [int(S.UNWIND)] * N_LIVE
    new = cluster.update(ctx, states, [STALE] * 6 + [0] * 4, CCFG, rules)
    assert new.degraded and new.live == 4 and new.unwind == 1.0
    assert (new.state, new.age, new.pending, new.count) == (source, 6, -1, 0)


# (source, cluster state, target, updates until the move, new epoch) — docs/rules.md 8.
PHASE_CASES = [
    (P.PREP, C.CLUSTER_FRAGILE, P.START, 2, False),
    (P.START, C.CLUSTER_UNWIND, P.MID, 3, False),
    (P.START, C.CLUSTER_CALM, P.END, 5, False),
    (P.MID, C.CLUSTER_CALM, P.END, 4, False),
    (P.END, C.CLUSTER_UNWIND, P.MID, 3, True),
    (P.END, C.CLUSTER_CALM, P.POST, 6, False),  # by age: end_hold_updates
    (P.POST, C.CLUSTER_UNWIND, P.MID, 3, True),
    (P.POST, C.CLUSTER_CALM, P.PREP, 7, True),  # by age: post_hold_updates
]


@pytest.mark.parametrize("source,cs,target,hold,epoch", PHASE_CASES,
                         ids=[f"{c[0].name}->{c[2].name}" for c in PHASE_CASES])
def test_phase_row(source: P, cs: C, target: P, hold: int, epoch: bool) -> None:
    rules = phase.compile_rules(PCFG)
    ctx = phase.PhaseContext(event_id=4, phase=int(source))
    for k in range(1, hold + 1):
        ctx = phase.update(ctx, int(cs), False, PCFG, rules)
        if k < hold:
            assert ctx.phase == source, f"{source.name} moved after {k} of {hold} updates"
    assert ctx.phase == target, f"{source.name} -> {P(ctx.phase).name}, want {target.name}"
    assert ctx.event_id == (5 if epoch else 4)
    assert (ctx.age, ctx.pending, ctx.count) == (0, -1, 0)


@pytest.mark.parametrize("source", list(P))
@pytest.mark.parametrize("cs", [C.CLUSTER_UNWIND, C.CLUSTER_CALM, C.CLUSTER_FRAGILE])
def test_phase_is_frozen_while_the_cluster_is_degraded(source: P, cs: C) -> None:
    rules = phase.compile_rules(PCFG)
    ctx = phase.PhaseContext(event_id=2, phase=int(source), age=50, pending=int(P.MID), count=2)
    assert phase.update(ctx, int(cs), True, PCFG, rules) == ctx


@given(st.lists(st.tuples(st.sampled_from(list(ClusterState)), st.booleans()), max_size=300))
def test_phase_pair_never_decreases(seq: list[tuple[ClusterState, bool]]) -> None:
    rules = phase.compile_rules(PCFG)
    ctx = phase.PhaseContext()
    for cs, degraded in seq:
        new = phase.update(ctx, int(cs), degraded, PCFG, rules)
        assert (new.event_id, new.phase) >= (ctx.event_id, ctx.phase)
        assert new.event_id - ctx.event_id in (0, 1)
        ctx = new


def test_table_errors_name_the_rule() -> None:
    g = structural.StructuralGuard
    bad = Rule(source=S.BUILD, when=phase.PhaseGuard.ESCALATED, target=S.PRESSURE,
               hold="persist_ticks")
    with pytest.raises(TableError, match="BUILD -> PRESSURE uses unknown guard"):
        compile_table("t", S, g, [bad], SCFG)
    bad = Rule(source=S.BUILD, when=g.COOLED, target=S.PRESSURE, hold="nope_ticks")
    with pytest.raises(TableError, match="no hold field 'nope_ticks'"):
        compile_table("t", S, g, [bad], SCFG)
    bad = Rule(source=S.PRESSURE, when=g.COOLED, target=S.BUILD, hold=AT_ONCE, new_epoch=True)
    with pytest.raises(TableError, match="no event epochs"):
        compile_table("t", S, g, [bad], SCFG)
    back = Rule(source=P.POST, when=phase.PhaseGuard.POST_HELD, target=P.PREP, hold=AT_ONCE)
    with pytest.raises(TableError, match="backward exactly when it opens a new epoch"):
        compile_table("p", P, phase.PhaseGuard, [back], PCFG, epochs=True)
    with pytest.raises(TableError, match="frozen row must keep its state"):
        compile_table("p", P, phase.PhaseGuard,
                      [attrs.evolve(phase.TABLE[0], target=P.START)], PCFG, epochs=True)


def test_an_unknown_state_is_a_transition_error_naming_it() -> None:
    rules = structural.compile_rules(SCFG)
    with pytest.raises(TransitionError, match="structural: no rows for state 9"):
        advance(9, 0, -1, 0, (False,) * len(structural.StructuralGuard), rules)


@pytest.mark.parametrize("table,states", [(structural.TABLE, list(S)), (cluster.TABLE, list(C)),
                                          (phase.TABLE, list(P))])
def test_every_state_has_a_way_out_and_is_reachable(table: tuple[Rule, ...],
                                                    states: list[object]) -> None:
    moves = {(r.source, r.target) for r in table if r.source is not r.target}
    assert {s for s, _ in moves} == set(states), "a state with no exit"
    assert {t for _, t in moves} == set(states), "an unreachable state"


def test_cluster_shares_weigh_open_interest_value_beside_the_count() -> None:
    """Two tiny alts unwinding are 20 % of ten symbols but almost none of the leverage; the
    blend (value_weight 0.5) keeps them below the unwind threshold, the count alone not."""
    rules = cluster.compile_rules(CCFG)
    states = [int(S.UNWIND)] * 2 + [int(S.BUILD)] * (N_LIVE - 2)
    values = [1e6] * 2 + [1e9] * (N_LIVE - 2)
    ctx = cluster.ClusterContext()
    for _ in range(3):
        ctx = cluster.update(ctx, states, [0] * N_LIVE, CCFG, rules, values)
    assert ctx.unwind == pytest.approx(0.2) and ctx.unwind_value < 0.001
    assert ctx.state == C.CLUSTER_CALM
    count_only = attrs.evolve(CCFG, value_weight=0.0)
    ctx = cluster.ClusterContext()
    for _ in range(3):
        ctx = cluster.update(ctx, states, [0] * N_LIVE, count_only, rules, values)
    assert ctx.state == C.CLUSTER_UNWIND
    big = cluster.ClusterContext()
    for _ in range(3):  # the same two symbols holding most of the OI value: unwind
        big = cluster.update(big, states, [0] * N_LIVE, CCFG, rules, values[::-1])
    assert big.state == C.CLUSTER_UNWIND
