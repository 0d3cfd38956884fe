"""`demo`: the built-in default — a simulated Binance on loopback, the real live path against it.

1. A `FakeBinance` (the same fake exchange the tests use) starts on 127.0.0.1.
2. The market simulator plays a seeded story on it in real time: calm, a leverage build-up on
   half the symbols, aggressive selling with first liquidations, a cascade, recovery — the
   100-minute story of the scenario tests compressed about 67x into ~90 seconds.
3. `live` runs against it unchanged (WS routing, REST polling, clock, session, files) with the
   demo config, whose windows are compressed to match (engine_app/resources/demo.toml).
4. At the end the data dir is verified (checksums, hash chain, alerts re-derived).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import attrs

import engine_core as ec
from engine_adapters.binance.rest_client import RestClientConfig
from engine_app.live import LiveOptions, LiveRunner
from engine_app.session import AlertSink, Session
from engine_sim.fake_exchange import FakeBinance
from engine_sim.simulation import DEFAULT_SPECS, MarketSimulator, cascade_script

#: 100-minute story x 0.015 = 90 s.
DEMO_SCALE = 0.015
DEMO_SEED = 7
DEMO_SYMBOLS = tuple(sorted(s.symbol for s in DEFAULT_SPECS))


def demo_config() -> ec.Config:
    text = resources.files("engine_app").joinpath("resources/demo.toml").read_text()
    return ec.Config.from_toml_str(text)


def demo_data_dir(base: Path = Path("data")) -> Path:
    return base / "demo" / time.strftime("%Y%m%d-%H%M%S", time.gmtime())


@attrs.frozen(kw_only=True)
class DemoResult:
    session: Session
    data_dir: Path
    seconds: float


async def run_demo(data_dir: Path, *, scale: float = DEMO_SCALE, seed: int = DEMO_SEED,
                   symbols: Sequence[str] = DEMO_SYMBOLS, sinks: Sequence[AlertSink] = (),
                   on_tick: Callable[[LiveRunner], None] | None = None,
                   say: Callable[[str], None] = print, align: bool = True) -> DemoResult:
    """Play the story on a fake exchange and run the live path against it until it ends."""
    script = cascade_script(scale)
    cfg = demo_config()
    # The story starts on a stable-alert bucket boundary, so that the same buckets fall
    # inside the build-up every time (same states and alert kinds on every run).
    bucket_ms = cfg.alerts.ticks_per_bucket * 250
    now_ms = time.time_ns() // 1_000_000
    start_ms = (now_ms // bucket_ms + 1) * bucket_ms if align else now_ms // 1000 * 1000
    say(f"demo: starting on the next {bucket_ms / 1000:.0f} s boundary, in "
        f"{(start_ms - now_ms) / 1000:.1f} s")
    sim = MarketSimulator(symbols, script, seed=seed, start_ms=start_ms, oi_poll_ms=1000)
    story_s = sim.duration_ms / 1000
    t0 = time.monotonic()
    async with FakeBinance(symbols) as fake:
        opts = LiveOptions(
            data_dir=data_dir, cfg=cfg, symbols=tuple(symbols),
            duration_s=(start_ms - now_ms) / 1000 + story_s + 3.0, ws_url=fake.ws_base,
            rest_url=fake.rest_base, fsync="interval:4",
            # the compressed story moves 67x faster: poll open interest every second
            rest_config=RestClientConfig(oi_interval_s=1.0, premium_interval_s=2.0),
            seed=seed)
        runner = LiveRunner(opts, sinks=sinks, on_tick=on_tick, say=say)
        engine = asyncio.create_task(runner.run())
        await asyncio.sleep(max(0.0, (start_ms - time.time_ns() / 1e6) / 1000))
        player = fake.play(sim.events(), speed=1.0)  # sent at their simulated receive times
        try:
            session = await engine
        finally:
            player.cancel()
            runner.stop()
            await asyncio.gather(player, engine, return_exceptions=True)
    return DemoResult(session=session, data_dir=data_dir, seconds=time.monotonic() - t0)
