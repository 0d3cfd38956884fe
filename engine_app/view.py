"""The operator's view: a live rich table for `live`/`run`/`demo`, JSON lines, progress bars.

`TerminalView.render(...)` is a pure function of its inputs (easy to test and to reuse);
`start()`/`update(...)`/`stop()` drive a `rich.live.Live` whose own thread renders and redraws
at most `refresh_per_second` times a second. `update` only stores the latest tick's values
(immutable tuples): the tick loop never waits for the terminal.

The market columns (price, move vs its window average, the move in sigma, OI vs its window
average, funding per hour, liquidations of the liquidation window) are the core's evidence
records of the tick (`TickRecords.evidence`), read through `evidence_from_record` with the
config's windows: the same numbers, with the same windows in the headers, as the alerts'
text and JSON, `export`'s `ev_*` columns and `report`. Only the rows shown are decoded, on the
refresh thread.

When stdout is not a terminal (a pipe, `--json`), use `JsonLinesOut` as an alert sink
instead: one `alert_to_json` object per line, flushed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TextIO

import attrs
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from engine_adapters.evidence_text import AlertEvidence
from engine_adapters.storage.alerts_json import alert_to_json, tick_time
from engine_app.view_market import (
    market_caption,
    market_cells,
    market_headers,
    min_width,
    record_evidence,
)
from engine_core import TICK_MS
from engine_core.alerts import Alert
from engine_core.config import Config
from engine_core.evidence import EvidenceWindows
from engine_core.record import Record, TickRecords
from engine_core.states import ClusterState, EventPhase, Quality, StructuralState, Tier

#: rich style of each structural state (the row colour).
STATE_STYLE: dict[StructuralState, str] = {
    StructuralState.BUILD: "dim",
    StructuralState.PRESSURE: "yellow",
    StructuralState.FRAGILE: "dark_orange",
    StructuralState.TRIGGER_READY: "red",
    StructuralState.UNWIND: "bold red",
    StructuralState.COOLDOWN: "cyan",
}
CLUSTER_STYLE: dict[ClusterState, str] = {
    ClusterState.CLUSTER_CALM: "green",
    ClusterState.CLUSTER_HEATING: "yellow",
    ClusterState.CLUSTER_FRAGILE: "dark_orange",
    ClusterState.CLUSTER_UNWIND: "bold red",
    ClusterState.CLUSTER_COOLDOWN: "cyan",
}
#: How much a state deserves the operator's eye: rows are sorted by this, highest first.
INTEREST: dict[int, int] = {
    int(StructuralState.UNWIND): 5, int(StructuralState.TRIGGER_READY): 4,
    int(StructuralState.FRAGILE): 3, int(StructuralState.PRESSURE): 2,
    int(StructuralState.COOLDOWN): 1, int(StructuralState.BUILD): 0,
}
#: Quality flags worth showing an operator (WARMUP and SESSION_START are routine).
_SHOWN_FLAGS = tuple(f for f in Quality if f not in (Quality.WARMUP, Quality.SESSION_START))


@attrs.frozen(kw_only=True, slots=True)
class IngestHealth:
    """How the feed is doing, as the shell measures it; any field may be unknown (None)."""

    events_per_s: float | None = None
    tick_lag_ms: float | None = None
    reconnects: int | None = None
    quarantined: int | None = None
    duplicates: int | None = None
    gaps: int | None = None
    rest_weight_used: int | None = None


def _rank(r: Record) -> tuple[int, int, int]:
    return -INTEREST.get(r.fsm, 0), r.trigger_cost, r.token_id


def rank_rows(records: Sequence[Record]) -> list[Record]:
    """Most interesting first: highest state, then lowest trigger cost, then token order."""
    return sorted(records, key=_rank)


def _enum_name(enum: type[Tier] | type[StructuralState], value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return f"?{value}"


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "–" if v is None else fmt.format(v)


def _flags(q: int) -> str:
    return " ".join(f.name or "" for f in _SHOWN_FLAGS if q & f).lower()


class TerminalView:
    """Live table of every symbol's state, the market's state, recent alerts and feed health."""

    def __init__(self, console: Console | None = None, max_rows: int = 30, *,
                 refresh_per_second: float = 4.0, max_alerts: int = 8) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.console = console if console is not None else Console()
        self.max_rows = max_rows
        self.max_alerts = max_alerts
        self.refresh_per_second = refresh_per_second
        self._live: Live | None = None
        self._inputs: tuple[tuple[str, ...], Sequence[Record], tuple[Alert, ...],
                            IngestHealth | None, str, tuple[AlertEvidence, ...],
                            Config | None] | None = None

    @staticmethod
    def wanted(stream: TextIO | None = None) -> bool:
        """Should the live view be shown? True when `stream` (default stdout) is a terminal."""
        s = sys.stdout if stream is None else stream
        return bool(getattr(s, "isatty", lambda: False)())

    # ------------------------------------------------------------------ pure rendering
    def render(self, symbols: Sequence[str], records: Sequence[Record],
               recent_alerts: Iterable[Alert] = (), health: IngestHealth | None = None,
               title: str = "engine", evidence: Sequence[AlertEvidence] = (),
               config: Config | None = None) -> RenderableType:
        """The whole screen for one tick (records in token order, one per symbol).

        With `config`, the market columns show the core's evidence records the records carry
        (`TickRecords.evidence`, the config's windows in the headers). `evidence`, one per
        token, gives the market columns' values directly instead."""
        ev: Sequence[AlertEvidence] | dict[int, AlertEvidence] = evidence
        if not evidence and config is not None:
            shown = sorted(range(len(records)), key=lambda i: _rank(records[i]))
            ev = record_evidence(records, EvidenceWindows.from_config(config),
                                 shown[:self.max_rows])
        return Group(self._header(records, title), self._table(symbols, records, ev),
                     self._alerts(recent_alerts), self._health(health))

    def _header(self, records: Sequence[Record], title: str) -> Text:
        t = Text()
        t.append(f"{title}  ", style="bold")
        if not records:
            return t.append("waiting for the first tick…", style="dim")
        r = records[0]
        try:
            cluster = ClusterState(r.cluster)
            t.append(cluster.name, style=CLUSTER_STYLE[cluster])
        except ValueError:
            t.append(f"cluster ?{r.cluster}")
        try:
            phase = EventPhase(r.phase).name
        except ValueError:
            phase = f"?{r.phase}"
        t.append(f"  phase {phase}  event {r.event_id}")
        t.append(f"  tick {r.tick_id}  {tick_time(r.tick_id)}", style="dim")
        return t

    def _table(self, symbols: Sequence[str], records: Sequence[Record],
               evidence: Sequence[AlertEvidence] | dict[int, AlertEvidence] = ()) -> Table:
        counts: dict[str, int] = {}
        for r in records:
            name = _enum_name(StructuralState, r.fsm)
            counts[name] = counts.get(name, 0) + 1
        caption = "  ".join(f"{s.name} {counts[s.name]}" for s in StructuralState
                            if s.name in counts)
        known = list(evidence.values()) if isinstance(evidence, dict) else list(evidence)
        market = market_headers(known[0]) if known else ()
        if known:
            caption = f"{caption}\n{market_caption(known[0])}" if caption \
                else market_caption(known[0])
        table = Table(expand=False, caption=caption or None, caption_justify="left",
                      header_style="bold")
        rows = rank_rows(records)
        name_width = max([len(s) for s in symbols[:64]] + [len("TRIGGER_READY")]) \
            if market else None  # the market columns must not push the names out
        for col in ("symbol", "state", "age s", "tier", *market, "trig cost", "pressure",
                    "fragile", "trigger", "unwind", "quality"):
            left = col in ("symbol", "state", "tier", "quality")
            table.add_column(col, justify="left" if left else "right", no_wrap=True,
                             overflow="ellipsis", max_width=28 if col == "quality" else None,
                             min_width=min_width(col) if col in market else
                             (name_width if col in ("symbol", "state") else None))
        for r in rows[:self.max_rows]:
            sym = symbols[r.token_id] if 0 <= r.token_id < len(symbols) else f"#{r.token_id}"
            state = _enum_name(StructuralState, r.fsm)
            style = STATE_STYLE.get(StructuralState(r.fsm), "") if state[0] != "?" else ""
            if isinstance(evidence, dict):
                ev = evidence.get(r.token_id)
            else:
                ev = evidence[r.token_id] if 0 <= r.token_id < len(evidence) else None
            table.add_row(
                sym, state, f"{r.state_age * TICK_MS / 1000:.0f}",
                _enum_name(Tier, r.tier).removeprefix("TIER_"), *market_cells(ev, market),
                f"{r.trigger_cost / 100:.2f}", f"{r.pressure / 10000:.2f}",
                f"{r.fragile / 10000:.2f}", f"{r.trigger / 10000:.2f}",
                f"{r.unwind / 10000:.2f}", _flags(r.quality), style=style)
        hidden = len(rows) - self.max_rows
        if hidden > 0:
            table.add_row(f"… {hidden} more", style="dim italic")
        return table

    def _alerts(self, recent: Iterable[Alert]) -> RenderableType:
        last = list(recent)[-self.max_alerts:]
        if not last:
            return Text("no alerts yet", style="dim")
        table = Table(title="recent alerts", title_justify="left", show_header=False,
                      box=None, padding=(0, 1))
        for a in reversed(last):  # newest first
            style = "bold red" if a.kind.name in ("SYSTEMIC_ALERT", "STRUCTURAL_UNWIND") else ""
            table.add_row(tick_time(a.tick_id)[11:23], a.kind.name, a.symbol,
                          Text(a.message, overflow="ellipsis", no_wrap=True), style=style)
        return table

    def _health(self, h: IngestHealth | None) -> Text:
        if h is None:
            return Text("ingest: no health data", style="dim")
        lag_style = "red" if (h.tick_lag_ms or 0) > 2 * TICK_MS else ""
        t = Text("ingest  ", style="bold")
        t.append(f"{_num(h.events_per_s, '{:,.0f}')} ev/s  ")
        t.append(f"lag {_num(h.tick_lag_ms)} ms", style=lag_style)
        for label, v in (("reconnects", h.reconnects), ("quarantined", h.quarantined),
                         ("duplicates", h.duplicates), ("gaps", h.gaps),
                         ("rest weight", h.rest_weight_used)):
            t.append(f"  {label} {_num(v)}", style="yellow" if label in (
                "reconnects", "quarantined", "gaps") and v else "")
        return t

    # ------------------------------------------------------------------ live display
    def start(self) -> None:
        """Take over the terminal; the refresh thread redraws the latest `update`."""
        if self._live is not None:
            return
        # stdout/stderr are redirected so the shell's messages print above the table
        self._live = Live(console=self.console, refresh_per_second=self.refresh_per_second,
                          get_renderable=self._current, transient=False)
        self._live.start()

    def _current(self) -> RenderableType:
        # runs on rich's refresh thread; the inputs are immutable snapshots
        if self._inputs is None:
            return Text("waiting for the first tick…", style="dim")
        return self.render(*self._inputs)

    def update(self, symbols: Sequence[str], records: Sequence[Record],
               recent_alerts: Iterable[Alert] = (), health: IngestHealth | None = None,
               title: str = "engine", evidence: Sequence[AlertEvidence] = (),
               config: Config | None = None) -> None:
        """Show this tick. O(1) for the tick loop: rendering happens on the refresh thread.

        `records` as `step` returned them (a `TickRecords`, kept as is with its evidence
        bytes) and the session's `config` give the market columns (see `render`)."""
        recs = records if isinstance(records, tuple | TickRecords) else tuple(records)
        self._inputs = (tuple(symbols), recs, tuple(recent_alerts), health, title,
                        tuple(evidence), config)

    def stop(self) -> None:
        """Draw the last state once more and give the terminal back."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> TerminalView:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class JsonLinesOut:
    """Alert sink writing one JSON object per alert per line (for pipes and `--json`).

    A closed pipe (`... | head`) disables the sink instead of breaking the tick loop.
    """

    #: The loop hands this sink each alert's evidence (`evidence=`), written on its line.
    takes_evidence = True

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.closed = False

    def __call__(self, alerts: Sequence[Alert],
                 evidence: Sequence[AlertEvidence | None] | None = None) -> None:
        if self.closed or not alerts:
            return
        evs = evidence if evidence is not None else [None] * len(alerts)
        text = "".join(json.dumps(alert_to_json(a, e), sort_keys=True,
                                  separators=(",", ":")) + "\n"
                       for a, e in zip(alerts, evs, strict=True))
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: write to a closed file
            self.closed = True


@contextlib.contextmanager
def progress(total: int | None, description: str, *, stream: TextIO | None = None
             ) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr for long commands; yields `advance(n)`.

        with progress(n_ticks, "verify") as advance:
            for tick in ticks:
                ...
                advance(1)

    When `stream` (default stderr) is not a terminal, `advance` does nothing at all.
    """
    s = sys.stderr if stream is None else stream
    if not TerminalView.wanted(s):
        def nothing(n: int = 1) -> None:
            pass
        yield nothing
        return
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=Console(file=s), transient=True)
    task = bar.add_task(description, total=total)

    def advance(n: int = 1) -> None:
        bar.advance(task, n)

    with bar:
        yield advance
