"""Mechanics of the simulated market: liquidation prices, the book, impact, funding, cascades."""

from __future__ import annotations

import numpy as np
import pytest

from engine_sim.market.book import LEVERAGES, LeverageBook, liquidation_price
from engine_sim.market.model import Mechanics, funding_rate, impact, simulate
from engine_sim.market.profiles import profiles_for
from engine_sim.market.scenarios import build


def test_liquidation_price_long_and_short() -> None:
    # Long 10x at 100, maintenance 0.5 %: 100 * 0.9 / 0.995; short: 100 * 1.1 / 1.005.
    assert liquidation_price(100.0, 10.0, 0.005, long=True) == pytest.approx(90.4523, abs=1e-4)
    assert liquidation_price(100.0, 10.0, 0.005, long=False) == pytest.approx(109.4527, abs=1e-4)
    # Higher leverage liquidates closer to entry, on both sides.
    assert liquidation_price(100.0, 50.0, 0.004, True) > liquidation_price(100.0, 10.0, 0.004, True)
    assert liquidation_price(100.0, 50.0, 0.004, False) < liquidation_price(100.0, 10.0, 0.004,
                                                                            False)
    with pytest.raises(ValueError, match="leverage 125"):
        liquidation_price(100.0, 125.0, 0.01, long=True)  # mmr >= 1/L: no such position


def test_book_liquidates_exactly_the_positions_whose_price_was_reached() -> None:
    mmr = 0.005
    book = LeverageBook(np.array([100.0]), np.array([mmr]), np.array([125.0]))
    book.open(np.log([100.0]), np.array([1000.0]), np.array([1000.0]), np.array([0.0]))
    w = book.mix_calm[0]
    low = 93.0  # a 7 % drop: 20x and above are gone (10x liquidates at 90.45)
    want = sum(wi for wi, lev in zip(w, LEVERAGES, strict=True)
               if liquidation_price(100.0, lev, mmr, True) >= low) * 1000.0
    ql, qs = book.liquidate(np.log([low]), np.log([100.0]))
    assert ql[0] == pytest.approx(want)
    assert qs[0] == 0.0
    long_left, short_left = book.totals()
    assert long_left[0] == pytest.approx(1000.0 - want)  # liquidated positions leave the book
    assert short_left[0] == pytest.approx(1000.0)
    # A second pass at the same low finds nothing more.
    assert book.liquidate(np.log([low]), np.log([100.0]))[0][0] == 0.0


def test_impact_model_linear_and_square_root() -> None:
    d = np.array([1e6])
    lin = Mechanics(impact="linear")
    sq = Mechanics(impact="sqrt")
    # Selling the whole 1 % depth moves the price 1 % (linear) or 1 %/sqrt(2) (square root).
    assert impact(np.array([-1e6]), d, lin)[0] == pytest.approx(-0.01)
    assert impact(np.array([-1e6]), d, sq)[0] == pytest.approx(-0.01 / np.sqrt(2.0))
    assert impact(np.array([4e5]), d, lin)[0] == pytest.approx(0.004)
    # Far beyond the depth the square-root law grows like sqrt(Q / D).
    assert impact(np.array([-1e8]), d, sq)[0] == pytest.approx(-0.01 * 100 / np.sqrt(101.0))


def test_funding_follows_the_premium_with_binance_clamp_and_cap() -> None:
    cap = np.array([0.003])
    eight = np.array([8.0])
    # Inside +-0.05 % of the interest rate: funding is the interest rate (0.01 % / 8 h).
    assert funding_rate(np.array([0.0003]), eight, cap)[0] == pytest.approx(0.0001)
    # Beyond it the sign follows the premium.
    assert funding_rate(np.array([0.0010]), eight, cap)[0] == pytest.approx(0.0005)
    assert funding_rate(np.array([-0.0010]), eight, cap)[0] == pytest.approx(-0.0005)
    assert funding_rate(np.array([0.05]), eight, cap)[0] == pytest.approx(0.003)  # capped
    # A 1-hour interval has an eighth of the interest rate.
    assert funding_rate(np.array([0.0]), np.array([1.0]), cap)[0] == pytest.approx(0.0000125)


def _cascade_drawdown(mech: Mechanics, seed: int = 11) -> tuple[float, float]:
    prof = profiles_for(2)
    n_s = 2400
    daily = np.array([p.vol_annual / np.sqrt(365.0) for p in prof])
    d = build("cascade", n_s, daily, np.random.default_rng(seed))
    path = simulate(prof, d, n_s, np.random.default_rng(seed + 1), mech)
    px = np.exp(path.log_mid)
    dd = float((px.min(axis=0) / px[0] - 1.0).mean())
    liq = float((path.liq_book_long * px).sum())
    return dd, liq


def test_the_cascade_amplifies_leverage_near_the_price_means_a_deeper_fall() -> None:
    # Same seed, same news shock: only the crowd's size (leverage in the book) differs.
    light_dd, light_liq = _cascade_drawdown(Mechanics(crowd_share=0.05))
    heavy_dd, heavy_liq = _cascade_drawdown(Mechanics(crowd_share=0.3))
    assert heavy_liq > 3 * light_liq
    assert heavy_dd < light_dd - 0.005  # deeper (drawdowns are negative)
    # Without impact the liquidations cannot feed back into the price.
    no_fb_dd, _ = _cascade_drawdown(Mechanics(crowd_share=0.3, impact_y=0.0))
    assert heavy_dd < no_fb_dd - 0.005


def test_realized_volatility_matches_each_profile() -> None:
    table = profiles_for(10)
    prof = (table[0], table[4], table[9])  # BTC, DOGE, the thinnest alt
    n_s = 7200
    daily = np.array([p.vol_annual / np.sqrt(365.0) for p in prof])
    d = build("calm", n_s, daily, np.random.default_rng(5))
    mech = Mechanics(jumps_per_symbol_day=0.0, bg_liq_per_s=0.0, vol_of_vol=0.0)
    path = simulate(prof, d, n_s, np.random.default_rng(6), mech)
    # 1-minute returns (the sub-minute premium noise averages out).
    r = np.diff(path.log_mid[::60], axis=0)
    realized = r.std(axis=0) * np.sqrt(365.0 * 1440.0)
    want = np.array([p.vol_annual for p in prof])
    ratio = realized / want
    assert np.all((ratio > 0.7) & (ratio < 1.45)), dict(zip([p.symbol for p in prof],
                                                            ratio.round(2), strict=True))
    # Thin alts are far more volatile than BTC, as in the profiles (~40 %/yr vs ~250 %/yr).
    assert realized[-1] > 4 * realized[0]
