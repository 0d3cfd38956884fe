"""Ground truth of a simulated run, defined from the mechanics alone (never from the engine).

Per symbol and side, the crowd book's forced liquidations (`MarketPath.liq_book_*`: only
positions whose liquidation price the price reached; background prints do not count):
  onset  = the first second at which the liquidations of the last `ONSET_WINDOW_S` seconds
           reach `ONSET_SHARE` of that side's open crowd contracts (the liquidatable book);
  kept   = only if the event's liquidations (onset .. end) reach `MATERIAL_SHARE` of the
           side's book at onset (smaller flurries are the calm's normal noise);
  end    = the first second, at least `MIN_LEN_S` after onset, at which the liquidations of
           the last `END_WINDOW_S` seconds fall below `END_SHARE` of the side's book at onset
           (capped at `MAX_LEN_S` or the end of the run);
  direction = "long_flush" for longs, "short_squeeze" for shorts;
  drawdown  = signed return from the mid `PRE_S` before onset to the extreme in [onset, end];
  oi_change = OI at end / OI `PRE_S` before onset - 1;
  market    = at least max(3, 30 % of the symbols) symbols start an event of the same
              direction within `MARKET_WINDOW_S` of this onset;
  buildup_led = the scenario ran a crowd build-up on the symbol that began before onset and
              ended no more than `BUILDUP_GAP_S` before it.
"""

from __future__ import annotations

import numpy as np

from engine_adapters.evaluation.scoring import LabelledEvent
from engine_sim.market.model import MarketPath
from engine_sim.market.profiles import SymbolProfile
from engine_sim.market.scenarios import Drivers

ONSET_WINDOW_S = 10
ONSET_SHARE = 0.01
END_WINDOW_S = 60
END_SHARE = 0.001
MATERIAL_SHARE = 0.05
MIN_LEN_S = 60
MAX_LEN_S = 7200
PRE_S = 60
MARKET_WINDOW_S = 600
BUILDUP_GAP_S = 1800
HOW = "simulation ground truth"


def _trailing(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(1, len(x) + 1)
    return np.asarray(c[i] - c[np.maximum(i - w, 0)])


def _events_of(liq: np.ndarray, book: np.ndarray) -> list[tuple[int, int]]:
    n_s = len(liq)
    on = _trailing(liq, ONSET_WINDOW_S)
    off = _trailing(liq, END_WINDOW_S)
    out: list[tuple[int, int]] = []
    t = 0
    while t < n_s:
        hits = np.flatnonzero(on[t:] >= ONSET_SHARE * np.maximum(book[t:], 1e-12))
        if len(hits) == 0:
            break
        # The onset is the first second of the window that crossed the share.
        cross = t + int(hits[0])
        first = cross - ONSET_WINDOW_S + 1 + int(np.flatnonzero(
            liq[max(cross - ONSET_WINDOW_S + 1, 0):cross + 1] > 0)[0])
        onset = max(first, 0)
        base = book[onset]
        lo = onset + MIN_LEN_S
        quiet = np.flatnonzero(off[lo:] < END_SHARE * base) if lo < n_s else np.array([])
        end = min(lo + int(quiet[0]) if len(quiet) else n_s - 1, onset + MAX_LEN_S, n_s - 1)
        if liq[onset:end + 1].sum() >= MATERIAL_SHARE * base:
            out.append((onset, end))
        t = end + 1
    return out


def ground_truth(profiles: tuple[SymbolProfile, ...], path: MarketPath, drivers: Drivers,
                 start_ms: int) -> list[LabelledEvent]:
    """The labelled events of one run, in onset order (module docstring for definitions)."""
    raw: list[tuple[int, int, int, str]] = []
    for s in range(len(profiles)):
        for side, liq, book in (("long_flush", path.liq_book_long[:, s], path.crowd_long[:, s]),
                                ("short_squeeze", path.liq_book_short[:, s],
                                 path.crowd_short[:, s])):
            # The book before this second's liquidation is what could be liquidated.
            before = book + liq
            for onset, end in _events_of(liq, before):
                raw.append((onset, end, s, side))
    need = max(3, int(np.ceil(0.3 * len(profiles))))
    events: list[LabelledEvent] = []
    for onset, end, s, side in sorted(raw):
        peers = {s2 for o2, _, s2, d2 in raw if d2 == side and abs(o2 - onset) <= MARKET_WINDOW_S}
        pre = max(onset - PRE_S, 0)
        px = np.exp(path.log_mid[pre:end + 1, s])
        ref = px[0]
        ext = px[PRE_S if onset >= PRE_S else 0:].min() if side == "long_flush" \
            else px[PRE_S if onset >= PRE_S else 0:].max()
        led = any(b_s == s and b0 < onset <= b1 + BUILDUP_GAP_S
                  for b_s, b0, b1 in drivers.buildups)
        events.append(LabelledEvent(
            symbol=profiles[s].symbol, onset_ms=start_ms + onset * 1000,
            end_ms=start_ms + end * 1000, direction=side, drawdown=float(ext / ref - 1.0),
            oi_change=float(path.oi[end, s] / path.oi[pre, s] - 1.0), how=HOW,
            market=len(peers) >= need, buildup_led=led))
    return events
