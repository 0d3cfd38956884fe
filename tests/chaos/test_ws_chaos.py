"""WS chaos against the fake exchange: drops, stalls, 24 h rotation, duplicates, bad frames.

Invariant checked throughout: every published aggTrade id is either delivered once or lies
in a gap the live path's deduper reported (and a REST backfill brings those back). The sink
judges frames as `Ingest` does: `FrameParser` then `EventDeduper.keep`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson

from engine_adapters.binance.dedup import EventDeduper, IdGap
from engine_adapters.binance.messages import FrameParser
from engine_adapters.binance.rest_client import RestClient
from engine_adapters.binance.ws_client import HealthNotice, WsClientConfig, WsFeed
from engine_core.events import HealthKind, TradeReceived
from engine_sim.fake_exchange import FakeBinance, FakeConfig, Faults

FAST: dict[str, Any] = {"watchdog_interval_s": 0.05, "backoff_base_s": 0.05,
                        "backoff_cap_s": 0.2}


def trade(i: int) -> TradeReceived:
    return TradeReceived(symbol="BTCUSDT", exchange_ts=1_700_000_000_000 + i, price=100.0 + i,
                         qty=1.5, buyer_is_maker=bool(i % 2), trade_id=i)


class Sink:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.health: list[HealthNotice] = []
        self.gaps: list[IdGap] = []
        self.parser = FrameParser(["BTCUSDT"])
        self.dedup = EventDeduper(on_gap=self.gaps.append)
        self.kept: list[int] = []

    def frame(self, recv_ms: int, conn_id: str, text: str) -> None:
        self.texts.append(text)
        for ev in self.parser.parse(text).events:
            if isinstance(ev, TradeReceived) and self.dedup.keep(ev):
                self.kept.append(ev.trade_id)

    def ids(self) -> list[int]:
        """aggTrade ids the live path's dedup kept, in arrival order."""
        return list(self.kept)

    def still_missing(self) -> int:
        return sum(self.dedup.missing_in(g) for g in self.gaps)

    def gap_ids(self) -> set[int]:
        return {i for g in self.gaps for i in range(g.first, g.last + 1)}

    def kinds(self) -> list[HealthKind]:
        return [h.kind for h in self.health]


def make_feed(fake: FakeBinance, sink: Sink, **cfg: Any) -> WsFeed:
    return WsFeed(fake.ws_base, ["btcusdt@aggTrade"], on_frame=sink.frame,
                  on_health=sink.health.append,
                  config=WsClientConfig(**{**FAST, **cfg}), seed=7)


def test_drop_mid_burst_reconnects_and_every_id_is_received_or_a_gap(
    arun: Any, wait_until: Any
) -> None:
    async def body() -> None:
        async with FakeBinance(["BTCUSDT"]) as fake:
            sink = Sink()
            feed = make_feed(fake, sink)
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.connection_count == 1)
            n = 0
            for n in range(1, 151):
                await fake.publish(trade(n))
            await fake.drop_connections(abrupt=True)
            for n in range(151, 400):  # keep trading while the client is away
                await fake.publish(trade(n))
                if n % 10 == 0:
                    await asyncio.sleep(0.01)
                if feed.counters.reconnects and n > 300:
                    break
            last = n
            assert await wait_until(lambda: sink.ids() and sink.ids()[-1] == last, 3.0)
            feed.stop()
            await task
            ids = sink.ids()
            assert len(ids) == len(set(ids))  # delivered once (a late one fills its gap)
            assert set(ids) | sink.gap_ids() == set(range(1, last + 1))
            assert sink.still_missing() == len(sink.gap_ids() - set(ids))
            assert HealthKind.RECONNECT in sink.kinds()
            assert HealthKind.LIQUIDATION_GAP not in sink.kinds()  # no forceOrder stream
            # The gap can be fetched back over REST (aggTrades fromId, weight 20).
            async with RestClient(fake.rest_base) as rest:
                fetched: set[int] = set()
                for g in sink.gaps:
                    for page in await rest.aggtrades_backfill("BTCUSDT", g.first, g.last):
                        fetched |= {t["a"] for t in json.loads(page.body)}
            assert sink.gap_ids() <= fetched

    arun(body())


def test_silent_stall_is_detected_reconnected_and_resumed(arun: Any, wait_until: Any) -> None:
    async def body() -> None:
        async with FakeBinance(["BTCUSDT"]) as fake:
            sink = Sink()
            feed = make_feed(fake, sink, stale_after_s=0.3)
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.connection_count == 1)
            fake.stall(0.8)
            i = 0
            for i in range(1, 200):
                await fake.publish(trade(i))
                await asyncio.sleep(0.01)
                if HealthKind.STREAM_RESUMED in sink.kinds():
                    break
            feed.stop()
            await task
        kinds = sink.kinds()
        assert kinds.index(HealthKind.STREAM_STALE) < kinds.index(HealthKind.RECONNECT)
        assert kinds.index(HealthKind.RECONNECT) < kinds.index(HealthKind.STREAM_RESUMED)
        assert feed.counters.stalls >= 1
        assert fake.stats.frames_dropped_stall > 0
        ids = sink.ids()
        assert set(ids) | sink.gap_ids() == set(range(ids[0], i + 1))

    arun(body())


def test_lifetime_limit_rotated_with_overlap_and_no_loss(arun: Any, wait_until: Any) -> None:
    """Fact 7 shortened: the server kills connections at 1.2 s; the client rotates at 0.5 s."""

    async def body() -> None:
        cfg = FakeConfig(lifetime_s=1.2)
        async with FakeBinance(["BTCUSDT"], config=cfg) as fake:
            sink = Sink()
            feed = make_feed(fake, sink, planned_reconnect_s=0.5, overlap_timeout_s=0.5)
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.connection_count == 1)
            for i in range(1, 251):
                await fake.publish(trade(i))
                await asyncio.sleep(0.008)
            assert await wait_until(lambda: sink.ids()[-1:] == [250], 2.0)
            feed.stop()
            await task
        assert feed.counters.planned_rotations >= 2
        assert fake.stats.disconnects_lifetime == 0  # we always left first
        assert sink.ids() == list(range(1, 251))
        assert sink.gaps == []
        assert HealthKind.RECONNECT not in sink.kinds()

    arun(body())


def test_duplicates_and_reordering_are_suppressed_and_accounted(
    arun: Any, wait_until: Any
) -> None:
    async def body() -> None:
        faults = Faults(seed=42, duplicate_prob=0.2, reorder_prob=0.1)
        async with FakeBinance(["BTCUSDT"], faults=faults) as fake:
            sink = Sink()
            feed = make_feed(fake, sink)
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.connection_count == 1)
            for i in range(1, 301):
                await fake.publish(trade(i))
            faults.duplicate_prob = faults.reorder_prob = 0.0
            await fake.publish(trade(301))  # flushes a held frame, if any
            assert await wait_until(lambda: feed.counters.frames == fake.stats.frames_sent)
            feed.stop()
            await task
        c = feed.counters
        assert fake.stats.duplicated > 0 and fake.stats.reordered > 0
        assert sink.dedup.duplicates >= fake.stats.duplicated
        assert c.frames == len(sink.texts)  # the transport passes everything up
        ids = sink.ids()
        assert len(ids) == len(set(ids))  # each once; a reordered one fills its gap
        assert set(ids) | sink.gap_ids() == set(range(1, 302))

    arun(body())


def test_malformed_oversized_and_nan_frames_pass_up_without_a_reconnect(
    arun: Any, wait_until: Any
) -> None:
    async def body() -> None:
        faults = Faults(seed=3, malformed_prob=0.1, oversized_prob=0.05, nan_prob=0.05,
                        oversized_bytes=300_000)
        async with FakeBinance(["BTCUSDT"], faults=faults) as fake:
            sink = Sink()
            feed = WsFeed(fake.ws_base, ["btcusdt@aggTrade"], on_frame=sink.frame,
                          config=WsClientConfig(**FAST))
            task = asyncio.create_task(feed.run())
            assert await wait_until(lambda: fake.connection_count == 1)
            for i in range(1, 201):
                await fake.publish(trade(i))
            assert await wait_until(lambda: len(sink.texts) == fake.stats.frames_sent)
            feed.stop()
            await task
        s = fake.stats
        assert s.malformed > 0 and s.oversized > 0 and s.nan > 0
        assert feed.counters.reconnects == 0
        bad_json = 0
        for t in sink.texts:
            try:
                orjson.loads(t)
            except orjson.JSONDecodeError:
                bad_json += 1
        assert bad_json == s.malformed
        assert sum(len(t) > 300_000 for t in sink.texts) == s.oversized
        assert sum('"p":"NaN"' in t for t in sink.texts) == s.nan

    arun(body())


def test_reconnect_backoff_is_bounded_and_jittered(arun: Any) -> None:
    async def body() -> WsFeed:
        # Nothing listens on this port: every connect fails.
        feed = WsFeed("ws://127.0.0.1:9", ["btcusdt@aggTrade"], on_frame=lambda *a: None,
                      config=WsClientConfig(backoff_base_s=0.01, backoff_cap_s=0.05,
                                            connect_timeout_s=0.5))
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(0.6)
        feed.stop()
        await task
        return feed

    feed = arun(body())
    delays = list(feed.counters.backoff_delays)
    assert feed.counters.connect_failures >= 5
    assert all(0 <= d <= 0.05 for d in delays)
    assert len(set(delays)) == len(delays)  # jittered, not lockstep
