"""Determinism and invariants of `step` over random event streams (SPEC section 1, CI suite)."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

import engine_core as ec
from engine_core import features, structural, trigger_cost
from engine_core.alerts import BIT_SYSTEMIC
from engine_core.states import Quality
from tests.property.streams import log_bytes, run_stream, streams

# A small config so that rolling windows, warm-up and holds are exercised in short streams.
FAST = ec.Config().evolve(
    features={"warmup_ticks": 4, "fast_window_ticks": 3, "slow_window_ticks": 12,
              "vol_fast_window_ticks": 3, "vol_slow_window_ticks": 12, "oi_fast_window_ticks": 4,
              "oi_slow_window_ticks": 16, "liq_window_ticks": 4, "stale_book_ticks": 6,
              "stale_mark_ticks": 6, "stale_oi_ticks": 8, "health_hold_ticks": 5},
    structural={"persist_ticks": 1, "unwind_persist_ticks": 1, "decay_ticks": 2,
                "unwind_end_ticks": 2, "cooldown_ticks": 3, "health_demote_ticks": 1},
    cluster={"persist_updates": 1, "decay_updates": 1, "cooldown_updates": 2, "min_symbols": 1},
    phase={"mid_unwind_updates": 1, "fizzle_calm_updates": 2, "end_hold_updates": 1,
           "post_hold_updates": 1, "end_confirm_updates": 1},
    alerts={"ticks_per_bucket": 8},
)
ROOT = Path(__file__).resolve().parents[2]


@given(streams())
def test_two_runs_give_identical_bytes(s) -> None:  # type: ignore[no-untyped-def]
    _, r1, a1 = run_stream(s[0], s[1], s[2], cfg=FAST)
    _, r2, a2 = run_stream(s[0], s[1], s[2], cfg=FAST)
    assert log_bytes(r1) == log_bytes(r2)
    assert a1 == a2


@given(streams(max_ticks=25))
def test_state_is_a_value_restepping_an_old_state_repeats_the_result(s) -> None:  # type: ignore[no-untyped-def]
    symbols, first, ticks = s
    states, recs, alerts = run_stream(symbols, first, ticks, cfg=FAST)
    q = ec.CanonicalEngine(symbols)
    replayed = []
    for k, evs in enumerate(ticks):  # rebuild the batches, then re-step every old state
        for e in evs:
            q.ingest(e)
        replayed.append(q.flush(first + k))
    for k, tb in enumerate(replayed):
        before = pickle.dumps(states[k])
        again = ec.step(states[k], tb, first + k)
        assert again[1] == recs[k] and again[2] == alerts[k]
        assert again[0] == states[k + 1]
        assert pickle.dumps(states[k]) == before  # step never modified its input


@given(streams(), st.data())
def test_a_tokens_own_fields_do_not_depend_on_other_tokens(s, data) -> None:  # type: ignore[no-untyped-def]
    symbols, first, ticks = s
    if len(symbols) < 2:
        return
    victim = data.draw(st.sampled_from(symbols))
    only = [[e for e in evs if e.symbol == victim] for evs in ticks]
    _, r_all, _ = run_stream(symbols, first, ticks, cfg=FAST)
    _, r_one, _ = run_stream(symbols, first, only, cfg=FAST)
    i = symbols.index(victim)
    market_wide = {"cluster", "phase", "event_id"}
    for a, b in zip(r_all, r_one, strict=True):
        da, db = attrs.asdict(a[i]), attrs.asdict(b[i])
        for k in market_wide:
            da.pop(k), db.pop(k)
        da["alerts"] &= ~BIT_SYSTEMIC
        db["alerts"] &= ~BIT_SYSTEMIC
        da["quality"] &= ~int(Quality.CLUSTER_DEGRADED)
        db["quality"] &= ~int(Quality.CLUSTER_DEGRADED)
        assert da == db


@given(streams(max_ticks=60))
def test_cluster_changes_only_on_ticks_divisible_by_4_and_phase_never_goes_back(s) -> None:  # type: ignore[no-untyped-def]
    _, recs, _ = run_stream(s[0], s[1], s[2], cfg=FAST)
    prev = None
    for tick in recs:
        r = tick[0]
        assert all(x.cluster == r.cluster and x.phase == r.phase and x.event_id == r.event_id
                   for x in tick)
        if prev is not None:
            if r.tick_id % 4:
                assert (r.cluster, r.phase, r.event_id) == prev[1:]
            assert (r.event_id, r.phase) >= (prev[3], prev[2])
        prev = (r.tick_id, r.cluster, r.phase, r.event_id)


@given(streams())
def test_scores_and_trigger_cost_stay_within_bounds(s) -> None:  # type: ignore[no-untyped-def]
    symbols, first, ticks = s
    cfg = FAST
    p = features.FeatureParams.from_config(cfg.features)
    q = ec.CanonicalEngine(symbols)
    fs = [features.FeatureState(session_tick=first) for _ in symbols]
    w = features.EmaWeights()
    for k, evs in enumerate(ticks):
        for e in evs:
            q.ingest(e)
        w = w.advance(p)
        for i, b in enumerate(q.flush(first + k)):
            fs[i], f = features.extract(fs[i], b, p, w)
            assert -1.0 <= f.delta_ratio <= 1.0 and -1.0 <= f.liquidation_imbalance <= 1.0
            for t in ec.Tier:
                tc = trigger_cost.compute(f, int(t), cfg.trigger_cost)
                assert 0.0 <= tc.cost <= 100.0
                for v in (tc.density, tc.compression, tc.divergence, tc.elasticity):
                    assert 0.0 <= v <= 100.0
                sc = structural.scores(f, int(t), tc.cost, cfg.structural)
                for v in (sc.pressure, sc.fragile, sc.trigger, sc.unwind):
                    assert 0.0 <= v <= 1.0


@given(streams(max_ticks=20))
@settings(max_examples=20)
def test_no_valid_input_raises_with_default_config(s) -> None:  # type: ignore[no-untyped-def]
    run_stream(*s)  # default windows: warm-up, staleness and EMAs on raw extremes


_CHILD = """
import hashlib, pickle, sys
sys.path.insert(0, {root!r})
from tests.property.streams import log_bytes, run_stream
from tests.property.test_determinism import FAST
s = pickle.loads(sys.stdin.buffer.read())
_, recs, alerts = run_stream(*s, cfg=FAST)
print(hashlib.sha256(log_bytes(recs) + repr(alerts).encode()).hexdigest())
"""


@given(streams(max_ticks=30))
@settings(max_examples=3)
def test_identical_bytes_in_subprocesses_under_other_hash_seeds(s) -> None:  # type: ignore[no-untyped-def]
    _, recs, alerts = run_stream(s[0], s[1], s[2], cfg=FAST)
    want = hashlib.sha256(log_bytes(recs) + repr(alerts).encode()).hexdigest()
    blob = pickle.dumps(s)
    for seed in ("0", "1", "4242"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT))], input=blob,
                             capture_output=True, env=env, check=True, cwd=ROOT)
        assert out.stdout.decode().strip() == want, f"PYTHONHASHSEED={seed}"
