"""What a sweep produces: task and result values, the ranking, the text table, the HTML page.

Ranking is a total order (objective value, then task order), so the output does not depend
on which worker finished first. The HTML page is one self-contained table, no scripts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from engine_app.cli_support import UsageError

Value = int | float | bool | str


@attrs.frozen(kw_only=True)
class Task:
    """One input run with one combination of overrides (`index` = place in task order)."""

    index: int
    input: str
    overrides: tuple[tuple[str, Value], ...]
    evaluate_args: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.overrides) or "(defaults)"


@attrs.frozen(kw_only=True)
class TaskResult:
    """What a task returns: its metrics (flat, dotted names) or why it failed."""

    index: int
    input: str
    overrides: tuple[tuple[str, Value], ...]
    metrics: tuple[tuple[str, float], ...] = ()
    #: BLAKE2b of the run's alerts.jsonl: equal digests, equal alerts ("" when none written).
    alerts_digest: str = ""
    error: str | None = None

    def metric(self, name: str) -> float | None:
        return dict(self.metrics).get(name)

    def to_json(self) -> dict[str, Any]:
        return {"input": self.input, "overrides": dict(self.overrides),
                "metrics": dict(self.metrics), "alerts_digest": self.alerts_digest,
                "error": self.error}


@attrs.frozen(kw_only=True)
class Objective:
    """Rank by `metric` (largest first unless `minimize`), among results meeting `where`."""

    metric: str
    minimize: bool = False
    where: tuple[tuple[str, str, float], ...] = ()

    def admits(self, r: TaskResult) -> bool:
        for name, op, bound in self.where:
            v = r.metric(name)
            if v is None or not (v <= bound if op == "<=" else v >= bound):
                return False
        return r.error is None and r.metric(self.metric) is not None


def parse_where(specs: Sequence[str]) -> tuple[tuple[str, str, float], ...]:
    out = []
    for spec in specs:
        for op in ("<=", ">="):
            name, found, bound = spec.partition(op)
            if found:
                try:
                    out.append((name.strip(), op, float(bound)))
                except ValueError:
                    raise UsageError(f"--where {spec!r}: the bound must be a number") from None
                break
        else:
            raise UsageError(f"--where {spec!r}: write METRIC<=NUMBER or METRIC>=NUMBER")
    return tuple(out)


def rank(results: Sequence[TaskResult], objective: Objective) -> list[TaskResult]:
    """Admitted results best first, then the others; ties and the rest in task order."""
    def key(r: TaskResult) -> tuple[int, float, int]:
        if not objective.admits(r):
            return (1, 0.0, r.index)
        v = r.metric(objective.metric)
        assert v is not None
        return (0, v if objective.minimize else -v, r.index)
    return sorted(results, key=key)


def table(ranked: Sequence[TaskResult], objective: Objective, columns: Sequence[str]) -> str:
    """The ranked results as aligned text: rank, input, overrides, objective, columns."""
    head = ["rank", "input", "overrides", objective.metric, *columns]
    rows = [head]
    for n, r in enumerate(ranked, 1):
        place = rank_label(n, r, objective)
        if r.error is not None:
            rows.append([place, Path(r.input).name, label(r), "FAILED", r.error])
            continue
        rows.append([place, Path(r.input).name, label(r),
                     *(fmt(r.metric(c)) for c in (objective.metric, *columns))])
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
                     for row in rows)


def rank_label(n: int, r: TaskResult, objective: Objective) -> str:
    """The rank shown for the n-th result: n, or "-" when failed or outside the bounds."""
    return str(n) if objective.admits(r) else "-"


def label(r: TaskResult) -> str:
    return " ".join(f"{k}={v}" for k, v in r.overrides) or "(defaults)"


def fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.0f}" if v == int(v) and abs(v) < 1e15 else f"{v:.4g}"




def write_html(path: Path, ranked: Sequence[TaskResult], objective: Objective,
               columns: Sequence[str]) -> None:
    """Write `ranked` (best first) as one HTML table; failed tasks show their reason."""
    metrics = [objective.metric, *columns]
    head = "".join(f"<th>{html.escape(h)}</th>"
                   for h in ("rank", "input", "overrides", *metrics))
    rows = []
    for n, r in enumerate(ranked, 1):
        cells = [rank_label(n, r, objective), html.escape(Path(r.input).name),
                 html.escape(" ".join(f"{k}={v}" for k, v in r.overrides) or "(defaults)")]
        if r.error is not None:
            cells.append(f'<span class="err">FAILED: {html.escape(r.error)}</span>')
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells[:-1])
                        + f'<td colspan="{len(metrics)}">{cells[-1]}</td></tr>')
            continue
        for m in metrics:
            v = r.metric(m)
            cells.append("n/a" if v is None else f"{v:.6g}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    order = "smallest" if objective.minimize else "largest"
    bounds = ", ".join(f"{n} {op} {b:g}" for n, op, b in objective.where) or "none"
    path.write_text(f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sweep: {html.escape(objective.metric)}</title>
<style>body{{font-family:sans-serif}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} .err{{color:#b00}}</style>
</head><body>
<h1>Sweep ranked by {html.escape(objective.metric)} ({order} first)</h1>
<p>Bounds: {html.escape(bounds)}. Rank "-": failed or outside the bounds.</p>
<table><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
""")
