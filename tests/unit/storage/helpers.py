"""Records and alerts built by hand, for storage tests that do not need the pipeline."""

from __future__ import annotations

from collections.abc import Sequence

from engine_core.alerts import Alert, AlertState, evaluate, initial_alert_state
from engine_core.record import Record
from engine_core.states import Quality

SYMBOLS = ("AAAUSDT", "BBBUSDT", "CCCUSDT")


def make_records(tick: int, n: int, *, start: bool = False, salt: int = 0) -> list[Record]:
    """A tick's records whose values vary with tick, token and salt (fsm cycles 0..5)."""
    q = int(Quality.SESSION_START) if start else 0
    return [
        Record(tick_id=tick, token_id=i, fsm=(tick + i + salt) % 6, tier=(tick + i) % 4,
               cluster=(tick // 3) % 5, phase=(tick // 5) % 5, alerts=0, event_id=tick // 7,
               quality=q, trigger_cost=(tick * 37 + i) % 10001, pressure=(i * 13 + tick) % 10001,
               fragile=i, trigger=tick % 10001, unwind=(salt + i) % 10001, density=5,
               compression=6, divergence=7, elasticity=8, state_age=tick % 1000, n_events=i,
               liq_imbalance=-i, oi_velocity=-1000 * i, funding_rate=100 + i, spread_bps=3,
               mark_vs_mid_bps=-4)
        for i in range(n)
    ]


def with_alerts(state: AlertState, recs: Sequence[Record]
                ) -> tuple[AlertState, list[Record], tuple[Alert, ...]]:
    """Run the real alert engine and store its masks in the records (as the pipeline does)."""
    import attrs

    state, masks, alerts = evaluate(state, recs)
    return state, [attrs.evolve(r, alerts=m) for r, m in zip(recs, masks, strict=True)], alerts


def ticks(first: int, count: int, n: int = 3, *, tpb: int = 4, salt: int = 0,
          symbols: Sequence[str] = SYMBOLS) -> list[tuple[int, list[Record], tuple[Alert, ...]]]:
    """`count` consecutive ticks of one session, alerts included."""
    st = initial_alert_state(symbols[:n], tpb)
    out = []
    for t in range(first, first + count):
        st, recs, alerts = with_alerts(st, make_records(t, n, start=t == first, salt=salt))
        out.append((t, recs, alerts))
    return out
