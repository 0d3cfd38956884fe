"""The 64-byte token record: the log's unit and the alert engine's only input (design note step 11).

One record per token per tick, little-endian, fixed layout (see `docs/log-format.md`):

    off size type  field
      0   8  u64   tick_id          epoch_ms // 250 of the tick's end
      8   2  u16   token_id         index into the symbol table
     10   1  u8    rec_type         1 = token record (0 is never valid)
     11   1  u8    fsm              StructuralState
     12   1  u8    tier             Tier
     13   1  u8    cluster          ClusterState (same in every record of a tick)
     14   1  u8    phase            EventPhase   (same in every record of a tick)
     15   1  u8    alerts           bit mask, bit (kind - 1) for each AlertKind raised
     16   4  u32   event_id         event epoch (same in every record of a tick)
     20   2  u16   quality          Quality flags
     22   2  u16   trigger_cost     0..10000 = 0.00..100.00
     24   2  u16   pressure         0..10000 = score 0.0000..1.0000
     26   2  u16   fragile          idem
     28   2  u16   trigger          idem
     30   2  u16   unwind           idem
     32   2  u16   density          0..10000 = 0.00..100.00
     34   2  u16   compression      idem
     36   2  u16   divergence       idem
     38   2  u16   elasticity       idem
     40   4  u32   state_age        ticks spent in the current structural state
     44   2  u16   n_events         events in this tick's batch (saturates at 65535)
     46   2  i16   liq_imbalance    -10000..10000 = (long - short) / (long + short) liquidations
     48   4  i32   oi_velocity      open-interest change vs its 1-minute norm, x 1e6
     52   4  i32   funding_rate     x 1e8
     56   2  u16   spread_bps       bid-ask spread in basis points x 100 (saturates)
     58   2  i16   mark_vs_mid_bps  (mark / mid - 1) in basis points x 100 (saturates)
     60   4  u32   crc32c           CRC-32C (Castagnoli) of bytes 0..59

The record holds only integers, so what the alert engine reads live is exactly what replay
reads from disk (SPEC section 4).
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import overload

import attrs
import google_crc32c

from engine_core.states import AlertKind, ClusterState, EventPhase, StructuralState, Tier

if google_crc32c.implementation != "c":  # pragma: no cover - depends on the installed wheel
    raise ImportError(
        "google-crc32c is using its pure-Python fallback, which is ~100x slower; "
        "reinstall it from a binary wheel (pip install --force-reinstall google-crc32c)"
    )

RECORD_SIZE = 64
#: Version of the record layout and enum numbering; bump with any change to either.
FORMAT_VERSION = 1
REC_TOKEN = 1

BODY = struct.Struct("<QHBBBBBBIHHHHHHHHHHIHhiiHh")
FULL = struct.Struct("<QHBBBBBBIHHHHHHHHHHIHhiiHhI")
assert BODY.size == 60 and FULL.size == RECORD_SIZE
#: Byte offsets of the structural state and of the alert mask in a record, from the layout:
#: after tick_id, token_id, rec_type (fsm) and after fsm, tier, cluster, phase (alerts).
FSM_AT = struct.calcsize("<QHB")
ALERTS_AT = struct.calcsize("<QHBBBBB")



#: CRC-32C (Castagnoli) of a bytes object, by the C implementation. Bound directly (no Python
#: wrapper): `step` calls it once per record.
crc32c: Callable[[bytes], int] = google_crc32c.value


@functools.lru_cache(maxsize=16)
def joined(n: int) -> struct.Struct:
    """The layout of n records given as body, checksum, body, checksum, ... (60 bytes, u32):
    `joined(n).pack(*parts)` encodes a tick in one call (profiled: a `to_bytes` per record
    and a join cost more)."""
    return struct.Struct("<" + "60sI" * n)


SCORE_SCALE = 10000  # scores 0..1 -> 0..10000
PCT_SCALE = 100  # 0..100 values -> 0..10000
OI_SCALE = 1_000_000
FUNDING_SCALE = 100_000_000
BPS_SCALE = 100

I32_MAX = 2**31 - 1
I16_MAX = 2**15 - 1
U16_MAX = 2**16 - 1


class ChecksumError(ValueError):
    """A record's stored CRC-32C does not match its bytes."""


@attrs.frozen(kw_only=True, slots=True)
class Record:
    """Decoded view of one 64-byte token record: integers exactly as stored."""

    tick_id: int
    token_id: int
    fsm: int
    tier: int
    cluster: int
    phase: int
    alerts: int
    event_id: int
    quality: int
    trigger_cost: int
    pressure: int
    fragile: int
    trigger: int
    unwind: int
    density: int
    compression: int
    divergence: int
    elasticity: int
    state_age: int
    n_events: int
    liq_imbalance: int
    oi_velocity: int
    funding_rate: int
    spread_bps: int
    mark_vs_mid_bps: int

    def to_bytes(self) -> bytes:
        """Encode to the 64-byte wire form, checksum included."""
        body = BODY.pack(
            self.tick_id, self.token_id, REC_TOKEN, self.fsm, self.tier, self.cluster,
            self.phase, self.alerts, self.event_id, self.quality, self.trigger_cost,
            self.pressure, self.fragile, self.trigger, self.unwind, self.density,
            self.compression, self.divergence, self.elasticity, self.state_age, self.n_events,
            self.liq_imbalance, self.oi_velocity, self.funding_rate, self.spread_bps,
            self.mark_vs_mid_bps,
        )
        return body + crc32c(body).to_bytes(4, "little")

    @classmethod
    def from_bytes(cls, data: bytes | memoryview, *, check: bool = True) -> Record:
        """Decode 64 bytes. Raises `ChecksumError` on a CRC mismatch, ValueError on bad shape."""
        if len(data) != RECORD_SIZE:
            raise ValueError(f"a record is {RECORD_SIZE} bytes, got {len(data)}")
        f = FULL.unpack(data)
        if check:
            got = crc32c(bytes(data[:60]))
            if got != f[-1]:
                raise ChecksumError(
                    f"record crc32c mismatch: stored {f[-1]:#010x}, computed {got:#010x}"
                )
        if f[2] != REC_TOKEN:
            raise ValueError(f"not a token record: rec_type {f[2]}")
        return cls(
            tick_id=f[0], token_id=f[1], fsm=f[3], tier=f[4], cluster=f[5], phase=f[6],
            alerts=f[7], event_id=f[8], quality=f[9], trigger_cost=f[10], pressure=f[11],
            fragile=f[12], trigger=f[13], unwind=f[14], density=f[15], compression=f[16],
            divergence=f[17], elasticity=f[18], state_age=f[19], n_events=f[20],
            liq_imbalance=f[21], oi_velocity=f[22], funding_rate=f[23], spread_bps=f[24],
            mark_vs_mid_bps=f[25],
        )

    # Convenience views for humans and notebooks -------------------------------------------
    @property
    def fsm_state(self) -> StructuralState:
        return StructuralState(self.fsm)

    @property
    def tier_state(self) -> Tier:
        return Tier(self.tier)

    @property
    def cluster_state(self) -> ClusterState:
        return ClusterState(self.cluster)

    @property
    def event_phase(self) -> EventPhase:
        return EventPhase(self.phase)

    @property
    def alert_kinds(self) -> tuple[AlertKind, ...]:
        return tuple(k for k in AlertKind if k is not AlertKind.NO_ALERT
                     and self.alerts & (1 << (int(k) - 1)))

    def as_dict(self) -> dict[str, object]:
        """Field name -> value, with enums decoded to their names (for tables and JSON)."""
        d: dict[str, object] = attrs.asdict(self)
        d["fsm"] = self.fsm_state.name
        d["tier"] = self.tier_state.name
        d["cluster"] = self.cluster_state.name
        d["phase"] = self.event_phase.name
        d["alerts"] = [k.name for k in self.alert_kinds]
        return d


# Building a frozen attrs value through its __init__ costs ~1.5x setting its slots directly;
# `step` builds one Record per token per tick, so it uses this (same idea as
# `canonical.new_canonical_event`; the field order is checked here and in the tests).
assert tuple(a.name for a in attrs.fields(Record)) == (
    "tick_id", "token_id", "fsm", "tier", "cluster", "phase",
    "alerts", "event_id", "quality", "trigger_cost", "pressure", "fragile",
    "trigger", "unwind", "density", "compression", "divergence", "elasticity",
    "state_age", "n_events", "liq_imbalance", "oi_velocity", "funding_rate", "spread_bps",
    "mark_vs_mid_bps",
)
_REC_SET = tuple(Record.__dict__[a.name].__set__ for a in attrs.fields(Record))
_new_object = object.__new__


def new_record(tick_id: int, token_id: int, fsm: int, tier: int, cluster: int, phase: int,
               alerts: int, event_id: int, quality: int, trigger_cost: int, pressure: int,
               fragile: int, trigger: int, unwind: int, density: int, compression: int,
               divergence: int, elasticity: int, state_age: int, n_events: int,
               liq_imbalance: int, oi_velocity: int, funding_rate: int, spread_bps: int,
               mark_vs_mid_bps: int) -> Record:
    """Same value as `Record(tick_id=..., ...)`, built faster (positional, in field order)."""
    (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12,
     s13, s14, s15, s16, s17, s18, s19, s20, s21, s22, s23, s24) = _REC_SET
    r: Record = _new_object(Record)
    s0(r, tick_id)
    s1(r, token_id)
    s2(r, fsm)
    s3(r, tier)
    s4(r, cluster)
    s5(r, phase)
    s6(r, alerts)
    s7(r, event_id)
    s8(r, quality)
    s9(r, trigger_cost)
    s10(r, pressure)
    s11(r, fragile)
    s12(r, trigger)
    s13(r, unwind)
    s14(r, density)
    s15(r, compression)
    s16(r, divergence)
    s17(r, elasticity)
    s18(r, state_age)
    s19(r, n_events)
    s20(r, liq_imbalance)
    s21(r, oi_velocity)
    s22(r, funding_rate)
    s23(r, spread_bps)
    s24(r, mark_vs_mid_bps)
    return r


class TickRecords(Sequence[Record]):
    """The records of one tick, in token order, with their 64-byte encodings joined in `data`.

    `step` builds only the bytes: a `Record` view is decoded from `data` when a caller asks
    for one (profiled: building a hundred views per tick that nobody reads was a twelfth of a
    quiet tick). `data == b"".join(r.to_bytes() for r in records)` always holds (tested).
    It is a read-only sequence, equal (and hashed alike) to a tuple of the same records.
    `fsm` holds each record's structural state without decoding any.

    `evidence` holds one 64-byte evidence record per token, in the same order
    (`engine_core.evidence`: prices, OI, funding per hour, liquidations, move in sigma);
    `step` always fills it; b"" only where a caller built a TickRecords without one.

    `TickRecords(None, data)` decodes lazily; `TickRecords(records, data)` keeps the given
    views (then `data` may be b"", for callers that only have the views).
    """

    __slots__ = ("_records", "data", "evidence")

    data: bytes
    evidence: bytes

    def __init__(self, records: tuple[Record, ...] | None, data: bytes,
                 evidence: bytes = b"") -> None:
        if records is None and len(data) % RECORD_SIZE:
            raise ValueError(f"records data must be whole {RECORD_SIZE}-byte records, "
                             f"got {len(data)} bytes")
        self.data = data
        self.evidence = evidence
        self._records = records

    def views(self) -> tuple[Record, ...]:
        """Every record as a `Record` (decoded once, then kept)."""
        recs = self._records
        if recs is None:
            recs = self._records = tuple(map(_view, FULL.iter_unpack(self.data)))
        return recs

    @property
    def fsm(self) -> tuple[int, ...]:
        """Each record's structural state (the `fsm` byte), in token order."""
        if self._records is not None:
            return tuple(r.fsm for r in self._records)
        return tuple(self.data[FSM_AT::RECORD_SIZE])

    def __len__(self) -> int:
        if self._records is not None:
            return len(self._records)
        return len(self.data) // RECORD_SIZE

    @overload
    def __getitem__(self, i: int) -> Record: ...
    @overload
    def __getitem__(self, i: slice) -> tuple[Record, ...]: ...

    def __getitem__(self, i: int | slice) -> Record | tuple[Record, ...]:
        if self._records is not None or isinstance(i, slice):
            return self.views()[i]
        n = len(self.data) // RECORD_SIZE
        if not -n <= i < n:
            raise IndexError(f"record index {i} out of range for a tick of {n} records")
        return _view(FULL.unpack_from(self.data, (i % n) * RECORD_SIZE))

    def __iter__(self) -> Iterator[Record]:
        return iter(self.views())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TickRecords):
            if self._records is None and other._records is None:
                return self.data == other.data
            return self.views() == other.views()
        if isinstance(other, tuple):
            return self.views() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.views())

    def __repr__(self) -> str:
        return f"TickRecords({self.views()!r})"

    def __reduce__(self) -> tuple[type[TickRecords], tuple[tuple[Record, ...] | None, bytes,
                                                          bytes]]:
        return TickRecords, (self._records if not self.data else None, self.data,
                             self.evidence)


def _view(f: tuple[int, ...]) -> Record:
    """The `Record` of one `FULL`-unpacked record (rec_type and checksum dropped)."""
    return new_record(f[0], f[1], *f[3:26])


#: Field names in layout order (the checksum excluded); used by readers and exporters.
FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Record))
