"""The operator's view: rendered into rich's recording console, JSON lines, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from engine_adapters.storage import iter_ticks
from engine_adapters.storage.alerts_json import read_lines
from engine_app.view import IngestHealth, JsonLinesOut, TerminalView, progress, rank_rows
from engine_core.alerts import Alert
from engine_core.record import Record
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier
from tests.ux.conftest import SYMBOLS


def rec(token_id: int, fsm: StructuralState, cost: int, *, tick: int = 7_000_000_000) -> Record:
    return Record(tick_id=tick, token_id=token_id, fsm=int(fsm),
                  tier=int(Tier.TIER_OVERLEVERAGED), cluster=int(ClusterState.CLUSTER_FRAGILE),
                  phase=int(EventPhase.START), alerts=0, event_id=3, quality=0,
                  trigger_cost=cost, pressure=8000, fragile=6000, trigger=2500, unwind=0,
                  density=0, compression=0, divergence=0, elasticity=0, state_age=40,
                  n_events=5, liq_imbalance=0, oi_velocity=0, funding_rate=0, spread_bps=0,
                  mark_vs_mid_bps=0)


def alert(tick: int, kind: AlertKind, symbol: str = "BTCUSDT") -> Alert:
    return Alert(tick_id=tick, kind=kind, token_id=0, symbol=symbol,
                 fsm=StructuralState.FRAGILE, tier=Tier.TIER_EXPANSION,
                 cluster=ClusterState.CLUSTER_HEATING, phase=EventPhase.PREP, event_id=0,
                 trigger_cost=12.5, message=f"{symbol} turned {kind.name}")


def text_of(view: TerminalView, *args: object, **kw: object) -> str:
    console = Console(record=True, width=160)
    console.print(view.render(*args, **kw))  # type: ignore[arg-type]
    return console.export_text()


def test_the_table_shows_every_symbol_state_and_the_market_header() -> None:
    syms = ("AAAUSDT", "BBBUSDT", "CCCUSDT")
    records = [rec(0, StructuralState.BUILD, 9000), rec(1, StructuralState.TRIGGER_READY, 1234),
               rec(2, StructuralState.UNWIND, 5000)]
    out = text_of(TerminalView(), syms, records, [alert(7_000_000_000, AlertKind.SYSTEMIC_ALERT)],
                  IngestHealth(events_per_s=1520.0, tick_lag_ms=12, reconnects=1, quarantined=0,
                               duplicates=7), "live")
    for s in (*syms, "BUILD", "TRIGGER_READY", "UNWIND", "OVERLEVERAGED", "12.34",
              "CLUSTER_FRAGILE", "phase START", "event 3", "tick 7000000000",
              "2025-06-15T15:06:40.000Z", "SYSTEMIC_ALERT", "1,520 ev/s", "lag 12 ms",
              "reconnects 1", "duplicates 7", "gaps –"):
        assert s in out, s
    # most interesting first: UNWIND, then TRIGGER_READY, then BUILD
    assert out.index("CCCUSDT") < out.index("BBBUSDT") < out.index("AAAUSDT")


def test_rows_rank_by_state_then_cheapest_trigger() -> None:
    rows = rank_rows([rec(0, StructuralState.FRAGILE, 5000), rec(1, StructuralState.COOLDOWN, 10),
                      rec(2, StructuralState.FRAGILE, 100), rec(3, StructuralState.BUILD, 0)])
    assert [r.token_id for r in rows] == [2, 0, 1, 3]


def test_many_symbols_are_cut_to_max_rows_with_a_count_of_the_rest() -> None:
    syms = tuple(f"S{i:03d}USDT" for i in range(100))
    records = [rec(i, StructuralState.FRAGILE if i == 77 else StructuralState.BUILD, 5000)
               for i in range(100)]
    out = text_of(TerminalView(max_rows=10), syms, records)
    assert "S077USDT" in out and "… 90 more" in out
    assert sum(1 for s in syms if s in out) == 10


def test_before_the_first_tick_the_view_says_so() -> None:
    out = text_of(TerminalView(), SYMBOLS, [])
    assert "waiting for the first tick" in out and "no alerts yet" in out


def test_the_view_renders_the_last_tick_of_a_real_run(data_dir: Path) -> None:
    ticks = list(iter_ticks(data_dir))
    last = ticks[-1]
    alerts = [a for _, a in read_lines(data_dir / "alerts.jsonl")]
    out = text_of(TerminalView(), SYMBOLS, last.records, alerts, None, "run")
    for s in SYMBOLS:
        assert s in out
    assert alerts[-1].kind.name in out and "ingest: no health data" in out


def test_live_start_update_stop_on_a_plain_console() -> None:
    buf = io.StringIO()
    view = TerminalView(Console(file=buf, width=120), refresh_per_second=20)
    with view:
        view.update(("AAAUSDT",), [rec(0, StructuralState.PRESSURE, 4000)], (), None, "demo")
    assert "AAAUSDT" in buf.getvalue() and "PRESSURE" in buf.getvalue()


def test_json_lines_out_writes_one_alert_per_line_and_survives_a_closed_pipe() -> None:
    buf = io.StringIO()
    sink = JsonLinesOut(buf)
    sink([alert(1, AlertKind.STRUCTURAL_FRAGILE), alert(2, AlertKind.STRUCTURAL_UNWIND)])
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [d["kind"] for d in lines] == ["STRUCTURAL_FRAGILE", "STRUCTURAL_UNWIND"]
    assert lines[0]["time"] == "1970-01-01T00:00:00.250Z"
    buf.close()
    sink([alert(3, AlertKind.SYSTEMIC_ALERT)])  # must not raise in the tick loop
    assert sink.closed


def test_progress_is_a_no_op_off_a_terminal() -> None:
    buf = io.StringIO()
    with progress(10, "verify", stream=buf) as advance:
        for _ in range(10):
            advance(1)
    assert buf.getvalue() == ""
