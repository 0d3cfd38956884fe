"""What a journal replay compares: two logs, their first difference, and the report of it.

The journal holds every tick's canonical batches, so stepping them through
`engine_core.step` (from a fresh `initial_state` at every session start) must rebuild the
original log byte for byte (SPEC section 4, research note 4.7). The stepping is the app's
(`engine_app.bootstrap.replay_journal`, the same loop as `live` and `run`); this module keeps
the formats: the original writer parameters (`log_params`) and the comparison, which looks at
file names, then bytes, and names the first differing tick, token and field (decoded), or the
header field that differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from engine_adapters.storage.chain import decode_commit
from engine_adapters.storage.evidence_check import compare_evidence
from engine_adapters.storage.log_reader import log_segments
from engine_adapters.storage.segment import LOG_MAGIC, decode_header
from engine_core.record import FIELDS, RECORD_SIZE, Record


@attrs.frozen(kw_only=True, slots=True)
class Difference:
    """First place where the replayed log differs from the original."""

    file: str
    offset: int
    tick_id: int | None
    token_id: int | None
    field: str
    expected: str
    got: str


@attrs.frozen(kw_only=True, slots=True)
class ReplayReport:
    n_ticks: int
    n_events: int
    identical: bool | None
    difference: Difference | None
    message: str

    @property
    def exit_code(self) -> int:
        return 1 if self.identical is False else 0


def replay_message(n_ticks: int, n_events: int, out: Path, *, compared: bool,
                   diff: Difference | None) -> ReplayReport:
    """The report of a replay: identical, or where and how the replayed log differs."""
    if not compared:
        return ReplayReport(n_ticks=n_ticks, n_events=n_events, identical=None,
                            difference=None, message=f"replayed {n_ticks} ticks into {out}")
    if diff is None:
        return ReplayReport(n_ticks=n_ticks, n_events=n_events, identical=True,
                            difference=None,
                            message=f"replayed {n_ticks} ticks ({n_events} events): "
                                    f"byte-identical to the original log")
    where = f"tick {diff.tick_id}" if diff.tick_id is not None else diff.file
    tok = f", token {diff.token_id}" if diff.token_id is not None else ""
    return ReplayReport(n_ticks=n_ticks, n_events=n_events, identical=False, difference=diff,
                        message=f"replay differs at {where}{tok}, field {diff.field}: "
                                f"original {diff.expected}, replay {diff.got} "
                                f"({diff.file} byte {diff.offset})")


def log_params(src: Path) -> dict[str, Any] | None:
    segs = log_segments(src)
    if not segs:
        return None
    h = decode_header(segs[0].read_bytes(), segs[0], LOG_MAGIC)
    out: dict[str, Any] = json.loads(h.params_json)
    return out


def compare_logs(a: Path, b: Path) -> Difference | None:
    """First difference between two logs (a = original), or None if byte-identical.

    The evidence records (DIR/evidence) are compared after the log, where `a` has them.
    """
    diff = _compare_log_files(a, b)
    if diff is not None:
        return diff
    ev = compare_evidence(a, b)
    if ev is None:
        return None
    idx, tick, token, name, expected, got = ev
    return Difference(file="evidence", offset=idx * RECORD_SIZE, tick_id=tick, token_id=token,
                      field=name, expected=expected, got=got)


def _compare_log_files(a: Path, b: Path) -> Difference | None:
    sa, sb = log_segments(a), log_segments(b)
    for pa, pb in zip(sa, sb, strict=False):
        da, db = pa.read_bytes(), pb.read_bytes()
        if pa.name != pb.name:
            return Difference(file=pa.name, offset=0, tick_id=None, token_id=None,
                              field="segment file name", expected=pa.name, got=pb.name)
        if da == db:
            continue
        return _locate(pa.name, da, db)
    if len(sa) != len(sb):
        return Difference(file=(sa + sb)[min(len(sa), len(sb))].name, offset=0, tick_id=None,
                          token_id=None, field="number of segments",
                          expected=str(len(sa)), got=str(len(sb)))
    return None


def _locate(name: str, da: bytes, db: bytes) -> Difference:
    ha = decode_header(da, name, LOG_MAGIC)
    hb = decode_header(db, name, LOG_MAGIC)
    if ha != hb:
        for f in attrs.fields(type(ha)):
            va, vb = getattr(ha, f.name), getattr(hb, f.name)
            if va != vb:
                return Difference(file=name, offset=0, tick_id=ha.first_tick, token_id=None,
                                  field=f"header {f.name}", expected=str(va)[:200],
                                  got=str(vb)[:200])
    off = next((i for i in range(min(len(da), len(db))) if da[i] != db[i]),
               min(len(da), len(db)))
    n = ha.n_tokens
    rec = (off - ha.header_len) // RECORD_SIZE
    start = ha.header_len + rec * RECORD_SIZE
    if start + RECORD_SIZE > min(len(da), len(db)):
        return Difference(file=name, offset=off, tick_id=None, token_id=None,
                          field="file length", expected=str(len(da)), got=str(len(db)))
    ra, rb = da[start:start + RECORD_SIZE], db[start:start + RECORD_SIZE]
    if rec % (n + 1) == n:
        ca, cb = decode_commit(ra), decode_commit(rb)
        for f in attrs.fields(type(ca)):
            if getattr(ca, f.name) != getattr(cb, f.name):
                return Difference(file=name, offset=start, tick_id=ca.tick_id, token_id=None,
                                  field=f"commit {f.name}", expected=str(getattr(ca, f.name)),
                                  got=str(getattr(cb, f.name)))
    a, b = Record.from_bytes(ra, check=False), Record.from_bytes(rb, check=False)
    for f in FIELDS:
        if getattr(a, f) != getattr(b, f):
            return Difference(file=name, offset=start, tick_id=a.tick_id, token_id=a.token_id,
                              field=f, expected=str(getattr(a, f)), got=str(getattr(b, f)))
    return Difference(file=name, offset=off, tick_id=a.tick_id, token_id=a.token_id,
                      field="crc32c", expected=ra[60:].hex(), got=rb[60:].hex())
