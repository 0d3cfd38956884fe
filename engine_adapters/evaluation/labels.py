"""The labeller: long flushes and short squeezes found in 1-minute market bars alone.

It never reads the engine's output (states, scores, alerts), so the scores it feeds measure
the engine against the market, not against itself. Rules (defaults in `LabelRules`, all
configurable from a TOML [labels] table; explained for traders in docs/evaluation.md):

  long flush at minute t, over the next `window_min` (30) minutes:
    lowest close / close(t) - 1   <= -max(ret_floor 3 %, ret_sigma 4 x sigma of 30-min returns)
    lowest OI / OI(t) - 1         <= -max(oi_floor 2 %, oi_sigma 3 x sigma of 30-min OI changes)
    quote volume                  >= volume_mult 3 x its usual level for those minutes of the day
    taker-sell share of volume    >= taker_share 0.6
  short squeeze: the mirror (highest close, OI still down, taker-buy share)
  market event: events of one direction whose onsets fall within `market_window_min` (60) of
    each other and whose symbols hold >= market_share 20 % of the universe's OI value (and at
    least `market_min_symbols` 2 symbols) are all marked market=True

Sigmas come from the trailing `history_days` (30) days of 1-minute changes scaled by
sqrt(window). With less history: at least `min_history_min` (1 day) of trailing data is
used when it exists; before that, a robust sigma (1.4826 x the median absolute deviation)
of the first `min_history_min` minutes of the series (a look-ahead, said in `how`; robust
so that the event inside that sample does not hide itself); a series shorter than that uses
all of itself. A sigma of 0 (OI that changes only every 5 minutes) leaves the floor alone. The usual
volume per minute of day is the median of the same minute on the trailing days when at
least `usual_min_days` (3) exist, else the median of every minute of the trailing window
(at least 1 h), else of the whole series.

An event's peak is the highest (flush) / lowest (squeeze) close between the first qualifying
minute and the extreme; its onset the close of the last minute from which at least
1 - `onset_frac` (90 %) of the peak-to-extreme move was still to come (so a noise top long
before the drop does not pull the onset early); its end the close of the extreme's minute.
drawdown is the signed move from the peak to the extreme, oi_change the signed move of OI from
onset to its low within a window after the extreme, buildup_led whether OI rose >=
`buildup_oi` (3 %) over the `buildup_min` (6 h) before onset.
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from engine_adapters.evaluation.bars import MINUTE_MS, dense
from engine_adapters.evaluation.scoring import LabelledEvent

DAY_MIN = 1440


@attrs.frozen(kw_only=True)
class LabelRules:
    """The labelling rules' parameters (module docstring)."""

    window_min: int = 30
    ret_floor: float = 0.03
    ret_sigma: float = 4.0
    oi_floor: float = 0.02
    oi_sigma: float = 3.0
    volume_mult: float = 3.0
    taker_share: float = 0.6
    history_days: int = 30
    min_history_min: int = DAY_MIN
    usual_min_days: int = 3
    market_share: float = 0.2
    market_window_min: int = 60
    market_min_symbols: int = 2
    buildup_min: int = 360
    buildup_oi: float = 0.03
    onset_frac: float = 0.1

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LabelRules:
        table = d.get("labels", d)
        names = {f.name: f for f in attrs.fields(cls)}
        bad = sorted(set(table) - set(names))
        if bad:
            raise ValueError(f"unknown labelling rule(s) {', '.join(bad)}; known: "
                             f"{', '.join(names)}")
        kw: dict[str, Any] = {}
        for k, v in table.items():
            want = int if names[k].type in ("int", int) else float
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{k} must be a number, got {v!r}")
            kw[k] = want(v)
        return cls(**kw)

    @classmethod
    def from_toml(cls, path: Path) -> LabelRules:
        try:
            return cls.from_dict(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"not valid TOML: {exc}") from None


def _trailing_sigma(x: np.ndarray, rules: LabelRules) -> tuple[np.ndarray, bool]:
    """Per minute: std of the 1-min changes `x` over the trailing history (module doc)."""
    n = len(x)
    x = np.nan_to_num(x)
    cs = np.concatenate([[0.0], np.cumsum(x)])
    cs2 = np.concatenate([[0.0], np.cumsum(x * x)])
    hist = rules.history_days * DAY_MIN
    i = np.arange(n)
    lo = np.maximum(0, i - hist)
    cnt = i - lo
    need = min(rules.min_history_min, n)
    ahead = cnt < need
    lo = np.where(ahead, 0, lo)
    hi = np.where(ahead, need, i)
    cnt = np.maximum(hi - lo, 1)
    mean = (cs[hi] - cs[lo]) / cnt
    sigma = np.sqrt(np.maximum((cs2[hi] - cs2[lo]) / cnt - mean * mean, 0.0))
    if ahead.any():
        # Too little history: a robust sigma (1.4826 x median absolute deviation) of the
        # first minutes, so the event itself, inside that sample, does not hide itself.
        head = x[:need]
        sigma[ahead] = 1.4826 * float(np.median(np.abs(head - np.median(head))))
    return sigma, bool(ahead.any())


def _usual_volume(v: np.ndarray, minute_of_day: np.ndarray, rules: LabelRules) -> np.ndarray:
    """Per minute: the usual quote volume of that minute of the day (module docstring)."""
    n = len(v)
    out = np.full(n, np.nan)
    pad = int(minute_of_day[0]) if n else 0
    rows = math.ceil((pad + n) / DAY_MIN)
    flat = np.full(rows * DAY_MIN, np.nan)
    flat[pad: pad + n] = v
    grid = flat.reshape(rows, DAY_MIN)
    whole = float(np.median(v)) if n else 0.0
    day = (np.arange(n) + pad) // DAY_MIN
    for d in range(rows):
        sel = np.flatnonzero(day == d)
        if not len(sel):
            continue
        start = max(0, int(sel[0]) - rules.history_days * DAY_MIN)
        trail = v[start: int(sel[0])]
        fallback = float(np.median(trail)) if len(trail) >= 60 else whole
        prev = grid[max(0, d - rules.history_days): d]
        if len(prev) >= rules.usual_min_days:
            counts = np.sum(~np.isnan(prev), axis=0)
            with warnings.catch_warnings():  # all-NaN columns (minutes never seen) are fine
                warnings.simplefilter("ignore", RuntimeWarning)
                med = np.nanmedian(prev, axis=0)
            per = np.where(counts >= rules.usual_min_days, med, fallback)
            out[sel] = per[minute_of_day[sel]]
        else:
            out[sel] = fallback
    return out


def _fwd(a: np.ndarray, w: int, how: str) -> np.ndarray:
    """Over (i, i+w] for each i (shorter at the end; NaN for the last minute)."""
    pad = np.concatenate([a[1:], np.full(w, np.nan)])
    view = sliding_window_view(pad, w)[: len(a)]
    with np.errstate(all="ignore"):
        if how == "min":
            return np.asarray(np.nanmin(np.where(np.isnan(view), np.inf, view), axis=1))
        if how == "max":
            return np.asarray(np.nanmax(np.where(np.isnan(view), -np.inf, view), axis=1))
        return np.asarray(np.nansum(view, axis=1))


def label_symbol(symbol: str, bars: np.ndarray, rules: LabelRules = LabelRules()
                 ) -> list[LabelledEvent]:
    """Flushes and squeezes of one symbol's bars (any minute order; gaps are filled)."""
    b = dense(bars)
    n = len(b)
    w = rules.window_min
    if n < 2:
        return []
    c, oi = b["close"], b["oi"]
    v, sell = b["quote_volume"], b["taker_sell_quote"]
    with np.errstate(all="ignore"):
        lr = np.diff(np.log(c), prepend=np.log(c[0]))
        loi = np.diff(np.log(oi), prepend=np.log(oi[0]))
    s_r, ahead_r = _trailing_sigma(lr, rules)
    s_oi, _ = _trailing_sigma(np.nan_to_num(loi), rules)
    scale = math.sqrt(w)
    thr_r = np.maximum(rules.ret_floor, rules.ret_sigma * s_r * scale)
    thr_oi = np.maximum(rules.oi_floor, rules.oi_sigma * s_oi * scale)
    mod = ((b["minute_ms"] // MINUTE_MS) % DAY_MIN).astype(np.intp)
    usual = _fwd(_usual_volume(v, mod, rules), w, "sum")
    vol = _fwd(v, w, "sum")
    sold = _fwd(sell, w, "sum")
    with np.errstate(all="ignore"):
        down = _fwd(c, w, "min") / c - 1
        up = _fwd(c, w, "max") / c - 1
        oi_low = _fwd(oi, w, "min") / oi - 1
        sell_share = np.where(vol > 0, sold / vol, 0.5)
        vol_x = np.where(usual > 0, vol / usual, np.inf)
    busy = vol_x >= rules.volume_mult
    oi_ok = oi_low <= -thr_oi
    events: list[LabelledEvent] = []
    for direction, move, share in (("long_flush", down, sell_share),
                                   ("short_squeeze", up, 1 - sell_share)):
        ok = ((move <= -thr_r) if direction == "long_flush" else (move >= thr_r)) \
            & oi_ok & busy & (share >= rules.taker_share)
        idx = np.flatnonzero(ok)
        if not len(idx):
            continue
        groups = np.split(idx, np.flatnonzero(np.diff(idx) > w) + 1)
        for g in groups:
            i0, i1 = int(g[0]), int(g[-1])
            span = c[i0: min(n, i1 + w + 1)]
            e = i0 + int(np.argmin(span) if direction == "long_flush" else np.argmax(span))
            pre = c[i0: e + 1]
            peak = i0 + int(np.argmax(pre) if direction == "long_flush" else np.argmin(pre))
            # onset: the last minute from which at least (1 - onset_frac) of the whole move
            # is still to come, so a noise top long before the drop does not pull it early
            full = c[e] / c[peak] - 1
            rest = c[e] / c[peak: e + 1] - 1
            on = peak + int(np.flatnonzero(rest / full >= 1 - rules.onset_frac)[-1]) \
                if full != 0 else peak
            oi_seg = oi[on: min(n, e + w + 1)]
            oi_change = float(np.nanmin(oi_seg) / oi[on] - 1) if len(oi_seg) else 0.0
            drawdown = float(c[e] / c[peak] - 1)
            back = max(0, on - rules.buildup_min)
            build = float(oi[on] / oi[back] - 1) if on > back else 0.0
            how = (f"{direction.replace('_', ' ')}: {w}-min move {drawdown:+.1%} vs "
                   f"{thr_r[i0]:.1%} (max({rules.ret_floor:.0%}, {rules.ret_sigma:g} sigma)), "
                   f"OI {oi_change:+.1%} vs -{thr_oi[i0]:.1%}, volume {vol_x[i0]:.1f}x usual, "
                   f"taker-{'sell' if direction == 'long_flush' else 'buy'} share "
                   f"{share[i0]:.2f}" + ("; short history: sigma partly look-ahead"
                                         if ahead_r and i0 < rules.min_history_min else ""))
            events.append(LabelledEvent(
                symbol=symbol, onset_ms=int(b["minute_ms"][on]) + MINUTE_MS,
                end_ms=int(b["minute_ms"][e]) + MINUTE_MS, direction=direction,
                drawdown=drawdown, oi_change=oi_change, how=how,
                buildup_led=build >= rules.buildup_oi))
    return sorted(events, key=lambda ev: ev.onset_ms)


def mark_market_events(events: list[LabelledEvent], weights: Mapping[str, float],
                       rules: LabelRules = LabelRules()) -> list[LabelledEvent]:
    """Set market=True on events that are part of a market-wide flush (module docstring)."""
    total = sum(weights.values())
    if total <= 0:
        return list(events)
    span = rules.market_window_min * MINUTE_MS
    market: set[int] = set()
    for direction in ("long_flush", "short_squeeze"):
        mine = [i for i, e in enumerate(events) if e.direction == direction]
        for k, i in enumerate(mine):
            t0 = events[i].onset_ms
            group = [j for j in mine[k:] if events[j].onset_ms - t0 <= span]
            syms = {events[j].symbol for j in group}
            share = sum(weights.get(s, 0.0) for s in syms) / total
            if len(syms) >= rules.market_min_symbols and share >= rules.market_share:
                market.update(group)
    return [attrs.evolve(e, market=True, how=e.how + "; market-wide") if i in market else e
            for i, e in enumerate(events)]


def label_bars(bars: Mapping[str, np.ndarray], rules: LabelRules = LabelRules()
               ) -> list[LabelledEvent]:
    """Every symbol's events, market-wide ones marked (weights: mean OI value)."""
    events: list[LabelledEvent] = []
    weights: dict[str, float] = {}
    for sym in sorted(bars):
        events += label_symbol(sym, bars[sym], rules)
        ov = bars[sym]["oi_value"]
        ov = ov[~np.isnan(ov)]
        weights[sym] = float(ov.mean()) if len(ov) else 0.0
    events.sort(key=lambda e: (e.onset_ms, e.symbol))
    return mark_market_events(events, weights, rules)
