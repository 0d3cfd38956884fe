"""Quarantine file: append, truncate big raw text, count by reason, read back, size cap."""

from __future__ import annotations

from pathlib import Path

from engine_adapters.capture import CaptureProblem
from engine_adapters.quarantine import (
    MAX_RAW_CHARS,
    QuarantineEntry,
    QuarantineWriter,
    read_quarantine,
    reason_key,
)


def _entry(reason: str, raw: str = "{}", line_no: int | None = None) -> QuarantineEntry:
    return QuarantineEntry(recv_ms=1771263510195, source="ws", reason=reason, field="p",
                           line_no=line_no, raw=raw)


def test_entries_round_trip_and_are_counted_by_reason(tmp_path: Path) -> None:
    path = tmp_path / "quarantine.jsonl"
    with QuarantineWriter(path) as q:
        q.write(_entry("price must be > 0, got -1.0"))
        q.write(_entry("price must be > 0, got -2.0", line_no=7))
        q.write(_entry("not JSON: unexpected character"))
        assert q.summary() == {"price must be > 0": 2, "not JSON": 1}
    assert list(read_quarantine(path)) == [
        _entry("price must be > 0, got -1.0"),
        _entry("price must be > 0, got -2.0", line_no=7),
        _entry("not JSON: unexpected character"),
    ]


def test_huge_raw_is_truncated_and_marked(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    with QuarantineWriter(path) as q:
        q.write(_entry("frame too big", raw="x" * (MAX_RAW_CHARS + 10)))
    (got,) = list(read_quarantine(path))
    assert isinstance(got, QuarantineEntry)
    assert got.raw == "x" * MAX_RAW_CHARS and got.raw_truncated
    assert b'"raw_truncated":true' in path.read_bytes()


def test_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    for reason in ("a", "b"):
        with QuarantineWriter(path) as q:
            q.write(_entry(reason))
    assert [e.reason for e in read_quarantine(path) if isinstance(e, QuarantineEntry)] == \
        ["a", "b"]


def test_size_cap_stops_writing_but_keeps_counting(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    with QuarantineWriter(path, max_bytes=300) as q:
        for _ in range(10):
            q.write(_entry("bad"))
        assert q.counts["bad"] == 10 and q.dropped > 0
    assert path.stat().st_size <= 300
    assert len(list(read_quarantine(path))) == 10 - q.dropped


def test_bad_lines_in_a_quarantine_file_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('garbage\n{"recv_ms":1,"source":"ws","reason":"r","field":"","raw":""}\n'
                    '{"recv_ms":1}\n', encoding="utf-8")
    got = list(read_quarantine(path))
    assert [type(g).__name__ for g in got] == ["CaptureProblem", "QuarantineEntry",
                                               "CaptureProblem"]
    assert isinstance(got[2], CaptureProblem) and got[2].line_no == 3


def test_lone_surrogates_do_not_break_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    with QuarantineWriter(path) as q:
        q.write(_entry("bad bytes", raw=b"\xff\xfe".decode("utf-8", "surrogateescape")))
    (got,) = list(read_quarantine(path))
    assert isinstance(got, QuarantineEntry) and got.reason == "bad bytes"


def test_reason_key_drops_the_offending_value() -> None:
    assert reason_key("crossed book: bid 2.0 > ask 1.0") == "crossed book"
    assert reason_key("qty must be > 0, got 0.0") == "qty must be > 0"
    assert reason_key("missing key 'p'") == "missing key 'p'"
