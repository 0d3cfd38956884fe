"""The many-lines-per-call capture reader gives exactly the per-line reader's items."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from engine_adapters.capture import (
    CaptureBytes,
    CaptureLine,
    CaptureProblem,
    ProblemKind,
    WsLine,
    decode_capture,
)
from engine_adapters.capture_runs import CaptureRuns, WsRun


def _ws(ms: int, raw: str = "f") -> bytes:
    return b'{"recv_ms":%d,"channel":"ws","raw":"%s"}\n' % (ms, raw.encode())


#: Every kind of line a capture can hold, good and bad (each ends in its newline).
LINES = [
    _ws(10), _ws(20), _ws(20, "g"), _ws(5), _ws(0), _ws(-1), _ws(10**30),
    b'{"channel":"ws","raw":"x","recv_ms":30,"extra":[1,{"a":2}]}\n',
    b'{"recv_ms":40,"channel":"rest","path":"/fapi/v1/openInterest","query":"symbol=A",'
    b'"status":200,"raw":"{}"}\n',
    b'{"recv_ms":41,"channel":"rest","path":"/p","status":"200","raw":"{}"}\n',
    b'{"recv_ms":42,"channel":"health","symbol":"A","kind":"RECONNECT","count":1}\n',
    b'{"recv_ms":43,"channel":"health","symbol":"A","kind":"X","count":"1"}\n',
    b'{"recv_ms":44,"channel":"bogus","raw":"x"}\n',
    b'{"recv_ms":45,"raw":"x"}\n',
    b'{"recv_ms":46.5,"channel":"ws","raw":"x"}\n',
    b"\n", b"   \n", b"not json\n", b"[1, 2]\n",
    _ws(47).rstrip() + b" " + _ws(48),  # two objects on one line
    _ws(49).rstrip() + b"," + _ws(50),  # two objects and a comma: an extra array element
    b"[" + _ws(51).rstrip() + b"\n", _ws(52).rstrip() + b"]\n",  # nesting across two lines
    b'{"recv_ms":53,"channel":"ws","raw":"\xff"}\n',  # not UTF-8
    b'{"recv_ms":54,"channel":"ws","raw":"a\\nb"}\r\n',
]


Items = list[CaptureLine | CaptureProblem]


def _both(path: Path, batch: int) -> tuple[Items, Items, Items]:
    want = list(decode_capture(CaptureBytes(path)))
    got = list(CaptureRuns(CaptureBytes(path), batch_lines=batch))
    flat: Items = []
    for item in CaptureRuns(CaptureBytes(path), batch_lines=batch).runs():
        flat.extend(item.lines() if isinstance(item, WsRun) else [item])
    return want, got, flat


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.sampled_from(range(len(LINES))), max_size=40),
       batch=st.sampled_from([1, 2, 3, 7, 512]), gz=st.booleans(), cut=st.booleans())
@example(picks=[5, 0], batch=512, gz=False, cut=False)  # a negative recv_ms first
@example(picks=[1, 3, 0, 8, 2], batch=512, gz=True, cut=False)  # back in time, twice
@example(picks=[0, 20, 15, 1], batch=512, gz=False, cut=False)  # an extra element, a blank
@example(picks=[0, 21, 22, 1], batch=512, gz=False, cut=False)  # nesting across lines
def test_same_items_as_the_per_line_reader(tmp_path: Path, picks: list[int], batch: int,
                                           gz: bool, cut: bool) -> None:
    data = b"".join(LINES[i] for i in picks)
    if cut and data:
        data = data[:-3]  # a last line without its newline (or a torn one)
    path = tmp_path / ("c.jsonl.gz" if gz else "c.jsonl")
    path.write_bytes(gzip.compress(data) if gz else data)
    want, got, flat = _both(path, batch)
    assert got == want
    assert flat == want


def test_a_long_clean_capture_comes_in_runs_split_at_other_lines(tmp_path: Path) -> None:
    lines = [_ws(1000 + i) for i in range(1200)]
    lines[700] = LINES[8]  # a rest line at recv 40: the clock steps back there
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"".join(lines))
    runs = list(CaptureRuns(CaptureBytes(path)).runs())
    assert [type(r).__name__ for r in runs] == [
        "WsRun", "WsRun", "CaptureProblem", "RestLine", "WsRun", "WsRun"]
    assert [r.first_line for r in runs if isinstance(r, WsRun)] == [1, 513, 702, 1025]
    assert runs[2] == CaptureProblem(line_no=701, kind=ProblemKind.CLOCK_BACKWARDS,
                                     reason="recv_ms went backwards: 40 after 1699")
    want, got, _ = _both(path, 512)
    assert got == want and len(want) == 1201


def test_a_folder_of_files_numbers_lines_as_one_stream(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "cap-20260101T00.jsonl").write_bytes(b"".join(_ws(i) for i in range(5)))
    (folder / "cap-20260101T01.jsonl.gz").write_bytes(
        gzip.compress(b"".join(_ws(3_600_000 + i) for i in range(4)) + b"junk\n"))
    want, got, flat = _both(folder, 3)
    assert got == want == flat
    assert [x.line_no for x in got][-2:] == [9, 10] and isinstance(got[-1], CaptureProblem)


def test_a_pipe_is_read_line_by_line_as_it_arrives() -> None:
    r, w = os.pipe()
    reader_done = threading.Event()
    first: list[object] = []

    def read() -> None:
        runs = CaptureRuns(CaptureBytes(f"/dev/fd/{r}")).runs()
        first.append(next(runs))
        reader_done.set()
        first.extend(runs)

    t = threading.Thread(target=read)
    t.start()
    os.write(w, _ws(7))
    # the first line is delivered while the writer still holds the pipe open
    assert reader_done.wait(10)
    assert first == [WsLine(line_no=1, recv_ms=7, raw="f")]
    os.write(w, _ws(8))
    os.close(w)
    t.join(10)
    assert first[1:] == [WsLine(line_no=2, recv_ms=8, raw="f")]


def test_batch_size_must_be_positive(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(_ws(1))
    with pytest.raises(ValueError, match="batch_lines must be >= 1"):
        CaptureRuns(CaptureBytes(path), batch_lines=0)
