"""`run` from the bus against `run` of the same capture file: rate, CPU, identical bytes.

    .venv/bin/python benchmarks/bench_bus_run.py [--lines 200000]

Starts its own nats-server, publishes a synthetic capture (10 symbols, busy market: the
capture of benchmarks/bench_bus.py, cut to --lines), then plays it twice through the same
`Session`: from the file (`run_capture`) and from the stream (`BusLineReader` +
`iter_bus_capture` + `run_lines`, what `run nats://...` and `live --from` do). Prints lines/s
(wall) and lines per CPU second for both, the ratio, and whether log + alerts are identical.
The target is the bus one of issue 13 (>= 50,000 lines/s consumed); `run` of a file has its
own (benchmarks/bench_run.py).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_bus import capture_lines  # the script dir is on sys.path

import engine_core as ec
from engine_adapters.bus import BusPublisher
from engine_adapters.bus.bridge import BusLineReader, iter_bus_capture
from engine_adapters.bus.port import recv_ms_of
from engine_app.bootstrap import open_session, run_capture, run_lines
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_app.session import Session
from engine_sim.nats_server import NatsServer

TARGET = 50_000


def play(dd: Path, symbols: tuple[str, ...], feed: Callable[[Session], int]
         ) -> tuple[int, float, float, bytes]:
    session = open_session(DataDir.at(dd), ec.Config(), symbols, engine_version=ENGINE_VERSION,
                           fsync="none")
    w0, c0 = time.perf_counter(), time.process_time()
    try:
        n = feed(session)
    finally:
        session.close()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    out = b"".join(p.read_bytes() for p in sorted((dd / "log").iterdir()))
    return n, wall, cpu, out + (dd / "alerts.jsonl").read_bytes()


async def publish(url: str, lines: list[bytes]) -> None:
    pub = await BusPublisher(url + "?max_bytes=2G", buffer_limit=len(lines) + 1).start()
    for line in lines:
        pub.write_line(line)
    assert await pub.flush(600), "publisher did not drain"
    await pub.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=200_000)
    a = ap.parse_args()
    lines = capture_lines(a.lines)
    # one pass of the capture only: a doubled one would step its clock back
    cut = next((i for i in range(1, len(lines)) if recv_ms_of(lines[i]) < recv_ms_of(lines[0])),
               len(lines))
    lines = lines[:cut]
    symbols = tuple(sorted(f"S{i:02d}USDT" for i in range(10)))
    tmp = Path(tempfile.mkdtemp(prefix="bench-bus-run-"))
    cap = tmp / "c.jsonl"
    cap.write_bytes(b"".join(lines))
    print(f"bench_bus_run: {len(lines):,} capture lines, {len(symbols)} symbols")
    with NatsServer() as server:
        url = f"{server.url}/bench.run"
        asyncio.run(publish(url, lines))
        f = play(tmp / "file", symbols, lambda s: run_capture(s, cap))
        b = play(tmp / "bus", symbols,
                 lambda s: run_lines(s, iter_bus_capture(BusLineReader(url + "?durable=r"))))
    for name, (n, wall, cpu, _) in (("file", f), ("bus", b)):
        print(f"  run from the {name:<4}  {n / wall:>9,.0f} lines/s wall   "
              f"{n / cpu:>9,.0f} lines/CPU-s   ({wall:.2f} s wall, {cpu:.2f} s CPU)")
    rate = b[0] / b[1]
    print(f"  bus / file (wall): {f[1] / b[1]:.2f}   target >= {TARGET:,} lines/s from the bus: "
          f"{'ok' if rate >= TARGET else 'BELOW TARGET'}   identical log + alerts: {f[3] == b[3]}")


if __name__ == "__main__":
    main()
