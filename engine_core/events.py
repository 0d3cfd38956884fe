"""Input vocabulary: what can happen to a market, named for what happened, venue-neutral.

Adapters (Binance WS/REST parsers, capture readers, journals) build these values and hand them
to `EventNormalizer.normalize`; nothing else enters the core. Every class is frozen, slotted
and keyword-only, so an event is a fact that cannot change after it was observed.

Prices and sizes are plain floats parsed from the exchange's decimal strings (`float("68005.00")`
is correctly rounded on every platform). Times are integer epoch milliseconds of the exchange.
Values are *not* validated here: validation happens once, at the boundary, in `normalize.py`.
"""

from __future__ import annotations

import enum

import attrs


class SourceType(enum.IntEnum):
    """Which kind of market data an event carries (stored in journals: values are stable)."""

    #: An aggressive trade (Binance aggTrade / trade).
    TRADE = 1
    #: Best bid/ask snapshot (Binance bookTicker).
    BOOK = 2
    #: A forced liquidation order (Binance forceOrder; at most one per symbol per second).
    LIQUIDATION = 3
    #: Mark price, index price and current funding rate (Binance markPrice stream).
    MARK = 4
    #: Open interest snapshot (Binance REST /fapi/v1/openInterest; there is no stream).
    OPEN_INTEREST = 5
    #: Funding snapshot (Binance REST /fapi/v1/premiumIndex).
    FUNDING = 6
    #: Data-health notice from the shell: gap, reconnect, stale feed, overload.
    HEALTH = 7
    #: Book depth near the price as cumulative notional bands (Binance depth20, archive
    #: bookDepth).
    DEPTH = 8
    #: A symbol's funding settings: interval, cap, floor (Binance REST /fapi/v1/fundingInfo).
    FUNDING_INFO = 9
    #: A batch of past open-interest points (Binance REST /futures/data/openInterestHist).
    OI_HISTORY = 10


class Side(enum.IntEnum):
    """Side of an order. For a liquidation, SELL means a long position was force-closed."""

    BUY = 1
    SELL = 2


class HealthKind(enum.IntEnum):
    """What the shell observed about the data feeding one token (stored in journals)."""

    #: The connection carrying this token's streams was re-established.
    RECONNECT = 1
    #: Trade ids are missing and could not be fetched back; `count` says how many.
    TRADE_GAP = 2
    #: The liquidation stream was down for a while; liquidations in between are lost for good.
    LIQUIDATION_GAP = 3
    #: A stream for this token went silent past the watchdog limit (connected but no data).
    STREAM_STALE = 4
    #: Data flows again after STREAM_STALE.
    STREAM_RESUMED = 5
    #: The shell fell behind (bounded queue full or ticks stepped late); `count` events affected.
    OVERLOAD = 6
    #: The shell stepped this tick late, while catching up on skipped ticks.
    CATCH_UP = 7
    #: Polling this token's REST data (open interest, funding) is failing or rate-limited.
    REST_DEGRADED = 8
    #: The exchange stopped trading this symbol (halt, cancel-only, pre-settle): its feed going
    #: quiet is not a liquidity collapse. Held until SYMBOL_TRADING.
    SYMBOL_HALTED = 9
    #: The symbol trades again after SYMBOL_HALTED.
    SYMBOL_TRADING = 10
    #: The symbol was settled, closed or delisted: it will not come back this session.
    SYMBOL_DELISTED = 11


@attrs.frozen(kw_only=True, slots=True)
class TradeReceived:
    """An aggressive trade. `buyer_is_maker=True` means the seller was the aggressor."""

    symbol: str
    exchange_ts: int
    price: float
    qty: float
    buyer_is_maker: bool
    #: Exchange trade id (Binance aggregate trade id `a`); 0 when the venue gives none.
    trade_id: int = 0


@attrs.frozen(kw_only=True, slots=True)
class BookTickerReceived:
    """Best bid and ask with their sizes. `update_id` orders book updates of one symbol."""

    symbol: str
    exchange_ts: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    update_id: int = 0


@attrs.frozen(kw_only=True, slots=True)
class LiquidationReceived:
    """A forced liquidation order as pushed by the exchange.

    `side` is the side of the forced order: SELL closes a long, BUY closes a short.
    `qty` is the filled quantity and `price` the average fill price, so `qty * price` is the
    liquidated notional. Binance pushes at most one of these per symbol per second, so any
    sum of them is a lower bound on what was really liquidated.
    """

    symbol: str
    exchange_ts: int
    side: Side
    price: float
    qty: float


@attrs.frozen(kw_only=True, slots=True)
class MarkPriceReceived:
    """Mark price, index price and the current (estimated) funding rate."""

    symbol: str
    exchange_ts: int
    mark_price: float
    index_price: float
    funding_rate: float
    next_funding_ts: int = 0


@attrs.frozen(kw_only=True, slots=True)
class OpenInterestReceived:
    """Open interest in contracts (base asset units), as polled over REST."""

    symbol: str
    exchange_ts: int
    open_interest: float


@attrs.frozen(kw_only=True, slots=True)
class FundingReceived:
    """Funding snapshot polled over REST (premiumIndex): last funding rate with mark/index."""

    symbol: str
    exchange_ts: int
    funding_rate: float
    mark_price: float
    index_price: float
    next_funding_ts: int = 0


@attrs.frozen(kw_only=True, slots=True)
class DataHealthReceived:
    """A data-health notice the shell puts into a token's batch. It is data, not a log line."""

    symbol: str
    exchange_ts: int
    kind: HealthKind
    #: How many items were affected (missing trade ids, dropped events); 0 when not applicable.
    count: int = 0


@attrs.frozen(kw_only=True, slots=True)
class DepthReceived:
    """Book depth near the price, venue-neutral: cumulative quote notional per band of the mid.

    `edges_bps` are the band edges in basis points of the mid, strictly ascending;
    `bid_notional[i]` is the quote notional (price * qty summed) of the bids priced at or
    above `mid * (1 - edges_bps[i] / 1e4)`, `ask_notional[i]` that of the asks at or below
    `mid * (1 + edges_bps[i] / 1e4)`, so both are non-decreasing. Sources: the 20 best levels
    of Binance `@depth20@100ms`, or the archive's `bookDepth` +-1..5 % bands. `mid` is 0.0 when
    the source gives none (the archive). `reach_bps` > 0 says the levels reached only that far
    from the mid (a partial book): wider bands are lower bounds; 0.0 means complete bands.
    """

    symbol: str
    exchange_ts: int
    edges_bps: tuple[int, ...]
    bid_notional: tuple[float, ...]
    ask_notional: tuple[float, ...]
    mid: float = 0.0
    reach_bps: float = 0.0

    def band_notional(self, target_bps: int) -> float:
        """Bid + ask notional within the widest band edge <= target (else the narrowest)."""
        k = 0
        for i, edge in enumerate(self.edges_bps):
            if edge <= target_bps:
                k = i
        return self.bid_notional[k] + self.ask_notional[k]


@attrs.frozen(kw_only=True, slots=True)
class FundingInfoReceived:
    """A symbol's funding settings (Binance /fapi/v1/fundingInfo).

    Funding is settled every `interval_hours` hours (1, 4 or 8 on Binance; 8 until this
    arrives); `cap` and `floor` bound the rate of one interval (`floor` <= 0 <= `cap`).
    """

    symbol: str
    exchange_ts: int
    interval_hours: int
    cap: float
    floor: float


@attrs.frozen(kw_only=True, slots=True)
class OpenInterestHistoryReceived:
    """Past open interest, (epoch ms, contracts) per point, strictly time-ascending.

    From Binance /futures/data/openInterestHist (5-minute points, up to 30 days back), sent
    once at start so the long OI baseline holds the stock of leverage from the first minute.
    `exchange_ts` is the time of the newest point.
    """

    symbol: str
    exchange_ts: int
    points: tuple[tuple[int, float], ...]


#: Every payload type the core accepts, in SourceType order.
MarketEvent = (
    TradeReceived
    | BookTickerReceived
    | LiquidationReceived
    | MarkPriceReceived
    | OpenInterestReceived
    | FundingReceived
    | DataHealthReceived
    | DepthReceived
    | FundingInfoReceived
    | OpenInterestHistoryReceived
)

SOURCE_OF: dict[type, SourceType] = {
    TradeReceived: SourceType.TRADE,
    BookTickerReceived: SourceType.BOOK,
    LiquidationReceived: SourceType.LIQUIDATION,
    MarkPriceReceived: SourceType.MARK,
    OpenInterestReceived: SourceType.OPEN_INTEREST,
    FundingReceived: SourceType.FUNDING,
    DataHealthReceived: SourceType.HEALTH,
    DepthReceived: SourceType.DEPTH,
    FundingInfoReceived: SourceType.FUNDING_INFO,
    OpenInterestHistoryReceived: SourceType.OI_HISTORY,
}
