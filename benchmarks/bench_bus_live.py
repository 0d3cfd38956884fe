"""`live --from` lag: how long after a tick ends a bus-following engine has stepped it.

    .venv/bin/python benchmarks/bench_bus_live.py [--rate 100] [--seconds 10]

Starts its own nats-server; a publisher writes capture lines stamped with the wall clock at
`--rate` lines/s while a `BusLiveRunner` (what `live --from` runs) follows the stream in the
same process. Every 10 ms it samples now minus the end of the last stepped tick. A tick is
stepped once a message of a later tick arrives, so the floor is the tick itself (up to
250 ms); what is above it is the bus, the bridge's threads and the loop. No target is set
for it: the p99 is printed next to one tick + 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import engine_core as ec
from engine_adapters.bus import BusPublisher, BusUrl
from engine_adapters.bus.port import ws_line
from engine_app.live import LiveOptions
from engine_app.live_bus import BusLiveRunner
from engine_sim.nats_server import NatsServer

TARGET_P99_MS = ec.TICK_MS + 50


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def measure(url: str, data_dir: Path, rate: float, seconds: float) -> list[int]:
    pub = await BusPublisher(url).start()
    opts = LiveOptions(data_dir=data_dir, cfg=ec.Config(), symbols=("BTCUSDT",),
                       duration_s=seconds + 1.0, fsync="none")
    runner = BusLiveRunner(BusUrl.parse(url + "?durable=lag"), opts, say=lambda _m: None)
    engine = asyncio.create_task(runner.run())
    lags: list[int] = []
    warm = time.monotonic() + 1.5  # start-up: connect, create the durable
    end = time.monotonic() + seconds
    period = 1.0 / rate
    while time.monotonic() < end:
        pub.write_line(ws_line(wall_ms(), '{"stream":"btcusdt@aggTrade","data":{}}'))
        await asyncio.sleep(period)
        s = runner.session
        if s is not None and s.stats.last_tick is not None and time.monotonic() > warm:
            lags.append(wall_ms() - s.stats.last_tick * ec.TICK_MS)
    await engine
    await pub.close()
    return sorted(lags)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=100.0, help="lines per second")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    with NatsServer() as server:
        lags = asyncio.run(measure(f"{server.url}/bench.live", Path(tempfile.mkdtemp()),
                                   a.rate, a.seconds))
    if not lags:
        print("bench_bus_live: no tick was stepped")
        return
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    print(f"bench_bus_live: {a.rate:.0f} lines/s for {a.seconds:.0f} s, {len(lags)} samples")
    print(f"  tick end -> stepped: median {statistics.median(lags):.0f} ms, p99 {p99} ms, "
          f"max {lags[-1]} ms   (p99 <= one tick + 50 ms = {TARGET_P99_MS} ms: "
          f"{'yes' if p99 <= TARGET_P99_MS else 'NO'})")


if __name__ == "__main__":
    main()
