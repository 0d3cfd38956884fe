"""Unit tests of the per-token layers: features, tier, trigger cost, and the public API."""

from __future__ import annotations

from typing import Any

import pytest

import engine_core as ec
from engine_core import features, tier, trigger_cost
from engine_core.canonical import make_batch
from engine_core.config import FeatureConfig, TierConfig, TriggerCostConfig
from engine_core.features import EmaWeights, FeatureFrame, FeatureParams, FeatureState
from engine_core.states import Quality, Tier

P = FeatureParams.from_config(FeatureConfig(warmup_ticks=2, stale_book_ticks=3,
                                            health_hold_ticks=4))
T0 = 7_000_000_000


def batch(tick: int, *events: ec.MarketEvent) -> ec.CanonicalBatch:
    q = ec.CanonicalEngine(["BTCUSDT"])
    for e in events:
        assert q.ingest(e) is None, e
    return q.flush(tick)[0]


def step(st: FeatureState, w: EmaWeights, b: ec.CanonicalBatch
         ) -> tuple[FeatureState, EmaWeights, FeatureFrame]:
    w = w.advance(P)
    st, f = features.extract(st, b, P, w)
    return st, w, f


def trade(ts: int, price: float, qty: float, maker: bool, tid: int = 0) -> ec.TradeReceived:
    return ec.TradeReceived(symbol="BTCUSDT", exchange_ts=ts, price=price, qty=qty,
                            buyer_is_maker=maker, trade_id=tid)


def book(ts: int, bid: float, ask: float, uid: int = 0) -> ec.BookTickerReceived:
    return ec.BookTickerReceived(symbol="BTCUSDT", exchange_ts=ts, bid=bid, bid_qty=2.0,
                                 ask=ask, ask_qty=3.0, update_id=uid)


def test_trade_delta_is_aggressive_buys_minus_sells() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    st, w, f = step(st, w, batch(T0, trade(T0 * 250, 100.0, 2.0, False),
                                 trade(T0 * 250, 100.0, 0.5, True)))
    assert f.trade_count == 2 and f.trade_volume == 2.5 and f.trade_notional == 250.0
    assert f.trade_delta == 150.0  # 200 bought aggressively, 50 sold
    assert f.delta_ratio == pytest.approx(0.6)


def test_book_spread_mid_and_stale_updates_ignored() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    st, w, f = step(st, w, batch(T0, book(T0 * 250, 99.0, 101.0, uid=10),
                                 book(T0 * 250 + 1, 90.0, 110.0, uid=5)))  # older id: ignored
    assert f.mid == 100.0 and f.spread_pct == pytest.approx(2.0)
    assert not f.quality & Quality.NO_BOOK
    for k in range(1, 4):
        st, w, f = step(st, w, batch(T0 + k))
    assert f.quality & Quality.STALE_BOOK  # 3 ticks without a book update


def test_liquidations_imbalance_and_saturation() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    liq = [ec.LiquidationReceived(symbol="BTCUSDT", exchange_ts=(T0 * 250) + 1000 * s,
                                  side=ec.Side.SELL, price=100.0, qty=1.0) for s in range(2)]
    st, w, f = step(st, w, batch(T0, liq[0]))
    assert f.liq_long_notional == 100.0 and f.liquidation_imbalance == 1.0
    assert not f.quality & Quality.LIQUIDATION_SATURATED
    st, w, f = step(st, w, batch(T0 + 4, liq[1]))  # one liquidation in consecutive seconds
    assert f.quality & Quality.LIQUIDATION_SATURATED


def test_health_events_raise_sticky_flags_and_stale_feed_until_resumed() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()

    def health(kind: ec.HealthKind) -> ec.DataHealthReceived:
        return ec.DataHealthReceived(symbol="BTCUSDT", exchange_ts=T0 * 250, kind=kind)

    st, w, f = step(st, w, batch(T0, health(ec.HealthKind.TRADE_GAP),
                                 health(ec.HealthKind.STREAM_STALE)))
    assert f.quality & Quality.TRADE_GAP and f.quality & Quality.FEED_STALE
    for k in range(1, 5):
        st, w, f = step(st, w, batch(T0 + k))
    assert not f.quality & Quality.TRADE_GAP  # held for health_hold_ticks only
    assert f.quality & Quality.FEED_STALE  # until the shell says it resumed
    st, w, f = step(st, w, batch(T0 + 5, health(ec.HealthKind.STREAM_RESUMED)))
    assert not f.quality & Quality.FEED_STALE


def test_open_interest_velocity_and_build_up() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    oi = [ec.OpenInterestReceived(symbol="BTCUSDT", exchange_ts=T0 * 250 + k, open_interest=v)
          for k, v in enumerate((1000.0, 1100.0))]
    st, w, f = step(st, w, batch(T0, oi[0]))
    assert f.oi == 1000.0 and f.oi_velocity == 0.0 and f.oi_build == 0.0
    st, w, f = step(st, w, batch(T0 + 1, oi[1]))
    # the 1-hour norm lags more than the 1-minute one: the build-up reads higher
    assert 0.0 < f.oi_velocity < f.oi_build


def frame(**kw: float) -> FeatureFrame:
    base: dict[str, Any] = dict.fromkeys(FeatureFrame._fields, 0)
    base.update(volume_ratio=1.0, spread_ratio=1.0, depth_ratio=1.0, vol_ratio=1.0)
    base.update(kw)
    return FeatureFrame(**base)


@pytest.mark.parametrize("kw,want", [
    ({}, Tier.TIER_NEUTRAL),
    ({"oi_velocity": 0.001, "volume_ratio": 1.5}, Tier.TIER_EXPANSION),
    ({"oi_build": 0.01}, Tier.TIER_EXPANSION),
    ({"oi_build": 0.03, "funding_per_hour": 0.0005 / 8}, Tier.TIER_OVERLEVERAGED),
    ({"oi_build": 0.03, "funding_rate": 0.0005}, Tier.TIER_EXPANSION),  # per hour counts
    ({"oi_build": 0.03, "premium_pct": -0.08}, Tier.TIER_OVERLEVERAGED),
    ({"oi_build": 0.03}, Tier.TIER_EXPANSION),
    ({"oi_velocity": -0.01, "liq_intensity": 0.1}, Tier.TIER_EXHAUSTED),
    ({"oi_velocity": -0.01, "oi_build": 0.05, "funding_rate": 0.001, "volume_ratio": 3.0},
     Tier.TIER_EXHAUSTED),
    ({"oi_build": 0.05, "funding_rate": 0.001, "quality": float(Quality.WARMUP)},
     Tier.TIER_NEUTRAL),
])
def test_tier_classification_priority(kw: dict[str, float], want: Tier) -> None:
    f = frame(**{k: (int(v) if k == "quality" else v) for k, v in kw.items()})
    assert tier.classify(f, TierConfig()) == want


def test_tier_needs_persistence() -> None:
    c = TierConfig(persist_ticks=3)
    ctx = tier.TierContext()
    hot = frame(oi_build=0.01)
    for _ in range(2):
        ctx = tier.update(ctx, hot, c)
        assert ctx.tier == Tier.TIER_NEUTRAL
    ctx = tier.update(ctx, hot, c)
    assert ctx.tier == Tier.TIER_EXPANSION and ctx.age == 0


def test_trigger_cost_components_move_the_right_way() -> None:
    c = TriggerCostConfig()
    calm = trigger_cost.compute(frame(), int(Tier.TIER_NEUTRAL), c)
    assert calm.density == 100.0 and calm.compression == 0.0 and calm.cost == 100.0
    thin = trigger_cost.compute(frame(depth_ratio=0.3), int(Tier.TIER_NEUTRAL), c)
    assert thin.density == 0.0 and thin.cost == 75.0
    coiled = trigger_cost.compute(frame(vol_ratio=0.2), int(Tier.TIER_NEUTRAL), c)
    assert coiled.compression == 100.0
    # OI is counted once (in pressure): by default it is not in divergence nor the regime
    assert trigger_cost.compute(frame(oi_build=0.02), int(Tier.TIER_OVERLEVERAGED),
                                c).divergence == 0.0
    basis = trigger_cost.compute(frame(premium_pct=0.1), int(Tier.TIER_NEUTRAL), c)
    assert basis.divergence == 100.0
    c2 = TriggerCostConfig(weight_divergence_oi=1.0, multiplier_overleveraged=1.35)
    divergent = trigger_cost.compute(frame(oi_build=0.02), int(Tier.TIER_NEUTRAL), c2)
    assert divergent.divergence == 100.0
    moved = trigger_cost.compute(frame(oi_build=0.02, move_sigma=-1.5), int(Tier.TIER_NEUTRAL),
                                 c2)
    assert moved.divergence == 50.0  # half of the 3-sigma "the price followed"
    crowded = trigger_cost.compute(frame(oi_build=0.02), int(Tier.TIER_OVERLEVERAGED), c2)
    assert crowded.cost < divergent.cost  # the regime scales the fragility


def test_public_api_is_complete_and_documented() -> None:
    for name in ec.__all__:
        obj = getattr(ec, name)
        assert obj is not None, name
    for name in ("Config", "step", "initial_state", "CanonicalEngine", "Record", "Alert"):
        assert getattr(ec, name).__doc__, name
    assert ec.RECORD_SIZE == 64 and ec.FORMAT_VERSION >= 1 and ec.CONFIG_VERSION >= 1


def test_step_rejects_misuse_with_clear_messages() -> None:
    st = ec.initial_state(ec.Config(), ["BTCUSDT"])
    st, _r, _a = ec.step(st, ec.empty_tick(1, 10), 10)
    with pytest.raises(ValueError, match="got 12 after 10"):
        ec.step(st, ec.empty_tick(1, 12), 12)
    with pytest.raises(ValueError, match="one batch per token"):
        ec.step(st, ec.empty_tick(2, 11), 11)
    with pytest.raises(ValueError, match="expected token 0 tick 11"):
        ec.step(st, (make_batch(0, 99, ()),), 11)


def test_tick_assignment_is_the_first_boundary_after_the_receive_time() -> None:
    assert ec.TICK_MS == 250
    assert [ec.tick_of_recv_ms(ms) for ms in (0, 1, 249, 250, 251, 499, 500)] == [
        1, 1, 1, 2, 2, 2, 3,
    ]
    # Every receive time lands strictly before its tick's end and at or after its start.
    for ms in range(0, 2_000, 37):
        t = ec.tick_of_recv_ms(ms)
        assert (t - 1) * ec.TICK_MS <= ms < t * ec.TICK_MS


def test_feature_tuples_are_built_in_field_order() -> None:
    """extract builds both named tuples positionally: every field must land in its own slot.

    With every smoothing factor 0 an empty tick leaves each level where it was, so the new
    state must equal the old one field by field (each field holds a distinct value).
    """
    still = P._replace(a_fast=0.0, a_slow=0.0, a_vol_fast=0.0, a_vol_slow=0.0,
                       a_oi_fast=0.0, a_oi_slow=0.0, a_liq=1.0, warmup_ticks=0, a_liq_base=0.0,
                       a_sustain=0.0, a_move=0.0, a_sigma=0.0, a_basis=0.0)
    tick = 1000
    values: dict[str, Any] = {name: float(k + 1) for k, name in
                                 enumerate(FeatureState._fields)}
    values.update(session_tick=900, book_update_id=7, book_tick=tick - 1, mark_ts=11,
                  mark_tick=tick - 2, oi_ts=13, oi_tick=tick - 3, liq_sec=17, liq_streak=1,
                  liq_saturated_tick=-50, trade_gap_tick=-51, liq_gap_tick=-52,
                  reconnect_tick=-53, rest_tick=-54, feed_stale=True, liq_long=0.0,
                  liq_short=0.0, funding_hours=4, oi_seeded=True, depth_tick=-55,
                  halted=False, delisted=False)
    values["prev_mid"] = (values["bid"] + values["ask"]) * 0.5
    st = FeatureState(**values)
    w = EmaWeights(fast=1.0, slow=1.0, vol_fast=1.0, vol_slow=1.0, liq=1.0)
    new, f = features.extract(st, make_batch(5, tick, ()), still, w)
    assert new._asdict() == st._asdict()
    assert (f.token_id, f.tick_id, f.n_events, f.trade_count) == (5, tick, 0, 0)
    assert (f.oi, f.funding_rate, f.mid) == (st.oi, st.funding, st.prev_mid)
    assert f.liq_long_notional == f.liq_short_notional == 0.0
    assert f.quality == int(Quality.FEED_STALE)


def test_tier_table_needs_every_guard_once() -> None:
    from engine_core.fsm import TableError

    with pytest.raises(TableError, match="exactly one"):
        tier.compile_tiers(tier.TABLE[:-1])
    with pytest.raises(TableError, match="exactly one"):
        tier.compile_tiers((*tier.TABLE, tier.TABLE[0]))


def test_one_liquidation_print_alone_never_makes_unwind() -> None:
    """The liquidation leg counts only when corroborated by an OI drop or sustained prints;
    the saturation flag adds nothing by itself (config v2)."""
    from engine_core import structural

    c = ec.Config().structural
    lone = frame(liq_excess=1e6, liq_sustained=0.01,
                 quality=int(Quality.LIQUIDATION_SATURATED))
    assert structural.scores(lone, 0, 100.0, c).unwind < 0.05
    jump = lone._replace(move_sigma=-8.0)  # a print and a jump, positions not leaving
    assert structural.scores(jump, 0, 100.0, c).unwind < c.unwind_enter
    leaving = jump._replace(oi_velocity=-0.012)  # the same with OI 1.2 % below its norm
    assert structural.scores(leaving, 0, 100.0, c).unwind >= c.unwind_enter
    sustained = jump._replace(liq_sustained=0.22)  # prints nearly every second
    assert structural.scores(sustained, 0, 100.0, c).unwind >= c.unwind_enter
    # the archive, no prints at all: a 10 sigma move with OI 1.2 % below its norm
    quiet_flush = frame(move_sigma=-10.0, oi_velocity=-0.012)
    assert structural.scores(quiet_flush, 0, 100.0, c).unwind >= c.unwind_enter


def test_funding_pressure_is_per_hour() -> None:
    from engine_core import structural

    c = ec.Config().structural
    eight = frame(funding_rate=0.0006, funding_per_hour=0.0006 / 8)
    one = frame(funding_rate=0.0006, funding_per_hour=0.0006)
    assert structural.scores(eight, 0, 100.0, c).pressure == pytest.approx(
        c.pressure_weight_carry)
    assert structural.scores(one, 0, 100.0, c).pressure == pytest.approx(
        c.pressure_weight_carry)
    normal = frame(funding_rate=0.0001, funding_per_hour=0.0001 / 8)
    assert structural.scores(normal, 0, 100.0, c).pressure == 0.0


def test_move_is_measured_in_the_symbols_own_sigma() -> None:
    """The same 1 % jump is many sigma on a quiet symbol and few on a wild one."""
    def sigma_after_jump(step_pct: float) -> float:
        st, w = FeatureState(session_tick=T0), EmaWeights()
        p = 100.0
        f = None
        for k in range(2000):
            p = p * (1 + step_pct / 100 * (1 if k % 2 else -1))
            ev = ec.BookTickerReceived(symbol="BTCUSDT", exchange_ts=(T0 + k) * 250 - 1,
                                       bid=p - 0.001, bid_qty=1.0, ask=p + 0.001, ask_qty=1.0)
            st, w, f = step(st, w, batch(T0 + k, ev))
        ev = ec.BookTickerReceived(symbol="BTCUSDT", exchange_ts=(T0 + 2000) * 250 - 1,
                                   bid=p * 0.99 - 0.001, bid_qty=1.0, ask=p * 0.99 + 0.001,
                                   ask_qty=1.0)
        st, w, f = step(st, w, batch(T0 + 2000, ev))
        assert f is not None
        return f.move_sigma

    quiet, wild = sigma_after_jump(0.01), sigma_after_jump(0.3)
    assert quiet < -20 < wild < -1


def test_oi_history_seeds_the_long_norm() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    hist = ec.OpenInterestHistoryReceived(
        symbol="BTCUSDT", exchange_ts=T0 * 250 - 1,
        points=tuple((T0 * 250 - 1 - 300_000 * (288 - k), 1000.0) for k in range(288)))
    st, w, f = step(st, w, batch(T0, hist))
    oi = ec.OpenInterestReceived(symbol="BTCUSDT", exchange_ts=(T0 + 1) * 250 - 1,
                                 open_interest=1100.0)
    st, w, f = step(st, w, batch(T0 + 1, oi))
    assert f.oi_build == pytest.approx(0.1, rel=1e-3)  # vs the day's norm, at once
    fresh, w2 = FeatureState(session_tick=T0), EmaWeights()
    fresh, w2, g = step(fresh, w2, batch(T0, oi))
    assert g.oi_build == 0.0  # without history the norm starts at the first poll


def test_first_depth_bands_restart_the_depth_norm_but_keep_sigma() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights()
    f = None
    for k in range(400):
        p = 100.0 + 0.01 * (k % 7)
        st, w, f = step(st, w, batch(T0 + k, book((T0 + k) * 250 - 1, p - 0.01, p + 0.01)))
    assert f is not None and f.move_sigma != 0.0
    var0 = st.move_var
    d = ec.DepthReceived(symbol="BTCUSDT", exchange_ts=(T0 + 400) * 250 - 1, edges_bps=(50,),
                         bid_notional=(1e6,), ask_notional=(1e6,))
    st, w, f = step(st, w, batch(T0 + 400, d))
    assert f.depth_ratio == 1.0 and st.depth_fast == st.depth_slow == 2e6
    assert st.move_var == pytest.approx(var0, rel=0.01)  # the sigma norm is kept
