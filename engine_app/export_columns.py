"""Market columns of `export`: each record's price, OI, funding and liquidations, from DIR/bars.

A record of tick T (its minute M = the minute holding T's end) gets the values of the last
*closed* minute bar before M, so an exported row never shows what happened after its tick:

    mid, mark, index     last book mid, mark and index price of minute M - 1
    oi                   last open interest (contracts) known by the end of M - 1
    funding              last funding rate of one interval (the record's `funding_rate` x 1e8
                         is the same rate as the engine saw it, per tick)
    liq_long_1m          notional of longs / shorts liquidated in minute M - 1 (lower bounds)
    liq_short_1m
    move_1m_pct          close of M - 1 against the close of M - 2, in %
    oi_change_1m_pct     OI at the end of M - 1 against the end of M - 2, in %

NaN where the data dir has no bars, the symbol has none yet, or the value was never seen.
The bars are the one-minute index `run` and `live` write (`engine_app/bars_port.py`); the
engine's own per-tick evidence, when the log carries it, is finer than this.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine_adapters.evaluation.bars import MINUTE_MS, dense, load_bars

TICK_MS = 250
COLUMNS = ("mid", "mark", "index", "oi", "funding", "liq_long_1m", "liq_short_1m",
           "move_1m_pct", "oi_change_1m_pct")


def market_columns(data_dir: Path, symbols: tuple[str, ...], tick_id: np.ndarray,
                   token_id: np.ndarray) -> dict[str, np.ndarray]:
    """One float column per name of `COLUMNS`, aligned with the records given."""
    n = len(tick_id)
    out = {c: np.full(n, np.nan) for c in COLUMNS}
    folder = Path(data_dir) / "bars"
    if n == 0 or not folder.is_dir():
        return out
    bars = load_bars(folder)
    # the minute holding each tick's last millisecond (a tick ends at tick_id * 250 ms),
    # minus one: the last bar closed before the tick
    want = (tick_id.astype(np.int64) * TICK_MS - 1) // MINUTE_MS * MINUTE_MS - MINUTE_MS
    for tok, sym in enumerate(symbols):
        arr = bars.get(sym)
        if arr is None or not len(arr):
            continue
        b = dense(arr)
        rows = np.flatnonzero(token_id == tok)
        pos = (want[rows] - int(b["minute_ms"][0])) // MINUTE_MS
        ok = (pos >= 0) & (pos < len(b))
        r, p = rows[ok], pos[ok]
        for col, src in (("mid", "mid"), ("mark", "mark"), ("index", "index"), ("oi", "oi"),
                         ("funding", "funding"), ("liq_long_1m", "liq_long_quote"),
                         ("liq_short_1m", "liq_short_quote")):
            out[col][r] = b[src][p]
        prev = p - 1
        has = prev >= 0
        close, oi = b["close"], b["oi"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["move_1m_pct"][r[has]] = (close[p[has]] / close[prev[has]] - 1) * 100
            out["oi_change_1m_pct"][r[has]] = (oi[p[has]] / oi[prev[has]] - 1) * 100
    return out
