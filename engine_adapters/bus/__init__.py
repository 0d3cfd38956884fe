"""The raw-data bus: capture lines on NATS JetStream, behind a small source/sink port.

`BusPublisher` (recorder side) and `BusConsumer` (engine side) implement the port of
`engine_adapters.bus.port`; `BusUrl` parses `nats://HOST:PORT/SUBJECT[?...]`. See
`docs/scale-out.md`.
"""

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

__all__ = ["BusConsumer", "BusPublisher", "BusUrl", "BusUrlError", "CaptureLineSink",
           "CaptureLineSource", "ConsumerStats", "FileLineSource", "PublisherStats",
           "SourceGap", "SourceLine", "StreamSettings", "is_bus_url", "message_id"]
