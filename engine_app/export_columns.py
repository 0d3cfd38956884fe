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
The bars are the one-minute index `run` and `live` write (`engine_app/bars_port.py`).

Where the data dir holds the core's evidence records (DIR/evidence), each row also gets the
engine's own per-tick facts (`EV_COLUMNS`, NaN where the record's flags say unknown or a
dir written before them has none): `ev_price` (mid, mark without a book), `ev_mark`,
`ev_index`, `ev_oi`, `ev_funding_per_hour` (fraction), `ev_liq_long`/`ev_liq_short` (USD, the
decaying sum of the liquidation window), `ev_liq_long_tick`/`ev_liq_short_tick` (this tick),
`ev_move_pct` and `ev_move_sigma` (price vs its move-window average, in % and in sigma),
`ev_oi_change_pct` (OI vs its fast-window average) and `ev_flags` (EvidenceFlag bits), and
the windows those figures are measured over, in seconds, from the config in the log header:
`ev_move_window_s`, `ev_oi_window_s`, `ev_liq_window_s` — the same numbers, under the same
names, as the `move_window_s`, `oi_window_s`, `liq_window_s` of each alert's evidence JSON
(`engine_adapters.evidence_text`) and the windows the live view and `report` name.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine_adapters.evaluation.bars import MINUTE_MS, dense, load_bars
from engine_adapters.storage.evidence_store import evidence_files
from engine_adapters.storage.log_reader import log_dir_of, scan_log
from engine_core import evidence as evr
from engine_core.config import Config

TICK_MS = 250
COLUMNS = ("mid", "mark", "index", "oi", "funding", "liq_long_1m", "liq_short_1m",
           "move_1m_pct", "oi_change_1m_pct")
EV_COLUMNS = ("ev_price", "ev_mark", "ev_index", "ev_oi", "ev_funding_per_hour", "ev_liq_long",
              "ev_liq_short", "ev_liq_long_tick", "ev_liq_short_tick", "ev_move_pct",
              "ev_move_sigma", "ev_oi_change_pct", "ev_flags", "ev_move_window_s",
              "ev_oi_window_s", "ev_liq_window_s")
EV_DTYPE = np.dtype([("tick", "<u8"), ("token", "<u2"), ("rec_type", "u1"), ("flags", "<u2"),
                      ("price", "<u8"), ("mark", "<i2"), ("index", "<i2"), ("oi", "<u8"),
                      ("fph", "<i4"), ("llt", "<u4"), ("lst", "<u4"), ("llw", "<u4"),
                      ("lsw", "<u4"), ("sigma", "<i2"), ("move", "<i2"), ("doi", "<i2"),
                      ("reserved", "u1"), ("crc", "<u4")])
assert EV_DTYPE.itemsize == 64


def market_columns(data_dir: Path, symbols: tuple[str, ...], tick_id: np.ndarray,
                   token_id: np.ndarray) -> dict[str, np.ndarray]:
    """One float column per name of `COLUMNS`, aligned with the records given."""
    n = len(tick_id)
    out = {c: np.full(n, np.nan) for c in COLUMNS + EV_COLUMNS}
    if n and evidence_files(data_dir):
        out.update(evidence_columns(data_dir, tick_id, token_id))
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


def evidence_array(data_dir: Path, tokens: tuple[int, ...] | None = None) -> np.ndarray:
    """The data dir's evidence records as one structured array (`EV_DTYPE`), in file order;
    only the records of `tokens` when given (each file is mapped, not read whole)."""
    parts = []
    for path in evidence_files(data_dir):
        n = path.stat().st_size // EV_DTYPE.itemsize
        if n == 0:
            continue
        ev = np.memmap(path, dtype=EV_DTYPE, mode="r", shape=(n,))
        parts.append(np.array(ev if tokens is None else ev[np.isin(ev["token"], tokens)]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=EV_DTYPE)


def evidence_windows(data_dir: Path) -> evr.EvidenceWindows | None:
    """The windows of the data dir's evidence: the config in its (first) log header."""
    for s, _data in scan_log(log_dir_of(Path(data_dir))):
        return evr.EvidenceWindows.from_config(Config.from_dict(json.loads(s.header.config_json)))
    return None


def evidence_columns(data_dir: Path, tick_id: np.ndarray, token_id: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """The `EV_COLUMNS` of the records given, from DIR/evidence (NaN where none or unknown)."""
    ev = evidence_array(data_dir)
    key = ev["tick"].astype(np.uint64) * np.uint64(65536) + ev["token"].astype(np.uint64)
    order = np.argsort(key, kind="stable")
    skey = key[order]
    want = tick_id.astype(np.uint64) * np.uint64(65536) + token_id.astype(np.uint64)
    pos = np.minimum(np.searchsorted(skey, want), max(len(skey) - 1, 0))
    hit = (skey[pos] == want) if len(skey) else np.zeros(len(want), dtype=bool)
    e = ev[order][pos]
    flags = e["flags"].astype(np.int64)

    def unknown(*fl: evr.EvidenceFlag) -> np.ndarray:
        m = ~hit
        for f in fl:
            m = m | ((flags & int(f)) != 0)
        return m

    price = e["price"] / evr.PRICE_SCALE
    cols = {
        "ev_price": (price, unknown(evr.EvidenceFlag.NO_PRICE)),
        "ev_mark": (price * (1 + e["mark"] / evr.REL_SCALE),
                    unknown(evr.EvidenceFlag.NO_PRICE, evr.EvidenceFlag.NO_MARK)),
        "ev_index": (price * (1 + e["index"] / evr.REL_SCALE),
                     unknown(evr.EvidenceFlag.NO_PRICE, evr.EvidenceFlag.NO_MARK)),
        "ev_oi": (e["oi"] / evr.OI_SCALE, unknown(evr.EvidenceFlag.NO_OI)),
        "ev_funding_per_hour": (e["fph"] / evr.FUNDING_HOUR_SCALE,
                                unknown(evr.EvidenceFlag.NO_MARK)),
        "ev_liq_long": (e["llw"].astype(np.float64), unknown()),
        "ev_liq_short": (e["lsw"].astype(np.float64), unknown()),
        "ev_liq_long_tick": (e["llt"].astype(np.float64), unknown()),
        "ev_liq_short_tick": (e["lst"].astype(np.float64), unknown()),
        "ev_move_pct": (e["move"] / evr.FRACTION_SCALE * 100, unknown(evr.EvidenceFlag.NO_PRICE)),
        "ev_move_sigma": (e["sigma"] / evr.SIGMA_SCALE,
                          unknown(evr.EvidenceFlag.NO_PRICE, evr.EvidenceFlag.NO_SIGMA)),
        "ev_oi_change_pct": (e["doi"] / evr.FRACTION_SCALE * 100,
                             unknown(evr.EvidenceFlag.NO_OI)),
        "ev_flags": (flags.astype(np.float64), unknown()),
    }
    w = evidence_windows(data_dir)
    for name, secs in (("ev_move_window_s", None if w is None else w.move_s),
                       ("ev_oi_window_s", None if w is None else w.oi_change_s),
                       ("ev_liq_window_s", None if w is None else w.liquidation_s)):
        cols[name] = (np.full(len(want), np.nan if secs is None else secs), unknown())
    return {name: np.where(bad, np.nan, v.astype(np.float64)) for name, (v, bad) in cols.items()}
