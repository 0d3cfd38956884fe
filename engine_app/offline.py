"""`run`: play a capture file through the same shell as `live`, on a virtual clock.

The clock is driven by the receive times in the capture: before a message of tick T is fed,
every tick before T is stepped (empty ones included), exactly as the live clock would have
stepped them while the message was in flight. Same capture, same bytes, in any process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import engine_core as ec
from engine_adapters.binance.dedup import IdGap
from engine_adapters.capture import CaptureProblem, HealthLine, RestLine, WsLine, iter_capture
from engine_adapters.quarantine import QuarantineEntry
from engine_app.session import Session, tick_of

ProgressFn = Callable[[int], None]


def first_recv_ms(path: Path) -> int | None:
    """Receive time of the capture's first usable line (decides the universe's first tick)."""
    for item in iter_capture(path):
        if not isinstance(item, CaptureProblem):
            return item.recv_ms
    return None


def run_capture(session: Session, path: Path, *, progress: ProgressFn | None = None,
                stop: Callable[[], bool] | None = None, until_ms: int | None = None) -> int:
    """Feed every capture line to `session`; returns the number of lines read."""
    n = 0
    health = ec.HealthKind.__members__
    nxt = session.next_tick  # None until the first message fixes the first tick
    for item in iter_capture(path):
        n += 1
        if progress is not None and n % 50_000 == 0:
            progress(n)
        if isinstance(item, CaptureProblem):
            session.stats.rejected += 1
            session.quarantine.write(QuarantineEntry(
                recv_ms=0, source="capture", reason=item.reason, line_no=item.line_no,
                raw=item.text))
            continue
        if until_ms is not None and item.recv_ms >= until_ms:
            break
        t = tick_of(item.recv_ms)
        if nxt is None:
            nxt = t
        while nxt < t:
            session.step_tick(nxt)
            nxt += 1
            if stop is not None and stop():
                return n
        if isinstance(item, WsLine):
            session.on_frame(item.recv_ms, item.raw, line_no=item.line_no)
        elif isinstance(item, RestLine):
            session.on_rest(item.recv_ms, item.path, item.query, item.status, item.raw,
                            line_no=item.line_no)
        elif isinstance(item, HealthLine):
            kind = health.get(item.kind)
            if kind is None:
                session.quarantine.write(QuarantineEntry(
                    recv_ms=item.recv_ms, source="capture", field="kind", line_no=item.line_no,
                    reason=f"unknown health kind {item.kind!r}"))
            else:
                gap = None if item.first is None or item.last is None else \
                    IdGap(symbol=item.symbol, first=item.first, last=item.last)
                session.on_health(item.recv_ms, item.symbol, kind, item.count, gap=gap)
    session.drain()  # the tick holding the last messages, so nothing received is left out
    return n
