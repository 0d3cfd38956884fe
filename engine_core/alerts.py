"""The alert engine: what a trader must be told, computed from records alone (design note step 10).

Its only input is the tick's decoded records (the integers stored on disk) plus its own state,
which is itself rebuilt from earlier records. So live mode and `verify` (log -> alerts) run the
same function on the same integers and must agree bit for bit (SPEC section 4). It never looks
at a clock: the 15-minute window is `bucket = tick_id // ticks_per_bucket`.

Rules (each mirrored in docs/rules.md; `TABLE` below is the one place they are decided):
  STRUCTURAL_FRAGILE        a symbol enters FRAGILE from BUILD or PRESSURE (an escalation; a
                            TRIGGER_READY symbol decaying back to FRAGILE is not news), once
                            per build-up episode
  STRUCTURAL_TRIGGER_READY  a symbol enters TRIGGER_READY, once per build-up episode
A build-up episode runs from leaving BUILD until the symbol is back in BUILD or has unwound
(UNWIND, COOLDOWN): a symbol wavering PRESSURE <-> FRAGILE <-> TRIGGER_READY is one story,
told once per level; the live view shows where it stands now.
  STRUCTURAL_UNWIND         a symbol enters UNWIND
  SYSTEMIC_ALERT            the cluster enters CLUSTER_FRAGILE or CLUSTER_UNWIND; one market-wide
                            alert, and the bit is set in every record of that tick
  STABLE_15M_ALERT          at the last tick of a bucket, a symbol that was FRAGILE or
                            TRIGGER_READY on every tick of the whole bucket (a condition that
                            held for 15 minutes, not a flicker)
A record flagged SESSION_START resets the engine's memory: a restart is not a transition.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from engine_core.fsm import TableError
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
_BUILD = int(StructuralState.BUILD)
#: States that end a build-up episode (the early alerts are armed again).
_EPISODE_ENDS = (_BUILD, _UNWIND, int(StructuralState.COOLDOWN))
_TOLD_FRAGILE = 1
_TOLD_TRIGGER = 2

BIT_SYSTEMIC = alert_bit(AlertKind.SYSTEMIC_ALERT)


class AlertGuard(enum.IntEnum):
    """The conditions the alert table is written in (computed by `evaluate` from records)."""

    #: Market-wide: the cluster changed into CLUSTER_FRAGILE or CLUSTER_UNWIND this tick.
    CLUSTER_ESCALATED = 0
    #: The symbol's state changed to FRAGILE from BUILD or PRESSURE (not a decay from above),
    #: for the first time in its build-up episode.
    ENTERED_FRAGILE = 1
    #: The symbol's state changed to TRIGGER_READY, for the first time in its episode.
    ENTERED_TRIGGER_READY = 2
    #: The symbol's state changed to UNWIND.
    ENTERED_UNWIND = 3
    #: Last tick of a bucket, and the symbol was FRAGILE or TRIGGER_READY on all its ticks.
    STABLE_THROUGH_BUCKET = 4


#: Guards about the whole market: their alert is raised once (token_id -1) and its bit is set
#: in every record of the tick.
MARKET_GUARDS = frozenset({AlertGuard.CLUSTER_ESCALATED})


@attrs.frozen(kw_only=True, slots=True)
class AlertRule:
    """When `when` holds, raise an alert of kind `target` and set its bit in the record."""

    when: AlertGuard
    target: AlertKind


A = AlertGuard
K = AlertKind

#: Source: design note step 10 (transitions that matter + the 15-minute persistence alert);
#: docs/rules.md section 9. Row order is the order of a token's alerts within a tick.
TABLE: tuple[AlertRule, ...] = (
    AlertRule(when=A.CLUSTER_ESCALATED, target=K.SYSTEMIC_ALERT),
    # "a TRIGGER_READY symbol decaying back to FRAGILE is not news"
    AlertRule(when=A.ENTERED_FRAGILE, target=K.STRUCTURAL_FRAGILE),
    AlertRule(when=A.ENTERED_TRIGGER_READY, target=K.STRUCTURAL_TRIGGER_READY),
    AlertRule(when=A.ENTERED_UNWIND, target=K.STRUCTURAL_UNWIND),
    AlertRule(when=A.STABLE_THROUGH_BUCKET, target=K.STABLE_15M_ALERT),
)


def compile_alerts(rules: Sequence[AlertRule]
                   ) -> tuple[tuple[tuple[int, AlertKind], ...], tuple[tuple[int, AlertKind], ...]]:
    """(market rows, token rows) as (guard, kind), each guard exactly once, NO_ALERT never."""
    seen: set[AlertGuard] = set()
    market: list[tuple[int, AlertKind]] = []
    token: list[tuple[int, AlertKind]] = []
    for r in rules:
        if not isinstance(r.when, AlertGuard) or not isinstance(r.target, AlertKind):
            raise TableError(f"alerts: rule {r!r} is not an (AlertGuard, AlertKind) row")
        if r.when in seen:
            raise TableError(f"alerts: guard {r.when.name} has two rows")
        if r.target is AlertKind.NO_ALERT:
            raise TableError(f"alerts: rule {r.when.name} raises NO_ALERT")
        seen.add(r.when)
        (market if r.when in MARKET_GUARDS else token).append((int(r.when), r.target))
    missing = [g.name for g in AlertGuard if g not in seen]
    if missing:
        raise TableError(f"alerts: no row for guard(s) {', '.join(missing)}")
    return tuple(market), tuple(token)


_MARKET_ROWS, _TOKEN_ROWS = compile_alerts(TABLE)

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
    #: Per token: the early alerts already raised in its build-up episode (bits 1 = FRAGILE,
    #: 2 = TRIGGER_READY); cleared when the episode ends.
    told: tuple[int, ...] = ()


def initial_alert_state(symbols: Sequence[str], ticks_per_bucket: int) -> AlertState:
    return AlertState(symbols=tuple(symbols), ticks_per_bucket=ticks_per_bucket,
                      stable_ticks=(0,) * len(symbols), told=(0,) * len(symbols))


def bucket_name(ticks_per_bucket: int) -> str:
    """"15-minute" for the default 3600 ticks; the demo's compressed buckets say so too."""
    ms = ticks_per_bucket * 250
    if ms % 60_000 == 0:
        return f"{ms // 60_000}-minute"
    return f"{ms / 1000:g}-second"


def _token_alert(kind: AlertKind, r: Record, symbol: str, bucket: str) -> Alert:
    cost = r.trigger_cost / 100
    match kind:
        case AlertKind.STRUCTURAL_FRAGILE:
            text = (f"{symbol} turned FRAGILE: new leveraged positions that pay to stay on "
                    f"(trigger cost {cost:.2f})")
        case AlertKind.STRUCTURAL_TRIGGER_READY:
            text = (f"{symbol} is TRIGGER_READY: the trigger is being pulled "
                    f"(trigger cost {cost:.2f})")
        case AlertKind.STRUCTURAL_UNWIND:
            text = f"{symbol} is UNWINDING: liquidations and open interest leaving"
        case AlertKind.STABLE_15M_ALERT:
            text = f"{symbol} stayed FRAGILE or TRIGGER_READY through the whole {bucket} bucket"
        case _:
            raise ValueError(f"alert kind {kind.name} is not about one symbol "
                             f"(token {r.token_id}, tick {r.tick_id})")
    return Alert(tick_id=r.tick_id, kind=kind, token_id=r.token_id, symbol=symbol,
                 fsm=StructuralState(r.fsm), tier=Tier(r.tier), cluster=ClusterState(r.cluster),
                 phase=EventPhase(r.phase), event_id=r.event_id, trigger_cost=cost, message=text)


def _market_alert(kind: AlertKind, first: Record, fsms: tuple[int, ...]) -> Alert:
    """A market-wide alert from the tick's first record and every token's state."""
    cs = ClusterState(first.cluster)
    match kind:
        case AlertKind.SYSTEMIC_ALERT:
            n_unwind = fsms.count(_UNWIND)
            n_fragile = fsms.count(_FRAGILE) + fsms.count(_TRIGGER_READY)
            what = "is UNWINDING" if cs is ClusterState.CLUSTER_UNWIND else "turned FRAGILE"
            text = (f"Market-wide: the cluster {what} ({n_unwind} of {len(fsms)} symbols "
                    f"unwinding, {n_fragile} fragile or trigger-ready; event {first.event_id})")
        case _:
            raise ValueError(f"alert kind {kind.name} is not market-wide (tick {first.tick_id})")
    return Alert(tick_id=first.tick_id, kind=kind, token_id=MARKET_WIDE, symbol="*", fsm=None,
                 tier=None, cluster=cs, phase=EventPhase(first.phase), event_id=first.event_id,
                 trigger_cost=None, message=text)


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
    new_state, masks, alerts = evaluate_states(
        state, first.tick_id, bool(first.quality & _SESSION_START), first.cluster,
        tuple(r.fsm for r in records), records)
    market = masks.get(MARKET_WIDE, 0)
    return new_state, tuple(masks.get(i, market) for i in range(n)), alerts


def evaluate_states(state: AlertState, tick: int, session_start: bool, cluster: int,
                    fsms: tuple[int, ...], records: Sequence[Record]
                    ) -> tuple[AlertState, dict[int, int], tuple[Alert, ...]]:
    """`evaluate` for the pipeline: the tick's facts given directly, masks only where set.

    `fsms` is each record's structural state; `records` is read only for the tokens that
    raise an alert (their text) and for a market-wide one. The masks are a dict: token id ->
    its mask, and MARKET_WIDE -> the mask of every token not listed (0 when absent).
    """
    n = len(fsms)
    symbols = state.symbols
    prev_fsm = state.prev_fsm
    prev_cluster = state.prev_cluster
    stable = state.stable_ticks
    told = state.told if len(state.told) == n else (0,) * n
    if session_start:
        prev_fsm = None
        prev_cluster = int(ClusterState.CLUSTER_CALM)
        bucket_no, in_bucket, stable, told = -1, 0, (0,) * n, (0,) * n
    else:
        bucket_no, in_bucket = state.bucket, state.ticks_in_bucket
    tpb = state.ticks_per_bucket
    b = tick // tpb
    if b != bucket_no:
        bucket_no, in_bucket, stable = b, 0, (0,) * n
    in_bucket += 1
    bucket_closes = tick % tpb == tpb - 1 and in_bucket == tpb

    market_guards = (cluster != prev_cluster and cluster in _SYSTEMIC_CLUSTERS,)  # by AlertGuard
    alerts: list[Alert] = []
    market_mask = 0
    for guard, kind in _MARKET_ROWS:
        if market_guards[guard]:
            market_mask |= alert_bit(kind)
            alerts.append(_market_alert(kind, records[0], fsms))
    masks: dict[int, int] = {MARKET_WIDE: market_mask} if market_mask else {}
    held = _STABLE
    new_stable = tuple([s + 1 if f in held else s for s, f in zip(stable, fsms, strict=True)])
    # every token guard needs a state change or a bucket close: only those tokens are read
    if prev_fsm is None:
        prev_fsm = (_BUILD,) * n
    if bucket_closes:
        moved: Sequence[int] = range(n)
    elif fsms == prev_fsm:
        moved = ()
    else:
        moved = [i for i, (c, p) in enumerate(zip(fsms, prev_fsm, strict=True)) if c != p]
    if moved:
        new_told = list(told)
        bucket = bucket_name(tpb)
        for i in moved:
            cur, prev, t = fsms[i], prev_fsm[i], told[i]
            changed = cur != prev
            g = (
                False,  # CLUSTER_ESCALATED (market-wide, above)
                changed and cur == _FRAGILE and prev in _ESCALATES_TO_FRAGILE
                and not t & _TOLD_FRAGILE,  # ENTERED_FRAGILE
                # ENTERED_TRIGGER_READY
                changed and cur == _TRIGGER_READY and not t & _TOLD_TRIGGER,
                changed and cur == _UNWIND,  # ENTERED_UNWIND
                bucket_closes and new_stable[i] == tpb,  # STABLE_THROUGH_BUCKET
            )
            mask = market_mask
            for guard, kind in _TOKEN_ROWS:
                if g[guard]:
                    mask |= alert_bit(kind)
                    alerts.append(_token_alert(kind, records[i], symbols[i], bucket))
            if mask != market_mask:
                masks[i] = mask
            if cur in _EPISODE_ENDS:
                t = 0
            elif g[AlertGuard.ENTERED_FRAGILE]:
                t |= _TOLD_FRAGILE
            elif g[AlertGuard.ENTERED_TRIGGER_READY]:
                t |= _TOLD_TRIGGER
            new_told[i] = t
        told = tuple(new_told)

    new_state = AlertState(
        symbols=symbols, ticks_per_bucket=tpb, prev_fsm=fsms, prev_cluster=cluster,
        bucket=bucket_no, ticks_in_bucket=in_bucket, stable_ticks=new_stable, told=told)
    return new_state, masks, tuple(alerts)
