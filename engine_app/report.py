"""The researcher's plots: per-symbol timelines of a data dir, as PNG, HTML or a Figure.

    top panel        cluster state and event phase as two coloured bands; SYSTEMIC alerts
    price per symbol the core's evidence price of every tick (DIR/evidence: the mid, mark
                     without a book; the same number the alerts, the live view and
                     `export`'s ev_price state), else the one-minute close of DIR/bars;
                     alerts as coloured vertical markers
    one per symbol   structural state as a step line over coloured bands, tier as a thin band
                     on top, trigger cost (0-100) on a twin axis, alerts as labelled ticks

States are read from the output log (`read_log`), the replay authority: alert markers come
from the records' alert bits, so a report needs nothing but `log/`; the price panels read the
evidence records (else the bars) `run` and `live` write beside it and are left out without
them. The title names the evidence's windows (`windows_line`: move vs its window average, OI
vs its window average, liquidations a decaying sum of theirs), the same words as the alerts'
text and the same seconds as `export`'s ev_*_window_s columns. The HTML page embeds the PNG
as base64 and lists the alerts from `alerts.jsonl` (messages and evidence included) when
present.
The figure is built without pyplot on the Agg canvas, so it changes no global backend and
works in notebooks, threads and headless servers alike. matplotlib is an optional extra.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine_adapters.evaluation.bars import MINUTE_MS, dense, load_bars
from engine_adapters.evaluation.evaluate import profile_line, profile_of
from engine_adapters.evidence_text import windows_line
from engine_adapters.storage import StorageError, read_log
from engine_adapters.storage.alerts_json import read_lines, tick_time
from engine_adapters.storage.evidence_store import evidence_files
from engine_adapters.storage.log_reader import log_dir_of, scan_log
from engine_app.export_columns import evidence_array, evidence_windows
from engine_core import TICK_MS
from engine_core.evidence import PRICE_SCALE, EvidenceFlag
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

RESEARCH_HINT = "pip install -e .[research]"
#: Above this many ticks per symbol, points are thinned (every state change is kept).
MAX_POINTS = 5000
#: Without an explicit `symbols`, at most this many panels (the busiest symbols).
MAX_PANELS = 16

STATE_COLORS = {StructuralState.BUILD: "#d9d9d9", StructuralState.PRESSURE: "#f2d024",
                StructuralState.FRAGILE: "#f28e2b", StructuralState.TRIGGER_READY: "#e15759",
                StructuralState.UNWIND: "#8b0000", StructuralState.COOLDOWN: "#76b7b2"}
TIER_COLORS = {Tier.TIER_NEUTRAL: "#eeeeee", Tier.TIER_EXPANSION: "#9ecae1",
               Tier.TIER_OVERLEVERAGED: "#3182bd", Tier.TIER_EXHAUSTED: "#756bb1"}
CLUSTER_COLORS = {ClusterState.CLUSTER_CALM: "#d9ead3", ClusterState.CLUSTER_HEATING: "#f2d024",
                  ClusterState.CLUSTER_FRAGILE: "#f28e2b", ClusterState.CLUSTER_UNWIND: "#8b0000",
                  ClusterState.CLUSTER_COOLDOWN: "#76b7b2"}
PHASE_COLORS = {EventPhase.PREP: "#eeeeee", EventPhase.START: "#fdd0a2",
                EventPhase.MID: "#e6550d", EventPhase.END: "#a1d99b", EventPhase.POST: "#c7e9c0"}
ALERT_LABELS = {AlertKind.STRUCTURAL_FRAGILE: "FRAG", AlertKind.STRUCTURAL_TRIGGER_READY: "TRIG",
                AlertKind.STRUCTURAL_UNWIND: "UNW", AlertKind.SYSTEMIC_ALERT: "SYS",
                AlertKind.STABLE_15M_ALERT: "15M"}
_TOKEN_KINDS = tuple(k for k in ALERT_LABELS if k is not AlertKind.SYSTEMIC_ALERT)
MARKER_COLORS = {AlertKind.STRUCTURAL_FRAGILE: "#f28e2b",
                 AlertKind.STRUCTURAL_TRIGGER_READY: "#e15759",
                 AlertKind.STRUCTURAL_UNWIND: "#8b0000", AlertKind.STABLE_15M_ALERT: "#3182bd"}


def _matplotlib() -> Any:
    try:
        import matplotlib.dates as mdates
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"matplotlib is needed for reports: {RESEARCH_HINT}") from None
    return mdates, Figure, FigureCanvasAgg


def log_symbols(data_dir: Path | str) -> tuple[str, ...]:
    """The symbol table stored in the log header (token id = index)."""
    for s, _data in scan_log(log_dir_of(Path(data_dir))):
        return s.header.symbols
    return ()


def thin(changes: np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    """Indices to plot out of `len(changes)` points: every point where `changes` is True,
    the point just before it (so a step line keeps its corners), an even stride of the rest
    (at most ~`limit`), and both ends."""
    n = len(changes)
    if n <= limit:
        return np.arange(n)
    keep = changes.copy()
    keep[:-1] |= changes[1:]
    keep[::max(1, n // limit)] = True
    keep[0] = keep[-1] = True
    return np.flatnonzero(keep)


def _runs(values: np.ndarray, x: np.ndarray, end: float) -> list[tuple[float, float, int]]:
    """(start, width, value) of each run of equal values; x are date numbers."""
    if len(values) == 0:
        return []
    cut = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate(([0], cut))
    stops = np.concatenate((x[cut], [end]))
    return [(float(x[s]), float(e - x[s]), int(values[s])) for s, e in zip(starts, stops,
                                                                          strict=True)]


def _band(ax: Any, values: np.ndarray, x: np.ndarray, end: float, y: tuple[float, float],
          colors: dict[Any, str], enum: Any, alpha: float = 1.0, names: bool = False) -> None:
    runs = _runs(values, x, end)
    known = enum._value2member_map_
    ax.broken_barh([(s, w) for s, w, _ in runs], y, alpha=alpha, linewidth=0,
                   facecolors=[colors.get(enum(v), "#000000") if v in known else "#000000"
                               for _, _, v in runs])
    if names and runs:
        span = end - runs[0][0]
        for s, w, v in runs:  # name the wide runs: the band's own legend
            if w > 0.06 * span:
                name = enum(v).name.removeprefix("CLUSTER_") if v in known else f"?{v}"
                face = colors.get(enum(v), "#000000") if v in known else "#000000"
                ax.text(s + w / 2, y[0] + y[1] / 2, name, fontsize=7, ha="center",
                        va="center", color="white" if _dark(face) else "black")


def _dark(hex_color: str) -> bool:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return 0.299 * r + 0.587 * g + 0.114 * b < 110


def _pick(arr: np.ndarray, all_symbols: tuple[str, ...], symbols: Sequence[str] | None
          ) -> list[int]:
    if symbols is not None:
        unknown = [s for s in symbols if s not in all_symbols]
        if unknown:
            raise ValueError(f"symbol(s) not in this log: {', '.join(unknown)}; "
                             f"the log holds {', '.join(all_symbols)}")
        return [all_symbols.index(s) for s in symbols]
    if len(all_symbols) <= MAX_PANELS:
        return list(range(len(all_symbols)))
    busy = np.bincount(arr["token_id"][arr["fsm"] != int(StructuralState.BUILD)],
                       minlength=len(all_symbols))
    top = sorted(range(len(all_symbols)), key=lambda i: (-int(busy[i]), i))[:MAX_PANELS]
    return sorted(top)


def figure_for(data_dir: Path | str, symbols: Sequence[str] | None = None) -> Any:
    """A matplotlib Figure of the timelines (top panel + one per symbol, x shared, UTC).

    Without `symbols`: every symbol, or the `MAX_PANELS` busiest ones of a larger universe.
    Raises ValueError for an empty log or unknown symbols, StorageError for a damaged log.
    """
    mdates, figure_cls, canvas_cls = _matplotlib()
    from matplotlib.patches import Patch

    path = Path(data_dir)
    arr = read_log(path)
    all_symbols = log_symbols(path)
    if len(arr) == 0:
        raise ValueError(f"{path}: the log holds no ticks yet; nothing to plot")
    picked = _pick(arr, all_symbols, symbols)
    n = len(picked)
    prices = evidence_prices(path, tuple(picked), arr)
    bars = price_bars(path, [all_symbols[t] for t in picked if t not in prices])
    has_price = {t for t in picked if t in prices or all_symbols[t] in bars}
    heights = [0.8]
    for t in picked:
        heights += [1.4, 2.0] if t in has_price else [2.0]
    fig = figure_cls(figsize=(14, 1.6 + 2.0 * n + 1.4 * len(has_price)), layout="constrained")
    canvas_cls(fig)
    grid = fig.subplots(len(heights), 1, sharex=True, squeeze=False,
                        gridspec_kw={"height_ratios": heights})[:, 0]
    axes, price_axes, k = [grid[0]], {}, 1
    for t in picked:
        if t in has_price:
            price_axes[t] = grid[k]
            k += 1
        axes.append(grid[k])
        k += 1
    end_tick = int(arr["tick_id"].max()) + 1
    end = float(mdates.date2num(np.datetime64(end_tick * TICK_MS, "ms")))

    def dates(ticks: np.ndarray) -> np.ndarray:
        x: np.ndarray = mdates.date2num((ticks.astype("int64") * TICK_MS).astype("datetime64[ms]"))
        return x

    # -- market panel: token 0's records carry the tick's cluster, phase, event id
    market = arr[arr["token_id"] == arr["token_id"][0]]
    xm = dates(market["tick_id"])
    ax0 = axes[0]
    _band(ax0, market["cluster"], xm, end, (1.1, 0.8), CLUSTER_COLORS, ClusterState,
          names=True)
    _band(ax0, market["phase"], xm, end, (0.1, 0.8), PHASE_COLORS, EventPhase, names=True)
    ax0.set_ylim(0, 2)
    ax0.set_yticks([0.5, 1.5], ["phase", "cluster"])
    first, last = int(arr["tick_id"].min()), end_tick - 1
    windows = evidence_windows(path) if prices else None
    ax0.set_title(f"{path.name}: {tick_time(first)} .. {tick_time(last)}  "
                  f"({len(market)} ticks, {len(all_symbols)} symbols)\n"
                  f"{profile_line(profile_of(path))}"
                  + ("" if windows is None else f"\nevidence: {windows_line(windows)}"),
                  loc="left", fontsize=9)
    systemic = np.flatnonzero(market["alerts"] & (1 << (int(AlertKind.SYSTEMIC_ALERT) - 1)))
    for i in systemic:
        ax0.axvline(xm[i], color="black", linewidth=1)
        ax0.text(xm[i], 2.0, " SYS", fontsize=7, va="top", ha="left")

    # -- one panel per symbol
    for ax, tok in zip(axes[1:], picked, strict=True):
        rows = arr[arr["token_id"] == tok]
        fsm = rows["fsm"]
        changes = np.zeros(len(rows), dtype=bool)
        changes[1:] = (fsm[1:] != fsm[:-1]) | (rows["tier"][1:] != rows["tier"][:-1])
        changes |= rows["alerts"] != 0
        idx = thin(changes)
        x_all = dates(rows["tick_id"])
        x = x_all[idx]
        _band(ax, fsm[idx], x, end, (-0.5, 6.0), STATE_COLORS, StructuralState, alpha=0.25)
        _band(ax, rows["tier"][idx], x, end, (5.65, 0.35), TIER_COLORS, Tier)
        ax.step(x, fsm[idx], where="post", color="black", linewidth=1.2)
        ax.set_ylim(-0.5, 6.6)
        ax.set_yticks(range(6), [s.name for s in StructuralState], fontsize=7)
        ax.set_ylabel(all_symbols[tok], rotation=0, ha="right", va="center", fontweight="bold")
        cost = ax.twinx()
        cost.plot(x, rows["trigger_cost"][idx] / 100, color="#1f77b4", linewidth=0.9)
        cost.set_ylim(0, 105)
        cost.set_ylabel("trigger cost", fontsize=7, color="#1f77b4")
        cost.tick_params(axis="y", labelsize=7, colors="#1f77b4")
        for i in np.flatnonzero(rows["alerts"]):
            kinds = [ALERT_LABELS[k] for k in _TOKEN_KINDS
                     if int(rows["alerts"][i]) & (1 << (int(k) - 1))]
            if kinds:
                ax.axvline(x_all[i], ymin=0, ymax=0.08, color="black", linewidth=1.2)
                ax.text(x_all[i], 0.1, " " + "+".join(kinds), fontsize=6.5, rotation=90,
                        va="bottom", ha="center", transform=ax.get_xaxis_transform())
        if tok in prices:
            ticks, price = prices[tok]
            _price_panel(price_axes[tok], dates(ticks), price, rows, x_all)
        elif tok in price_axes:
            b = bars[all_symbols[tok]]
            ends = (b["minute_ms"] + MINUTE_MS).astype("datetime64[ms]")
            _price_panel(price_axes[tok], mdates.date2num(ends), b["close"], rows, x_all)

    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    axes[-1].set_xlabel("UTC")
    handles = ([Patch(color=c, alpha=0.5, label=s.name) for s, c in STATE_COLORS.items()]
               + [Patch(color=c, label=t.name) for t, c in TIER_COLORS.items()])
    fig.legend(handles=handles, loc="outside lower center", ncol=5, fontsize=7, frameon=False)
    return fig


def price_bars(data_dir: Path, symbols: Sequence[str]) -> dict[str, np.ndarray]:
    """Dense one-minute bars with a price, per symbol of `symbols` found in DIR/bars."""
    folder = data_dir / "bars"
    if not folder.is_dir():
        return {}
    out = {}
    for sym, arr in load_bars(folder).items():
        if sym in symbols and len(arr):
            b = dense(arr)
            if np.isfinite(b["close"]).any():
                out[sym] = b
    return out


def evidence_prices(data_dir: Path, tokens: tuple[int, ...], log: np.ndarray
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """token -> (ticks, price) of the core's evidence records (ticks it knew a price in),
    thinned to about `MAX_POINTS`, every alert tick kept; {} for a dir without evidence."""
    ev = evidence_array(data_dir, tokens)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for t in tokens:
        e = ev[(ev["token"] == t) & ((ev["flags"] & int(EvidenceFlag.NO_PRICE)) == 0)]
        if not len(e):
            continue
        e = e[np.argsort(e["tick"], kind="stable")]
        keep = np.zeros(len(e), dtype=bool)
        keep[::max(1, len(e) // MAX_POINTS)] = True
        keep[-1] = True
        alerted = log["tick_id"][(log["token_id"] == t) & (log["alerts"] != 0)]
        keep |= np.isin(e["tick"], alerted.astype(np.uint64))
        out[t] = (e["tick"][keep].astype(np.int64), e["price"][keep] / PRICE_SCALE)
    return out


def _price_panel(ax: Any, x: np.ndarray, price: np.ndarray, rows: np.ndarray,
                 x_rows: np.ndarray) -> None:
    """The price line, and a coloured marker at each of the token's alerts."""
    ax.plot(x, price, color="black", linewidth=0.9)
    ax.set_ylabel("price", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(True, axis="y", linewidth=0.3)
    for i in np.flatnonzero(rows["alerts"]):
        for k in _TOKEN_KINDS:
            if int(rows["alerts"][i]) & (1 << (int(k) - 1)):
                ax.axvline(x_rows[i], color=MARKER_COLORS[k], linewidth=1.0, alpha=0.8)
                ax.text(x_rows[i], 1.0, " " + ALERT_LABELS[k], fontsize=6.5, va="top",
                        ha="left", color=MARKER_COLORS[k], transform=ax.get_xaxis_transform())


def render_report(data_dir: Path | str, out: Path | str,
                  symbols: Sequence[str] | None = None) -> Path:
    """Write the report to `out` (.png: the figure; .html: page with image and alerts)."""
    target = Path(out)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".html", ".htm"):
        raise ValueError(f"report output must end in .png or .html, got {target.name!r}")
    fig = figure_for(data_dir, symbols)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        fig.savefig(target, format="png", dpi=110)
        return target
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    target.write_text(_html(Path(data_dir), buf.getvalue()), encoding="utf-8")
    return target


def _alert_rows(data_dir: Path) -> list[tuple[str, str, str, str, str]]:
    """(time, kind, symbol, message, evidence) of every alert: alerts.jsonl, else the
    records' bits (no message, no evidence)."""
    path = data_dir / "alerts.jsonl"
    if path.is_file():
        said = [str(json.loads(line).get("evidence_text", ""))
                for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [(tick_time(a.tick_id), a.kind.name, a.symbol, a.message, ev)
                for (_, a), ev in zip(read_lines(path), said, strict=True)]
    arr = read_log(data_dir)
    syms = log_symbols(data_dir)
    out: list[tuple[str, str, str, str, str]] = []
    seen_systemic: set[int] = set()
    for r in arr[arr["alerts"] != 0]:
        tick, mask = int(r["tick_id"]), int(r["alerts"])
        for k in ALERT_LABELS:
            if not mask & (1 << (int(k) - 1)):
                continue
            if k is AlertKind.SYSTEMIC_ALERT:
                if tick in seen_systemic:
                    continue
                seen_systemic.add(tick)
                out.append((tick_time(tick), k.name, "*", "", ""))
            else:
                out.append((tick_time(tick), k.name, syms[int(r["token_id"])], "", ""))
    return out


def _html(data_dir: Path, png: bytes) -> str:
    try:
        rows = _alert_rows(data_dir)
    except (ValueError, StorageError) as exc:
        rows = [("", "error", "", f"alerts unreadable: {exc}", "")]
    esc = html.escape
    body = "\n".join(f"<tr><td>{esc(t)}</td><td>{esc(k)}</td><td>{esc(s)}</td>"
                     f"<td>{esc(m)}</td><td>{esc(e)}</td></tr>" for t, k, s, m, e in rows)
    windows = evidence_windows(data_dir) if evidence_files(data_dir) else None
    said = "" if windows is None else f"<p>evidence: {esc(windows_line(windows))}</p>\n"
    img = base64.b64encode(png).decode("ascii")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>engine report: {esc(data_dir.name)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} img{{max-width:100%}}
table{{border-collapse:collapse;font-size:0.85em}} td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:left}}</style></head><body>
<h1>engine report: {esc(data_dir.name)}</h1>
<p><b>{esc(profile_line(profile_of(data_dir)))}</b></p>
{said}<img alt="timelines" src="data:image/png;base64,{img}">
<h2>Alerts ({len(rows)})</h2>
<table><tr><th>time (UTC)</th><th>kind</th><th>symbol</th><th>message</th><th>evidence</th></tr>
{body}
</table></body></html>
"""
