"""The recording thread: the same bytes as the writer called directly, in call order; errors
of the writer reach the caller; a full queue makes the caller wait."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine_adapters.capture_files import LineSource
from engine_adapters.recorder import Recorder
from engine_app.live_recording import RecordingError, RecordingThread

T0 = 1_796_180_400_000  # 2026-12-02T03:00:00Z
H = 3_600_000


def _calls(rec: Recorder | RecordingThread, n: int) -> None:
    """A mix of ws frames (singly and in batches), REST answers, health notices and polls,
    crossing an hour boundary."""
    for i in range(n):
        t = T0 + H - n // 2 + i
        if i % 7 == 0:
            rec.write_rest(t, "/fapi/v1/openInterest", f"symbol=S{i}", 200, f'{{"i":{i}}}')
        elif i % 11 == 0:
            rec.write_health(t, "BTCUSDT", "TRADE_GAP", i, first=i, last=i + 3)
        elif i % 5 == 0 and isinstance(rec, RecordingThread):
            rec.write_ws_many([(t, f'{{"a":{i}}}'), (t, f'{{"b":{i}}}')])
            continue
        else:
            rec.write_ws(t, f'{{"a":{i}}}')
            if i % 5 == 0:  # what write_ws_many records, called directly
                rec.write_ws(t, f'{{"b":{i}}}')
        if i % 50 == 0:
            rec.poll()


def _lines(folder: Path) -> list[bytes]:
    return [line for f in sorted(folder.iterdir()) for _, line in LineSource(f)]


def test_lines_and_files_equal_the_writer_called_directly(tmp_path: Path) -> None:
    now = [T0]
    direct = Recorder(tmp_path / "direct", "rec", clock_ms=lambda: now[0])
    _calls(direct, 2000)
    direct.close()
    with RecordingThread(Recorder(tmp_path / "thread", "rec", clock_ms=lambda: now[0]),
                         max_lines=3) as th:  # a small bound: the caller waits often
        _calls(th, 2000)
    assert [p.name for p in sorted((tmp_path / "thread").iterdir())] == \
        [p.name for p in sorted((tmp_path / "direct").iterdir())] == \
        ["rec-20261202T03.jsonl.gz", "rec-20261202T04.jsonl.gz"]
    got = _lines(tmp_path / "thread")
    two = sum(1 for i in range(2000) if i % 5 == 0 and i % 7 and i % 11)  # two ws lines
    assert got == _lines(tmp_path / "direct") and len(got) == 2000 + two


def test_a_writer_error_reaches_the_caller(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a file where the folder should be")
    rec = Recorder(tmp_path / "d", "rec", clock_ms=lambda: T0)
    th = RecordingThread(rec)
    rec.directory = tmp_path / "f"  # the next hour file cannot be created
    th.write_ws(T0, "a")
    with pytest.raises(RecordingError, match="cannot create capture file") as err:
        for _ in range(1000):  # raised by a later call once the thread has failed
            th.write_ws(T0, "b")
            threading.Event().wait(0.001)
        th.close()
    assert "recording" in str(err.value) and err.value.__cause__ is not None
    with pytest.raises(RecordingError):
        th.close()


def test_writing_after_close_is_an_error(tmp_path: Path) -> None:
    th = RecordingThread(Recorder(tmp_path, "rec", clock_ms=lambda: T0))
    th.write_ws(T0, "a")
    th.close()
    th.close()  # twice is harmless
    assert th.lines_written == 1
    with pytest.raises(RecordingError, match="is closed"):
        th.write_ws(T0, "b")
