"""Every state, phase, alert kind and data-quality flag of the engine, with its meaning.

These numbers are written into the 64-byte records, so they are part of the log format:
never renumber a member; add new ones at the end and bump `FORMAT_VERSION` in `record.py`.
The transition rules live next to each machine (`tier.py`, `structural.py`, `cluster.py`,
`phase.py`, `alerts.py`); `docs/rules.md` explains them in a trader's words.
"""

from __future__ import annotations

import enum


class Tier(enum.IntEnum):
    """Leverage regime of one symbol (design note step 5)."""

    #: Positioning and funding are near their norms.
    TIER_NEUTRAL = 0
    #: Open interest is growing with above-normal activity: leverage is being added.
    TIER_EXPANSION = 1
    #: Open interest is well above its norm and funding or premium is stretched: crowded.
    TIER_OVERLEVERAGED = 2
    #: Open interest is falling fast, with liquidations or a volume burst: leverage leaving.
    TIER_EXHAUSTED = 3


class StructuralState(enum.IntEnum):
    """Per-symbol structural state machine (design note step 7)."""

    #: Normal: no build-up worth watching.
    BUILD = 0
    #: Leverage is building (open interest, funding, activity above norm).
    PRESSURE = 1
    #: The build-up meets a cheap trigger: thin book, compressed volatility, divergence.
    FRAGILE = 2
    #: Fragile and the trigger is being pulled: flow against the crowd, first liquidations.
    TRIGGER_READY = 3
    #: Liquidations and falling open interest: the build-up is unwinding now.
    UNWIND = 4
    #: The unwind has faded; waiting a fixed time before watching for a new build-up.
    COOLDOWN = 5


class ClusterState(enum.IntEnum):
    """Market-wide state over all symbols, updated once per second (design note step 8)."""

    #: Few symbols under pressure.
    CLUSTER_CALM = 0
    #: A meaningful share of symbols is under pressure.
    CLUSTER_HEATING = 1
    #: Several symbols are fragile or trigger-ready at once.
    CLUSTER_FRAGILE = 2
    #: Several symbols are unwinding at once: a market-wide cascade.
    CLUSTER_UNWIND = 3
    #: The cascade has faded; waiting before calling the market calm.
    CLUSTER_COOLDOWN = 4


class EventPhase(enum.IntEnum):
    """Phase of the current market event; only ever moves forward (design note step 9)."""

    #: Before an event: watching for the market to turn fragile.
    PREP = 0
    #: The market turned fragile or started unwinding: an event has begun.
    START = 1
    #: The market-wide unwind has persisted: the event is in full swing.
    MID = 2
    #: The unwind is over.
    END = 3
    #: Aftermath; after a hold time a new event epoch starts at PREP with event id + 1.
    POST = 4


class AlertKind(enum.IntEnum):
    """What a trader must know (design note step 10). Stored as bit (1 << (kind - 1))."""

    #: Nothing to report.
    NO_ALERT = 0
    #: A symbol entered FRAGILE from a calmer state.
    STRUCTURAL_FRAGILE = 1
    #: A symbol entered TRIGGER_READY.
    STRUCTURAL_TRIGGER_READY = 2
    #: A symbol entered UNWIND.
    STRUCTURAL_UNWIND = 3
    #: The whole market turned fragile or started unwinding (cluster level).
    SYSTEMIC_ALERT = 4
    #: A symbol stayed FRAGILE or TRIGGER_READY through a whole 15-minute bucket.
    STABLE_15M_ALERT = 5


def alert_bit(kind: AlertKind) -> int:
    """The bit of `kind` in a record's alert mask (NO_ALERT has none)."""
    return 0 if kind is AlertKind.NO_ALERT else 1 << (int(kind) - 1)


class Quality(enum.IntFlag):
    """Data-quality flags of one symbol at one tick (record field `quality`)."""

    #: No book update for longer than `features.stale_book_ticks`.
    STALE_BOOK = 1 << 0
    #: No mark price for longer than `features.stale_mark_ticks`.
    STALE_MARK = 1 << 1
    #: No open interest for longer than `features.stale_oi_ticks`.
    STALE_OI = 1 << 2
    #: Trades went missing and could not be fetched back (recently; sticky for a while).
    TRADE_GAP = 1 << 3
    #: The liquidation stream was interrupted (recently): liquidation features undercount.
    LIQUIDATION_GAP = 1 << 4
    #: The connection was re-established (recently).
    RECONNECT = 1 << 5
    #: A stream for this symbol is silent (connected but no data) until it resumes.
    FEED_STALE = 1 << 6
    #: The shell fell behind at this tick (queue full or late tick).
    OVERLOAD = 1 << 7
    #: This tick was stepped late, while the shell caught up on skipped ticks.
    CATCH_UP = 1 << 8
    #: Some events of this tick were older than `features.late_event_ms` at the tick's end.
    LATE_DATA = 1 << 9
    #: Liquidations arrived in consecutive seconds: the stream's one-per-second cap is binding,
    #: so liquidation figures are only lower bounds.
    LIQUIDATION_SATURATED = 1 << 10
    #: The rolling baselines are still warming up.
    WARMUP = 1 << 11
    #: No book has been seen yet for this symbol.
    NO_BOOK = 1 << 12
    #: First tick of a session (engine start or restart): alert state starts afresh here.
    SESSION_START = 1 << 13
    #: Too few symbols have live data: the cluster cannot tell calm from a dead feed.
    CLUSTER_DEGRADED = 1 << 14
    #: REST polling (open interest, funding) is failing or rate-limited (recently).
    REST_DEGRADED = 1 << 15
    #: The exchange halted or delisted the symbol (SYMBOL_HALTED / SYMBOL_DELISTED): a quiet
    #: feed is not a liquidity collapse. Not live for the cluster, cannot escalate. Bit 16 does
    #: not fit the token record's u16 `quality`: the evidence record's HALTED flag stores it.
    HALTED = 1 << 16


#: A symbol with any of these cannot enter TRIGGER_READY: the signal might be missing data.
UNHEALTHY = (
    Quality.STALE_BOOK | Quality.STALE_MARK | Quality.STALE_OI | Quality.TRADE_GAP
    | Quality.FEED_STALE | Quality.NO_BOOK | Quality.WARMUP
)
#: A symbol with any of these does not count as live for the cluster, and cannot escalate
#: into PRESSURE or FRAGILE (a frozen book looks like a cheap trigger).
NOT_LIVE = Quality.STALE_BOOK | Quality.FEED_STALE | Quality.NO_BOOK | Quality.HALTED
#: The bits of `Quality` the 64-byte token record stores (u16).
RECORD_QUALITY_MASK = 0xFFFF
