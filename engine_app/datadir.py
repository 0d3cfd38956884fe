"""The data dir layout (SPEC section 6) and its small human-readable manifest.

    DIR/log/             output log segments (the replay authority)
    DIR/journal/         input journal segments (each tick's canonical batches)
    DIR/bars/            one-minute bars per symbol of the accepted events (for evaluate)
    DIR/alerts.jsonl     one alert per line
    DIR/quarantine.jsonl rejected input with its reason
    DIR/manifest.json    what ran here (never compared: it holds wall-clock times)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

import engine_core as ec

ENGINE_VERSION = ec.__version__


@attrs.frozen
class DataDir:
    root: Path

    @classmethod
    def at(cls, path: str | Path) -> DataDir:
        return cls(Path(path))

    @property
    def log(self) -> Path:
        return self.root / "log"

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def bars(self) -> Path:
        return self.root / "bars"

    @property
    def alerts(self) -> Path:
        return self.root / "alerts.jsonl"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine.jsonl"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def looks_like_data_dir(self) -> bool:
        return self.log.is_dir()

    def read_manifest(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.manifest.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def write_manifest(self, cfg: ec.Config, symbols: Sequence[str],
                       *stats: attrs.AttrsInstance) -> None:
        """Append this session's counters (attrs instances, merged in order) to manifest.json."""
        old = self.read_manifest()
        sessions = list(old.get("sessions", []))
        s: dict[str, Any] = {}
        for part in stats:
            s.update(attrs.asdict(part, value_serializer=_plain))
        sessions.append({"closed_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "engine_version": ENGINE_VERSION, **s})
        doc = {"engine_version": ENGINE_VERSION, "format_version": ec.FORMAT_VERSION,
               "config_version": ec.CONFIG_VERSION, "config_digest": cfg.digest().hex(),
               "config_profile": cfg.profile,
               "symbols": list(symbols), "sessions": sessions[-100:]}
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.manifest)


def _plain(_inst: object, _field: object, value: Any) -> Any:
    if isinstance(value, set):
        return sorted(value)
    return value
