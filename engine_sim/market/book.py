"""The book of leveraged positions: liquidation prices, opening, closing, forced liquidation.

Positions of the leveraged crowd are held per symbol in a histogram over log liquidation
price (bins of `BIN_W` in log price around the symbol's start price), long and short apart,
in contracts. Opening `q` contracts at the current price with a leverage mix puts each
leverage's share in the bin of its isolated-margin liquidation price; closing removes a
fraction of every bin; when the price crosses a bin, that bin is liquidated (removed and
returned as forced-order quantity). Everything is vectorized over symbols.

Isolated-margin liquidation price (one position, no maintenance amount), entry `E`,
leverage `L`, maintenance margin rate `m`:
    long  LP = E * (1 - 1/L) / (1 - m)
    short LP = E * (1 + 1/L) / (1 + m)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatA = npt.NDArray[np.float64]
IntA = npt.NDArray[np.int64]

#: Width of one liquidation-price bin in log price (0.2 %).
BIN_W = 0.002
#: Half-range of the grid in log price (about -55 % .. +123 % of the start price).
HALF_RANGE = 0.8
N_BINS = round(2 * HALF_RANGE / BIN_W)

#: Leverage levels of the crowd and two mixes (weights): calm and crowded (build-up).
LEVERAGES = np.array([2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 75.0, 100.0, 125.0])
MIX_CALM = np.array([0.22, 0.22, 0.24, 0.18, 0.08, 0.03, 0.02, 0.005, 0.004, 0.001])
MIX_CROWDED = np.array([0.05, 0.07, 0.13, 0.22, 0.20, 0.10, 0.12, 0.05, 0.04, 0.02])


def liquidation_price(entry: float, leverage: float, mmr: float, long: bool) -> float:
    """Isolated-margin liquidation price of one position (module docstring formula)."""
    if leverage <= 1.0 or not 0.0 <= mmr < 1.0 / leverage:
        raise ValueError(f"leverage {leverage} / maintenance margin {mmr}: no liquidation "
                         "price (need leverage > 1 and mmr < 1/leverage)")
    if long:
        return entry * (1.0 - 1.0 / leverage) / (1.0 - mmr)
    return entry * (1.0 + 1.0 / leverage) / (1.0 + mmr)


def _mix_for(max_leverage: float, mix: FloatA) -> FloatA:
    """The mix with leverages above the symbol's maximum moved to the maximum allowed."""
    w = mix.copy()
    allowed = max_leverage >= LEVERAGES
    top = int(np.flatnonzero(allowed)[-1])
    w[top] += w[~allowed].sum()
    w[~allowed] = 0.0
    return np.asarray(w / w.sum(), dtype=np.float64)


class LeverageBook:
    """Long and short crowd positions of `n` symbols, by liquidation-price bin (contracts)."""

    def __init__(self, p0: FloatA, mmr: FloatA, max_leverage: FloatA) -> None:
        self.n = len(p0)
        self.log_p0 = np.log(p0)
        self.long = np.zeros((self.n, N_BINS))
        self.short = np.zeros((self.n, N_BINS))
        self._bins = np.arange(N_BINS)
        lev = LEVERAGES[None, :]
        m = mmr[:, None]
        valid = lev <= max_leverage[:, None]
        safe_lev = np.where(valid, lev, 2.0)
        #: Log distance from entry to liquidation, per symbol and leverage.
        self.d_long = np.log((1.0 - 1.0 / safe_lev) / (1.0 - m))
        self.d_short = np.log((1.0 + 1.0 / safe_lev) / (1.0 + m))
        self.mix_calm = np.stack([_mix_for(x, MIX_CALM) for x in max_leverage])
        self.mix_crowded = np.stack([_mix_for(x, MIX_CROWDED) for x in max_leverage])

    def bin_of(self, log_price: FloatA) -> IntA:
        """Bin index of each symbol's log price (clipped to the grid)."""
        b = np.floor((log_price - self.log_p0 + HALF_RANGE) / BIN_W).astype(np.int64)
        return np.clip(b, 0, N_BINS - 1)

    def open(self, log_entry: FloatA, q_long: FloatA, q_short: FloatA, crowding: FloatA) -> None:
        """Open positions at `log_entry`; `crowding` in [0, 1] blends calm -> crowded mix."""
        c = np.clip(crowding, 0.0, 1.0)[:, None]
        mix = (1.0 - c) * self.mix_calm + c * self.mix_crowded
        rows = np.repeat(np.arange(self.n), len(LEVERAGES))
        bl = self.bin_of_offsets(log_entry, self.d_long)
        bs = self.bin_of_offsets(log_entry, self.d_short)
        np.add.at(self.long, (rows, bl.ravel()), (mix * q_long[:, None]).ravel())
        np.add.at(self.short, (rows, bs.ravel()), (mix * q_short[:, None]).ravel())

    def bin_of_offsets(self, log_entry: FloatA, d: FloatA) -> IntA:
        x = log_entry[:, None] + d - self.log_p0[:, None] + HALF_RANGE
        return np.clip(np.floor(x / BIN_W).astype(np.int64), 0, N_BINS - 1)

    def close(self, frac_long: FloatA, frac_short: FloatA) -> tuple[FloatA, FloatA]:
        """Close a fraction of every bin; returns the contracts closed (long, short)."""
        fl = np.clip(frac_long, 0.0, 1.0)[:, None]
        fs = np.clip(frac_short, 0.0, 1.0)[:, None]
        cl = (self.long * fl).sum(axis=1)
        cs = (self.short * fs).sum(axis=1)
        self.long *= 1.0 - fl
        self.short *= 1.0 - fs
        return cl, cs

    def liquidate(self, log_low: FloatA, log_high: FloatA) -> tuple[FloatA, FloatA]:
        """Liquidate longs whose price was reached by `log_low`, shorts by `log_high`.

        A long in bin b is liquidated when the low reaches into its bin (bin >= bin of the
        low); a short when the high does (bin <= bin of the high). Returns the contracts
        liquidated (long, short)."""
        lo = self.bin_of(log_low)[:, None]
        hi = self.bin_of(log_high)[:, None]
        ml = self._bins[None, :] >= lo
        ms = self._bins[None, :] <= hi
        ql = np.where(ml, self.long, 0.0).sum(axis=1)
        qs = np.where(ms, self.short, 0.0).sum(axis=1)
        self.long[ml] = 0.0
        self.short[ms] = 0.0
        return ql, qs

    def totals(self) -> tuple[FloatA, FloatA]:
        """Open crowd contracts per symbol (long, short)."""
        return self.long.sum(axis=1), self.short.sum(axis=1)

    def near(self, log_price: FloatA, width: float) -> tuple[FloatA, FloatA]:
        """Contracts whose liquidation lies within `width` (log) of the price: long, short."""
        b = self.bin_of(log_price)[:, None]
        k = round(width / BIN_W)
        nl = np.where((self._bins >= b - k) & (self._bins < b), self.long, 0.0).sum(axis=1)
        ns = np.where((self._bins <= b + k) & (self._bins > b), self.short, 0.0).sum(axis=1)
        return nl, ns
