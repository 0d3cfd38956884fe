"""The fake exchange's batched sender: the same frames as one-by-one delivery, on both forms."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from engine_sim.fake_exchange import FakeBinance
from engine_sim.fake_exchange.faults import Faults

STREAMS = ("btcusdt@aggTrade", "ethusdt@aggTrade")


def _items(tag: str) -> list[tuple[str, str]]:
    """Payloads of every WS length form (7-bit, 16-bit and 64-bit lengths), two streams,
    and one stream nobody subscribed to."""
    out = []
    for i, size in enumerate((5, 125, 126, 300, 65_535, 65_536, 70_000)):
        body = "x" * size
        out.append((STREAMS[i % 2], f'{{"tag":"{tag}","i":{i},"pad":"{body}"}}'))
        out.append(("solusdt@aggTrade", '{"unsubscribed":1}'))
    return out


async def _read(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[str]:
    got: list[str] = []
    while len(got) < n:
        msg = await asyncio.wait_for(ws.receive(), 5.0)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        got.append(msg.data)
    return got


def test_batched_frames_equal_one_by_one_frames(arun: Any, wait_until: Any) -> None:
    async def body() -> None:
        async with FakeBinance(["BTCUSDT", "ETHUSDT", "SOLUSDT"]) as fake, \
                aiohttp.ClientSession() as http:
            raw = await http.ws_connect(f"{fake.ws_base}/market/ws/{'/'.join(STREAMS)}")
            comb = await http.ws_connect(f"{fake.ws_base}/market/stream?streams="
                                         f"{'/'.join(STREAMS)}")
            assert await wait_until(lambda: fake.stats.ws_active == 2)
            for st, pl in _items("one"):
                await fake.publish_text(st, pl)
            assert await fake.publish_texts(_items("many")) == 2 * 7
            for ws, combined in ((raw, False), (comb, True)):
                got = await _read(ws, 14)
                one = [t.replace('"tag":"one"', '"tag":"T"') for t in got[:7]]
                many = [t.replace('"tag":"many"', '"tag":"T"') for t in got[7:]]
                assert one == many
                assert got[7].startswith('{"stream":"btcusdt@aggTrade","data":{"tag":"many"') \
                    if combined else got[7].startswith('{"tag":"many","i":0')
                assert len(got[13]) > 70_000
            assert fake.stats.frames_sent == 4 * 7
            assert fake.stats.frames_dropped_no_conn == 2 * 7
            await raw.close()
            await comb.close()

    arun(body())


def test_batched_send_keeps_the_stall_and_the_gap_storm(arun: Any, wait_until: Any) -> None:
    async def body() -> None:
        faults = Faults(seed=3, drop_prob=0.5, drop_suffix="@aggTrade")
        async with FakeBinance(["BTCUSDT", "ETHUSDT"], faults=faults) as fake, \
                aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{fake.ws_base}/market/ws/{'/'.join(STREAMS)}")
            assert await wait_until(lambda: fake.stats.ws_active == 1)
            items = [(STREAMS[i % 2], f'{{"i":{i}}}') for i in range(400)]
            fake.stall(10.0)
            assert await fake.publish_texts(items) == 0
            assert fake.stats.frames_dropped_stall == 400 and fake.stats.frames_sent == 0
            fake.stall(0.0)
            sent = await fake.publish_texts(items)
            assert 120 < sent < 280 and fake.stats.dropped == 400 - sent
            got = await _read(ws, sent)
            ids = [int(t[5:-1]) for t in got]
            assert ids == sorted(ids) and len(set(ids)) == sent  # order kept, none twice
            await ws.close()

    arun(body())
