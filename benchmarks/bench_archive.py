"""`archive import` throughput, and one symbol-day imported and run end to end.

    .venv/bin/python benchmarks/bench_archive.py [--trades-per-s 12] [--hours 24] [--no-run]

Builds (once, cached in /tmp) a synthetic archive tree of one symbol-day in the real layout
(aggTrades at N per second, bookDepth every 30 s, metrics every 5 min, 1-minute mark/index/
premium klines, monthly funding; engine_sim.archive_tree), then reports:
  import rows/s to .jsonl and to .jsonl.gz        target >= 500,000 rows/s
  (wall clock and per CPU second: on a shared machine the CPU figure is the steadier one)
  peak RSS of the import                          (memory bounded: one chunk per stream)
  import + `python -m engine_app run` wall time   target <= 120 s per symbol-day, one core
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine_adapters.archive.importer import import_archive
from engine_sim.archive_tree import Flush, build_tree

DAY = dt.date(2024, 8, 5)
KINDS = ("aggTrades", "bookDepth", "metrics", "fundingRate", "markPriceKlines",
         "indexPriceKlines", "premiumIndexKlines")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trades-per-s", type=int, default=12)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--no-run", action="store_true", help="import only")
    a = ap.parse_args()
    root = Path(tempfile.gettempdir()) / f"bench_archive_{a.trades_per_s}_{a.hours:g}"
    if not (root / "data").is_dir():
        t = time.perf_counter()
        info = build_tree(root, symbols=["BTCUSDT"], dates=[DAY], hours=a.hours,
                          trades_per_s=a.trades_per_s, kinds=KINDS,
                          flushes={("BTCUSDT", DAY): Flush(minute=int(a.hours * 30))})
        print(f"built tree {root}: {dict(info.rows)} in {time.perf_counter() - t:.1f} s")
    out = Path(tempfile.mkdtemp(prefix="bench_archive_"))
    try:
        for name in ("cap.jsonl", "cap.jsonl.gz"):
            cpu = time.process_time()
            rep = import_archive(root, out / name)
            cpu = time.process_time() - cpu
            print(f"import -> {name:<13} {rep.rows:>10,} rows  {rep.elapsed_s:6.2f} s wall "
                  f"{rep.rows / rep.elapsed_s:>9,.0f} rows/s, {cpu:6.2f} s CPU "
                  f"{rep.rows / cpu:>9,.0f} rows/CPU-s (target >= 500,000 rows/s)  "
                  f"{(out / name).stat().st_size / 2**20:,.0f} MiB")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process (build + imports): {rss:,.0f} MiB")
        if not a.no_run:
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "engine_app", "run", str(out / "cap.jsonl.gz"),
                            "--data-dir", str(out / "dd"), "--fsync", "none", "--json"],
                           check=True, stdout=subprocess.DEVNULL)
            run_s = time.perf_counter() - t
            total = run_s + rep.elapsed_s
            print(f"run of the capture: {run_s:.1f} s; import + run {total:.1f} s per "
                  f"{a.hours:g} h (target <= 120 s per symbol-day)")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
