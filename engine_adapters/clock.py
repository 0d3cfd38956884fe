"""The Clock port: epoch-aligned 250 ms ticks from real time or from given times.

SPEC §4: `tick_id = epoch_ms // 250` of the tick's END, so tick `k` covers
`[(k-1)*250, k*250)` ms and 15-minute buckets line up with wall-clock quarters. If the shell
falls behind, every skipped tick id is still produced, in order, with its lag, so the core
steps each one. `RealClock` follows the system clock under asyncio; `VirtualClock` is moved
by the caller (capture replay by receive time, tests that make 24 h pass in seconds).
Also here: the local-vs-exchange clock offset from `GET /fapi/v1/time`, and event-vs-receive
latency statistics.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import attrs

from engine_core import TICK_MS
from engine_core import tick_of_recv_ms as tick_of


@attrs.frozen(kw_only=True, slots=True)
class Tick:
    """A tick boundary passed: `tick_id` ended at `tick_id * 250` ms; `lag_ms` late."""

    tick_id: int
    lag_ms: int
    #: True when this tick was produced while catching up (its boundary passed unobserved).
    catch_up: bool = False


class Clock(Protocol):
    """What the shell needs from time: now, and the stream of tick boundaries."""

    def now_ms(self) -> int: ...

    def ticks(self) -> AsyncIterator[Tick]: ...


@attrs.define(kw_only=True, slots=True)
class LagStats:
    """Tick lag measurements of a RealClock (mutable, read for metrics)."""

    ticks: int = 0
    catch_up_ticks: int = 0
    max_lag_ms: int = 0
    samples: list[int] = attrs.field(factory=list)
    #: Keep at most this many recent samples (bounded memory for long runs).
    keep: int = 100_000

    def add(self, lag_ms: int, catch_up: bool) -> None:
        self.ticks += 1
        self.catch_up_ticks += catch_up
        self.max_lag_ms = max(self.max_lag_ms, lag_ms)
        if len(self.samples) >= self.keep:
            del self.samples[: self.keep // 2]
        self.samples.append(lag_ms)

    def percentile(self, q: float) -> int:
        """The q-quantile (0..1) of the kept samples, 0 when there are none."""
        if not self.samples:
            return 0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RealClock:
    """System time under asyncio; wakes at each 250 ms boundary and reports its lag."""

    def __init__(
        self,
        *,
        time_ms: Callable[[], int] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._time_ms = time_ms or (lambda: time.time_ns() // 1_000_000)
        self._sleep = sleep
        self.lag = LagStats()
        self._stopped = False

    def now_ms(self) -> int:
        return self._time_ms()

    def stop(self) -> None:
        """Make `ticks()` end after the tick in progress."""
        self._stopped = True

    async def ticks(self, *, max_ticks: int | None = None) -> AsyncIterator[Tick]:
        """Yield every tick boundary from now on, in order, none skipped."""
        next_id = tick_of(self._time_ms())
        produced = 0
        while not self._stopped and (max_ticks is None or produced < max_ticks):
            now = self._time_ms()
            wait_ms = next_id * TICK_MS - now
            if wait_ms > 0:
                # Sleep precision is ~1 ms on Linux; the lag measures whatever is left.
                await self._sleep(wait_ms / 1000)
                now = self._time_ms()
            last_due = now // TICK_MS  # the newest tick whose end has passed
            first = True
            while next_id <= last_due and (max_ticks is None or produced < max_ticks):
                lag = now - next_id * TICK_MS
                tick = Tick(tick_id=next_id, lag_ms=lag, catch_up=not first)
                self.lag.add(lag, tick.catch_up)
                yield tick
                produced += 1
                first = False
                next_id += 1


class VirtualClock:
    """Time set by the caller: `advance_to(ms)` returns the ticks whose end has passed."""

    def __init__(self, start_ms: int) -> None:
        self._now = start_ms
        self._next_id = tick_of(start_ms)
        self._pending: list[Tick] = []

    def now_ms(self) -> int:
        return self._now

    def advance_to(self, epoch_ms: int) -> list[Tick]:
        """Move time forward (never back) and return the ticks completed on the way."""
        if epoch_ms < self._now:
            raise ValueError(
                f"virtual time must not go back: got {epoch_ms} after {self._now} "
                "(feed receive times in order)"
            )
        self._now = epoch_ms
        out: list[Tick] = []
        last_due = epoch_ms // TICK_MS
        while self._next_id <= last_due:
            out.append(Tick(tick_id=self._next_id, lag_ms=epoch_ms - self._next_id * TICK_MS))
            self._next_id += 1
        return out

    def advance_by(self, delta_ms: int) -> list[Tick]:
        return self.advance_to(self._now + delta_ms)

    async def ticks(self) -> AsyncIterator[Tick]:
        """Ticks completed by the last `advance_*` calls that were not yet consumed."""
        for tick in self.advance_to(self._now):
            yield tick


@attrs.frozen(kw_only=True, slots=True)
class OffsetSample:
    """Exchange clock minus local clock, estimated at the midpoint of one round trip."""

    offset_ms: float
    rtt_ms: int
    server_ms: int


def offset_from(local_send_ms: int, server_ms: int, local_recv_ms: int) -> OffsetSample:
    """NTP-style estimate: the server stamped its time halfway through the round trip."""
    rtt = local_recv_ms - local_send_ms
    return OffsetSample(
        offset_ms=server_ms - (local_send_ms + local_recv_ms) / 2, rtt_ms=rtt, server_ms=server_ms
    )


def best_offset(samples: list[OffsetSample]) -> OffsetSample | None:
    """The sample with the smallest round trip is the least biased by queueing."""
    return min(samples, key=lambda s: s.rtt_ms) if samples else None


@attrs.define(kw_only=True, slots=True)
class LatencyTracker:
    """Receive time minus exchange event time, per sample; bounded memory."""

    keep: int = 10_000
    samples: list[int] = attrs.field(factory=list)
    count: int = 0

    def add(self, event_ms: int, recv_ms: int) -> None:
        self.count += 1
        if len(self.samples) >= self.keep:
            del self.samples[: self.keep // 2]
        self.samples.append(recv_ms - event_ms)

    def percentile(self, q: float) -> int:
        if not self.samples:
            return 0
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
