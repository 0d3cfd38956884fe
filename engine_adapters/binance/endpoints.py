"""Binance USD-M stream names, routed base paths, and the plan of WebSocket connections.

Since the 2026 URL split (fixtures README fact 1) every stream lives under one routed base:
high-frequency book streams under `/public`, everything else under `/market`. The legacy
root (`/ws`, `/stream`) still connects but leaves market streams silent without an error
(fact 2), so a plan never mixes bases in one connection and never uses the root unless asked
(tests use that to reproduce the failure). Stream names are lowercase (fact 4); a connection
carries at most 1024 streams (fact 5), 200 by default to match the older, safer limit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs

LIVE_WS_BASE = "wss://fstream.binance.com"
LIVE_REST_BASE = "https://fapi.binance.com"

#: Fact 5: the current documented per-connection maximum.
MAX_STREAMS_PER_CONNECTION = 1024
DEFAULT_STREAMS_PER_CONNECTION = 200
#: Streams beyond what fits in this many URL characters are sent as SUBSCRIBE messages
#: after connecting (servers commonly cap the request line near 8 KiB).
DEFAULT_URL_BUDGET = 4000


class Base(enum.Enum):
    """A routed WebSocket base path (fact 1)."""

    #: High-frequency streams: bookTicker, !bookTicker, depth.
    PUBLIC = "public"
    #: Regular streams: aggTrade, markPrice, forceOrder, klines, tickers.
    MARKET = "market"
    #: The retired root: connects, serves public streams, market streams silent (fact 2).
    LEGACY_ROOT = ""


def base_of(stream: str) -> Base:
    """The routed base serving `stream` (fact 1): book streams are public, the rest market."""
    kind = stream.split("@", 2)[1] if "@" in stream else stream
    if stream.startswith("!"):
        kind = stream[1:].split("@", 1)[0]
    if kind == "bookTicker" or kind.startswith("depth"):
        return Base.PUBLIC
    return Base.MARKET


def symbol_of(stream: str) -> str | None:
    """The uppercase symbol of a per-symbol stream, None for all-market `!...` streams."""
    if stream.startswith("!") or "@" not in stream:
        return None
    return stream.split("@", 1)[0].upper()


def symbol_streams(
    symbol: str,
    *,
    book: bool = True,
    trades: bool = True,
    mark: bool = True,
    liquidations: bool = True,
    depth: bool = False,
) -> tuple[str, ...]:
    """The streams the engine follows for one symbol (markPrice at 1 s: fact 10).

    `depth` adds the 20-level partial book `<sym>@depth20@100ms` (on /public, like the book
    ticker), read into depth bands (`engine_adapters.depth_bands`)."""
    s = symbol.lower()
    out: list[str] = []
    if book:
        out.append(f"{s}@bookTicker")
    if depth:
        out.append(f"{s}@depth20@100ms")
    if trades:
        out.append(f"{s}@aggTrade")
    if mark:
        out.append(f"{s}@markPrice@1s")
    if liquidations:
        out.append(f"{s}@forceOrder")
    return tuple(out)


def universe_streams(symbols: Iterable[str], **kinds: bool) -> tuple[str, ...]:
    """Every stream for every symbol, symbols in sorted order (the token order of the run)."""
    return tuple(st for sym in sorted(symbols) for st in symbol_streams(sym, **kinds))


#: All-market streams (Binance USD-M "Mark Price Stream for All market", "All Market
#: Liquidation Order Streams"): one stream for every symbol, both on /market (fact 1).
ALL_MARK_PRICE_1S = "!markPrice@arr@1s"
ALL_FORCE_ORDER = "!forceOrder@arr"
#: Not used for the engine: on USD-M `!bookTicker` is pushed every 5 s (its docs page,
#: "Update Speed: 5s"), while `<symbol>@bookTicker` is real-time.
ALL_BOOK_TICKER = "!bookTicker"


def whole_market_streams(symbols: Iterable[str]) -> tuple[str, ...]:
    """The streams of `--top all`: per-symbol bookTicker and aggTrade (no all-market
    equivalent in real time), plus one all-market markPrice@1s and one forceOrder stream
    instead of two per symbol. Symbols in sorted order."""
    per_symbol = universe_streams(symbols, mark=False, liquidations=False)
    return (*per_symbol, ALL_MARK_PRICE_1S, ALL_FORCE_ORDER)


@attrs.frozen(kw_only=True, slots=True)
class ConnectionSpec:
    """One planned WebSocket connection: its base, the streams in its URL, and the rest.

    `url_streams` go in the combined URL; `subscribe_streams` are sent as SUBSCRIBE messages
    after the connection opens (rate-limited: fact 6).
    """

    conn_id: str
    base: Base
    url_streams: tuple[str, ...]
    subscribe_streams: tuple[str, ...] = ()

    @property
    def streams(self) -> tuple[str, ...]:
        return self.url_streams + self.subscribe_streams

    @property
    def symbols(self) -> tuple[str, ...]:
        """Distinct symbols carried, in first-seen order."""
        seen: dict[str, None] = {}
        for st in self.streams:
            sym = symbol_of(st)
            if sym is not None:
                seen.setdefault(sym, None)
        return tuple(seen)

    def url(self, ws_base: str) -> str:
        """The combined-stream URL `<ws_base>/<base>/stream?streams=a/b` (fact 4)."""
        prefix = f"/{self.base.value}" if self.base.value else ""
        return f"{ws_base.rstrip('/')}{prefix}/stream?streams={'/'.join(self.url_streams)}"


def plan_connections(
    streams: Sequence[str],
    *,
    per_connection: int = DEFAULT_STREAMS_PER_CONNECTION,
    url_budget: int = DEFAULT_URL_BUDGET,
    legacy_root: bool = False,
) -> tuple[ConnectionSpec, ...]:
    """Split streams into connections: one group per base, at most `per_connection` each.

    Raises ValueError for a limit outside 1..1024 (fact 5) or a name that is not lowercase
    where Binance requires it (fact 4): both are programming errors, not network input.
    """
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(
            f"per_connection must be in 1..{MAX_STREAMS_PER_CONNECTION} (fixtures README "
            f"fact 5): got {per_connection}"
        )
    groups: dict[Base, list[str]] = {}
    for st in dict.fromkeys(streams):  # drop repeats, keep order
        sym = st.split("@", 1)[0]
        if not st.startswith("!") and sym != sym.lower():
            raise ValueError(f"stream names must be lowercase (fact 4): got {st!r}")
        base = Base.LEGACY_ROOT if legacy_root else base_of(st)
        groups.setdefault(base, []).append(st)
    specs: list[ConnectionSpec] = []
    for base in (Base.PUBLIC, Base.MARKET, Base.LEGACY_ROOT):
        names = groups.get(base, [])
        for n, start in enumerate(range(0, len(names), per_connection)):
            chunk = names[start : start + per_connection]
            in_url: list[str] = []
            used = 0
            for st in chunk:
                if in_url and used + len(st) + 1 > url_budget:
                    break
                in_url.append(st)
                used += len(st) + 1
            label = base.value or "root"
            specs.append(
                ConnectionSpec(
                    conn_id=f"{label}-{n}",
                    base=base,
                    url_streams=tuple(in_url),
                    subscribe_streams=tuple(chunk[len(in_url) :]),
                )
            )
    return tuple(specs)
