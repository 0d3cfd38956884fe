"""Scoring of alerts against labelled events: recall, precision, lead, delay, false alarms.

Shared by `evaluate` (labels from market data), the simulator's judgement benchmark (ground
truth) and `sweep`. The contract is /work/notes/scoring_api.md; the matching rules, in a
trader's words, are in docs/evaluation.md. Times are epoch milliseconds.

Matching (one place, mirrored in docs/evaluation.md):
  early kinds (FRAGILE, TRIGGER_READY, STABLE_15M, EARLY_ANY, baselines, unknown kinds)
      hit an event of the same symbol when fired in [onset - horizon, onset]
  detection kinds (STRUCTURAL_UNWIND)
      hit an event of the same symbol when fired in [onset, end] (same at every horizon)
  SYSTEMIC_ALERT (symbol "")
      hits any event when fired in [onset - horizon, end]
  a false alarm: an alert that matches no event in [onset - 6 h, end + 15 min]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from engine_adapters.storage.alerts_json import ALERTS_FILE, read_lines

DAY_MS = 86_400_000
#: Default horizons: 15 min, 1 h, 6 h before onset.
HORIZONS_MS = (900_000, 3_600_000, 21_600_000)
#: An alert this long before an onset, or this long after its end, is not a false alarm.
FALSE_ALARM_BEFORE_MS = 21_600_000
FALSE_ALARM_AFTER_MS = 900_000
#: "Within 60 s" of the delay share, and the minimum useful lead of the lead share.
PROMPT_MS = 60_000

DIRECTIONS = ("long_flush", "short_squeeze")
DETECTION_KINDS = frozenset({"STRUCTURAL_UNWIND"})
MARKET_KINDS = frozenset({"SYSTEMIC_ALERT"})
#: The engine's per-symbol early kinds; EARLY_ANY is their union, scored as one more kind.
EARLY_KINDS = ("STRUCTURAL_FRAGILE", "STRUCTURAL_TRIGGER_READY", "STABLE_15M_ALERT")
EARLY_ANY = "EARLY_ANY"
#: Kinds always present in a scorecard (zero alerts still means recall 0).
STANDARD_KINDS = ("STRUCTURAL_FRAGILE", "STRUCTURAL_TRIGGER_READY", "STRUCTURAL_UNWIND",
                  "SYSTEMIC_ALERT", "STABLE_15M_ALERT", EARLY_ANY)


@attrs.frozen(kw_only=True)
class LabelledEvent:
    """A ground-truth event (simulation) or a label (the labeller) of one symbol."""

    symbol: str
    onset_ms: int
    end_ms: int
    #: "long_flush" | "short_squeeze"
    direction: str
    #: Signed return from the pre-onset price to the extreme (-0.12).
    drawdown: float
    #: Signed fraction of open interest lost or gained (-0.08).
    oi_change: float
    #: "simulation ground truth" or the labelling rule that fired.
    how: str
    #: Part of a market-wide cascade (one LabelledEvent per symbol that took part).
    market: bool = False
    #: Preceded by a leverage build-up.
    buildup_led: bool = False

    def __attrs_post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"event {self.symbol}@{self.onset_ms}: direction must be one of "
                             f"{DIRECTIONS}, got {self.direction!r}")
        if self.end_ms < self.onset_ms:
            raise ValueError(f"event {self.symbol}@{self.onset_ms}: end {self.end_ms} "
                             f"before onset")


@attrs.frozen(kw_only=True)
class AlertMark:
    """One alert: who, when, what. symbol "" for a market-wide (SYSTEMIC) alert."""

    symbol: str
    at_ms: int
    #: AlertKind name, e.g. "STRUCTURAL_UNWIND", or a baseline name.
    kind: str


def _event_json(e: LabelledEvent) -> dict[str, Any]:
    return attrs.asdict(e)


def dump_events(events: Iterable[LabelledEvent], path: Path | str) -> None:
    """Write events as one JSON list (fields as in LabelledEvent)."""
    Path(path).write_text(json.dumps([_event_json(e) for e in events], indent=1) + "\n",
                          encoding="utf-8")


def events_from_json(items: Sequence[Mapping[str, Any]], where: str = "events") -> list[
        LabelledEvent]:
    out: list[LabelledEvent] = []
    for i, d in enumerate(items):
        try:
            out.append(LabelledEvent(
                symbol=str(d["symbol"]), onset_ms=int(d["onset_ms"]), end_ms=int(d["end_ms"]),
                direction=str(d["direction"]), drawdown=float(d["drawdown"]),
                oi_change=float(d["oi_change"]), how=str(d["how"]),
                market=bool(d.get("market", False)),
                buildup_led=bool(d.get("buildup_led", False))))
        except KeyError as exc:
            raise ValueError(f"{where}: item {i}: missing key {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: item {i}: {exc}") from None
    return out


def load_events(path: Path | str) -> list[LabelledEvent]:
    """Read a JSON list written by `dump_events`; ValueError names the file and the item."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise ValueError(f"{path}: expected a JSON list of events")
    return events_from_json(doc, str(path))


def alerts_from_data_dir(data_dir: Path | str) -> list[AlertMark]:
    """The alerts of DIR/alerts.jsonl (none when absent); market-wide ones get symbol ""."""
    path = Path(data_dir) / ALERTS_FILE
    if not path.is_file():
        return []
    return [AlertMark(symbol="" if a.symbol == "*" else a.symbol, at_ms=a.tick_id * 250,
                      kind=a.kind.name) for _, a in read_lines(path)]


def horizon_label(ms: int) -> str:
    """900000 -> "15m", 3600000 -> "1h"; other values as "<n>s"."""
    if ms % 3_600_000 == 0:
        return f"{ms // 3_600_000}h"
    if ms % 60_000 == 0:
        return f"{ms // 60_000}m"
    return f"{ms // 1000}s"


@attrs.frozen(kw_only=True)
class KindScore:
    """The figures of one alert kind (tuples are per horizon, in Scorecard.horizons_ms)."""

    kind: str
    n_alerts: int
    recall: tuple[float | None, ...]
    precision: tuple[float | None, ...]
    #: Lead of the first early alert before onset (within the longest horizon), per event.
    lead_ms: tuple[int, ...]
    #: Delay of the first alert in [onset, end] after onset, per detected event.
    delay_ms: tuple[int, ...]
    false_alarms: int
    false_alarms_per_symbol_day: float | None

    def to_json(self, horizons_ms: Sequence[int], n_events: int) -> dict[str, Any]:
        labels = [horizon_label(h) for h in horizons_ms]
        lead = np.asarray(self.lead_ms, dtype=float)
        delay = np.asarray(self.delay_ms, dtype=float)

        def q(a: Any, p: float) -> float | None:
            return float(np.percentile(a, p)) if a.size else None

        return {
            "n_alerts": self.n_alerts,
            "recall": dict(zip(labels, self.recall, strict=True)),
            "precision": dict(zip(labels, self.precision, strict=True)),
            "lead_ms": {"n": int(lead.size), "median": q(lead, 50), "p25": q(lead, 25),
                        "p75": q(lead, 75), "iqr": None if not lead.size
                        else float(np.percentile(lead, 75) - np.percentile(lead, 25)),
                        "share_ge_60s": None if not n_events
                        else float((lead >= PROMPT_MS).sum()) / n_events},
            "detection_delay_ms": {"n": int(delay.size), "median": q(delay, 50),
                                   "p90": q(delay, 90),
                                   "share_within_60s": None if not n_events
                                   else float((delay <= PROMPT_MS).sum()) / n_events},
            "false_alarms": self.false_alarms,
            "false_alarms_per_symbol_day": self.false_alarms_per_symbol_day,
        }


@attrs.frozen(kw_only=True)
class Scorecard:
    """Every kind's figures over one scoring window."""

    horizons_ms: tuple[int, ...]
    n_events: int
    symbols: tuple[str, ...]
    start_ms: int
    end_ms: int
    kinds: tuple[KindScore, ...]
    state_share: tuple[tuple[str, float], ...] | None

    @property
    def symbol_days(self) -> float:
        return len(self.symbols) * (self.end_ms - self.start_ms) / DAY_MS

    def kind(self, name: str) -> KindScore:
        for k in self.kinds:
            if k.kind == name:
                return k
        raise KeyError(f"no alert kind {name!r} in this scorecard "
                       f"(have {[k.kind for k in self.kinds]})")

    def to_json(self) -> dict[str, Any]:
        return {
            "horizons_ms": list(self.horizons_ms),
            "n_events": self.n_events,
            "symbols": list(self.symbols),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "symbol_days": self.symbol_days,
            "kinds": {k.kind: k.to_json(self.horizons_ms, self.n_events) for k in self.kinds},
            "state_share": None if self.state_share is None else dict(self.state_share),
        }


def _window(kind: str, e: LabelledEvent, horizon: int) -> tuple[int, int]:
    if kind in DETECTION_KINDS:
        return e.onset_ms, e.end_ms
    if kind in MARKET_KINDS:
        return e.onset_ms - horizon, e.end_ms
    return e.onset_ms - horizon, e.onset_ms


def _applies(a: AlertMark, e: LabelledEvent) -> bool:
    return a.symbol == "" or a.symbol == e.symbol


def _score_kind(kind: str, events: Sequence[LabelledEvent], alerts: Sequence[AlertMark],
                horizons: Sequence[int], symbol_days: float) -> KindScore:
    alerts = sorted(alerts, key=lambda a: a.at_ms)
    recall: list[float | None] = []
    precision: list[float | None] = []
    for h in horizons:
        matched_alerts: set[int] = set()
        hit_events = 0
        for e in events:
            lo, hi = _window(kind, e, h)
            hit = [i for i, a in enumerate(alerts) if lo <= a.at_ms <= hi and _applies(a, e)]
            hit_events += bool(hit)
            matched_alerts.update(hit)
        recall.append(hit_events / len(events) if events else None)
        precision.append(len(matched_alerts) / len(alerts) if alerts else None)
    lead: list[int] = []
    delay: list[int] = []
    longest = max(horizons)
    for e in events:
        mine = [a.at_ms for a in alerts if _applies(a, e)]
        if kind in DETECTION_KINDS or kind in MARKET_KINDS:
            after = [t for t in mine if e.onset_ms <= t <= e.end_ms]
            if after:
                delay.append(after[0] - e.onset_ms)
        if kind not in DETECTION_KINDS:
            before = [t for t in mine if e.onset_ms - longest <= t <= e.onset_ms]
            if before:
                lead.append(e.onset_ms - before[0])
    false = sum(1 for a in alerts if not any(
        _applies(a, e) and e.onset_ms - FALSE_ALARM_BEFORE_MS <= a.at_ms
        <= e.end_ms + FALSE_ALARM_AFTER_MS for e in events))
    return KindScore(kind=kind, n_alerts=len(alerts), recall=tuple(recall),
                     precision=tuple(precision), lead_ms=tuple(lead), delay_ms=tuple(delay),
                     false_alarms=false,
                     false_alarms_per_symbol_day=false / symbol_days if symbol_days > 0
                     else None)


def score(events: Sequence[LabelledEvent], alerts: Sequence[AlertMark], *,
          symbols: Sequence[str], start_ms: int, end_ms: int,
          state_share: Mapping[str, float] | None = None,
          horizons_ms: Sequence[int] = HORIZONS_MS, kinds: Sequence[str] = ()) -> Scorecard:
    """Score every alert kind against `events` over [start_ms, end_ms] of `symbols`.

    Events whose onset falls outside the window, and alerts outside it or of other symbols,
    are left out. Kinds: the engine's standard kinds, EARLY_ANY (the union of the early
    kinds), then `kinds` and every other kind found in `alerts` (baselines), sorted by name.
    """
    if end_ms <= start_ms:
        raise ValueError(f"score: end_ms {end_ms} must be after start_ms {start_ms}")
    if not horizons_ms or any(h <= 0 for h in horizons_ms):
        raise ValueError(f"score: horizons must be positive, got {tuple(horizons_ms)}")
    syms = set(symbols)
    evs = sorted((e for e in events if e.symbol in syms and start_ms <= e.onset_ms <= end_ms),
                 key=lambda e: (e.onset_ms, e.symbol))
    kept = [a for a in alerts if start_ms <= a.at_ms <= end_ms and (a.symbol in syms
                                                                     or a.symbol == "")]
    by_kind: dict[str, list[AlertMark]] = {}
    for a in kept:
        by_kind.setdefault(a.kind, []).append(a)
    by_kind[EARLY_ANY] = [a for a in kept if a.kind in EARLY_KINDS]
    names = list(STANDARD_KINDS) + sorted(k for k in set(by_kind) | set(kinds)
                                          if k not in STANDARD_KINDS)
    symbol_days = len(syms) * (end_ms - start_ms) / DAY_MS
    scored = tuple(_score_kind(k, evs, by_kind.get(k, []), horizons_ms, symbol_days)
                   for k in names)
    share = None if state_share is None else tuple(sorted(
        (str(k), float(v)) for k, v in state_share.items()))
    return Scorecard(horizons_ms=tuple(horizons_ms), n_events=len(evs),
                     symbols=tuple(sorted(syms)), start_ms=start_ms, end_ms=end_ms,
                     kinds=scored, state_share=share)
