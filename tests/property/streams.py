"""Hypothesis strategies for random market event streams (tiny to huge values, bursts, dups)."""

from __future__ import annotations

from hypothesis import strategies as st

import engine_core as ec

POOL = ("AAAUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT", "ZZZUSDT")
T0 = 1_795_564_800_000  # a whole second, bucket-aligned

prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
sizes = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)
rates = st.floats(min_value=-0.05, max_value=0.05, allow_nan=False)


@st.composite
def events_for(draw: st.DrawFn, symbol: str, ts: int) -> ec.MarketEvent:
    kind = draw(st.integers(0, 7))
    if kind <= 1:
        return ec.TradeReceived(symbol=symbol, exchange_ts=ts, price=draw(prices),
                                qty=draw(sizes), buyer_is_maker=draw(st.booleans()),
                                trade_id=draw(st.integers(0, 2**40)))
    if kind == 2:
        bid = draw(prices)
        return ec.BookTickerReceived(symbol=symbol, exchange_ts=ts, bid=bid,
                                     bid_qty=draw(sizes), ask=bid * draw(st.floats(1, 1.01)),
                                     ask_qty=draw(sizes), update_id=draw(st.integers(0, 2**50)))
    if kind == 3:
        return ec.LiquidationReceived(symbol=symbol, exchange_ts=ts,
                                      side=draw(st.sampled_from(list(ec.Side))),
                                      price=draw(prices), qty=draw(sizes))
    if kind == 4:
        return ec.MarkPriceReceived(symbol=symbol, exchange_ts=ts, mark_price=draw(prices),
                                    index_price=draw(prices), funding_rate=draw(rates))
    if kind == 5:
        return ec.OpenInterestReceived(symbol=symbol, exchange_ts=ts,
                                       open_interest=draw(st.floats(0, 1e12)))
    if kind == 6:
        return ec.FundingReceived(symbol=symbol, exchange_ts=ts, funding_rate=draw(rates),
                                  mark_price=draw(prices), index_price=draw(prices))
    return ec.DataHealthReceived(symbol=symbol, exchange_ts=ts,
                                 kind=draw(st.sampled_from(list(ec.HealthKind))),
                                 count=draw(st.integers(0, 1000)))


@st.composite
def streams(draw: st.DrawFn, max_ticks: int = 40
            ) -> tuple[tuple[str, ...], int, list[list[ec.MarketEvent]]]:
    """(symbols, first tick, events per tick in arrival order)."""
    symbols = tuple(sorted(draw(st.sets(st.sampled_from(POOL), min_size=1, max_size=4))))
    first_tick = T0 // 250 + draw(st.integers(0, 7))
    n_ticks = draw(st.integers(1, max_ticks))
    ticks: list[list[ec.MarketEvent]] = []
    for k in range(n_ticks):
        end = (first_tick + k) * 250
        burst = draw(st.sampled_from((0, 0, 1, 3, 8, 40)))
        evs = []
        for _ in range(burst):
            sym = draw(st.sampled_from(symbols))
            # duplicate timestamps and late, out-of-order exchange times are normal
            ts = end - draw(st.sampled_from((0, 0, 1, 120, 249, 3000)))
            evs.append(draw(events_for(sym, ts)))
        ticks.append(evs)
    return symbols, first_tick, ticks


def run_stream(symbols: tuple[str, ...], first_tick: int, ticks: list[list[ec.MarketEvent]],
               cfg: ec.Config | None = None
               ) -> tuple[list[ec.EngineState], list[tuple[ec.Record, ...]],
                          list[tuple[ec.Alert, ...]]]:
    cfg = cfg or ec.Config()
    state = ec.initial_state(cfg, symbols)
    q = ec.CanonicalEngine(symbols)
    states, recs, alerts = [state], [], []
    for k, evs in enumerate(ticks):
        for e in evs:
            q.ingest(e)
        state, r, a = ec.step(state, q.flush(first_tick + k), first_tick + k)
        states.append(state)
        recs.append(r)
        alerts.append(a)
    return states, recs, alerts


def log_bytes(recs: list[tuple[ec.Record, ...]]) -> bytes:
    return b"".join(r.to_bytes() for tick in recs for r in tick)
