"""Synthetic captures: the market simulator rendered into Binance frames, in capture format.

Used by tests, benchmarks and anyone who wants a realistic capture without Binance access:
streamed events become combined-stream frames exactly as the live feed sends them, polled
data (open interest, premiumIndex) become REST response lines. Output: SPEC section 6.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from engine_adapters.capture import CaptureWriter, RestLine, WsLine
from engine_core.events import (
    BookTickerReceived,
    FundingReceived,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    OpenInterestReceived,
    TradeReceived,
)
from engine_sim import render

_SUFFIX = {TradeReceived: "@aggTrade", BookTickerReceived: "@bookTicker",
           MarkPriceReceived: "@markPrice@1s", LiquidationReceived: "@forceOrder"}


def capture_items(events: Iterable[tuple[int, MarketEvent]]
                  ) -> Iterator[WsLine | RestLine]:
    """Render (recv_ms, event) pairs as the capture lines a recording of them would hold.

    A source like any other for `engine_app.bootstrap.run_lines`; line numbers count from 1.
    """
    n = 0
    for recv, ev in events:
        suffix = _SUFFIX.get(type(ev))
        if suffix is not None:
            payload = render.render_payload(ev)
            assert payload is not None
            n += 1
            yield WsLine(line_no=n, recv_ms=recv,
                         raw=render.combined(ev.symbol.lower() + suffix, payload))
        elif isinstance(ev, OpenInterestReceived):
            n += 1
            yield RestLine(line_no=n, recv_ms=recv, path="/fapi/v1/openInterest",
                           query=f"symbol={ev.symbol}", status=200,
                           raw=render.open_interest_body(ev))
        elif isinstance(ev, FundingReceived):
            n += 1
            yield RestLine(line_no=n, recv_ms=recv, path="/fapi/v1/premiumIndex",
                           query=f"symbol={ev.symbol}", status=200,
                           raw=render.premium_index_body(ev))


def capture_lines(events: Iterable[tuple[int, MarketEvent]], writer: CaptureWriter) -> int:
    """Render (recv_ms, event) pairs into `writer`; returns the number of lines written."""
    n = 0
    for item in capture_items(events):
        if isinstance(item, WsLine):
            writer.write_ws(item.recv_ms, item.raw)
        else:
            writer.write_rest(item.recv_ms, item.path, item.query, item.status, item.raw)
        n += 1
    return n


def write_capture(path: str | Path, events: Iterable[tuple[int, MarketEvent]]) -> int:
    """Write a whole capture file (gzip when the name ends with .gz)."""
    with CaptureWriter(path, flush_interval_s=3600.0) as w:
        return capture_lines(events, w)
