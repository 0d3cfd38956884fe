"""Archive CSV rows rendered as capture lines, per kind, in time-sorted chunks.

Each reader takes one (kind, symbol) stream's zips in date order, reads one file at a time in
blocks (memory bounded whatever the span), detects a header row (newer files) or its absence
(older ones: positional columns as in the binance-public-data README), and yields chunks
`(times, lines)`: the receive time of each line (ms) and the capture line itself, already
JSON-encoded. Rows are rendered as the Binance messages the engine parses live, so the
unchanged ingest path reads them (docs/capture-format.md, "Archive imports"):

  aggTrades   -> `<sym>@aggTrade` combined WS frame, received at transact_time
  bookTicker  -> `<sym>@bookTicker` combined WS frame, received at event_time
  metrics     -> REST `/fapi/v1/openInterest` body {"symbol","openInterest","time"} at
                 create_time; a repeated create_time is dropped (counted)
  bookDepth   -> one `depth` line per snapshot: {"channel":"depth","bands":[[pct,depth,
                 notional],...]} (no Binance WS equivalent)
  mark/index klines + fundingRate -> `<sym>@markPrice@1s` frame at each minute's close
                 (engine_adapters.archive.marks)

A row that is not what its kind should be is counted with its file and line, never written.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import orjson

from engine_adapters.archive.layout import ArchiveError

Chunk = tuple[list[int], list[str]]
BLOCK = 1 << 22

COLUMNS = {
    "aggTrades": ("agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
                  "transact_time", "is_buyer_maker"),
    "bookTicker": ("update_id", "best_bid_price", "best_bid_qty", "best_ask_price",
                   "best_ask_qty", "transaction_time", "event_time"),
    "bookDepth": ("timestamp", "percentage", "depth", "notional"),
    "metrics": ("create_time", "symbol", "sum_open_interest", "sum_open_interest_value",
                "count_toptrader_long_short_ratio", "sum_toptrader_long_short_ratio",
                "count_long_short_ratio", "sum_taker_long_short_vol_ratio"),
    "fundingRate": ("calc_time", "funding_interval_hours", "last_funding_rate"),
    "klines": ("open_time", "open", "high", "low", "close", "volume", "close_time",
               "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore"),
}
_BOOL = {"true": "true", "false": "false", "True": "true", "False": "false"}


@attrs.define
class StreamStats:
    """What one reader saw: rows read, lines written, rows refused (first few with where)."""

    rows: int = 0
    lines: int = 0
    duplicates: int = 0
    refused: int = 0
    out_of_order: int = 0
    #: markPrice minutes before the first known funding row (emitted with r "0").
    funding_unknown: int = 0
    examples: list[str] = attrs.field(factory=list)

    def refuse(self, path: Path, line_no: int, why: str) -> None:
        self.refused += 1
        if len(self.examples) < 5:
            self.examples.append(f"{path.name}: line {line_no}: {why}")


def _csv_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of the single CSV inside a zip, read block by block."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path}: not a readable zip ({exc})") from None
    with zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise ArchiveError(f"{path}: expected one CSV inside, found {names}")
        no = 0
        tail = ""
        with zf.open(names[0]) as f:
            while block := f.read(BLOCK):
                text = tail + block.decode("utf-8", errors="replace")
                parts = text.split("\n")
                tail = parts.pop()
                for line in parts:
                    no += 1
                    yield no, line.rstrip("\r")
        if tail.strip():
            yield no + 1, tail.rstrip("\r")


def _columns(kind: str, first: str, path: Path) -> tuple[tuple[int, ...], bool]:
    """Column positions for `kind` and whether `first` is a header row."""
    want = COLUMNS[kind]
    head = first[:1]
    if head.isdigit() or head == "-":
        return tuple(range(len(want))), False
    names = [c.strip().lower() for c in first.split(",")]
    try:
        return tuple(names.index(c) for c in want if c != "ignore"), True
    except ValueError:
        raise ArchiveError(f"{path}: header {first[:120]!r} lacks a column of {kind} "
                           f"({', '.join(want)})") from None


def _utc_ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp() * 1000)


def _esc(s: str) -> str:
    return s.replace('"', '\\"')


def csv_rows(kind: str, files: Sequence[Path], stats: StreamStats
          ) -> Iterator[tuple[Path, int, list[str]]]:
    for path in files:
        cols: tuple[int, ...] | None = None
        for no, line in _csv_lines(path):
            if not line:
                continue
            if cols is None:
                cols, is_header = _columns(kind, line, path)
                if is_header:
                    continue
            fields = line.split(",")
            stats.rows += 1
            try:
                yield path, no, [fields[i] for i in cols]
            except IndexError:
                stats.refuse(path, no, f"{len(fields)} columns, {kind} has {len(cols)}")


def chunked(rows: Iterator[tuple[int, str]], size: int = 8192) -> Iterator[Chunk]:
    ts: list[int] = []
    lines: list[str] = []
    for t, line in rows:
        ts.append(t)
        lines.append(line)
        if len(ts) >= size:
            yield ts, lines
            ts, lines = [], []
    if ts:
        yield ts, lines


def _blocks(path: Path) -> Iterator[tuple[int, list[str], bool]]:
    """(number of the block's first line, its complete lines, whether the block holds a
    quote or a backslash) of the CSV inside a zip."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ArchiveError(f"{path}: not a readable zip ({exc})") from None
    with zf:
        names = [n for n in zf.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise ArchiveError(f"{path}: expected one CSV inside, found {names}")
        no, tail = 1, ""
        with zf.open(names[0]) as f:
            while block := f.read(BLOCK):
                text = tail + block.decode("utf-8", errors="replace")
                if "\r" in text:
                    text = text.replace("\r", "")
                odd = '"' in text or "\\" in text
                lines = text.split("\n")
                tail = lines.pop()
                yield no, lines, odd
                no += len(lines)
        if tail.strip():
            yield no, [tail], '"' in tail or "\\" in tail


def agg_trades(symbol: str, files: Sequence[Path], lo: int, hi: int,
               stats: StreamStats) -> Iterator[Chunk]:
    """The hot path (most rows): one tight loop per block; a block with anything unusual
    (a short row, a non-integer time, a quote) is redone line by line to name the bad row."""
    tmpl = ('{"recv_ms":%s,"channel":"ws","raw":"{\\"stream\\":\\"' + symbol.lower()
            + '@aggTrade\\",\\"data\\":{\\"e\\":\\"aggTrade\\",\\"E\\":%s,\\"a\\":%s,'
            '\\"s\\":\\"' + symbol + '\\",\\"p\\":\\"%s\\",\\"q\\":\\"%s\\",\\"f\\":%s,'
            '\\"l\\":%s,\\"T\\":%s,\\"m\\":%s}}"}\n')
    bools = _BOOL
    for path in files:
        order: tuple[int, ...] | None = None
        for no, lines, odd in _blocks(path):
            if order is None:
                if not lines:
                    continue
                order, is_header = _columns("aggTrades", lines[0], path)
                if is_header:
                    lines, no = lines[1:], no + 1
            if lines and not lines[-1]:
                lines.pop()
            stats.rows += len(lines)
            ts: list[int] = []
            out: list[str] = []
            ta, oa = ts.append, out.append
            try:
                if odd or order != (0, 1, 2, 3, 4, 5, 6):
                    raise ValueError("reordered columns or a quote in the block")
                sl, su = symbol.lower(), symbol
                for line in lines:
                    a, p, q, f, la, t, m = line.split(",")
                    ta(int(t))
                    # an f-string builds in one opcode: ~1.4x faster than `tmpl % (...)`
                    oa(f'{{"recv_ms":{t},"channel":"ws","raw":"{{\\"stream\\":\\"{sl}@aggTrade'
                       f'\\",\\"data\\":{{\\"e\\":\\"aggTrade\\",\\"E\\":{t},\\"a\\":{a},'
                       f'\\"s\\":\\"{su}\\",\\"p\\":\\"{p}\\",\\"q\\":\\"{q}\\",\\"f\\":{f},'
                       f'\\"l\\":{la},\\"T\\":{t},\\"m\\":{bools[m]}}}}}"}}\n')
            except (ValueError, KeyError):
                ts, out = _agg_slow(lines, no, order, tmpl, path, stats)
            if ts and (ts[0] < lo or ts[-1] >= hi or min(ts) < lo or max(ts) >= hi):
                keep = [i for i, t in enumerate(ts) if lo <= t < hi]
                ts, out = [ts[i] for i in keep], [out[i] for i in keep]
            if ts and sorted(ts) != ts:
                stats.out_of_order += sum(1 for x, y in itertools.pairwise(ts) if y < x)
                pairs = sorted(zip(ts, out, strict=True), key=lambda z: z[0])
                ts, out = [z[0] for z in pairs], [z[1] for z in pairs]
            if ts:
                stats.lines += len(ts)
                yield ts, out


def _agg_slow(lines: Sequence[str], first_no: int, order: tuple[int, ...], tmpl: str,
              path: Path, stats: StreamStats) -> tuple[list[int], list[str]]:
    ts: list[int] = []
    out: list[str] = []
    for k, line in enumerate(lines):
        fields = line.split(",")
        try:
            a, p, q, f, la, t, m = (fields[i] for i in order)
        except (IndexError, ValueError):
            if line.strip():
                stats.refuse(path, first_no + k, f"{len(fields)} columns, aggTrades has 7")
            continue
        if not (a.isdigit() and f.isdigit() and la.isdigit() and t.isdigit()) \
                or '"' in line or "\\" in line or m not in _BOOL:
            stats.refuse(path, first_no + k, "not an aggTrades row")
            continue
        ts.append(int(t))
        out.append(tmpl % (t, t, a, p, q, f, la, t, _BOOL[m]))
    return ts, out


def book_ticker(symbol: str, files: Sequence[Path], lo: int, hi: int,
                stats: StreamStats) -> Iterator[Chunk]:
    tmpl = ('{"recv_ms":%s,"channel":"ws","raw":"{\\"stream\\":\\"' + symbol.lower()
            + '@bookTicker\\",\\"data\\":{\\"e\\":\\"bookTicker\\",\\"u\\":%s,\\"s\\":\\"'
            + symbol + '\\",\\"b\\":\\"%s\\",\\"B\\":\\"%s\\",\\"a\\":\\"%s\\",\\"A\\":\\"%s\\",'
            '\\"T\\":%s,\\"E\\":%s}}"}\n')

    def render() -> Iterator[tuple[int, str]]:
        for path, no, (u, b, bq, a, aq, t, e) in csv_rows("bookTicker", files, stats):
            if not (u.isdigit() and t.isdigit() and e.isdigit()) \
                    or any('"' in v or "\\" in v for v in (b, bq, a, aq)):
                stats.refuse(path, no, "not a bookTicker row")
                continue
            ei = int(e)
            if lo <= ei < hi:
                stats.lines += 1
                yield ei, tmpl % (e, u, b, bq, a, aq, t, e)

    yield from chunked(render())


def finite_number(s: str) -> float:
    v = float(s)
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {s!r}")
    return v


def metrics(symbol: str, files: Sequence[Path], lo: int, hi: int,
            stats: StreamStats) -> Iterator[Chunk]:
    tmpl = ('{"recv_ms":%d,"channel":"rest","path":"/fapi/v1/openInterest","query":"symbol='
            + symbol + '","status":200,"raw":"{\\"symbol\\":\\"' + symbol
            + '\\",\\"openInterest\\":\\"%s\\",\\"time\\":%d}"}\n')

    def render() -> Iterator[tuple[int, str]]:
        last = -1
        for path, no, row in csv_rows("metrics", files, stats):
            try:
                t = _utc_ms(row[0])
                finite_number(row[2])
            except ValueError as exc:
                stats.refuse(path, no, f"metrics: {exc}")
                continue
            if t == last:
                stats.duplicates += 1  # Binance files repeat some create_time rows
                continue
            last = t
            if lo <= t < hi:
                stats.lines += 1
                yield t, tmpl % (t, _esc(row[2]), t)

    yield from chunked(render())


def book_depth(symbol: str, files: Sequence[Path], lo: int, hi: int,
               stats: StreamStats) -> Iterator[Chunk]:
    def line(t: int, bands: list[list[float]]) -> str:
        bands.sort()
        doc = {"recv_ms": t, "channel": "depth", "symbol": symbol,
               "source": "archive.bookDepth", "bands": bands}
        return orjson.dumps(doc).decode() + "\n"

    def render() -> Iterator[tuple[int, str]]:
        cur_text, cur_t = "", 0
        bands: list[list[float]] = []
        for path, no, (stamp, pct, depth, notional) in csv_rows("bookDepth", files, stats):
            if stamp != cur_text:
                if bands and lo <= cur_t < hi:
                    stats.lines += 1
                    yield cur_t, line(cur_t, bands)
                try:
                    cur_t = _utc_ms(stamp)
                except ValueError:
                    stats.refuse(path, no, f"bookDepth: bad timestamp {stamp[:40]!r}")
                    cur_text, bands = "", []
                    continue
                cur_text, bands = stamp, []
            try:
                bands.append([finite_number(pct), finite_number(depth), finite_number(notional)])
            except ValueError as exc:
                stats.refuse(path, no, f"bookDepth: {exc}")
        if bands and lo <= cur_t < hi:
            stats.lines += 1
            yield cur_t, line(cur_t, bands)

    yield from chunked(render())
