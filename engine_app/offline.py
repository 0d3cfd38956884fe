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
from engine_app.session import TICK_MS, Session

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
    last_t = -1
    on_frame = session.on_frame
    step_tick = session.step_tick
    for item in iter_capture(path):
        n += 1
        if progress is not None and not n % 50_000:
            progress(n)
        cls = type(item)
        if isinstance(item, CaptureProblem):
            session.stats.rejected += 1
            session.quarantine.write(QuarantineEntry(
                recv_ms=0, source="capture", reason=item.reason, line_no=item.line_no,
                raw=item.text))
            continue
        recv = item.recv_ms
        if until_ms is not None and recv >= until_ms:
            break
        t = recv // TICK_MS + 1
        if t != last_t:  # step every tick before this message's (empty ones too)
            last_t = t
            if nxt is None:
                nxt = t
            while nxt < t:
                step_tick(nxt)
                nxt += 1
                if stop is not None and stop():
                    return n
        if cls is WsLine:
            on_frame(recv, item.raw, line_no=item.line_no)  # type: ignore[union-attr]
        elif isinstance(item, RestLine):
            session.on_rest(recv, item.path, item.query, item.status, item.raw,
                            line_no=item.line_no)
        elif isinstance(item, HealthLine):
            kind = health.get(item.kind)
            if kind is None:
                session.quarantine.write(QuarantineEntry(
                    recv_ms=recv, source="capture", field="kind", line_no=item.line_no,
                    reason=f"unknown health kind {item.kind!r}"))
            else:
                gap = None if item.first is None or item.last is None else \
                    IdGap(symbol=item.symbol, first=item.first, last=item.last)
                session.on_health(recv, item.symbol, kind, item.count, gap=gap)
    session.drain()  # the tick holding the last messages, so nothing received is left out
    return n
