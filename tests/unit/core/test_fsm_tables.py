"""Every FSM table: totality, legality, persist and decay (STYLE rule 8, h2-style)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine_core import cluster, phase, structural
from engine_core.config import ClusterConfig, PhaseConfig, StructuralConfig
from engine_core.fsm import Rule, TableError, advance, compile_table
from engine_core.states import ClusterState, EventPhase, StructuralState

MACHINES = [
    ("structural", StructuralState, structural, StructuralConfig()),
    ("cluster", ClusterState, cluster, ClusterConfig()),
    ("phase", EventPhase, phase, PhaseConfig()),
]


@pytest.mark.parametrize("name,states,module,cfg", MACHINES)
def test_every_state_and_guard_combination_lands_on_a_legal_state(name, states, module, cfg
                                                                  ) -> None:  # type: ignore[no-untyped-def]
    compiled = module.compile_rules(cfg)
    guards = module.GUARDS
    for s in states:
        for values in itertools.product((False, True), repeat=len(guards)):
            g = dict(zip(guards, values, strict=True))
            state, pending, count = int(s), -1, 0
            for _ in range(2000):  # longer than any hold
                state2, pending, count = advance(state, pending, count, g, compiled)
                assert state2 == state or (state, state2) in module.LEGAL, \
                    f"{name}: illegal {states(state).name} -> {states(state2).name}"
                state = state2


@pytest.mark.parametrize("name,states,module,cfg", MACHINES)
def test_every_state_has_a_way_out_and_is_reachable(name, states, module, cfg
                                                   ) -> None:  # type: ignore[no-untyped-def]
    sources = {int(r.source) for r in module.TABLE}
    targets = {int(r.target) for r in module.TABLE}
    assert sources == {int(s) for s in states}, f"{name}: a state with no exit"
    assert targets == {int(s) for s in states}, f"{name}: an unreachable state"


def test_structural_never_skips_from_build_to_trigger_or_cooldown() -> None:
    S = StructuralState
    for bad in ((S.BUILD, S.TRIGGER_READY), (S.BUILD, S.FRAGILE), (S.BUILD, S.COOLDOWN),
                (S.PRESSURE, S.TRIGGER_READY), (S.UNWIND, S.BUILD), (S.COOLDOWN, S.FRAGILE)):
        assert (int(bad[0]), int(bad[1])) not in structural.LEGAL


def test_phase_only_moves_back_to_open_a_new_epoch() -> None:
    backwards = {(s, t) for s, t in phase.LEGAL if t < s}
    assert backwards == {(int(EventPhase.END), int(EventPhase.MID)),
                         (int(EventPhase.POST), int(EventPhase.MID)),
                         (int(EventPhase.POST), int(EventPhase.PREP))}


def test_unknown_guard_or_hold_is_a_table_error() -> None:
    bad = Rule(source=StructuralState.BUILD, when="nope", target=StructuralState.PRESSURE,
               hold="persist_ticks")
    with pytest.raises(TableError, match="unknown guard 'nope'"):
        compile_table("t", StructuralState, [bad], structural.GUARDS, StructuralConfig())
    bad = Rule(source=StructuralState.BUILD, when="cooled", target=StructuralState.PRESSURE,
               hold="nope_ticks")
    with pytest.raises(TableError, match="no hold field 'nope_ticks'"):
        compile_table("t", StructuralState, [bad], structural.GUARDS, StructuralConfig())


def test_persist_rule_needs_consecutive_evaluations() -> None:
    compiled = structural.compile_rules(StructuralConfig(persist_ticks=3))
    hot = dict.fromkeys(structural.GUARDS, False) | {"pressure_hot": True}
    cold = dict.fromkeys(structural.GUARDS, False)
    s, p, c = int(StructuralState.BUILD), -1, 0
    s, p, c = advance(s, p, c, hot, compiled)
    s, p, c = advance(s, p, c, hot, compiled)
    assert s == StructuralState.BUILD and c == 2
    s, p, c = advance(s, p, c, cold, compiled)  # interrupted: counting starts over
    assert (s, p, c) == (int(StructuralState.BUILD), -1, 0)
    for _ in range(2):
        s, p, c = advance(s, p, c, hot, compiled)
    assert s == StructuralState.BUILD
    s, p, c = advance(s, p, c, hot, compiled)
    assert s == StructuralState.PRESSURE


def test_decay_rule_steps_down_one_level_after_decay_ticks() -> None:
    cfg = StructuralConfig(decay_ticks=5)
    compiled = structural.compile_rules(cfg)
    g = dict.fromkeys(structural.GUARDS, False) | {"fragile_cold": True, "pressure_cold": True,
                                                     "unwind_cold": True}
    s, p, c = int(StructuralState.FRAGILE), -1, 0
    for i in range(5):
        s, p, c = advance(s, p, c, g, compiled)
        assert s == (StructuralState.FRAGILE if i < 4 else StructuralState.PRESSURE)
    for _ in range(5):
        s, p, c = advance(s, p, c, g, compiled)
    assert s == StructuralState.BUILD


def test_unhealthy_data_blocks_trigger_ready() -> None:
    cfg = StructuralConfig()
    sc = structural.Scores(pressure=1.0, fragile=1.0, trigger=1.0, unwind=0.0)
    from engine_core.states import Quality
    g = structural.guards(sc, int(Quality.STALE_BOOK), 0, cfg)
    assert g["trigger_hot"] is False and g["unhealthy"] is True
    assert g["fragile_hot"] is False  # a frozen book must not look like a cheap trigger
    g = structural.guards(sc, int(Quality.STALE_MARK), 0, cfg)
    assert g["trigger_hot"] is False and g["fragile_hot"] is True
    g = structural.guards(sc, 0, 0, cfg)
    assert g["trigger_hot"] is True
    g = structural.guards(sc, int(Quality.WARMUP), 0, cfg)
    assert not (g["pressure_hot"] or g["fragile_hot"] or g["unwind_hot"])


def test_a_blip_does_not_restart_the_cooldown() -> None:
    cfg = StructuralConfig(cooldown_ticks=10, unwind_persist_ticks=3)
    calm = structural.Scores(pressure=0.0, fragile=0.0, trigger=0.0, unwind=0.0)
    blip = structural.Scores(pressure=0.0, fragile=0.0, trigger=0.0, unwind=0.9)
    rules = structural.compile_rules(cfg)
    ctx = structural.FsmContext(state=int(StructuralState.COOLDOWN))
    for k in range(10):
        ctx = structural.update(ctx, blip if k == 5 else calm, 0, cfg, rules)
    assert ctx.state == StructuralState.BUILD


def test_crowd_side_is_measured_beyond_the_normal_funding_rate() -> None:
    import attrs as _attrs

    from engine_core.features import FeatureFrame
    cfg = StructuralConfig()
    base = {a.name: 0 for a in _attrs.fields(FeatureFrame)}
    selling = FeatureFrame(**(base | {"delta_ratio": -0.5, "funding_rate": 0.0001}))
    crowded = FeatureFrame(**(base | {"delta_ratio": -0.5, "funding_rate": 0.0008}))
    assert structural.scores(selling, 0, 100.0, cfg).trigger == 0.0
    assert structural.scores(crowded, 0, 100.0, cfg).trigger > 0.2


@given(st.lists(st.tuples(st.sampled_from(list(ClusterState)), st.booleans()), max_size=300))
def test_phase_pair_never_decreases(seq: list[tuple[ClusterState, bool]]) -> None:
    cfg = PhaseConfig(mid_unwind_updates=2, end_hold_updates=2, post_hold_updates=3,
                      fizzle_calm_updates=2, end_confirm_updates=1)
    compiled = phase.compile_rules(cfg)
    ctx = phase.PhaseContext()
    for cs, _ in seq:
        new = phase.update(ctx, int(cs), cfg, compiled)
        assert (new.event_id, new.phase) >= (ctx.event_id, ctx.phase)
        assert new.event_id - ctx.event_id in (0, 1)
        ctx = new


def test_cluster_degraded_when_feeds_are_dead_holds_state() -> None:
    from engine_core.states import Quality
    cfg = ClusterConfig()
    compiled = cluster.compile_rules(cfg)
    ctx = cluster.ClusterContext(state=int(ClusterState.CLUSTER_HEATING))
    dead = [int(Quality.FEED_STALE)] * 8 + [0] * 2
    new = cluster.update(ctx, [0] * 10, dead, cfg, compiled)
    assert new.degraded and new.state == ClusterState.CLUSTER_HEATING and new.live == 2
    calm = cluster.update(ctx, [0] * 10, [0] * 10, cfg, compiled)
    assert not calm.degraded and calm.heat == 0.0
