"""`live` and `capture` against a loopback exchange whose answers are unusable: one line
naming the endpoint and what was wrong, exit 2, no traceback; `--top all` takes every
TRADING USDT perpetual."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine_app.cli import main
from engine_sim.fake_exchange import FakeBinance

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


@contextmanager
def fake_exchange(setup: Callable[[FakeBinance], None]) -> Iterator[FakeBinance]:
    """A FakeBinance on its own loop thread, so the CLI can run its own `asyncio.run`."""
    loop = asyncio.new_event_loop()
    fake = FakeBinance(SYMBOLS)
    setup(fake)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(fake.start())
        started.set()
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert started.wait(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(10)
        loop.close()


def _duplicate(fake: FakeBinance) -> None:
    from engine_sim import render

    body = json.loads(render.exchange_info_body(SYMBOLS, server_time_ms=0))
    body["symbols"].append(dict(body["symbols"][0]))  # BTCUSDT listed twice
    fake.market.exchange_info_body = json.dumps(body)


def _empty(fake: FakeBinance) -> None:
    fake.market.status.update({s: "SETTLING" for s in SYMBOLS})


def _wrong_shape(fake: FakeBinance) -> None:
    fake.market.exchange_info_body = '{"symbols": {"BTCUSDT": "TRADING"}}'


CASES = {
    "duplicate symbols": (_duplicate, "lists symbols more than once: BTCUSDT (x2)"),
    "empty universe": (_empty, "no symbol is TRADING, PERPETUAL and quoted in USDT"),
    "wrong shape": (_wrong_shape, "unexpected answer shape"),
}


@pytest.mark.parametrize("command", ["live", "capture"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_unusable_exchange_answer_is_one_line_and_exit_2(
        case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup, expected = CASES[case]
    with fake_exchange(setup) as fake:
        out = ["--out", str(tmp_path / "rec")] if command == "capture" else \
            ["--data-dir", str(tmp_path / "dd"), "--json"]
        code = main([command, "--top", "all", "--duration", "2", "--ws-url", fake.ws_base,
                     "--rest-url", fake.rest_base, *out])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if "error" in x]
    assert len(lines) == 1 and "/fapi/v1/exchangeInfo" in lines[0] and expected in lines[0], err


def test_top_all_follows_every_trading_perpetual(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def halt_one(fake: FakeBinance) -> None:
        fake.market.status["SOLUSDT"] = "TRADING_HALT"  # listed, not trading: not followed

    with fake_exchange(halt_one) as fake:
        code = main(["capture", "--top", "all", "--duration", "1.5", "--ws-url", fake.ws_base,
                     "--rest-url", fake.rest_base, "--out", str(tmp_path / "rec")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "capture: 2 symbols" in err, err
