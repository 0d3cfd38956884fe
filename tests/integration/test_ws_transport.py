"""WS transport against the fake exchange: bases, real frame formats, requests, limits, pings."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from engine_adapters.binance.endpoints import universe_streams
from engine_adapters.binance.ws_client import HealthNotice, WsClientConfig, WsFeed
from engine_core.events import (
    BookTickerReceived,
    HealthKind,
    LiquidationReceived,
    MarkPriceReceived,
    Side,
    TradeReceived,
)
from engine_sim.fake_exchange import FakeBinance, FakeConfig

FIX = Path("/work/shared/fixtures/binance/ws")


def _keys(path: str) -> list[str]:
    return list(json.loads((FIX / path).read_text())["data"].keys())


class Sink:
    """Records what the feed delivers (a hand-written fake, no mocks)."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, str, str]] = []
        self.health: list[HealthNotice] = []

    def frame(self, recv_ms: int, conn_id: str, text: str) -> None:
        self.frames.append((recv_ms, conn_id, text))

    def kinds(self, kind: HealthKind) -> list[HealthNotice]:
        return [h for h in self.health if h.kind is kind]


def trade(i: int, sym: str = "BTCUSDT") -> TradeReceived:
    return TradeReceived(symbol=sym, exchange_ts=1_791_391_081_874 + i, price=83434.4,
                         qty=0.016, buyer_is_maker=True, trade_id=i)


def mark(sym: str = "BTCUSDT", ts: int = 1_786_171_884_000) -> MarkPriceReceived:
    return MarkPriceReceived(symbol=sym, exchange_ts=ts, mark_price=64991.37858696,
                             index_price=65016.05673913, funding_rate=0.00003936,
                             next_funding_ts=1_786_176_000_000)


def book(u: int, sym: str = "BTCUSDT") -> BookTickerReceived:
    return BookTickerReceived(symbol=sym, exchange_ts=1_791_091_007_473, bid=84788.2,
                              bid_qty=5.923, ask=84788.3, ask_qty=2.824, update_id=u)


def test_real_format_frames_on_routed_bases(arun: Any, wait_until: Any) -> None:
    async def body() -> None:
        async with FakeBinance(["BTCUSDT", "ETHUSDT"]) as fake:
            sink = Sink()
            feed = WsFeed(fake.ws_base, universe_streams(["BTCUSDT", "ETHUSDT"]),
                          on_frame=sink.frame, on_health=sink.health.append)
            assert [s.conn_id for s in feed.specs] == ["public-0", "market-0"]
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.stats.ws_active == 2)
            await fake.publish(trade(1))
            await fake.publish(book(7))
            await fake.publish(mark())
            await fake.publish(LiquidationReceived(symbol="ETHUSDT", exchange_ts=5,
                                                   side=Side.SELL, price=2.5, qty=3.0))
            assert await wait_until(lambda: len(sink.frames) == 4)
            feed.stop()
            await task
        by_stream = {json.loads(t)["stream"]: (c, json.loads(t)["data"]) for _, c, t in sink.frames}
        assert by_stream["btcusdt@bookTicker"][0] == "public-0"
        assert by_stream["btcusdt@aggTrade"][0] == "market-0"
        assert list(by_stream["btcusdt@aggTrade"][1]) == _keys("combined_aggTrade_st.json")
        assert list(by_stream["btcusdt@markPrice@1s"][1]) == _keys(
            "combined_markPrice_3s_ap_st.json")
        raw_book = json.loads((FIX / "raw_bookTicker_ps_st.json").read_text())
        assert list(by_stream["btcusdt@bookTicker"][1]) == list(raw_book)
        liq = by_stream["ethusdt@forceOrder"][1]
        assert list(liq["o"]) == list(
            json.loads((FIX / "combined_forceOrder_symbol.json").read_text())["data"]["o"])
        assert liq["o"]["S"] == "SELL"
        assert not sink.health  # first connections are not reconnects

    arun(body())


def test_legacy_root_silences_market_streams_and_watchdog_says_stale(
    arun: Any, wait_until: Any
) -> None:
    """Fixtures README fact 2: the root connects, serves bookTicker, never markPrice."""

    async def body() -> None:
        async with FakeBinance(["BTCUSDT"]) as fake:
            sink = Sink()
            cfg = WsClientConfig(legacy_root=True, stream_stale_after_s=0.3,
                                 watchdog_interval_s=0.05)
            feed = WsFeed(fake.ws_base, ["btcusdt@bookTicker", "btcusdt@markPrice@1s"],
                          on_frame=sink.frame, on_health=sink.health.append, config=cfg)
            assert [s.conn_id for s in feed.specs] == ["root-0"]
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.stats.ws_active == 1)
            for i in range(40):
                await fake.publish(book(i + 1))
                await fake.publish(mark(ts=i))
                await asyncio.sleep(0.02)
                if sink.kinds(HealthKind.STREAM_STALE):
                    break
            feed.stop()
            await task
        streams = {json.loads(t)["stream"] for _, _, t in sink.frames}
        assert streams == {"btcusdt@bookTicker"}
        stale = sink.kinds(HealthKind.STREAM_STALE)
        assert [h.symbol for h in stale] == ["BTCUSDT"]
        assert "markPrice" in stale[0].detail

    arun(body())


def test_subscribe_list_and_error_frames(arun: Any) -> None:
    async def body() -> list[str]:
        async with FakeBinance(["BTCUSDT"]) as fake, aiohttp.ClientSession() as s:
            ws = await s.ws_connect(fake.ws_base + "/market/ws")
            out = []
            for req in (
                '{"method":"SUBSCRIBE","params":["btcusdt@aggTrade"],"id":1}',
                '{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":2}',
                '{"params":[]}',
                '{"method":"LIST_SUBSCRIPTIONS","id":3}',
            ):
                await ws.send_str(req)
                out.append((await ws.receive(timeout=2)).data)
            await fake.publish(trade(9))
            out.append((await ws.receive(timeout=2)).data)
            await ws.close()
            return out

    got = arun(body())
    assert got[0] == (FIX / "subscribe_response.json").read_text().strip()
    assert got[1] == (FIX / "error_response.json").read_text().strip().replace('"id":1', '"id":2')
    assert got[2] == (FIX / "error_response_null_id.json").read_text().strip()
    assert got[3] == '{"result":["btcusdt@aggTrade"],"id":3}'
    assert json.loads(got[4])["e"] == "aggTrade"  # raw form: no wrapper on /ws


def test_more_than_ten_messages_a_second_disconnects(arun: Any) -> None:
    """Fact 6."""

    async def body() -> tuple[aiohttp.WSMsgType, int]:
        async with FakeBinance(["BTCUSDT"]) as fake, aiohttp.ClientSession() as s:
            ws = await s.ws_connect(fake.ws_base + "/market/ws")
            for i in range(11):
                await ws.send_str(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            last = None
            for _ in range(20):
                msg = await ws.receive(timeout=2)
                last = msg.type
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
            await ws.close()
            assert last is not None
            return last, fake.stats.disconnects_rate_limit

    kind, drops = arun(body())
    assert kind in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert drops == 1


def test_server_pings_and_drops_a_client_that_never_pongs(arun: Any, wait_until: Any) -> None:
    """Fact 8, shortened: ping every 0.1 s, drop after 0.4 s without a pong."""

    async def body() -> None:
        cfg = FakeConfig(ping_interval_s=0.1, pong_timeout_s=0.4)
        async with FakeBinance(["BTCUSDT"], config=cfg) as fake, aiohttp.ClientSession() as s:
            polite = await s.ws_connect(fake.ws_base + "/market/ws", autoping=True)
            mute = await s.ws_connect(fake.ws_base + "/market/ws", autoping=False)
            reader = asyncio.create_task(polite.receive())
            assert await wait_until(lambda: fake.stats.disconnects_pong_timeout == 1, 2.0)
            assert not reader.done()  # the answering client is still connected
            assert fake.stats.pongs_received >= 2
            assert await wait_until(lambda: fake.connection_count == 1, 2.0)
            reader.cancel()
            await polite.close()
            await mute.close()

    arun(body())


def test_streams_split_by_limit_and_extra_sent_as_subscribe(arun: Any, wait_until: Any) -> None:
    syms = ["AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT"]

    async def body() -> None:
        async with FakeBinance(syms) as fake:
            sink = Sink()
            cfg = WsClientConfig(per_connection=3, url_budget=20, max_outgoing_per_s=50)
            feed = WsFeed(fake.ws_base, universe_streams(syms, book=False, mark=False,
                                                         liquidations=False),
                          on_frame=sink.frame, config=cfg)
            assert [len(s.streams) for s in feed.specs] == [3, 2]
            assert all(s.subscribe_streams for s in feed.specs)
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: feed.counters.control_frames == 2)
            for i, sym in enumerate(syms):
                await fake.publish(trade(i + 1, sym))
            assert await wait_until(lambda: len(sink.frames) == 5)
            feed.stop()
            await task
        assert {c for _, c, _ in sink.frames} == {"market-0", "market-1"}

    arun(body())
