"""Model-based test of `step`: the real engine next to a deliberately simple reference model.

A hypothesis state machine feeds random ticks (quiet ones, random bursts, liquidation cascades
with open interest leaving, session restarts) to the real `ec.step`, and after every step
compares its records with a model that knows only the documented invariants of docs/rules.md,
written out here by hand:

- a symbol moves only along the structural ladder (section 6.4) and never escalates without
  a signal, nor into TRIGGER_READY on unhealthy data; its `state_age` counts ticks in a state;
- the cluster and the phase change only on every 4th tick, the cluster only along its own
  ladder (section 7), and neither moves on a degraded update; (event_id, phase) never
  decreases and event_id grows exactly when the phase moves back (section 8);
- the alert bits are exactly the documented transitions (section 9), recomputed by the model;
- `step` never modifies its inputs (state and batches pickle the same before and after).
"""

from __future__ import annotations

import pickle

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import engine_core as ec
from engine_core.states import UNHEALTHY, AlertKind, ClusterState, EventPhase, Quality
from engine_core.states import StructuralState as S
from tests.property.streams import T0, events_for
from tests.property.test_determinism import FAST

C = ClusterState
P = EventPhase
K = AlertKind
SYMBOLS = ("AAAUSDT", "BTCUSDT", "ETHUSDT")
LADDER = {
    (S.BUILD, S.UNWIND), (S.BUILD, S.PRESSURE), (S.PRESSURE, S.UNWIND), (S.PRESSURE, S.FRAGILE),
    (S.PRESSURE, S.BUILD), (S.FRAGILE, S.UNWIND), (S.FRAGILE, S.TRIGGER_READY),
    (S.FRAGILE, S.PRESSURE), (S.TRIGGER_READY, S.UNWIND), (S.TRIGGER_READY, S.FRAGILE),
    (S.UNWIND, S.COOLDOWN), (S.COOLDOWN, S.UNWIND), (S.COOLDOWN, S.BUILD),
}
ESCALATIONS = {(a, b) for a, b in LADDER if b in (S.PRESSURE, S.FRAGILE, S.TRIGGER_READY,
                                                  S.UNWIND) and b > a}
CLUSTER_LADDER = {
    (C.CLUSTER_CALM, C.CLUSTER_UNWIND), (C.CLUSTER_CALM, C.CLUSTER_FRAGILE),
    (C.CLUSTER_CALM, C.CLUSTER_HEATING), (C.CLUSTER_HEATING, C.CLUSTER_UNWIND),
    (C.CLUSTER_HEATING, C.CLUSTER_FRAGILE), (C.CLUSTER_HEATING, C.CLUSTER_CALM),
    (C.CLUSTER_FRAGILE, C.CLUSTER_UNWIND), (C.CLUSTER_FRAGILE, C.CLUSTER_HEATING),
    (C.CLUSTER_UNWIND, C.CLUSTER_COOLDOWN), (C.CLUSTER_COOLDOWN, C.CLUSTER_UNWIND),
    (C.CLUSTER_COOLDOWN, C.CLUSTER_CALM),
}
NO_SIGNAL = int(Quality.WARMUP | Quality.NO_BOOK)
TPB = FAST.alerts.ticks_per_bucket


class StepModel(RuleBasedStateMachine):
    """The real engine (`self.state`) and the model (`self.prev`, `self.stable`, ...)."""

    @initialize()
    def start(self) -> None:
        self.tick = T0 // 250
        self.state = ec.initial_state(FAST, SYMBOLS)
        self.queue = ec.CanonicalEngine(SYMBOLS)
        self.prev: tuple[ec.Record, ...] | None = None  # the last tick's records
        self.stable = [0] * len(SYMBOLS)  # model: ticks of this bucket FRAGILE/TRIGGER_READY
        self.told = [set() for _ in SYMBOLS]  # model: early alerts told in this build-up episode
        self.bucket_ticks = 0
        self.oi = 1e6

    def _step(self, events: list[ec.MarketEvent]) -> None:
        for e in events:
            self.queue.ingest(e)
        batch = self.queue.flush(self.tick)
        before = pickle.dumps((self.state, batch))
        state, recs, _alerts = ec.step(self.state, batch, self.tick)
        assert pickle.dumps((self.state, batch)) == before, "step modified its inputs"
        self._check(recs)
        self.state, self.prev = state, recs
        self.tick += 1

    @rule()
    def quiet_tick(self) -> None:
        self._step([])

    @rule(data=st.data(), n=st.integers(1, 12))
    def busy_tick(self, data: st.DataObject, n: int) -> None:
        end = self.tick * 250
        self._step([data.draw(events_for(data.draw(st.sampled_from(SYMBOLS)),
                                         end - data.draw(st.sampled_from((0, 5, 249)))))
                    for _ in range(n)])

    @rule(data=st.data())
    def cascade_tick(self, data: st.DataObject) -> None:
        """Books, marks, open interest leaving and forced sells on every symbol."""
        end = self.tick * 250 - 1
        self.oi *= data.draw(st.sampled_from((0.9, 0.97, 1.0, 1.05)))
        evs: list[ec.MarketEvent] = []
        for i, s in enumerate(SYMBOLS):
            p = 100.0 * (i + 1) * data.draw(st.sampled_from((0.97, 1.0, 1.02)))
            evs += [ec.BookTickerReceived(symbol=s, exchange_ts=end, bid=p, bid_qty=1.0,
                                          ask=p * 1.0002, ask_qty=1.0),
                    ec.MarkPriceReceived(symbol=s, exchange_ts=end, mark_price=p,
                                         index_price=p * 0.999, funding_rate=0.001),
                    ec.OpenInterestReceived(symbol=s, exchange_ts=end, open_interest=self.oi),
                    ec.LiquidationReceived(symbol=s, exchange_ts=end, side=ec.Side.SELL,
                                           price=p, qty=50.0),
                    ec.TradeReceived(symbol=s, exchange_ts=end, price=p, qty=5.0,
                                     buyer_is_maker=True)]
        self._step(evs)

    @rule(gap=st.integers(1, 9))
    def restart(self, gap: int) -> None:
        """A new session (engine restart) a few ticks later: a restart is not a transition."""
        self.tick += gap
        self.state = ec.initial_state(FAST, SYMBOLS)
        self.prev = None

    def _check(self, recs: tuple[ec.Record, ...]) -> None:
        first = recs[0]
        start = bool(first.quality & Quality.SESSION_START)
        assert start == (self.prev is None)
        assert all((r.cluster, r.phase, r.event_id) == (first.cluster, first.phase,
                                                        first.event_id) for r in recs)
        # alert bucket model
        if start:  # a session start ends every episode
            self.told = [set() for _ in recs]
        if start or self.tick % TPB == 0:  # ticks are consecutive within a session
            self.stable, self.bucket_ticks = [0] * len(recs), 0
        self.bucket_ticks += 1
        closes = self.tick % TPB == TPB - 1 and self.bucket_ticks == TPB
        prev_cluster = C.CLUSTER_CALM if self.prev is None else C(self.prev[0].cluster)
        systemic = first.cluster != prev_cluster and first.cluster in (C.CLUSTER_FRAGILE,
                                                                      C.CLUSTER_UNWIND)
        for i, r in enumerate(recs):
            old = S.BUILD if self.prev is None else S(self.prev[i].fsm)
            cur = S(r.fsm)
            if self.prev is not None:
                assert cur == old or (old, cur) in LADDER, f"{old.name} -> {cur.name}"
                assert r.state_age == (self.prev[i].state_age + 1 if cur == old else 0)
                if (old, cur) in ESCALATIONS:
                    assert not r.quality & NO_SIGNAL, f"{old.name} -> {cur.name} without signal"
                if cur == S.TRIGGER_READY and old != cur:
                    assert not r.quality & UNHEALTHY
            if cur in (S.FRAGILE, S.TRIGGER_READY):
                self.stable[i] += 1
            want = 0
            if systemic:
                want |= ec.alert_bit(K.SYSTEMIC_ALERT)
            told = self.told[i]
            if cur != old and cur == S.FRAGILE and old in (S.BUILD, S.PRESSURE) \
                    and S.FRAGILE not in told:
                want |= ec.alert_bit(K.STRUCTURAL_FRAGILE)
                told.add(S.FRAGILE)
            if cur != old and cur == S.TRIGGER_READY and S.TRIGGER_READY not in told:
                want |= ec.alert_bit(K.STRUCTURAL_TRIGGER_READY)
                told.add(S.TRIGGER_READY)
            if cur in (S.BUILD, S.UNWIND, S.COOLDOWN):  # the episode is over
                told.clear()
            if cur != old and cur == S.UNWIND:
                want |= ec.alert_bit(K.STRUCTURAL_UNWIND)
            if closes and self.stable[i] == TPB:
                want |= ec.alert_bit(K.STABLE_15M_ALERT)
            assert r.alerts == want, f"token {i} tick {r.tick_id}: {r.alerts:#x} != {want:#x}"
            if cur != old:
                event(f"symbol {old.name} -> {cur.name}")
        if self.prev is None:
            return
        p = self.prev[0]
        was = (C(p.cluster), P(p.phase), p.event_id)
        now = (C(first.cluster), P(first.phase), first.event_id)
        degraded = bool(first.quality & Quality.CLUSTER_DEGRADED)
        if self.tick % 4 or degraded:
            assert now == was, f"tick {self.tick}: cluster/phase moved ({was} -> {now})"
        else:
            assert now[0] == was[0] or (was[0], now[0]) in CLUSTER_LADDER
            assert (now[2], now[1]) >= (was[2], was[1])
            assert now[2] - was[2] == (1 if now[1] < was[1] else 0)
            if now != was:
                event(f"market {was[0].name}/{was[1].name} -> {now[0].name}/{now[1].name}")

    @invariant()
    def state_is_a_value(self) -> None:
        assert self.state.last_tick is None or self.state.last_tick == self.tick - 1


StepModel.TestCase.settings = settings(max_examples=25, stateful_step_count=60, deadline=None)
test_step_against_the_model = StepModel.TestCase
