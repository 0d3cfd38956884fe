"""The 64-byte evidence record: the market facts of one token at one tick, beside its record.

A token record (`record.py`) says what the engine *concluded*; the evidence record says what
it *saw*: prices, open interest, funding per hour, liquidations by side, the move in units of
the symbol's own volatility and the OI change. `step` builds one per token per tick, from the
same floats the rules read, quantized once, and joins their bytes in `TickRecords.evidence`
(aligned 1:1 with `TickRecords.data`). An alert's text is a pure function of these integers
and the config's windows, so `verify` can re-derive it from stored bytes.

Layout, little-endian (docs/log-format.md, "Evidence records"):

    off size type  field
      0   8  u64   tick_id          same as the token record's
      8   2  u16   token_id
     10   1  u8    rec_type         3 = evidence record (1 = token record, 2 = the log's commit)
     11   2  u16   flags            EvidenceFlag: which values are unknown, where they came from
     13   8  u64   price            mid (mark when there is no book) x 1e10
     21   2  i16   mark_vs_price    (mark / price - 1) x 1e5  (0.1 bp; saturates at +-32.7 %)
     23   2  i16   index_vs_price   (index / price - 1) x 1e5
     25   8  u64   open_interest    contracts x 1e4
     33   4  i32   funding_per_hour funding rate of the interval / its hours, x 1e9
     37   4  u32   liq_long_tick    USD of longs force-closed this tick (forced SELLs)
     41   4  u32   liq_short_tick   USD of shorts force-closed this tick (forced BUYs)
     45   4  u32   liq_long_window  USD of longs force-closed over the liquidation window
     49   4  u32   liq_short_window idem, shorts
     53   2  i16   move_sigma       price vs its move-window average, in sigma, x 100
     55   2  i16   move             the same move as a fraction, x 1e4 (0.01 %)
     57   2  i16   oi_change        OI vs its fast-window average, as a fraction, x 1e4
     59   1  i8    oi_build         OI vs its long (24-h) norm, in whole percent (+-127)
     60   4  u32   crc32c           CRC-32C of bytes 0..59

Every value saturates at its field's range (and sets CLAMPED); a value the tick did not know
is 0 with its flag set, so a reader shows "unknown", never a made-up zero.
"""

from __future__ import annotations

import enum
import operator
import struct
from collections.abc import Sequence

import attrs

from engine_core.config import Config
from engine_core.feature_types import FeatureFrame
from engine_core.record import RECORD_SIZE, ChecksumError, crc32c, joined
from engine_core.ticks import TICK_MS

REC_EVIDENCE = 3
EVIDENCE_BODY = struct.Struct("<QHBHQhhQiIIIIhhhb")
EVIDENCE_FULL = struct.Struct("<QHBHQhhQiIIIIhhhbI")
assert EVIDENCE_BODY.size == 60 and EVIDENCE_FULL.size == RECORD_SIZE
_BODY_PACK = EVIDENCE_BODY.pack

PRICE_SCALE = 10_000_000_000
REL_SCALE = 100_000
OI_SCALE = 10_000
FUNDING_HOUR_SCALE = 1_000_000_000
SIGMA_SCALE = 100
FRACTION_SCALE = 10_000

_U64 = 2**64 - 1
_U32 = 2**32 - 1
_I32 = 2**31 - 1
_I16 = 2**15 - 1
_I8 = 2**7 - 1
PERCENT_SCALE = 100


class EvidenceFlag(enum.IntFlag):
    """What an evidence record's values are, or are not (field `flags`)."""

    #: No book yet: `price` is the mark price (or 0 with NO_PRICE).
    NO_MID = 1 << 0
    #: Neither book nor mark: no price at all; `move*` and `mark/index_vs_price` are 0.
    NO_PRICE = 1 << 1
    #: No mark/index price seen yet; `mark_vs_price`, `index_vs_price`, funding are 0.
    NO_MARK = 1 << 2
    #: No open interest seen yet; `open_interest` and `oi_change` are 0.
    NO_OI = 1 << 3
    #: No FundingInfoReceived: funding per hour assumes the default interval.
    FUNDING_INTERVAL_ASSUMED = 1 << 4
    #: No OI history: the long OI baseline started at this session's first poll.
    OI_BASELINE_SESSION = 1 << 5
    #: No depth bands: the liquidity leg reads the top of book.
    DEPTH_TOP_OF_BOOK = 1 << 6
    #: The exchange halted trading in this symbol (SYMBOL_HALTED, until SYMBOL_TRADING).
    HALTED = 1 << 7
    #: The symbol was delisted or settled (SYMBOL_DELISTED).
    DELISTED = 1 << 8
    #: The volatility norm is not known yet (warm-up): `move_sigma` is 0.
    NO_SIGMA = 1 << 9
    #: At least one value did not fit its field and was saturated.
    CLAMPED = 1 << 10


_CLAMPED = int(EvidenceFlag.CLAMPED)


def _clamp_u32(v: int) -> tuple[int, bool]:
    if v < 0:
        return 0, True
    if v > _U32:
        return _U32, True
    return v, False


def pack_evidence(tick_id: int, token_id: int, flags: int, price: float, mark: float,
                  index: float, open_interest: float, funding_per_hour: float,
                  liq_long_tick: float, liq_short_tick: float, liq_long_window: float,
                  liq_short_window: float, move_sigma: float, move: float,
                  oi_change: float, oi_build: float = 0.0) -> bytes:
    """Quantize the facts of one token-tick into the 64-byte evidence record (CRC included).

    Rounds half to even and saturates each value into its field (setting CLAMPED). `mark`
    and `index` are absolute prices; they are stored relative to `price` (0 when unknown).
    """
    # the levels as `quantize_levels` gives them (the per-tick path keeps those across ticks)
    p, mk, ix, oi, fh, clamped = quantize_levels(price, mark, index, open_interest,
                                                 funding_per_hour)
    l0 = round(liq_long_tick * 1.0)
    l1 = round(liq_short_tick * 1.0)
    l2 = round(liq_long_window * 1.0)
    l3 = round(liq_short_window * 1.0)
    if not (0 <= l0 <= _U32 and 0 <= l1 <= _U32 and 0 <= l2 <= _U32 and 0 <= l3 <= _U32):
        l0, c0 = _clamp_u32(l0)
        l1, c1 = _clamp_u32(l1)
        l2, c2 = _clamp_u32(l2)
        l3, c3 = _clamp_u32(l3)
        clamped = clamped or c0 or c1 or c2 or c3
    ms = round(move_sigma * SIGMA_SCALE)
    if ms < -_I16 or ms > _I16:
        ms, clamped = (-_I16 if ms < -_I16 else _I16), True
    mv = round(move * FRACTION_SCALE)
    if mv < -_I16 or mv > _I16:
        mv, clamped = (-_I16 if mv < -_I16 else _I16), True
    oc = round(oi_change * FRACTION_SCALE)
    if oc < -_I16 or oc > _I16:
        oc, clamped = (-_I16 if oc < -_I16 else _I16), True
    ob = round(oi_build * PERCENT_SCALE)
    if ob < -_I8 or ob > _I8:
        ob, clamped = (-_I8 if ob < -_I8 else _I8), True
    body = EVIDENCE_BODY.pack(tick_id, token_id, REC_EVIDENCE,
                              flags | (_CLAMPED if clamped else 0), p, mk, ix, oi, fh,
                              l0, l1, l2, l3, ms, mv, oc, ob)
    return body + crc32c(body).to_bytes(4, "little")


#: The quantized levels of one evidence record (`quantize_levels`): price, mark and index vs
#: price, open interest, funding per hour, and whether any of them was clamped.
EvidenceLevels = tuple[int, int, int, int, int, bool]


def quantize_levels(price: float, mark: float, index: float, open_interest: float,
                    funding_per_hour: float) -> EvidenceLevels:
    """`pack_evidence`'s quantization of the fields that change only when a price, OI or
    funding arrives: a caller may keep the result while these five floats stay equal (each
    is a function of the values alone; 0.0 and -0.0 give the same integers)."""
    p = round(price * PRICE_SCALE)
    clamped = p < 0 or p > _U64
    if clamped:
        p = 0 if p < 0 else _U64
    if price > 0.0 and mark > 0.0:
        mk = round((mark / price - 1.0) * REL_SCALE)
        if mk < -_I16 or mk > _I16:
            mk, clamped = (-_I16 if mk < -_I16 else _I16), True
        ix = round((index / price - 1.0) * REL_SCALE)
        if ix < -_I16 or ix > _I16:
            ix, clamped = (-_I16 if ix < -_I16 else _I16), True
    else:
        mk = ix = 0
    oi = round(open_interest * OI_SCALE)
    if oi < 0 or oi > _U64:
        oi, clamped = (0 if oi < 0 else _U64), True
    fh = round(funding_per_hour * FUNDING_HOUR_SCALE) if funding_per_hour else 0
    if fh < -_I32 or fh > _I32:
        fh, clamped = (-_I32 if fh < -_I32 else _I32), True
    return p, mk, ix, oi, fh, clamped


#: The frame fields an evidence record is quantized from (beside its levels), fetched in one
#: C call: unpacking all 38 cost more.
_EVIDENCE_FIELDS = operator.itemgetter(*map(FeatureFrame._fields.index, (
    "token_id", "oi_velocity", "oi_build", "liq_long_notional", "liq_short_notional", "move",
    "move_sigma", "liq_long_window", "liq_short_window", "evidence_flags")))


def pack_tick_evidence(tick_id: int, frames: Sequence[FeatureFrame],
                       levels: Sequence[EvidenceLevels]) -> bytes:
    """The evidence records of one tick, joined: `pack_evidence` of every frame, in order.

    `levels[i]` is `quantize_levels` of frame i's price, mark, index, OI and funding per
    hour (the caller keeps them across ticks while those stay equal); the rest is quantized
    here, once per tick instead of one call per token (profiled: on a quiet tick the call
    with fifteen arguments and fifteen attribute reads cost as much as the arithmetic). Bytes
    equal `b"".join(pack_evidence(...) for f in frames)` (tests/unit/core/test_perf_paths).
    A zero skips `round` and the range test (round(0.0) is 0): liquidations are zero on
    almost every tick, and so are the four liquidation fields together (one test for them).
    """
    # `float.__round__` is `round` of a float without the builtin's special-method lookup
    # (~2.5x faster, the same int): the scaled values are floats times float scales (exact
    # in binary, so the same products as with the int scales); the bare liquidation values,
    # zero on almost every tick, keep the builtin, which takes an int too
    rnd, frnd, body_pack, crc = round, float.__round__, _BODY_PACK, crc32c
    out: list[bytes | int] = []  # body, checksum, body, ...
    s_scale, f_scale, u32, i16, i8 = float(SIGMA_SCALE), float(FRACTION_SCALE), _U32, _I16, _I8
    pc_scale = float(PERCENT_SCALE)
    fields = _EVIDENCE_FIELDS
    for f, (p, mk, ix, oi, fh, clamped) in zip(frames, levels, strict=True):
        (token_id, oi_change, oi_build, liq_long_tick, liq_short_tick, move, move_sigma,
         liq_long_window, liq_short_window, flags) = fields(f)
        if liq_long_tick or liq_short_tick or liq_long_window or liq_short_window:
            l0, l1, l2, l3 = rnd(liq_long_tick), rnd(liq_short_tick), rnd(liq_long_window), \
                rnd(liq_short_window)
            if not (0 <= l0 <= u32 and 0 <= l1 <= u32 and 0 <= l2 <= u32 and 0 <= l3 <= u32):
                l0, c0 = _clamp_u32(l0)
                l1, c1 = _clamp_u32(l1)
                l2, c2 = _clamp_u32(l2)
                l3, c3 = _clamp_u32(l3)
                clamped = clamped or c0 or c1 or c2 or c3
        else:
            l0 = l1 = l2 = l3 = 0
        ms = mv = oc = ob = 0
        if move_sigma:
            ms = frnd(move_sigma * s_scale)
            if ms < -i16 or ms > i16:
                ms, clamped = (-i16 if ms < -i16 else i16), True
        if move:
            mv = frnd(move * f_scale)
            if mv < -i16 or mv > i16:
                mv, clamped = (-i16 if mv < -i16 else i16), True
        if oi_change:
            oc = frnd(oi_change * f_scale)
            if oc < -i16 or oc > i16:
                oc, clamped = (-i16 if oc < -i16 else i16), True
        if oi_build:
            ob = frnd(oi_build * pc_scale)
            if ob < -i8 or ob > i8:
                ob, clamped = (-i8 if ob < -i8 else i8), True
        body = body_pack(tick_id, token_id, REC_EVIDENCE, flags | (_CLAMPED if clamped else 0),
                         p, mk, ix, oi, fh, l0, l1, l2, l3, ms, mv, oc, ob)
        out.append(body)
        out.append(crc(body))
    return joined(len(frames)).pack(*out)


@attrs.frozen(kw_only=True, slots=True)
class EvidenceRecord:
    """Decoded evidence record: integers exactly as stored, plus views in trader units."""

    tick_id: int
    token_id: int
    flags: int
    price: int
    mark_vs_price: int
    index_vs_price: int
    open_interest: int
    funding_per_hour: int
    liq_long_tick: int
    liq_short_tick: int
    liq_long_window: int
    liq_short_window: int
    move_sigma: int
    move: int
    oi_change: int
    #: OI vs its long norm in whole percent (0 in records written before this field).
    oi_build: int = 0

    def to_bytes(self) -> bytes:
        body = EVIDENCE_BODY.pack(
            self.tick_id, self.token_id, REC_EVIDENCE, self.flags, self.price,
            self.mark_vs_price, self.index_vs_price, self.open_interest, self.funding_per_hour,
            self.liq_long_tick, self.liq_short_tick, self.liq_long_window,
            self.liq_short_window, self.move_sigma, self.move, self.oi_change, self.oi_build)
        return body + crc32c(body).to_bytes(4, "little")

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, *, check: bool = True) -> EvidenceRecord:
        """Decode 64 bytes; `ChecksumError` on a CRC mismatch, ValueError on a bad shape."""
        if len(data) != RECORD_SIZE:
            raise ValueError(f"an evidence record is {RECORD_SIZE} bytes, got {len(data)}")
        f = EVIDENCE_FULL.unpack(data)
        if check:
            got = crc32c(bytes(data[:60]))
            if got != f[-1]:
                raise ChecksumError(f"evidence crc32c mismatch: stored {f[-1]:#010x}, "
                                    f"computed {got:#010x}")
        if f[2] != REC_EVIDENCE:
            raise ValueError(f"not an evidence record: rec_type {f[2]}")
        return cls(tick_id=f[0], token_id=f[1], flags=f[3], price=f[4], mark_vs_price=f[5],
                   index_vs_price=f[6], open_interest=f[7], funding_per_hour=f[8],
                   liq_long_tick=f[9], liq_short_tick=f[10], liq_long_window=f[11],
                   liq_short_window=f[12], move_sigma=f[13], move=f[14], oi_change=f[15],
                   oi_build=f[16])

    # Views in trader units (None where the flags say the tick did not know) ---------------
    def has(self, flag: EvidenceFlag) -> bool:
        return bool(self.flags & flag)

    @property
    def price_value(self) -> float | None:
        return None if self.has(EvidenceFlag.NO_PRICE) else self.price / PRICE_SCALE

    @property
    def mark_value(self) -> float | None:
        if self.has(EvidenceFlag.NO_MARK) or self.has(EvidenceFlag.NO_PRICE):
            return None
        return self.price / PRICE_SCALE * (1.0 + self.mark_vs_price / REL_SCALE)

    @property
    def index_value(self) -> float | None:
        if self.has(EvidenceFlag.NO_MARK) or self.has(EvidenceFlag.NO_PRICE):
            return None
        return self.price / PRICE_SCALE * (1.0 + self.index_vs_price / REL_SCALE)

    @property
    def oi_value(self) -> float | None:
        return None if self.has(EvidenceFlag.NO_OI) else self.open_interest / OI_SCALE

    @property
    def oi_change_pct(self) -> float | None:
        return None if self.has(EvidenceFlag.NO_OI) else self.oi_change / FRACTION_SCALE * 100

    @property
    def oi_build_pct(self) -> float | None:
        """OI vs its long (24-h) norm, in percent: the stock of leverage FRAGILE reads."""
        return None if self.has(EvidenceFlag.NO_OI) else float(self.oi_build)

    @property
    def funding_per_hour_value(self) -> float | None:
        if self.has(EvidenceFlag.NO_MARK):
            return None
        return self.funding_per_hour / FUNDING_HOUR_SCALE

    @property
    def move_pct(self) -> float | None:
        return None if self.has(EvidenceFlag.NO_PRICE) else self.move / FRACTION_SCALE * 100

    @property
    def move_sigma_value(self) -> float | None:
        if self.has(EvidenceFlag.NO_PRICE) or self.has(EvidenceFlag.NO_SIGMA):
            return None
        return self.move_sigma / SIGMA_SCALE


@attrs.frozen(kw_only=True, slots=True)
class EvidenceWindows:
    """The windows (seconds) the evidence values are measured over, from the config."""

    move_s: float
    oi_change_s: float
    liquidation_s: float
    #: The long OI norm `oi_build` is measured against (24 h by default).
    oi_norm_s: float = 86_400.0

    @classmethod
    def from_config(cls, cfg: Config) -> EvidenceWindows:
        f = cfg.features
        sec = TICK_MS / 1000
        return cls(move_s=f.move_window_ticks * sec, oi_change_s=f.oi_fast_window_ticks * sec,
                   liquidation_s=f.liq_window_ticks * sec,
                   oi_norm_s=f.oi_slow_window_ticks * sec)


def iter_evidence(data: bytes | memoryview) -> list[EvidenceRecord]:
    """Decode a run of evidence records (e.g. `TickRecords.evidence`)."""
    if len(data) % RECORD_SIZE:
        raise ValueError(f"evidence bytes must be a multiple of {RECORD_SIZE}, got {len(data)}")
    mv = memoryview(data)
    return [EvidenceRecord.from_bytes(mv[i:i + RECORD_SIZE])
            for i in range(0, len(data), RECORD_SIZE)]
