"""The data-quality table: which condition of a token's feed raises which `Quality` flag.

Every flag of a record's `quality` field is one row here, read the same way as the state
machines' tables: "when `when` holds at this tick, raise `target`". The conditions are
computed by the feature extractor (`features.extract`), which knows the feed's last-seen ticks;
this module only says which condition means which flag (`FLAG_OF`, read by the extractor
once at import). Session- and cluster-level flags
(SESSION_START, CLUSTER_DEGRADED) are added by the pipeline, not here.

Source: docs/rules.md section 3 (the flag table: raised when, held, what it blocks).
"""

from __future__ import annotations

import enum

import attrs

from engine_core.fsm import TableError
from engine_core.states import Quality


class QualityGuard(enum.IntEnum):
    """The feed conditions the quality table is written in (computed by `features.extract`)."""

    #: The shell reported OVERLOAD (queue full or late tick) in this tick's batch.
    OVERLOAD_REPORTED = 0
    #: The shell reported CATCH_UP (this tick is stepped late) in this tick's batch.
    CATCH_UP_REPORTED = 1
    #: No book has been seen yet this session.
    NO_BOOK_YET = 2
    #: A book was seen, but not for `stale_book_ticks` ticks.
    BOOK_STALE = 3
    #: No mark price for `stale_mark_ticks` ticks (counted from the session start).
    MARK_STALE = 4
    #: No open interest for `stale_oi_ticks` ticks (counted from the session start).
    OI_STALE = 5
    #: A trade gap was reported less than `health_hold_ticks` ago.
    TRADE_GAP_RECENT = 6
    #: A liquidation-stream gap was reported less than `health_hold_ticks` ago.
    LIQUIDATION_GAP_RECENT = 7
    #: A reconnect was reported less than `health_hold_ticks` ago.
    RECONNECT_RECENT = 8
    #: REST polling was reported failing less than `health_hold_ticks` ago.
    REST_DEGRADED_RECENT = 9
    #: A stream of this symbol was reported silent and has not resumed.
    FEED_SILENT = 10
    #: An event of this tick is older than `late_event_ms` at the tick's end.
    EVENTS_LATE = 11
    #: Liquidations arrived in consecutive seconds less than `health_hold_ticks` ago.
    LIQUIDATION_CAP_BINDING = 12
    #: Fewer than `warmup_ticks` ticks since the session start.
    WARMING_UP = 13
    #: The exchange halted (or delisted) the symbol and it has not traded again since.
    SYMBOL_HALTED = 14


@attrs.frozen(kw_only=True, slots=True)
class QualityRule:
    """When `when` holds at a tick, the token's record carries flag `target`."""

    when: QualityGuard
    target: Quality


G = QualityGuard
Q = Quality

#: One row per flag; docs/rules.md section 3 says why each exists and what it blocks.
TABLE: tuple[QualityRule, ...] = (
    QualityRule(when=G.OVERLOAD_REPORTED, target=Q.OVERLOAD),
    QualityRule(when=G.CATCH_UP_REPORTED, target=Q.CATCH_UP),
    QualityRule(when=G.NO_BOOK_YET, target=Q.NO_BOOK),
    QualityRule(when=G.BOOK_STALE, target=Q.STALE_BOOK),
    QualityRule(when=G.MARK_STALE, target=Q.STALE_MARK),
    QualityRule(when=G.OI_STALE, target=Q.STALE_OI),
    QualityRule(when=G.TRADE_GAP_RECENT, target=Q.TRADE_GAP),
    QualityRule(when=G.LIQUIDATION_GAP_RECENT, target=Q.LIQUIDATION_GAP),
    QualityRule(when=G.RECONNECT_RECENT, target=Q.RECONNECT),
    QualityRule(when=G.REST_DEGRADED_RECENT, target=Q.REST_DEGRADED),
    QualityRule(when=G.FEED_SILENT, target=Q.FEED_STALE),
    QualityRule(when=G.EVENTS_LATE, target=Q.LATE_DATA),
    QualityRule(when=G.LIQUIDATION_CAP_BINDING, target=Q.LIQUIDATION_SATURATED),
    QualityRule(when=G.WARMING_UP, target=Q.WARMUP),
    QualityRule(when=G.SYMBOL_HALTED, target=Q.HALTED),
)


def compile_quality(rules: tuple[QualityRule, ...]) -> tuple[int, ...]:
    """The flag of each guard, indexed by `QualityGuard`; every guard exactly once."""
    flags: dict[QualityGuard, int] = {}
    for r in rules:
        if not isinstance(r.when, QualityGuard) or not isinstance(r.target, Quality):
            raise TableError(f"quality: rule {r!r} is not a (QualityGuard, Quality) row")
        if r.when in flags:
            raise TableError(f"quality: guard {r.when.name} has two rows")
        if r.target.bit_count() != 1:
            raise TableError(f"quality: rule {r.when.name} must raise one flag, got {r.target!r}")
        flags[r.when] = int(r.target)
    missing = [g.name for g in QualityGuard if g not in flags]
    if missing:
        raise TableError(f"quality: no row for guard(s) {', '.join(missing)}")
    return tuple(flags[g] for g in QualityGuard)


#: The compiled table: `FLAG_OF[guard]` is the flag that guard raises.
FLAG_OF = compile_quality(TABLE)

