"""Segment header codec shared by the output log and the input journal, and segment naming.

A header is a 64-byte preamble followed by four length-prefixed UTF-8 strings and zero
padding, closed by its own CRC-32C in the last 4 bytes; its length is a multiple of 64 so the
records behind it stay 64-byte aligned and can be viewed as one numpy array (research note
4.3). Layout (little-endian), documented byte by byte in docs/log-format.md:

    off size  field
      0   8   magic            b"\\x89CXLOG\\r\\n" (log) or b"\\x89CXJRN\\r\\n" (journal)
      8   2   format_version   engine_core.record.FORMAT_VERSION
     10   2   record_size      64 for the log, 0 for the journal (variable-length frames)
     12   4   header_len       total header bytes, CRC included, a multiple of 64
     16   8   first_tick       tick id of the segment's first tick
     24   4   segment_no       0, 1, 2, ... in file order
     28   2   n_tokens         size of the symbol table
     30   2   checksum_alg     1 = CRC-32C (Castagnoli)
     32  16   config_digest    engine_core.config.Config.digest()
     48  16   prev_chain       chain value of the previous segment's last tick (zeros if none)
     64   -   4 x (u32 length + UTF-8 bytes): engine version, config canonical JSON,
              symbol table (names joined by "\\n"), writer parameters JSON
      -   -   zero padding up to header_len - 4
  hl-4    4   crc32c of bytes 0 .. header_len - 4

Like the records, a header holds no wall-clock time, host name or random salt: replaying the
same journal with the same engine must give the same bytes (research note 4.3). The magic
starts with 0x89 and holds "\\r\\n" (the PNG trick) so text-mode transfers are caught.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from pathlib import Path

import attrs

from engine_core.record import FORMAT_VERSION, crc32c

LOG_MAGIC = b"\x89CXLOG\r\n"
JOURNAL_MAGIC = b"\x89CXJRN\r\n"
LOG_SUFFIX = ".cxlog"
JOURNAL_SUFFIX = ".cxjrn"
ZSTD_SUFFIX = ".zst"
CHECKSUM_CRC32C = 1
PREAMBLE = struct.Struct("<8sHHIQIHH16s16s")
assert PREAMBLE.size == 64
_LEN = struct.Struct("<I")
#: Headers larger than this are refused before any allocation (a corrupt length field).
MAX_HEADER = 64 * 1024 * 1024
ZERO_CHAIN = bytes(16)


class StorageError(ValueError):
    """A log or journal file is unreadable or corrupt; says which file, where, and what."""

    def __init__(self, path: Path | str, offset: int, what: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.what = what
        super().__init__(f"{path}: byte {offset}: {what}")


@attrs.frozen(kw_only=True, slots=True)
class SegmentHeader:
    """Decoded header of one log or journal segment."""

    magic: bytes
    format_version: int
    record_size: int
    header_len: int
    first_tick: int
    segment_no: int
    checksum_alg: int
    config_digest: bytes
    prev_chain: bytes
    engine_version: str
    config_json: str
    symbols: tuple[str, ...]
    params_json: str

    @property
    def n_tokens(self) -> int:
        return len(self.symbols)


def encode_header(h: SegmentHeader) -> bytes:
    """Encode, computing header_len (the given one is ignored) and the CRC."""
    tail = b"".join(
        _LEN.pack(len(b)) + b
        for b in (h.engine_version.encode(), h.config_json.encode(),
                  "\n".join(h.symbols).encode(), h.params_json.encode())
    )
    hl = -(-(64 + len(tail) + 4) // 64) * 64
    pre = PREAMBLE.pack(h.magic, h.format_version, h.record_size, hl, h.first_tick,
                        h.segment_no, len(h.symbols), h.checksum_alg, h.config_digest,
                        h.prev_chain)
    body = pre + tail
    body += bytes(hl - 4 - len(body))
    return body + crc32c(body).to_bytes(4, "little")


def header_length(data: bytes, path: Path | str, magic: bytes) -> int:
    """Check magic, version and length field of a header prefix (>= 16 bytes); return its length."""
    if len(data) < 16:
        raise StorageError(path, len(data), f"file too short for a header ({len(data)} bytes)")
    if data[:8] != magic:
        raise StorageError(path, 0, f"bad magic {data[:8]!r}, expected {magic!r}")
    version, _rs, hl = struct.unpack_from("<HHI", data, 8)
    hl = int(hl)
    if version != FORMAT_VERSION:
        raise StorageError(path, 8, f"format version {version}, this engine reads "
                                    f"{FORMAT_VERSION}; use a matching engine release")
    if hl < 128 or hl % 64 or hl > MAX_HEADER:
        raise StorageError(path, 12, f"invalid header length {hl}")
    return hl


def decode_header(data: bytes, path: Path | str, magic: bytes) -> SegmentHeader:
    """Decode and check a header from the start of `data` (which may hold more bytes)."""
    hl = header_length(data, path, magic)
    if len(data) < hl:
        raise StorageError(path, 12, f"header_len {hl} runs past the end of the file at "
                                     f"{len(data)} (a torn header or a corrupt length)")
    stored = int.from_bytes(data[hl - 4:hl], "little")
    got = crc32c(data[:hl - 4])
    if stored != got:
        raise StorageError(path, hl - 4, f"header crc32c mismatch: stored {stored:#010x}, "
                                         f"computed {got:#010x}")
    (mg, version, rs, _hl, first, seg, n_tok, alg, digest, prev) = PREAMBLE.unpack_from(data)
    if alg != CHECKSUM_CRC32C:
        raise StorageError(path, 30, f"unknown checksum algorithm id {alg}")
    strings: list[str] = []
    off = 64
    for name in ("engine version", "config", "symbol table", "writer parameters"):
        if off + 4 > hl - 4:
            raise StorageError(path, off, f"header field {name} runs past the header")
        (n,) = _LEN.unpack_from(data, off)
        if off + 4 + n > hl - 4:
            raise StorageError(path, off, f"header field {name} ({n} bytes) runs past the header")
        try:
            strings.append(data[off + 4:off + 4 + n].decode())
        except UnicodeDecodeError as exc:
            raise StorageError(path, off + 4, f"header field {name} is not UTF-8: {exc}") from None
        off += 4 + n
    if any(data[off:hl - 4]):
        raise StorageError(path, off, "header padding is not zero")
    symbols = tuple(strings[2].split("\n")) if strings[2] else ()
    if len(symbols) != n_tok:
        raise StorageError(path, 28, f"n_tokens {n_tok} but the symbol table has {len(symbols)}")
    return SegmentHeader(
        magic=mg, format_version=version, record_size=rs, header_len=hl, first_tick=first,
        segment_no=seg, checksum_alg=alg, config_digest=digest, prev_chain=prev,
        engine_version=strings[0], config_json=strings[1], symbols=symbols,
        params_json=strings[3])


def segment_name(segment_no: int, first_tick: int, suffix: str) -> str:
    """`{segment_no:06d}-{first_tick:020d}{suffix}`: names sort in write order."""
    return f"{segment_no:06d}-{first_tick:020d}{suffix}"


def list_segments(folder: Path, suffix: str) -> list[Path]:
    """Segment files of a folder in order (plain and zstd-compressed forms)."""
    if not folder.is_dir():
        return []
    out = [p for p in folder.iterdir()
           if p.name.endswith(suffix) or p.name.endswith(suffix + ZSTD_SUFFIX)]
    return sorted(out, key=lambda p: p.name)


def check_compatible(h: SegmentHeader, path: Path | str, *, config_digest: bytes,
                     symbols: Sequence[str], allow_config_change: bool) -> None:
    """Refuse to continue a data dir written with another config or symbol table."""
    if tuple(symbols) != h.symbols:
        raise StorageError(path, 64, f"symbol table differs from this run's "
                                     f"({len(h.symbols)} vs {len(symbols)} symbols): "
                                     f"use a new data dir for a new universe")
    if h.config_digest != config_digest and not allow_config_change:
        raise StorageError(path, 32, f"config digest {h.config_digest.hex()} differs from "
                                     f"this run's {config_digest.hex()}; pass the original "
                                     f"config, or allow the change explicitly "
                                     f"(live: --allow-config-change)")


def truncate_to(path: Path, size: int) -> None:
    """Cut a file back to `size` bytes and make the cut durable (torn-tail recovery)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """fsync a directory so a new file's entry survives power loss (fsync(2) notes)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
