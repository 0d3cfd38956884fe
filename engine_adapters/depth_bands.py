"""Book depth as bands around the mid: Binance `@depth20` frames and archive `depth` lines.

The engine's liquidity leg reads depth as cumulative quote notional within ± x bps of the mid
on each side (venue-neutral). Two sources give it:

- Live: `<sym>@depth20@100ms` on the /public route, a partial book of the 20 best levels per
  side (`b`/`a` as [price, qty] decimal strings, `T` transaction time, `E` event time, `u`
  the last update id). `depth20_bands` sums `price * qty` of the levels within each band of
  `LIVE_BANDS_BPS` (10, 25, 50, 100 bps of the mid). Twenty levels may not reach the widest
  band on a thin book or in a fast market: `reach_bps` says how far the shorter side reached,
  and a band beyond it is a lower bound (the engine may treat it as such).
- Archive: `bookDepth` snapshots as capture lines `{"channel": "depth", "bands": [[pct,
  depth, notional], ...]}` (docs/capture-format.md), where pct is ±1..5 % (negative = bids)
  and the notional is already cumulative from the mid: `archive_bands` turns pct into bps
  (1 % = 100 bps) and pairs the two sides of each edge.

Both return an `engine_core.events.DepthReceived`: the edges in bps (ascending), the bid and
ask notional within each edge, the mid (0.0 for the archive, which gives none) and the reach
(0.0 = complete bands, as for the archive). Structure is checked here (shapes, decimal
strings); values (NaN, <= 0) are checked once more where events are validated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine_core.events import DepthReceived

#: The bands of the live depth (bps of the mid). 20 levels reach ~10-100 bps on majors.
LIVE_BANDS_BPS: tuple[int, ...] = (10, 25, 50, 100)


class DepthError(ValueError):
    """A depth payload did not have the expected shape; the message names the field."""


def _levels(d: dict[str, Any], key: str) -> list[tuple[float, float]]:
    side = d.get(key)
    if type(side) is not list or not side:
        raise DepthError(f"depth: `{key}` must be a non-empty list of [price, qty], "
                         f"got {str(side)[:40]}")
    out = []
    for i, lv in enumerate(side):
        if type(lv) is not list or len(lv) < 2 or type(lv[0]) is not str \
                or type(lv[1]) is not str:
            raise DepthError(f"depth: `{key}[{i}]` must be [\"price\", \"qty\"], got {lv!r:.40}")
        try:
            out.append((float(lv[0]), float(lv[1])))
        except ValueError:
            raise DepthError(f"depth: `{key}[{i}]` is not a decimal pair: {lv!r:.40}") from None
    return out


def bands_of_levels(bids: Sequence[tuple[float, float]], asks: Sequence[tuple[float, float]],
                    edges_bps: Sequence[int] = LIVE_BANDS_BPS
                    ) -> tuple[float, tuple[float, ...], tuple[float, ...], float]:
    """(mid, bid notional per edge, ask notional per edge, reach in bps) of book levels."""
    best_bid = max(p for p, _ in bids)
    best_ask = min(p for p, _ in asks)
    mid = (best_bid + best_ask) / 2
    bid_n = tuple(sum(p * q for p, q in bids if p >= mid * (1 - e / 10_000)) for e in edges_bps)
    ask_n = tuple(sum(p * q for p, q in asks if p <= mid * (1 + e / 10_000)) for e in edges_bps)
    reach = min((mid - min(p for p, _ in bids)) / mid,
                (max(p for p, _ in asks) - mid) / mid) * 10_000 if mid > 0 else 0.0
    return mid, bid_n, ask_n, reach


def depth20_bands(data: dict[str, Any], edges_bps: Sequence[int] = LIVE_BANDS_BPS
                  ) -> DepthReceived:
    """The bands of one partial-depth payload (the `data` of a combined frame)."""
    if type(data) is not dict:
        raise DepthError(f"depth: payload must be an object, got {type(data).__name__}")
    sym = data.get("s")
    ts = data.get("T", data.get("E"))
    if type(sym) is not str or not sym:
        raise DepthError(f"depth: `s` must be the symbol, got {sym!r:.40}")
    if type(ts) is not int:
        raise DepthError(f"depth: `T` (or `E`) must be an integer time, got {ts!r:.40}")
    bids, asks = _levels(data, "b"), _levels(data, "a")
    mid, bid_n, ask_n, reach = bands_of_levels(bids, asks, edges_bps)
    return DepthReceived(symbol=sym, exchange_ts=ts, mid=mid, edges_bps=tuple(edges_bps),
                         bid_notional=bid_n, ask_notional=ask_n, reach_bps=max(reach, 0.0))


def archive_bands(symbol: str, ts: int, bands: object) -> DepthReceived:
    """The bands of one archive `depth` line (`[[pct, depth, notional], ...]`)."""
    if type(bands) is not list or not bands:
        raise DepthError(f"depth line: `bands` must be a non-empty list, got {bands!r:.40}")
    bid: dict[int, float] = {}
    ask: dict[int, float] = {}
    for i, row in enumerate(bands):
        if type(row) is not list or len(row) != 3 or not all(
                type(v) in (int, float) for v in row):
            raise DepthError(f"depth line: `bands[{i}]` must be [pct, depth, notional], "
                             f"got {row!r:.40}")
        pct, depth, notional = (float(v) for v in row)
        if pct == 0:
            raise DepthError(f"depth line: `bands[{i}]` has percentage 0")
        edge = round(abs(pct) * 100)
        if depth < 0:
            raise DepthError(f"depth line: `bands[{i}]` has a negative depth {depth}")
        (bid if pct < 0 else ask)[edge] = notional
    edges = tuple(sorted(set(bid) & set(ask)))
    if not edges:
        raise DepthError("depth line: no percentage has both a bid (-p) and an ask (+p) band")
    return DepthReceived(symbol=symbol, exchange_ts=ts, edges_bps=edges,
                         bid_notional=tuple(bid[e] for e in edges),
                         ask_notional=tuple(ask[e] for e in edges))
