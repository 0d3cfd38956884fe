"""Generate one scenario run: mechanics, ground truth and its Binance-shaped capture.

    run = generate("cascade", seed=7, hours=6, n_symbols=10)
    write_capture(run, "cap.jsonl.gz")      # capture format, gzip by the name
    write_truth(run, "truth.json")           # scoring.LabelledEvent list (dump_events)

`python -m engine_sim.market KIND --seed N --hours H --symbols S --out CAP --truth JSON`
does the same from a shell. Same arguments, same bytes.
"""

from __future__ import annotations

import gzip
import multiprocessing
import shutil
from pathlib import Path

import attrs
import numpy as np

from engine_adapters.evaluation.scoring import LabelledEvent, dump_events
from engine_sim.market.emit import HIST_DAYS, HIST_PERIOD_MS, Emitter
from engine_sim.market.model import DEFAULT_MECHANICS, MarketPath, Mechanics, simulate
from engine_sim.market.profiles import SymbolProfile, profiles_for
from engine_sim.market.scenarios import Drivers, build
from engine_sim.market.truth import ground_truth

#: 2026-01-05 00:00:00 UTC: the default start of a run (a funding time of every interval).
DEFAULT_START_MS = 1_767_571_200_000


@attrs.frozen(kw_only=True)
class SimRun:
    """One generated run: inputs, the per-second market, its drivers and ground truth."""

    kind: str
    seed: int
    profiles: tuple[SymbolProfile, ...]
    start_ms: int
    end_ms: int
    path: MarketPath
    drivers: Drivers
    truth: tuple[LabelledEvent, ...]
    oi_history: np.ndarray  # 30 days of 5-min OI before the start (rows), per symbol
    depth_ms: int

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(p.symbol for p in self.profiles)


def _oi_history(path: MarketPath, drivers: Drivers, rng: np.random.Generator) -> np.ndarray:
    """30 days of 5-min OI ending at the run's first OI: a random walk (1.5 %/day) and, for
    symbols whose build-up is part of the story, 2-6 % of growth over the last two days."""
    n_pts = HIST_DAYS * 86_400_000 // HIST_PERIOD_MS
    n = path.oi.shape[1]
    steps = rng.standard_normal((n_pts, n)) * 0.015 / np.sqrt(288.0)
    walk = np.cumsum(steps[::-1], axis=0)[::-1] - steps[-1]  # 0 at the last point
    grow = np.zeros(n)
    for s, _, _ in drivers.buildups:
        grow[s] = rng.uniform(0.02, 0.06)
    ramp = np.clip((np.arange(n_pts) - (n_pts - 576)) / 576.0, 0.0, 1.0)[:, None]
    log_oi = np.log(path.oi[0])[None, :] + walk - grow[None, :] * (1.0 - ramp)
    return np.asarray(np.exp(log_oi))


def generate(kind: str, *, seed: int, hours: float = 6.0, n_symbols: int = 10,
             start_ms: int = DEFAULT_START_MS, depth_ms: int = 100,
             mech: Mechanics = DEFAULT_MECHANICS) -> SimRun:
    """Simulate one story; everything random comes from `numpy.random.default_rng(seed)`."""
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    rng = np.random.default_rng(seed)
    profiles = profiles_for(n_symbols)
    n_s = round(hours * 3600)
    daily = np.array([p.vol_annual / np.sqrt(365.0) for p in profiles])
    drivers = build(kind, n_s, daily, rng)
    path = simulate(profiles, drivers, n_s, rng, mech, start_s=start_ms // 1000)
    truth = ground_truth(profiles, path, drivers, start_ms)
    return SimRun(kind=kind, seed=seed, profiles=profiles, start_ms=start_ms,
                  end_ms=start_ms + n_s * 1000, path=path, drivers=drivers,
                  truth=tuple(truth), oi_history=_oi_history(path, drivers, rng),
                  depth_ms=depth_ms)


_RUN: SimRun | None = None  # the run a forked chunk worker emits (set before forking)


def _chunk(args: tuple[int, int, str]) -> str:
    t0, t1, part = args
    run = _RUN
    assert run is not None
    em = Emitter(run.profiles, run.path, run.start_ms, run.seed, depth_ms=run.depth_ms,
                 oi_history=run.oi_history)
    with gzip.open(part, "wb", compresslevel=1) as f:
        buf: list[bytes] = []
        for line in em.lines(t0, t1):
            buf.append(line)
            if len(buf) >= 4096:
                f.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            f.write(b"\n".join(buf) + b"\n")
    return part


def write_capture(run: SimRun, out: Path | str, workers: int = 1, chunk_s: int = 1800) -> None:
    """Write the run's capture as gzip (whatever the name), made in chunks of time by
    `workers` processes and concatenated (gzip members concatenate into one stream).
    The bytes do not depend on `workers`."""
    global _RUN
    out = Path(out)
    n_s = run.path.log_mid.shape[0]
    size = chunk_s
    spans = [(t, min(t + size, n_s), f"{out}.part{i}") for i, t in enumerate(range(0, n_s, size))]
    _RUN = run
    try:
        if workers > 1 and len(spans) > 1:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers) as pool:
                parts = pool.map(_chunk, spans)
        else:
            parts = [_chunk(a) for a in spans]
    finally:
        _RUN = None
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
            Path(part).unlink()


def write_truth(run: SimRun, out: Path | str) -> None:
    """Write the ground truth as a JSON list of scoring.LabelledEvent."""
    dump_events(run.truth, out)
