"""`run` (and `iter_capture`) of a recording: a folder or a glob of hour files in time order,
a torn file in the middle, problems named by file and line, a source naming nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from engine_adapters.capture import CaptureProblem, ProblemKind, WsLine, iter_capture
from engine_adapters.recorder import Recorder
from engine_app.cli import main

H = 3_600_000
T0 = 1_796_180_400_000  # an hour start
AGG = ('{{"stream":"btcusdt@aggTrade","data":{{"e":"aggTrade","E":{t},"a":{a},"s":"BTCUSDT",'
       '"p":"100.0","q":"1","f":{a},"l":{a},"T":{t},"m":true}}}}')


def _record(folder: Path, start: int, n: int, first_id: int) -> list[Path]:
    now = [start]
    with Recorder(folder, "capture", clock_ms=lambda: now[0]) as r:
        for i in range(n):
            now[0] = start + i * 400  # 9,000 lines an hour: n > 9000 crosses an hour
            r.write_ws(now[0], AGG.format(t=now[0], a=first_id + i))
            if i % 50 == 49:
                r.flush()
        return list(r.files)


def test_a_folder_plays_in_time_order_past_a_torn_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "rec"
    mid = _record(rec, T0 + 1_800_000, 300, 10_000)  # written first: it gets ...T03
    first = _record(rec, T0, 200, 1)  # earlier lines, same hour: the restart file T03-1
    later = _record(rec, T0 + H, 50, 20_000)  # the next hour
    assert first[0].name.endswith("T03-1.jsonl.gz") and mid[0].name.endswith("T03.jsonl.gz")
    data = first[0].read_bytes()  # killed while writing: its last member torn
    first[0].write_bytes(data[: len(data) - 40])
    with gzip.open(later[-1], "ab") as f:  # a bad line at the very end of the recording
        f.write(b"not json\n")
    items = list(iter_capture(rec))
    ws = [x for x in items if isinstance(x, WsLine)]
    ids = [json.loads(x.raw)["data"]["a"] for x in ws]
    assert ids[:150] == list(range(1, 151))  # the torn file first (its hour, first recv_ms)
    assert ids[-350:] == [*range(10_000, 10_300), *range(20_000, 20_050)]
    assert [x.recv_ms for x in ws] == sorted(x.recv_ms for x in ws)
    problems = [x for x in items if isinstance(x, CaptureProblem)]
    bad = [p for p in problems if p.kind is ProblemKind.MALFORMED]
    (torn,) = [p for p in problems if p.kind is ProblemKind.UNREADABLE_TAIL]
    assert len(bad) == 1 and bad[0].reason.startswith(f"{later[-1].name}:"), bad
    assert first[0].name in torn.reason and "torn tail" in torn.reason
    # run of a glob of the files: exit 0, the tear said on stderr
    assert main(["run", str(rec / "capture-*.jsonl.gz"), "--data-dir", str(tmp_path / "dd"),
                 "--fsync", "none", "--json"]) == 0
    err = capsys.readouterr().err
    assert "3 capture files in time order" in err and f"{first[0]}: torn tail" in err, err


@pytest.mark.parametrize("source", ["empty", "nothing-*.jsonl.gz", "absent.jsonl"])
def test_a_source_naming_no_capture_is_exit_2(source: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["run", str(tmp_path / source), "--data-dir", str(tmp_path / "dd")]) == 2
    err = capsys.readouterr().err
    assert "error: run:" in err and "Traceback" not in err, err
