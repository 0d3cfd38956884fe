"""The input journal: every tick's canonical batches in a compact binary form, and its reader.

Assigning events to ticks is the engine's only non-deterministic act (SPEC section 4), so the
shell journals each tick's batches and `replay` turns the journal back into the same log.
Segments share the log's header (magic b"\\x89CXJRN\\r\\n", record_size 0) and its rotation
rules; a closed segment may be zstd-compressed (`<name>.zst`), and the reader reads both.

Tick frame (little-endian); `crc32c` covers bytes 0 .. frame_len - 4:

    off size  field
      0   4   marker      b"JTK1" (lets a scan tell a frame start from garbage)
      4   4   frame_len   u32, whole frame including marker and CRC
      8   8   tick_id     u64
     16   2   flags       u16, bit 0 = SESSION_START (first tick of a session)
     18   2   n_batches   u16
     20   4   n_events    u32, over all batches
     24   -   per batch:  token_id u16, n u32, then n events
      -   4   crc32c

Event: `source u8 | symbol u16 (index into the header's table) | exchange_ts i64 |
local_seq i64`, then the payload's fields in declaration order (symbol excluded):
f64 for prices/sizes/rates, i64 for times and ids, u8 for bools and enums. Floats are stored
as IEEE-754 f64 and strings as table indexes, so a round trip is exact. Three payloads have
a variable part after the common head:

    DEPTH         exchange_ts i64 | mid f64 | reach_bps f64 | n u16 | n x (edge u16, bid f64,
                  ask f64)
    FUNDING_INFO  exchange_ts i64 | interval_hours u16 | cap f64 | floor f64
    OI_HISTORY    exchange_ts i64 | n u32 | n x (ts i64, oi f64)
"""

from __future__ import annotations

import operator
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from engine_adapters.storage.segment import (
    CHECKSUM_CRC32C,
    JOURNAL_MAGIC,
    JOURNAL_SUFFIX,
    ZERO_CHAIN,
    ZSTD_SUFFIX,
    SegmentHeader,
    StorageError,
    check_compatible,
    decode_header,
    encode_header,
    fsync_dir,
    list_segments,
    segment_name,
)
from engine_core.canonical import CanonicalBatch, CanonicalEvent
from engine_core.config import Config
from engine_core.events import (
    BookTickerReceived,
    DataHealthReceived,
    DepthReceived,
    FundingInfoReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    Side,
    SourceType,
    TradeReceived,
)
from engine_core.record import FORMAT_VERSION, crc32c

MARKER = b"JTK1"
FRAME_HEAD = struct.Struct("<4sIQHHI")
BATCH_HEAD = struct.Struct("<HI")
_EV = "<BHqq"
FLAG_SESSION_START = 1
# Per source: the payload class, its fields after `symbol`, and their struct codes.
_LAYOUT: dict[SourceType, tuple[type, tuple[str, ...], str]] = {
    SourceType.TRADE: (TradeReceived,
                       ("exchange_ts", "price", "qty", "buyer_is_maker", "trade_id"), "qddBq"),
    SourceType.BOOK: (BookTickerReceived,
                      ("exchange_ts", "bid", "bid_qty", "ask", "ask_qty", "update_id"), "qddddq"),
    SourceType.LIQUIDATION: (LiquidationReceived,
                             ("exchange_ts", "side", "price", "qty"), "qBdd"),
    SourceType.MARK: (MarkPriceReceived, ("exchange_ts", "mark_price", "index_price",
                                          "funding_rate", "next_funding_ts"), "qdddq"),
    SourceType.OPEN_INTEREST: (OpenInterestReceived, ("exchange_ts", "open_interest"), "qd"),
    SourceType.FUNDING: (FundingReceived, ("exchange_ts", "funding_rate", "mark_price",
                                           "index_price", "next_funding_ts"), "qdddq"),
    SourceType.HEALTH: (DataHealthReceived, ("exchange_ts", "kind", "count"), "qBq"),
    SourceType.FUNDING_INFO: (FundingInfoReceived,
                              ("exchange_ts", "interval_hours", "cap", "floor"), "qHdd"),
}
_STRUCTS = {s: struct.Struct(_EV + codes) for s, (_c, _f, codes) in _LAYOUT.items()}
_BY_CODE = {int(s): (st, _LAYOUT[s][0], _LAYOUT[s][1], s) for s, st in _STRUCTS.items()}
_ENUMS: dict[str, Callable[[Any], Any]] = {"buyer_is_maker": bool, "side": Side,
                                           "kind": HealthKind}


@attrs.frozen(kw_only=True, slots=True)
class JournalTick:
    """One journaled tick: its batches in token order and whether a session starts here."""

    tick_id: int
    session_start: bool
    batches: tuple[CanonicalBatch, ...]


# `encode_tick` packs trades with these fields read directly (the layout's, checked here)
assert _LAYOUT[SourceType.TRADE][1] == ("exchange_ts", "price", "qty", "buyer_is_maker",
                                        "trade_id")
_PACKERS: dict[SourceType, tuple[Callable[..., bytes], Callable[[Any], tuple[Any, ...]]]] = {
    src: (_STRUCTS[src].pack, operator.attrgetter(*fields))
    for src, (_c, fields, _codes) in _LAYOUT.items()
}
# Payloads with a variable part: a head struct, then `n` items of a fixed struct.
_DEPTH_HEAD = struct.Struct(_EV + "qddH")
_DEPTH_BAND = struct.Struct("<Hdd")
_OIH_HEAD = struct.Struct(_EV + "qI")
_OIH_POINT = struct.Struct("<qd")


def _pack_depth(src: int, tok: int, ts: int, seq: int, d: DepthReceived) -> bytes:
    n = len(d.edges_bps)
    if len(d.bid_notional) != n or len(d.ask_notional) != n:
        raise struct.error(f"{n} band edges but {len(d.bid_notional)} bid and "
                           f"{len(d.ask_notional)} ask notionals")
    band = _DEPTH_BAND.pack
    return _DEPTH_HEAD.pack(src, tok, ts, seq, d.exchange_ts, d.mid, d.reach_bps, n) + \
        b"".join([band(e, b, a) for e, b, a in zip(d.edges_bps, d.bid_notional,
                                                    d.ask_notional, strict=True)])


def _pack_oi_history(src: int, tok: int, ts: int, seq: int,
                     h: OpenInterestHistoryReceived) -> bytes:
    point = _OIH_POINT.pack
    return _OIH_HEAD.pack(src, tok, ts, seq, h.exchange_ts, len(h.points)) + \
        b"".join([point(t, oi) for t, oi in h.points])


def _unpack_depth(data: bytes, p: int, symbols: Sequence[str]
                  ) -> tuple[tuple[int, int], DepthReceived, int]:
    _s, sym, ts, seq, ets, mid, reach, n = _DEPTH_HEAD.unpack_from(data, p)
    p += _DEPTH_HEAD.size
    bands = [_DEPTH_BAND.unpack_from(data, p + i * _DEPTH_BAND.size) for i in range(n)]
    return (ts, seq), DepthReceived(
        symbol=symbols[sym], exchange_ts=ets, mid=mid, reach_bps=reach,
        edges_bps=tuple(b[0] for b in bands), bid_notional=tuple(b[1] for b in bands),
        ask_notional=tuple(b[2] for b in bands)), p + n * _DEPTH_BAND.size


def _unpack_oi_history(data: bytes, p: int, symbols: Sequence[str]
                       ) -> tuple[tuple[int, int], OpenInterestHistoryReceived, int]:
    _s, sym, ts, seq, ets, n = _OIH_HEAD.unpack_from(data, p)
    p += _OIH_HEAD.size
    pts = tuple(_OIH_POINT.unpack_from(data, p + i * _OIH_POINT.size) for i in range(n))
    return (ts, seq), OpenInterestHistoryReceived(symbol=symbols[sym], exchange_ts=ets,
                                                  points=pts), p + n * _OIH_POINT.size


def _whole(payload: Any) -> tuple[Any, ...]:
    return (payload,)


_PACKERS[SourceType.DEPTH] = (_pack_depth, _whole)
_PACKERS[SourceType.OI_HISTORY] = (_pack_oi_history, _whole)
_VAR_DECODERS: dict[int, tuple[SourceType, Callable[
    [bytes, int, Sequence[str]], tuple[tuple[int, int], Any, int]]]] = {
    int(SourceType.DEPTH): (SourceType.DEPTH, _unpack_depth),
    int(SourceType.OI_HISTORY): (SourceType.OI_HISTORY, _unpack_oi_history),
}


def encode_tick(tick_id: int, batches: Sequence[CanonicalBatch], session_start: bool,
                sym_index: dict[str, int]) -> bytes:
    """One tick frame; raises ValueError naming tick and token for unencodable events.

    An event's symbol index is its batch's token id: the normalizer bound it to that token
    (`sym_index` is kept for the check in the error path and for callers' clarity).
    """
    parts: list[bytes] = []
    n_ev = 0
    packers = _PACKERS
    head_pack = BATCH_HEAD.pack
    trade, trade_pack = SourceType.TRADE, _STRUCTS[SourceType.TRADE].pack
    for b in batches:
        events = b.events
        tok = b.token_id
        parts.append(head_pack(tok, len(events)))
        n_ev += len(events)
        for _tok, src, ets, seq, p in events:  # a CanonicalEvent is a named tuple
            try:
                if src is trade and type(p) is TradeReceived:  # most events: no lookups
                    parts.append(trade_pack(src, tok, ets, seq, p.exchange_ts, p.price, p.qty,
                                            p.buyer_is_maker, p.trade_id))
                    continue
                pack, values = packers[src]
                parts.append(pack(src, tok, ets, seq, *values(p)))
            except (KeyError, struct.error) as exc:
                raise ValueError(f"tick {tick_id}, token {tok}: cannot journal "
                                 f"{type(p).__name__} ({exc})") from None
    body = b"".join(parts)
    n = FRAME_HEAD.size + len(body) + 4
    head = FRAME_HEAD.pack(MARKER, n, tick_id, FLAG_SESSION_START if session_start else 0,
                           len(batches), n_ev)
    frame = head + body
    return frame + crc32c(frame).to_bytes(4, "little")


def decode_tick(data: bytes, off: int, symbols: Sequence[str], path: Path | str) -> JournalTick:
    """Decode a frame whose CRC was checked; errors carry the file offset."""
    _m, n, tick, flags, n_b, _n_ev = FRAME_HEAD.unpack_from(data, off)
    p = off + FRAME_HEAD.size
    end = off + n - 4
    batches = []
    try:
        for _ in range(n_b):
            tok, cnt = BATCH_HEAD.unpack_from(data, p)
            p += 6
            events = []
            for _ in range(cnt):
                var = _VAR_DECODERS.get(data[p])
                if var is not None:
                    (ts, seq), payload, p = var[1](data, p, symbols)
                    events.append(CanonicalEvent(token_id=tok, source=var[0], exchange_ts=ts,
                                                 local_seq=seq, payload=payload))
                    continue
                st, cls, fields, src = _BY_CODE[data[p]]
                v = st.unpack_from(data, p)
                p += st.size
                kw = dict(zip(fields, v[4:], strict=True))
                for k, conv in _ENUMS.items():
                    if k in kw:
                        kw[k] = conv(kw[k])
                events.append(CanonicalEvent(token_id=tok, source=src, exchange_ts=v[2],
                                             local_seq=v[3],
                                             payload=cls(symbol=symbols[v[1]], **kw)))
            batches.append(CanonicalBatch(token_id=tok, tick_id=tick, events=tuple(events)))
    except (KeyError, IndexError, ValueError, struct.error) as exc:
        raise StorageError(path, p, f"tick {tick}: undecodable event ({exc!r})") from None
    if p != end:
        raise StorageError(path, p, f"tick {tick}: frame length disagrees with its content")
    return JournalTick(tick_id=tick, session_start=bool(flags & FLAG_SESSION_START),
                       batches=tuple(batches))


def _frame_ok(data: bytes, off: int) -> int:
    """Length of a CRC-valid frame at `off`, or 0."""
    if off + 24 > len(data) or data[off:off + 4] != MARKER:
        return 0
    n = int.from_bytes(data[off + 4:off + 8], "little")
    if n < 28 or off + n > len(data):
        return 0
    ok = crc32c(data[off:off + n - 4]) == int.from_bytes(data[off + n - 4:off + n], "little")
    return n if ok else 0


@attrs.frozen(kw_only=True, slots=True)
class JournalScan:
    """Frame offsets of a journal segment's valid prefix and its first problem, if any."""

    path: Path
    header: SegmentHeader
    frames: tuple[tuple[int, int, int], ...]  # (offset, length, tick_id)
    good_end: int
    problem_offset: int | None = None
    problem: str | None = None
    torn: bool = False


def read_segment(path: Path) -> bytes:
    if path.name.endswith(ZSTD_SUFFIX):
        import zstandard

        with open(path, "rb") as f:
            return bytes(zstandard.ZstdDecompressor().stream_reader(f).read())
    return path.read_bytes()


def scan_journal_segment(path: Path, data: bytes, prev_tick: int | None = None) -> JournalScan:
    header = decode_header(data, path, JOURNAL_MAGIC)
    off = header.header_len
    frames: list[tuple[int, int, int]] = []
    problem = None
    while off < len(data):
        n = _frame_ok(data, off)
        if not n:
            problem = "torn or corrupt tick frame"
            break
        tick = int.from_bytes(data[off + 8:off + 16], "little")
        start = data[off + 16] & FLAG_SESSION_START
        if (not frames and tick != header.first_tick) or (
                prev_tick is not None and (tick <= prev_tick or (not start
                                                                 and tick != prev_tick + 1))):
            problem = f"tick {tick} after {prev_tick} breaks the tick sequence"
            break
        frames.append((off, n, tick))
        prev_tick = tick
        off += n
    if problem is None:
        return JournalScan(path=path, header=header, frames=tuple(frames), good_end=off)
    later = any(_frame_ok(data, q) for q in _markers(data, off + 1))
    return JournalScan(path=path, header=header, frames=tuple(frames), good_end=off,
                       problem_offset=off, problem=problem, torn=not later)


def _markers(data: bytes, start: int) -> Iterator[int]:
    q = data.find(MARKER, start)
    while q >= 0:
        yield q
        q = data.find(MARKER, q + 1)


def journal_dir_of(path: Path) -> Path:
    return path / "journal" if (path / "journal").is_dir() else path


def iter_journal(path: Path | str) -> Iterator[JournalTick]:
    """Every complete tick of a journal (data dir, journal dir or one segment file)."""
    p = journal_dir_of(Path(path))
    segs = [p] if p.is_file() else list_segments(p, JOURNAL_SUFFIX)
    prev: int | None = None
    for no, seg in enumerate(segs):
        data = read_segment(seg)
        s = scan_journal_segment(seg, data, prev)
        if s.header.segment_no != no and not p.is_file():
            raise StorageError(seg, 24, f"segment number {s.header.segment_no}, expected {no}")
        symbols = s.header.symbols
        for off, _n, tick in s.frames:
            yield decode_tick(data, off, symbols, seg)
            prev = tick
        if s.problem is not None:
            raise StorageError(seg, s.problem_offset or 0,
                               ("torn tail: " if s.torn else "") + s.problem)


def journal_header(path: Path | str) -> SegmentHeader:
    """Header of the first journal segment (config, symbols, engine version)."""
    p = journal_dir_of(Path(path))
    segs = [p] if p.is_file() else list_segments(p, JOURNAL_SUFFIX)
    if not segs:
        raise StorageError(p, 0, "no journal segments found")
    return decode_header(read_segment(segs[0])[:MAX_PEEK], segs[0], JOURNAL_MAGIC)


MAX_PEEK = 64 * 1024 * 1024


def compress_segment(path: Path, level: int = 3) -> Path:
    """zstd-compress a closed segment next to it, then remove the plain file."""
    import zstandard

    out = path.with_name(path.name + ZSTD_SUFFIX)
    tmp = out.with_name(out.name + ".tmp")
    data = zstandard.ZstdCompressor(level=level).compress(path.read_bytes())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    fsync_dir(path.parent)
    path.unlink()
    return out


def journal_base_header(cfg: Config, symbols: Sequence[str], engine_version: str,
                        params_json: str) -> SegmentHeader:
    return SegmentHeader(
        magic=JOURNAL_MAGIC, format_version=FORMAT_VERSION, record_size=0, header_len=0,
        first_tick=0, segment_no=0, checksum_alg=CHECKSUM_CRC32C, config_digest=cfg.digest(),
        prev_chain=ZERO_CHAIN, engine_version=engine_version, config_json=cfg.canonical_json(),
        symbols=tuple(symbols), params_json=params_json)


def check_journal_compatible(h: SegmentHeader, path: Path, cfg: Config,
                             symbols: Sequence[str], allow: bool) -> None:
    check_compatible(h, path, config_digest=cfg.digest(), symbols=symbols,
                     allow_config_change=allow)


def new_segment_bytes(base: SegmentHeader, segment_no: int, first_tick: int) -> bytes:
    return encode_header(attrs.evolve(base, segment_no=segment_no, first_tick=first_tick))


def segment_path(folder: Path, segment_no: int, first_tick: int) -> Path:
    return folder / segment_name(segment_no, first_tick, JOURNAL_SUFFIX)
