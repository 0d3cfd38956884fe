"""The ingest queue: normalizer plus one buffer per token (design note steps 0, 1 and 3).

`CanonicalEngine` is the one object the async shell talks to between ticks: `ingest()` validates
and normalizes a market event into a `CanonicalEvent` (token id, source, exchange time, local
sequence number) and appends it to its token's buffer; `flush(tick_id)` turns every buffer, in
fixed token order, into a sorted `CanonicalBatch` and clears it.

It holds mutable buffers (it *is* the async queue) but does no I/O and reads no clock.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine_core.canonical import (
    BATCH_SETTERS,
    SORT_KEY,
    CanonicalBatch,
    CanonicalEvent,
    new_batch,
)
from engine_core.events import MarketEvent
from engine_core.normalize import EventNormalizer, Rejection

_new = object.__new__


class CanonicalEngine:
    """Normalizer plus one buffer per token: `ingest()` between ticks, `flush()` at a tick."""

    __slots__ = ("_buffers", "_normalize", "normalizer")

    def __init__(self, symbols: Sequence[str], *, first_seq: int = 0) -> None:
        self.normalizer = EventNormalizer(symbols, first_seq=first_seq)
        self._normalize = self.normalizer.normalize
        self._buffers: list[list[CanonicalEvent]] = [[] for _ in symbols]

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.normalizer.symbols

    def ingest(self, event: MarketEvent) -> Rejection | None:
        """Queue one event for the next flush; return a `Rejection` (never raise) if invalid."""
        out = self._normalize(event)
        if type(out) is CanonicalEvent:
            self._buffers[out.token_id].append(out)
            return None
        assert isinstance(out, Rejection)
        return out

    def pending(self) -> int:
        """How many events wait for the next flush."""
        return sum(len(b) for b in self._buffers)

    def flush(self, tick_id: int) -> tuple[CanonicalBatch, ...]:
        """Produce this tick's batches in token order and clear the buffers."""
        out = []
        buffers = self._buffers
        new = new_batch
        # an empty batch is most batches of a quiet market: its slots are set here directly
        # (the same value as new_batch(token_id, tick_id, ()), without a call per token)
        make, set_token, set_tick, set_events = _new, *BATCH_SETTERS
        for token_id, buf in enumerate(buffers):
            if buf:
                buf.sort(key=SORT_KEY)
                out.append(new(token_id, tick_id, tuple(buf)))
                buffers[token_id] = []
            else:
                b = make(CanonicalBatch)
                set_token(b, token_id)
                set_tick(b, tick_id)
                set_events(b, ())
                out.append(b)
        return tuple(out)
