"""The closing summary of a session: what ran, what it saw, where the files are."""

from __future__ import annotations

import json
import sys

from engine_app.datadir import DataDir
from engine_app.session import Session

_STATE_ORDER = ("BUILD", "PRESSURE", "FRAGILE", "TRIGGER_READY", "UNWIND", "COOLDOWN")
_CLUSTER_ORDER = ("CLUSTER_CALM", "CLUSTER_HEATING", "CLUSTER_FRAGILE", "CLUSTER_UNWIND",
                  "CLUSTER_COOLDOWN")
_PHASE_ORDER = ("PREP", "START", "MID", "END", "POST")


def _ordered(found: set[str], order: tuple[str, ...]) -> list[str]:
    return [s for s in order if s in found]


def summary_dict(session: Session, dd: DataDir, *, elapsed: float, lines: int | None = None
                 ) -> dict[str, object]:
    st, c = session.stats, session.counts
    q = dict(session.quarantine.summary())
    return {
        "data_dir": str(dd.root),
        "log": str(dd.log),
        "symbols": len(session.symbols),
        "ticks": st.ticks,
        "first_tick": st.first_tick,
        "last_tick": st.last_tick,
        "capture_lines": lines,
        "frames": c.frames,
        "rest_responses": c.rest_responses,
        "events_received": c.events_received,
        "events_accepted": c.events_accepted,
        "duplicates": c.duplicates,
        "ignored_outside_universe": c.ignored_outside_universe,
        "unused_kinds": c.unused_kinds,
        "clock_backwards": c.clock_backwards,
        "late_events": c.late_events,
        "quarantined": sum(q.values()),
        "quarantine_reasons": q,
        "alerts": dict(sorted(st.alerts.items())),
        "states_reached": _ordered(st.states_reached, _STATE_ORDER),
        "cluster_reached": _ordered(st.cluster_reached, _CLUSTER_ORDER),
        "phases_reached": _ordered(st.phases_reached, _PHASE_ORDER),
        "recovery": session.recovery_messages,
        "elapsed_s": round(elapsed, 3),
    }


def print_summary(session: Session, dd: DataDir, *, elapsed: float, lines: int | None = None,
                  as_json: bool = False) -> None:
    d = summary_dict(session, dd, elapsed=elapsed, lines=lines)
    st = session.stats
    if as_json:
        print(json.dumps(d), flush=True)
        return
    rate = f" ({lines / elapsed:,.0f} lines/s)" if lines and elapsed > 0 else ""
    out = [
        f"data dir      {d['data_dir']}",
        f"ticks         {d['ticks']:,} ({d['first_tick']} .. {d['last_tick']})",
        f"input         {lines or 0:,} capture lines{rate}" if lines is not None else
        f"input         {d['frames']:,} frames, {d['rest_responses']:,} REST responses",
        f"events        {d['events_accepted']:,} accepted of {d['events_received']:,} "
        f"({d['duplicates']:,} duplicates, {d['late_events']:,} late)",
        f"quarantined   {d['quarantined']:,}"
        + (f"  {d['quarantine_reasons']}" if d["quarantine_reasons"] else ""),
        f"alerts        {sum(session.stats.alerts.values()):,}"
        + "".join(f"\n                {k}: {v}" for k, v in sorted(session.stats.alerts.items())),
        f"states        {' '.join(_ordered(st.states_reached, _STATE_ORDER))}",
        f"cluster       {' '.join(_ordered(st.cluster_reached, _CLUSTER_ORDER))}",
        f"phases        {' '.join(_ordered(st.phases_reached, _PHASE_ORDER))}",
    ]
    for m in session.recovery_messages:
        out.append(f"recovery      {m}")
    print("\n".join(out), file=sys.stdout, flush=True)
