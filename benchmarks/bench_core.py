"""Throughput and tick latency of the pure core: flush + step, figures printed with targets.

    .venv/bin/python benchmarks/bench_core.py [--tokens 400] [--seconds 60] [--events-per-tick 2000]

A realistic mix from the market simulator (trades, book updates, mark prices, liquidations,
open interest) for N symbols is assigned to ticks by receive time, ingested into the
CanonicalEngine (timed separately), then each tick is flushed and stepped. Targets (issue 3):
  >= 200,000 canonical events/s through flush + step on one core
  p99 time per tick <= 25 ms with ~2,000 events per tick
Quiet markets (issue 9): the cost of one token-tick (one token stepped through one tick) on
empty batches and on sparse ones (one trade per token every 20 ticks), printed in microseconds
next to the target of half the figure measured before that issue's speed-up.
Where a quiet token-tick goes (2026-12-03; callgrind, instructions per empty token-tick as the
difference of a 250- and a 50-tick run): 106,844 in all (f3f4c74, before issue 9: 285,848).
The interpreter loop itself is ~40 %; object turnover (malloc/free, tuple and float
allocation and deallocation, frame clears) ~20 %; struct packing, CRCs, rounding and the
rest of C ~40 %. By bytecodes (settrace opcode counter, ~1,900 per empty token-tick): feature
extraction ~40 %, the rules (tier, trigger cost, scores, FSM) ~32 %, quantizing and packing
the token record ~22 %, the evidence record ~5 %. Named tuples are unpacked through their
iterator (the interpreter specializes only exact tuples), so the 73 constants of the three
per-token functions are bound once, in closures (`feature_kernel`, `cost_kernel`,
`scores_kernel`: 3.2 %); slicing a state first saved only 0.5 %; min()/max() over nine
arguments cost 2.8 % and were replaced by chained comparisons; the builtin round() another
3.8 % (its special-method lookup: float.__round__ is used); a zero field skips its range
test as well as its rounding (2.9 %).
What is left is one Python statement per value.
    --quiet-only   skip the dense run
    --profile      also split a quiet token-tick into its stages (flush, extract, each rule,
                   and the rest of step: records, evidence, alerts)
    --compare REF  also time the quiet runs (and, without --quiet-only, the dense one) on
                   engine_core as of git commit REF, alternating old and new in subprocesses
                   (best of 5 each), and print the ratios
    --instructions with --compare: count the quiet token-tick in CPU instructions instead of
                   timing it (valgrind's cachegrind; the same count on every run, whatever
                   else the machine is doing). Each side runs 50 and 250 ticks and the
                   difference is divided by 200 x tokens, so start-up and imports cancel out.
                   Instructions are not time (a cache miss or a mispredicted branch costs
                   more than an add), but on a shared machine they settle an A/B that timings
                   cannot: the time ratio here has wandered by +-0.1 between runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import engine_core as ec
from engine_sim.simulation import MarketSimulator, Regime, Segment, spec_for


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--events-per-tick", type=int, default=2000,
                    help="target density; activity is scaled to reach it")
    ap.add_argument("--quiet-tokens", type=int, default=100)
    ap.add_argument("--quiet-ticks", type=int, default=2000)
    ap.add_argument("--quiet-only", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also split the quiet token-tick into its stages")
    ap.add_argument("--compare", metavar="REF", default="")
    ap.add_argument("--instructions", action="store_true",
                    help="with --compare: count instructions (cachegrind) instead of timing")
    ap.add_argument("--quiet-json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--quiet-run", metavar="MODE", default="", help=argparse.SUPPRESS)
    ap.add_argument("--dense-json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quiet_run:
        quiet_run(args.quiet_run, args.quiet_tokens, args.quiet_ticks)
        return
    if args.instructions:
        if not args.compare:
            ap.error("--instructions needs --compare REF")
        compare_instructions(args.compare, args.quiet_tokens)
        return
    if args.quiet_json:
        print(json.dumps(quiet(args.quiet_tokens, args.quiet_ticks, show=False)))
        return
    if args.dense_json:
        print(json.dumps({"dense": dense(args, show=False)}))
        return
    if args.compare:
        dense_args = [] if args.quiet_only else [
            "--tokens", str(args.tokens), "--seconds", str(args.seconds),
            "--events-per-tick", str(args.events_per_tick)]
        compare(args.compare, args.quiet_tokens, args.quiet_ticks, dense_args)
    else:
        quiet(args.quiet_tokens, args.quiet_ticks)
    if args.profile:
        profile(args.quiet_tokens, min(args.quiet_ticks, 500))
    if not args.quiet_only:
        dense(args)


#: Cost per token-tick measured before issue 9's speed-up (same machine, same command);
#: the target is half of it.
BEFORE_US = {"empty": 23.25, "sparse": 21.11}


def compare(ref: str, n_tokens: int, n_ticks: int, dense_args: list[str]) -> None:
    """Cost of engine_core at `ref` and now, measured alternately in one run.

    Quiet runs always; the dense one too when `dense_args` (its options) is not empty.
    """
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        _checkout(ref, tmp)
        best: dict[str, dict[str, float]] = {"before": {}, "now": {}}
        for _ in range(5):
            for label, path in (("before", tmp), ("now", str(root))):
                env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, str(root)]))
                out = subprocess.run([sys.executable, __file__, "--quiet-json",
                                      "--quiet-tokens", str(n_tokens), "--quiet-ticks",
                                      str(n_ticks)], env=env, capture_output=True, text=True,
                                     check=True).stdout
                for mode, us in json.loads(out).items():
                    best[label][mode] = min(us, best[label].get(mode, us))
                if dense_args:
                    out = subprocess.run([sys.executable, __file__, "--dense-json", *dense_args],
                                         env=env, capture_output=True, text=True,
                                         check=True).stdout
                    rate = json.loads(out.splitlines()[-1])["dense"]
                    best[label]["dense"] = max(rate, best[label].get("dense", rate))
    if "dense" in best["now"]:
        b, n = best["before"].pop("dense"), best["now"].pop("dense")
        print(f"flush + step before ({ref}) {b:10,.0f} events/s   now {n:10,.0f} events/s   "
              f"{n / b:4.2f}x  (target >= 230,000, issue 9)  "
              f"{'OK' if n >= 230_000 else 'BELOW TARGET'}")
    for mode in best["now"]:
        b, n = best["before"][mode], best["now"][mode]
        print(f"token-tick {mode:6s} before ({ref}) {b:7.2f} us   now {n:7.2f} us   "
              f"{b / n:4.2f}x faster  (target >= 2x)  {'OK' if b >= 2 * n else 'BELOW TARGET'}")


def _checkout(ref: str, into: str) -> None:
    """engine_core as of git commit `ref`, extracted under `into`."""
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(["git", "archive", ref, "engine_core"], cwd=root,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)


MODES = {"empty": 0, "sparse": 20}  # mode -> a trade per token every N ticks (0: none)


def quiet_run(mode: str, n_tokens: int, n_ticks: int) -> None:
    """The quiet loop alone, untimed (what --instructions counts)."""
    symbols = sorted(f"Q{i:03d}USDT" for i in range(n_tokens))
    state, q, first = _quiet_market(symbols)
    for t in range(first, first + n_ticks):
        _trades(q, symbols, t, MODES[mode])
        state, _recs, _alerts = ec.step(state, q.flush(t), t)


def _instructions(path: str, mode: str, n_tokens: int, n_ticks: int) -> int:
    """CPU instructions of one `quiet_run` under cachegrind, engine_core taken from `path`."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, str(root)]))
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no",
                          "--cachegrind-out-file=/dev/null", sys.executable, __file__,
                          "--quiet-run", mode, "--quiet-tokens", str(n_tokens),
                          "--quiet-ticks", str(n_ticks)], env=env, capture_output=True,
                         text=True, check=True).stderr
    for line in out.splitlines():
        if "I   refs:" in line or "I refs:" in line:
            return int(line.split(":")[1].replace(",", ""))
    raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")


def compare_instructions(ref: str, n_tokens: int) -> None:
    """Instructions per quiet token-tick at `ref` and now (see --instructions)."""
    if shutil.which("valgrind") is None:
        sys.exit("bench_core: --instructions needs valgrind on the PATH "
                 "(Debian/Ubuntu: apt install valgrind)")
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="bench-core-") as tmp:
        _checkout(ref, tmp)
        for mode in MODES:
            per: dict[str, float] = {}
            for label, path in (("before", tmp), ("now", str(root))):
                lo, hi = (_instructions(path, mode, n_tokens, k) for k in (50, 250))
                per[label] = (hi - lo) / (200 * n_tokens)
            b, n = per["before"], per["now"]
            print(f"token-tick {mode:6s} before ({ref}) {b:9,.0f} instructions   now "
                  f"{n:9,.0f}   {b / n:4.2f}x fewer  (target >= 2x)  "
                  f"{'OK' if b >= 2 * n else 'BELOW TARGET'}")


def _quiet_market(symbols: list[str]) -> tuple[ec.EngineState, ec.CanonicalEngine, int]:
    """A fresh session in which every token has a book, a mark and open interest."""
    state = ec.initial_state(ec.Config(), symbols)
    q = ec.CanonicalEngine(symbols)
    first = 7_000_000_000
    for i, sym in enumerate(symbols):
        ts = first * 250 - 200
        p = 100.0 + i
        q.ingest(ec.BookTickerReceived(symbol=sym, exchange_ts=ts, bid=p, bid_qty=5.0,
                                       ask=p + 0.01, ask_qty=5.0, update_id=1))
        q.ingest(ec.MarkPriceReceived(symbol=sym, exchange_ts=ts, mark_price=p,
                                      index_price=p, funding_rate=0.0001))
        q.ingest(ec.OpenInterestReceived(symbol=sym, exchange_ts=ts, open_interest=1e6))
    return state, q, first


def _trades(q: ec.CanonicalEngine, symbols: list[str], t: int, every: int) -> None:
    """One trade per token every `every` ticks (none when 0)."""
    if every:
        for i, sym in enumerate(symbols):
            if (t + i) % every == 0:
                q.ingest(ec.TradeReceived(symbol=sym, exchange_ts=t * 250 - 100, trade_id=t,
                                          price=100.0 + i, qty=1.0,
                                          buyer_is_maker=bool((t // every) % 2)))


def quiet(n_tokens: int, n_ticks: int, show: bool = True) -> dict[str, float]:
    """Time `flush + step` per token-tick on empty and on sparse batches."""
    result: dict[str, float] = {}
    symbols = sorted(f"Q{i:03d}USDT" for i in range(n_tokens))
    for mode, every in MODES.items():
        state, q, first = _quiet_market(symbols)
        gc.collect()
        spent = 0.0
        for t in range(first, first + n_ticks):
            _trades(q, symbols, t, every)
            t0 = time.perf_counter()
            state, _recs, _alerts = ec.step(state, q.flush(t), t)
            spent += time.perf_counter() - t0
        us = spent / (n_tokens * n_ticks) * 1e6
        result[mode] = us
        if not show:
            continue
        before = BEFORE_US[mode]
        target = f"(target <= {before / 2:.2f} us, half of {before:.2f} before issue 9)" \
            if before else "(no before figure recorded)"
        ok = "" if not before else ("OK" if us <= before / 2 else "ABOVE TARGET")
        print(f"token-tick {mode:6s} {us:8.2f} us   {target}  {ok}")
    return result


def profile(n_tokens: int, n_ticks: int) -> None:
    """Split a quiet token-tick into stages: each stage timed over all tokens of a tick.

    The stages are the core's own functions called the way `step` calls them, with the
    garbage collector off (the stage loops' own allocations would otherwise trigger passes
    inside `step`); what `step` spends beyond them is the token and evidence records, the
    alert engine and the glue. The collector's share of a plain run is printed apart.
    """
    from engine_core import structural, tier

    symbols = sorted(f"Q{i:03d}USDT" for i in range(n_tokens))
    for mode, every in (("empty", 0), ("sparse", 20)):
        collector = _collector_share(symbols, n_ticks, every)
        state, q, first = _quiet_market(symbols)
        spent: dict[str, float] = defaultdict(float)
        clock = time.perf_counter
        gc.collect()
        gc.disable()
        for t in range(first, first + n_ticks):
            _trades(q, symbols, t, every)
            t0 = clock()
            batches = q.flush(t)
            t1 = clock()
            if t > first:
                p, cfg = state.params, state.config
                w = state.weights.advance(p.features)
                fr = [p.extract(ts.features, b, w, ts.quiet)[1]
                      for ts, b in zip(state.tokens, batches, strict=True)]
                t2 = clock()
                tc = [tier.update(ts.tier, f, cfg.tier)
                      for ts, f in zip(state.tokens, fr, strict=True)]
                t3 = clock()
                co = [p.cost_of(f, c.tier) for f, c in zip(fr, tc, strict=True)]
                t4 = clock()
                sc = [p.scores_of(f, c.tier, x.cost) for f, c, x in zip(fr, tc, co, strict=True)]
                t5 = clock()
                for ts, f, s in zip(state.tokens, fr, sc, strict=True):
                    structural.update(ts.fsm, s, f.quality, cfg.structural, p.structural)
                t6 = clock()
                for k, v in (("extract", t2 - t1), ("tier", t3 - t2), ("cost", t4 - t3),
                             ("scores", t5 - t4), ("fsm", t6 - t5)):
                    spent[k] += v
            t7 = clock()
            state, _recs, _alerts = ec.step(state, batches, t)
            if t > first:
                spent["flush"] += t1 - t0
                spent["step"] += clock() - t7
        gc.enable()
        us = {k: v / (n_tokens * (n_ticks - 1)) * 1e6 for k, v in spent.items()}
        rules = us["tier"] + us["cost"] + us["scores"] + us["fsm"]
        rest = us["step"] - us["extract"] - rules
        print(f"token-tick {mode:6s} split (us): flush {us['flush']:.2f} | extract "
              f"{us['extract']:.2f} | rules {rules:.2f} (tier {us['tier']:.2f}, cost "
              f"{us['cost']:.2f}, scores {us['scores']:.2f}, fsm {us['fsm']:.2f}) | rest of step "
              f"(records, evidence, alerts) {rest:.2f} | flush + step "
              f"{us['flush'] + us['step']:.2f} (collector off; on, it adds {collector:.2f})")


def _collector_share(symbols: list[str], n_ticks: int, every: int) -> float:
    """Microseconds per token-tick the garbage collector spends in a plain quiet run."""
    state, q, first = _quiet_market(symbols)
    spent, started = [0.0], [0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - started[0]

    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        for t in range(first, first + n_ticks):
            _trades(q, symbols, t, every)
            state, _recs, _alerts = ec.step(state, q.flush(t), t)
    finally:
        gc.callbacks.remove(on_gc)
    return spent[0] / (len(symbols) * n_ticks) * 1e6


def dense(args: argparse.Namespace, show: bool = True) -> float:
    """Throughput and tick latency on a busy market from the simulator; returns events/s."""
    symbols = sorted(f"S{i:03d}USDT" for i in range(args.tokens))
    # ~20 trades/s/symbol at activity 1 plus ~5 book updates/s: scale activity to the target
    per_symbol_tick = args.events_per_tick / args.tokens
    activity = max(0.1, (per_symbol_tick * 4 - 6) / 20)
    busy = Regime(activity=activity, vol_bps_s=4.0, liq_prob=0.3, liq_size=0.05)
    sim = MarketSimulator(symbols, [Segment(name="busy", seconds=args.seconds, leader=busy,
                                            bystander=busy)], seed=1, oi_poll_ms=5000)
    _ = [spec_for(s, i) for i, s in enumerate(symbols)]
    say = print if show else (lambda *_a: None)
    say(f"generating {args.seconds:.0f} s of market for {args.tokens} symbols ...")
    by_tick: dict[int, list[ec.MarketEvent]] = defaultdict(list)
    for recv, ev in sim.events():
        by_tick[recv // 250 + 1].append(ev)
    ticks = sorted(by_tick)
    n_events = sum(len(v) for v in by_tick.values())
    say(f"{len(ticks)} ticks, {n_events:,} events, {n_events / len(ticks):,.0f} events/tick")

    cfg = ec.Config()
    state = ec.initial_state(cfg, symbols)
    q = ec.CanonicalEngine(symbols)
    ingest_s = 0.0
    tick_ms: list[float] = []
    # The pre-generated market (hundreds of thousands of events) is not part of a live heap,
    # where only one tick of events is alive: keep it out of the collector's scans.
    gc.collect()
    gc.freeze()
    for t in range(ticks[0], ticks[-1] + 1):
        evs = by_tick.get(t, [])
        t0 = time.perf_counter()
        for e in evs:
            q.ingest(e)
        t1 = time.perf_counter()
        state, _recs, _alerts = ec.step(state, q.flush(t), t)
        t2 = time.perf_counter()
        ingest_s += t1 - t0
        tick_ms.append((t2 - t1) * 1000)
    step_s = sum(tick_ms) / 1000
    tick_ms_sorted = sorted(tick_ms)
    p50 = statistics.median(tick_ms)
    p99 = tick_ms_sorted[int(0.99 * (len(tick_ms_sorted) - 1))]
    rate = n_events / step_s
    if not show:
        return rate
    print(f"flush + step      {rate:12,.0f} events/s   (target >= 200,000)  "
          f"{'OK' if rate >= 200_000 else 'BELOW TARGET'}")
    print(f"tick time p50     {p50:12.2f} ms")
    print(f"tick time p99     {p99:12.2f} ms         (target <= 25 ms)      "
          f"{'OK' if p99 <= 25 else 'ABOVE TARGET'}")
    print(f"tick time max     {max(tick_ms):12.2f} ms")
    print(f"ingest (normalize) {n_events / ingest_s:11,.0f} events/s   (no target; shell side)")
    return rate


if __name__ == "__main__":
    main()
