"""Bus throughput on loopback: capture lines published to JetStream and consumed back.

    .venv/bin/python benchmarks/bench_bus.py [--lines 300000] [--per-message 64]

Starts its own nats-server (engine_sim.nats_server) with JetStream in a temp dir, builds a
synthetic capture (real Binance frames from the market simulator, cached in /tmp), and
reports, next to the target of issue 13 (>= 50,000 messages/s published and consumed):
  publish   lines/s from the first write_line() to the last acknowledgement (the recorder's
            cost of encoding a message id, packing, async publish with futures, acks)
  consume   lines/s of a durable pull consumer reading the stream back, from start-up to
            the last line (fetch batches, acknowledgement per batch)
  check     the consumed lines equal the capture's, byte for byte
The same with one line per NATS message (--per-message 1) shows why lines are packed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from engine_adapters.bus import BusConsumer, BusPublisher
from engine_sim.nats_server import NatsServer
from engine_sim.simulation import MarketSimulator, Regime, Segment
from engine_sim.synthetic_capture import write_capture

TARGET = 50_000


def capture_lines(n: int) -> list[bytes]:
    path = Path(tempfile.gettempdir()) / "bench_bus_capture.jsonl"
    if not path.exists():
        busy = Regime(activity=4.0, liq_prob=0.2, liq_size=0.05)
        symbols = sorted(f"S{i:02d}USDT" for i in range(10))
        write_capture(path, MarketSimulator(symbols, [Segment(name="busy", seconds=240,
                                                              leader=busy, bystander=busy)],
                                            seed=5, oi_poll_ms=5000).events())
    lines = path.read_bytes().splitlines(keepends=True)
    while len(lines) < n:
        lines += lines
    return lines[:n]


async def one_round(url: str, lines: list[bytes], per_message: int) -> tuple[float, float, bool]:
    pub = await BusPublisher(url + "?max_bytes=4G", lines_per_message=per_message,
                             buffer_limit=len(lines) + 1).start()
    t0 = time.perf_counter()
    for line in lines:
        pub.write_line(line)
    ok = await pub.flush(600)
    t_pub = time.perf_counter() - t0
    await pub.close()
    assert ok, "publisher did not drain"
    t0 = time.perf_counter()
    consumer = await BusConsumer(url + "?durable=bench", batch=max(256, 4 * per_message)).start()
    got = [line async for line in consumer.lines()]
    t_con = time.perf_counter() - t0
    await consumer.close()
    return len(lines) / t_pub, len(lines) / t_con, got == lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--per-message", type=int, default=64)
    a = ap.parse_args()
    lines = capture_lines(a.lines)
    mean = sum(map(len, lines)) / len(lines)
    print(f"bench_bus: {len(lines):,} capture lines (mean {mean:.0f} B) over loopback JetStream")
    with NatsServer() as server:
        for per, n in ((a.per_message, len(lines)), (1, min(len(lines), 50_000))):
            pub, con, same = asyncio.run(one_round(f"{server.url}/bench.p{per}", lines[:n], per))
            verdict = "ok" if min(pub, con) >= TARGET else "BELOW TARGET"
            print(f"  {per:>3} line(s)/message  publish {pub:>9,.0f} lines/s   consume "
                  f"{con:>9,.0f} lines/s   (target >= {TARGET:,}/s: {verdict}; "
                  f"identical bytes: {same})")


if __name__ == "__main__":
    main()
