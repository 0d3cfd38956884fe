"""Bus test helpers: one loopback nats-server per test module, a small synthetic capture."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine_sim.nats_server import NatsServer
from engine_sim.simulation import MarketSimulator, Regime, Segment
from engine_sim.synthetic_capture import write_capture

_subjects = itertools.count()


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with NatsServer(store_dir=tmp_path_factory.mktemp("js")) as server:
        yield server


@pytest.fixture
def subject_url(nats_server: NatsServer) -> str:
    """A fresh subject (so a fresh stream) on the module's server."""
    return f"{nats_server.url}/test.s{next(_subjects)}"


@pytest.fixture(scope="module")
def capture_bytes(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The lines of a 40-second, 2-symbol synthetic capture (a few thousand lines)."""
    path: Path = tmp_path_factory.mktemp("cap") / "c.jsonl"
    sim = MarketSimulator(["BTCUSDT", "ETHUSDT"],
                          [Segment(name="calm", seconds=40, leader=Regime(liq_prob=0.2,
                                                                          liq_size=0.5))],
                          seed=3, oi_poll_ms=1000)
    write_capture(path, sim.events())
    return path.read_bytes().splitlines(keepends=True)
