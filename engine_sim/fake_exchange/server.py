"""`FakeBinance`: a loopback Binance USD-M exchange (WS + REST) fed by a scripted market.

Start it, point clients at `ws_base` / `rest_base`, and push engine_core events with
`await fake.publish(event)`: streamed events are rendered in the real frame formats and sent
to the subscribers of their streams; open interest and funding are kept for REST; trades are
kept for REST `aggTrades`. `play(...)` runs a timed sequence as a task. `faults` holds the
fault knobs, `stats` the counters. Everything binds to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence

from aiohttp import web

from engine_adapters.binance.endpoints import Base
from engine_core.events import (
    BookTickerReceived,
    FundingReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    TradeReceived,
)
from engine_sim import render
from engine_sim.fake_exchange.faults import FakeConfig, FakeStats, Faults
from engine_sim.fake_exchange.rest_server import MarketState, RestApi
from engine_sim.fake_exchange.ws_server import WsHub


class FakeBinance:
    """A fake Binance USD-M exchange on loopback. Use `async with` or start()/stop()."""

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        config: FakeConfig | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.symbols = tuple(sorted(symbols))
        self.config = config or FakeConfig()
        if self.config.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"FakeBinance binds to loopback only: got host {self.config.host!r}")
        self.faults = faults or Faults()
        self.stats = FakeStats()
        self.market = MarketState(self.symbols, self.config.trade_history)
        self.hub = WsHub(config=self.config, faults=self.faults, stats=self.stats)
        self.rest = RestApi(
            config=self.config, faults=self.faults, stats=self.stats, market=self.market
        )
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._players: list[asyncio.Task[None]] = []

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        hub = self.hub

        def ws_routes(base: Base) -> list[web.RouteDef]:
            prefix = f"/{base.value}" if base.value else ""

            async def raw(request: web.Request) -> web.StreamResponse:
                return await hub.handle(request, base, False)

            async def comb(request: web.Request) -> web.StreamResponse:
                return await hub.handle(request, base, True)

            return [
                web.get(f"{prefix}/ws", raw),
                web.get(f"{prefix}/ws/{{streams:.+}}", raw),
                web.get(f"{prefix}/stream", comb),
            ]

        app.add_routes([r for b in Base for r in ws_routes(b)] + self.rest.routes())
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        addr = self._runner.addresses[0]
        self._port = int(addr[1])

    async def stop(self) -> None:
        for task in self._players:
            task.cancel()
        await asyncio.gather(*self._players, return_exceptions=True)
        self._players.clear()
        if self._runner is not None:
            await self.hub.drop_all(abrupt=False)
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def ws_base(self) -> str:
        """e.g. `ws://127.0.0.1:PORT`; routed bases are `/public`, `/market` below it."""
        return f"ws://{self.config.host}:{self._port}"

    @property
    def rest_base(self) -> str:
        return f"http://{self.config.host}:{self._port}"

    # ---- the market ----------------------------------------------------------------------
    async def publish(self, ev: object) -> int:
        """Render and send one event to its streams' subscribers; returns frames attempted."""
        sym = getattr(ev, "symbol", "")
        s = sym.lower()
        hub = self.hub
        if isinstance(ev, TradeReceived):
            self.market.add_trade(ev)
            return await hub.deliver(f"{s}@aggTrade", render.dumps(render.agg_trade_payload(ev)))
        if isinstance(ev, BookTickerReceived):
            payload = render.dumps(render.book_ticker_payload(ev))
            n = await hub.deliver(f"{s}@bookTicker", payload) + (
                await hub.deliver("!bookTicker", payload) if hub.subscribers("!bookTicker") else 0
            )
            depth = f"{s}@depth20@100ms"  # grown from the top of book (render.depth20_payload)
            if hub.subscribers(depth):
                n += await hub.deliver(depth, render.dumps(render.depth20_payload(ev)))
            return n
        if isinstance(ev, LiquidationReceived):
            payload = render.dumps(render.force_order_payload(ev))
            n = await hub.deliver(f"{s}@forceOrder", payload)
            if hub.subscribers("!forceOrder@arr"):
                n += await hub.deliver("!forceOrder@arr", payload)
            return n
        if isinstance(ev, MarkPriceReceived):
            self.market.premium[sym] = FundingReceived(
                symbol=sym, exchange_ts=ev.exchange_ts, funding_rate=ev.funding_rate,
                mark_price=ev.mark_price, index_price=ev.index_price,
                next_funding_ts=ev.next_funding_ts,
            )
            payload = render.dumps(render.mark_price_payload(ev))
            n = 0
            for name in (f"{s}@markPrice@1s", f"{s}@markPrice"):
                if hub.subscribers(name):
                    n += await hub.deliver(name, payload)
            if hub.subscribers("!markPrice@arr@1s"):  # the all-market form: an array
                n += await hub.deliver("!markPrice@arr@1s", f"[{payload}]")
            return n
        if isinstance(ev, OpenInterestReceived):
            self.market.open_interest[sym] = ev
            return 0
        if isinstance(ev, FundingReceived):
            self.market.premium[sym] = ev
            return 0
        return 0

    async def publish_text(self, stream: str, payload: str) -> int:
        """Send an already-rendered payload (benchmarks, hand-made frames)."""
        return await self.hub.deliver(stream, payload)

    async def publish_texts(self, items: Sequence[tuple[str, str]]) -> int:
        """Send already-rendered (stream, payload) pairs in order, one socket write per
        connection (`WsHub.deliver_many`: the benchmarks' fast sender). Trades sent this way
        are not kept for REST `aggTrades`: add them with `market.add_trade`."""
        return await self.hub.deliver_many(items)

    def play(
        self, timeline: Iterable[tuple[int, object]], *, speed: float = 1.0
    ) -> asyncio.Task[None]:
        """Publish (time_ms, event) pairs at `speed` x real time, as a task (cancel to stop)."""
        if speed <= 0:
            raise ValueError(f"play speed must be > 0: got {speed}")

        async def run() -> None:
            loop = asyncio.get_running_loop()
            start_wall = loop.time()
            first_ms: int | None = None
            for at_ms, ev in timeline:
                if first_ms is None:
                    first_ms = at_ms
                due = start_wall + (at_ms - first_ms) / 1000 / speed
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self.publish(ev)

        task = asyncio.create_task(run())
        self._players.append(task)
        return task

    # ---- fault actions -------------------------------------------------------------------
    async def drop_connections(self, *, abrupt: bool = True) -> int:
        """Drop every WS connection now (abrupt: TCP reset without a close frame)."""
        return await self.hub.drop_all(abrupt=abrupt)

    def stall(self, seconds: float) -> None:
        """Keep connections open but send no data frames for `seconds` (pings continue)."""
        self.hub.stall_until = asyncio.get_running_loop().time() + seconds

    @property
    def connection_count(self) -> int:
        return len(self.hub.conns)
