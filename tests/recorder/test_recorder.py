"""The rotating recorder: hour files by receive time, whole members, restarts, flush cadence."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from engine_adapters.capture import CaptureWriter
from engine_adapters.capture_files import LineSource, MultiSource, resolve_source
from engine_adapters.recorder import Recorder

H = 3_600_000
T0 = 1_796_180_400_000  # 2026-12-02T03:00:00Z


class VirtualClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def _docs(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for _, line in LineSource(path)]


def test_rotates_on_the_utc_hour_of_receive_time(tmp_path: Path) -> None:
    clock = VirtualClock(T0 + H - 2000)
    with Recorder(tmp_path, "rec", clock_ms=clock) as r:
        r.write_ws(clock.ms, "a")
        clock.ms = T0 + H - 1  # last ms of 03:xx
        r.write_ws(clock.ms, "b")
        clock.ms = T0 + H  # 04:00:00.000
        r.write_ws(clock.ms, "c")
        r.write_health(clock.ms - 5, "BTCUSDT", "RECONNECT")  # clock stepped back: stays
        clock.ms = T0 + 3 * H + 7  # an idle gap of two hours
        r.write_rest(clock.ms, "/fapi/v1/openInterest", "symbol=BTCUSDT", 200, "{}")
        files = list(r.files)
    assert [p.name for p in files] == ["rec-20261202T03.jsonl.gz", "rec-20261202T04.jsonl.gz",
                                       "rec-20261202T06.jsonl.gz"]
    assert [d["raw"] for d in _docs(files[0])] == ["a", "b"]
    assert [d.get("raw", d.get("kind")) for d in _docs(files[1])] == ["c", "RECONNECT"]
    assert [d["path"] for d in _docs(files[2])] == ["/fapi/v1/openInterest"]
    assert resolve_source(tmp_path) == tuple(files)


def test_poll_closes_a_finished_hour_and_flushes_each_second(tmp_path: Path) -> None:
    clock = VirtualClock(T0 + H - 1500)
    r = Recorder(tmp_path, "rec", clock_ms=clock)
    r.write_ws(clock.ms, "a")
    first = r.path
    assert first is not None and first.stat().st_size == 0  # buffered, not yet due
    clock.ms += 999
    r.poll()
    assert first.stat().st_size == 0
    clock.ms += 1
    r.poll()  # one second since the last flush: one whole member on disk
    assert [d["raw"] for d in _docs(first)] == ["a"] and r.members_written == 1
    r.write_ws(clock.ms, "b")
    clock.ms = T0 + H + 10  # the hour is over: poll() finishes the file without a new line
    r.poll()
    assert r.path is None and [d["raw"] for d in _docs(first)] == ["a", "b"]
    r.write_ws(T0 + H - 3, "late")  # a late line of the old hour goes forward
    r.close()
    assert [p.name for p in r.files] == ["rec-20261202T03.jsonl.gz", "rec-20261202T04.jsonl.gz"]
    with pytest.raises(ValueError, match="closed"):
        r.write_ws(clock.ms, "x")


def test_lines_flushed_counts_only_lines_in_members_on_disk(tmp_path: Path) -> None:
    """The SIGKILL flake: at a rotation the old file's last member goes out before the line
    that opened the new file, so `lines_written` is one ahead of what a crash keeps."""
    clock = VirtualClock(T0 + H - 10)
    r = Recorder(tmp_path, "rec", clock_ms=clock)
    r.write_ws(clock.ms, "a")
    r.write_ws(clock.ms, "b")
    assert (r.lines_written, r.lines_flushed, r.members_written) == (2, 0, 0)
    clock.ms = T0 + H + 1
    r.write_ws(clock.ms, "c")  # rotation: "a" "b" flushed, "c" buffered in the new file
    assert (r.lines_written, r.lines_flushed, r.members_written) == (3, 2, 1)
    on_disk = sum(1 for p in r.files for _ in LineSource(p))
    assert on_disk == r.lines_flushed
    r.close()
    assert r.lines_flushed == r.lines_written == 3


def test_a_restart_in_the_same_hour_opens_a_new_file(tmp_path: Path) -> None:
    clock = VirtualClock(T0 + 10)
    with Recorder(tmp_path, "rec", clock_ms=clock) as r:
        r.write_ws(clock.ms, "one")
    torn = r.files[0]
    torn.write_bytes(torn.read_bytes()[:-4])  # as a crash might leave it
    before = torn.read_bytes()
    clock.ms += 5000
    with Recorder(tmp_path, "rec", clock_ms=clock) as r2:
        r2.write_ws(clock.ms, "two")
    with Recorder(tmp_path, "rec", clock_ms=clock) as r3:
        r3.write_ws(clock.ms + 1, "three")
    assert torn.read_bytes() == before  # never appended to
    assert [p.name for p in (*r2.files, *r3.files)] == ["rec-20261202T03-1.jsonl.gz",
                                                        "rec-20261202T03-2.jsonl.gz"]
    src = MultiSource(resolve_source(tmp_path))
    raws = [orjson.loads(b)["raw"] for _, b in src]
    # only the gzip trailer of "one"'s member was cut: its line is whole, the tear reported
    assert raws == ["one", "two", "three"]
    assert [t.path for t in src.tails] == [torn]


def test_lines_are_byte_identical_to_capture_writer(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    w = CaptureWriter(tmp_path / "w.jsonl", clock=lambda: 0.0)
    r = Recorder(tmp_path / "r", "rec", clock_ms=clock, compress=False)
    for target in (w, r):
        target.write_ws(T0, '{"e":"aggTrade","s":"BTC\\u00e9"}')
        target.write_ws(T0 + 1, b"\xff bytes")
        target.write_rest(T0 + 2, "/fapi/v1/premiumIndex", "", 429, '{"code":-1003}')
        target.write_health(T0 + 3, "ETHUSDT", "TRADE_GAP", 3, first=10, last=12)
        target.write_ws(T0 + 4, "lone \ud800 surrogate")
        target.close()
    assert r.files[0].name == "rec-20261202T03.jsonl"
    assert r.files[0].read_bytes() == (tmp_path / "w.jsonl").read_bytes()


def test_each_flush_is_one_whole_gzip_member(tmp_path: Path) -> None:
    clock = VirtualClock(T0)
    with Recorder(tmp_path, "rec", clock_ms=clock, buffer_bytes=200) as r:
        for i in range(40):
            clock.ms += 30
            r.write_ws(clock.ms, f"frame {i:03d} " + "x" * 20)
    data = r.files[0].read_bytes()
    assert r.members_written >= 5 and data.count(b"\x1f\x8b\x08") >= r.members_written
    assert gzip.decompress(data).count(b"\n") == 40


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix"):
        Recorder("/tmp", "a/b", clock_ms=lambda: 0)
    with pytest.raises(ValueError, match="at most one second"):
        Recorder("/tmp", "a", clock_ms=lambda: 0, flush_interval_ms=5000)


def test_todays_reader_reads_complete_recorder_files(tmp_path: Path) -> None:
    """Whole members are plain multi-member gzip: `iter_capture` (GzipFile) reads them too."""
    from engine_adapters.capture import WsLine, iter_capture

    clock = VirtualClock(T0)
    with Recorder(tmp_path, "rec", clock_ms=clock, buffer_bytes=100) as r:
        for i in range(30):
            clock.ms += 400
            r.write_ws(clock.ms, f"f{i}")
    assert r.members_written > 10
    got = list(iter_capture(r.files[0]))
    assert all(isinstance(x, WsLine) for x in got)
    assert [x.raw for x in got if isinstance(x, WsLine)] == [f"f{i}" for i in range(30)]
