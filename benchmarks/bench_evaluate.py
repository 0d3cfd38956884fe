"""`evaluate` over a month of one symbol: bars, labels, baselines, scores (and the log part).

    .venv/bin/python benchmarks/bench_evaluate.py [--days 30]

Writes a data dir holding a month of 1-minute bars for one symbol (calm noise with a flush
every few days; DIR/bars/BTCUSDT.bars as the live shell will write them) and an alerts.jsonl
with ~20 alerts a day, then times `evaluate_dir` (load bars, label, baselines, score) and the
text table, JSON and HTML report. The output log of a month (10.4 M records) is not built
here: its part of `evaluate` (state shares, per-minute scores via `read_log`) is timed on the
log of a 4-hour archive `run` and scaled per record, and said so. Target: <= 30 s for the month.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from engine_adapters.archive.importer import import_archive
from engine_adapters.evaluation.bars import BAR_DTYPE, append_bars
from engine_adapters.evaluation.evaluate import _log_view, evaluate_dir
from engine_adapters.evaluation.html_report import write_report
from engine_adapters.storage import read_log
from engine_sim.archive_tree import build_tree

T0 = 1_722_470_400_000  # 2024-08-01
TICKS_PER_DAY = 345_600


def month_bars(days: int, seed: int = 3) -> np.ndarray:
    n = days * 1440
    rng = np.random.default_rng(seed)
    b = np.zeros(n, dtype=BAR_DTYPE)
    b["minute_ms"] = T0 + 60_000 * np.arange(n)
    lr = rng.standard_t(4, n) * 0.0007
    vol = np.full(n, 2e6) * (1 + 0.5 * np.sin(np.arange(n) / 1440 * 2 * math.pi))
    sell = vol * 0.5
    oi = np.full(n, 8e4)
    for at in range(2 * 1440 + 300, n - 60, 4 * 1440 + 333):  # a flush every ~4 days
        lr[at: at + 10] += math.log(0.93) / 10
        vol[at: at + 10] *= 9
        sell[at: at + 10] = vol[at: at + 10] * 0.8
        oi[at:] *= 0.94
    c = 60_000 * np.exp(np.cumsum(lr))
    for f in ("open", "high", "low", "close", "mark", "index"):
        b[f] = c
    b["quote_volume"], b["taker_sell_quote"], b["oi"] = vol, sell, oi
    b["oi_value"], b["funding"], b["trades"] = oi * c, 0.0001, 600
    return b


def alerts(days: int, path: Path) -> None:
    rng = np.random.default_rng(4)
    kinds = ["STRUCTURAL_FRAGILE", "STRUCTURAL_TRIGGER_READY", "STRUCTURAL_UNWIND"]
    with open(path, "w") as f:
        for t in sorted(rng.integers(T0, T0 + days * 86_400_000, size=20 * days)):
            f.write(json.dumps({"cluster": "CLUSTER_CALM", "event_id": 0, "fsm": "FRAGILE",
                                "kind": kinds[int(t) % 3], "message": "", "phase": "PREP",
                                "symbol": "BTCUSDT", "tick_id": int(t) // 250, "tier": None,
                                "time": "", "token_id": 0, "trigger_cost": None}) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=30)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_evaluate_"))
    try:
        append_bars(root / "bars", {"BTCUSDT": month_bars(a.days)})
        alerts(a.days, root / "alerts.jsonl")
        t = time.perf_counter()
        res = evaluate_dir(root)
        ev_s = time.perf_counter() - t
        t = time.perf_counter()
        res.table()
        json.dumps(res.to_json())
        write_report(res, root / "report.html")
        out_s = time.perf_counter() - t
        print(f"evaluate_dir over {a.days} days of 1 symbol: {ev_s:.2f} s "
              f"({len(res.events)} events, {len(res.alerts)} alerts incl. baselines); "
              f"table + JSON + HTML {out_s:.2f} s")
        # the log part, on the log of a 4-hour archive run, scaled per record
        tree, cap = root / "tree", root / "cap.jsonl.gz"
        build_tree(tree, symbols=["BTCUSDT"], dates=[dt.date(2024, 8, 5)], hours=4.0,
                   kinds=("aggTrades", "metrics", "markPriceKlines", "indexPriceKlines",
                          "fundingRate"))
        import_archive(tree, cap)
        dd = root / "dd"
        proc = subprocess.run([sys.executable, "-m", "engine_app", "run", str(cap),
                               "--data-dir", str(dd), "--fsync", "none"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(f"log part not measured: run failed ({proc.stderr.strip()[-200:]})")
            return 0
        n = len(read_log(dd))
        t = time.perf_counter()
        _log_view(dd)
        per = (time.perf_counter() - t) / max(n, 1)
        month_log = per * TICKS_PER_DAY * a.days
        print(f"log part: {per * 1e9:.0f} ns/record on a {n:,}-record log -> "
              f"{month_log:.1f} s for {a.days} days (scaled)")
        print(f"total for a month of one symbol: {ev_s + out_s + month_log:.1f} s "
              f"(target <= 30 s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
