"""A sweep on Dask gives the same results on 2 workers as on 1, failures included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine_app.cli import main
from engine_sim.simulation import MarketSimulator, cascade_script
from engine_sim.synthetic_capture import write_capture


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    d = tmp_path_factory.mktemp("sweep")
    cap = d / "cascade.jsonl"
    write_capture(cap, MarketSimulator(["BTCUSDT", "ETHUSDT"], cascade_script(0.03), seed=7,
                                       oi_poll_ms=1000).events())
    junk = d / "junk.jsonl"
    junk.write_text("this is not a capture\n")
    return [str(cap), str(junk)]


def sweep(inputs: list[str], where: list[str],
          capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    rc = main(["sweep", *inputs, "--grid", "structural.unwind_enter=0.3,0.9",
               "--grid", "tier.persist_ticks=2,40", *where, "--json"])
    assert rc == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_two_workers_equal_one_worker(inputs: list[str], tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "sweep.html"
    one = sweep(inputs, ["--workers", "1"], capsys)
    two = sweep(inputs, ["--workers", "2", "--out", str(page)], capsys)
    assert one == two
    text = page.read_text()
    assert text.count("<tr>") == 1 + 8 and text.count("FAILED: run exited 2") == 4
    results = one["results"]
    assert isinstance(results, list) and len(results) == 8
    ok = [r for r in results if r["error"] is None]
    failed = [r for r in results if r["error"] is not None]
    assert len(ok) == 4 and all(r["input"].endswith("junk.jsonl") for r in failed)
    assert all(r["error"].startswith("run exited 2: ") for r in failed)
    # the overrides reached the engine: the combinations do not all alert alike
    assert len({r["alerts_digest"] for r in ok}) > 1
    totals = [r["metrics"]["alerts.total"] for r in ok]
    assert totals == sorted(totals, reverse=True)  # ranked, largest first


def test_a_running_scheduler_gives_the_same_results(inputs: list[str],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import dask.distributed

    dist: Any = dask.distributed
    with dist.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=None, silence_logs=40) as cluster:
        remote = sweep(inputs[:1], ["--scheduler", cluster.scheduler_address], capsys)
    local = sweep(inputs[:1], ["--workers", "1"], capsys)
    assert remote == local and len(remote["results"]) == 4  # type: ignore[arg-type]
