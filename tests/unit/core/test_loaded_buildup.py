"""Config v3: the basis, the loaded build-up (FRAGILE) and one early alert per episode.

Expectations come from docs/rules.md (sections 5-6 and 9), not from the code: a premium that
passes averages out of the basis while a kept one stays; FRAGILE needs new positions (OI above
its 24-h norm) that pay to stay on (funding or basis) at once, and neither alone; a symbol
wavering between FRAGILE and TRIGGER_READY is told once until its episode ends.
"""

from __future__ import annotations

from typing import Any

import pytest

import engine_core as ec
from engine_core import features, structural
from engine_core.alerts import evaluate, initial_alert_state
from engine_core.canonical import make_batch, new_canonical_event
from engine_core.config import FeatureConfig
from engine_core.features import EmaWeights, FeatureFrame, FeatureParams, FeatureState
from engine_core.states import AlertKind, Quality, StructuralState

T0 = 100_000
FS = StructuralState


def _mark(tick: int, mark: float, index: float) -> Any:
    ts = tick * 250 - 5
    ev = ec.MarkPriceReceived(symbol="X", exchange_ts=ts, mark_price=mark, index_price=index,
                              funding_rate=0.0001)
    return new_canonical_event(0, ec.SourceType.MARK, ts, 0, ev)


def _basis_after(premiums: list[float]) -> float:
    """The frame's basis after one mark per tick at these premiums (%), no book."""
    p = FeatureParams.from_config(FeatureConfig())
    st, w = FeatureState(session_tick=T0), EmaWeights()
    f = None
    for k, prem in enumerate(premiums):
        w = w.advance(p)
        st, f = features.extract(st, make_batch(0, T0 + k, [_mark(T0 + k, 100.0 * (1 + prem / 100),
                                                                  100.0)]), p, w)
    assert f is not None
    return f.basis_pct


def test_a_passing_premium_averages_out_of_the_basis() -> None:
    calm = [0.0] * 2400
    spike = calm[:2000] + [0.3] * 20 + calm[:380]  # 5 s at 0.3 %, then back to the index
    kept = calm[:1200] + [0.06] * 1200  # 5 min at 0.06 %
    assert abs(_basis_after(spike)) < 0.01  # below the basis floor
    assert _basis_after(kept) > 0.03
    # bias-corrected from the first mark: a premium held from the start is the basis at once
    assert _basis_after([0.05] * 10) == pytest.approx(0.05, rel=1e-9)


def frame(**kw: float) -> FeatureFrame:
    base: dict[str, Any] = dict.fromkeys(FeatureFrame._fields, 0)
    base.update(volume_ratio=1.0, spread_ratio=1.0, depth_ratio=1.0, vol_ratio=1.0,
                funding_per_hour=0.0001 / 8)
    base.update(kw)
    return FeatureFrame(**base)


def test_fragile_needs_new_positions_that_pay_to_stay_on() -> None:
    c = ec.Config().structural
    oi_only = frame(oi_build=0.05)  # hedged inflow: OI up, no basis, funding normal
    carry_only = frame(basis_pct=0.08)  # a rich basis with no new positions
    loaded = frame(oi_build=0.05, basis_pct=0.08)
    for f in (oi_only, carry_only):
        assert structural.scores(f, 0, 0.0, c).fragile == 0.0  # even with a free trigger
    s = structural.scores(loaded, 0, 100.0, c)  # an expensive trigger only discounts it
    assert s.fragile == pytest.approx(1.0 - c.fragile_cost_weight)
    assert s.fragile >= c.fragile_enter and s.pressure >= c.pressure_enter
    assert structural.scores(loaded, 0, 0.0, c).fragile == pytest.approx(1.0)
    # funding carries the same way (per hour), and is not counted twice with the basis
    paid = frame(oi_build=0.05, funding_per_hour=0.0006 / 8)
    assert structural.scores(paid, 0, 100.0, c).fragile == pytest.approx(s.fragile)
    both = frame(oi_build=0.05, funding_per_hour=0.0006 / 8, basis_pct=0.08)
    assert structural.scores(both, 0, 100.0, c).pressure == pytest.approx(s.pressure)


def test_a_normal_basis_is_no_carry() -> None:
    c = ec.Config().structural
    s = structural.scores(frame(oi_build=0.05, basis_pct=c.pressure_basis_floor_pct), 0, 0.0, c)
    assert s.fragile == 0.0


def _alerts(path: list[int]) -> list[AlertKind]:
    syms = ("AAAUSDT",)
    state = initial_alert_state(syms, 10_000)
    out: list[AlertKind] = []
    for k, fsm in enumerate(path):
        base = dict.fromkeys(ec.FIELDS, 0)
        base.update(tick_id=1000 + k, token_id=0, fsm=int(fsm),
                    quality=int(Quality.SESSION_START) if k == 0 else 0)
        state, _, alerts = evaluate(state, [ec.Record(**base)])
        out += [a.kind for a in alerts]
    return out


def test_one_early_alert_per_level_per_episode() -> None:
    F, T, P, B = FS.FRAGILE, FS.TRIGGER_READY, FS.PRESSURE, FS.BUILD
    waver = [B, P, F, T, F, T, F, P, F, T]
    assert _alerts(waver) == [AlertKind.STRUCTURAL_FRAGILE, AlertKind.STRUCTURAL_TRIGGER_READY]
    # back in BUILD the episode is over: the next build-up is news again
    assert _alerts([*waver, P, B, P, F, T]) == [AlertKind.STRUCTURAL_FRAGILE,
                                                AlertKind.STRUCTURAL_TRIGGER_READY] * 2
    # an unwind ends it too, and UNWIND itself is always told
    after = [B, P, F, FS.UNWIND, FS.COOLDOWN, B, P, F, FS.UNWIND]
    assert _alerts(after) == [AlertKind.STRUCTURAL_FRAGILE, AlertKind.STRUCTURAL_UNWIND] * 2
