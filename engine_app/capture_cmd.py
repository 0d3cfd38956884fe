"""`capture`: record raw Binance messages with their receive time, no engine (SPEC section 6).

The same transports as `live` feed a recording instead of a session: every WS frame,
every REST answer (open interest, premiumIndex, any status) and every health notice, in
receive order. A folder `--out` gets crash-safe UTC-hour files (`Recorder`: gzip members
flushed every second, a new file per hour and per start); a `.jsonl[.gz]` name gets one
file. `run` replays the file, the folder or a glob of it offline. With `--to nats://...`
the same lines also go to a `BusPublisher` (`sink`), beside the file or, without `--out`,
alone (engine_app/bus_cmd.py starts and closes it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from engine_adapters.binance.market_plan import plan_polling
from engine_adapters.binance.rest_client import RestClient
from engine_adapters.binance.ws_client import HealthNotice, WsFeed
from engine_adapters.bus.port import CaptureLineSink, TeeSink
from engine_adapters.capture import CaptureWriter
from engine_app.live import LiveOptions, market_streams, resolve_symbols
from engine_app.live_recording import open_recording, poll_recording


async def capture(opts: LiveOptions, out: Path | None, *, say: Callable[[str], None] = print,
                  sink: CaptureLineSink | None = None) -> tuple[int, tuple[str, ...]]:
    """Record until the duration ends or SIGINT/SIGTERM; returns (lines, symbols).

    `sink` (a started bus publisher) gets every line too; `out=None` writes no file.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with open_recording(out, opts.capture_prefix) if out is not None else \
            CaptureWriter(os.devnull) as rec:
        w: CaptureLineSink = rec if sink is None else TeeSink(rec, sink)

        def on_rest(recv_ms: int, path: str, query: str, status: int, body: str) -> None:
            w.write_rest(recv_ms, path, query, status, body)

        def on_health(n: HealthNotice) -> None:
            w.write_health(n.at_ms, n.symbol, n.kind.name, 0)

        async with RestClient(opts.rest_url, on_response=on_rest, on_health=on_health,
                              config=opts.rest_config, seed=opts.seed) as rest:
            symbols = await resolve_symbols(rest, opts)
            feed = WsFeed(opts.ws_url, market_streams(symbols, opts),
                          on_frame=lambda recv_ms, _c, text: w.write_ws(recv_ms, text),
                          on_health=on_health, config=opts.ws_config, seed=opts.seed,
                          universe=symbols)
            poll = plan_polling(len(symbols), opts.rest_config)
            say(f"capture: {len(symbols)} symbols, {len(feed.specs)} connections from "
                f"{opts.ws_url} -> {out}")
            say(f"capture: {poll.describe()}")
            tasks = [asyncio.create_task(feed.run()),
                     asyncio.create_task(rest.poll_forever(
                         symbols, oi_cycle_s=poll.oi_cycle_s,
                         premium_interval_s=poll.premium_interval_s))]
            deadline = None if opts.duration_s is None else time.monotonic() + opts.duration_s
            try:
                while not stop.is_set():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=min(0.25, left or 0.25))
                    poll_recording(rec)  # a killed capture loses at most about a second
            finally:
                feed.stop()
                rest.stop()
                await asyncio.gather(*tasks, return_exceptions=True)
        return rec.lines_written, symbols
