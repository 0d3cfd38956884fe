"""Throughput of the binary log and journal, each figure printed next to its target.

    .venv/bin/python benchmarks/bench_log.py [--tokens 400] [--ticks 1000]

append: LogWriter.append_tick (CRC'd records + commit + chain + write, fsync none), for
        TickRecords as `step` returns them (bytes already encoded in the same pass that
        built the records) and for plain Records the writer must encode itself
verify: integrity pass of verify() (CRC + structure + chain + numpy decode); the alert re-run
        is timed separately (it has no target: it runs the alert engine itself)
journal: JournalWriter.append_tick and iter_journal decode, in events/s
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine_adapters.storage.journal import iter_journal
from engine_adapters.storage.journal_writer import JournalWriter
from engine_adapters.storage.log_writer import LogWriter
from engine_adapters.storage.verify import verify
from engine_core.canonical import CanonicalBatch, CanonicalEvent
from engine_core.config import Config
from engine_core.events import BookTickerReceived, SourceType, TradeReceived
from engine_core.record import Record, TickRecords
from engine_core.states import Quality


def records(tick: int, n: int) -> list[Record]:
    q = int(Quality.SESSION_START) if tick == 0 else 0
    return [Record(tick_id=tick, token_id=i, fsm=0, tier=0, cluster=0, phase=0, alerts=0,
                   event_id=0, quality=q, trigger_cost=tick % 10000, pressure=i, fragile=1,
                   trigger=2, unwind=3, density=4, compression=5, divergence=6, elasticity=7,
                   state_age=tick, n_events=3, liq_imbalance=-1, oi_velocity=5,
                   funding_rate=10, spread_bps=2, mark_vs_mid_bps=-1) for i in range(n)]


def batches(tick: int, symbols: list[str], per_token: int) -> tuple[CanonicalBatch, ...]:
    out = []
    for i, s in enumerate(symbols):
        evs = []
        for j in range(per_token):
            ts = tick * 250 + j
            p = (TradeReceived(symbol=s, exchange_ts=ts, price=100.0 + j, qty=0.5,
                               buyer_is_maker=bool(j & 1), trade_id=tick * 100 + j)
                 if j % 2 else BookTickerReceived(symbol=s, exchange_ts=ts, bid=99.5,
                                                  bid_qty=1.0, ask=100.5, ask_qty=2.0,
                                                  update_id=ts))
            src = SourceType.TRADE if j % 2 else SourceType.BOOK
            evs.append(CanonicalEvent(token_id=i, source=src, exchange_ts=ts,
                                      local_seq=tick * 10_000 + i * 10 + j, payload=p))
        out.append(CanonicalBatch(token_id=i, tick_id=tick, events=tuple(evs)))
    return tuple(out)


def line(name: str, rate: float, unit: str, target: float | None) -> None:
    mark = "" if target is None else ("  OK" if rate >= target else "  BELOW TARGET")
    tgt = f"(target {target:,.0f})" if target else "(no target)"
    print(f"{name:<28}{rate:>14,.0f} {unit:<10}{tgt}{mark}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=400)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--events-per-token", type=int, default=2)
    a = ap.parse_args()
    symbols = [f"S{i:04d}USDT" for i in range(a.tokens)]
    cfg = Config()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        pre = [records(t, a.tokens) for t in range(a.ticks)]
        n_rec = a.ticks * a.tokens
        # as the engine hands them over: TickRecords carry the bytes step already encoded
        ticks = [TickRecords(tuple(r), b"".join(x.to_bytes() for x in r)) for r in pre]
        w = LogWriter.open(d / "a", cfg, symbols, "bench", fsync="none")
        t0 = time.perf_counter()
        for t, recs in enumerate(ticks):
            w.append_tick(t, recs, ())
        w.close()
        line("log append (records from step)", n_rec / (time.perf_counter() - t0), "rec/s",
             1_000_000)
        w = LogWriter.open(d, cfg, symbols, "bench", fsync="none")
        t0 = time.perf_counter()
        for t, plain in enumerate(pre):
            w.append_tick(t, plain, ())
        w.close()
        line("log append (plain Records, encoded here)", n_rec / (time.perf_counter() - t0),
             "rec/s", None)
        rep = verify(d)
        assert rep.ok, rep.message
        line("log verify (integrity)", n_rec / rep.integrity_seconds, "rec/s", 2_000_000)
        line("log verify (alert re-run)", n_rec / rep.alerts_seconds, "rec/s", None)

        jt = min(a.ticks, 300)
        pre_b = [batches(t, symbols, a.events_per_token) for t in range(jt)]
        n_ev = jt * a.tokens * a.events_per_token
        t0 = time.perf_counter()
        with JournalWriter.open(d, cfg, symbols, "bench", fsync="none") as jw:
            for t, b in enumerate(pre_b):
                jw.append_tick(t, b, session_start=t == 0)
        line("journal write", n_ev / (time.perf_counter() - t0), "events/s", None)
        t0 = time.perf_counter()
        got = sum(sum(len(b.events) for b in tick.batches) for tick in iter_journal(d))
        assert got == n_ev
        line("journal read (replay input)", n_ev / (time.perf_counter() - t0), "events/s",
             150_000)


if __name__ == "__main__":
    main()
