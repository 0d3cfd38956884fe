"""Clock ticks (real and virtual), stream planning, rendering and dedup id rules."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from engine_adapters.binance.dedup import EventDeduper, IdGap
from engine_adapters.binance.endpoints import Base, plan_connections, universe_streams
from engine_adapters.binance.messages import FrameParser
from engine_adapters.clock import RealClock, VirtualClock, offset_from
from engine_core import TICK_MS
from engine_core import tick_of_recv_ms as tick_of
from engine_core.events import FundingReceived, OpenInterestReceived
from engine_sim import render

REST = Path("/work/shared/fixtures/binance/rest")
WS = Path("/work/shared/fixtures/binance/ws")


def test_virtual_clock_makes_24h_pass_with_contiguous_tick_ids() -> None:
    start = 1_786_171_884_123
    clock = VirtualClock(start)
    ids = [t.tick_id for t in clock.advance_by(86_400_000)]
    assert ids[0] == tick_of(start) == start // TICK_MS + 1
    assert ids == list(range(ids[0], ids[0] + 345_600))
    assert clock.advance_by(100) == []  # no boundary crossed yet
    with pytest.raises(ValueError, match="must not go back"):
        clock.advance_to(start)


def test_real_clock_ticks_in_order_and_catches_up_after_a_blocked_loop(arun: Any) -> None:
    async def body() -> list[tuple[int, bool]]:
        clock = RealClock()
        out: list[tuple[int, bool]] = []
        async for tick in clock.ticks(max_ticks=6):
            out.append((tick.tick_id, tick.catch_up))
            if len(out) == 2:
                time.sleep(0.6)  # block the loop past two boundaries
        assert clock.lag.ticks == 6 and clock.lag.max_lag_ms >= 250
        return out

    got = arun(body())
    ids = [i for i, _ in got]
    assert ids == list(range(ids[0], ids[0] + 6))
    assert any(c for _, c in got)


def test_offset_estimate_uses_the_round_trip_midpoint() -> None:
    s = offset_from(local_send_ms=1000, server_ms=1600, local_recv_ms=1200)
    assert s.offset_ms == 500 and s.rtt_ms == 200


def test_plan_splits_by_base_and_limit() -> None:
    streams = universe_streams(["BTCUSDT", "ETHUSDT", "XRPUSDT"])
    plan = plan_connections(streams, per_connection=4)
    assert [(p.base, len(p.streams)) for p in plan] == [
        (Base.PUBLIC, 3), (Base.MARKET, 4), (Base.MARKET, 4), (Base.MARKET, 1)]
    assert plan[0].url("ws://h") == (
        "ws://h/public/stream?streams=btcusdt@bookTicker/ethusdt@bookTicker/xrpusdt@bookTicker")
    with pytest.raises(ValueError, match="fact 5"):
        plan_connections(streams, per_connection=1025)
    with pytest.raises(ValueError, match="lowercase"):
        plan_connections(["BTCUSDT@aggTrade"])


def test_decimal_strings_never_use_exponents() -> None:
    assert render.fmt_decimal(1e-05) == "0.00001"
    assert render.fmt_decimal(68005.0, 2) == "68005.00"
    assert render.fmt_decimal(1.5e20) == "150000000000000000000"
    assert render.fmt_decimal(float("nan")) == "NaN"


def test_rest_bodies_match_the_fixture_shapes() -> None:
    oi = OpenInterestReceived(symbol="BTCUSDT", exchange_ts=1787866530443,
                              open_interest=109039.496)
    assert render.open_interest_body(oi) == (REST / "openInterest.json").read_text().strip()
    f = FundingReceived(symbol="BTCUSDT", exchange_ts=1787866534004, funding_rate=0.0000839,
                        mark_price=80065.24544928, index_price=80098.66195652,
                        next_funding_ts=1787875200000)
    want = json.loads((REST / "premiumIndex_one.json").read_text())
    got = json.loads(render.premium_index_body(f))
    assert list(got) == list(want)
    assert got["markPrice"] == want["markPrice"] and got["lastFundingRate"] == "0.00008390"
    assert isinstance(json.loads(render.premium_index_body([f])), list)
    assert render.ws_ack(1) == (WS / "subscribe_response.json").read_text().strip()


def test_dedup_rules_for_each_keyed_stream() -> None:
    d = EventDeduper()
    parser = FrameParser(None)
    agg = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"a":%d,"s":"BTCUSDT",' \
          '"p":"1.0","q":"1.0","f":1,"l":1,"T":1,"m":true}}'

    def keep(text: str) -> bool:
        (ev,) = parser.parse(text).events
        return d.keep(ev)

    gaps: list[IdGap] = []
    d.on_gap = gaps.append
    assert keep(agg % 10)
    assert keep(agg % 14) and gaps == [IdGap(symbol="BTCUSDT", first=11, last=13)]
    assert keep(agg % 12)  # late, inside the reported gap: accepted once, fills it
    assert not keep(agg % 12) and not keep(agg % 14)
    assert d.missing_in(gaps[0]) == 2
    bt = '{"e":"bookTicker","u":%d,"s":"BTCUSDT","E":1,"T":1,"b":"1","B":"1","a":"2","A":"1"}'
    assert keep(bt % 100)
    assert not keep(bt % 90)
    assert keep(bt % 200) and len(gaps) == 1  # u is not contiguous: no gaps
    fo = (WS / "raw_forceOrder.json").read_text()
    assert keep(fo)
    assert not keep(fo)
    assert d.duplicates == 4


def test_a_trade_older_than_the_first_kept_is_kept_and_its_gap_reported() -> None:
    d = EventDeduper()
    assert d.trade("ETHUSDT", 5) == (True, None)
    assert d.trade("ETHUSDT", 2) == (True, IdGap(symbol="ETHUSDT", first=3, last=4))
    assert d.trade("ETHUSDT", 3) == (True, None)  # fills the gap once
    assert d.trade("ETHUSDT", 2) == (False, None) and d.trade("ETHUSDT", 3) == (False, None)
    assert d.trade("ETHUSDT", 1) == (True, None)  # adjacent: nothing in between
    assert d.missing_in(IdGap(symbol="ETHUSDT", first=1, last=5)) == 1
