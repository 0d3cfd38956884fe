"""The quiet-market fast paths give the same bits as the plain code they replace (issue 9).

`step` encodes a tick's evidence records in one call (`pack_tick_evidence`, with levels from
`quantize_levels` kept while their floats are equal) instead of one `pack_evidence` per token;
`features.extract_quiet` lets an empty tick take over last tick's flags and levels; the
liquidation EMAs are skipped while all are zero; the records packed before the cluster's
turn are re-stamped when it moved, and alert bits patched into the packed bytes. Each is
compared here with the reference on inputs chosen to hit every branch: zeros of both signs,
values beyond every field's range, tiny and huge magnitudes, deadlines crossed.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from functools import partial

import attrs
import pytest

import engine_core as ec
from engine_core import features
from engine_core.config import FeatureConfig
from engine_core.evidence import pack_evidence, pack_tick_evidence, quantize_levels
from engine_core.feature_types import EmaWeights, FeatureFrame, FeatureParams, FeatureState
from engine_core.states import Quality

T0 = 7_000_000_000

_EDGE = (0.0, -0.0, 1e-300, -1e-300, 0.5, -0.5, 1.5, 2.5, 1e-5, -1e-5, 3.3e4, -3.3e4, 1e9,
         -1e9, 5e9, -5e9, 1e300, -1e300, 100.0, 60_120.5)


def _value(rng: random.Random) -> float:
    r = rng.random()
    if r < 0.4:
        return rng.choice(_EDGE)
    if r < 0.7:
        return rng.uniform(-2.0, 2.0)
    return rng.uniform(-1.0, 1.0) * 10.0 ** rng.randrange(-12, 22)


def _frame(rng: random.Random, token_id: int) -> FeatureFrame:
    n = len(FeatureFrame._fields)
    vals: list[float | int] = [_value(rng) for _ in range(n)]
    vals[0], vals[1], vals[2], vals[3] = token_id, 7_000_000_000, 0, 0
    vals[25] = 0  # quality
    vals[36] = rng.randrange(0, 1 << 10)  # evidence flags below CLAMPED
    return FeatureFrame(*vals)  # type: ignore[arg-type]


def _reference(tick_id: int, f: FeatureFrame) -> bytes:
    return pack_evidence(tick_id, f.token_id, f.evidence_flags, f.price, f.mark, f.index_price,
                         f.oi, f.funding_per_hour, f.liq_long_notional, f.liq_short_notional,
                         f.liq_long_window, f.liq_short_window, f.move_sigma, f.move,
                         f.oi_velocity, f.oi_build)


def _tick(tick_id: int, frames: list[FeatureFrame]) -> bytes:
    levels = [quantize_levels(f.price, f.mark, f.index_price, f.oi, f.funding_per_hour)
              for f in frames]
    return pack_tick_evidence(tick_id, frames, levels)


def _outcome(fn: Callable[[], bytes]) -> bytes | type[BaseException]:
    try:
        return fn()
    except (ValueError, OverflowError) as exc:  # inf and NaN cannot be rounded: both refuse
        return type(exc)


@pytest.mark.parametrize("seed", range(4))
def test_tick_evidence_equals_one_pack_per_token(seed: int) -> None:
    rng = random.Random(seed)
    packed = refused = 0
    for _ in range(600):
        frames = [_frame(rng, i) for i in range(rng.randrange(0, 5))]
        ref = [_outcome(partial(_reference, 7_000_000_000, f)) for f in frames]
        want = next((r for r in ref if not isinstance(r, bytes)),
                    b"".join(r for r in ref if isinstance(r, bytes)))
        assert _outcome(partial(_tick, 7_000_000_000, frames)) == want
        packed += isinstance(want, bytes) and len(frames) > 0
        refused += not isinstance(want, bytes)
    assert packed > 100 and refused > 10  # both kinds of case were compared


def test_tick_evidence_rejects_what_the_reference_rejects() -> None:
    nan = struct.unpack("<d", struct.pack("<Q", 0x7FF8_0000_0000_0001))[0]
    f = _frame(random.Random(9), 0)._replace(liq_long_notional=nan)
    with pytest.raises(ValueError):
        _reference(1, f)
    with pytest.raises(ValueError):
        _tick(1, [f])


# --- features.extract_quiet: an empty tick that takes over last tick's values -----------------

_QP = FeatureParams.from_config(FeatureConfig(
    warmup_ticks=7, stale_book_ticks=5, stale_mark_ticks=9, stale_oi_ticks=13,
    health_hold_ticks=4, fast_window_ticks=3, slow_window_ticks=11))
_SYM = "BTCUSDT"


def _events(rng: random.Random, tick: int, price: float) -> list[ec.MarketEvent]:
    ts = tick * 250 - rng.randrange(1, 240)
    kind = rng.randrange(9)
    if kind == 0:
        return [ec.TradeReceived(symbol=_SYM, exchange_ts=ts, price=price, qty=1.5,
                                 buyer_is_maker=rng.random() < 0.5)]
    if kind == 1:
        return [ec.BookTickerReceived(symbol=_SYM, exchange_ts=ts, bid=price - 0.01,
                                      bid_qty=2.0, ask=price + 0.01, ask_qty=3.0)]
    if kind == 2:
        return [ec.MarkPriceReceived(symbol=_SYM, exchange_ts=ts, mark_price=price * 1.0002,
                                     index_price=price * 0.9999, funding_rate=0.0003)]
    if kind == 3:
        return [ec.OpenInterestReceived(symbol=_SYM, exchange_ts=ts,
                                        open_interest=rng.uniform(9e5, 1.1e6))]
    if kind == 4:
        return [ec.LiquidationReceived(symbol=_SYM, exchange_ts=ts, side=rng.choice(list(ec.Side)),
                                       price=price, qty=rng.uniform(0.1, 50.0))]
    if kind == 5:
        return [ec.DepthReceived(symbol=_SYM, exchange_ts=ts, edges_bps=(10, 50),
                                 bid_notional=(1e4, 5e4), ask_notional=(2e4, 4e4),
                                 mid=price if rng.random() < 0.7 else 0.0)]
    if kind == 6:
        return [ec.FundingInfoReceived(symbol=_SYM, exchange_ts=ts, interval_hours=4,
                                       cap=0.02, floor=-0.02)]
    return [ec.DataHealthReceived(symbol=_SYM, exchange_ts=ts,
                                  kind=rng.choice(list(ec.HealthKind)))]


def _bits(x: object) -> str:
    return repr(x)  # repr of a float round-trips exactly and tells -0.0 from 0.0


@pytest.mark.parametrize("seed", range(6))
def test_quiet_ticks_give_the_bits_of_a_full_extract(seed: int) -> None:
    """Random events, then stretches of empty ticks long enough to cross every deadline
    (staleness, health holds, warm-up); each tick is extracted with the carried values and
    without, and both states and frames must be identical, -0.0 and all."""
    rng = random.Random(seed)
    q = ec.CanonicalEngine([_SYM])
    st, w, quiet = FeatureState(session_tick=T0), EmaWeights(), None
    reused = 0
    price = 100.0
    for k in range(1500):
        tick = T0 + k
        if rng.random() < (0.5 if k < 30 else 0.08):
            for e in _events(rng, tick, price):
                assert q.ingest(e) is None, e
            price *= 1.0 + rng.uniform(-0.002, 0.002)
        b = q.flush(tick)[0]
        w = w.advance(_QP)
        ref_st, ref_f = features.extract(st, b, _QP, w)
        got_st, got_f, next_quiet = features.extract_quiet(st, b, _QP, w, quiet)
        assert _bits(got_st) == _bits(ref_st) and _bits(got_f) == _bits(ref_f), (seed, k)
        reused += next_quiet is not None and next_quiet is quiet
        st, quiet = got_st, next_quiet
    assert reused > 500  # the carried values were really taken over, not just recomputed


def test_quiet_values_are_not_taken_for_other_params_or_an_earlier_tick() -> None:
    st, w = FeatureState(session_tick=T0), EmaWeights().advance(_QP)
    q = ec.CanonicalEngine([_SYM])
    q.ingest(ec.BookTickerReceived(symbol=_SYM, exchange_ts=T0 * 250 - 5, bid=99.99,
                                   bid_qty=2.0, ask=100.01, ask_qty=3.0))
    st, _f, quiet = features.extract_quiet(st, q.flush(T0)[0], _QP, w, None)
    assert quiet is None  # a tick with events leaves nothing to take over
    st, f1, quiet = features.extract_quiet(st, q.flush(T0 + 1)[0], _QP, w, None)
    assert quiet is not None and quiet[1] == T0 + 1 and f1.quality & int(Quality.WARMUP)
    other = _QP._replace(warmup_ticks=0)
    _st, f2, q2 = features.extract_quiet(st, q.flush(T0 + 2)[0], other, w, quiet)
    assert q2 is not quiet and not f2.quality & int(Quality.WARMUP)
    _st, f0, q0 = features.extract_quiet(st, q.flush(T0)[0], _QP, w, quiet)
    assert q0 is not quiet and f0.quality == features.extract(st, q.flush(T0)[0], _QP, w)[1].quality


def test_liquidation_values_without_liquidations_are_the_formulas_at_zero() -> None:
    """extract skips the liquidation EMAs while all are exactly zero; each tick's values must
    still be the formulas' (re-derived here from the states), zeros and all. A one-tick
    window makes the EMAs fall back to exact zero right after each print."""
    p = FeatureParams.from_config(FeatureConfig(liq_window_ticks=1, warmup_ticks=2))
    rng = random.Random(5)
    q = ec.CanonicalEngine([_SYM])
    st, w = FeatureState(session_tick=T0), EmaWeights()
    zero_ticks = 0
    for k in range(600):
        tick = T0 + k
        liq_l = liq_s = 0.0
        evs = _events(rng, tick, 100.0) if rng.random() < 0.3 else []
        if k == 0:
            evs.append(ec.BookTickerReceived(symbol=_SYM, exchange_ts=tick * 250 - 1,
                                             bid=99.99, bid_qty=2.0, ask=100.01, ask_qty=3.0))
        for e in evs:
            assert q.ingest(e) is None
            if isinstance(e, ec.LiquidationReceived):
                if e.side is ec.Side.SELL:
                    liq_l += e.price * e.qty
                else:
                    liq_s += e.price * e.qty
        w = w.advance(p)
        new, f = features.extract(st, q.flush(tick)[0], p, w)
        ll = st.liq_long + p.a_liq * (liq_l - st.liq_long)
        ls = st.liq_short + p.a_liq * (liq_s - st.liq_short)
        ns_hat = new.notional_slow / w.slow
        total = ll + ls
        imb = max(-1.0, min(1.0, (ll - ls) / total)) if total > 0.0 else 0.0
        intensity = (total / w.liq) / ns_hat if ns_hat > 0.0 else (1.0 if total > 0.0 else 0.0)
        side = ll if f.move < 0.0 else (ls if f.move > 0.0 else (ll if ll > ls else ls))
        norm = new.liq_base / new.liq_base_w + p.liq_base_floor * ns_hat
        excess = (side / w.liq) / norm if norm > 0.0 else (1e9 if side > 0.0 else 0.0)
        assert _bits((new.liq_long, new.liq_short, f.liquidation_imbalance, f.liq_intensity,
                      f.liq_excess, f.liq_long_window, f.liq_short_window)) == _bits(
            (ll, ls, imb, intensity, excess, ll / p.a_liq, ls / p.a_liq)), k
        zero_ticks += st.liq_long == st.liq_short == liq_l == liq_s == 0.0
        st = new
    assert 100 < zero_ticks < 590  # both paths were compared


def test_step_reuses_quantized_levels_only_as_the_same_bytes() -> None:
    """`step` keeps each token's quantized price/OI/funding levels while their floats are
    equal; stepping with that memory and with it dropped every tick gives the same bytes."""
    rng = random.Random(11)
    cfg = ec.Config()
    q = ec.CanonicalEngine([_SYM])
    kept = dropped = ec.initial_state(cfg, [_SYM])
    reused = 0
    price = 100.0
    for k in range(800):
        tick = T0 + k
        if rng.random() < (0.6 if k < 20 else 0.15):
            for e in _events(rng, tick, price):
                assert q.ingest(e) is None, e
            price *= 1.0 + rng.uniform(-0.002, 0.002)
        batches = q.flush(tick)
        before = kept.levels
        kept, recs_a, alerts_a = ec.step(kept, batches, tick)
        dropped, recs_b, alerts_b = ec.step(attrs.evolve(dropped, levels=()), batches, tick)
        assert (recs_a.data, recs_a.evidence, alerts_a) == (recs_b.data, recs_b.evidence,
                                                            alerts_b), k
        reused += bool(before) and kept.levels[0] is before[0]
    assert 300 < reused < 800  # taken over on quiet ticks, recomputed when values moved


def test_integer_inputs_give_the_bytes_of_their_float_twins() -> None:
    """The normalizer accepts ints for a mark price, index, funding rate and open interest.
    `step` rounds with `float.__round__` (a float's `round`, without the builtin's lookup),
    which refuses an int: every value it rounds must be a float times a float scale. Integer
    inputs (funding 0 and 1, mark and OI as ints) must step, and give the bytes of the same
    session with floats."""
    def session(num: type) -> list[tuple[bytes, bytes]]:
        q = ec.CanonicalEngine([_SYM])
        st = ec.initial_state(ec.Config(), [_SYM])
        out = []
        for k in range(200):
            tick = T0 + k
            ts = tick * 250 - 100
            if k % 7 == 0:
                q.ingest(ec.BookTickerReceived(symbol=_SYM, exchange_ts=ts, bid=99.5,
                                               bid_qty=2.0, ask=100.5, ask_qty=3.0,
                                               update_id=k + 1))
            if k % 5 == 0:
                rate = num(k // 100)  # 0, then 1: the largest rate the normalizer accepts
                assert q.ingest(ec.MarkPriceReceived(
                    symbol=_SYM, exchange_ts=ts, mark_price=num(100 + k % 3),
                    index_price=num(101), funding_rate=rate)) is None
            if k % 11 == 0:
                assert q.ingest(ec.OpenInterestReceived(
                    symbol=_SYM, exchange_ts=ts, open_interest=num(5000 + k))) is None
            st, recs, _alerts = ec.step(st, q.flush(tick), tick)
            out.append((recs.data, recs.evidence))
        return out

    assert session(int) == session(float)


# --- step's rare re-encodings: the cluster moved, alert bits set ------------------------------


def _random_records(rng: random.Random, n: int) -> list[ec.Record]:
    from engine_core.record import FIELDS

    big = {"tick_id": 2**40, "event_id": 2**32 - 1, "state_age": 2**32 - 1,
           "oi_velocity": 2**31 - 1, "funding_rate": 2**31 - 1}
    signed = {"liq_imbalance", "oi_velocity", "funding_rate", "mark_vs_mid_bps"}
    recs = []
    for i in range(n):
        vals: dict[str, int] = {}
        for name in FIELDS:
            top = big.get(name, 255 if name in ("fsm", "tier", "cluster", "phase", "alerts")
                          else 2**15 - 1)
            vals[name] = rng.randrange(-top if name in signed else 0, top + 1)
        vals["token_id"] = i
        recs.append(ec.Record(**vals))
    return recs


@pytest.mark.parametrize("seed", range(3))
def test_restamp_and_alert_bits_equal_packing_the_changed_records(seed: int) -> None:
    from engine_core.alerts import MARKET_WIDE
    from engine_core.pipeline import _restamp, _with_alerts

    rng = random.Random(seed)
    flag = int(Quality.CLUSTER_DEGRADED)
    for _ in range(50):
        n = rng.randrange(1, 6)
        recs = _random_records(rng, n)
        data = b"".join(r.to_bytes() for r in recs)
        c, p, e, d = rng.randrange(5), rng.randrange(5), rng.randrange(2**32), rng.random() < .5
        want = b"".join(attrs.evolve(r, cluster=c, phase=p, event_id=e,
                                     quality=(r.quality & ~flag) | (flag if d else 0)).to_bytes()
                        for r in recs)
        assert _restamp(data, c, p, e, d) == want
        masks = {i: rng.randrange(1, 32) for i in range(n) if rng.random() < 0.4}
        if rng.random() < 0.3:
            masks[MARKET_WIDE] = rng.randrange(1, 32)
        market = masks.get(MARKET_WIDE, 0)
        want = b"".join(attrs.evolve(r, alerts=masks.get(i, market)).to_bytes()
                        if masks.get(i, market) else r.to_bytes() for i, r in enumerate(recs))
        assert _with_alerts(data, masks, n) == want
