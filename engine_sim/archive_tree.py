"""Synthetic Binance archive trees in the real layout (zips of CSVs with .CHECKSUM files).

A small market per symbol and day (a random walk with trades every second, book depth bands
every 30 s, open interest every 5 min, 1-minute mark/index/premium klines, 8-hourly funding),
optionally with a long flush at a chosen minute (price -6 % in 10 min on heavy taker selling,
volume x8, OI -6 %), written as Binance writes it: column headers as in the
binance-public-data README, each CSV zipped alone, a `<zip>.CHECKSUM` beside it. Faults for
tests: files without a header row, days missing for one kind, a wrong checksum, repeated
metrics rows. `ArchiveServer` (engine_sim.archive_server) serves the tree.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import random
import zipfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import attrs

from engine_adapters.archive.layout import KINDS, ArchiveFile, checksum_text

HEADERS = {
    "aggTrades": "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
                 "is_buyer_maker",
    "bookTicker": "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,"
                  "transaction_time,event_time",
    "bookDepth": "timestamp,percentage,depth,notional",
    "metrics": "create_time,symbol,sum_open_interest,sum_open_interest_value,"
               "count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,"
               "count_long_short_ratio,sum_taker_long_short_vol_ratio",
    "fundingRate": "calc_time,funding_interval_hours,last_funding_rate",
    "klines": "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
              "taker_buy_volume,taker_buy_quote_volume,ignore",
}
FLUSH_MINUTES = 10
FLUSH_DROP = 0.06


@attrs.frozen(kw_only=True)
class Flush:
    """A flush of one symbol on one day: starts at `minute` after 00:00 UTC."""

    minute: int
    direction: str = "long_flush"


@attrs.frozen(kw_only=True)
class TreeInfo:
    files: tuple[ArchiveFile, ...]
    rows: Mapping[str, int]


def _ms(d: dt.date) -> int:
    return int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() * 1000)


def _stamp(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _day_csvs(symbol: str, day: dt.date, hours: float, rng: random.Random, price: float,
              oi: float, flush: Flush | None, trades_per_s: int,
              dup_metrics: bool) -> tuple[dict[str, list[str]], float, float]:
    t0 = _ms(day)
    out: dict[str, list[str]] = {k: [] for k in ("aggTrades", "bookTicker", "bookDepth",
                                                  "metrics", "mark", "index", "premium")}
    agg_id = int(t0 // 1000) * 10
    sign = -1.0 if flush is None or flush.direction == "long_flush" else 1.0
    minute_rows: list[float] = []
    for s in range(int(hours * 3600)):
        ts = t0 + s * 1000
        minute = s // 60
        in_flush = flush is not None and flush.minute <= minute < flush.minute + FLUSH_MINUTES
        drift = sign * math.log(1 + FLUSH_DROP) / (FLUSH_MINUTES * 60) if in_flush else 0.0
        price *= math.exp(drift + rng.gauss(0.0, 0.00008))
        n = trades_per_s * (8 if in_flush else 1)
        sell_p = (0.85 if sign < 0 else 0.15) if in_flush else 0.5
        for k in range(n):
            qty = round(rng.lognormvariate(-3.0, 1.0), 3) or 0.001
            maker = "true" if rng.random() < sell_p else "false"
            p = round(price * (1 + rng.gauss(0, 0.00002)), 2)
            out["aggTrades"].append(f"{agg_id},{p:.2f},{qty:.3f},{agg_id * 3},{agg_id * 3 + 2},"
                                    f"{ts + k * (900 // max(n, 1))},{maker}")
            agg_id += 1
        if in_flush:
            oi *= (1 - 0.06) ** (1 / (FLUSH_MINUTES * 60))
        if s % 5 == 0:
            bid = round(price - 0.05, 2)
            out["bookTicker"].append(f"{ts * 10},{bid:.2f},{rng.uniform(1, 9):.3f},"
                                     f"{bid + 0.1:.2f},{rng.uniform(1, 9):.3f},{ts - 2},{ts}")
        if s % 30 == 0:
            for pct in (-5, -4, -3, -2, -1, 1, 2, 3, 4, 5):
                depth = abs(pct) * 400 * (0.3 if in_flush and pct < 0 else 1.0)
                out["bookDepth"].append(f"{_stamp(ts)},{pct:.2f},{depth:.3f},"
                                        f"{depth * price:.2f}")
        if s % 300 == 0:
            oi *= 1 + rng.gauss(0, 0.001)
            row = (f"{_stamp(ts)},{symbol},{oi:.3f},{oi * price:.8f},1.2,1.1,1.3,"
                   f"{rng.uniform(0.8, 1.2):.4f}")
            out["metrics"].append(row)
            if dup_metrics and s % 3600 == 0:
                out["metrics"].append(row)  # Binance files sometimes repeat a timestamp
        minute_rows.append(price)
        if s % 60 == 59:
            m0 = ts - 59_000
            o, c = minute_rows[0], minute_rows[-1]
            hi, lo = max(minute_rows), min(minute_rows)
            idx = c * (1 - 0.0001)
            for kind, val in (("mark", (o, hi, lo, c)), ("index", (o * 0.9999, hi * 0.9999,
                                                                   lo * 0.9999, idx)),
                              ("premium", (0.0001, 0.0002, 0.0, (c - idx) / idx))):
                vals = ",".join(f"{v:.8f}" for v in val)
                out[kind].append(f"{m0},{vals},0,{m0 + 59_999},0,60,0,0,0")
            minute_rows = []
    return out, price, oi


def _write_zip(root: Path, af: ArchiveFile, header: str | None, rows: Sequence[str],
               bad_checksum: bool) -> None:
    path = af.local(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header else []) + list(rows)) + "\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(af.name[:-4] + ".csv", text)
    data = buf.getvalue()
    path.write_bytes(data)
    body = checksum_text(data + (b"x" if bad_checksum else b""), af.name)
    path.with_name(af.name + ".CHECKSUM").write_text(body)


def build_tree(root: Path, *, symbols: Sequence[str], dates: Sequence[dt.date],
               hours: float = 3.0, seed: int = 1, trades_per_s: int = 1,
               flushes: Mapping[tuple[str, dt.date], Flush] | None = None,
               kinds: Sequence[str] = KINDS, headerless: Collection[str] = (),
               missing: Collection[tuple[str, str, dt.date]] = (),
               bad_checksum: Collection[tuple[str, str, str]] = (),
               dup_metrics: bool = True) -> TreeInfo:
    """Write a tree under `root`; returns the files written and the data rows per kind.

    `missing` holds (kind, symbol, date) not written; `bad_checksum` holds (kind, symbol,
    period) whose .CHECKSUM does not match; `headerless` kinds get no header row.
    """
    rng = random.Random(seed)
    files: list[ArchiveFile] = []
    rows: dict[str, int] = {}
    kline_of = {"markPriceKlines": "mark", "indexPriceKlines": "index",
                "premiumIndexKlines": "premium"}
    for sym in symbols:
        price, oi = 100.0 * (1 + symbols.index(sym)), 50_000.0
        funding: dict[str, list[str]] = {}
        for day in dates:
            flush = (flushes or {}).get((sym, day))
            csvs, price, oi = _day_csvs(sym, day, hours, rng, price, oi, flush, trades_per_s,
                                        dup_metrics)
            month = f"{day.year:04d}-{day.month:02d}"
            for h in (0, 8, 16):
                funding.setdefault(month, []).append(
                    f"{_ms(day) + h * 3_600_000 + 7},8,{rng.uniform(0.00005, 0.0002):.8f}")
            for kind in kinds:
                if kind == "fundingRate" or (kind, sym, day) in missing:
                    continue
                data = csvs[kline_of.get(kind, kind)]
                af = ArchiveFile(kind=kind, symbol=sym, period=day.isoformat())
                head = None if kind in headerless else HEADERS.get(kind, HEADERS["klines"])
                _write_zip(root, af, head, data, (kind, sym, af.period) in bad_checksum)
                files.append(af)
                rows[kind] = rows.get(kind, 0) + len(data)
        if "fundingRate" in kinds:
            for month, data in funding.items():
                af = ArchiveFile(kind="fundingRate", symbol=sym, period=month)
                head = None if "fundingRate" in headerless else HEADERS["fundingRate"]
                _write_zip(root, af, head, data, ("fundingRate", sym, month) in bad_checksum)
                files.append(af)
                rows["fundingRate"] = rows.get("fundingRate", 0) + len(data)
    return TreeInfo(files=tuple(files), rows=rows)
