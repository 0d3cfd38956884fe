"""markPriceUpdate frames from the archive's 1-minute mark and index klines and its funding.

Binance's live `<sym>@markPrice@1s` frame carries the mark (`p`), the index (`i`), a funding
rate (`r`) and the next funding time (`T`). The archive has the first two as 1-minute klines
and the settled rates (with each symbol's interval) in monthly fundingRate files, so each
minute's close becomes one frame: `p` the mark close, `i` the index close, `r` the last
settled rate, `T` the next funding time stepped by the symbol's interval.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs

from engine_adapters.archive.rows import Chunk, StreamStats, chunked, csv_rows, finite_number


@attrs.frozen
class Funding:
    """Settled funding rows of one symbol: (calc_time rounded to the minute, hours, rate)."""

    rows: tuple[tuple[int, int, str], ...]

    def at(self, t: int) -> tuple[str, int] | None:
        """(last settled rate, next funding time) at `t`, None before the first row."""
        i = bisect.bisect_right(self.rows, (t, 1 << 30, "~")) - 1
        if i < 0:
            return None
        calc, hours, rate = self.rows[i]
        step = hours * 3_600_000
        nxt = calc + step
        if nxt <= t:
            nxt += ((t - nxt) // step + 1) * step
        return rate, nxt


def load_funding(files: Sequence[Path], stats: StreamStats) -> Funding:
    rows: list[tuple[int, int, str]] = []
    for path, no, (calc, hours, rate) in csv_rows("fundingRate", files, stats):
        try:
            c, h = int(calc), int(float(hours))
            finite_number(rate)
        except ValueError:
            stats.refuse(path, no, "not a fundingRate row")
            continue
        if h <= 0 or '"' in rate:
            stats.refuse(path, no, f"funding interval {hours!r} hours")
            continue
        rows.append(((c + 30_000) // 60_000 * 60_000, h, rate.strip()))
    return Funding(tuple(sorted(rows)))


def mark_price(symbol: str, mark_files: Sequence[Path], index_by_day: dict[str, Path],
               funding: Funding, lo: int, hi: int, stats: StreamStats,
               day_of: Callable[[Path], str]) -> Iterator[Chunk]:
    """markPriceUpdate frames at each minute's close: p mark close, i index close, r last
    settled funding rate ("0" before the first known one, counted), T next funding time."""
    tmpl = ('{"recv_ms":%d,"channel":"ws","raw":"{\\"stream\\":\\"' + symbol.lower()
            + '@markPrice@1s\\",\\"data\\":{\\"e\\":\\"markPriceUpdate\\",\\"E\\":%d,\\"s\\":\\"'
            + symbol + '\\",\\"p\\":\\"%s\\",\\"P\\":\\"%s\\",\\"i\\":\\"%s\\",\\"r\\":\\"%s\\",'
            '\\"T\\":%d}}"}\n')

    def render() -> Iterator[tuple[int, str]]:
        for path in mark_files:
            ipath = index_by_day.get(day_of(path))
            index: dict[str, str] = {}
            if ipath is not None:
                index = {r[0]: r[4] for _p, _n, r in csv_rows("klines", [ipath], stats)}
            for _p, no, r in csv_rows("klines", [path], stats):
                o, c = r[0], r[4]
                if not o.isdigit() or '"' in c:
                    stats.refuse(path, no, "not a kline row")
                    continue
                i = index.get(o)
                if i is None or '"' in i:
                    stats.refuse(path, no, "no index price for this minute")
                    continue
                t = int(o) + 60_000
                if not lo <= t < hi:
                    continue
                fr = funding.at(t)
                if fr is None:  # no settled rate yet: r "0", next at an 8-h boundary
                    stats.funding_unknown += 1
                    fr = ("0", (t // 28_800_000 + 1) * 28_800_000)
                stats.lines += 1
                yield t, tmpl % (t, t, c, c, i, fr[0], fr[1])

    yield from chunked(render())
