"""Appending ticks to the output log: segments, rotation, fsync policy, session restarts.

One `os.write` loop per tick writes the tick's token records and its commit in one buffer,
so SIGKILL loses at most the tick being written; only power loss needs fsync (research note
4.5). Rotation is a pure function of tick ids and sizes (never of the wall clock), so a
replay of the same journal rotates at the same ticks and gives identical files:
  * a tick whose records carry SESSION_START starts a new segment (a restart is visible in
    the file list, and tick ids may jump only there);
  * a tick crossing a multiple of `rotate_ticks` (default 14,400 = 1 h) starts a new one;
  * a tick that would grow the segment past `max_segment_bytes` starts a new one.
Every new file is fsynced with its directory; an fsync error is never retried (PostgreSQL's
fsyncgate: the kernel may already have dropped the dirty pages).
"""

from __future__ import annotations

import enum
import json
import operator
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import google_crc32c

from engine_adapters.storage.chain import (
    alert_digest,
    encode_commit,
    flags_of,
    segment_seed,
)
from engine_adapters.storage.log_reader import RecoveryReport, recover_log
from engine_adapters.storage.segment import (
    CHECKSUM_CRC32C,
    LOG_MAGIC,
    LOG_SUFFIX,
    ZERO_CHAIN,
    SegmentHeader,
    check_compatible,
    encode_header,
    fsync_dir,
    segment_name,
)
from engine_core.alerts import Alert
from engine_core.config import Config
from engine_core.record import (
    BODY,
    FIELDS,
    FORMAT_VERSION,
    REC_TOKEN,
    RECORD_SIZE,
    Record,
    TickRecords,
)
from engine_core.states import Quality

DEFAULT_ROTATE_TICKS = 14_400
DEFAULT_MAX_SEGMENT_BYTES = 1 << 30
_SESSION = int(Quality.SESSION_START)


class FsyncMode(enum.Enum):
    """When appended ticks are forced to disk (rotate and close always fsync)."""

    #: Never on append: a power loss may lose everything since the last rotate.
    NONE = "none"
    #: After every tick: at most the tick being written is lost on power loss.
    TICK = "tick"
    #: After every N ticks (default 4 = 1 s of 250 ms ticks).
    INTERVAL = "interval"


@attrs.frozen(kw_only=True, slots=True)
class FsyncPolicy:
    """Parsed `none | tick | interval:N` policy."""

    mode: FsyncMode = FsyncMode.INTERVAL
    every: int = 4

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        t = text.strip().lower()
        if t in ("none", "tick"):
            return cls(mode=FsyncMode(t), every=1)
        if t.startswith("interval:"):
            try:
                n = int(t.split(":", 1)[1])
            except ValueError:
                n = 0
            if n > 0:
                return cls(mode=FsyncMode.INTERVAL, every=n)
        raise ValueError(f"fsync policy {text!r} is not one of none, tick, interval:N (N > 0)")


_fields = operator.attrgetter(*FIELDS)
_pack = BODY.pack
_crc: Callable[[bytes], int] = google_crc32c.value


def encode_records(tick_id: int, records: Sequence[Record]) -> bytes:
    """The tick's token records as bytes, identical to `Record.to_bytes()` joined.

    Inlined for speed (one C attrgetter call per record, the C CRC function without the
    Python wrapper); tests check it against `Record.to_bytes()`.
    """
    parts = []
    for i, r in enumerate(records):
        v = _fields(r)
        if v[0] != tick_id or v[1] != i:
            raise ValueError(f"tick {tick_id}: record {i} is for tick {v[0]}, token {v[1]} "
                             f"(records must be one per token, in token order)")
        body = _pack(v[0], v[1], REC_TOKEN, *v[2:])
        parts.append(body)
        parts.append(_crc(body).to_bytes(4, "little"))
    return b"".join(parts)


def write_all(fd: int, buf: bytes | memoryview) -> None:
    """os.write until every byte is accepted (a write may be partial)."""
    view = memoryview(buf)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def fsync_or_die(fd: int, path: Path) -> None:
    try:
        os.fsync(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"fsync of {path} failed ({exc.strerror}); stopping "
                                 f"without retry, the data may not be on disk") from exc


class LogWriter:
    """Appends committed ticks to `<dir>/log/`; open with `LogWriter.open`."""

    def __init__(self, log_dir: Path, header_base: SegmentHeader, fsync: FsyncPolicy,
                 rotate_ticks: int, max_segment_bytes: int, recovery: RecoveryReport,
                 next_segment_no: int, last_tick: int | None, last_chain: bytes,
                 active: Path | None, active_size: int, active_first: int | None) -> None:
        self.log_dir = log_dir
        self._base = header_base
        self._fsync = fsync
        self._rotate_ticks = rotate_ticks
        self._max_bytes = max_segment_bytes
        #: What opening did to a torn tail (for the operator).
        self.recovery = recovery
        self._seg_no = next_segment_no
        self.last_tick = last_tick
        self.last_chain = last_chain
        self._n = header_base.n_tokens
        self._fd: int | None = None
        self._path = active
        self._size = active_size
        self._first = active_first
        self._since_sync = 0
        if active is not None:
            self._fd = os.open(active, os.O_WRONLY | os.O_APPEND)

    @classmethod
    def open(cls, data_dir: Path | str, cfg: Config, symbols: Sequence[str],
             engine_version: str, *, fsync: FsyncPolicy | str = "interval:4",
             rotate_ticks: int = DEFAULT_ROTATE_TICKS,
             max_segment_bytes: int = DEFAULT_MAX_SEGMENT_BYTES,
             allow_config_change: bool = False) -> LogWriter:
        """Open (creating or recovering) the log of a data dir.

        A torn tail is truncated (see `.recovery.message`); corruption, another symbol table,
        or another config (unless `allow_config_change`) raise StorageError.
        """
        policy = FsyncPolicy.parse(fsync) if isinstance(fsync, str) else fsync
        if rotate_ticks <= 0 or max_segment_bytes <= 0:
            raise ValueError("rotate_ticks and max_segment_bytes must be positive")
        log_dir = Path(data_dir) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        params = json.dumps({"max_segment_bytes": max_segment_bytes,
                             "rotate_ticks": rotate_ticks}, sort_keys=True,
                            separators=(",", ":"))
        base = SegmentHeader(
            magic=LOG_MAGIC, format_version=FORMAT_VERSION, record_size=RECORD_SIZE,
            header_len=0, first_tick=0, segment_no=0, checksum_alg=CHECKSUM_CRC32C,
            config_digest=cfg.digest(), prev_chain=ZERO_CHAIN, engine_version=engine_version,
            config_json=cfg.canonical_json(), symbols=tuple(symbols), params_json=params)
        report, scan = recover_log(log_dir)
        if scan is None:
            return cls(log_dir, base, policy, rotate_ticks, max_segment_bytes, report, 0,
                       None, ZERO_CHAIN, None, 0, None)
        check_compatible(scan.header, scan.path, config_digest=base.config_digest,
                         symbols=symbols, allow_config_change=allow_config_change)
        same = (scan.header.config_digest == base.config_digest
                and scan.header.engine_version == engine_version
                and scan.header.params_json == params)
        # Continue the active segment only if it was written by an identical setup;
        # otherwise the next tick (which must be a SESSION_START) opens a new one.
        return cls(log_dir, base, policy, rotate_ticks, max_segment_bytes, report,
                   scan.header.segment_no + 1, scan.last_tick, scan.last_chain,
                   scan.path if same else None, scan.good_end, scan.first_tick)

    # ------------------------------------------------------------------ appending
    def append_tick(self, tick_id: int, records: Sequence[Record],
                    alerts: Sequence[Alert]) -> bytes:
        """Write one tick (one record per token, in token order); return its chain value."""
        n = self._n
        if len(records) != n:
            raise ValueError(f"tick {tick_id}: expected {n} records (one per token), "
                             f"got {len(records)}")
        first = records[0] if n else None
        quality = first.quality if first is not None else 0
        start = bool(quality & _SESSION)
        last = self.last_tick
        if last is not None and (tick_id <= last or (not start and tick_id != last + 1)):
            raise ValueError(f"tick_id must be {last + 1} (or a later tick with "
                             f"SESSION_START): got {tick_id} after {last}")
        if last is None and not start and n:
            raise ValueError(f"tick {tick_id}: the first tick of a log must carry SESSION_START")
        if isinstance(records, TickRecords) and first is not None and first.tick_id == tick_id:
            token_bytes = records.data  # encoded once by the core, from the same integers
        else:
            token_bytes = encode_records(tick_id, records)
        block = len(token_bytes) + RECORD_SIZE
        if (self._fd is None or start
                or tick_id // self._rotate_ticks != (self._first or 0) // self._rotate_ticks
                or self._size + block > self._max_bytes):
            self._new_segment(tick_id)
        digest = alert_digest(alerts)
        commit, chain = encode_commit(
            tick_id=tick_id, n_tokens=n, cluster=first.cluster if first else 0,
            phase=first.phase if first else 0, flags=flags_of(quality),
            n_alerts=len(alerts), event_id=first.event_id if first else 0,
            prev_chain=self.last_chain, token_bytes=token_bytes, digest=digest)
        assert self._fd is not None
        write_all(self._fd, token_bytes + commit)
        self._size += block
        self.last_tick = tick_id
        self.last_chain = chain
        self._since_sync += 1
        pol = self._fsync
        if pol.mode is not FsyncMode.NONE and self._since_sync >= pol.every:
            self.sync()
        return chain

    def _new_segment(self, tick_id: int) -> None:
        self._close_fd()
        header = encode_header(attrs.evolve(self._base, first_tick=tick_id,
                                            segment_no=self._seg_no,
                                            prev_chain=self.last_chain))
        path = self.log_dir / segment_name(self._seg_no, tick_id, LOG_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        write_all(fd, header)
        fsync_or_die(fd, path)
        fsync_dir(self.log_dir)
        self._fd, self._path, self._size, self._first = fd, path, len(header), tick_id
        self._seg_no += 1
        self.last_chain = segment_seed(header)

    def sync(self) -> None:
        """Force appended ticks to disk now."""
        if self._fd is not None and self._path is not None:
            fsync_or_die(self._fd, self._path)
        self._since_sync = 0

    def _close_fd(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """fsync and close; the writer cannot be used afterwards."""
        self._close_fd()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
