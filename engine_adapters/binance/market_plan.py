"""The plan of a whole-market session: streams, pooled connections, subscription pacing, polls.

Streams (endpoints.whole_market_streams): per symbol `@bookTicker` (/public) and
`@aggTrade` (/market) — neither has a real-time all-market form (`!bookTicker` is pushed
every 5 s on USD-M) — plus `!markPrice@arr@1s` and `!forceOrder@arr` (/market) for every
symbol at once, so N symbols need 2N + 2 streams instead of 4N. Connections carry at most
200 streams (the older, safer limit of fact 5) and never mix bases (fact 2); streams that do
not fit the URL are sent as SUBSCRIBE messages, at most `max_outgoing_per_s` (< 10, fact 6)
per connection, so the plan says how long subscribing takes.

Polling (fact 12, 13): the IP may spend `weight_limit` per minute, of which the plan keeps a
safety margin; the pollers get `poll_share` of the rest. Funding for all symbols is one
`premiumIndex` call (weight 10) every `premium_interval_s`; exchangeInfo (weight 1) once an
hour; open interest (weight 1 per symbol, no stream: fact 16) gets what is left of the
pollers' share, round-robin, so its cycle over all symbols stretches with N and the plan
reports the cadence achieved. Backfill gets everything the pollers do not use
(backfill.share_after_pollers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from engine_adapters.binance.endpoints import (
    Base,
    ConnectionSpec,
    plan_connections,
    whole_market_streams,
)
from engine_adapters.binance.rest_client import RestClientConfig
from engine_adapters.binance.universe import REFRESH_MS
from engine_adapters.binance.ws_client import WsClientConfig

#: Fact 6: more than 10 incoming messages per second per connection gets it disconnected.
MAX_MESSAGES_PER_S = 10.0
#: The per-connection stream count the whole-market plan keeps to (fact 5's older limit).
STREAMS_PER_CONNECTION = 200
PREMIUM_WEIGHT = 10
OI_WEIGHT = 1
EXCHANGE_INFO_WEIGHT = 1


@attrs.frozen(kw_only=True, slots=True)
class ConnectionPlan:
    """One pooled connection: its spec, and the SUBSCRIBE messages it must send."""

    spec: ConnectionSpec
    subscribe_messages: int
    #: Seconds to send them at the configured pace (0 when the URL holds every stream).
    subscribe_s: float

    @property
    def streams(self) -> int:
        return len(self.spec.streams)


@attrs.frozen(kw_only=True, slots=True)
class PollPlan:
    """Weight per minute of each poller, and the open-interest cadence it achieves."""

    n_symbols: int
    cap_per_min: float
    poll_cap_per_min: float
    premium_interval_s: float
    premium_per_min: float
    exchange_info_per_min: float
    oi_per_min: float
    #: Seconds between two polls of the same symbol's open interest (the cadence achieved).
    oi_cycle_s: float
    #: Seconds between two open-interest requests (cycle / N).
    oi_spacing_s: float
    #: Weight per minute left for the aggTrade backfill.
    backfill_per_min: float

    @property
    def pollers_per_min(self) -> float:
        return self.premium_per_min + self.exchange_info_per_min + self.oi_per_min

    def describe(self) -> str:
        return (f"open interest of {self.n_symbols} symbols every {self.oi_cycle_s:.1f} s "
                f"({self.oi_per_min:.0f} weight/min), funding every "
                f"{self.premium_interval_s:g} s ({self.premium_per_min:.0f}/min), "
                f"exchangeInfo hourly; backfill may use {self.backfill_per_min:.0f}/min of "
                f"{self.cap_per_min:.0f}/min")


def plan_polling(n_symbols: int, cfg: RestClientConfig | None = None, *,
                 oi_fastest_s: float | None = None) -> PollPlan:
    """Fit the pollers into `poll_share` of the budget; OI takes what funding leaves.

    `oi_fastest_s` (default `cfg.oi_interval_s`) is the fastest OI cycle wanted: with few
    symbols the cycle stays there and the unused share goes to backfill.
    """
    cfg = cfg or RestClientConfig()
    if n_symbols <= 0:
        raise ValueError(f"plan_polling needs at least one symbol, got {n_symbols}")
    per_window = 60.0 / cfg.window_s
    cap = int(cfg.weight_limit * (1 - cfg.safety_margin)) * per_window
    poll_cap = cap * cfg.poll_share
    info = EXCHANGE_INFO_WEIGHT * 60_000 / REFRESH_MS
    premium_s = cfg.premium_interval_s
    premium = PREMIUM_WEIGHT * 60 / premium_s
    if premium + info > poll_cap / 2:  # a tiny budget: funding may not take more than half
        premium_s = PREMIUM_WEIGHT * 60 / (poll_cap / 2 - info)
        premium = PREMIUM_WEIGHT * 60 / premium_s
    fastest = cfg.oi_interval_s if oi_fastest_s is None else oi_fastest_s
    oi_room = poll_cap - premium - info
    oi = min(oi_room, n_symbols * OI_WEIGHT * 60 / fastest)
    cycle = n_symbols * OI_WEIGHT * 60 / oi
    return PollPlan(n_symbols=n_symbols, cap_per_min=cap, poll_cap_per_min=poll_cap,
                    premium_interval_s=premium_s, premium_per_min=premium,
                    exchange_info_per_min=info, oi_per_min=oi, oi_cycle_s=cycle,
                    oi_spacing_s=cycle / n_symbols,
                    backfill_per_min=cap - premium - info - oi)


def health_symbols(spec: ConnectionSpec, universe: Sequence[str]) -> tuple[str, ...]:
    """Whose data a connection carries: its per-symbol streams' symbols, and every symbol of
    the universe when it carries an all-market `!` stream (a drop of the connection holding
    `!markPrice@arr@1s` is a RECONNECT/STREAM_STALE for all of them, not for none)."""
    if any(st.startswith("!") for st in spec.streams):
        return tuple(sorted(universe))
    return spec.symbols


def cadence_streams(spec: ConnectionSpec) -> tuple[str, ...]:
    """Streams with a fixed push cadence (fact 10), all-market ones included: silence on
    them past a few periods is a fault even while the connection carries other data."""
    return tuple(st for st in spec.streams if "markPrice@" in st or st.endswith("@markPrice"))


@attrs.frozen(kw_only=True, slots=True)
class MarketPlan:
    """Everything a whole-market session opens and polls, planned before it starts."""

    symbols: tuple[str, ...]
    streams: tuple[str, ...]
    connections: tuple[ConnectionPlan, ...]
    poll: PollPlan

    @property
    def max_streams_per_connection(self) -> int:
        return max(c.streams for c in self.connections)

    def connections_on(self, base: Base) -> int:
        return sum(1 for c in self.connections if c.spec.base is base)

    def subscribe_s(self) -> float:
        """Until every connection has subscribed everything (they subscribe in parallel)."""
        return max(c.subscribe_s for c in self.connections)

    def describe(self) -> list[str]:
        msgs = sum(c.subscribe_messages for c in self.connections)
        return [
            f"{len(self.symbols)} symbols, {len(self.streams)} streams on "
            f"{len(self.connections)} connections ({self.connections_on(Base.PUBLIC)} /public, "
            f"{self.connections_on(Base.MARKET)} /market), at most "
            f"{self.max_streams_per_connection} streams each",
            f"{msgs} SUBSCRIBE messages, all sent within {self.subscribe_s():.1f} s",
            self.poll.describe(),
        ]


def plan_market(symbols: Sequence[str], *, ws: WsClientConfig | None = None,
                rest: RestClientConfig | None = None) -> MarketPlan:
    """The plan for `symbols` (already checked unique); ValueError for a config that would
    break Binance's limits (more than 200 streams or 10 messages/s per connection)."""
    ws = ws or WsClientConfig()
    if ws.per_connection > STREAMS_PER_CONNECTION:
        raise ValueError(f"a whole-market plan keeps <= {STREAMS_PER_CONNECTION} streams per "
                         f"connection, got per_connection={ws.per_connection}")
    if not 0 < ws.max_outgoing_per_s < MAX_MESSAGES_PER_S:
        raise ValueError(f"max_outgoing_per_s must be in (0, {MAX_MESSAGES_PER_S:g}) "
                         f"(fact 6), got {ws.max_outgoing_per_s}")
    streams = whole_market_streams(symbols)
    specs = plan_connections(streams, per_connection=ws.per_connection,
                             url_budget=ws.url_budget, legacy_root=ws.legacy_root)
    conns = []
    for spec in specs:
        msgs = math.ceil(len(spec.subscribe_streams) / ws.subscribe_batch)
        # the first message goes at once, each next one 1/rate later (ws_client._send)
        conns.append(ConnectionPlan(spec=spec, subscribe_messages=msgs,
                                    subscribe_s=max(0, msgs - 1) / ws.max_outgoing_per_s))
    return MarketPlan(symbols=tuple(sorted(symbols)), streams=streams, connections=tuple(conns),
                      poll=plan_polling(len(symbols), rest))


__all__ = [
    "MAX_MESSAGES_PER_S",
    "STREAMS_PER_CONNECTION",
    "ConnectionPlan",
    "MarketPlan",
    "PollPlan",
    "cadence_streams",
    "health_symbols",
    "plan_market",
    "plan_polling",
]
