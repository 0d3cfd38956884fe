"""Narrative scenarios: a leverage build-up then a cascade, and hours of quiet market."""

from __future__ import annotations

import collections
from collections.abc import Iterator

import pytest

import engine_core as ec
from engine_sim.simulation import DEFAULT_SPECS, MarketSimulator, calm_script, cascade_script
from tests.drive import run

SYMBOLS = tuple(sorted(s.symbol for s in DEFAULT_SPECS))


class Story:
    """What happened, tick by tick, condensed for assertions."""

    def __init__(self, sim: MarketSimulator, ticks: Iterator[tuple[int, tuple[ec.Record, ...],
                                                                   tuple[ec.Alert, ...]]]) -> None:
        self.sim = sim
        self.paths: dict[str, list[ec.StructuralState]] = {s: [] for s in SYMBOLS}
        self.cluster: list[ec.ClusterState] = []
        self.phases: list[tuple[int, ec.EventPhase]] = []
        self.alerts: list[ec.Alert] = []
        self.segment_of_alert: list[str] = []
        for tick, recs, alerts in ticks:
            for sym, r in zip(SYMBOLS, recs, strict=True):
                path = self.paths[sym]
                if not path or path[-1] != r.fsm:
                    path.append(ec.StructuralState(r.fsm))
            c = ec.ClusterState(recs[0].cluster)
            if not self.cluster or self.cluster[-1] != c:
                self.cluster.append(c)
            p = (recs[0].event_id, ec.EventPhase(recs[0].phase))
            if not self.phases or self.phases[-1] != p:
                self.phases.append(p)
            self.alerts.extend(alerts)
            self.segment_of_alert.extend(sim.segment_at(tick * 250) for _ in alerts)


@pytest.fixture(scope="module")
def cascade() -> Story:
    """Funding climbs while OI builds for 50 minutes on half the market, aggressive selling
    meets first liquidations, then a three-minute cascade and half an hour of recovery."""
    sim = MarketSimulator(SYMBOLS, cascade_script(), seed=7)
    return Story(sim, run(ec.Config(), SYMBOLS, sim.events()))


def test_leaders_build_pressure_then_unwind_and_cool(cascade: Story) -> None:
    """Config v3: the leaders' build-up adds open interest while the crowd pays funding and
    a basis (a loaded build-up, docs/rules.md), so they climb the whole ladder."""
    S = ec.StructuralState
    for sym, role in cascade.sim.roles.items():
        if role == "leader":
            assert cascade.paths[sym] == [S.BUILD, S.PRESSURE, S.FRAGILE, S.TRIGGER_READY,
                                          S.UNWIND, S.COOLDOWN, S.BUILD], sym


def test_followers_are_warned_and_the_bystander_stays_calm(cascade: Story) -> None:
    """Config v4: the followers are warned (TRIGGER_READY) but, in this scripted story,
    their unwind score is hot in flickers of at most ~4 s (a blend of the leaders, no
    liquidation feedback of their own); UNWIND needs it to hold 10 s, so they wind down."""
    S = ec.StructuralState
    for sym, role in cascade.sim.roles.items():
        if role == "follower":
            path = cascade.paths[sym]
            assert S.TRIGGER_READY in path and S.UNWIND not in path, sym
            assert path[-1] == S.BUILD, sym
        if role == "bystander":
            assert cascade.paths[sym] == [S.BUILD], sym


def test_cluster_heats_turns_fragile_unwinds_and_cools(cascade: Story) -> None:
    C = ec.ClusterState
    assert cascade.cluster == [C.CLUSTER_CALM, C.CLUSTER_HEATING, C.CLUSTER_FRAGILE,
                               C.CLUSTER_UNWIND, C.CLUSTER_COOLDOWN, C.CLUSTER_CALM]


def test_event_phases_run_forward_and_open_the_next_epoch(cascade: Story) -> None:
    P = ec.EventPhase
    assert cascade.phases == [(0, P.PREP), (0, P.START), (0, P.MID), (0, P.END), (0, P.POST),
                              (1, P.PREP)]


def test_every_alert_kind_is_raised_at_the_right_moment(cascade: Story) -> None:
    by_kind = collections.defaultdict(set)
    for a, seg in zip(cascade.alerts, cascade.segment_of_alert, strict=True):
        by_kind[a.kind].add(seg)
    K = ec.AlertKind
    # FRAGILE is told during the build-up (ahead of the cascade), TRIGGER_READY once the
    # selling starts; UNWIND enters in the cascade and may re-enter in the recovery; the
    # cluster turns FRAGILE in the build-up and UNWINDs in the cascade
    assert by_kind[K.STRUCTURAL_FRAGILE] == {"build-up"}
    assert by_kind[K.STRUCTURAL_TRIGGER_READY] <= {"trigger", "cascade"}
    assert "cascade" in by_kind[K.STRUCTURAL_UNWIND]
    assert by_kind[K.STRUCTURAL_UNWIND] <= {"cascade", "recovery"}
    assert by_kind[K.SYSTEMIC_ALERT] == {"build-up", "cascade"}
    systemic = [a for a in cascade.alerts if a.kind is K.SYSTEMIC_ALERT]
    assert all(a.token_id == ec.MARKET_WIDE and a.symbol == "*" for a in systemic)


def test_a_quiet_market_raises_no_structural_alert_for_hours() -> None:
    """Two hours of a normal market: noise in OI, funding at the 0.01 % baseline."""
    syms = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    sim = MarketSimulator(syms, calm_script(2.0), seed=3)
    states: collections.Counter[int] = collections.Counter()
    n = 0
    for _tick, recs, alerts in run(ec.Config(), syms, sim.events()):
        n += 1
        assert alerts == (), alerts
        states.update(r.fsm for r in recs)
        assert recs[0].cluster == ec.ClusterState.CLUSTER_CALM
    assert n >= 2 * 3600 * 4
    assert set(states) == {ec.StructuralState.BUILD}
