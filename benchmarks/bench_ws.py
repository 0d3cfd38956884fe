"""Benchmark: aggTrade frames per second over a loopback WebSocket, with the clock ticking.

The fake exchange runs in a child process (its own core) and pushes N rendered combined
frames as fast as it can; this process receives them through `WsFeed` (the live code path)
while a `RealClock` ticks every 250 ms, and prints frames/s and the p50/p99/max tick lag.
Target (issue 5): 50,000 msg/s received, parsed, normalized and queued, clock on time.
Run: `.venv/bin/python benchmarks/bench_ws.py [N] [--raw]`:
  default  every frame goes to the live path's `Session` (parse, dedup, normalize, queue)
           and the clock steps the engine (journal, step, log) every tick — the issue's figure
  --raw    frames are only received and counted (the transport's own ceiling)
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import engine_core as ec
from engine_adapters.binance.ws_client import WsClientConfig, WsFeed
from engine_adapters.clock import RealClock
from engine_app.bootstrap import open_session
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_core.events import TradeReceived
from engine_sim import render
from engine_sim.fake_exchange import FakeBinance


def _server(pipe: Connection, n: int) -> None:
    async def main() -> None:
        async with FakeBinance(["BTCUSDT"]) as fake:
            pipe.send(fake.ws_base)
            while fake.connection_count == 0 or not fake.hub.subscribers("btcusdt@aggTrade"):
                await asyncio.sleep(0.01)
            payloads = [
                render.dumps(render.agg_trade_payload(TradeReceived(
                    symbol="BTCUSDT", exchange_ts=1_791_391_081_874 + i, price=83434.4 + i % 7,
                    qty=0.016, buyer_is_maker=bool(i & 1), trade_id=i)))
                for i in range(1, n + 1)
            ]
            for i, p in enumerate(payloads):
                await fake.publish_text("btcusdt@aggTrade", p)
                if i % 2000 == 0:
                    await asyncio.sleep(0)  # let the writer drain
            pipe.send("sent")
            pipe.recv()  # wait for the client to finish

    asyncio.run(main())


async def client(ws_base: str, n: int, pipe: Connection, mode: str) -> None:
    done = asyncio.Event()
    count = 0
    first = last = 0.0
    tmp = tempfile.TemporaryDirectory()
    session = open_session(DataDir(Path(tmp.name)), ec.Config(), ["BTCUSDT"],
                           engine_version=ENGINE_VERSION, fsync="none") \
        if mode == "engine" else None

    def on_frame(recv_ms: int, conn_id: str, text: str) -> None:
        nonlocal count, first, last
        if session is not None:
            session.ingest.ws(recv_ms, text)
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count == n:
            last = time.perf_counter()
            done.set()

    feed = WsFeed(ws_base, ["btcusdt@aggTrade"], on_frame=on_frame,
                  config=WsClientConfig(stale_after_s=30))
    clock = RealClock()

    async def tick() -> None:
        async for t in clock.ticks():
            if session is None:
                continue
            first_tick = session.pending_tick() if session.state.last_tick is None else None
            if session.state.last_tick is None and (first_tick is None or t.tick_id < first_tick):
                continue
            session.step_tick(t.tick_id)

    ticker = asyncio.create_task(tick())
    runner = asyncio.create_task(feed.run())
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        clock.stop()
        feed.stop()
        await runner
        ticker.cancel()
        pipe.send("bye")
        if session is not None:
            session.close()
        tmp.cleanup()
    rate = (n - 1) / (last - first) if last > first else float("nan")
    what = {"engine": "received+parsed+normalized+queued, engine stepping",
            "raw": "received only"}[mode]
    print(f"frames: {count}  rate: {rate:,.0f} msg/s {what}  (target 50,000)")
    if session is not None:
        print(f"engine: {session.counts.events_accepted:,} events accepted, "
              f"{session.stats.ticks} ticks stepped")
    print(f"bytes: {feed.counters.bytes:,}  ticks: {clock.lag.ticks}  tick lag ms "
          f"p50={clock.lag.percentile(0.5)} p99={clock.lag.percentile(0.99)} "
          f"max={clock.lag.max_lag_ms}")


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 200_000
    parent, child = mp.Pipe()
    proc = mp.Process(target=_server, args=(child, n), daemon=True)
    proc.start()
    ws_base = parent.recv()
    mode = "raw" if "--raw" in sys.argv else "engine"
    asyncio.run(client(ws_base, n, parent, mode))
    proc.join(10)


if __name__ == "__main__":
    main()
