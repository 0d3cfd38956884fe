"""`archive import`: every kind and symbol of an archive tree merged into one capture.

One reader per (kind, symbol) stream reads its files one at a time in date order and yields
time-sorted chunks of capture lines (`engine_adapters.archive.rows`); a k-way merge over the
streams writes them in receive-time order. The merge pops the stream with the earliest head
and copies its lines up to the next stream's head in one slice (bisect), so the per-line cost
is the rendering, not the heap. Memory holds one chunk per stream: bounded whatever the span.
Ties (same millisecond) go in a fixed order: metrics, markPrice, bookDepth, bookTicker,
aggTrades, then by symbol.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import gzip
import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from engine_adapters.archive import marks as M
from engine_adapters.archive import rows as R
from engine_adapters.archive.layout import ArchiveError, ArchiveFile, days, scan_tree

DAY_MS = 86_400_000
#: Kinds a capture can carry, in tie order; "markPrice" joins mark/index klines and funding.
STREAM_KINDS = ("metrics", "markPrice", "bookDepth", "bookTicker", "aggTrades")
_FLUSH_BYTES = 1 << 20


@attrs.frozen(kw_only=True)
class ImportReport:
    out: Path
    symbols: tuple[str, ...]
    lines: int
    rows: int
    elapsed_s: float
    per_stream: tuple[tuple[str, str, R.StreamStats], ...]
    #: (kind, symbol, day) in the range with no file in the tree.
    missing: tuple[tuple[str, str, str], ...]

    @property
    def refused(self) -> int:
        return sum(s.refused for _k, _s, s in self.per_stream)

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out), "symbols": list(self.symbols), "lines": self.lines,
            "rows": self.rows, "elapsed_s": round(self.elapsed_s, 3),
            "rows_per_s": round(self.rows / self.elapsed_s) if self.elapsed_s > 0 else None,
            "streams": [{"kind": k, "symbol": s, "rows": st.rows, "lines": st.lines,
                         "duplicates": st.duplicates, "refused": st.refused,
                         "out_of_order": st.out_of_order,
                         "funding_unknown": st.funding_unknown, "examples": st.examples}
                        for k, s, st in self.per_stream],
            "missing": [{"kind": k, "symbol": s, "day": d} for k, s, d in self.missing],
        }


def _in_range(af: ArchiveFile, start: dt.date | None, end: dt.date | None) -> bool:
    if len(af.period) == 7:  # monthly: keep when the month overlaps the range
        y, m = int(af.period[:4]), int(af.period[5:])
        first = dt.date(y, m, 1)
        last = dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)
        return (start is None or last >= start) and (end is None or first <= end)
    d = dt.date.fromisoformat(af.period)
    return (start is None or d >= start) and (end is None or d <= end)


def _streams(root: Path, files: Sequence[ArchiveFile], symbols: Sequence[str], lo: int,
             hi: int) -> list[tuple[str, str, R.StreamStats, Iterator[R.Chunk]]]:
    by: dict[tuple[str, str], list[Path]] = {}
    for af in files:
        by.setdefault((af.kind, af.symbol), []).append(af.local(root))
    out: list[tuple[str, str, R.StreamStats, Iterator[R.Chunk]]] = []
    simple: dict[str, Callable[..., Iterator[R.Chunk]]] = {
        "metrics": R.metrics, "bookDepth": R.book_depth, "bookTicker": R.book_ticker,
        "aggTrades": R.agg_trades}
    for kind in STREAM_KINDS:
        for sym in symbols:
            st = R.StreamStats()
            if kind == "markPrice":
                marks = by.get(("markPriceKlines", sym), [])
                if not marks:
                    continue
                index = {p.name: p for p in by.get(("indexPriceKlines", sym), [])}
                funding = M.load_funding(by.get(("fundingRate", sym), []), st)
                it = M.mark_price(sym, marks, index, funding, lo, hi, st, lambda p: p.name)
            else:
                paths = by.get((kind, sym), [])
                if not paths:
                    continue
                it = simple[kind](sym, paths, lo, hi, st)
            out.append((kind, sym, st, it))
    return out


def merge_chunks(streams: Sequence[Iterator[R.Chunk]], write: Callable[[str], None]) -> int:
    """Write the lines of time-sorted chunk streams in (time, stream order); returns lines."""
    state: list[R.Chunk] = []
    pos: list[int] = []
    heap: list[tuple[int, int]] = []
    for i, it in enumerate(streams):
        first = next(it, None)
        state.append(first or ([], []))
        pos.append(0)
        if first:
            heap.append((first[0][0], i))
    heapq.heapify(heap)
    n = 0
    pending: list[str] = []
    size = 0
    bl, br = bisect.bisect_left, bisect.bisect_right
    while heap:
        _t, i = heapq.heappop(heap)
        ts, lines = state[i]
        p = pos[i]
        if heap:
            bt, bi = heap[0]
            cut = br(ts, bt, p) if i < bi else bl(ts, bt, p)
            cut = max(cut, p + 1)
        else:
            cut = len(ts)
        piece = "".join(lines[p:cut])
        pending.append(piece)
        size += len(piece)
        n += cut - p
        if size >= _FLUSH_BYTES:
            write("".join(pending))
            pending, size = [], 0
        if cut >= len(ts):
            nxt = next(streams[i], None)
            if nxt is None:
                continue
            state[i], cut = nxt, 0
        pos[i] = cut
        heapq.heappush(heap, (state[i][0][cut], i))
    if pending:
        write("".join(pending))
    return n


class _GzipThread:
    """Compresses on a second thread: zlib releases the GIL, so rendering and deflate overlap."""

    def __init__(self, path: Path, level: int) -> None:
        self._f = gzip.open(path, "wb", compresslevel=level)  # noqa: SIM115 (closed in close)
        self._q: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
        self._error: BaseException | None = None
        self._t = threading.Thread(target=self._run, name="archive-gzip", daemon=True)
        self._t.start()

    def _run(self) -> None:
        try:
            while (data := self._q.get()) is not None:
                self._f.write(data)
        except BaseException as exc:  # surfaced by write/close on the main thread
            self._error = exc
            while self._q.get() is not None:
                pass

    def write(self, text: str) -> None:
        if self._error is not None:
            raise self._error
        self._q.put(text.encode("ascii"))

    def close(self) -> None:
        self._q.put(None)
        self._t.join()
        self._f.close()
        if self._error is not None:
            raise self._error


def import_archive(root: Path, out: Path, *, symbols: Sequence[str] | None = None,
                   start: dt.date | None = None, end: dt.date | None = None,
                   compresslevel: int = 1) -> ImportReport:
    """Merge the tree under `root` into the capture `out` (gzip when it ends with .gz)."""
    t0 = time.perf_counter()
    if not root.is_dir():
        raise ArchiveError(f"archive {root} is not a directory")
    found = [af for af in scan_tree(root) if _in_range(af, start, end)]
    syms = tuple(sorted(set(symbols) if symbols else {af.symbol for af in found}))
    found = [af for af in found if af.symbol in syms]
    if not found:
        raise ArchiveError(f"{root}: no archive file for {','.join(syms) or 'any symbol'} "
                           f"in the range (layout: data/futures/um/daily/<kind>/<SYMBOL>/...)")
    daily = sorted({af.period for af in found if len(af.period) == 10})
    first = start or (dt.date.fromisoformat(daily[0]) if daily else None)
    last = end or (dt.date.fromisoformat(daily[-1]) if daily else None)
    if first is None or last is None:
        raise ArchiveError(f"{root}: only monthly files; pass --start and --end")
    lo = int(dt.datetime(first.year, first.month, first.day, tzinfo=dt.UTC).timestamp() * 1000)
    hi = int(dt.datetime(last.year, last.month, last.day, tzinfo=dt.UTC).timestamp() * 1000) \
        + DAY_MS
    have = {(af.kind, af.symbol, af.period) for af in found}
    kinds_seen = sorted({af.kind for af in found if len(af.period) == 10})
    missing = tuple((k, s, d.isoformat()) for k in kinds_seen for s in syms
                    for d in days(first, last) if (k, s, d.isoformat()) not in have)
    streams = _streams(root, sorted(found, key=lambda a: a.period), syms, lo, hi)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    sink: _GzipThread | None = None
    try:
        if out.name.endswith(".gz"):
            sink = _GzipThread(tmp, compresslevel)
            lines = merge_chunks([it for _k, _s, _st, it in streams], sink.write)
            sink.close()
        else:
            with open(tmp, "w", encoding="ascii", newline="") as f:
                def put(text: str) -> None:
                    f.write(text)

                lines = merge_chunks([it for _k, _s, _st, it in streams], put)
    except BaseException:
        if sink is not None:
            with contextlib.suppress(Exception):  # the original error matters more
                sink.close()
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(out)
    per = tuple((k, s, st) for k, s, st, _it in streams)
    return ImportReport(out=out, symbols=syms, lines=lines, rows=sum(st.rows for *_x, st in per),
                        elapsed_s=time.perf_counter() - t0, per_stream=per, missing=missing)
