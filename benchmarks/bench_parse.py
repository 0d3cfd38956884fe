"""Parse throughput of the Binance frame parser and the capture envelope reader, with targets.

Run: `.venv/bin/python benchmarks/bench_parse.py [--n N]`. Prints one line per measurement with
the figure next to its target (a benchmark, not a pass/fail test: it always exits 0). Each
figure is the best of five runs on one core, so that noise from other processes counts least.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine_adapters.binance.messages import FrameParser
from engine_adapters.capture import CaptureWriter, iter_capture

#: Real frames (fixtures/binance/ws/combined_*.json), the symbol universe they belong to.
AGG_TRADE = (
    '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1771263510195,"a":3141966230,'
    '"s":"BTCUSDT","p":"68005.00","q":"2.695","nq":"2.695","f":7297376181,"l":7297376207,'
    '"T":1771263510041,"m":true}}'
)
BOOK_TICKER = (
    '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":9924360161244,"s":"BTCUSDT",'
    '"b":"68005.00","B":"2.394","a":"68005.10","A":"0.857","T":1771263510337,'
    '"E":1771263510337}}'
)
SYMBOLS = [f"SYM{i:03d}USDT" for i in range(200)] + ["BTCUSDT"]

#: Targets from the task brief: the parser is on the per-message hot path.
TARGET_FRAMES_PER_S = 300_000
TARGET_LINES_PER_S = 1_000_000


def best_rate(n: int, run: Callable[[], None], repeat: int = 5) -> float:
    """Items per second of `run` (which handles `n` items), best of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_frames(n: int) -> list[tuple[str, float, float]]:
    """The parser with its typed msgspec decoder (used) and with the dict path alone."""
    out: list[tuple[str, float, float]] = []
    for path, parser in (("typed", FrameParser(SYMBOLS)),
                         ("dict ", FrameParser(SYMBOLS, typed=False))):
        for name, frame in (("aggTrade str", AGG_TRADE), ("aggTrade bytes", AGG_TRADE.encode()),
                            ("bookTicker str", BOOK_TICKER)):
            parse = parser.parse
            assert parse(frame).events, f"benchmark frame {name} did not parse"

            def run(frame: str | bytes = frame, parse: Callable[..., object] = parse) -> None:
                for _ in range(n):
                    parse(frame)

            out.append((f"parse {path} {name} frames/s", best_rate(n, run),
                        TARGET_FRAMES_PER_S))
    return out


def bench_capture(n: int) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("cap.jsonl", "cap.jsonl.gz"):
            path = Path(tmp) / name
            with CaptureWriter(path) as w:
                for i in range(n):
                    w.write_ws(1771263510000 + i, AGG_TRADE)

            def run(path: Path = path) -> None:
                count = 0
                for _ in iter_capture(path):
                    count += 1
                assert count == n, f"read {count} of {n} lines"

            # Only the plain file has a target; gzip is shown for information (zlib-bound).
            target = TARGET_LINES_PER_S if not name.endswith(".gz") else 0.0
            out.append((f"capture envelope {name} lines/s", best_rate(n, run, 3), target))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000, help="items per run (default 200000)")
    args = ap.parse_args(argv)
    for label, rate, target in bench_frames(args.n) + bench_capture(args.n):
        verdict = "(no target)" if not target else ("OK" if rate >= target else "MISSED")
        tgt = f"target >= {target:>11,.0f}" if target else " " * 22
        print(f"{label:<40} {rate:>11,.0f}   {tgt}   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
