"""Bus URLs are checked part by part; bus lines are exactly the capture file's bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine_adapters.bus import BusUrl, BusUrlError, CaptureLineSink, message_id
from engine_adapters.bus.port import MessageIds, health_line, recv_ms_of, rest_line, ws_line
from engine_adapters.bus.publisher import BusPublisher
from engine_adapters.bus.url import DEFAULT_MAX_AGE_S, DEFAULT_MAX_BYTES
from engine_adapters.capture import CaptureWriter


def test_a_full_url_parses_into_its_parts() -> None:
    u = BusUrl.parse("nats://10.0.0.5:4333/binance.usdm?start=2026-12-01T00:00Z&durable=research")
    assert (u.host, u.port, u.subject, u.stream) == ("10.0.0.5", 4333, "binance.usdm",
                                                    "CAPTURE_BINANCE_USDM")
    assert u.durable == "research" and u.start_seq is None
    assert u.start_ms == 1_796_083_200_000  # 2026-12-01T00:00:00Z
    assert u.settings.max_age_s == DEFAULT_MAX_AGE_S and u.settings.max_bytes == DEFAULT_MAX_BYTES
    assert u.server == "nats://10.0.0.5:4333"


def test_retention_and_sequence_options() -> None:
    u = BusUrl.parse("nats://h/a.b?seq=42&max_age=12h&max_bytes=500M&dup_window=30s&stream=RAW")
    assert (u.port, u.start_seq, u.stream) == (4222, 42, "RAW")
    assert (u.settings.max_age_s, u.settings.max_bytes, u.settings.dup_window_s) == \
        (43_200.0, 500 << 20, 30.0)


@pytest.mark.parametrize(("url", "says"), [
    ("http://h:1/a", "starts with nats://"),
    ("nats://h:1/", "subject"),
    ("nats://h:1/a b", "subject"),
    ("nats://h:1/a?start=yesterday", "ISO 8601"),
    ("nats://h:1/a?seq=0", "seq must be"),
    ("nats://h:1/a?seq=1&start=2026-01-01T00:00Z", "not both"),
    ("nats://h:1/a?durable=a.b", "durable name"),
    ("nats://h:1/a?max_age=-3", "positive duration"),
    ("nats://h:1/a?max_bytes=lots", "positive size"),
    ("nats://h:1/a?colour=red", "unknown query key 'colour'"),
    ("nats://h:99999/a", "port"),
])
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(BusUrlError, match=says):
        BusUrl.parse(url)


def test_bus_lines_are_the_capture_writers_bytes(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    with CaptureWriter(path) as w:
        w.write_ws(5, '{"stream":"x","data":{"s":"BTCUSDT"}}')
        w.write_rest(6, "/fapi/v1/openInterest", "symbol=BTCUSDT", 429, b'{"code":-1003}')
        w.write_health(7, "BTCUSDT", "TRADE_GAP", 3, first=10, last=12)
        w.write_health(8, "BTCUSDT", "RECONNECT")
    ours = [ws_line(5, '{"stream":"x","data":{"s":"BTCUSDT"}}'),
            rest_line(6, "/fapi/v1/openInterest", "symbol=BTCUSDT", 429, b'{"code":-1003}'),
            health_line(7, "BTCUSDT", "TRADE_GAP", 3, first=10, last=12),
            health_line(8, "BTCUSDT", "RECONNECT")]
    assert b"".join(ours) == path.read_bytes()
    assert [recv_ms_of(line) for line in ours] == [5, 6, 7, 8]


def test_publisher_and_writer_are_both_sinks(tmp_path: Path) -> None:
    with CaptureWriter(tmp_path / "x.jsonl") as w:
        assert isinstance(w, CaptureLineSink)
    assert isinstance(BusPublisher("nats://127.0.0.1:1/a"), CaptureLineSink)


def test_message_ids_are_deterministic_and_tell_repeats_apart() -> None:
    a, b = ws_line(1000, "same"), ws_line(1000, "other")
    ids, again = MessageIds(), MessageIds()
    first = [ids(a), ids(b), ids(a), ids(ws_line(1001, "same")), ids(a)]
    assert first == [again(a), again(b), again(a), again(ws_line(1001, "same")), again(a)]
    assert len(set(first)) == 5  # the repeat of `a` in the same ms gets occurrence 1
    assert first[0] == message_id(a) and first[2] == message_id(a, 1)
    assert first[0].startswith("1000-") and first[2].endswith("-1")


def test_message_ids_keep_a_bounded_history() -> None:
    ids = MessageIds(history_ms=100)
    for ms in range(5_000):
        ids(ws_line(ms, "x"))
    assert len(ids._by_ms) <= 101
    assert ids(ws_line(4_990, "x")) == message_id(ws_line(4_990, "x"), 1)  # still remembered
