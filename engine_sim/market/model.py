"""The mechanistic market, one second per step: prices, liquidations, impact, OI, funding.

Per symbol s and second t:
  * a common factor f (Student-t innovations, BTC-sized volatility) reaches symbol s after
    its lag (seconds to minutes: contagion), scaled by its beta; idiosyncratic Student-t noise
    tops the symbol up to its own volatility; a slow stochastic-volatility multiplier and rare
    jumps make calm realistic; scenario news shocks add to the factor or to one symbol;
  * the leveraged crowd opens and closes positions (`book.LeverageBook`); when a second's
    low/high reaches liquidation prices those positions are sold/bought as market orders;
  * forced flow moves the price by the impact model, `impact = Y * 1% * g(Q / D)` with D the
    resting notional within 1 % (thinned by stress), g = sqrt (default) or linear; 40 % of
    the impact is permanent (spot venues follow), 60 % is a perp-only dislocation that
    reverts with arbitrage; impact at t moves the price at t+1, so liquidations can
    liquidate more: that feedback is the cascade;
  * stress (recent |return| in own sigma and forced flow vs depth) thins depth and widens
    the spread; the crowd's aggressive flow builds a premium over the index (mid vs spot);
    the index is a lagged, smoothed spot (multi-venue) price; funding follows the running
    premium average with Binance's formula, interval and cap; the mark is Binance's median.
  * background liquidation prints (positions outside the modelled crowd: cross margin,
    portfolio accounts) arrive as a Poisson stream with lognormal sizes, sided by the
    recent move.
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

from engine_sim.market.book import LeverageBook
from engine_sim.market.profiles import SymbolProfile
from engine_sim.market.scenarios import Drivers

FloatA = npt.NDArray[np.float64]


@attrs.frozen(kw_only=True)
class Mechanics:
    """Knobs of the market mechanics (not of any detector)."""

    impact: str = "sqrt"  # "sqrt" or "linear"
    impact_y: float = 1.0  # impact of forced flow equal to the 1 % depth: Y * 1 %
    permanent_share: float = 0.4  # share of impact that moves spot (the index) too
    disloc_halflife_s: float = 90.0  # perp-only dislocation reverts (arbitrage)
    crowd_share: float = 0.3  # leveraged crowd's share of open interest at start
    hold_hours: float = 36.0  # mean holding time of a crowd position in calm
    vol_of_vol: float = 0.25  # stdev of the log volatility multiplier (slow, ~1 h)
    jumps_per_symbol_day: float = 3.0  # rare calm price jumps
    jump_sigma_hours: float = 1.0  # jump size: N(0, 1) x this many hours of volatility
    bg_liq_per_s: float = 0.3  # background liquidation prints per second, market-wide
    bg_liq_median: float = 2_500.0  # median background print, USDT (lognormal)
    bg_liq_sigma: float = 1.3  # lognormal sigma of background print sizes
    premium_per_flow: float = 0.008  # equilibrium premium at full crowd flow (+1)
    premium_halflife_s: float = 120.0
    index_lag_s: int = 2  # the index uses spot prices this many seconds old...
    index_smooth_s: float = 3.0  # ...smoothed over about this many seconds
    stress_halflife_s: float = 30.0
    depth_stress: float = 0.6  # depth = D / (1 + depth_stress * min(stress, stress_cap))
    spread_stress: float = 0.8  # spread = s0 * (1 + spread_stress * min(stress, stress_cap))
    stress_cap: float = 2.5  # books thin to ~40 % of calm depth at most
    hedged_churn_h: float = 0.004  # stdev of the unlevered OI stock's churn per sqrt(hour)
    panic: float = 40.0  # crowd closing x (1 + panic * excess^2 / 6): stops, de-risking
    derisk_per_s: float = 0.0001  # unlevered stock closed per second per unit of stress


DEFAULT_MECHANICS = Mechanics()


@attrs.frozen(kw_only=True)
class MarketPath:
    """Per-second arrays (rows = seconds, columns = symbols) of one simulated run."""

    log_mid: FloatA  # at the end of each second
    log_low: FloatA
    log_high: FloatA
    index: FloatA
    mark: FloatA
    funding: FloatA  # estimated rate of the running interval
    next_funding_s: FloatA  # seconds from run start to the next funding time
    oi: FloatA  # contracts
    liq_long: FloatA  # contracts of longs force-sold in the second (crowd + background)
    liq_short: FloatA
    liq_book_long: FloatA  # of which from the crowd book (mechanical cascade)
    liq_book_short: FloatA
    buy_vol: FloatA  # taker-buy contracts (incl. forced buys)
    sell_vol: FloatA
    spread_bps: FloatA
    depth_mult: FloatA  # depth vs calm
    crowd_long: FloatA  # open crowd contracts
    crowd_short: FloatA
    near_long: FloatA  # crowd longs liquidated by a 3 % drop (contracts; sampled every 10 s)
    near_short: FloatA


def impact(net_notional: FloatA, depth: FloatA, mech: Mechanics) -> FloatA:
    """Log price move of a net market order (+ buy, - sell) against `depth` (the resting
    notional within 1 %): Y * 1 % * g(|Q| / D), g(u) = u (linear) or u / sqrt(1 + u)
    (square-root law for orders beyond the depth, linear below it)."""
    u = np.abs(net_notional) / depth
    g = u / np.sqrt(1.0 + u) if mech.impact == "sqrt" else u
    return np.asarray(np.sign(net_notional) * mech.impact_y * 0.01 * g)


def funding_rate(premium_avg: FloatA, interval_h: FloatA, cap: FloatA) -> FloatA:
    """Binance's funding: F = P + clamp(I - P, -0.05 %, 0.05 %), capped at +-cap, with the
    interest rate I = 0.01 % per 8 h scaled to the interval and P the premium average."""
    i_rate = 0.0001 * interval_h / 8.0
    f = premium_avg + np.clip(i_rate - premium_avg, -0.0005, 0.0005)
    return np.asarray(np.clip(f, -cap, cap))


def _t_unit(rng: np.random.Generator, df: FloatA, shape: tuple[int, ...]) -> FloatA:
    """Student-t draws with `df` per column, scaled to unit variance."""
    x = rng.standard_t(np.broadcast_to(df, shape))
    return np.asarray(x * np.sqrt((df - 2.0) / df), dtype=np.float64)


def _ou(rng: np.random.Generator, n_s: int, n: int, sd: float, halflife_s: float) -> FloatA:
    """Stationary AR(1) paths (rows = seconds) with stdev `sd`."""
    a = 0.5 ** (1.0 / halflife_s)
    e = rng.standard_normal((n_s, n)) * sd * np.sqrt(1 - a * a)
    out = np.empty((n_s, n))
    x = rng.standard_normal(n) * sd
    # A blocked recursion: 1 s steps are needed only for the slow multiplier, done cheaply.
    for i in range(n_s):
        x = a * x + e[i]
        out[i] = x
    return out


def simulate(profiles: tuple[SymbolProfile, ...], drivers: Drivers, n_seconds: int,
             rng: np.random.Generator, mech: Mechanics = DEFAULT_MECHANICS,
             start_s: int = 0) -> MarketPath:
    """Run the mechanics for `n_seconds` from epoch second `start_s` (funding times are
    multiples of each symbol's interval since 00:00 UTC); all randomness from `rng`."""
    n = len(profiles)
    g = np.array
    p0 = g([p.price for p in profiles])
    vol_s = g([p.vol_s for p in profiles])
    df = g([p.tail_df for p in profiles])
    beta = g([p.beta for p in profiles])
    depth0 = g([p.depth_1pct for p in profiles])
    spread0 = g([p.spread_bps for p in profiles])
    vol_day = g([p.volume_day for p in profiles])
    lag = g([round(p.lag_s) for p in profiles]).astype(np.int64)
    fh = g([p.funding_hours for p in profiles]).astype(np.int64)
    cap = g([p.funding_cap for p in profiles])
    oi0 = g([p.oi_notional for p in profiles]) / p0
    sig_f = 0.9 * vol_s[0]
    sig_i = np.sqrt(np.maximum(vol_s ** 2 - (beta * sig_f) ** 2, (0.25 * vol_s) ** 2))

    # Pre-drawn noise (independent of the state).
    e_f = _t_unit(rng, g([profiles[0].tail_df]), (n_seconds,))
    e_i = _t_unit(rng, df, (n_seconds, n))
    svol = np.exp(_ou(rng, n_seconds, n, mech.vol_of_vol, 3600.0))
    jump_p = mech.jumps_per_symbol_day / 86_400.0
    jumps = (rng.random((n_seconds, n)) < jump_p) * rng.standard_normal((n_seconds, n)) \
        * vol_s * np.sqrt(3600.0 * mech.jump_sigma_hours)
    weight = np.sqrt(vol_day) / np.sqrt(vol_day).sum()
    bg_n = rng.poisson(mech.bg_liq_per_s * weight, (n_seconds, n))
    bg_size = np.where(bg_n > 0, rng.lognormal(np.log(mech.bg_liq_median), mech.bg_liq_sigma,
                                               (n_seconds, n)) * np.maximum(bg_n, 1), 0.0)
    bg_side_u = rng.random((n_seconds, n))
    vol_noise = rng.gamma(2.0, 0.5, (n_seconds, n))
    flow_noise = rng.standard_normal((n_seconds, n)) * 0.12
    prem_noise = rng.standard_normal((n_seconds, n)) * 0.2 * vol_s
    churn = rng.standard_normal((n_seconds, n)) * mech.hedged_churn_h / 60.0

    book = LeverageBook(p0, g([p.mmr for p in profiles]), g([p.max_leverage for p in profiles]))
    close0 = 1.0 / (mech.hold_hours * 3600.0)
    crowd0 = mech.crowd_share * oi0
    # Pre-history: crowd positions opened over the past days at scattered entry prices.
    x0 = np.log(p0)
    for _ in range(40):
        entry = x0 + rng.standard_normal(n) * vol_s * np.sqrt(86_400.0) * 3.0
        book.open(entry, crowd0 / 80.0, crowd0 / 80.0, np.full(n, 0.1))
    # Survivors only: positions whose liquidation price the recent hours' range (about two
    # hourly sigmas either side) would have reached are already gone.
    band = 2.0 * vol_s * np.sqrt(3600.0)
    book.liquidate(x0 - band, x0 + band)
    cl, cs = book.totals()
    hedged = oi0 - cl - cs
    open_rate = close0 * (cl + cs)  # calm steady state: opens balance closes

    f_hist = np.zeros(n_seconds + 1)
    x_fund = x0.copy()
    disloc = np.zeros(n)
    prem = np.zeros(n)
    spot_ema = x0.copy()
    spot_hist = np.tile(x0, (mech.index_lag_s + 1, 1))
    stress = np.zeros(n)
    pending = np.zeros(n)  # impact (log) of last second's forced flow
    basis_ema = np.zeros(n)
    prem_sum = np.zeros(n)
    prem_cnt = np.zeros(n)
    x_prev = x0.copy()
    a_dis = 0.5 ** (1.0 / mech.disloc_halflife_s)
    a_prem = 0.5 ** (1.0 / mech.premium_halflife_s)
    a_str = 0.5 ** (1.0 / mech.stress_halflife_s)
    a_idx = np.exp(-1.0 / mech.index_smooth_s)
    a_basis = np.exp(-1.0 / 300.0)
    vol_per_s = vol_day / 86_400.0 / p0

    out = {k: np.empty((n_seconds, n)) for k in attrs.fields_dict(MarketPath)}
    ret_1m = np.zeros(n)
    for t in range(n_seconds):
        # Market factor: noise + news + feedback of the majors' permanent forced-flow impact.
        fb = float((pending[:2] * beta[:2]).mean()) * mech.permanent_share if n >= 2 else 0.0
        f_hist[t + 1] = f_hist[t] + sig_f * e_f[t] + drivers.shock_factor[t] + 0.5 * fb
        tl = np.maximum(t + 1 - lag, 0)
        tl0 = np.maximum(t - lag, 0)
        df_t = f_hist[tl] - f_hist[tl0]
        drift = 0.02 * vol_s * drivers.crowd_flow[t]
        own = pending * mech.permanent_share
        if n >= 2:
            own[:2] -= 0.5 * fb  # the majors' share already went into the factor
        x_fund = x_fund + beta * df_t + sig_i * svol[t] * e_i[t] + jumps[t] \
            + drivers.shock_idio[t] + drift + own
        disloc = a_dis * disloc + pending * (1.0 - mech.permanent_share)
        prem = a_prem * prem + (1.0 - a_prem) * mech.premium_per_flow * drivers.crowd_flow[t] \
            + prem_noise[t]
        x_mid = x_fund + disloc + prem
        excursion = 0.5 * vol_s * svol[t]
        lo = np.minimum(x_prev, x_mid) - excursion
        hi = np.maximum(x_prev, x_mid) + excursion
        # Crowd behaviour: open, close (faster under stress), then forced liquidation.
        q_open = (open_rate * drivers.open_mult[t] + drivers.inflow_h[t] * oi0 / 3600.0) \
            * (1.0 + 0.2 * rng.standard_normal(n)).clip(0)
        ls = drivers.long_share[t]
        book.open(x_mid, q_open * ls, q_open * (1.0 - ls), drivers.crowding[t])
        ex = np.clip(stress - 0.5, 0.0, mech.stress_cap)  # stress beyond calm's usual level
        frac = close0 * drivers.close_mult[t] * (1.0 + mech.panic * ex * ex / 6.0)
        # Under stress the side losing money closes faster (stops); the other side holds.
        losing_long = np.where(ret_1m < 0, 1.0, 0.3)
        c_l, c_s = book.close(frac * losing_long, frac * (1.3 - losing_long))
        hedged = hedged * (1.0 - mech.derisk_per_s * ex)
        ql, qs = book.liquidate(lo, hi)
        price = np.exp(x_mid)
        r = x_mid - x_prev
        ret_1m = ret_1m * (59.0 / 60.0) + r
        long_p = 0.5 - 0.45 * np.tanh(ret_1m / (vol_s * np.sqrt(60.0)))
        bg = bg_size[t] / price
        bg_long = np.where(bg_side_u[t] < long_p, bg, 0.0)
        bg_short = bg - bg_long
        liq_l, liq_s = ql + bg_long, qs + bg_short
        # Impact of this second's forced flow, applied next second.
        s_eff = np.clip(stress - 0.5, 0.0, mech.stress_cap)
        depth = depth0 / (1.0 + mech.depth_stress * s_eff)
        pending = impact((liq_s - liq_l + c_s - c_l) * price, depth, mech)
        shock = np.abs(r) / (vol_s * svol[t]) / 0.8 - 1.0
        forced = (liq_l + liq_s) * price / depth0
        stress = a_str * stress + (1.0 - a_str) * np.maximum(shock, 0.0) + forced
        # Volume and taker flow.
        activity = vol_per_s * vol_noise[t] * (1.0 + 0.6 * stress)
        buy_share = np.clip(0.5 + 0.25 * drivers.crowd_flow[t] + 0.2 * np.tanh(r / vol_s)
                            + flow_noise[t], 0.02, 0.98)
        # Spot, index, premium index, funding, mark.
        spot_hist = np.roll(spot_hist, 1, axis=0)
        spot_hist[0] = x_fund
        spot_ema = a_idx * spot_ema + (1.0 - a_idx) * spot_hist[-1]
        index = np.exp(spot_ema)
        p_idx = (price - index) / index
        interval_s = fh * 3600
        into = (t + start_s) % interval_s
        fresh = (into == 0) | (t == 0)
        prem_sum = np.where(fresh, 0.0, prem_sum) + p_idx
        prem_cnt = np.where(fresh, 0.0, prem_cnt) + 1.0
        p_avg = prem_sum / prem_cnt
        rate = funding_rate(p_avg, fh.astype(np.float64), cap)
        left = (interval_s - into) / interval_s
        basis_ema = a_basis * basis_ema + (1.0 - a_basis) * (price - index)
        mark = np.median(np.stack([index * (1.0 + rate * left), index + basis_ema, price]), axis=0)
        hedged = hedged * (1.0 + churn[t])
        cl, cs = book.totals()
        if t % 10 == 0:  # an analysis output only: every 10 s is enough (held between)
            nl, ns = book.near(x_mid, 0.03)
        row = {"log_mid": x_mid, "log_low": lo, "log_high": hi, "index": index, "mark": mark,
               "funding": rate, "next_funding_s": t - into + interval_s, "oi": hedged + cl + cs,
               "liq_long": liq_l, "liq_short": liq_s, "liq_book_long": ql, "liq_book_short": qs,
               "buy_vol": activity * buy_share + liq_s, "sell_vol": activity * (1 - buy_share)
               + liq_l, "spread_bps": spread0 * (1.0 + mech.spread_stress * s_eff),
               "depth_mult": 1.0 / (1.0 + mech.depth_stress * s_eff), "crowd_long": cl,
               "crowd_short": cs, "near_long": nl, "near_short": ns}
        for k, v in row.items():
            out[k][t] = v
        x_prev = x_mid
    return MarketPath(**out)
