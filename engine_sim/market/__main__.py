"""`python -m engine_sim.market KIND`: write one scenario's capture and ground truth."""

from __future__ import annotations

import argparse
import sys
import time

from engine_sim.market.run import generate, write_capture, write_truth
from engine_sim.market.scenarios import KINDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine_sim.market",
                                 description="Generate a mechanistic-market capture + truth.")
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--depth-ms", type=int, default=500, choices=(100, 250, 500))
    ap.add_argument("--workers", type=int, default=2, help="processes emitting the capture")
    ap.add_argument("--out", required=True, help="capture file (gzip)")
    ap.add_argument("--truth", required=True, help="ground-truth JSON")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    run = generate(a.kind, seed=a.seed, hours=a.hours, n_symbols=a.symbols, depth_ms=a.depth_ms)
    t1 = time.perf_counter()
    write_capture(run, a.out, workers=a.workers)
    write_truth(run, a.truth)
    t2 = time.perf_counter()
    print(f"{a.kind} seed {a.seed}: {len(run.symbols)} symbols x {a.hours} h, "
          f"{len(run.truth)} truth events; simulate {t1 - t0:.1f} s, emit {t2 - t1:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
