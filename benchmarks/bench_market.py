"""Whole-market ingest figures: capture line sources, universe plans, backfill under a storm.

Run: `.venv/bin/python benchmarks/bench_market.py [--lines N] [--symbols N]`. Prints one line
per measurement with its target (a benchmark, not a pass/fail test: it always exits 0).
Reader figures are the best of three runs in one process, so the ratio is measured in one
run on the same files (noise on this shared machine moves both sides alike).

* `reader`: today's byte-line reader (`enumerate(open_capture(path))`, one gzip stream read
  by `gzip.GzipFile`) against `capture_files.LineSource` (multi-member, torn-tail tolerant),
  on ~1M capture lines written by the rotating `Recorder`; also with `orjson.loads` per line,
  as the envelope reader does. Target: the new source at most a few % slower.
* `universe`: the connection and polling plan of `--top all` for N symbols.
* `backfill`: a 2 % gap storm on N symbols for an hour of virtual time through the bounded
  scheduler: queue high-water mark, requests, ids given up, weight per minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from engine_adapters.capture import open_capture
from engine_adapters.capture_files import LineSource
from engine_adapters.recorder import Recorder

AGG_TRADE = (
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1771263510195,"a":3141966230,'
    '"s":"BTCUSDT","p":"68005.00","q":"2.695","nq":"2.695","f":7297376181,"l":7297376207,'
    '"T":1771263510041,"m":true}}'
)
T0 = 1_796_180_400_000
Row = tuple[str, float, str]


def best(run: Callable[[], int], repeat: int = 3) -> tuple[float, int]:
    t_best, n = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = run()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best, n


def _old_lines(path: Path) -> int:
    n = 0
    with open_capture(path) as f:
        for n, _line in enumerate(f, 1):
            pass
    return n


def _new_lines(path: Path) -> int:
    n = 0
    for n, _line in LineSource(path):
        pass
    return n


def _old_json(path: Path) -> int:
    loads, n = orjson.loads, 0
    with open_capture(path) as f:
        for n, line in enumerate(f, 1):
            loads(line)
    return n


def _new_json(path: Path) -> int:
    loads, n = orjson.loads, 0
    for n, line in LineSource(path):
        loads(line)
    return n


def bench_reader(n_lines: int, tmp: Path) -> list[Row]:
    ms = T0

    def clock() -> int:
        return ms

    with Recorder(tmp, "bench", clock_ms=clock) as rec:
        for i in range(n_lines):
            ms = T0 + i // 20  # 20 k lines/s of receive time: a member per second
            rec.write_ws(ms, AGG_TRADE)
    path = rec.files[0]
    plain = Recorder(tmp / "plain", "bench", clock_ms=clock, compress=False)
    with plain:
        for i in range(n_lines):
            plain.write_ws(T0 + i // 20, AGG_TRADE)
    rows: list[Row] = [(f"capture {n_lines} lines, {rec.members_written} gzip members",
                        path.stat().st_size / 1e6, "MB")]
    for label, p in (("gzip", path), ("plain", plain.files[0])):
        for what, old, new in (("lines", _old_lines, _new_lines), ("lines+json", _old_json,
                                                                     _new_json)):
            t_old, n_old = best(lambda old=old, p=p: old(p))  # type: ignore[misc]
            t_new, n_new = best(lambda new=new, p=p: new(p))  # type: ignore[misc]
            assert n_old == n_new == n_lines, (n_old, n_new)
            rows.append((f"{label} {what}: today's reader, lines/s", n_lines / t_old, ""))
            rows.append((f"{label} {what}: LineSource, lines/s", n_lines / t_new, ""))
            rows.append((f"{label} {what}: LineSource time / today's", t_new / t_old,
                         "target <= 1.05"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--only", choices=("reader", "universe", "backfill"), default=None)
    args = ap.parse_args(argv)
    rows: list[Row] = []
    if args.only in (None, "reader"):
        with tempfile.TemporaryDirectory() as d:
            rows += bench_reader(args.lines, Path(d))
    for name, value, target in rows:
        print(f"{name:<58} {value:>14,.3f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
