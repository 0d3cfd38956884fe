"""`sweep`: a grid of config overrides x inputs, each run through `run` (+ `evaluate`) on Dask.

    python -m engine_app sweep CAPTURE_OR_DIR... --grid structural.unwind_enter=0.4,0.5 \\
        --grid features.slow_window_ticks=1200,2400 [--workers N | --scheduler tcp://H:8786] \\
        [--objective evaluate.scores.STRUCTURAL_UNWIND.recall.1h] \\
        [--where evaluate.scores.STRUCTURAL_UNWIND.false_alarms_per_symbol_day<=1] [--out F]

Every grid key is a dotted path into `engine_core.Config` (`section.field`); keys and values
are checked against the config before anything runs (a bad key or value is a usage error that
names it). The tasks are the cartesian product inputs x combinations, in a fixed order. Each
task runs in a Dask worker *through the stable CLI contract*: it writes its overrides as a
TOML file and calls `python -m engine_app run INPUT --data-dir TMP --config FILE --json`
in-process, then `evaluate TMP --json` (when installed), and returns plain numbers: the
run summary's counts (`run.*`), the data dir's alerts (`alerts.*`) and evaluate's scores
(`evaluate.*`). Nothing time-dependent goes into a result, and results are ranked by a total
order (objective, then task order), so the table, the JSON and the HTML are the same whatever
the number of workers. A task that fails comes back as a value with its combination and a
one-line reason.

Default cluster: `LocalCluster` with N worker *processes* of one thread each (the engine is
pure Python: threads would share one GIL); `--scheduler` connects to a running cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import io
import itertools
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

import engine_core as ec
from engine_app.cli_support import EXIT_OK, UsageError, say
from engine_app.sweep_report import (
    Objective,
    Task,
    TaskResult,
    Value,
    label,
    parse_where,
    rank,
    table,
    write_html,
)


# ---------------------------------------------------------------------------- the grid
def parse_grid(specs: Sequence[str],
               base: ec.Config | None = None) -> list[tuple[str, list[Value]]]:
    """`KEY=V1,V2` specs checked against the config: [(key, typed values)], in given order."""
    defaults = (base or ec.Config()).to_dict()
    grid: list[tuple[str, list[Value]]] = []
    for spec in specs:
        key, eq, values = spec.partition("=")
        key = key.strip()
        if not eq or not values.strip():
            raise UsageError(f"--grid {spec!r}: write KEY=V1,V2,... (e.g. "
                             f"structural.unwind_enter=0.4,0.5)")
        section, dot, field = key.partition(".")
        if not dot or section not in defaults or not isinstance(defaults[section], dict):
            known = ", ".join(k for k, v in defaults.items() if isinstance(v, dict))
            raise UsageError(f"--grid {key!r}: not a config key; keys are SECTION.FIELD with "
                             f"SECTION one of {known}")
        if field not in defaults[section]:
            raise UsageError(f"--grid {key!r}: no field {field!r} in [{section}]; fields: "
                             f"{', '.join(sorted(defaults[section]))}")
        if any(k == key for k, _ in grid):
            raise UsageError(f"--grid {key!r} given twice; list all its values in one --grid")
        default = defaults[section][field]
        typed = [_typed(key, v.strip(), default) for v in values.split(",")]
        if len(set(map(repr, typed))) != len(typed):
            raise UsageError(f"--grid {key!r}: a value is listed twice")
        grid.append((key, typed))
    return grid


def _typed(key: str, text: str, default: object) -> Value:
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise UsageError(f"--grid {key}: {text!r} is not a {type(default).__name__} "
                         f"(default {default!r})") from None
    return text


def combinations(grid: Sequence[tuple[str, Sequence[Value]]],
                 base: ec.Config | None = None) -> list[tuple[tuple[str, Value], ...]]:
    """Every combination of the grid, in order; each one checked by building its Config."""
    keys = [k for k, _ in grid]
    out = []
    for values in itertools.product(*(v for _, v in grid)):
        combo = tuple(zip(keys, values, strict=True))
        try:
            config_for(combo, base)
        except ec.ConfigError as exc:
            raise UsageError(f"--grid combination {' '.join(f'{k}={v}' for k, v in combo)} "
                             f"is not a valid config: {exc}") from None
        out.append(combo)
    return out


def config_for(overrides: Sequence[tuple[str, Value]], base: ec.Config | None = None) -> ec.Config:
    sections: dict[str, dict[str, Value]] = {}
    for key, value in overrides:
        section, _, field = key.partition(".")
        sections.setdefault(section, {})[field] = value
    return (base or ec.Config()).evolve(**sections)


def toml_of(config: ec.Config) -> str:
    """The whole config as TOML (sections of scalars), readable by `--config`."""
    lines: list[str] = []
    for section, fields in config.to_dict().items():
        if not isinstance(fields, dict):
            lines.insert(0, f"{section} = {json.dumps(fields)}")
            continue
        lines.append(f"\n[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- one task
def _cli_main() -> Callable[[Sequence[str]], int]:
    # The CLI is this command's composition root and registers it, so it is bound late, by
    # name: a sweep task is a client of the `python -m engine_app` contract, like a script.
    main: Callable[[Sequence[str]], int] = importlib.import_module("engine_app.cli").main
    return main


def _call(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = _cli_main()(list(argv))
        except SystemExit as exc:  # argparse usage errors exit
            rc = exc.code if isinstance(exc.code, int) else 64
    return rc, out.getvalue(), err.getvalue()


def _one_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1][:300] if lines else "no message"


def run_task(task: Task) -> TaskResult:
    """Run one task in this process; never raises (a failure is a TaskResult with `error`)."""
    base = TaskResult(index=task.index, input=task.input, overrides=task.overrides)
    try:
        with tempfile.TemporaryDirectory(prefix="sweep-") as tmp:
            cfg_file = Path(tmp) / "config.toml"
            cfg_file.write_text(toml_of(config_for(task.overrides)))
            dd = Path(tmp) / "data"
            rc, out, err = _call(["run", task.input, "--data-dir", str(dd), "--config",
                                  str(cfg_file), "--fsync", "none", "--json"])
            if rc != 0:
                return attrs.evolve(base, error=f"run exited {rc}: {_one_line(err)}")
            metrics = _run_metrics(json.loads(out.strip().splitlines()[-1]), dd)
            if _has_evaluate():
                rc, out, err = _call(["evaluate", str(dd), "--json", *task.evaluate_args])
                if rc != 0:
                    return attrs.evolve(base, error=f"evaluate exited {rc}: {_one_line(err)}")
                doc = json.loads(out)
                doc.pop("rules", None)  # the labelling rules are inputs, not results
                metrics.update(flatten(doc, "evaluate"))
            alerts = dd / "alerts.jsonl"
            digest = hashlib.blake2b(alerts.read_bytes(), digest_size=16).hexdigest() \
                if alerts.is_file() else ""
            return attrs.evolve(base, metrics=tuple(sorted(metrics.items())),
                                alerts_digest=digest)
    except Exception as exc:  # reported as the task's one-line reason, never raised
        return attrs.evolve(base, error=f"{type(exc).__name__}: {exc}"[:300])


def _has_evaluate() -> bool:
    """True once the `evaluate` command and its scoring code are installed."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("engine_app.commands_research", "engine_adapters.evaluation.evaluate"))


def _run_metrics(summary: Mapping[str, Any], dd: Path) -> dict[str, float]:
    """Figures from `run --json` and the data dir's alerts (no timing: `elapsed_s` is left out)."""
    from engine_adapters.evaluation.scoring import alerts_from_data_dir

    m = {f"run.{k}": float(v) for k, v in summary.items()
         if isinstance(v, int | float) and not isinstance(v, bool) and k != "elapsed_s"}
    alerts = alerts_from_data_dir(dd)
    kinds = sorted({a.kind for a in alerts})
    for kind in kinds:
        m[f"alerts.{kind}"] = float(sum(1 for a in alerts if a.kind == kind))
    m["alerts.total"] = float(len(alerts))
    days = summary.get("symbols", 0) * summary.get("ticks", 0) * ec.TICK_MS / 86_400_000
    m["alerts.per_symbol_day"] = len(alerts) / days if days > 0 else 0.0
    return m


def flatten(doc: Any, prefix: str) -> dict[str, float]:
    """Numbers of a JSON document under dotted names (`evaluate.scores.X.recall.1h`); a list
    counts as its length (`evaluate.events.count`)."""
    out: dict[str, float] = {}
    if isinstance(doc, Mapping):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}"))
    elif isinstance(doc, list):
        out[f"{prefix}.count"] = float(len(doc))
    elif isinstance(doc, int | float) and not isinstance(doc, bool):
        out[prefix] = float(doc)
    return out


# ---------------------------------------------------------------------------- the cluster
def run_tasks(tasks: Sequence[Task], *, workers: int = 2, scheduler: str | None = None,
              client: Any = None,
              on_done: Callable[[TaskResult], None] | None = None) -> list[TaskResult]:
    """Run every task on Dask: `client`, or `scheduler`, or a LocalCluster of `workers`."""
    import dask.distributed

    dist: Any = dask.distributed  # untyped library: calls go through Any
    results: dict[int, TaskResult] = {}
    with contextlib.ExitStack() as stack:
        if client is None and scheduler is not None:
            client = stack.enter_context(dist.Client(scheduler, timeout="10s"))
        elif client is None:
            cluster = stack.enter_context(dist.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=40))
            client = stack.enter_context(dist.Client(cluster))
        futures = client.map(run_task, list(tasks), pure=False,
                             key=[f"sweep-task-{t.index}" for t in tasks])
        by_key = {f.key: t for f, t in zip(futures, tasks, strict=True)}
        for fut in dist.as_completed(futures):
            task = by_key[fut.key]
            if fut.status == "finished":
                res: TaskResult = fut.result()
            else:  # the worker died or the task could not be sent: no result, one reason
                exc = fut.exception()
                res = TaskResult(index=task.index, input=task.input, overrides=task.overrides,
                                 error=f"{type(exc).__name__}: {exc}"[:300])
            results[task.index] = res
            if on_done is not None:
                on_done(res)
    return [results[t.index] for t in tasks]


# ---------------------------------------------------------------------------- command
def expand_inputs(given: Sequence[str]) -> list[str]:
    """Inputs as capture files: a directory stands for its *.jsonl[.gz] files, by name."""
    out: list[str] = []
    for text in given:
        p = Path(text)
        if p.is_dir():
            found = sorted(str(f) for f in p.iterdir() if f.is_file()
                           and f.name.endswith((".jsonl", ".jsonl.gz")))
            if not found:
                raise UsageError(f"{p}: no capture files (*.jsonl, *.jsonl.gz) in this dir")
            out += found
        elif p.exists():
            out.append(str(p))
        else:
            raise UsageError(f"no such capture or dir: {p}")
    if len(set(out)) != len(out):
        raise UsageError("an input is given twice (directly or through its dir)")
    return out


def cmd_sweep(a: argparse.Namespace) -> int:
    inputs = expand_inputs(a.inputs)
    if not a.grid:
        raise UsageError("give at least one --grid KEY=V1,V2")
    if a.workers is not None and a.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {a.workers}")
    combos = combinations(parse_grid(a.grid))
    extra = tuple(shlex.split(a.evaluate_args or ""))
    tasks = [Task(index=i, input=inp, overrides=c, evaluate_args=extra)
             for i, (inp, c) in enumerate(itertools.product(inputs, combos))]
    objective = Objective(metric=a.objective, minimize=a.minimize, where=parse_where(a.where))
    workers = a.workers or min(len(tasks), os.cpu_count() or 1)
    where = a.scheduler or f"a local cluster of {workers} worker process(es)"
    say(f"sweep: {len(tasks)} task(s) = {len(inputs)} input(s) x {len(combos)} "
        f"combination(s) on {where}")
    done = [0]

    def on_done(r: TaskResult) -> None:
        done[0] += 1
        what = f"FAILED: {r.error}" if r.error else "ok"
        say(f"  [{done[0]}/{len(tasks)}] {Path(r.input).name} {label(r)}: {what}")

    results = run_tasks(tasks, workers=workers, scheduler=a.scheduler, on_done=on_done)
    ranked = rank(results, objective)
    if a.json:
        print(json.dumps({"objective": attrs.asdict(objective),
                          "results": [r.to_json() for r in ranked]}, sort_keys=True))
    else:
        print(table(ranked, objective, a.column))
    if a.out:
        write_html(Path(a.out), ranked, objective, a.column)
        say(f"sweep: wrote {a.out}")
    failed = sum(1 for r in results if r.error)
    if failed:
        say(f"sweep: {failed} of {len(tasks)} task(s) failed (see the table)")
    return EXIT_OK


def add_commands(sub: Any) -> None:
    """Register `sweep` on the main parser's subparsers."""
    s = sub.add_parser("sweep", help="run a grid of config overrides over captures on Dask")
    s.add_argument("inputs", nargs="+", metavar="CAPTURE_OR_DIR",
                   help="captures to run every combination on; a dir stands for its "
                        "*.jsonl[.gz] files, each one input")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="a config key (section.field) and its values; repeat for more keys")
    s.add_argument("--workers", type=int, help="local worker processes (default: min(tasks, "
                                               "CPUs)); ignored with --scheduler")
    s.add_argument("--scheduler", help="address of a running Dask scheduler, tcp://HOST:8786")
    s.add_argument("--objective", default="alerts.total",
                   help="metric to rank by (default alerts.total); e.g. "
                        "evaluate.scores.STRUCTURAL_UNWIND.recall.1h")
    s.add_argument("--minimize", action="store_true", help="smaller objective is better")
    s.add_argument("--where", action="append", default=[], metavar="METRIC<=N",
                   help="only rank results meeting this bound (METRIC<=N or METRIC>=N)")
    s.add_argument("--column", action="append", default=[], metavar="METRIC",
                   help="another metric to show in the table; repeatable")
    s.add_argument("--evaluate-args", metavar="ARGS",
                   help="extra arguments for `evaluate` (e.g. \"--rules labels.toml\")")
    s.add_argument("--out", help="also write the ranked table as an HTML page")
    s.add_argument("--json", action="store_true", help="results as one JSON object on stdout")
    s.set_defaults(func=cmd_sweep)
