"""Sweep scaling: the same 2 x 2 grid on 1 and on 2 Dask worker processes.

    .venv/bin/python benchmarks/bench_sweep.py [--symbols 8] [--seconds 600]

Builds (once, cached in /tmp) a synthetic capture, then runs the grid
structural.unwind_enter=0.4,0.6 x tier.persist_ticks=4,12 (4 tasks of `run` + `evaluate`
through the CLI contract, as `sweep` runs them: engine_app.sweep.run_task) on a LocalCluster
of 1 and of 2 processes, one thread each.
Timing starts once the cluster is up and every worker has imported the engine, so the figure
is the sweep itself; cluster start-up is printed apart, and so are the CPU seconds the tasks
used (CPU / wall = how many cores the sweep actually got: on a shared machine the wall-clock
ratio says as much about the other load as about the sweep). Reports, next to the
target of issue 13 (2 workers >= 1.7x one worker on this 2-core machine), and checks that
both runs gave identical results. The machine is shared: the ratio is of this one run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from engine_app.sweep import combinations, parse_grid, run_task
from engine_app.sweep_report import Task, TaskResult
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


def cpu_timed(task: Task) -> tuple[TaskResult, float]:
    """run_task plus the CPU seconds it used in its worker (timing stays out of results)."""
    t0 = time.process_time()
    result = run_task(task)
    return result, time.process_time() - t0


def timed(tasks: list[Task], workers: int) -> tuple[float, float, list[Any], float]:
    import dask.distributed

    dist: Any = dask.distributed
    t0 = time.perf_counter()
    with dist.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40) as cluster, \
            dist.Client(cluster) as client:
        client.wait_for_workers(workers)
        client.run(warm_up)  # on every worker: import the engine once
        load = os.getloadavg()[0]
        started = time.perf_counter()
        pairs = client.gather(client.map(cpu_timed, tasks, pure=False))
        wall = time.perf_counter() - started
        cpu = sum(c for _, c in pairs)
        print(f"  {workers} worker(s): {wall:6.2f} s wall, {cpu:6.2f} s CPU in tasks "
              f"(parallelism {cpu / wall:.2f}; load average before {load:.1f}; "
              f"cluster up in {started - t0:.1f} s)")
        return started - t0, wall, [r for r, _ in pairs], cpu


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
    _, one, r1, _ = timed(tasks, 1)
    _, two, r2, _ = timed(tasks, 2)
    ratio = one / two
    verdict = "ok" if ratio >= TARGET else "BELOW TARGET"
    failed = [r.error for r in r1 + r2 if r.error]
    print(f"  speed-up {ratio:.2f}x   (target >= {TARGET}x: {verdict}); identical results: "
          f"{r1 == r2}; failed tasks: {len(failed)}{' ' + failed[0] if failed else ''}")


if __name__ == "__main__":
    main()
