"""The shell's own market facts per token, from the events the engine accepted.

Alerts state the core's evidence records (`Session._alert_evidence`, `evidence_from_record`),
and so does the live view (`engine_app.view.record_evidence`); this tracker is the fallback
where a core gives no evidence bytes. Its figures are plain changes over one window (basis
"change" in `AlertEvidence`), not the core's averages.

`EvidenceTracker.add_tick(tick_id, batches)` follows, per token, the latest book mid (the
last trade, then the mark, where there is no book), mark, index, open interest and funding
rate, and the liquidated notional by side; at the end of each tick it keeps a snapshot, the
last `WINDOW_TICKS + 1` of them. `evidence_for(alerts)` then states, for each alert, the
price and OI now and their change over the window (60 s), the longs and shorts liquidated
in it and the funding rate per hour (the rate over the symbol's interval: 8 h unless told
otherwise by a `FundingInfoReceived` or `set_interval`). A market-wide alert states nothing.

Determinism: the tracker reads only the tick's frozen batches (what the journal holds), in
their canonical order, so a replay of the journal states the same evidence. It is stored in
`alerts.jsonl` beside each alert (`evidence`, `evidence_text`); `verify` re-derives the
alerts from the log and checks these keys against the stored evidence records
(docs/log-format.md). Move in sigma needs the symbol's realized volatility, which the rules
compute: it is None here (the core's records carry it).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import engine_core as ec
from engine_adapters.evidence_text import AlertEvidence
from engine_core.events import (
    BookTickerReceived,
    FundingInfoReceived,
    FundingReceived,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

#: The window of the changes an alert states (60 s of 250-ms ticks).
WINDOW_TICKS = 240
DEFAULT_INTERVAL_HOURS = 8
_NAN = float("nan")


class _Token:
    __slots__ = ("funding", "index", "liq_long", "liq_short", "mark", "mid", "oi", "snaps",
                 "trade")

    def __init__(self) -> None:
        self.mid = self.trade = self.mark = self.index = self.oi = self.funding = _NAN
        self.liq_long = self.liq_short = 0.0  # cumulative since the session started
        self.snaps: collections.deque[tuple[int, float, float, float, float]] = \
            collections.deque(maxlen=WINDOW_TICKS + 1)

    def price(self) -> float:
        for p in (self.mid, self.trade, self.mark):
            if p == p:
                return p
        return _NAN


def _known(x: float) -> float | None:
    return x if x == x else None


class EvidenceTracker:
    """Per-token market facts of the last minute of ticks (see the module docstring)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = tuple(symbols)
        self._tokens = [_Token() for _ in self.symbols]
        self._interval = [DEFAULT_INTERVAL_HOURS] * len(self.symbols)

    def set_interval(self, symbol: str, hours: int) -> None:
        """The symbol's funding interval (fundingInfo), for funding per hour."""
        if hours <= 0:
            raise ValueError(f"{symbol}: funding interval must be > 0 hours, got {hours}")
        self._interval[self.symbols.index(symbol)] = hours

    def add_tick(self, tick_id: int, batches: Sequence[ec.CanonicalBatch]) -> None:
        """Take one tick's events, then snapshot every token at the tick's end."""
        toks = self._tokens
        for b in batches:
            if not b.events:
                continue
            t = toks[b.token_id]
            for ce in b.events:
                ev = ce.payload
                if type(ev) is TradeReceived:
                    t.trade = ev.price
                elif type(ev) is BookTickerReceived:
                    t.mid = (ev.bid + ev.ask) / 2
                elif type(ev) is MarkPriceReceived or type(ev) is FundingReceived:
                    t.mark, t.index, t.funding = ev.mark_price, ev.index_price, ev.funding_rate
                elif type(ev) is OpenInterestReceived:
                    t.oi = ev.open_interest
                elif type(ev) is LiquidationReceived:
                    if ev.side is Side.SELL:
                        t.liq_long += ev.price * ev.qty
                    else:
                        t.liq_short += ev.price * ev.qty
                elif type(ev) is FundingInfoReceived:
                    self._interval[b.token_id] = ev.interval_hours
        for t in toks:
            t.snaps.append((tick_id, t.price(), t.oi, t.liq_long, t.liq_short))

    def evidence(self, token_id: int) -> AlertEvidence:
        """What token `token_id` looks like now, against the oldest snapshot of the window."""
        t = self._tokens[token_id]
        if not t.snaps:
            return AlertEvidence()
        tick0, p0, oi0, ll0, ls0 = t.snaps[0]
        tick1, p1, oi1, ll1, ls1 = t.snaps[-1]
        window = (tick1 - tick0) * ec.TICK_MS // 1000
        move = (p1 / p0 - 1) * 100 if p0 == p0 and p1 == p1 and p0 > 0 else None
        doi = (oi1 / oi0 - 1) * 100 if oi0 == oi0 and oi1 == oi1 and oi0 > 0 else None
        fph = t.funding / self._interval[token_id] if t.funding == t.funding else None
        return AlertEvidence(price=_known(p1), move_pct=move, oi_change_pct=doi,
                             move_window_s=window or None, oi_window_s=window or None,
                             liq_window_s=window or None, liq_long_usd=ll1 - ll0,
                             liq_short_usd=ls1 - ls0, funding_per_hour=fph, oi=_known(oi1),
                             mark=_known(t.mark), index=_known(t.index))

    def all_tokens(self) -> tuple[AlertEvidence, ...]:
        """The evidence of every token, in token order (the live view's market columns)."""
        return tuple(self.evidence(i) for i in range(len(self.symbols)))

    def evidence_for(self, alerts: Sequence[ec.Alert]) -> tuple[AlertEvidence | None, ...]:
        """One evidence per alert (None for a market-wide alert)."""
        return tuple(None if a.token_id < 0 else self.evidence(a.token_id) for a in alerts)
