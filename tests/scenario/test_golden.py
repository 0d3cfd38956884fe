"""Golden output: a fixed seeded market through the core must give pinned log bytes.

If this fails, the engine's output changed. That must be a deliberate, reviewed change: bump
`CONFIG_VERSION` (rules/defaults changed) or `FORMAT_VERSION` (record layout changed) with it,
note it in the changelog of docs/rules.md, then pin the new digest printed by the failure.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import engine_core as ec
from engine_adapters.storage import alert_to_json
from engine_sim.simulation import DEFAULT_SPECS, MarketSimulator, cascade_script
from tests.drive import run

DEMO_TOML = Path(__file__).resolve().parents[2] / "engine_app" / "resources" / "demo.toml"
SYMBOLS = tuple(sorted(s.symbol for s in DEFAULT_SPECS))
GOLDEN_SHA256 = "b8ed66652e41c57e8fbd6ca570e1b30fdc47997daac6e7d181334d9d883d775e"
#: The evidence records of the same run (`TickRecords.evidence`, one per token per tick),
#: pinned apart: what alerts and reports say about the market comes from these bytes.
EVIDENCE_SHA256 = "20a49bd88fe004733edcba72c31004c3aca62b7587977f7bc94d19b3c392f990"


def test_demo_market_gives_the_pinned_log_digest() -> None:
    cfg = ec.Config.from_toml_str(DEMO_TOML.read_text())
    sim = MarketSimulator(SYMBOLS, cascade_script(0.015), seed=7, oi_poll_ms=1000)
    h = hashlib.sha256()
    ev = hashlib.sha256()
    kinds = set()
    for _tick, recs, alerts in run(cfg, SYMBOLS, sim.events()):
        assert isinstance(recs, ec.TickRecords)
        encoded = b"".join(r.to_bytes() for r in recs)
        assert recs.data == encoded  # the core's one-pass encoding, alert bits included
        h.update(encoded)
        assert len(recs.evidence) == len(recs.data)  # one evidence record per token record
        ev.update(recs.evidence)
        for a in alerts:
            h.update(json.dumps(alert_to_json(a), sort_keys=True).encode())
            kinds.add(a.kind)
    # the story raises every alert kind (config v3: the loaded build-up holds FRAGILE through
    # a whole bucket again)
    assert kinds == set(ec.AlertKind) - {ec.AlertKind.NO_ALERT}
    assert h.hexdigest() == GOLDEN_SHA256, (
        f"engine output changed (format v{ec.FORMAT_VERSION}, config v{ec.CONFIG_VERSION}); "
        f"if deliberate, pin {h.hexdigest()}")
    assert ev.hexdigest() == EVIDENCE_SHA256, (
        f"evidence bytes changed (docs/log-format.md, Evidence records); if deliberate, pin "
        f"{ev.hexdigest()}")
