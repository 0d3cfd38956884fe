"""read_log / frames / export agree with the records that were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine_adapters.storage.alerts_json import alert_from_json, alert_to_json
from engine_adapters.storage.tables import decode_names, export, read_log, read_log_frame
from engine_core.record import FIELDS

from .helpers import ticks
from .test_log import write


def test_read_log_matches_records(tmp_path: Path) -> None:
    tks = ticks(70, 9)
    write(tmp_path, tks, rotate_ticks=4)
    arr = read_log(tmp_path)
    flat = [r for _, recs, _ in tks for r in recs]
    assert len(arr) == len(flat)
    for row, rec in zip(arr, flat, strict=True):
        assert tuple(int(row[f]) for f in FIELDS) == tuple(getattr(rec, f) for f in FIELDS)
    assert list(decode_names(arr, "fsm")[:3]) == [r.fsm_state.name for r in flat[:3]]


def test_frame_and_exports(tmp_path: Path) -> None:
    write(tmp_path, ticks(70, 4))
    df = read_log_frame(tmp_path)
    assert list(df["symbol"][:3]) == ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
    assert df["fsm"].iloc[0] in {"BUILD", "PRESSURE", "FRAGILE", "TRIGGER_READY", "UNWIND",
                                 "COOLDOWN"}
    csv = export(tmp_path, "csv", tmp_path / "out.csv")
    assert csv.read_text().splitlines()[0].startswith("tick_id,token_id,symbol,")
    pq = export(tmp_path, "parquet", tmp_path / "out.parquet")
    import pandas as pd

    back = pd.read_parquet(pq)
    assert np.array_equal(back["pressure"].to_numpy(), df["pressure"].to_numpy())


def test_alert_json_round_trip() -> None:
    alerts = [a for _, _, al in ticks(70, 12) for a in al]
    assert alerts
    assert all(alert_from_json(alert_to_json(a)) == a for a in alerts)
    market = [a for a in alerts if a.token_id == -1]
    assert all(alert_to_json(a)["fsm"] is None for a in market)
