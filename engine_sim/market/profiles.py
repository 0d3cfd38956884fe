"""Per-symbol market profiles: volatility, tails, size, liquidity, leverage limits, funding.

Magnitudes are calm-market figures of Binance USD-M perpetuals (docs/simulation.md lists
them with sources): annualized volatility from ~40 %/yr (BTC) to ~250 %/yr (thin alts),
Student-t innovations (fat tails, fewer degrees of freedom for thinner markets), daily volume
and open interest in USDT, top-of-book spread in basis points, funding interval (1/4/8 h)
and cap as `/fapi/v1/fundingInfo` gives them. Nothing here refers to the engine's thresholds.
"""

from __future__ import annotations

import attrs

SECONDS_PER_YEAR = 365.0 * 86_400.0


@attrs.frozen(kw_only=True)
class SymbolProfile:
    """One symbol's calm-market mechanics."""

    symbol: str
    price: float  # starting price, USDT
    vol_annual: float  # annualized volatility of log returns (0.40 = 40 %/yr)
    tail_df: float  # Student-t degrees of freedom of the per-second innovations
    beta: float  # loading on the common market factor
    volume_day: float  # traded notional per day, USDT
    oi_notional: float  # open interest, USDT
    spread_bps: float  # calm bid-ask spread, basis points (at least one tick is quoted)
    depth_1pct: float  # resting notional per side within 1 % of mid, USDT
    tick: float  # price tick
    step: float  # quantity step
    max_leverage: float  # highest leverage of the first bracket
    mmr: float  # maintenance margin rate of the first bracket
    funding_hours: int  # funding interval, hours (1, 4 or 8)
    funding_cap: float  # |funding| cap per interval (fundingInfo adjustedFundingRateCap)
    trades_s: float  # aggTrade frames per second in calm (emission rate)
    lag_s: float  # how many seconds the symbol's response to the market factor lags

    @property
    def vol_s(self) -> float:
        """Standard deviation of one second's log return."""
        return float(self.vol_annual / SECONDS_PER_YEAR ** 0.5)


def _p(symbol: str, price: float, vol: float, df: float, beta: float, vol_day_musd: float,
       oi_musd: float, spread: float, depth_musd: float, tick: float, step: float,
       max_lev: float, mmr: float, fh: int, cap: float, trades: float, lag: float
       ) -> SymbolProfile:
    return SymbolProfile(symbol=symbol, price=price, vol_annual=vol, tail_df=df, beta=beta,
                         volume_day=vol_day_musd * 1e6, oi_notional=oi_musd * 1e6,
                         spread_bps=spread, depth_1pct=depth_musd * 1e6, tick=tick, step=step,
                         max_leverage=max_lev, mmr=mmr, funding_hours=fh, funding_cap=cap,
                         trades_s=trades, lag_s=lag)


#: Liquid majors first, thin alts last. Volumes/OI are rounded 2024-2025 Binance USD-M levels.
PROFILES: tuple[SymbolProfile, ...] = (
    _p("BTCUSDT", 95_000.0, 0.40, 4.0, 1.00, 12_000, 9_000, 0.02, 60.0, 0.1, 0.001,
       125, 0.004, 8, 0.003, 12.0, 0.0),
    _p("ETHUSDT", 3_400.0, 0.60, 4.0, 1.15, 8_000, 6_000, 0.03, 35.0, 0.01, 0.001,
       100, 0.004, 8, 0.003, 10.0, 2.0),
    _p("SOLUSDT", 180.0, 0.80, 3.8, 1.30, 2_500, 1_800, 0.6, 8.0, 0.01, 0.01,
       75, 0.005, 8, 0.003, 7.0, 5.0),
    _p("XRPUSDT", 2.2, 0.85, 3.6, 1.25, 1_500, 1_000, 0.5, 5.0, 0.0001, 0.1,
       75, 0.005, 8, 0.003, 6.0, 8.0),
    _p("DOGEUSDT", 0.32, 0.95, 3.5, 1.40, 1_200, 800, 0.35, 3.5, 0.00001, 1.0,
       75, 0.005, 8, 0.003, 6.0, 10.0),
    _p("SUSHIUSDT", 1.1, 1.30, 3.2, 1.30, 80, 40, 4.0, 0.35, 0.0001, 1.0,
       50, 0.01, 4, 0.02, 3.0, 25.0),
    _p("STGUSDT", 0.45, 1.60, 3.0, 1.20, 40, 22, 5.0, 0.15, 0.0001, 1.0,
       50, 0.01, 4, 0.02, 2.5, 40.0),
    _p("MANTAUSDT", 0.9, 1.90, 3.0, 1.35, 60, 30, 6.0, 0.15, 0.0001, 1.0,
       50, 0.01, 4, 0.03, 2.5, 60.0),
    _p("ILVUSDT", 18.0, 2.20, 2.8, 1.25, 20, 12, 8.0, 0.06, 0.001, 0.1,
       25, 0.01, 1, 0.03, 1.5, 90.0),
    _p("BLZUSDT", 0.12, 2.50, 2.8, 1.40, 15, 8, 10.0, 0.04, 0.00001, 1.0,
       25, 0.01, 1, 0.025, 1.2, 120.0),
)


def profiles_for(n: int) -> tuple[SymbolProfile, ...]:
    """The first `n` profiles; beyond the table, thin alts named SIM<k>USDT (k from 1)."""
    if n <= 0:
        raise ValueError(f"symbol count must be positive, got {n}")
    out = list(PROFILES[:n])
    k = 0
    while len(out) < n:
        k += 1
        base = PROFILES[5 + (k - 1) % 5]
        out.append(attrs.evolve(base, symbol=f"SIM{k}USDT", lag_s=base.lag_s + 7.0 * k))
    return tuple(out)
