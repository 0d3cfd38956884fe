"""`archive fetch` against a loopback server: checksums, missing days, resume, retries, exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine_adapters.archive.layout import ArchiveFile
from engine_app.cli import main
from engine_sim.archive_server import ArchiveServer
from engine_sim.archive_tree import build_tree
from tests.archive.conftest import DAY1, DAY2, SYMBOLS

KINDS = "aggTrades,bookDepth,metrics,fundingRate,markPriceKlines"


def _fetch(base: str, out: Path, capsys: pytest.CaptureFixture[str],
           *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    rc = main(["archive", "fetch", "--symbols", ",".join(SYMBOLS), "--start", str(DAY1),
               "--end", str(DAY2), "--dir", str(out), "--kinds", KINDS, "--base-url", base,
               "--parallel", "4", "--json", *extra])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out) if captured.out.strip() else {}


def test_fetch_verifies_lists_missing_refuses_bad_and_resumes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "remote", tmp_path / "local"
    bad = ArchiveFile(kind="bookDepth", symbol="BTCUSDT", period=str(DAY2))
    build_tree(src, symbols=SYMBOLS, dates=[DAY1, DAY2], hours=0.1,
               missing={("metrics", "ETHUSDT", DAY1)},
               bad_checksum={("bookDepth", "BTCUSDT", str(DAY2))})
    with ArchiveServer(src) as srv:
        rc, doc = _fetch(srv.base_url, out, capsys)
        assert rc == 2  # a file failed its checksum twice
        # 2 symbols x 4 daily kinds x 2 days + 2 monthly funding files
        assert doc["counts"] == {"cached": 0, "downloaded": 16, "missing": 1,
                                 "bad_checksum": 1, "failed": 0}
        assert doc["missing"] == [ArchiveFile(kind="metrics", symbol="ETHUSDT",
                                              period=str(DAY1)).rel_path]
        assert doc["bad_checksum"] == [bad.rel_path]
        assert srv.requests[bad.rel_path] == 2  # refetched once, then given up
        assert not bad.local(out).exists()
        assert not list(out.rglob("*.part"))
        zips = sorted(p.relative_to(out) for p in out.rglob("*.zip"))
        assert len(zips) == 16
        for z in zips:  # every kept zip is byte-identical to the archive's
            assert (out / z).read_bytes() == (src / z).read_bytes()
        before = sum(srv.requests.values())
        rc, doc = _fetch(srv.base_url, out, capsys)
        assert doc["counts"]["cached"] == 16 and doc["counts"]["downloaded"] == 0
        # the second run asks only for what it lacks: checksum + zip x2 of the bad file,
        # and the checksum of the missing day
        assert sum(srv.requests.values()) - before == 4


def test_a_corrupt_download_is_fetched_again_and_a_server_error_retried(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "remote", tmp_path / "local"
    info = build_tree(src, symbols=SYMBOLS, dates=[DAY1, DAY2], hours=0.05)
    corrupt = next(f for f in info.files if f.kind == "aggTrades").rel_path
    flaky = next(f for f in info.files if f.kind == "metrics").rel_path
    with ArchiveServer(src, corrupt_once={corrupt}, fail_once={flaky}) as srv:
        rc, doc = _fetch(srv.base_url, out, capsys)
    assert rc == 0 and doc["counts"]["downloaded"] == 18
    assert srv.requests[corrupt] == 2 and srv.requests[flaky] == 2
    assert (out / corrupt).read_bytes() == (src / corrupt).read_bytes()


def test_a_partial_download_continues_with_a_range_request(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src, out = tmp_path / "remote", tmp_path / "local"
    info = build_tree(src, symbols=SYMBOLS, dates=[DAY1, DAY2], hours=0.2)
    af = next(f for f in info.files if f.kind == "aggTrades")
    data = (src / af.rel_path).read_bytes()
    part = out / (af.rel_path + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(data[: len(data) // 2])
    with ArchiveServer(src) as srv:
        rc, _doc = _fetch(srv.base_url, out, capsys)
    assert rc == 0
    assert (out / af.rel_path).read_bytes() == data
    assert srv.requests[af.rel_path] == 1


def test_usage_errors_exit_64(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["archive", "fetch", "--symbols", "BTCUSDT", "--start", "2024-08-05", "--end",
               "2024-08-04", "--dir", str(tmp_path)])
    assert rc == 64 and "before" in capsys.readouterr().err
    rc = main(["archive", "fetch", "--symbols", "BTCUSDT", "--start", "2024-08-05", "--end",
               "2024-08-05", "--dir", str(tmp_path), "--kinds", "trades"])
    assert rc == 64 and "unknown kind(s) trades" in capsys.readouterr().err


def test_an_unreachable_server_is_reported_as_failed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["archive", "fetch", "--symbols", "BTCUSDT", "--start", "2024-08-05", "--end",
               "2024-08-05", "--dir", str(tmp_path), "--kinds", "metrics",
               "--base-url", "http://127.0.0.1:9", "--json"])
    out = capsys.readouterr()
    assert rc == 2
    assert json.loads(out.out)["counts"]["failed"] == 1
    assert "failed: data/futures/um/daily/metrics" in out.err
