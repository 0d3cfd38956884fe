"""JSON form of `engine_core.alerts.Alert` and the `alerts.jsonl` appender of a data dir.

One alert per line, keys sorted, enums as their names (stable across renumbering mistakes
and readable by people and jq):

    {"cluster":"CLUSTER_CALM","event_id":0,"fsm":"FRAGILE","kind":"STRUCTURAL_FRAGILE",
     "message":"...","phase":"PREP","symbol":"BTCUSDT","tick_id":7040000000,
     "tier":"TIER_OVERLEVERAGED","time":"2025-10-16T02:13:20.000Z","token_id":0,
     "trigger_cost":12.5}

`time` is the end of the tick in UTC (tick_id * 250 ms): derived, never a wall clock.

`fsm`, `tier` and `trigger_cost` are null for market-wide alerts (token_id -1, symbol "*").
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from engine_core.alerts import Alert
from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

ALERTS_FILE = "alerts.jsonl"


def tick_time(tick_id: int) -> str:
    """ISO-8601 UTC time of a tick's end (tick ids are epoch ms // 250)."""
    ms = tick_id * 250
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def alert_to_json(alert: Alert) -> dict[str, Any]:
    """Plain dict of an alert, enums by name."""
    return {
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


def dumps(alert: Alert) -> str:
    return json.dumps(alert_to_json(alert), sort_keys=True, separators=(",", ":"))


class AlertsFile:
    """Appends alerts, one JSON line each; a line is written whole with one os.write."""

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

    def append(self, alerts: Iterable[Alert]) -> None:
        text = "".join(dumps(a) + "\n" for a in alerts)
        if text:
            view = memoryview(text.encode())
            while view:
                view = view[os.write(self._fd, view):]

    def truncate_after(self, tick_id: int | None) -> int:
        """Drop alerts of ticks after `tick_id` (the log's last complete tick after recovery)."""
        kept = [line for line in read_lines(self.path)
                if tick_id is not None and line[1].tick_id <= tick_id]
        dropped = sum(1 for _ in read_lines(self.path)) - len(kept)
        if dropped:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(dumps(a) + "\n" for _, a in kept))
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
