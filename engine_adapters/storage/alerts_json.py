"""JSON form of `engine_core.alerts.Alert` and the `alerts.jsonl` appender of a data dir.

One alert per line, keys sorted, enums as their names (stable across renumbering mistakes
and readable by people and jq):

    {"cluster":"CLUSTER_CALM","event_id":0,"fsm":"FRAGILE","kind":"STRUCTURAL_FRAGILE",
     "message":"...","phase":"PREP","symbol":"BTCUSDT","tick_id":7040000000,
     "tier":"TIER_OVERLEVERAGED","time":"2025-10-16T02:13:20.000Z","token_id":0,
     "trigger_cost":12.5}

`time` is the end of the tick in UTC (tick_id * 250 ms): derived, never a wall clock.

`fsm`, `tier` and `trigger_cost` are null for market-wide alerts (token_id -1, symbol "*").

A token alert written by a session also carries `evidence` (the facts as numbers, null
where unknown) and `evidence_text` (the sentence, e.g. "OI −4.1 % in 60 s, $3.2 M of longs
liquidated, price −2.3 % = 4.1σ"), from the core's evidence record of its token at its tick
(`evidence_from_record` in `engine_adapters.evidence_text`). Readers that do not know them
ignore them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from engine_adapters.evidence_text import (
    EVIDENCE_WORDING,
    AlertEvidence,
    evidence_json,
    evidence_text,
)
from engine_core.alerts import Alert
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

ALERTS_FILE = "alerts.jsonl"


def tick_time(tick_id: int) -> str:
    """ISO-8601 UTC time of a tick's end (tick ids are epoch ms // 250)."""
    ms = tick_id * 250
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def alert_to_json(alert: Alert, evidence: AlertEvidence | None = None) -> dict[str, Any]:
    """Plain dict of an alert, enums by name; with `evidence`, its facts and sentence too."""
    d = {
        "tick_id": alert.tick_id,
        "kind": alert.kind.name,
        "token_id": alert.token_id,
        "symbol": alert.symbol,
        "fsm": alert.fsm.name if alert.fsm is not None else None,
        "time": tick_time(alert.tick_id),
        "tier": alert.tier.name if alert.tier is not None else None,
        "cluster": alert.cluster.name,
        "phase": alert.phase.name,
        "event_id": alert.event_id,
        "trigger_cost": alert.trigger_cost,
        "message": alert.message,
    }
    if evidence is not None:
        d["evidence"] = evidence_json(evidence)
        d["evidence_text"] = evidence_text(evidence)
        d["evidence_wording"] = EVIDENCE_WORDING
    return d


def alert_from_json(d: dict[str, Any]) -> Alert:
    """Inverse of `alert_to_json`; raises ValueError naming the bad key."""
    try:
        fsm = d["fsm"]
        return Alert(
            tick_id=int(d["tick_id"]), kind=AlertKind[d["kind"]], token_id=int(d["token_id"]),
            symbol=str(d["symbol"]), fsm=StructuralState[fsm] if fsm is not None else None,
            tier=None if d["tier"] is None else Tier[d["tier"]],
            cluster=ClusterState[d["cluster"]], phase=EventPhase[d["phase"]],
            event_id=int(d["event_id"]),
            trigger_cost=None if d["trigger_cost"] is None else float(d["trigger_cost"]),
            message=str(d["message"]))
    except KeyError as exc:
        raise ValueError(f"alert JSON: missing key or unknown name {exc}") from None


def dumps(alert: Alert, evidence: AlertEvidence | None = None) -> str:
    return json.dumps(alert_to_json(alert, evidence), sort_keys=True, separators=(",", ":"))


class AlertsFile:
    """Appends alerts, one JSON line each; a line is written whole with one os.write."""

    #: `append` takes each alert's evidence (the session loop checks this flag).
    takes_evidence = True

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._drop_torn_line()

    def _drop_torn_line(self) -> None:
        # A crash may leave a half-written last line; cut it so the file stays valid JSONL.
        size = os.fstat(self._fd).st_size
        if size == 0:
            return
        data = self.path.read_bytes()
        if not data.endswith(b"\n"):
            os.truncate(self.path, data.rfind(b"\n") + 1)

    def append(self, alerts: Iterable[Alert],
               evidence: Sequence[AlertEvidence | None] | None = None) -> None:
        """Append alerts (with `evidence`: one per alert, None for none) as whole lines."""
        if evidence is None:
            text = "".join(dumps(a) + "\n" for a in alerts)
        else:
            text = "".join(dumps(a, e) + "\n" for a, e in zip(alerts, evidence, strict=True))
        if text:
            view = memoryview(text.encode())
            while view:
                view = view[os.write(self._fd, view):]

    def truncate_after(self, tick_id: int | None) -> int:
        """Drop alerts of ticks after `tick_id` (the log's last complete tick after recovery)."""
        lines = [x + "\n" for x in self.path.read_text(encoding="utf-8").split("\n")
                 if x.strip()]
        kept = [line for (_, a), line in zip(read_lines(self.path), lines, strict=True)
                if tick_id is not None and a.tick_id <= tick_id]
        dropped = len(lines) - len(kept)
        if dropped:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(kept), encoding="utf-8")  # lines kept verbatim
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        return dropped

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


def read_lines(path: Path | str) -> Iterator[tuple[int, Alert]]:
    """(line number, alert) for each line; raises ValueError with file and line on bad JSON."""
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield no, alert_from_json(json.loads(line))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: line {no}: {exc}") from None
