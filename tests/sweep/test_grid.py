"""Sweep grids are checked against the config before anything runs; ranking is a total order."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine_core as ec
from engine_app.cli_support import UsageError
from engine_app.sweep import (
    combinations,
    config_for,
    expand_inputs,
    flatten,
    parse_grid,
    run_task,
    toml_of,
)
from engine_app.sweep_report import Objective, Task, TaskResult, parse_where, rank, table


def test_grid_values_take_the_type_of_the_config_field() -> None:
    grid = parse_grid(["structural.unwind_enter=0.4,0.5", "features.slow_window_ticks=1200"])
    assert grid == [("structural.unwind_enter", [0.4, 0.5]),
                    ("features.slow_window_ticks", [1200])]
    combos = combinations(grid)
    assert combos == [(("structural.unwind_enter", 0.4), ("features.slow_window_ticks", 1200)),
                      (("structural.unwind_enter", 0.5), ("features.slow_window_ticks", 1200))]
    cfg = config_for(combos[1])
    assert cfg.structural.unwind_enter == 0.5 and cfg.features.slow_window_ticks == 1200


@pytest.mark.parametrize(("spec", "says"), [
    ("structural.unwind_enter", "KEY=V1,V2"),
    ("unwind_enter=0.5", "SECTION.FIELD"),
    ("nosuch.x=1", "SECTION.FIELD"),
    ("structural.unwind_entre=0.5", "no field 'unwind_entre' in \\[structural\\]"),
    ("features.slow_window_ticks=12.5", "'12.5' is not a int"),
    ("structural.unwind_enter=high", "'high' is not a float"),
    ("structural.unwind_enter=0.4,0.4", "listed twice"),
])
def test_bad_grid_keys_and_values_are_usage_errors_naming_them(spec: str, says: str) -> None:
    with pytest.raises(UsageError, match=says):
        parse_grid([spec])


def test_a_combination_the_config_refuses_is_named() -> None:
    with pytest.raises(UsageError, match=r"structural\.unwind_enter=1\.5 is not a valid config"):
        combinations(parse_grid(["structural.unwind_enter=0.5,1.5"]))


def test_the_written_toml_is_the_same_config() -> None:
    cfg = config_for((("structural.unwind_enter", 0.45), ("tier.persist_ticks", 3)))
    assert ec.Config.from_toml_str(toml_of(cfg)).digest() == cfg.digest()


def _r(i: int, total: float | None, fa: float = 0.0, error: str | None = None) -> TaskResult:
    m = () if total is None else (("alerts.total", total), ("fa", fa))
    return TaskResult(index=i, input="c.jsonl", overrides=(("tier.persist_ticks", i),),
                      metrics=m, error=error)


def test_ranking_is_by_objective_then_task_order_with_bounds() -> None:
    results = [_r(0, 3.0), _r(1, 5.0, fa=2.0), _r(2, 5.0), _r(3, None, error="run exited 2: x"),
               _r(4, 3.0)]
    obj = Objective(metric="alerts.total", where=parse_where(["fa<=1"]))
    assert [r.index for r in rank(results, obj)] == [2, 0, 4, 1, 3]
    assert [r.index for r in rank(results[::-1], obj)] == [2, 0, 4, 1, 3]
    low = Objective(metric="alerts.total", minimize=True)
    assert [r.index for r in rank(results, low)] == [0, 4, 1, 2, 3]
    text = table(rank(results, obj), obj, ["fa"])
    lines = text.splitlines()
    assert lines[1].startswith("1 ") and lines[4].startswith("- ")  # fa=2 is outside the bound
    assert lines[5].split()[-5:] == ["FAILED", "run", "exited", "2:", "x"]


def test_where_wants_a_comparison_and_a_number() -> None:
    with pytest.raises(UsageError, match="METRIC<=NUMBER"):
        parse_where(["fa=1"])
    with pytest.raises(UsageError, match="must be a number"):
        parse_where(["fa<=lots"])


def test_flatten_keeps_numbers_under_dotted_names() -> None:
    doc = {"kinds": {"U": {"recall": {"1h": 0.5, "15m": None}, "n": 3}}, "ok": True,
           "events": [1, 2]}
    assert flatten(doc, "evaluate") == {"evaluate.kinds.U.recall.1h": 0.5,
                                        "evaluate.kinds.U.n": 3.0, "evaluate.events.count": 2.0}


def test_a_failing_task_is_a_value_with_a_one_line_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("not a capture\n")
    res = run_task(Task(index=7, input=str(junk), overrides=(("tier.persist_ticks", 3),)))
    assert res.index == 7 and res.metrics == ()
    assert res.error is not None and res.error.startswith("run exited 2: ")
    assert "\n" not in res.error and "Traceback" not in res.error


def test_a_dir_stands_for_its_capture_files(tmp_path: Path) -> None:
    for name in ("b.jsonl.gz", "a.jsonl", "notes.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "sub.jsonl").mkdir()
    one = tmp_path / "a.jsonl"
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.jsonl"),
                                              str(tmp_path / "b.jsonl.gz")]
    with pytest.raises(UsageError, match="given twice"):
        expand_inputs([str(tmp_path), str(one)])
    with pytest.raises(UsageError, match="no such capture or dir"):
        expand_inputs([str(tmp_path / "nope.jsonl")])
    with pytest.raises(UsageError, match="no capture files"):
        expand_inputs([str(tmp_path / "sub.jsonl")])
