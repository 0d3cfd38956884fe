"""Synthetic captures: the market simulator rendered into Binance frames, in capture format.

Used by tests, benchmarks and anyone who wants a realistic capture without Binance access:
streamed events become combined-stream frames exactly as the live feed sends them, polled
data (open interest, premiumIndex) become REST response lines. Output: SPEC section 6.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine_adapters.capture import CaptureWriter
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


def capture_lines(events: Iterable[tuple[int, MarketEvent]], writer: CaptureWriter) -> int:
    """Render (recv_ms, event) pairs into `writer`; returns the number of lines written."""
    n = 0
    for recv, ev in events:
        suffix = _SUFFIX.get(type(ev))
        if suffix is not None:
            payload = render.render_payload(ev)
            assert payload is not None
            writer.write_ws(recv, render.combined(ev.symbol.lower() + suffix, payload))
        elif isinstance(ev, OpenInterestReceived):
            writer.write_rest(recv, "/fapi/v1/openInterest", f"symbol={ev.symbol}", 200,
                              render.open_interest_body(ev))
        elif isinstance(ev, FundingReceived):
            writer.write_rest(recv, "/fapi/v1/premiumIndex", f"symbol={ev.symbol}", 200,
                              render.premium_index_body(ev))
        else:
            continue
        n += 1
    return n


def write_capture(path: str | Path, events: Iterable[tuple[int, MarketEvent]]) -> int:
    """Write a whole capture file (gzip when the name ends with .gz)."""
    with CaptureWriter(path, flush_interval_s=3600.0) as w:
        return capture_lines(events, w)
