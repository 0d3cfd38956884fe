"""The Binance public-data archive layout: kinds, file paths, dates and checksum files.

Paths (binance/binance-public-data README; fixtures/binance-archive/README.md):

    data/futures/um/daily/{kind}/{SYMBOL}/{SYMBOL}-{kind}-{YYYY-MM-DD}.zip
    data/futures/um/daily/{klinekind}/{SYMBOL}/1m/{SYMBOL}-1m-{YYYY-MM-DD}.zip
    data/futures/um/monthly/fundingRate/{SYMBOL}/{SYMBOL}-fundingRate-{YYYY-MM}.zip

each with a `<name>.CHECKSUM` beside it holding `<sha256 hex>  <name>`. A local archive
directory mirrors the same relative paths, so `import` reads what `fetch` wrote (or a tree
copied from anywhere else).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

DEFAULT_BASE_URL = "https://data.binance.vision"
#: Every kind `fetch` knows, in the order of the issue (the default of --kinds).
KINDS = ("aggTrades", "bookTicker", "bookDepth", "metrics", "fundingRate", "markPriceKlines",
         "indexPriceKlines", "premiumIndexKlines")
KLINE_KINDS = frozenset({"markPriceKlines", "indexPriceKlines", "premiumIndexKlines"})
MONTHLY_KINDS = frozenset({"fundingRate"})
KLINE_INTERVAL = "1m"
_SHA256 = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


class ArchiveError(Exception):
    """A problem with an archive file or tree; the message names the file."""


@attrs.frozen(kw_only=True, slots=True)
class ArchiveFile:
    """One archive zip: its kind, symbol, period ("YYYY-MM-DD" or "YYYY-MM") and path."""

    kind: str
    symbol: str
    period: str

    @property
    def rel_path(self) -> str:
        if self.kind in MONTHLY_KINDS:
            return (f"data/futures/um/monthly/{self.kind}/{self.symbol}/"
                    f"{self.symbol}-{self.kind}-{self.period}.zip")
        if self.kind in KLINE_KINDS:
            return (f"data/futures/um/daily/{self.kind}/{self.symbol}/{KLINE_INTERVAL}/"
                    f"{self.symbol}-{KLINE_INTERVAL}-{self.period}.zip")
        return (f"data/futures/um/daily/{self.kind}/{self.symbol}/"
                f"{self.symbol}-{self.kind}-{self.period}.zip")

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[1]

    def local(self, root: Path) -> Path:
        return root / self.rel_path


def parse_date(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{what} must be a date like 2024-08-05, got {text!r}") from None


def parse_kinds(text: str | None) -> tuple[str, ...]:
    if not text:
        return KINDS
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"--kinds: unknown kind(s) {', '.join(bad) or '(none)'}; "
                         f"known: {','.join(KINDS)}")
    return kinds


def days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Every day from start to end, both included."""
    d = start
    while d <= end:
        yield d
        d += dt.timedelta(days=1)


def plan(symbols: Sequence[str], kinds: Sequence[str], start: dt.date,
         end: dt.date) -> list[ArchiveFile]:
    """The files covering [start, end]: daily kinds per day, monthly kinds per month touched."""
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")
    out: list[ArchiveFile] = []
    months = sorted({f"{d.year:04d}-{d.month:02d}" for d in days(start, end)})
    for sym in symbols:
        for kind in kinds:
            periods = months if kind in MONTHLY_KINDS else [d.isoformat()
                                                             for d in days(start, end)]
            out += [ArchiveFile(kind=kind, symbol=sym, period=p) for p in periods]
    return out


def checksum_text(data: bytes, name: str) -> str:
    """The `.CHECKSUM` body for `data` saved as `name` (as Binance writes it)."""
    return f"{hashlib.sha256(data).hexdigest()}  {name}\n"


def parse_checksum(text: str, where: str) -> str:
    """The sha256 hex digest of a `.CHECKSUM` body; ArchiveError if it is not one."""
    m = _SHA256.match(text.strip())
    if not m:
        raise ArchiveError(f"{where}: not a checksum file (want '<sha256>  <name>'), "
                           f"got {text[:80]!r}")
    return m.group(1).lower()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def scan_tree(root: Path) -> list[ArchiveFile]:
    """Every archive zip found under `root` in the layout above (other files ignored)."""
    out: list[ArchiveFile] = []
    base = root / "data" / "futures" / "um"
    for kind in KINDS:
        sub = base / ("monthly" if kind in MONTHLY_KINDS else "daily") / kind
        if not sub.is_dir():
            continue
        for sym_dir in sorted(p for p in sub.iterdir() if p.is_dir()):
            folder = sym_dir / KLINE_INTERVAL if kind in KLINE_KINDS else sym_dir
            if not folder.is_dir():
                continue
            for z in sorted(folder.glob("*.zip")):
                stem = z.name[:-4]
                prefix = (f"{sym_dir.name}-{KLINE_INTERVAL}-" if kind in KLINE_KINDS
                          else f"{sym_dir.name}-{kind}-")
                if stem.startswith(prefix):
                    out.append(ArchiveFile(kind=kind, symbol=sym_dir.name,
                                           period=stem[len(prefix):]))
    return out
