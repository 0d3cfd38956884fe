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
* `live` (only when asked, it takes minutes): `bench_market_live.py`, the whole `live`
  shell on 500 symbols over loopback at peak rates with faults.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from aiohttp import web

from engine_adapters.binance.backfill import (
    BackfillConfig,
    BackfillRequest,
    BackfillScheduler,
)
from engine_adapters.binance.backfill_runner import BackfillRunner, rest_fetch
from engine_adapters.binance.dedup import IdGap
from engine_adapters.binance.market_plan import plan_market, plan_polling
from engine_adapters.binance.rest_client import RestClient, RestClientConfig
from engine_adapters.capture import CaptureWriter, open_capture
from engine_adapters.capture_files import LineSource
from engine_adapters.recorder import Recorder

#: A real frame (fixtures/binance/ws/combined_aggTrade.json) with its ids, times and price
#: varied per line, so the files compress like real captures (identical lines would not).
AGG_TRADE = (
    '{{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{E},"a":{a},'
    '"s":"BTCUSDT","p":"{p:.2f}","q":"2.695","nq":"2.695","f":{f},"l":{f},'
    '"T":{E},"m":{m}}}}}'
)


def frame(i: int) -> str:
    return AGG_TRADE.format(E=1771263510195 + i // 20, a=3141966230 + i, p=68005 + (i % 997) / 10,
                            f=7297376181 + 3 * i, m="true" if i % 3 else "false")
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
        for n, _line in enumerate(f, 1):  # noqa: B007 - counting is the point
            pass
    return n


def _new_lines(path: Path) -> int:
    n = 0
    for n, _line in LineSource(path):  # noqa: B007
        pass
    return n


def _old_json(path: Path) -> int:
    loads, n = orjson.loads, 0
    with open_capture(path) as f:
        for n, line in enumerate(f, 1):  # noqa: B007
            loads(line)
    return n


def _new_json(path: Path) -> int:
    loads, n = orjson.loads, 0
    for n, line in LineSource(path):  # noqa: B007
        loads(line)
    return n


def _bench_writers(n: int, tmp: Path) -> list[Row]:
    """Lines/s written: today's CaptureWriter (one gzip stream) vs the rotating Recorder."""
    tmp.mkdir()
    frames = [frame(i) for i in range(n)]  # built once: the timing is the writers' alone
    rows: list[Row] = []
    for level in (6, 1):
        runs = 0

        def old(level: int = level) -> int:
            nonlocal runs
            runs += 1
            with CaptureWriter(tmp / f"old{level}-{runs}.jsonl.gz", compresslevel=level,
                               clock=lambda: 0.0) as w:
                for i in range(n):
                    w.write_ws(T0 + i // 20, frames[i])
            return n

        def new(level: int = level) -> int:
            ms = T0
            with Recorder(tmp / f"new{level}", "b", clock_ms=lambda: ms,
                          compresslevel=level) as r:
                for i in range(n):
                    ms = T0 + i // 20
                    r.write_ws(ms, frames[i])
            return n

        t_old, _ = best(old)
        t_new, _ = best(new)
        rows += [(f"write gzip level {level}: CaptureWriter, lines/s", n / t_old, ""),
                 (f"write gzip level {level}: Recorder, lines/s", n / t_new,
                  "target >= 50,000 (2.5x a 20 k/s peak)")]
    return rows


def bench_reader(n_lines: int, tmp: Path) -> list[Row]:
    ms = T0

    def clock() -> int:
        return ms

    with Recorder(tmp, "bench", clock_ms=clock) as rec:
        for i in range(n_lines):
            ms = T0 + i // 20  # 20 k lines/s of receive time: a member per second
            rec.write_ws(ms, frame(i))
    path = rec.files[0]
    plain = Recorder(tmp / "plain", "bench", clock_ms=clock, compress=False)
    with plain:
        for i in range(n_lines):
            plain.write_ws(T0 + i // 20, frame(i))
    rows: list[Row] = [(f"capture {n_lines} lines, {rec.members_written} gzip members",
                        path.stat().st_size / 1e6, "MB")]
    rows += _bench_writers(min(n_lines, 200_000), tmp / "w")
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


def bench_universe(n_symbols: int) -> list[Row]:
    symbols = [f"S{i:04d}USDT" for i in range(n_symbols)]
    plan = plan_market(symbols)
    rows: list[Row] = [
        (f"universe {n_symbols}: streams (2N+2)", float(len(plan.streams)), ""),
        (f"universe {n_symbols}: connections", float(len(plan.connections)), ""),
        (f"universe {n_symbols}: max streams per connection",
         float(plan.max_streams_per_connection), "target <= 200"),
        (f"universe {n_symbols}: SUBSCRIBE messages",
         float(sum(c.subscribe_messages for c in plan.connections)), ""),
        (f"universe {n_symbols}: subscribe time, s", plan.subscribe_s(), "at 5 msg/s/conn (<10)"),
        (f"universe {n_symbols}: OI cadence achieved, s", plan.poll.oi_cycle_s, ""),
        (f"universe {n_symbols}: pollers weight/min", plan.poll.pollers_per_min,
         f"<= {plan.poll.poll_cap_per_min:.0f}"),
        (f"universe {n_symbols}: backfill weight/min", plan.poll.backfill_per_min, ""),
    ]
    return rows


def bench_backfill_virtual(n_symbols: int, hours: float = 1.0) -> list[Row]:
    """A 2 % gap storm for `hours` of virtual time; each page is answered 100 ms later."""
    rng = random.Random(7)
    plan = plan_polling(n_symbols)
    sched = BackfillScheduler(BackfillConfig(), weight_per_window=int(plan.backfill_per_min))
    rates = [rng.choice((2, 5, 10, 40)) for _ in range(n_symbols)]  # aggTrades/s per symbol
    log_keep = math.log(0.98)

    def skip() -> int:  # trades until the next lost one: geometric, p = 2 %
        return int(math.log(1.0 - rng.random()) / log_keep) + 1

    next_id = [1_000_000] * n_symbols
    next_gap = [1_000_000 + skip() for _ in range(n_symbols)]
    pending: list[tuple[int, BackfillRequest]] = []
    step_ms = 100
    t0 = time.perf_counter()
    for now in range(0, int(hours * 3_600_000), step_ms):
        for i in range(n_symbols):
            next_id[i] += rates[i] * step_ms // 1000 or int(rng.random() < rates[i] / 10)
            while next_gap[i] <= next_id[i]:
                sched.add_gap(IdGap(symbol=f"S{i:04d}USDT", first=next_gap[i],
                                    last=next_gap[i]), now)
                next_gap[i] += skip()
        while pending and pending[0][0] <= now:
            _, done = pending.pop(0)
            sched.on_result(done, done.from_id + done.limit - 1, now)
        sched.expire(now)
        sched.take_given_up()
        while (req := sched.next_request(now, now / 1000)) is not None:
            pending.append((now + 100, req))
    c = sched.counters
    mins = hours * 60
    return [
        (f"backfill {n_symbols} sym, 2% storm, {hours:g} h virtual: gaps", float(c.gaps), ""),
        ("  requests per minute", c.requests / mins,
         f"<= {plan.backfill_per_min / 20:.0f} (share / weight 20)"),
        ("  missing ids fetched back, %", 100 * c.ids_covered / max(1, c.ids_missing), ""),
        ("  ids given up as TRADE_GAP (incl. merge padding), %",
         100 * c.ids_given_up / max(1, c.ids_missing), ""),
        ("  queue high-water mark, ranges", float(c.queue_high_water),
         f"bound {sched.config.max_ranges}"),
        ("  scheduler + simulation CPU, s", time.perf_counter() - t0, ""),
    ]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


async def _agg_trades(req: web.Request) -> web.Response:
    first, limit = int(req.query["fromId"]), int(req.query["limit"])
    body = [{"a": i, "p": "1.0", "q": "1", "f": i, "l": i, "T": 1, "m": True}
            for i in range(first, first + limit)]
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _storm(mode: str, seconds: float, n_symbols: int = 100) -> tuple[float, float, int]:
    """2 % of 10 aggTrades/s on each symbol lost, for `seconds`; (RSS growth MB/s after a
    5 s warm-up, requests answered, tasks or queued ranges at the end)."""
    app = web.Application()
    app.router.add_get("/fapi/v1/aggTrades", _agg_trades)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    rng = random.Random(3)
    tasks: set[asyncio.Task[object]] = set()
    left = 0
    try:
        async with RestClient(url, config=RestClientConfig()) as rest:
            plan = plan_polling(n_symbols)
            sched = BackfillScheduler(BackfillConfig(),
                                      weight_per_window=int(plan.backfill_per_min))
            bf = BackfillRunner(sched, rest_fetch(rest), on_give_up=lambda g: None,
                                now_ms=lambda: int(time.monotonic() * 1000), wall_s=time.time)
            bf_task = asyncio.create_task(bf.run()) if mode == "bounded" else None
            next_id = [1] * n_symbols
            t_end = time.monotonic() + seconds
            base_rss = base_t = None
            while time.monotonic() < t_end:
                for i in range(n_symbols):  # 10 trades per symbol per second, in 0.1 s steps
                    if rng.random() < 0.02:
                        g = IdGap(symbol=f"S{i:03d}USDT", first=next_id[i], last=next_id[i])
                        if mode == "bounded":
                            bf.gap(g)
                        else:  # today's live.py: one task per gap, each waiting for weight
                            t: asyncio.Task[object] = asyncio.create_task(
                                rest.aggtrades_backfill(g.symbol, g.first, g.last))
                            tasks.add(t)
                            t.add_done_callback(tasks.discard)
                    next_id[i] += 1
                await asyncio.sleep(0.1)
                if base_rss is None and time.monotonic() > t_end - seconds + 5:
                    gc.collect()
                    base_rss, base_t = _rss_mb(), time.monotonic()
            gc.collect()
            growth = (_rss_mb() - (base_rss or 0)) / max(1e-9, time.monotonic() - (base_t or 0))
            answered = rest.counters.ok
            left = len(tasks) if mode == "today" else sched.queued_ranges
            rest.stop()
            if bf_task is not None:
                bf.stop()
                await bf_task
            for t in list(tasks):
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await runner.cleanup()
    return growth, answered, left


def bench_backfill_loopback(seconds: float) -> list[Row]:
    rows: list[Row] = []
    for mode in ("bounded", "today"):
        growth, answered, left = asyncio.run(_storm(mode, seconds))
        what = "queued ranges" if mode == "bounded" else "tasks waiting"
        rows += [(f"loopback storm 100 sym {seconds:g} s, {mode}: RSS growth MB/s", growth,
                  "target ~0 (10 MB/h = 0.003)"),
                 (f"  {mode}: REST answers", float(answered), ""),
                 (f"  {mode}: {what} at the end", float(left), "")]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--only", choices=("reader", "universe", "backfill", "live"), default=None,
                    help="live: the 500-symbol loopback run of bench_market_live.py (minutes)")
    ap.add_argument("--storm-s", type=float, default=30.0,
                    help="seconds of each loopback gap storm (today's tasks, then bounded)")
    args = ap.parse_args(argv)
    if args.only == "live":
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_market_live import main as live_main

        return live_main(["--symbols", str(args.symbols)])
    rows: list[Row] = []
    if args.only in (None, "universe"):
        for n in sorted({100, args.symbols, 700}):
            rows += bench_universe(n)
    if args.only in (None, "backfill"):
        rows += bench_backfill_virtual(100)
        rows += bench_backfill_virtual(args.symbols)
        rows += bench_backfill_loopback(args.storm_s)
    if args.only in (None, "reader"):
        with tempfile.TemporaryDirectory() as d:
            rows += bench_reader(args.lines, Path(d))
    for name, value, target in rows:
        print(f"{name:<58} {value:>14,.3f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
