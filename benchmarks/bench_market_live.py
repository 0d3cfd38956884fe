"""The whole-market live benchmark: 500 symbols over loopback through `live --top all --capture`.

Run: `.venv/bin/python benchmarks/bench_market_live.py [--symbols 500] [--rate 20000]
[--burst-rate 50000] [--warmup-s 20] [--sustained-s 90] [--burst-s 60]` (or
`bench_market.py --only live`); `--split` runs WS ingest in its own process behind the bus
(bench_market_split.py). A benchmark, not a test: it prints figures next to targets
and exits 0.

The fake exchange (engine_sim.fake_exchange) runs in a child process, so the engine's
process pays only for what a real exchange would cost it. The child publishes aggTrade (70 %)
and bookTicker (30 %) frames across the symbols at `--rate` messages/s (then `--burst-rate`
for `--burst-s`), the all-market markPrice array once a second, a few liquidations; it loses
2 % of the aggTrade payloads (a gap storm: REST still serves them), drops every connection
once, stalls the streams for 2 s, and answers a burst of REST requests with 429. The
engine's process runs the real `LiveRunner` (plan_market streams, bounded backfill, hour-file
recorder) and reports: messages/s received, tick lag p99 (target <= 50 ms), RSS growth per
hour after warm-up (target <= 10 MB/h), and the message accounting (every frame processed,
a duplicate, quarantined, or a counted gap).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine_core as ec  # noqa: E402
from engine_core.events import (  # noqa: E402
    BookTickerReceived,
    LiquidationReceived,
    MarkPriceReceived,
    Side,
    TradeReceived,
)


def symbols(n: int) -> list[str]:
    return [f"C{i:03d}USDT" for i in range(n)]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


# ---------------------------------------------------------------- the exchange (child)
async def serve(a: argparse.Namespace) -> None:
    from engine_sim.fake_exchange import FakeBinance
    from engine_sim.fake_exchange.faults import FakeConfig, Faults

    syms = symbols(a.symbols)
    faults = Faults(seed=7, drop_prob=0.02, drop_suffix="@aggTrade")
    fake = FakeBinance(syms, config=FakeConfig(trade_history=3000), faults=faults)
    await fake.start()
    print(fake.port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the engine is connected: go
    cpu_go = time.process_time()
    rng = random.Random(1)
    batched = a.sender == "batched"
    by_phase = [0, 0, 0]  # stream messages published in warm-up, sustained, burst
    trade_id = dict.fromkeys(syms, 1)
    update_id = dict.fromkeys(syms, 1)
    price = {s: 10.0 + i for i, s in enumerate(syms)}
    t0 = loop.time()
    phases = [(a.warmup_s, a.rate), (a.sustained_s, a.rate), (a.burst_s, a.burst_rate)]
    end = t0 + sum(p[0] for p in phases)
    sent = 0
    slot = 0.01
    next_mark = t0
    faults_at = {"drop": t0 + a.warmup_s + a.sustained_s * 0.3,
                 "stall": t0 + a.warmup_s + a.sustained_s * 0.6,
                 "429": t0 + a.warmup_s + a.sustained_s * 0.8}
    while (now := loop.time()) < end:
        el, rate, ph = now - t0, phases[-1][1], len(phases) - 1
        for ph, (dur, r) in enumerate(phases):  # noqa: B007 - `ph` is used below
            if el < dur:
                rate = r
                break
            el -= dur
        n0 = sent
        for name, at in list(faults_at.items()):
            if now >= at:
                del faults_at[name]
                if name == "drop":
                    await fake.drop_connections(abrupt=True)
                elif name == "stall":
                    fake.stall(2.0)
                else:
                    faults.rest_429_next = 20
        ms = time.time_ns() // 1_000_000
        texts: list[tuple[str, str]] = []
        for _ in range(int(rate * slot)):
            s = syms[rng.randrange(len(syms))]
            if rng.random() < 0.7:
                p = price[s] = price[s] * (1 + rng.uniform(-2e-4, 2e-4))
                ps, qs, tid = f"{p:.6f}", f"{rng.uniform(0.1, 5):.3f}", trade_id[s]
                trade_id[s] = tid + 1
                maker = rng.random() < 0.5
                ev: object = TradeReceived(symbol=s, exchange_ts=ms, price=float(ps),
                                           qty=float(qs), buyer_is_maker=maker, trade_id=tid)
                if batched:  # the payload of render.agg_trade_payload, as one f-string
                    fake.market.add_trade(ev)  # type: ignore[arg-type]  # REST history
                    texts.append((f"{s.lower()}@aggTrade", (
                        f'{{"e":"aggTrade","E":{ms},"a":{tid},"s":"{s}","p":"{ps}","q":"{qs}",'
                        f'"nq":"{qs}","f":{tid},"l":{tid},"T":{ms},'
                        f'"m":{"true" if maker else "false"},"st":1}}')))
            else:
                p, uid = price[s], update_id[s]
                update_id[s] = uid + 1
                b, k = f"{p * 0.9999:.6f}", f"{p * 1.0001:.6f}"
                ev = BookTickerReceived(symbol=s, exchange_ts=ms, bid=float(b), bid_qty=3.0,
                                        ask=float(k), ask_qty=2.0, update_id=uid)
                if batched:  # render.book_ticker_payload's keys and order
                    texts.append((f"{s.lower()}@bookTicker", (
                        f'{{"e":"bookTicker","u":{uid},"s":"{s}","ps":"{s}","b":"{b}",'
                        f'"B":"3","a":"{k}","A":"2","T":{ms},"E":{ms},"st":1}}')))
            if not batched:
                await fake.publish(ev)
            sent += 1
        if texts:
            await fake.publish_texts(texts)
        by_phase[ph] += sent - n0
        if now >= next_mark:  # markPrice@arr once a second, a liquidation now and then
            next_mark += 1.0
            for s in syms:
                await fake.publish(MarkPriceReceived(symbol=s, exchange_ts=ms,
                                                     mark_price=price[s], index_price=price[s],
                                                     funding_rate=1e-4))
            for s in rng.sample(syms, 3):
                await fake.publish(LiquidationReceived(symbol=s, exchange_ts=ms, side=Side.SELL,
                                                       price=price[s], qty=1.0))
            sent += len(syms) + 3
        await asyncio.sleep(max(0.0, slot - (loop.time() - now)))
    st = fake.stats
    print(json.dumps({"cpu_s": time.process_time() - cpu_go, "slow_wait_s": st.slow_client_wait_s,
                      "by_phase": by_phase, "published": sent, "frames_sent": st.frames_sent,
                      "dropped": st.dropped,
                      "dropped_stall": st.frames_dropped_stall, "rest_429": st.rest_429,
                      "rest_200": st.rest_200, "elapsed_s": loop.time() - t0}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)
    await fake.stop()


# ---------------------------------------------------------------- the engine (parent)
async def engine(a: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from engine_adapters.binance.rest_client import RestClientConfig
    from engine_adapters.binance.ws_client import WsClientConfig
    from engine_app.live import LiveOptions, LiveRunner

    args = ["--sender", a.sender, "--symbols", str(a.symbols), "--rate", str(a.rate),
            "--burst-rate", str(a.burst_rate), "--warmup-s", str(a.warmup_s), "--sustained-s",
            str(a.sustained_s), "--burst-s", str(a.burst_s)]
    child = subprocess.Popen([sys.executable, __file__, "--serve", *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert child.stdin is not None and child.stdout is not None
    port = int(child.stdout.readline())
    total = a.warmup_s + a.sustained_s + a.burst_s
    opts = LiveOptions(data_dir=tmp / "dd", cfg=ec.Config(), top="all", duration_s=total + 8,
                       ws_url=f"ws://127.0.0.1:{port}", rest_url=f"http://127.0.0.1:{port}",
                       capture=tmp / "rec", fsync="interval:4",
                       ws_config=WsClientConfig(backoff_base_s=0.2, stale_after_s=1.5),
                       rest_config=RestClientConfig())
    lags: list[tuple[float, int]] = []
    steps: list[tuple[float, float]] = []
    step_cpu: list[tuple[float, float]] = []
    rss: list[tuple[float, float]] = []
    stalls: list[tuple[float, float]] = []
    t_start = [0.0]

    def on_tick(r: LiveRunner) -> None:
        now = time.monotonic()
        lags.append((now, r.metrics.last_lag_ms))
        if r.metrics.step_ms_samples:
            steps.append((now, r.metrics.step_ms_samples[-1]))
            cpu_ms = getattr(r.metrics, "step_cpu_ms_samples", None)  # absent before 12/02
            if cpu_ms:
                step_cpu.append((now, cpu_ms[-1]))
        if len(lags) % 20 == 0:
            rss.append((now, _rss_mb()))

    beat = [time.monotonic()]

    async def probe() -> None:
        """How long the loop ran without giving a 5 ms timer its turn (a long stretch of
        frame handling or a long tick step is what delays the tick timer)."""
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.005)
            beat[0] = now = time.monotonic()
            stalls.append((t, (now - t - 0.005) * 1000))

    gc_pauses: list[tuple[int, float]] = []  # (generation, ms) of each collection
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_pauses.append((info["generation"], (time.perf_counter() - gc_t0[0]) * 1000))

    gc.callbacks.append(on_gc)
    sites: collections.Counter[str] = collections.Counter()
    if os.environ.get("BENCH_STALLS"):  # where the loop is while it gives no turn (sampled)
        main_id = threading.get_ident()

        def sampler() -> None:
            while True:
                time.sleep(0.01)
                if time.monotonic() - beat[0] > 0.05:
                    f = sys._current_frames().get(main_id)
                    stack: list[str] = []
                    while f is not None and len(stack) < 4:
                        stack.append(f"{Path(f.f_code.co_filename).name}:{f.f_code.co_name}")
                        f = f.f_back
                    sites[" < ".join(stack)] += 1

        threading.Thread(target=sampler, daemon=True).start()

    runner = LiveRunner(opts, on_tick=on_tick, say=lambda m: print(m, file=sys.stderr))
    task = asyncio.create_task(runner.run())
    prober = asyncio.create_task(probe())
    while runner.feed is None or runner.feed.connected() < len(runner.feed.specs):
        await asyncio.sleep(0.1)
        if task.done():
            await task
    await asyncio.sleep(2.0)  # SUBSCRIBE messages of the pooled connections go out paced
    t_start[0] = time.monotonic()
    cpu0, tcpu0 = time.process_time(), time.thread_time()
    prof = None
    if os.environ.get("BENCH_PROFILE"):  # cProfile of the engine's process, sorted by tottime
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    child.stdin.write("go\n")
    child.stdin.flush()
    frames0 = runner.feed.counters.frames
    loop = asyncio.get_running_loop()
    line = await loop.run_in_executor(None, child.stdout.readline)
    exch = json.loads(line)
    frames = runner.feed.counters.frames - frames0
    elapsed = time.monotonic() - t_start[0]
    cpu = time.process_time() - cpu0
    loop_cpu = time.thread_time() - tcpu0
    if prof is not None:
        import pstats

        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(35)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumtime").print_stats(35)
    await asyncio.sleep(3.0)  # the last frames and give-ups
    prober.cancel()
    gc.callbacks.remove(on_gc)
    for site, n in sites.most_common(25):
        print(f"stall sample x{n} (10 ms each): {site}", file=sys.stderr)
    runner.stop()
    session = await task
    child.stdin.write("bye\n")
    child.stdin.flush()
    child.wait(timeout=30)
    warm_end = t_start[0] + a.warmup_s
    sus_end = warm_end + a.sustained_s

    def p99(lo: float, hi: float, xs_: list[tuple[float, float]] | list[tuple[float, int]]
            = lags, q: float = 0.99) -> float:
        xs = sorted(v for t, v in xs_ if lo <= t < hi)
        return float(xs[int(q * (len(xs) - 1))]) if xs else float("nan")

    after = [(t, m) for t, m in rss if t >= warm_end]
    slope = 0.0
    if len(after) >= 2:  # least squares, MB per hour
        mt = sum(t for t, _ in after) / len(after)
        mm = sum(m for _, m in after) / len(after)
        den = sum((t - mt) ** 2 for t, _ in after)
        slope = sum((t - mt) * (m - mm) for t, m in after) / den * 3600 if den else 0.0
    st = session.counts
    bf = runner.backfill.scheduler.counters if runner.backfill else None
    return {
        "exchange_published": exch["published"], "exchange_frames_sent": exch["frames_sent"],
        "exchange_dropped": exch["dropped"], "exchange_stalled": exch["dropped_stall"],
        "exchange_429": exch["rest_429"], "exchange_elapsed_s": exch["elapsed_s"],
        "exchange_cpu_s": exch["cpu_s"], "exchange_slow_wait_s": exch["slow_wait_s"],
        "exchange_rate_sustained": exch["by_phase"][1] / max(1e-9, a.sustained_s),
        "exchange_rate_burst": exch["by_phase"][2] / max(1e-9, a.burst_s),
        "frames_received": frames, "msgs_per_s": frames / elapsed, "elapsed_s": elapsed,
        "cpu_share": cpu / elapsed, "loop_cpu_share": loop_cpu / elapsed,
        "cpu_us_per_frame": cpu / max(1, frames) * 1e6,
        "lag_p99_sustained": p99(warm_end, sus_end), "lag_p99_burst": p99(sus_end, 1e18),
        "lag_max": float(max((v for _, v in lags), default=0)),
        "lag_p50_sustained": p99(warm_end, sus_end, q=0.5),
        "step_p50": p99(warm_end, 1e18, steps, 0.5), "step_p99": p99(warm_end, 1e18, steps),
        "step_cpu_p50_sus": p99(warm_end, sus_end, step_cpu, 0.5),
        "step_cpu_p99_sus": p99(warm_end, sus_end, step_cpu),
        "step_cpu_p50_burst": p99(sus_end, 1e18, step_cpu, 0.5),
        "step_cpu_p99_burst": p99(sus_end, 1e18, step_cpu),
        "stall_p99": p99(warm_end, 1e18, stalls),
        "stall_max": max((v for t, v in stalls if t >= warm_end), default=0.0),
        "gc": [(g, len([p for h, p in gc_pauses if h == g]),
                max((p for h, p in gc_pauses if h == g), default=0.0)) for g in (0, 1, 2)],
        "rss_mb_per_h": slope, "rss_end_mb": rss[-1][1] if rss else 0.0,
        "overloaded_ticks": runner.metrics.overloaded_ticks,
        "events_received": st.events_received, "events_accepted": st.events_accepted,
        "duplicates": st.duplicates, "rejected": st.rejected, "parse_rejects": st.parse_rejects,
        "ignored": st.ignored_outside_universe, "unused": st.unused_kinds,
        "gaps": bf.gaps if bf else 0, "ids_missing": bf.ids_missing if bf else 0,
        "ids_covered": bf.ids_covered if bf else 0,
        "ids_given_up": bf.ids_given_up if bf else 0,
        "queue_high_water": bf.queue_high_water if bf else 0,
        "trades_lost": runner.metrics.trades_lost,
        "backfill_requests": bf.requests if bf else 0,
    }


def report(r: dict[str, float], a: argparse.Namespace) -> None:
    def row(name: str, value: object, target: str = "") -> None:
        v = f"{value:,.1f}" if isinstance(value, float) else \
            f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{name:<44} {v:>14}  {target}")

    print(f"bench_market_live: {a.symbols} symbols over loopback, warm-up {a.warmup_s:g} s, "
          f"{a.rate:,} msg/s for {a.sustained_s:g} s, {a.burst_rate:,} msg/s for {a.burst_s:g} s")
    row("exchange: messages published", int(r["exchange_published"]))
    row("exchange: publish rate achieved, msg/s",
        r["exchange_published"] / max(1e-9, r["exchange_elapsed_s"]))
    row("exchange: aggTrade/bookTicker rate, sustained phase", r["exchange_rate_sustained"],
        f">= {a.rate:,} asked")
    if a.burst_s > 0:
        row("exchange: aggTrade/bookTicker rate, burst phase", r["exchange_rate_burst"],
            f">= {a.burst_rate:,} asked")
    row(f"exchange: sender ({a.sender}) CPU, share of one core",
        r["exchange_cpu_s"] / max(1e-9, r["exchange_elapsed_s"]))
    row("exchange: sender CPU per message published, us",
        r["exchange_cpu_s"] / max(1, r["exchange_published"]) * 1e6,
        "one core then publishes 1e6/this msg/s")
    row("exchange: time waiting for a slow reader, s", r["exchange_slow_wait_s"])
    row("exchange: aggTrade payloads lost (2 % storm)", int(r["exchange_dropped"]))
    row("exchange: frames lost to the 2 s stall", int(r["exchange_stalled"]))
    row("exchange: REST 429 answers", int(r["exchange_429"]))
    row("exchange: frames sent (to all connections)", int(r["exchange_frames_sent"]))
    row("engine: frames received", int(r["frames_received"]),
        "== frames sent, less those in flight at the forced drop")
    row("engine: frames received per second", r["msgs_per_s"], ">= 20,000 sustained")
    row("engine: CPU used, share of one core (all threads)", r["cpu_share"])
    row("engine: CPU of the loop's thread, share of one core", r["loop_cpu_share"],
        "1.0 = the loop never waited (it fell behind)")
    row("engine: CPU per frame (all of live), us", r["cpu_us_per_frame"],
        "one core then keeps up with 1e6/this msg/s")
    row("engine: tick lag p99, sustained phase, ms", r["lag_p99_sustained"], "<= 50")
    if a.burst_s > 0:
        row("engine: tick lag p99, burst phase, ms", r["lag_p99_burst"], "<= 50")
    row("engine: tick lag max, ms", r["lag_max"])
    row("engine: tick lag p50, sustained phase, ms", r["lag_p50_sustained"])
    row("engine: tick step (flush+core+files) p50/p99, ms",
        f"{r['step_p50']:.1f} / {r['step_p99']:.1f}", "a part of every tick's budget")
    row("engine: tick work CPU (frames in + step) p50/p99, sustained, ms",
        f"{r['step_cpu_p50_sus']:.1f} / {r['step_cpu_p99_sus']:.1f}",
        "of the 250 ms a tick has, with the reading")
    if a.burst_s > 0:
        row("engine: tick work CPU p50/p99, burst, ms",
            f"{r['step_cpu_p50_burst']:.1f} / {r['step_cpu_p99_burst']:.1f}")
    row("engine: loop stretch without a turn p99/max, ms",
        f"{r['stall_p99']:.1f} / {r['stall_max']:.1f}", "(what a due timer waits)")
    row("engine: overloaded ticks", int(r["overloaded_ticks"]))
    row("engine: GC collections / longest, gen 0, 1, 2", "; ".join(
        f"{n} / {mx:.0f} ms" for _, n, mx in r["gc"]))  # type: ignore[attr-defined]
    row("engine: RSS growth after warm-up, MB/h", r["rss_mb_per_h"], "<= 10")
    row("engine: RSS at the end, MB", r["rss_end_mb"])
    row("events received", int(r["events_received"]))
    row("  accepted + duplicates + rejected - parse", int(
        r["events_accepted"] + r["duplicates"] + r["rejected"] - r["parse_rejects"]),
        "== events received")
    row("  duplicates / quarantined", f"{int(r['duplicates'])} / {int(r['rejected'])}")
    row("gaps (id ranges) / ids missing", f"{int(r['gaps'])} / {int(r['ids_missing'])}")
    row("  ids fetched back / ids given up", f"{int(r['ids_covered'])} / "
        f"{int(r['ids_given_up'])}")
    row("  TRADE_GAP trades lost (noted)", int(r["trades_lost"]))
    row("  backfill requests / queue high water",
        f"{int(r['backfill_requests'])} / {int(r['queue_high_water'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--rate", type=int, default=20_000)
    ap.add_argument("--burst-rate", type=int, default=50_000)
    ap.add_argument("--warmup-s", type=float, default=20.0)
    ap.add_argument("--sustained-s", type=float, default=90.0)
    ap.add_argument("--burst-s", type=float, default=60.0)
    ap.add_argument("--sender", choices=("batched", "publish"), default="batched",
                    help="the fake exchange's sender: pre-rendered frames, one socket write "
                         "per connection every 10 ms (batched), or FakeBinance.publish per "
                         "event (the slower path of earlier runs)")
    ap.add_argument("--split", action="store_true",
                    help="WS ingest in its own process: capture --to nats:// -> live --from "
                         "(benchmarks/bench_market_split.py)")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        asyncio.run(serve(a))
        return 0
    if a.split:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_market_split import split_engine, split_report

        with tempfile.TemporaryDirectory() as d:
            r = asyncio.run(split_engine(a, Path(d)))
        split_report(r, a)
        return 0
    with tempfile.TemporaryDirectory() as d:
        r = asyncio.run(engine(a, Path(d)))
    report(r, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
