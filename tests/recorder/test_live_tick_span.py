"""`live` steps exactly the ticks `run` of its own capture steps, each event in the same tick.

The races of a loaded box are made to happen every time: `live`'s own tick loop runs on a
scripted wall clock (the `RealClock`'s injected time and sleep), and the messages reach the
runner's own transport callbacks at scripted moments, so the boundary a message lands
next to is chosen, not hoped for.

- The first message carries no event (an empty fundingInfo answer, which live_history asks
  for first) and the first event comes a tick later: `run` starts at the first line.
- The newest message, taken while the transports shut down, carries no event and comes
  ticks after the last tick the loop stepped: `run` steps every tick before it.
- A message stamped in a tick the loop has already stepped (a wall clock stepped back, a
  receive time taken before an await) goes into the tick being filled, and is recorded so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
import pytest

import engine_core as ec
from engine_adapters.clock import RealClock
from engine_adapters.storage import iter_journal, read_log
from engine_app.bootstrap import open_session
from engine_app.cli import main
from engine_app.datadir import ENGINE_VERSION, DataDir
from engine_app.live import LiveOptions, LiveRunner, open_recording
from engine_core.events import TradeReceived
from engine_sim.render import agg_trade_payload, combined, dumps

SYMBOLS = ("BTCUSDT", "ETHUSDT")
T0 = 1_796_180_400_000  # a tick boundary: tick K ends here
K = T0 // ec.TICK_MS
FUNDING_INFO = "/fapi/v1/fundingInfo"


@attrs.frozen
class Msg:
    """A message reaching the runner at `at_ms`, stamped `stamp_ms` (earlier: stamped late)."""

    at_ms: int
    text: str
    path: str = ""  # a REST answer when set, else a WebSocket frame
    stamp_ms: int | None = None


def trade(symbol: str, trade_id: int, at_ms: int, *, stamp_ms: int | None = None) -> Msg:
    ev = TradeReceived(symbol=symbol, exchange_ts=at_ms - 5, price=100.0 + trade_id,
                       qty=1.0 + trade_id % 3, buyer_is_maker=trade_id % 2 == 0,
                       trade_id=trade_id)
    frame = combined(f"{symbol.lower()}@aggTrade", dumps(agg_trade_payload(ev)))
    return Msg(at_ms, frame, stamp_ms=stamp_ms)


def empty_funding_info(at_ms: int) -> Msg:
    """A fundingInfo answer naming no symbol (none has adjusted caps): a line, no event."""
    return Msg(at_ms, "[]", path=FUNDING_INFO)


def deliver(runner: LiveRunner, m: Msg) -> None:
    stamp = m.at_ms if m.stamp_ms is None else m.stamp_ms
    if m.path:
        runner._rest(stamp, m.path, "", 200, m.text)
    else:
        runner._frame(stamp, "conn-1", m.text)


class ScriptedWall:
    """The tick loop's wall clock: its sleeps move it, delivering what is due meanwhile.

    Once everything is delivered the runner is told to stop (it finishes the tick).
    """

    def __init__(self, runner: LiveRunner, msgs: Sequence[Msg], start_ms: int) -> None:
        self.runner = runner
        self.msgs = sorted(msgs, key=lambda m: m.at_ms)
        self.now = start_ms

    def time_ms(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        end = self.now + round(seconds * 1000)
        while self.msgs and self.msgs[0].at_ms < end:
            m = self.msgs.pop(0)
            self.now = max(self.now, m.at_ms)
            deliver(self.runner, m)
        self.now = end
        if not self.msgs:
            self.runner.stop()


def live_then_run(tmp: Path, during: Sequence[Msg], after: Sequence[Msg] = ()
                  ) -> tuple[Path, Path]:
    """A live session over `during` (then `after`, taken while shutting down); `run` of its
    capture. Returns both data dirs."""
    dd, rec, out = tmp / "live", tmp / "rec.jsonl", tmp / "run"
    opts = LiveOptions(data_dir=dd, cfg=ec.Config(), symbols=SYMBOLS, capture=rec,
                       fsync="none")
    runner = LiveRunner(opts, say=lambda _m: None)
    wall = ScriptedWall(runner, during, T0 - 100)
    runner.clock = RealClock(time_ms=wall.time_ms, sleep=wall.sleep)
    runner.session = session = open_session(DataDir.at(dd), opts.cfg, SYMBOLS,
                                            engine_version=ENGINE_VERSION, fsync="none")
    runner.capture = capture = open_recording(rec)
    asyncio.run(runner._tick_loop(session))
    for m in after:  # what the transports still hand in while they are stopped
        deliver(runner, m)
    runner.finish_ticks(session)  # what `LiveRunner.run` does last
    session.close()
    capture.close()
    assert main(["run", str(rec), "--data-dir", str(out), "--symbols", ",".join(SYMBOLS),
                 "--fsync", "none", "--json"]) == 0
    return dd, out


def ticks_of(dd: Path) -> list[tuple[int, tuple[ec.CanonicalBatch, ...]]]:
    return [(jt.tick_id, jt.batches) for jt in iter_journal(dd)]


def assert_same_session(live: Path, run: Path) -> None:
    lj, rj = ticks_of(live), ticks_of(run)
    assert [t for t, _ in lj] == [t for t, _ in rj]
    for (t, lb), (_, rb) in zip(lj, rj, strict=True):
        assert lb == rb, f"tick {t}: live and run hold different events"
    live_rows, run_rows = read_log(live), read_log(run)
    assert len(live_rows) == len(run_rows) and np.array_equal(live_rows, run_rows)


def events_at(dd: Path) -> dict[int, int]:
    return {t: sum(len(b.events) for b in bs) for t, bs in ticks_of(dd)}


def test_a_session_starts_at_its_first_message_even_without_an_event(tmp_path: Path) -> None:
    during = [empty_funding_info(T0 + 200), trade("BTCUSDT", 1, T0 + 300),
              trade("ETHUSDT", 1, T0 + 400), trade("BTCUSDT", 2, T0 + 600),
              trade("ETHUSDT", 2, T0 + 800)]
    live, run = live_then_run(tmp_path, during)
    assert_same_session(live, run)
    assert events_at(live) == {K + 1: 0, K + 2: 2, K + 3: 1, K + 4: 1}


def test_a_session_ends_after_the_ticks_before_its_newest_message(tmp_path: Path) -> None:
    during = [trade("BTCUSDT", 1, T0 + 100), trade("ETHUSDT", 1, T0 + 300),
              trade("BTCUSDT", 2, T0 + 600)]
    # answered while the tasks are being stopped, 6 ticks after the loop's last tick
    live, run = live_then_run(tmp_path, during, after=[empty_funding_info(T0 + 2100)])
    assert_same_session(live, run)
    assert max(events_at(live)) == K + 8  # every tick before the answer's (K + 9)


@pytest.mark.parametrize("stamp_ms", [T0 + 550, T0 - 400], ids=["stepped tick", "before start"])
def test_a_message_stamped_in_a_stepped_tick_is_recorded_in_the_tick_it_went_into(
        tmp_path: Path, stamp_ms: int) -> None:
    during = [trade("BTCUSDT", 1, T0 + 100), trade("ETHUSDT", 1, T0 + 300),
              trade("BTCUSDT", 2, T0 + 600),
              trade("BTCUSDT", 3, T0 + 900, stamp_ms=stamp_ms),  # K + 3 was stepped at +750
              trade("ETHUSDT", 2, T0 + 1100)]
    live, run = live_then_run(tmp_path, during)
    assert_same_session(live, run)
    assert events_at(live) == {K + 1: 1, K + 2: 1, K + 3: 1, K + 4: 1, K + 5: 1}
