"""Market stories as time paths of the crowd's behaviour and of outside news shocks.

A scenario never sets a price, a funding rate or an open-interest figure directly: it sets
what traders do (how fast the leveraged crowd opens and closes positions, on which side,
with which leverage mix, how hard it lifts offers) and when news moves the common factor or
one symbol. Prices, liquidations, OI, premium and funding follow from the mechanics in
`model.py`. Every random choice comes from the seeded Generator passed in.

Kinds: "calm" (long noisy calm), "cascade" (hours of build-up on most symbols ending in a
market-wide cascade after a factor shock), "flush" (build-up and an idiosyncratic shock on
one symbol), "squeeze" (short crowding and an upward shock), "fizzle" (build-up that
deleverages slowly, no shock).
"""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt

FloatA = npt.NDArray[np.float64]

KINDS = ("calm", "cascade", "flush", "squeeze", "fizzle")


@attrs.frozen(kw_only=True)
class Drivers:
    """Per second (rows) and symbol (columns) behaviour of the crowd, plus news shocks."""

    open_mult: FloatA  # opening rate vs calm
    inflow_h: FloatA  # extra crowd opening, as a fraction of the start OI per hour
    long_share: FloatA  # share of newly opened crowd contracts that are long
    crowding: FloatA  # 0 = calm leverage mix, 1 = crowded (high-leverage) mix
    close_mult: FloatA  # closing rate vs calm
    crowd_flow: FloatA  # net aggressive buying of the crowd, -1 .. 1
    shock_factor: FloatA  # per-second log increments of the market factor (news)
    shock_idio: FloatA  # per-second log increments of single symbols (news)
    #: Symbols (column indices) whose build-up phase is part of the story, with its span (s).
    buildups: tuple[tuple[int, int, int], ...]  # (symbol index, start s, end s)
    kind: str


def _ramp(t: FloatA, t0: float, t1: float) -> FloatA:
    """0 before t0, rising linearly to 1 at t1, 1 after."""
    return np.clip((t - t0) / max(t1 - t0, 1.0), 0.0, 1.0)


def _shock(n_s: int, at: int, dur: int, size: float) -> FloatA:
    out = np.zeros(n_s)
    end = min(n_s, at + dur)
    if at < n_s and end > at:
        out[at:end] = size / (end - at)
    return out


def build(kind: str, n_seconds: int, daily_vol: FloatA, rng: np.random.Generator) -> Drivers:
    """The drivers of one story over `n_seconds` for symbols with these daily vols."""
    if kind not in KINDS:
        raise ValueError(f"unknown scenario {kind!r}; choose one of {', '.join(KINDS)}")
    n = len(daily_vol)
    t = np.arange(n_seconds, dtype=np.float64)[:, None]
    ones = np.ones((n_seconds, n))
    open_mult, close_mult, inflow = ones.copy(), ones.copy(), np.zeros((n_seconds, n))
    long_share, crowding, crowd_flow = 0.5 * ones, 0.15 * ones, np.zeros((n_seconds, n))
    shock_f, shock_i = np.zeros(n_seconds), np.zeros((n_seconds, n))
    buildups: list[tuple[int, int, int]] = []
    if kind == "calm":
        return Drivers(open_mult=open_mult, inflow_h=inflow, long_share=long_share,
                       crowding=crowding, close_mult=close_mult, crowd_flow=crowd_flow,
                       shock_factor=shock_f, shock_idio=shock_i, buildups=(), kind=kind)
    # Build-up span: starts after a calm stretch, lasts about half the run.
    b0 = int(n_seconds * rng.uniform(0.12, 0.2))
    b1 = int(n_seconds * rng.uniform(0.6, 0.7))
    if kind in ("cascade", "fizzle"):
        who = np.flatnonzero(rng.random(n) < 0.8)
        if len(who) < max(2, n // 2):
            who = rng.permutation(n)[: max(2, (n + 1) // 2)]
    else:
        who = rng.permutation(n)[:1] if kind == "flush" else rng.permutation(n)[: max(1, n // 4)]
    side = -1.0 if kind == "squeeze" else 1.0
    for s in sorted(int(x) for x in who):
        start = b0 + int(rng.integers(0, max(1, (b1 - b0) // 5)))
        ramp = _ramp(t[:, 0], start, b1)
        strength = rng.uniform(0.6, 1.0)
        open_mult[:, s] += ramp * strength * rng.uniform(1.0, 2.0)
        # New leveraged money: 1.5-4 % of OI per hour at the peak of the build-up.
        inflow[:, s] = ramp * strength * rng.uniform(0.015, 0.04)
        long_share[:, s] += side * ramp * strength * rng.uniform(0.12, 0.2)
        crowding[:, s] += ramp * strength * rng.uniform(0.5, 0.8)
        crowd_flow[:, s] += side * ramp * strength * rng.uniform(0.15, 0.3)
        buildups.append((s, start, b1))
    if kind == "fizzle":
        # The crowd loses conviction: opening returns to calm, closing speeds up for hours.
        d1 = b1 + int((n_seconds - b1) * 0.9)
        fade = _ramp(t[:, 0], b1, b1 + 0.25 * (d1 - b1))[:, None]
        open_mult = open_mult * (1.0 - fade) + fade
        inflow = inflow * (1.0 - fade)
        crowd_flow = crowd_flow * (1.0 - fade)
        long_share = long_share * (1.0 - fade) + 0.5 * fade
        close_mult = close_mult + fade * rng.uniform(2.0, 3.0)
    else:
        at = b1 + int(rng.integers(0, max(1, int(0.05 * n_seconds))))
        dur = int(rng.integers(20, 120))
        if kind == "cascade":
            # News on the whole market: a fraction of a day's factor volatility in a minute.
            size = -rng.uniform(0.6, 1.1) * float(daily_vol[0])
            shock_f = _shock(n_seconds, at, dur, size)
        else:
            for s, _, _ in buildups:
                size = -side * rng.uniform(0.5, 0.9) * float(daily_vol[s])
                shock_i[:, s] = _shock(n_seconds, at + int(rng.integers(0, 30)), dur, size)
        # After the news the crowd stops adding and flow turns with the market.
        after = _ramp(t[:, 0], at, at + 600)[:, None]
        open_mult = open_mult * (1.0 - after) + after
        inflow = inflow * (1.0 - after)
        crowd_flow = crowd_flow * (1.0 - after)
    return Drivers(open_mult=open_mult, inflow_h=inflow, long_share=np.clip(long_share, 0.05, 0.95),
                   crowding=np.clip(crowding, 0.0, 1.0), close_mult=close_mult,
                   crowd_flow=np.clip(crowd_flow, -1.0, 1.0), shock_factor=shock_f,
                   shock_idio=shock_i, buildups=tuple(buildups), kind=kind)
