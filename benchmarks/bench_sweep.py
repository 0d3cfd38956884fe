"""Sweep scaling: the same 2 x 2 grid on 1 and on 2 Dask worker processes.

    .venv/bin/python benchmarks/bench_sweep.py [--symbols 8] [--seconds 600]

Builds (once, cached in /tmp) a synthetic capture, then runs the grid
structural.unwind_enter=0.4,0.6 x tier.persist_ticks=4,12 (4 tasks of `run` through the CLI
contract, see engine_app/sweep.py) on a LocalCluster of 1 and of 2 processes, one thread each.
Timing starts once the cluster is up and every worker has run one warm-up task (imports),
so the figure is the sweep itself; cluster start-up is printed apart. Reports, next to the
target of issue 13 (2 workers >= 1.7x one worker on this 2-core machine), and checks that
both runs gave identical results. The machine is shared: the ratio is of this one run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from engine_app.sweep import combinations, parse_grid, run_tasks
from engine_app.sweep_report import Task
from engine_sim.simulation import MarketSimulator, cascade_script

TARGET = 1.7


def capture(symbols: int, seconds: float) -> Path:
    path = Path(tempfile.gettempdir()) / f"bench_sweep_{symbols}x{seconds:.0f}.jsonl"
    if not path.exists():
        from engine_sim.synthetic_capture import write_capture

        names = sorted(f"S{i:02d}USDT" for i in range(symbols))
        scale = seconds / sum(s.seconds for s in cascade_script(1.0))
        write_capture(path, MarketSimulator(names, cascade_script(scale), seed=11,
                                            oi_poll_ms=1000).events())
    return path


def warm_up() -> None:
    import engine_app.cli  # noqa: F401 - the import is the warm-up


def timed(tasks: list[Task], workers: int) -> tuple[float, float, list[Any]]:
    import dask.distributed

    dist: Any = dask.distributed
    t0 = time.perf_counter()
    with dist.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40) as cluster, \
            dist.Client(cluster) as client:
        client.wait_for_workers(workers)
        client.run(warm_up)  # on every worker: import the engine once
        started = time.perf_counter()
        results = run_tasks(tasks, client=client)
        return started - t0, time.perf_counter() - started, results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=600.0)
    a = ap.parse_args()
    cap = capture(a.symbols, a.seconds)
    combos = combinations(parse_grid(["structural.unwind_enter=0.4,0.6",
                                      "tier.persist_ticks=4,12"]))
    tasks = [Task(index=i, input=str(cap), overrides=c) for i, c in enumerate(combos)]
    lines = sum(1 for _ in cap.open("rb"))
    print(f"bench_sweep: {len(tasks)} tasks of `run` over {cap.name} ({lines:,} lines)")
    up1, one, r1 = timed(tasks, 1)
    print(f"  1 worker : {one:6.2f} s  ({one / len(tasks):.2f} s/task; cluster up in {up1:.1f} s)")
    up2, two, r2 = timed(tasks, 2)
    print(f"  2 workers: {two:6.2f} s  (cluster up in {up2:.1f} s)")
    ratio = one / two
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    failed = [r.error for r in r1 + r2 if r.error]
    print(f"  speed-up {ratio:.2f}x   (target >= {TARGET}x: {verdict}); identical results: "
          f"{r1 == r2}; failed tasks: {len(failed)}{' ' + failed[0] if failed else ''}")


if __name__ == "__main__":
    main()
