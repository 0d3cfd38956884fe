"""The HTML page of `evaluate --out`: events, scores and three kinds of plots as embedded PNGs.

  per event        the symbol's close around the event (6 h before to 1 h after), onset and
                   end as lines, every alert of that symbol (and market-wide) as a marker
  lead times       a histogram of the first early alert's lead before each event's onset
  precision-recall the log's continuous scores (per-minute max of fragile, trigger, unwind)
                   against "an event starts within the next hour", swept over thresholds

matplotlib on the Agg canvas (no pyplot, no global backend).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from engine_adapters.evaluation.bars import MINUTE_MS, dense
from engine_adapters.evaluation.evaluate import EvaluationResult, profile_line
from engine_adapters.evaluation.scoring import DETECTION_KINDS, EARLY_KINDS

HOUR = 3_600_000
MAX_EVENT_PANELS = 24
_COLORS = {"STRUCTURAL_FRAGILE": "#f28e2b", "STRUCTURAL_TRIGGER_READY": "#e15759",
           "STRUCTURAL_UNWIND": "#8b0000", "SYSTEMIC_ALERT": "#6a3d9a",
           "STABLE_15M_ALERT": "#b07aa1", "BASELINE_OI_FUNDING": "#4e79a7",
           "BASELINE_RANDOM": "#9c9c9c"}


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def _event_figure(res: EvaluationResult) -> str | None:
    from matplotlib.figure import Figure

    events = list(res.events)[:MAX_EVENT_PANELS]
    if not events:
        return None
    fig = Figure(figsize=(10, 2.6 * len(events)))
    for k, e in enumerate(events):
        ax = fig.add_subplot(len(events), 1, k + 1)
        b = dense(res.bars[e.symbol])
        t = b["minute_ms"] + MINUTE_MS
        sel = (t >= e.onset_ms - 6 * HOUR) & (t <= e.end_ms + HOUR)
        ax.plot((t[sel] - e.onset_ms) / 60_000, b["close"][sel], color="black", lw=0.8)
        ax.axvline(0, color="red", ls="--", lw=0.8)
        ax.axvline((e.end_ms - e.onset_ms) / 60_000, color="grey", ls=":", lw=0.8)
        lo, hi = e.onset_ms - 6 * HOUR, e.end_ms + HOUR
        for a in res.alerts:
            if lo <= a.at_ms <= hi and a.symbol in (e.symbol, ""):
                ax.axvline((a.at_ms - e.onset_ms) / 60_000, color=_COLORS.get(a.kind, "blue"),
                           lw=1.2, alpha=0.8, label=a.kind)
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=True))
        if uniq:
            ax.legend(uniq.values(), uniq.keys(), fontsize=6, loc="lower left")
        ax.set_title(f"{e.symbol} {e.direction} {e.drawdown:+.1%} (OI {e.oi_change:+.1%})",
                     fontsize=9)
        ax.set_xlabel("minutes from onset", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _lead_figure(res: EvaluationResult) -> str | None:
    from matplotlib.figure import Figure

    kinds = res.scorecard.kinds
    data = {k.kind: np.asarray(k.lead_ms) / 60_000 for k in kinds
            if k.lead_ms and k.kind not in DETECTION_KINDS}
    if not data:
        return None
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(list(data.values()), bins=20, label=list(data.keys()))
    ax.set_xlabel("lead before onset (minutes)")
    ax.set_ylabel("events")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def pr_curve(res: EvaluationResult, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) over thresholds of one continuous score: a minute is positive when
    an event of its symbol starts within the next hour."""
    scores, truth = [], []
    for sym, per in res.minute_scores.items():
        m = per["minute_ms"]
        pos = np.zeros(len(m), dtype=bool)
        for e in res.events:
            if e.symbol == sym:
                pos |= (m >= e.onset_ms - HOUR) & (m <= e.onset_ms)
        scores.append(per[name])
        truth.append(pos)
    if not scores:
        return np.zeros(0), np.zeros(0)
    s, y = np.concatenate(scores), np.concatenate(truth)
    if not y.any():
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, len(s) + 1)
    return tp / k, tp / y.sum()


def _pr_figure(res: EvaluationResult) -> str | None:
    from matplotlib.figure import Figure

    curves = {n: pr_curve(res, n) for n in ("fragile", "trigger", "unwind")}
    curves = {n: c for n, c in curves.items() if len(c[0])}
    if not curves:
        return None
    fig = Figure(figsize=(5, 4))
    ax = fig.add_subplot(1, 1, 1)
    for n, (p, r) in curves.items():
        ax.plot(r, p, label=n)
    ax.set_xlabel("recall (event within 1 h)")
    ax.set_ylabel("precision")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def write_report(res: EvaluationResult, out: Path) -> Path:
    """Write the page; ImportError with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("matplotlib is needed for reports: pip install -e .[research]") \
            from None
    parts = [f"<h1>evaluate {html.escape(str(res.data_dir))}</h1>",
             f"<p><b>{html.escape(profile_line(res.profile))}</b></p>",
             f"<p>bars from {html.escape(res.bars_source)}; early kinds "
             f"{', '.join(EARLY_KINDS)}; rules in docs/evaluation.md</p>",
             f"<pre>{html.escape(res.table())}</pre>"]
    for title, img, empty in (
            ("Events: price with alert markers", _event_figure(res),
             "No event was labelled: every alert counts as a false alarm."),
            ("Lead-time histogram", _lead_figure(res), "No early alert before any event."),
            ("Precision-recall of the continuous scores", _pr_figure(res),
             "Needs labelled events and a log.")):
        parts.append(f"<h2>{title}</h2>")
        parts.append(f'<img src="data:image/png;base64,{img}">' if img
                     else f"<p>{html.escape(empty)}</p>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("<!doctype html><html><head><meta charset='utf-8'><title>evaluate</title>"
                   "</head><body>" + "\n".join(parts) + "</body></html>\n", encoding="utf-8")
    return out
