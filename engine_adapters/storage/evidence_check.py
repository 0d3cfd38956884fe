"""Verify's evidence pass: every alert's stated evidence, rebuilt from the stored records.

For each token alert of `alerts.jsonl` that states evidence, the core's evidence record of
its token at its tick (DIR/evidence, `evidence_store`) is decoded and turned into values and
text by the same pure functions the session used (`evidence_from_record`, `evidence_text`).
A stored value or sentence that differs is a determinism breach naming tick, token and field
(`evidence.<name>` or `evidence_text`). A data dir without DIR/evidence (written before the
core gave evidence) is not checked; a damaged record is corruption (StorageError). An alert
written in another wording (`evidence_wording` absent or not `EVIDENCE_WORDING`: an earlier
release) is counted apart and not compared: its sentence was right for the code that wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from engine_adapters.evidence_text import (
    EVIDENCE_WORDING,
    evidence_from_record,
    evidence_json,
    evidence_text,
)
from engine_adapters.storage.evidence_store import evidence_files, read_evidence
from engine_core.config import Config
from engine_core.evidence import EvidenceRecord, EvidenceWindows

#: (tick_id, token_id, field, expected, got) of the first difference.
EvidenceBreach = tuple[int, int, str, str, str]


def check_alert_evidence(data_dir: Path, cfg: Config, alerts_path: Path
                         ) -> tuple[EvidenceBreach | None, int, int]:
    """(first difference or None, alerts checked, alerts in an older wording not compared)."""
    if not evidence_files(data_dir) or not alerts_path.is_file():
        return None, 0, 0
    stored = read_evidence(data_dir)
    windows = EvidenceWindows.from_config(cfg)
    n = older = 0
    with open(alerts_path, encoding="utf-8") as f:
        for line in f:
            d: dict[str, Any] = json.loads(line)
            if d.get("token_id", -1) < 0 or "evidence_text" not in d:
                continue
            if d.get("evidence_wording") != EVIDENCE_WORDING:
                older += 1
                continue
            tick, token = int(d["tick_id"]), int(d["token_id"])
            rec = stored.get((tick, token))
            if rec is None:
                return (tick, token, "evidence", "a stored evidence record", "none"), n, older
            ev = evidence_from_record(rec, windows)
            for k, v in evidence_json(ev).items():
                got = (d.get("evidence") or {}).get(k)
                if got != v:
                    return (tick, token, f"evidence.{k}", repr(v), repr(got)), n, older
            text = evidence_text(ev)
            if d["evidence_text"] != text:
                return (tick, token, "evidence_text", repr(text),
                        repr(d["evidence_text"])), n, older
            n += 1
    return None, n, older


def compare_evidence(a: Path, b: Path) -> tuple[int, int | None, int | None, str, str, str] | None:
    """First difference of two data dirs' evidence streams (a = original), or None.

    (record index, tick, token, field, expected, got). Files are compared as one stream in
    tick order (the original may have one file per session, a replay one in all). A data
    dir `a` without evidence (older than the core's evidence) compares equal.
    """
    if not evidence_files(a):
        return None
    sa = b"".join(p.read_bytes() for p in evidence_files(a))
    sb = b"".join(p.read_bytes() for p in evidence_files(b))
    if sa == sb:
        return None
    size = 64
    off = next((i for i in range(min(len(sa), len(sb))) if sa[i] != sb[i]),
               min(len(sa), len(sb)))
    idx = off // size
    if (idx + 1) * size > min(len(sa), len(sb)):
        return (idx, None, None, "evidence length", f"{len(sa) // size} records",
                f"{len(sb) // size} records")
    ra = EvidenceRecord.from_bytes(sa[idx * size:(idx + 1) * size], check=False)
    rb = EvidenceRecord.from_bytes(sb[idx * size:(idx + 1) * size], check=False)
    for f in attrs.fields(EvidenceRecord):
        va, vb = getattr(ra, f.name), getattr(rb, f.name)
        if va != vb:
            return idx, ra.tick_id, ra.token_id, f"evidence {f.name}", str(va), str(vb)
    return idx, ra.tick_id, ra.token_id, "evidence crc32c", sa[off:off + 4].hex(), \
        sb[off:off + 4].hex()
