"""Deterministic market-structure engine core: pure, no I/O, no clock, no randomness.

    import engine_core as ec
    cfg = ec.Config()                                   # or ec.Config.from_toml_str(text)
    state = ec.initial_state(cfg, ["BTCUSDT", "ETHUSDT"])
    queue = ec.CanonicalEngine(state.symbols)           # between ticks: queue.ingest(event)
    state, records, alerts = ec.step(state, queue.flush(tick_id), tick_id)

`step` is pure: the same inputs give byte-identical outputs in any process, under any
PYTHONHASHSEED; `records` holds one 64-byte `Record` per token (`.to_bytes()`), `alerts` what
a trader must be told.
"""

from engine_core.alerts import MARKET_WIDE, Alert, AlertState, evaluate, initial_alert_state
from engine_core.canonical import CanonicalBatch, CanonicalEvent, empty_tick, make_batch
from engine_core.config import CONFIG_VERSION, Config, ConfigError
from engine_core.events import (
    BookTickerReceived,
    DataHealthReceived,
    DepthReceived,
    FundingInfoReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    Side,
    SourceType,
    TradeReceived,
)
from engine_core.ingest import CanonicalEngine
from engine_core.normalize import EventNormalizer, Rejection, validate
from engine_core.pipeline import EngineState, initial_state, step
from engine_core.record import (
    FIELDS,
    FORMAT_VERSION,
    RECORD_SIZE,
    ChecksumError,
    Record,
    TickRecords,
)
from engine_core.states import (
    AlertKind,
    ClusterState,
    EventPhase,
    Quality,
    StructuralState,
    Tier,
    alert_bit,
)
from engine_core.ticks import TICK_MS, tick_of_recv_ms

__version__ = "0.1.0"

__all__ = [
    "CONFIG_VERSION",
    "FIELDS",
    "FORMAT_VERSION",
    "MARKET_WIDE",
    "RECORD_SIZE",
    "TICK_MS",
    "Alert",
    "AlertKind",
    "AlertState",
    "BookTickerReceived",
    "CanonicalBatch",
    "CanonicalEngine",
    "CanonicalEvent",
    "ChecksumError",
    "ClusterState",
    "Config",
    "ConfigError",
    "DataHealthReceived",
    "DepthReceived",
    "EngineState",
    "EventNormalizer",
    "EventPhase",
    "FundingInfoReceived",
    "FundingReceived",
    "HealthKind",
    "LiquidationReceived",
    "MarkPriceReceived",
    "MarketEvent",
    "OpenInterestHistoryReceived",
    "OpenInterestReceived",
    "Quality",
    "Record",
    "Rejection",
    "Side",
    "SourceType",
    "StructuralState",
    "TickRecords",
    "Tier",
    "TradeReceived",
    "alert_bit",
    "empty_tick",
    "evaluate",
    "initial_alert_state",
    "initial_state",
    "make_batch",
    "step",
    "tick_of_recv_ms",
    "validate",
]
