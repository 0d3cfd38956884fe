"""The simulated capture: Binance shapes and cadences, receive order, ground truth on disk."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pytest

from engine_adapters.binance.messages import FrameParser
from engine_adapters.binance.rest_payloads import RestParser
from engine_adapters.capture import CaptureProblem, RestLine, WsLine, iter_capture
from engine_adapters.evaluation.scoring import load_events
from engine_sim.market.emit import OI_POLL_S, Emitter
from engine_sim.market.run import SimRun, generate, write_capture, write_truth


@pytest.fixture(scope="module")
def run() -> SimRun:
    return generate("cascade", seed=3, hours=0.4, n_symbols=3, depth_ms=500)


@pytest.fixture(scope="module")
def capture(run: SimRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cap") / "cap.jsonl.gz"
    write_capture(run, out, workers=1)
    return out


def test_capture_is_in_receive_order_and_parses_with_the_engines_parsers(
        run: SimRun, capture: Path) -> None:
    frames, rest = FrameParser(run.symbols), RestParser(run.symbols)
    kinds: Counter[str] = Counter()
    rejects: Counter[str] = Counter()
    last = 0
    for item in iter_capture(capture):
        assert not isinstance(item, CaptureProblem), item
        assert item.recv_ms >= last
        last = item.recv_ms
        if isinstance(item, WsLine):
            p = frames.parse(item.raw)
            kinds.update(type(e).__name__ for e in p.events)
            kinds["unused"] += p.unused
        else:
            assert isinstance(item, RestLine), item  # no health lines in a simulated capture
            p = rest.parse(item.path, item.query, item.status, item.raw)
            kinds.update(type(e).__name__ for e in p.events)
        rejects.update(r.reason for r in p.rejects)
    # Everything parses, the start-up REST data (fundingInfo, openInterestHist) included.
    assert not rejects
    n_s = round(0.4 * 3600)
    assert kinds["MarkPriceReceived"] == 3 * n_s  # markPrice@1s, every symbol, every second
    assert kinds["BookTickerReceived"] == 3 * n_s * 4  # every 250 ms
    assert kinds["DepthReceived"] == 3 * n_s * 2  # depth20@500ms frames, read as bands
    assert kinds["FundingInfoReceived"] >= 1 and kinds["OpenInterestHistoryReceived"] >= 1
    assert kinds["OpenInterestReceived"] == 3 * n_s // OI_POLL_S
    assert kinds["TradeReceived"] > 3 * n_s
    assert kinds["LiquidationReceived"] > 0


def test_force_orders_at_most_one_per_symbol_per_second(run: SimRun, capture: Path) -> None:
    per: Counter[tuple[str, int]] = Counter()
    for item in iter_capture(capture):
        if isinstance(item, WsLine) and "@forceOrder" in item.raw:
            o = orjson.loads(item.raw)["data"]["o"]
            per[(o["s"], o["T"] // 1000)] += 1
    assert per and max(per.values()) == 1
    # Seconds with liquidations in the mechanics = seconds with one frame (the latest order).
    liq_seconds = int(((run.path.liq_long + run.path.liq_short) > 0).sum())
    assert len(per) == liq_seconds


def test_chunked_emission_in_parallel_gives_the_same_bytes(run: SimRun, tmp_path: Path) -> None:
    one, par = tmp_path / "one.jsonl.gz", tmp_path / "par.jsonl.gz"
    write_capture(run, one, workers=1, chunk_s=300)
    write_capture(run, par, workers=2, chunk_s=300)
    assert gzip.decompress(par.read_bytes()) == gzip.decompress(one.read_bytes())
    recv = [x.recv_ms for x in iter_capture(par) if not isinstance(x, CaptureProblem)]
    assert recv == sorted(recv)  # the concatenated chunks stay in receive order


def test_same_seed_same_market_and_truth() -> None:
    a = generate("flush", seed=9, hours=0.2, n_symbols=2)
    b = generate("flush", seed=9, hours=0.2, n_symbols=2)
    assert np.array_equal(a.path.log_mid, b.path.log_mid)
    assert a.truth == b.truth
    em = Emitter(a.profiles, a.path, a.start_ms, a.seed)
    assert list(em.lines(0, 30)) == list(Emitter(b.profiles, b.path, b.start_ms,
                                                 b.seed).lines(0, 30))


def test_ground_truth_is_written_and_mechanical(run: SimRun, tmp_path: Path) -> None:
    out = tmp_path / "truth.json"
    write_truth(run, out)
    events = load_events(out)
    assert events == list(run.truth)
    assert events, "the cascade story liquidated nobody"
    start = run.start_ms
    for e in events:
        assert e.how == "simulation ground truth"
        s = run.symbols.index(e.symbol)
        t = (e.onset_ms - start) // 1000
        side = run.path.liq_book_long if e.direction == "long_flush" else run.path.liq_book_short
        assert side[t, s] > 0  # onset is a second in which the book was liquidated
        assert e.oi_change < 0  # liquidated positions leave open interest
        assert (e.drawdown < 0) == (e.direction == "long_flush")
    for e in events:  # market = >= 3 symbols start the same kind of event within 10 min
        peers = {x.symbol for x in events if x.direction == e.direction
                 and abs(x.onset_ms - e.onset_ms) <= 600_000}
        assert e.market == (len(peers) >= 3)


def test_oi_falls_in_the_seconds_the_book_is_liquidated(run: SimRun) -> None:
    p = run.path
    liq = (p.liq_book_long + p.liq_book_short) / p.oi
    big = liq >= np.sort(liq.ravel())[-20]  # the 20 heaviest liquidation seconds
    assert liq[big].min() > 0
    d_oi = np.diff(p.oi, axis=0, prepend=p.oi[:1])
    assert (d_oi[big] < 0).mean() > 0.9
