"""A fake Binance USD-M exchange on loopback (WS + REST) with fault injection."""

from engine_sim.fake_exchange.faults import FakeConfig, FakeStats, Faults
from engine_sim.fake_exchange.server import FakeBinance

__all__ = ["FakeBinance", "FakeConfig", "FakeStats", "Faults"]
