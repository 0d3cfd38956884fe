"""`evaluate DIR`: label events from the data dir's market data, score its alerts and two
baselines, and collect what the table, the JSON and the HTML report show.

Inputs: 1-minute bars (DIR/bars/*.bars when the shell wrote them, else rebuilt from the
input journal), DIR/alerts.jsonl, and the output log (state shares, continuous scores; read
in place without re-checking its chain: `verify` is the integrity check).
Baselines (docs/evaluation.md):
  BASELINE_OI_FUNDING  per symbol, a minute where OI rose >= 3 % over the last hour and the
                       funding rate is > 0.05 %; one alert per rising edge
  BASELINE_RANDOM      alerts at uniformly random times and symbols, as many as the engine's
                       per-symbol alerts (every kind but SYSTEMIC_ALERT), from a fixed seed
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from engine_adapters.evaluation.bars import MINUTE_MS, bars_from_journal, dense, load_bars
from engine_adapters.evaluation.labels import LabelRules, label_bars
from engine_adapters.evaluation.scoring import (
    AlertMark,
    LabelledEvent,
    Scorecard,
    alerts_from_data_dir,
    horizon_label,
    score,
)
from engine_adapters.storage import StorageError, read_log
from engine_adapters.storage.log_reader import log_dir_of, scan_log
from engine_adapters.storage.segment import LOG_MAGIC, LOG_SUFFIX, decode_header, list_segments
from engine_adapters.storage.tables import RECORD_DTYPE
from engine_core.record import RECORD_SIZE
from engine_core.states import StructuralState

BASELINE_NAIVE = "BASELINE_OI_FUNDING"
BASELINE_RANDOM = "BASELINE_RANDOM"
NAIVE_OI_RISE = 0.03
NAIVE_FUNDING = 0.0005
TICK_MS = 250


def profile_of(data_dir: Path) -> str:
    """The config profile recorded in a data dir's manifest ("unknown" for older dirs)."""
    try:
        doc = json.loads((Path(data_dir) / "manifest.json").read_text())
    except (OSError, ValueError):
        return "unknown"
    value = doc.get("config_profile") if isinstance(doc, dict) else None
    return value if isinstance(value, str) else "unknown"


def profile_line(profile: str) -> str:
    """One line that says which input profile produced the figures (shown in every report)."""
    if profile == "archive":
        return ("config profile: archive (Binance archive input: depth bands, 5-min OI, "
                "1-min mark/index, no top of book or liquidation stream; "
                "not a live-equivalent run)")
    return f"config profile: {profile}"


class EvaluationError(Exception):
    """The data dir cannot be evaluated (the message says what is missing)."""


@attrs.frozen(kw_only=True)
class EvaluationResult:
    data_dir: Path
    symbols: tuple[str, ...]
    bars: Mapping[str, np.ndarray]
    bars_source: str
    events: tuple[LabelledEvent, ...]
    alerts: tuple[AlertMark, ...]
    scorecard: Scorecard
    rules: LabelRules
    #: Per symbol: minute starts and the per-minute max of the log's continuous scores.
    minute_scores: Mapping[str, Mapping[str, np.ndarray]]
    #: The config profile the data dir was run with (its manifest), e.g. "archive".
    profile: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        card = self.scorecard.to_json()
        return {
            "data_dir": str(self.data_dir),
            "symbols": list(self.symbols),
            "bars_source": self.bars_source,
            "config_profile": self.profile,
            "window": {"start_ms": card["start_ms"], "end_ms": card["end_ms"],
                       "symbol_days": card["symbol_days"]},
            "events": [{"symbol": e.symbol, "onset_ms": e.onset_ms, "end_ms": e.end_ms,
                        "direction": e.direction, "drawdown": e.drawdown,
                        "oi_change": e.oi_change, "how": e.how, "market": e.market,
                        "buildup_led": e.buildup_led} for e in self.events],
            "scores": card["kinds"],
            "horizons_ms": card["horizons_ms"],
            "state_share": card["state_share"],
            "rules": attrs.asdict(self.rules),
        }

    def table(self) -> str:
        card = self.scorecard.to_json()
        hs = [horizon_label(h) for h in card["horizons_ms"]]
        out = [f"evaluate {self.data_dir}: {len(self.symbols)} symbols, "
               f"{card['symbol_days']:.2f} symbol-days, bars from {self.bars_source}",
               profile_line(self.profile),
               f"events labelled from market data: {len(self.events)}"]
        for e in self.events:
            out.append(f"  {_iso(e.onset_ms)}  {e.symbol:<12} {e.direction:<13} "
                       f"move {e.drawdown:+.1%}  OI {e.oi_change:+.1%}"
                       f"{'  market-wide' if e.market else ''}")
        head = (f"{'kind':<26}{'alerts':>7}" + "".join(f"{'rec@' + h:>9}" for h in hs)
                + "".join(f"{'prec@' + h:>9}" for h in hs)
                + f"{'lead med':>10}{'delay med':>10}{'false/sym-day':>15}")
        out += ["", head, "-" * len(head)]
        for kind, k in card["kinds"].items():
            cells = [f"{kind:<26}{k['n_alerts']:>7}"]
            cells += [f"{_pct(k['recall'][h]):>9}" for h in hs]
            cells += [f"{_pct(k['precision'][h]):>9}" for h in hs]
            cells.append(f"{_dur(k['lead_ms']['median']):>10}")
            cells.append(f"{_dur(k['detection_delay_ms']['median']):>10}")
            fa = k["false_alarms_per_symbol_day"]
            cells.append(f"{'-' if fa is None else f'{fa:.2f}':>15}")
            out.append("".join(cells))
        if card["state_share"]:
            out += ["", "time in each state: " + ", ".join(
                f"{s} {v:.1%}" for s, v in card["state_share"].items())]
        return "\n".join(out) + "\n"


def _iso(ms: int) -> str:
    return str(np.datetime64(ms, "ms")).replace("T", " ")[:16] + "Z"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _dur(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms / 60_000:.1f}m" if abs(ms) >= 60_000 else f"{ms / 1000:.0f}s"


def naive_alerts(bars: Mapping[str, np.ndarray]) -> list[AlertMark]:
    """BASELINE_OI_FUNDING from the bars (module docstring)."""
    out: list[AlertMark] = []
    for sym in sorted(bars):
        b = dense(bars[sym])
        if len(b) < 61:
            continue
        oi = b["oi"]
        with np.errstate(all="ignore"):
            rise = np.concatenate([np.full(60, np.nan), oi[60:] / oi[:-60] - 1])
        on = (rise >= NAIVE_OI_RISE) & (b["funding"] > NAIVE_FUNDING)
        edges = np.flatnonzero(on & ~np.concatenate([[False], on[:-1]]))
        out += [AlertMark(symbol=sym, at_ms=int(b["minute_ms"][i]) + MINUTE_MS,
                          kind=BASELINE_NAIVE) for i in edges]
    return out


def random_alerts(n: int, symbols: Sequence[str], start_ms: int, end_ms: int,
                  seed: int) -> list[AlertMark]:
    """BASELINE_RANDOM: `n` alerts at uniform minutes and symbols (fixed seed)."""
    if n <= 0 or not symbols or end_ms <= start_ms:
        return []
    rng = np.random.default_rng(seed)
    at = rng.integers(start_ms, end_ms, size=n)
    who = rng.integers(0, len(symbols), size=n)
    return sorted((AlertMark(symbol=symbols[int(w)], at_ms=int(t), kind=BASELINE_RANDOM)
                   for t, w in zip(at, who, strict=True)), key=lambda a: a.at_ms)


def log_records(root: Path) -> tuple[tuple[str, ...], np.ndarray]:
    """The log's symbols and token records, read without re-checking CRCs and the hash chain.

    Evaluation is not the integrity authority (`verify` is, and `read_log` checks everything
    at ~10 us a tick, a minute and a half for a month of one symbol): this reads each segment
    in place, drops an incomplete last tick, and falls back to `read_log` for compressed or
    odd segments.
    """
    folder = log_dir_of(root)
    segs = list_segments(folder, LOG_SUFFIX) if folder.is_dir() else []
    if not segs:
        raise FileNotFoundError(f"{root}: no log segments")
    parts = []
    symbols: tuple[str, ...] = ()
    for seg in segs:
        if not seg.name.endswith(LOG_SUFFIX):
            return _symbols_of(root), read_log(root)
        data = seg.read_bytes()
        h = decode_header(data, seg, LOG_MAGIC)
        symbols = symbols or h.symbols
        n = h.n_tokens
        if h.record_size != RECORD_SIZE or h.symbols != symbols:
            return _symbols_of(root), read_log(root)
        blocks = (len(data) - h.header_len) // (RECORD_SIZE * (n + 1))
        arr = np.frombuffer(data, dtype=RECORD_DTYPE, count=blocks * (n + 1),
                            offset=h.header_len).reshape(blocks, n + 1)
        parts.append(arr[:, :n].reshape(-1))
    fields: Mapping[str, Any] = RECORD_DTYPE.fields or {}
    packed = np.dtype([(f, fields[f][0]) for f in RECORD_DTYPE.names or ()])
    return symbols, np.concatenate(parts).astype(packed)


def _symbols_of(root: Path) -> tuple[str, ...]:
    for s, _data in scan_log(log_dir_of(root)):
        return s.header.symbols
    return ()


def _log_view(root: Path) -> tuple[tuple[str, ...], dict[str, float] | None,
                                   dict[str, dict[str, np.ndarray]]]:
    """Log symbols, state shares, and per-symbol per-minute max of continuous scores."""
    try:
        symbols, arr = log_records(root)
    except (StorageError, FileNotFoundError, OSError):
        return (), None, {}
    if not len(arr):
        return symbols, None, {}
    counts = np.bincount(arr["fsm"].astype(np.intp), minlength=len(StructuralState))
    share = {st.name: float(counts[int(st)]) / len(arr) for st in StructuralState}
    scores: dict[str, dict[str, np.ndarray]] = {}
    minute = (arr["tick_id"].astype(np.int64) * TICK_MS - 1) // MINUTE_MS * MINUTE_MS
    for tok, sym in enumerate(symbols):
        sel = arr["token_id"] == tok
        if not sel.any():
            continue
        m = minute[sel]
        order = np.argsort(m, kind="stable")  # already sorted within a session: cheap
        m = m[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(m)) + 1])
        per: dict[str, np.ndarray] = {"minute_ms": m[starts]}
        for name in ("fragile", "trigger", "unwind"):
            per[name] = np.maximum.reduceat(arr[name][sel][order].astype(float), starts)
        scores[sym] = per
    return symbols, share, scores


def evaluate_dir(root: Path, *, rules: LabelRules | None = None, seed: int = 1
                 ) -> EvaluationResult:
    """Everything `evaluate` prints, for the data dir `root`."""
    rules = rules or LabelRules()
    bars_dir = root / "bars"
    if bars_dir.is_dir() and any(bars_dir.glob("*.bars")):
        try:
            bars, source = load_bars(bars_dir), "bars files"
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
    elif (root / "journal").is_dir():
        try:
            bars, source = bars_from_journal(root), "the input journal"
        except StorageError as exc:
            raise EvaluationError(f"{root}: journal unreadable: {exc}") from None
    else:
        raise EvaluationError(f"{root}: neither bars/ nor journal/ found: is this a data dir?")
    bars = {s: b for s, b in bars.items() if len(b)}
    if not bars:
        raise EvaluationError(f"{root}: no market data in the {source}")
    log_syms, share, minute_scores = _log_view(root)
    symbols = tuple(sorted(set(log_syms) | set(bars)))
    start = min(int(b["minute_ms"].min()) for b in bars.values())
    end = max(int(b["minute_ms"].max()) for b in bars.values()) + MINUTE_MS
    events = label_bars(bars, rules)
    try:
        engine = alerts_from_data_dir(root)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    n_own = sum(1 for a in engine if a.symbol and start <= a.at_ms <= end)
    alerts = engine + naive_alerts(bars) + random_alerts(n_own, symbols, start, end, seed)
    card = score(events, alerts, symbols=symbols, start_ms=start, end_ms=end,
                 state_share=share, kinds=(BASELINE_NAIVE, BASELINE_RANDOM))
    return EvaluationResult(data_dir=root, symbols=symbols, bars=bars, bars_source=source,
                            events=tuple(events), alerts=tuple(alerts), scorecard=card,
                            rules=rules, minute_scores=minute_scores,
                            profile=profile_of(root))
