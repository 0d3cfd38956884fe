"""The tick-commit record, the per-tick hash chain and the alert digest of the output log.

Each tick is written as one block: its n_tokens 64-byte token records in token order, closed
by a 64-byte commit record (research note 4.2). A tick counts as written only once its
commit is on disk, so a crash mid-tick leaves an uncommitted tail that recovery drops.

Commit record (little-endian):

    off size  field
      0   8   tick_id      u64, same as the tick's token records
      8   2   n_tokens     u16, token records in the block
     10   1   rec_type     2 (token records have 1 at the same offset)
     11   1   cluster      ClusterState of the tick
     12   1   phase        EventPhase of the tick
     13   1   flags        bit 0 SESSION_START, bit 1 CATCH_UP (copied from the records)
     14   2   n_alerts     u16, alerts raised at this tick
     16   4   event_id     u32
     20   4   reserved     zero
     24  16   chain        BLAKE2b-128 (person "cexlog-chain-v1") of
                           prev_chain || token records || commit bytes 0..23 || alert_digest
     40  16   alert_digest BLAKE2b-128 (person "cexlog-alert-v1") of (kind u8, token_id i32)
                           per alert, in the alert engine's order
     56   4   reserved     zero
     60   4   crc32c       of bytes 0..59

Departure from the research note, on purpose: the chain also covers `alert_digest`, so an
edited digest with a recomputed CRC breaks the chain too; and the chain of a segment's first
tick starts from `segment_seed` (a hash of the segment header), so an edited header with a
recomputed header CRC is caught as well. The header's `prev_chain` links the segments.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import attrs

from engine_core.alerts import Alert
from engine_core.record import RECORD_SIZE, crc32c
from engine_core.states import Quality

REC_COMMIT = 2
COMMIT_HEAD = struct.Struct("<QHBBBBHII")
COMMIT = struct.Struct("<QHBBBBHII16s16sII")
assert COMMIT_HEAD.size == 24 and COMMIT.size == RECORD_SIZE
_ALERT = struct.Struct("<Bi")
CHAIN_PERSON = b"cexlog-chain-v1"
ALERT_PERSON = b"cexlog-alert-v1"
SEED_PERSON = b"cexlog-seed-v1"
FLAG_SESSION_START = 1
FLAG_CATCH_UP = 2
_SESSION = int(Quality.SESSION_START)
_CATCH_UP = int(Quality.CATCH_UP)


@attrs.frozen(kw_only=True, slots=True)
class Commit:
    """Decoded tick-commit record."""

    tick_id: int
    n_tokens: int
    cluster: int
    phase: int
    flags: int
    n_alerts: int
    event_id: int
    chain: bytes
    alert_digest: bytes

    @property
    def session_start(self) -> bool:
        return bool(self.flags & FLAG_SESSION_START)


def segment_seed(header_bytes: bytes) -> bytes:
    """Chain value a segment's first tick builds on: a hash of the whole header."""
    return hashlib.blake2b(header_bytes, digest_size=16, person=SEED_PERSON).digest()


def alert_digest(alerts: Sequence[Alert]) -> bytes:
    """Digest of a tick's alerts: kind and token id of each, in order (messages excluded)."""
    h = hashlib.blake2b(digest_size=16, person=ALERT_PERSON)
    for a in alerts:
        h.update(_ALERT.pack(int(a.kind), a.token_id))
    return h.digest()


def flags_of(quality: int) -> int:
    """Commit flags from the first record's quality bits."""
    return (FLAG_SESSION_START if quality & _SESSION else 0) | (
        FLAG_CATCH_UP if quality & _CATCH_UP else 0)


def chain_next(prev: bytes, token_bytes: bytes | memoryview, head: bytes | memoryview,
               digest: bytes | memoryview) -> bytes:
    """Chain value of a tick from the previous one, its token records and its commit head."""
    h = hashlib.blake2b(prev, digest_size=16, person=CHAIN_PERSON)
    h.update(token_bytes)
    h.update(head)
    h.update(digest)
    return h.digest()


def encode_commit(*, tick_id: int, n_tokens: int, cluster: int, phase: int, flags: int,
                  n_alerts: int, event_id: int, prev_chain: bytes, token_bytes: bytes,
                  digest: bytes) -> tuple[bytes, bytes]:
    """The commit record of a tick and its chain value."""
    head = COMMIT_HEAD.pack(tick_id, n_tokens, REC_COMMIT, cluster, phase, flags, n_alerts,
                            event_id, 0)
    chain = chain_next(prev_chain, token_bytes, head, digest)
    body = head + chain + digest + bytes(4)
    return body + crc32c(body).to_bytes(4, "little"), chain


def decode_commit(data: bytes | memoryview) -> Commit:
    """Decode a commit record whose CRC and rec_type were already checked."""
    (tick, n, _rt, cluster, phase, flags, n_alerts, event_id, _r0, chain, digest, _r1,
     _crc) = COMMIT.unpack(data)
    return Commit(tick_id=tick, n_tokens=n, cluster=cluster, phase=phase, flags=flags,
                  n_alerts=n_alerts, event_id=event_id, chain=chain, alert_digest=digest)
