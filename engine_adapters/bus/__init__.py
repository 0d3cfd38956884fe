"""The raw-data bus: capture lines on NATS JetStream, behind a small source/sink port.

`BusPublisher` (recorder side) and `BusConsumer` (engine side) implement the port of
`engine_adapters.bus.port`; `BusUrl` parses `nats://HOST:PORT/SUBJECT[?...]`. See
`docs/scale-out.md`.

The names are loaded on first use (PEP 562): `run` asks `is_bus_url` of every capture
argument, and importing the consumer pulls in nats-py and aiohttp (~0.4 s of a start that
reads a file).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine_adapters.bus.consumer import BusConsumer, ConsumerStats
    from engine_adapters.bus.port import (
        CaptureLineSink,
        CaptureLineSource,
        FileLineSource,
        SourceGap,
        SourceLine,
        message_id,
    )
    from engine_adapters.bus.publisher import BusPublisher, PublisherStats
    from engine_adapters.bus.url import BusUrl, BusUrlError, StreamSettings, is_bus_url

#: Public name -> the submodule that defines it.
_HOME = {
    "BusConsumer": "consumer", "ConsumerStats": "consumer",
    "CaptureLineSink": "port", "CaptureLineSource": "port", "FileLineSource": "port",
    "SourceGap": "port", "SourceLine": "port", "message_id": "port",
    "BusPublisher": "publisher", "PublisherStats": "publisher",
    "BusUrl": "url", "BusUrlError": "url", "StreamSettings": "url", "is_bus_url": "url",
}

__all__ = ["BusConsumer", "BusPublisher", "BusUrl", "BusUrlError", "CaptureLineSink",
           "CaptureLineSource", "ConsumerStats", "FileLineSource", "PublisherStats",
           "SourceGap", "SourceLine", "StreamSettings", "is_bus_url", "message_id"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
