"""Memory over a long run: RSS at the start and end of a 1-hour-equivalent virtual-clock session.

    .venv/bin/python benchmarks/bench_memory.py [--symbols 10] [--hours 1.0]

The simulated market is generated lazily and fed message by message through the same
`Session` the live path uses (virtual clock = receive times, as `run` does), writing the
real log, journal and alerts into a temporary data dir. Target (issue 5): memory flat over a
long run — the shell holds at most one tick of events, the core a fixed state per symbol.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import engine_core as ec
from engine_adapters.capture import RestLine, WsLine
from engine_app.bootstrap import open_session, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_sim.simulation import MarketSimulator, Regime, Segment
from engine_sim.synthetic_capture import capture_items


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    symbols = sorted(f"S{i:02d}USDT" for i in range(args.symbols))
    busy = Regime(activity=1.0, vol_bps_s=4.0, liq_prob=0.2, liq_size=0.05)
    sim = MarketSimulator(symbols, [Segment(name="busy", seconds=args.hours * 3600,
                                            leader=busy, bystander=busy)], seed=9)
    with tempfile.TemporaryDirectory() as tmp:
        s = open_session(DataDir(Path(tmp)), ec.Config(), symbols,
                         engine_version=ENGINE_VERSION, fsync="none")
        start = rss_mib()
        samples = [start]
        t0 = time.perf_counter()
        mark = [sim.start_ms + 600_000]

        def sampled(items: Iterator[WsLine | RestLine]) -> Iterator[WsLine | RestLine]:
            for item in items:  # the same source `run` reads, sampled every 10 simulated min
                if item.recv_ms >= mark[0]:
                    samples.append(rss_mib())
                    mark[0] += 600_000
                yield item

        n = run_lines(s, sampled(capture_items(sim.events())))
        s.close()
        end = rss_mib()
    el = time.perf_counter() - t0
    print(f"{n:,} lines, {s.stats.ticks:,} ticks ({args.hours:g} h of market) in {el:.0f} s")
    print("RSS every 10 min (MiB): " + " ".join(f"{x:.0f}" for x in samples))
    print(f"RSS start {start:8.1f} MiB   end {end:8.1f} MiB   growth {end - start:+.1f} MiB "
          f"(target: flat; no per-event or per-tick accumulation)")


if __name__ == "__main__":
    main()
