"""Capture sources: torn tails of gzip and plain files, folder/glob time order, names."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine_adapters.capture import CaptureWriter, encode_line, ws_doc
from engine_adapters.capture_files import (
    LineSource,
    MultiSource,
    SourceError,
    hour_file_name,
    parse_hour_name,
    resolve_source,
)

H = 3_600_000
T0 = 1_796_180_400_000  # 2026-12-02T03:00:00Z


def _lines(n: int, start: int = 0, recv0: int = T0) -> list[bytes]:
    return [encode_line(ws_doc(recv0 + i, f'{{"seq":{start + i},"pad":"{"x" * (i % 37)}"}}'))
            for i in range(n)]


def _members(path: Path, groups: list[list[bytes]]) -> list[int]:
    """Write each group as one gzip member; returns the file offset after each member."""
    ends, pos = [], 0
    with open(path, "wb") as f:
        for g in groups:
            m = gzip.compress(b"".join(g), mtime=0)
            f.write(m)
            pos += len(m)
            ends.append(pos)
    return ends


def _read(path: Path) -> tuple[list[bytes], LineSource]:
    src = LineSource(path, chunk_bytes=4096)
    got = [line for _, line in src]
    return got, src


def test_hour_names_round_trip() -> None:
    assert hour_file_name("btc", T0 + 59 * 60_000) == "btc-20261202T03.jsonl.gz"
    assert hour_file_name("btc", T0, 2, gz=False) == "btc-20261202T03-2.jsonl"
    assert parse_hour_name("btc-20261202T03-2.jsonl") == (T0, 2)
    assert parse_hour_name("a-b-20261202T23.jsonl.gz") == (T0 + 20 * H, 0)
    assert parse_hour_name("capture.jsonl.gz") is None
    assert parse_hour_name("x-20261302T03.jsonl") is None  # month 13


def test_complete_multi_member_file_reads_every_line_no_tail(tmp_path: Path) -> None:
    lines = _lines(300)
    p = tmp_path / "c.jsonl.gz"
    _members(p, [lines[:100], lines[100:101], lines[101:]])
    got, src = _read(p)
    assert got == lines
    assert src.tail is None and src.lines == 300


@given(cut=st.integers(min_value=0, max_value=10_000))
def test_gzip_cut_anywhere_keeps_every_complete_line(tmp_path_factory: pytest.TempPathFactory,
                                                     cut: int) -> None:
    lines = _lines(120)
    p = tmp_path_factory.mktemp("cut") / "c.jsonl.gz"
    ends = _members(p, [lines[i:i + 20] for i in range(0, 120, 20)])
    data = p.read_bytes()
    cut = cut % (len(data) + 1)
    p.write_bytes(data[:cut])
    got, src = _read(p)
    whole_members = sum(1 for e in ends if e <= cut)
    # every line of every complete member, and only true lines, in order
    assert got == lines[:len(got)]
    assert len(got) >= 20 * whole_members
    if cut in (0, *ends):
        assert src.tail is None
    else:
        assert src.tail is not None
        assert src.tail.offset == max([0, *[e for e in ends if e <= cut]])
        assert src.tail.tail_bytes == cut - src.tail.offset
        assert src.tail.line_no == len(got) + 1
        if cut >= 2:  # one byte is not even the gzip magic: read as a plain torn line
            assert "incomplete gzip member" in str(src.tail)


def test_single_member_sync_flushed_capture_writer_file_cut(tmp_path: Path) -> None:
    """Today's CaptureWriter output (one member, sync flushes) killed: all flushed lines."""
    p = tmp_path / "old.jsonl.gz"
    with CaptureWriter(p, clock=lambda: 0.0) as w:
        for i in range(200):
            w.write_ws(T0 + i, f'{{"seq":{i}}}')
            if i == 149:
                w.flush()
                flushed = p.stat().st_size
    p.write_bytes(p.read_bytes()[:flushed + 5])
    got, src = _read(p)
    assert len(got) == 150
    assert orjson.loads(orjson.loads(got[-1])["raw"]) == {"seq": 149}
    assert src.tail is not None and src.tail.offset == 0


def test_junk_and_zero_padding_after_members_are_reported(tmp_path: Path) -> None:
    lines = _lines(50)
    p = tmp_path / "c.jsonl.gz"
    ends = _members(p, [lines])
    with open(p, "ab") as f:
        f.write(b"\0" * 4096)
    got, src = _read(p)
    assert len(got) == 50
    assert src.tail is not None and src.tail.offset == ends[0]
    assert src.tail.tail_bytes == 4096 and "not gzip data" in src.tail.reason


def test_plain_file_torn_last_line(tmp_path: Path) -> None:
    lines = _lines(10)
    p = tmp_path / "c.jsonl"
    p.write_bytes(b"".join(lines) + lines[0][:17])
    got, src = _read(p)
    assert len(got) == 10
    assert src.tail is not None
    assert (src.tail.offset, src.tail.tail_bytes, src.tail.dropped_bytes) == (
        p.stat().st_size - 17, 17, 17)


def test_final_line_without_newline_that_is_whole_is_delivered(tmp_path: Path) -> None:
    p = tmp_path / "c.jsonl"
    p.write_bytes(b'{"recv_ms":1,"channel":"ws","raw":"a"}\n\n{"recv_ms":2,"channel":"ws","raw":"b"}')
    assert [(n, b[-5:]) for n, b in LineSource(p)] == [(1, b'"a"}\n'), (2, b"\n"), (3, b':"b"}')]


def _hour_file(d: Path, prefix: str, hour: int, restart: int, recv: int, n: int = 3) -> Path:
    p = d / hour_file_name(prefix, T0 + hour * H, restart)
    _members(p, [_lines(n, recv0=recv)])
    return p


def test_folder_and_glob_time_order(tmp_path: Path) -> None:
    a = _hour_file(tmp_path, "rec", 1, 0, T0 + H + 10)
    b = _hour_file(tmp_path, "rec", 1, 1, T0 + H + 900_000)  # restart within hour 1
    c = _hour_file(tmp_path, "rec", 0, 0, T0 + 5)
    d = _hour_file(tmp_path, "rec", 10, 0, T0 + 10 * H)
    # a file without an hour in its name sorts by its first line's time
    e = tmp_path / "manual.jsonl"
    e.write_bytes(b"".join(_lines(2, recv0=T0 + 2 * H + 1)))
    (tmp_path / "notes.txt").write_text("not a capture")
    assert resolve_source(tmp_path) == (c, a, b, e, d)
    assert resolve_source(str(tmp_path / "rec-*.jsonl.gz")) == (c, a, b, d)
    assert resolve_source(a) == (a,)


def test_multisource_numbers_lines_across_files_and_collects_tails(tmp_path: Path) -> None:
    a = _hour_file(tmp_path, "rec", 0, 0, T0, n=4)
    b = _hour_file(tmp_path, "rec", 1, 0, T0 + H, n=5)
    b.write_bytes(b.read_bytes()[:-3])
    c = _hour_file(tmp_path, "rec", 2, 0, T0 + 2 * H, n=2)
    src = MultiSource(resolve_source(tmp_path))
    nos = [n for n, _ in src]
    assert nos == list(range(1, len(nos) + 1)) and len(nos) >= 4 + 2
    assert [t.path for t in src.tails] == [b]
    assert src.locate(1) == (a, 1)
    assert src.locate(5) == (b, 1)
    assert src.locate(nos[-1]) == (c, 2)


def test_source_errors_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        resolve_source(tmp_path / "nope.jsonl")
    with pytest.raises(SourceError, match=r"no capture file matches the pattern .*\*\.gz"):
        resolve_source(str(tmp_path / "*.gz"))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(SourceError, match="holds no capture files"):
        resolve_source(tmp_path)


def test_plain_files_number_lines_across_files(tmp_path: Path) -> None:
    """Clean plain files take the file-iteration fast path; the count must still be right."""
    paths = []
    for h, n in ((0, 3), (1, 0), (2, 4)):
        p = tmp_path / hour_file_name("p", T0 + h * H, gz=False)
        p.write_bytes(b"".join(_lines(n, start=10 * h, recv0=T0 + h * H)))
        paths.append(p)
    src = MultiSource(paths)
    got = [(n, orjson.loads(orjson.loads(b)["raw"])["seq"]) for n, b in src]
    assert got == [(1, 0), (2, 1), (3, 2), (4, 20), (5, 21), (6, 22), (7, 23)]
    assert src.locate(4) == (paths[2], 1) and not src.tails
