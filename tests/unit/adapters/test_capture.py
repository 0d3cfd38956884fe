"""Capture files: round trip plain and gzip, malformed lines, truncated gzip, flushing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from engine_adapters import capture
from engine_adapters.binance.messages import FrameParser
from engine_adapters.binance.rest_payloads import parse_rest
from engine_adapters.capture import (
    CaptureProblem,
    CaptureWriter,
    HealthLine,
    ProblemKind,
    RestLine,
    WsLine,
    iter_capture,
)
from tests.fixtures_path import binance_text

AGG = binance_text("ws/combined_aggTrade.json").strip()
OI_BODY = binance_text("rest/openInterest.json").strip()


def _write_sample(path: Path) -> None:
    with CaptureWriter(path) as w:
        w.write_ws(1771263510195, AGG)
        w.write_rest(1771263510300, "/fapi/v1/openInterest", "symbol=BTCUSDT", 200, OI_BODY)
        w.write_ws(1771263510400, 'odd "quotes" \\ and \u00e9 \n newline')


@pytest.mark.parametrize("name", ["cap.jsonl", "cap.jsonl.gz"])
def test_round_trip_keeps_every_frame_exactly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    _write_sample(path)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert list(iter_capture(path)) == [
        WsLine(line_no=1, recv_ms=1771263510195, raw=AGG),
        RestLine(line_no=2, recv_ms=1771263510300, path="/fapi/v1/openInterest",
                 query="symbol=BTCUSDT", status=200, raw=OI_BODY),
        WsLine(line_no=3, recv_ms=1771263510400, raw='odd "quotes" \\ and \u00e9 \n newline'),
    ]


def test_replayed_lines_feed_the_same_parsers(tmp_path: Path) -> None:
    path = tmp_path / "cap.jsonl"
    _write_sample(path)
    ws, rest, _ = iter_capture(path)
    assert isinstance(ws, WsLine) and isinstance(rest, RestLine)
    assert FrameParser(["BTCUSDT"]).parse(ws.raw).events[0].exchange_ts == 1771263510041
    assert parse_rest(rest.path, rest.query, rest.status, rest.raw).events[0].exchange_ts \
        == 1787866530443


def test_gzip_is_detected_by_magic_not_name(tmp_path: Path) -> None:
    path = tmp_path / "looks_plain.jsonl"
    path.write_bytes(gzip.compress(b'{"recv_ms":1,"channel":"ws","raw":"x"}\n'))
    assert list(iter_capture(path)) == [WsLine(line_no=1, recv_ms=1, raw="x")]


def test_malformed_lines_are_problems_at_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        '{"recv_ms":10,"channel":"ws","raw":"a","extra":"ignored"}',  # 1 ok
        "not json",  # 2
        '{"recv_ms":"11","channel":"ws","raw":"b"}',  # 3
        '{"recv_ms":12,"channel":"udp","raw":"c"}',  # 4
        '{"recv_ms":13,"channel":"rest","raw":"d","query":""}',  # 5 no path
        "",  # 6 blank: skipped
        '{"recv_ms":5,"channel":"ws","raw":"e"}',  # 7 backwards: note + line
        "[1,2]",  # 8
        '{"recv_ms":-1,"channel":"ws","raw":"f"}',  # 9
        '{"recv_ms":20,"channel":"ws","raw":"g"',  # 10 cut off, no newline
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    got = list(iter_capture(path))
    summary = [(g.line_no, type(g).__name__,
                g.reason if isinstance(g, CaptureProblem) else g.raw) for g in got]
    assert summary == [
        (1, "WsLine", "a"),
        (2, "CaptureProblem", summary[1][2]),
        (3, "CaptureProblem", "'recv_ms' must be a JSON integer, got string"),
        (4, "CaptureProblem", "'channel' must be \"ws\", \"rest\" or \"health\", got 'udp'"),
        (5, "CaptureProblem", "missing key 'path'"),
        (7, "CaptureProblem", "recv_ms went backwards: 5 after 10"),
        (7, "WsLine", "e"),
        (8, "CaptureProblem", "a capture line must be a JSON object, got array"),
        (9, "CaptureProblem", "'recv_ms' must be >= 0, got -1"),
        (10, "CaptureProblem", summary[-1][2]),
    ]
    assert summary[1][2].startswith("not JSON")
    assert got[5].kind is ProblemKind.CLOCK_BACKWARDS  # type: ignore[union-attr]
    assert got[1].text == "not json"  # type: ignore[union-attr]
    assert "cut off" in summary[-1][2]


def test_truncated_gzip_yields_the_good_lines_then_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "cap.jsonl.gz"
    with CaptureWriter(path) as w:
        for i in range(2000):
            w.write_ws(1000 + i, AGG)
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    got = list(iter_capture(cut))
    *lines, last = got
    assert isinstance(last, CaptureProblem) and last.kind is ProblemKind.UNREADABLE_TAIL
    assert all(isinstance(x, WsLine) for x in lines)
    assert [x.line_no for x in lines] == list(range(1, len(lines) + 1))
    assert last.line_no == len(lines) + 1
    assert "unreadable compressed data" in last.reason


def test_corrupt_gzip_body_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "junk.gz"
    path.write_bytes(b"\x1f\x8b" + b"\x00garbage" * 10)
    (problem,) = list(iter_capture(path))
    assert isinstance(problem, CaptureProblem) and problem.line_no == 1
    assert problem.kind is ProblemKind.UNREADABLE_TAIL


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("name", ["cap.jsonl", "cap.jsonl.gz"])
def test_writer_flushes_once_the_interval_has_passed(tmp_path: Path, name: str) -> None:
    clock = FakeClock()
    path = tmp_path / name
    w = CaptureWriter(path, clock=clock)
    w.write_ws(1, "first")
    assert [x for x in iter_capture(path) if isinstance(x, WsLine)] == []  # still buffered
    clock.now = 1.0
    w.write_ws(2, "second")  # a killed process would keep both lines
    readable = [x for x in iter_capture(path) if isinstance(x, WsLine)]
    assert [x.raw for x in readable] == ["first", "second"]
    w.close()
    w.close()  # harmless
    with pytest.raises(ValueError, match="closed"):
        w.write_ws(3, "late")


def test_fast_ws_line_equals_attrs_constructor() -> None:
    assert capture._WS_SETTERS is not None
    assert capture._new_ws_line(1, 2, "x") == WsLine(line_no=1, recv_ms=2, raw="x")


def test_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(iter_capture(tmp_path / "absent.jsonl"))


def test_health_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with CaptureWriter(path) as w:
        w.write_health(5, "BTCUSDT", "RECONNECT", 0)
        w.write_health(6, "BTCUSDT", "TRADE_GAP", 12)
    got = list(iter_capture(path))
    assert got == [HealthLine(line_no=1, recv_ms=5, symbol="BTCUSDT", kind="RECONNECT", count=0),
                   HealthLine(line_no=2, recv_ms=6, symbol="BTCUSDT", kind="TRADE_GAP",
                              count=12)]
    bad = tmp_path / "b.jsonl"
    bad.write_text('{"recv_ms":1,"channel":"health","kind":"RECONNECT"}\n')
    (problem,) = iter_capture(bad)
    assert isinstance(problem, CaptureProblem) and "symbol" in problem.reason
