"""Every row of the quality-flag table and the alert table, driven through the real code.

Expectations are written from docs/rules.md (section 3, the flag table; section 9, the alert
table), not read from the tables: each case builds one token's feed state (or one tick's
records) in which exactly one condition holds and checks the exact flags (or alerts and bits)
that come out. Changing any row's target fails one of these cases.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

import engine_core as ec
from engine_core import features, quality
from engine_core.alerts import MARKET_WIDE, AlertState, evaluate, initial_alert_state
from engine_core.canonical import CanonicalBatch, make_batch, new_canonical_event
from engine_core.config import FeatureConfig
from engine_core.events import HealthKind
from engine_core.features import EmaWeights, FeatureParams, FeatureState
from engine_core.fsm import TableError
from engine_core.states import AlertKind, ClusterState, Quality, StructuralState

FP = FeatureParams.from_config(FeatureConfig())
TICK = 10_000
W = EmaWeights(fast=0.5, slow=0.5, vol_fast=0.5, vol_slow=0.5, liq=0.5)
HEALTHY = FeatureState(session_tick=0, bid=100.0, ask=100.01, bid_qty=1.0, ask_qty=1.0,
                       book_tick=TICK - 1, mark=100.0, index_price=100.0, mark_tick=TICK - 1,
                       oi=1e6, oi_tick=TICK - 1, prev_mid=100.005, mid_slow=100.005)


def health(kind: HealthKind) -> CanonicalBatch:
    ev = ec.DataHealthReceived(symbol="X", exchange_ts=TICK * 250 - 10, kind=kind)
    return make_batch(0, TICK, [new_canonical_event(0, ec.SourceType.HEALTH, ev.exchange_ts, 0,
                                                    ev)])


def late_trade() -> CanonicalBatch:
    ts = TICK * 250 - FP.late_ms - 1
    ev = ec.TradeReceived(symbol="X", exchange_ts=ts, price=100.0, qty=1.0, buyer_is_maker=False)
    return make_batch(0, TICK, [new_canonical_event(0, ec.SourceType.TRADE, ts, 0, ev)])


EMPTY = CanonicalBatch(token_id=0, tick_id=TICK)
Q = Quality
# (feed state, batch, the one flag expected) — docs/rules.md section 3.
QUALITY_CASES: list[tuple[str, FeatureState, CanonicalBatch, Quality]] = [
    ("overload", HEALTHY, health(HealthKind.OVERLOAD), Q.OVERLOAD),
    ("catch-up", HEALTHY, health(HealthKind.CATCH_UP), Q.CATCH_UP),
    ("no book", HEALTHY._replace(book_tick=features._NEVER), EMPTY, Q.NO_BOOK),
    ("stale book", HEALTHY._replace(book_tick=TICK - FP.stale_book_ticks), EMPTY,
     Q.STALE_BOOK),
    ("stale mark", HEALTHY._replace(mark_tick=TICK - FP.stale_mark_ticks), EMPTY,
     Q.STALE_MARK),
    ("stale oi", HEALTHY._replace(oi_tick=TICK - FP.stale_oi_ticks), EMPTY, Q.STALE_OI),
    ("trade gap", HEALTHY._replace(trade_gap_tick=TICK - 1), EMPTY, Q.TRADE_GAP),
    ("liq gap", HEALTHY._replace(liq_gap_tick=TICK - 1), EMPTY, Q.LIQUIDATION_GAP),
    ("reconnect", HEALTHY._replace(reconnect_tick=TICK - 1), EMPTY, Q.RECONNECT),
    ("rest", HEALTHY._replace(rest_tick=TICK - 1), EMPTY, Q.REST_DEGRADED),
    ("silent", HEALTHY._replace(feed_stale=True), EMPTY, Q.FEED_STALE),
    ("late", HEALTHY, late_trade(), Q.LATE_DATA),
    ("saturated", HEALTHY._replace(liq_saturated_tick=TICK - 1), EMPTY,
     Q.LIQUIDATION_SATURATED),
    ("warm-up", HEALTHY._replace(session_tick=TICK - 1, mark_tick=TICK - 1), EMPTY,
     Q.WARMUP),
    ("halted", HEALTHY, health(HealthKind.SYMBOL_HALTED), Q.HALTED),
    ("delisted", HEALTHY, health(HealthKind.SYMBOL_DELISTED), Q.HALTED),
    ("halted, held", HEALTHY._replace(halted=True), EMPTY, Q.HALTED),
]


def test_a_healthy_feed_has_no_flag() -> None:
    _, frame = features.extract(HEALTHY, EMPTY, FP, W)
    assert frame.quality == 0


@pytest.mark.parametrize("name,state,batch,flag", QUALITY_CASES, ids=[c[0] for c in QUALITY_CASES])
def test_quality_row(name: str, state: FeatureState, batch: CanonicalBatch, flag: Quality
                     ) -> None:
    _, frame = features.extract(state, batch, FP, W)
    assert Q(frame.quality) == flag, f"{name}: got {Q(frame.quality)!r}, want {flag!r}"


def test_every_flag_of_a_token_has_a_case() -> None:
    pipeline_flags = Q.SESSION_START | Q.CLUSTER_DEGRADED
    covered = {c[3] for c in QUALITY_CASES}
    assert covered == {f for f in Q if not f & pipeline_flags}


def test_quality_table_errors() -> None:
    with pytest.raises(TableError, match="guard SYMBOL_HALTED has two rows"):
        quality.compile_quality(quality.TABLE + quality.TABLE[-1:])
    with pytest.raises(TableError, match="no row for guard"):
        quality.compile_quality(quality.TABLE[:-1])
    two = attrs.evolve(quality.TABLE[0], target=Q.OVERLOAD | Q.CATCH_UP)
    with pytest.raises(TableError, match="must raise one flag"):
        quality.compile_quality((two, *quality.TABLE[1:]))


SYMS = ("AAAUSDT", "BBBUSDT")
FS = StructuralState


def record(tick: int, token: int, fsm: int, cluster: int = 0, q: int = 0) -> ec.Record:
    base = dict.fromkeys(ec.FIELDS, 0)
    base.update(tick_id=tick, token_id=token, fsm=fsm, cluster=cluster, quality=q)
    return ec.Record(**base)


def after(prev: tuple[int, int], cur: tuple[int, int], cluster: tuple[int, int] = (0, 0)
          ) -> tuple[tuple[int, ...], tuple[ec.Alert, ...]]:
    """Evaluate tick 101 after tick 100 (bucket of 8, neither tick closes it)."""
    state = initial_alert_state(SYMS, 8)
    state, _, _ = evaluate(state, [record(100, i, s, cluster[0], int(Q.SESSION_START) if i == 0
                                          else 0) for i, s in enumerate(prev)])
    _, masks, alerts = evaluate(state, [record(101, i, s, cluster[1]) for i, s in enumerate(cur)])
    return masks, alerts


def bit(kind: AlertKind) -> int:
    return ec.alert_bit(kind)


def systemic() -> tuple[tuple[int, ...], tuple[ec.Alert, ...]]:
    return after((FS.BUILD, FS.BUILD), (FS.BUILD, FS.BUILD),
                 (ClusterState.CLUSTER_CALM, ClusterState.CLUSTER_FRAGILE))


def stable() -> tuple[tuple[int, ...], tuple[ec.Alert, ...]]:
    state: AlertState = initial_alert_state(SYMS, 4)
    masks: tuple[int, ...] = ()
    alerts: tuple[ec.Alert, ...] = ()
    for t in range(96, 100):  # the whole bucket 24 (ticks 96..99), FRAGILE throughout
        q = int(Q.SESSION_START) if t == 96 else 0
        state, masks, alerts = evaluate(state, [record(t, 0, FS.FRAGILE, q=q),
                                                record(t, 1, FS.BUILD)])
    return masks, alerts


# (case, the tick's (masks, alerts), expected per-token masks, expected (kind, token) alerts)
ALERT_CASES: list[tuple[str, Callable[[], tuple[tuple[int, ...], tuple[ec.Alert, ...]]],
                        tuple[int, int], list[tuple[AlertKind, int]]]] = [
    ("systemic", systemic, (bit(AlertKind.SYSTEMIC_ALERT),) * 2,
     [(AlertKind.SYSTEMIC_ALERT, MARKET_WIDE)]),
    ("fragile", lambda: after((FS.PRESSURE, FS.BUILD), (FS.FRAGILE, FS.BUILD)),
     (bit(AlertKind.STRUCTURAL_FRAGILE), 0), [(AlertKind.STRUCTURAL_FRAGILE, 0)]),
    ("trigger", lambda: after((FS.BUILD, FS.FRAGILE), (FS.BUILD, FS.TRIGGER_READY)),
     (0, bit(AlertKind.STRUCTURAL_TRIGGER_READY)), [(AlertKind.STRUCTURAL_TRIGGER_READY, 1)]),
    ("unwind", lambda: after((FS.FRAGILE, FS.BUILD), (FS.UNWIND, FS.BUILD)),
     (bit(AlertKind.STRUCTURAL_UNWIND), 0), [(AlertKind.STRUCTURAL_UNWIND, 0)]),
    ("stable", stable, (bit(AlertKind.STABLE_15M_ALERT), 0), [(AlertKind.STABLE_15M_ALERT, 0)]),
    ("decay to fragile is not news", lambda: after((FS.TRIGGER_READY, FS.BUILD),
                                                   (FS.FRAGILE, FS.BUILD)), (0, 0), []),
]


@pytest.mark.parametrize("name,run,masks,kinds", ALERT_CASES, ids=[c[0] for c in ALERT_CASES])
def test_alert_row(name: str, run: Callable[[], tuple[tuple[int, ...], tuple[ec.Alert, ...]]],
                   masks: tuple[int, int], kinds: list[tuple[AlertKind, int]]) -> None:
    got_masks, alerts = run()
    assert got_masks == masks, name
    assert [(a.kind, a.token_id) for a in alerts] == kinds, name
    for a in alerts:
        assert a.message and (a.symbol == "*") == (a.token_id == MARKET_WIDE)


def test_trading_again_clears_the_halt() -> None:
    _, frame = features.extract(HEALTHY._replace(halted=True), health(HealthKind.SYMBOL_TRADING),
                                FP, W)
    assert frame.quality == 0
