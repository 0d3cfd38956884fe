"""`verify(data_dir)`: prove a log intact and its alerts reproducible (research note 4.7).

Pass 1 (integrity, fast): every segment header and the links between segments, every record
CRC, the block structure and the hash chain of every tick (`log_reader.scan_segment`).
The first problem is *corruption*: file, byte offset and what (exit code 2).
Pass 2 (determinism, reported separately): the alert engine is re-run on the decoded records
from a fresh state at every SESSION_START; its masks must equal the stored `alerts` bits, its
alerts the commit's alert digest and count, and `alerts.jsonl` if present. The first
difference is a *determinism breach*: tick, token, field, expected, got (exit code 1).
Then each alert's stated evidence (`evidence`, `evidence_text` of alerts.jsonl) is rebuilt
from the stored evidence records of DIR/evidence (`evidence_check`); a difference is a breach
too, naming the field (`evidence.move_sigma`, `evidence_text`).
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from engine_adapters.storage.alerts_json import ALERTS_FILE, alert_to_json, read_lines
from engine_adapters.storage.chain import alert_digest, decode_commit
from engine_adapters.storage.evidence_check import check_alert_evidence
from engine_adapters.storage.log_reader import log_dir_of, scan_log
from engine_adapters.storage.segment import StorageError
from engine_core.alerts import Alert, evaluate, initial_alert_state
from engine_core.config import Config
from engine_core.record import FULL, RECORD_SIZE, Record

Progress = Callable[[int, int], None]


class VerifyStatus(enum.Enum):
    """Outcome of a verify run, with its process exit code."""

    #: Every check passed.
    OK = 0
    #: Stored alerts differ from a re-run of the alert engine.
    DETERMINISM_BREACH = 1
    #: Bytes are damaged, missing or malformed.
    CORRUPTION = 2


@attrs.frozen(kw_only=True, slots=True)
class Breach:
    """First difference between stored and recomputed alerts."""

    tick_id: int
    token_id: int | None
    field: str
    expected: str
    got: str


@attrs.frozen(kw_only=True, slots=True)
class VerifyReport:
    """What verify found; `message` is one line for the operator."""

    status: VerifyStatus
    message: str
    n_segments: int = 0
    n_ticks: int = 0
    n_records: int = 0
    #: Chain value of the last tick: the log's fingerprint (hex).
    final_chain: str = ""
    file: str | None = None
    offset: int | None = None
    breach: Breach | None = None
    integrity_seconds: float = 0.0
    alerts_seconds: float = 0.0
    n_alerts: int = 0
    #: Alerts whose stated evidence is in an earlier release's wording (not compared).
    n_evidence_older: int = 0

    @property
    def ok(self) -> bool:
        return self.status is VerifyStatus.OK

    @property
    def exit_code(self) -> int:
        return self.status.value


def verify(data_dir: Path | str, *, check_alerts: bool = True,
           progress: Progress | None = None) -> VerifyReport:
    """Verify the log of a data dir (or a log dir / segment); never raises on bad data."""
    root = Path(data_dir)
    t0 = time.perf_counter()
    segs: list[tuple[Path, bytes, int, int]] = []  # path, data, header_len, n_ticks
    n_seg = n_ticks = n_rec = 0
    chain = b""
    symbols: Sequence[str] = ()
    cfg_json = ""
    try:
        for s, data in scan_log(root):
            n_seg += 1
            n = s.header.n_tokens
            symbols, cfg_json = s.header.symbols, s.header.config_json
            n_ticks += s.n_ticks
            n_rec += s.n_ticks * n
            chain = s.last_chain
            if progress is not None:
                progress(n_rec, 0)
            if s.problem is not None:
                kind = "torn tail (run the app or open the log to recover): " if s.torn else ""
                return VerifyReport(status=VerifyStatus.CORRUPTION,
                                    message=f"{s.path}: byte {s.problem_offset}: {kind}"
                                            f"{s.problem}", n_segments=n_seg, n_ticks=n_ticks,
                                    n_records=n_rec, file=str(s.path),
                                    offset=s.problem_offset)
            segs.append((s.path, data, s.header.header_len, s.n_ticks))
    except StorageError as exc:
        return VerifyReport(status=VerifyStatus.CORRUPTION, message=str(exc),
                            n_segments=n_seg, file=exc.path, offset=exc.offset)
    if n_seg == 0:
        return VerifyReport(status=VerifyStatus.CORRUPTION, file=str(root), offset=0,
                            message=f"{root}: no log segments found")
    t1 = time.perf_counter()
    done = VerifyReport(status=VerifyStatus.OK, message="", n_segments=n_seg,
                        n_ticks=n_ticks, n_records=n_rec, final_chain=chain.hex(),
                        integrity_seconds=t1 - t0)
    if not check_alerts:
        return attrs.evolve(done, message=_ok_message(done, alerts=False))
    cfg = Config.from_dict(json.loads(cfg_json))
    try:
        breach, n_alerts = _rerun_alerts(root, segs, symbols, cfg.alerts.ticks_per_bucket,
                                         n_rec, progress)
        older = 0
        if breach is None:
            breach, older = _evidence_breach(root, cfg)
    except StorageError as exc:  # a damaged evidence record (file, offset, what)
        return attrs.evolve(done, status=VerifyStatus.CORRUPTION, message=str(exc),
                            file=exc.path, offset=exc.offset)
    except ValueError as exc:  # an unreadable alerts.jsonl line (the message names it)
        return attrs.evolve(done, status=VerifyStatus.CORRUPTION, message=str(exc))
    done = attrs.evolve(done, alerts_seconds=time.perf_counter() - t1, n_alerts=n_alerts,
                        n_evidence_older=older)
    if breach is not None:
        tok = f", token {breach.token_id}" if breach.token_id is not None else ""
        return attrs.evolve(
            done, status=VerifyStatus.DETERMINISM_BREACH, breach=breach,
            message=f"determinism breach at tick {breach.tick_id}{tok}, field {breach.field}: "
                    f"expected {breach.expected}, got {breach.got}")
    return attrs.evolve(done, message=_ok_message(done, alerts=True))


def _ok_message(r: VerifyReport, *, alerts: bool) -> str:
    what = f", {r.n_alerts} alerts reproduced" if alerts else ""
    if r.n_evidence_older:
        what += (f" ({r.n_evidence_older} state their evidence in an earlier release's "
                 f"wording: not compared)")
    return (f"ok: {r.n_segments} segments, {r.n_ticks} ticks, {r.n_records} records{what}; "
            f"fingerprint {r.final_chain}")


def _rerun_alerts(root: Path, segs: list[tuple[Path, bytes, int, int]],
                  symbols: Sequence[str], tpb: int, total: int,
                  progress: Progress | None) -> tuple[Breach | None, int]:
    """Re-run the alert engine over the decoded records; the first difference, if any."""
    state = initial_alert_state(symbols, tpb)
    n = len(symbols)
    blk = (n + 1) * RECORD_SIZE
    stored_file = _file_alerts(root)
    all_alerts: list[Alert] = []
    done = 0
    fields = tuple(a.name for a in attrs.fields(Record))
    for _path, data, hl, n_ticks in segs:
        for b in range(n_ticks):
            o = hl + b * blk
            recs = [Record(**dict(zip(fields, _drop_rt(v), strict=True)))
                    for v in FULL.iter_unpack(data[o:o + n * RECORD_SIZE])]
            commit = decode_commit(data[o + n * RECORD_SIZE:o + blk])
            state, masks, alerts = evaluate(state, recs)
            for r, m in zip(recs, masks, strict=True):
                if r.alerts != m:
                    return Breach(tick_id=r.tick_id, token_id=r.token_id, field="alerts",
                                  expected=_mask(m), got=_mask(r.alerts)), len(all_alerts)
            if commit.n_alerts != len(alerts):
                return Breach(tick_id=commit.tick_id, token_id=None, field="n_alerts",
                              expected=str(len(alerts)), got=str(commit.n_alerts)), 0
            if commit.alert_digest != alert_digest(alerts):
                return Breach(tick_id=commit.tick_id, token_id=None, field="alert_digest",
                              expected=alert_digest(alerts).hex(),
                              got=commit.alert_digest.hex()), 0
            all_alerts.extend(alerts)
            done += n
        if progress is not None:
            progress(done, total)
    if stored_file is not None:
        for i, want in enumerate(all_alerts):
            if i >= len(stored_file):
                return Breach(tick_id=want.tick_id, token_id=want.token_id,
                              field=f"{ALERTS_FILE} line {i + 1}",
                              expected=json.dumps(alert_to_json(want)), got="missing"), i
            got = stored_file[i]
            if got != want:
                return Breach(tick_id=want.tick_id, token_id=want.token_id,
                              field=f"{ALERTS_FILE} line {i + 1}",
                              expected=json.dumps(alert_to_json(want)),
                              got=json.dumps(alert_to_json(got))), i
        if len(stored_file) > len(all_alerts):
            extra = stored_file[len(all_alerts)]
            return Breach(tick_id=extra.tick_id, token_id=extra.token_id,
                          field=f"{ALERTS_FILE} line {len(all_alerts) + 1}",
                          expected="no alert", got=json.dumps(alert_to_json(extra))), 0
    return None, len(all_alerts)


def _drop_rt(v: tuple[int, ...]) -> tuple[int, ...]:
    # FULL holds rec_type (index 2) and the CRC (last), which Record does not store.
    return v[:2] + v[3:-1]


def _mask(m: int) -> str:
    from engine_core.states import AlertKind

    names = [k.name for k in AlertKind if k.value and m & (1 << (k.value - 1))]
    return "|".join(names) if names else "none"


def _evidence_breach(root: Path, cfg: Config) -> tuple[Breach | None, int]:
    """Alerts' stated evidence vs the stored evidence records (`evidence_check`); also how
    many alerts state it in an older wording (not compared)."""
    data_dir = root if (root / "log").is_dir() else log_dir_of(root).parent
    found, _, older = check_alert_evidence(data_dir, cfg, data_dir / ALERTS_FILE)
    if found is None:
        return None, older
    tick, token, name, expected, got = found
    return Breach(tick_id=tick, token_id=token, field=name, expected=expected, got=got), older


def _file_alerts(root: Path) -> list[Alert] | None:
    """Alerts of `alerts.jsonl` next to the log, or None when there is none."""
    data_dir = root if (root / "log").is_dir() else log_dir_of(root).parent
    path = data_dir / ALERTS_FILE
    if not path.is_file():
        return None
    return [a for _, a in read_lines(path)]
