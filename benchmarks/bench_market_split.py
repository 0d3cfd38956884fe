"""The split whole-market benchmark: WS ingest in its own process, the engine behind a bus.

Run: `.venv/bin/python benchmarks/bench_market_live.py --split [...]` (same options). Four
processes instead of two: the fake exchange child of bench_market_live (`--serve`, unchanged:
same rates, gap storm, drop, stall, 429s) -> `capture --top all --out DIR --to nats://...`
(receive + record + publish, no engine; a child) -> nats-server (engine_sim.nats_server, a
child) -> this process, which runs the real `BusLiveRunner` (`live --from nats://...`,
stepped by receive times) and measures what bench_market_live measures for the single
process: frames/s through the engine, tick lag p99 (now - end of the last stepped tick, as
`live` reports it), RSS growth after warm-up, and the accounting: lines the capture process
published == lines this engine consumed (+ counted gaps), frames sent == frames recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import engine_core as ec  # noqa: E402

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """utime + stime of process `pid`, seconds (from /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / _TICKS


def _rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * 4096 / 1e6


class _Lines:
    """Collects a child's stderr lines on a thread (so its pipe never fills)."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._t.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            time.sleep(0.1)
        raise RuntimeError(f"no line matching {pattern!r} in {timeout_s} s: {self.lines[-5:]}")

    def join(self, timeout_s: float) -> None:
        self._t.join(timeout_s)


async def split_engine(a: argparse.Namespace, tmp: Path) -> dict[str, float]:
    from engine_adapters.bus import BusUrl
    from engine_app.live import LiveOptions
    from engine_app.live_bus import BusLiveRunner
    from engine_sim.nats_server import NatsServer

    args = ["--symbols", str(a.symbols), "--rate", str(a.rate), "--burst-rate",
            str(a.burst_rate), "--warmup-s", str(a.warmup_s), "--sustained-s",
            str(a.sustained_s), "--burst-s", str(a.burst_s)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    nats = NatsServer(store_dir=tmp / "js").start()
    exch = subprocess.Popen([sys.executable, str(ROOT / "benchmarks/bench_market_live.py"),
                             "--serve", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert exch.stdin is not None and exch.stdout is not None
    port = int(exch.stdout.readline())
    url_text = f"{nats.url}/market.split"
    cap = subprocess.Popen([sys.executable, "-m", "engine_app", "capture", "--top", "all",
                            "--ws-url", f"ws://127.0.0.1:{port}", "--rest-url",
                            f"http://127.0.0.1:{port}", "--out", str(tmp / "rec"),
                            "--to", url_text], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    cap_err = _Lines(cap.stderr)
    try:
        cap_err.wait_for(r"capture: \d+ symbols, \d+ connections", 60)
        syms = tuple(f"C{i:03d}USDT" for i in range(a.symbols))  # bench_market_live's
        total = a.warmup_s + a.sustained_s + a.burst_s
        opts = LiveOptions(data_dir=tmp / "dd", cfg=ec.Config(), symbols=syms,
                           duration_s=total + 120, fsync="interval:4")
        rss: list[tuple[float, float]] = []

        marks: list[tuple[float, int]] = []  # (when, how many tick lags by then)

        def on_tick(r: BusLiveRunner) -> None:  # every 0.25 s; a lag is taken at each step
            now = time.monotonic()
            marks.append((now, len(r.metrics.lag_samples)))
            if len(marks) % 20 == 0:
                rss.append((now, _rss_mb()))

        # seq=1: the engine reads the stream from its first line, so every line published
        # must arrive here (published == consumed + counted gaps)
        runner = BusLiveRunner(BusUrl.parse(f"{url_text}?seq=1"), opts, on_tick=on_tick,
                               say=lambda m: print(m, file=sys.stderr))
        runner.metrics.lag_samples = collections.deque(maxlen=10_000_000)  # keep every tick
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(8.0)  # the capture's pooled SUBSCRIBE messages go out paced
        if task.done():
            await task
        assert runner.session is not None
        t0 = time.monotonic()
        cpu0, cap_cpu0 = time.process_time(), _cpu_s(cap.pid)
        frames0 = runner.session.counts.frames
        exch.stdin.write("go\n")
        exch.stdin.flush()
        loop = asyncio.get_running_loop()
        trace = os.environ.get("BENCH_TRACEMALLOC") == "1"  # what grows after warm-up
        snap0 = None
        if trace:
            await asyncio.sleep(a.warmup_s)
            tracemalloc.start(8)
            snap0 = tracemalloc.take_snapshot()
        ex = json.loads(await loop.run_in_executor(None, exch.stdout.readline))
        if snap0 is not None:
            diff = tracemalloc.take_snapshot().compare_to(snap0, "traceback")
            print("tracemalloc: largest growth after warm-up", file=sys.stderr)
            for d in diff[:12]:
                print(f"  {d.size_diff / 1e6:+.2f} MB {d.count_diff:+} blocks", file=sys.stderr)
                for fr in d.traceback.format()[-8:]:
                    print(f"    {fr}", file=sys.stderr)
            tracemalloc.stop()
        elapsed = time.monotonic() - t0
        # the engine drains what the bus still holds: wait until it stops moving
        idle_since, last = time.monotonic(), runner.session.counts.frames
        while time.monotonic() - idle_since < 3.0 and time.monotonic() - t0 < elapsed + 60:
            await asyncio.sleep(0.5)
            if runner.session.counts.frames != last:
                last, idle_since = runner.session.counts.frames, time.monotonic()
        drain_s = time.monotonic() - t0 - elapsed
        frames = runner.session.counts.frames - frames0
        cpu = time.process_time() - cpu0
        cap_cpu = _cpu_s(cap.pid) - cap_cpu0
        cap_rss = _rss_mb(cap.pid)
        cap.send_signal(signal.SIGINT)
        cap.wait(timeout=60)
        cap_err.join(5)
        await asyncio.sleep(2.0)
        runner.stop()
        session = await task
    finally:
        if cap.poll() is None:
            cap.kill()
            cap.wait()
        exch.stdin.write("bye\n")
        exch.stdin.flush()
        exch.wait(timeout=30)
        nats.close()
    bus = next((ln for ln in cap_err.lines if "lines published" in ln), "")
    nums = [int(x.replace(",", "")) for x in re.findall(r"[\d,]*\d", bus.split(":", 2)[-1])]
    published, pending, dropped = (nums[0], nums[2], nums[3]) if len(nums) >= 4 else (-1,) * 3
    warm_end = t0 + a.warmup_s
    sus_end = warm_end + a.sustained_s

    samples = list(runner.metrics.lag_samples)
    lags = [(t, v) for (_, n), (t, m) in itertools.pairwise(marks)
            for v in samples[n:m]]  # each lag at the moment its tick was seen stepped

    def p99(lo: float, hi: float) -> float:
        xs = sorted(v for t, v in lags if lo <= t < hi)
        return float(xs[int(0.99 * (len(xs) - 1))]) if xs else float("nan")

    after = [(t, m) for t, m in rss if warm_end <= t < t0 + elapsed]
    slope = 0.0
    if len(after) >= 2:  # least squares, MB per hour
        mt = sum(t for t, _ in after) / len(after)
        mm = sum(m for _, m in after) / len(after)
        den = sum((t - mt) ** 2 for t, _ in after)
        slope = sum((t - mt) * (m - mm) for t, m in after) / den * 3600 if den else 0.0
    st = runner.reader.stats if runner.reader is not None else None
    c = session.counts
    return {
        "exchange_published": ex["published"], "exchange_frames_sent": ex["frames_sent"],
        "exchange_dropped": ex["dropped"], "exchange_stalled": ex["dropped_stall"],
        "exchange_429": ex["rest_429"], "exchange_elapsed_s": ex["elapsed_s"],
        "frames_received": frames, "msgs_per_s": frames / elapsed, "elapsed_s": elapsed,
        "drain_s": drain_s, "cpu_share": cpu / elapsed,
        "cpu_us_per_frame": cpu / max(1, frames) * 1e6,
        "capture_cpu_share": cap_cpu / elapsed,
        "capture_cpu_us_per_frame": cap_cpu / max(1, frames) * 1e6, "capture_rss_mb": cap_rss,
        "lag_p99_sustained": p99(warm_end, sus_end), "lag_p99_burst": p99(sus_end, t0 + elapsed),
        "lag_max": float(max((v for t, v in lags if t0 <= t < t0 + elapsed), default=0)),
        "rss_mb_per_h": slope, "rss_end_mb": rss[-1][1] if rss else 0.0,
        "bus_published": published, "bus_pending": pending, "bus_dropped": dropped,
        "bus_consumed": st.lines if st is not None else -1,
        "bus_skipped": st.skipped if st is not None else -1,
        "bus_skipped_before_start": runner.reader.skipped_lines if runner.reader else -1,
        "events_received": c.events_received, "events_accepted": c.events_accepted,
        "duplicates": c.duplicates, "rejected": c.rejected, "parse_rejects": c.parse_rejects,
    }


def split_report(r: dict[str, float], a: argparse.Namespace) -> None:
    def row(name: str, value: object, target: str = "") -> None:
        v = f"{value:,.1f}" if isinstance(value, float) else \
            f"{value:,}" if isinstance(value, int) else str(value)
        print(f"{name:<48} {v:>14}  {target}")

    print(f"bench_market_live --split: {a.symbols} symbols, exchange -> capture --to -> "
          f"nats-server -> live --from; warm-up {a.warmup_s:g} s, {a.rate:,} msg/s for "
          f"{a.sustained_s:g} s, {a.burst_rate:,} msg/s for {a.burst_s:g} s; load average "
          f"at the end {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    row("exchange: messages published", int(r["exchange_published"]))
    row("exchange: publish rate achieved, msg/s",
        r["exchange_published"] / max(1e-9, r["exchange_elapsed_s"]))
    row("exchange: aggTrade payloads lost (2 % storm)", int(r["exchange_dropped"]))
    row("exchange: frames sent (to all connections)", int(r["exchange_frames_sent"]))
    row("engine: frames stepped", int(r["frames_received"]), "== frames sent, less in flight")
    row("engine: frames per second (send window)", r["msgs_per_s"], ">= 20,000 sustained")
    row("engine: drain after the exchange stopped, s", r["drain_s"])
    row("engine: CPU share of one core", r["cpu_share"])
    row("engine: CPU per frame, us", r["cpu_us_per_frame"])
    row("capture: CPU share of one core", r["capture_cpu_share"])
    row("capture: CPU per frame, us", r["capture_cpu_us_per_frame"])
    row("capture: RSS at the end, MB", r["capture_rss_mb"])
    row("engine: tick lag p99, sustained phase, ms", r["lag_p99_sustained"], "<= 50")
    if a.burst_s > 0:
        row("engine: tick lag p99, burst phase, ms", r["lag_p99_burst"], "<= 50")
    row("engine: tick lag max, ms", r["lag_max"])
    row("engine: RSS growth after warm-up, MB/h", r["rss_mb_per_h"], "<= 10")
    row("engine: RSS at the end, MB", r["rss_end_mb"])
    row("bus: lines published by capture", int(r["bus_published"]))
    row("bus: not published (buffered / dropped)",
        f"{int(r['bus_pending'])} / {int(r['bus_dropped'])}", "0 / 0")
    row("bus: lines consumed + before start + skipped", int(
        r["bus_consumed"] + r["bus_skipped_before_start"] + r["bus_skipped"]),
        "== lines published")
    row("  of which before the engine's start / gaps",
        f"{int(r['bus_skipped_before_start'])} / {int(r['bus_skipped'])}")
    row("events received", int(r["events_received"]))
    row("  accepted + duplicates + rejected - parse", int(
        r["events_accepted"] + r["duplicates"] + r["rejected"] - r["parse_rejects"]),
        "== events received")


__all__ = ["split_engine", "split_report"]
