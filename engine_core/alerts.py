"""The alert engine: what a trader must be told, computed from records alone (design note step 10).

Its only input is the tick's decoded records (the integers stored on disk) plus its own state,
which is itself rebuilt from earlier records. So live mode and `verify` (log -> alerts) run the
same function on the same integers and must agree bit for bit (SPEC section 4). It never looks
at a clock: the 15-minute window is `bucket = tick_id // ticks_per_bucket`.

Rules (each mirrored in docs/rules.md):
  STRUCTURAL_FRAGILE        a symbol enters FRAGILE from BUILD or PRESSURE (an escalation; a
                            TRIGGER_READY symbol decaying back to FRAGILE is not news)
  STRUCTURAL_TRIGGER_READY  a symbol enters TRIGGER_READY
  STRUCTURAL_UNWIND         a symbol enters UNWIND
  SYSTEMIC_ALERT            the cluster enters CLUSTER_FRAGILE or CLUSTER_UNWIND; one market-wide
                            alert, and the bit is set in every record of that tick
  STABLE_15M_ALERT          at the last tick of a bucket, a symbol that was FRAGILE or
                            TRIGGER_READY on every tick of the whole bucket (a condition that
                            held for 15 minutes, not a flicker)
A record flagged SESSION_START resets the engine's memory: a restart is not a transition.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from engine_core.record import Record
from engine_core.states import (
    AlertKind,
    ClusterState,
    EventPhase,
    Quality,
    StructuralState,
    Tier,
    alert_bit,
)

_FRAGILE = int(StructuralState.FRAGILE)
_TRIGGER_READY = int(StructuralState.TRIGGER_READY)
_UNWIND = int(StructuralState.UNWIND)
_ESCALATES_TO_FRAGILE = (int(StructuralState.BUILD), int(StructuralState.PRESSURE))
_STABLE = (_FRAGILE, _TRIGGER_READY)
_SYSTEMIC_CLUSTERS = (int(ClusterState.CLUSTER_FRAGILE), int(ClusterState.CLUSTER_UNWIND))
_SESSION_START = int(Quality.SESSION_START)

BIT_FRAGILE = alert_bit(AlertKind.STRUCTURAL_FRAGILE)
BIT_TRIGGER_READY = alert_bit(AlertKind.STRUCTURAL_TRIGGER_READY)
BIT_UNWIND = alert_bit(AlertKind.STRUCTURAL_UNWIND)
BIT_SYSTEMIC = alert_bit(AlertKind.SYSTEMIC_ALERT)
BIT_STABLE = alert_bit(AlertKind.STABLE_15M_ALERT)

#: token_id of a market-wide alert.
MARKET_WIDE = -1


@attrs.frozen(kw_only=True, slots=True)
class Alert:
    """One alert. Market-wide alerts have token_id -1, symbol "*" and no fsm/tier."""

    tick_id: int
    kind: AlertKind
    token_id: int
    symbol: str
    fsm: StructuralState | None
    tier: Tier | None
    cluster: ClusterState
    phase: EventPhase
    event_id: int
    trigger_cost: float | None
    message: str


@attrs.frozen(kw_only=True, slots=True)
class AlertState:
    """What the alert engine remembers between ticks (all derivable from earlier records)."""

    symbols: tuple[str, ...]
    ticks_per_bucket: int
    #: Structural state of each token at the previous tick; None right after a session start.
    prev_fsm: tuple[int, ...] | None = None
    prev_cluster: int = int(ClusterState.CLUSTER_CALM)
    bucket: int = -1
    ticks_in_bucket: int = 0
    #: Per token: ticks of the current bucket spent FRAGILE or TRIGGER_READY.
    stable_ticks: tuple[int, ...] = ()


def initial_alert_state(symbols: Sequence[str], ticks_per_bucket: int) -> AlertState:
    return AlertState(symbols=tuple(symbols), ticks_per_bucket=ticks_per_bucket,
                      stable_ticks=(0,) * len(symbols))


def bucket_name(ticks_per_bucket: int) -> str:
    """"15-minute" for the default 3600 ticks; the demo's compressed buckets say so too."""
    ms = ticks_per_bucket * 250
    if ms % 60_000 == 0:
        return f"{ms // 60_000}-minute"
    return f"{ms / 1000:g}-second"


def _token_alert(kind: AlertKind, r: Record, symbol: str, bucket: str = "15-minute") -> Alert:
    fsm = StructuralState(r.fsm)
    cost = r.trigger_cost / 100
    text = {
        AlertKind.STRUCTURAL_FRAGILE: f"{symbol} turned FRAGILE: leverage build-up meets a cheap "
                                      f"trigger (trigger cost {cost:.2f})",
        AlertKind.STRUCTURAL_TRIGGER_READY: f"{symbol} is TRIGGER_READY: the trigger is being "
                                            f"pulled (trigger cost {cost:.2f})",
        AlertKind.STRUCTURAL_UNWIND: f"{symbol} is UNWINDING: liquidations and open interest "
                                     f"leaving",
        AlertKind.STABLE_15M_ALERT: f"{symbol} stayed FRAGILE or TRIGGER_READY through the "
                                    f"whole {bucket} bucket",
    }[kind]
    return Alert(tick_id=r.tick_id, kind=kind, token_id=r.token_id, symbol=symbol, fsm=fsm,
                 tier=Tier(r.tier), cluster=ClusterState(r.cluster), phase=EventPhase(r.phase),
                 event_id=r.event_id, trigger_cost=cost, message=text)


def evaluate(state: AlertState, records: Sequence[Record]
             ) -> tuple[AlertState, tuple[int, ...], tuple[Alert, ...]]:
    """Alerts of one tick from that tick's records (one per token, in token order).

    Returns the new state, the alert bit mask for each record, and the alerts in a fixed
    order: market-wide first, then by token id, then by kind. The records' own `alerts`
    field is ignored (it is this function's output).
    """
    n = len(state.symbols)
    if len(records) != n:
        raise ValueError(f"expected {n} records (one per token), got {len(records)}")
    if n == 0:
        return state, (), ()
    first = records[0]
    tick = first.tick_id
    symbols = state.symbols
    prev_fsm = state.prev_fsm
    prev_cluster = state.prev_cluster
    stable = state.stable_ticks
    if first.quality & _SESSION_START:
        prev_fsm = None
        prev_cluster = int(ClusterState.CLUSTER_CALM)
        bucket, in_bucket, stable = -1, 0, (0,) * n
    else:
        bucket, in_bucket = state.bucket, state.ticks_in_bucket
    tpb = state.ticks_per_bucket
    b = tick // tpb
    if b != bucket:
        bucket, in_bucket, stable = b, 0, (0,) * n
    in_bucket += 1
    bucket_closes = tick % tpb == tpb - 1 and in_bucket == tpb

    cluster = first.cluster
    systemic = cluster != prev_cluster and cluster in _SYSTEMIC_CLUSTERS
    masks: list[int] = []
    token_alerts: list[Alert] = []
    new_stable: list[int] = []
    for i, r in enumerate(records):
        cur = r.fsm
        mask = BIT_SYSTEMIC if systemic else 0
        prev = prev_fsm[i] if prev_fsm is not None else int(StructuralState.BUILD)
        if cur != prev:
            if cur == _FRAGILE and prev in _ESCALATES_TO_FRAGILE:
                mask |= BIT_FRAGILE
                token_alerts.append(_token_alert(AlertKind.STRUCTURAL_FRAGILE, r, symbols[i]))
            elif cur == _TRIGGER_READY:
                mask |= BIT_TRIGGER_READY
                token_alerts.append(_token_alert(AlertKind.STRUCTURAL_TRIGGER_READY, r, symbols[i]))
            elif cur == _UNWIND:
                mask |= BIT_UNWIND
                token_alerts.append(_token_alert(AlertKind.STRUCTURAL_UNWIND, r, symbols[i]))
        s = stable[i] + 1 if cur in _STABLE else stable[i]
        new_stable.append(s)
        if bucket_closes and s == tpb:
            mask |= BIT_STABLE
            token_alerts.append(_token_alert(AlertKind.STABLE_15M_ALERT, r, symbols[i],
                                             bucket_name(tpb)))
        masks.append(mask)

    alerts: list[Alert] = []
    if systemic:
        fsms = [r.fsm for r in records]
        n_unwind = fsms.count(_UNWIND)
        n_fragile = fsms.count(_FRAGILE) + fsms.count(_TRIGGER_READY)
        cs = ClusterState(cluster)
        what = "is UNWINDING" if cs is ClusterState.CLUSTER_UNWIND else "turned FRAGILE"
        alerts.append(Alert(
            tick_id=tick, kind=AlertKind.SYSTEMIC_ALERT, token_id=MARKET_WIDE, symbol="*",
            fsm=None, tier=None, cluster=cs, phase=EventPhase(first.phase), event_id=first.event_id,
            trigger_cost=None,
            message=f"Market-wide: the cluster {what} ({n_unwind} of {n} symbols unwinding, "
                    f"{n_fragile} fragile or trigger-ready; event {first.event_id})"))
    alerts.extend(token_alerts)
    new_state = AlertState(
        symbols=symbols, ticks_per_bucket=tpb, prev_fsm=tuple(r.fsm for r in records),
        prev_cluster=cluster, bucket=bucket, ticks_in_bucket=in_bucket,
        stable_ticks=tuple(new_stable))
    return new_state, tuple(masks), tuple(alerts)
