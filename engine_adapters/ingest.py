"""The one ingest path of the shell: a message in, parsed, de-duplicated, quarantined, ticked.

Every source feeds the same capture-format messages into one `Ingest`: the WS feed and the
REST poller in `live`, a capture file in `run`, and any later source (an archive importer, a
message-bus consumer) alike:

    ingest.ws(recv_ms, frame_text)                          a WebSocket frame as received
    ingest.rest(recv_ms, path, query, status, body)         a REST response (any status)
    ingest.health(recv_ms, symbol, kind, count, gap=...)    a data-health notice of the shell
    ingest.line(item)                                       a decoded capture line (any of the 3)

Each message is parsed (`FrameParser` / `RestParser`), its events are judged new or repeated
by the Binance id rules (`EventDeduper.keep`), refused items go to the quarantine port with
their reason, and every event is assigned to the tick of its receive time
(`engine_core.tick_of_recv_ms`), or to the tick being filled if that one was already stepped
(it is then late). `flush(tick_id)` hands the core its sorted batches for one tick; the app's
loop calls it once per tick, in order. Same messages in the same order give the same batches,
whatever the source.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Collection, Sequence
from typing import Protocol

import attrs

import engine_core as ec
from engine_adapters.binance.dedup import EventDeduper, IdGap
from engine_adapters.binance.frame_builders import decode_event
from engine_adapters.binance.messages import FrameParser, Parsed, Reject
from engine_adapters.binance.rest_payloads import RestParser
from engine_adapters.capture import (
    CaptureLine,
    CaptureProblem,
    DepthLine,
    HealthLine,
    ProblemKind,
    RestLine,
    WsLine,
)
from engine_adapters.clock import LatencyTracker
from engine_adapters.depth_bands import DepthError, archive_bands
from engine_adapters.quarantine import QuarantineEntry

_HEALTH_KINDS = ec.HealthKind.__members__


class ReceivedFrame(Protocol):
    """A WebSocket frame with its receive time (a capture's ws envelope, a `WsLine`)."""

    @property
    def recv_ms(self) -> int: ...

    @property
    def raw(self) -> str: ...


class QuarantinePort(Protocol):
    """Where refused input goes, with its reason (`QuarantineWriter` is the real one)."""

    def write(self, entry: QuarantineEntry) -> None: ...


@attrs.define
class IngestStats:
    """What the ingest path saw, each item counted once, in one place.

    `events_received == events_accepted + duplicates + (rejected - parse_rejects -
    capture_problems)` once every tick is stepped: parse rejects are items that never became
    an event, capture problems lines that could not be read.
    """

    frames: int = 0
    rest_responses: int = 0
    health_notices: int = 0
    events_received: int = 0
    events_accepted: int = 0
    duplicates: int = 0
    #: Every quarantined item: parse rejects, invalid events, unreadable capture lines.
    rejected: int = 0
    parse_rejects: int = 0
    capture_problems: int = 0
    #: Items whose symbol is outside this run's universe.
    ignored_outside_universe: int = 0
    #: Frames of a Binance kind this engine does not consume (depthUpdate, kline...).
    unused_kinds: int = 0
    #: Capture lines whose recv_ms is below the previous line's (a clock step); each line is
    #: still processed, so this is a note, not a rejection.
    clock_backwards: int = 0
    late_events: int = 0


#: (tick, event, recv_ms, source, raw text, capture line) of a message for a later tick.
_Pending = tuple[int, ec.MarketEvent, int, str, str, "int | None"]


class Ingest:
    """Parse -> dedup -> quarantine -> tick assignment, for one universe and one core queue.

    `last_stepped` is the newest tick already flushed (None before the first, or the log's
    last tick when a data dir is continued); messages of later ticks wait in arrival order.
    """

    def __init__(self, symbols: Sequence[str], quarantine: QuarantinePort, *,
                 last_stepped: int | None = None,
                 on_gap: Callable[[IdGap], None] | None = None) -> None:
        self.symbols = tuple(symbols)
        self.quarantine = quarantine
        self.stats = IngestStats()
        self.queue = ec.CanonicalEngine(self.symbols)
        self.frames = FrameParser(self.symbols)
        self.rest_parser = RestParser(self.symbols)
        self.dedup = EventDeduper(on_gap=on_gap)
        # the parser's typed fast path, called directly (FrameParser.event without its hop)
        self._event = decode_event
        self._universe = frozenset(self.symbols)
        self._fast_len = self.frames.fast_len
        self._keep = self.dedup.keep
        #: Accepted events by payload class (names in metrics; classes are cheaper to count).
        self.events_by_source: collections.Counter[type] = collections.Counter()
        #: Receive time minus exchange time of a sample of messages (every 64th frame).
        self.latency = LatencyTracker()
        self._pending: collections.deque[_Pending] = collections.deque()
        self._stepped = last_stepped
        #: Tick of the newest message taken (what a drain must step up to).
        self.last_message_tick: int | None = None

    # ------------------------------------------------------------------ messages in
    def ws(self, recv_ms: int, text: str | bytes, *, line_no: int | None = None) -> None:
        """One WebSocket frame exactly as received."""
        self.stats.frames += 1
        ev = self._event(text, self._universe) if len(text) <= self._fast_len else None
        if ev is None:  # not a plain one-event frame, or something to report: the full path
            self._take(recv_ms, self.frames.parse_untyped(text), text, "ws", line_no)
            return
        # the per-frame hot path: one event of a used kind for a universe symbol
        st = self.stats
        st.events_received += 1
        t = ec.tick_of_recv_ms(recv_ms)
        if self.last_message_tick is None or t > self.last_message_tick:
            self.last_message_tick = t
        if not st.frames & 63:
            self.latency.add(ev.exchange_ts, recv_ms)
        if not self._keep(ev):
            st.duplicates += 1
            return
        raw = text if isinstance(text, str) else ""
        stepped = self._stepped
        if stepped is None or t > stepped + 1 or self._pending:
            self._pending.append((t, ev, recv_ms, "ws", raw, line_no))
            return
        if t <= stepped:
            st.late_events += 1
        rejection = self.queue.ingest(ev)
        if rejection is None:
            st.events_accepted += 1
            self.events_by_source[type(ev)] += 1
        else:
            st.rejected += 1
            self._quarantine(recv_ms, "ws", rejection.reason, rejection.field, line_no, raw)

    def ws_tick(self, tick: int, frames: Sequence[ReceivedFrame], first_line: int) -> None:
        """WebSocket frames all received in `tick`, in order: `ws` for each, checks hoisted.

        `frames[i]` is line `first_line + i` of a capture (`bootstrap.run_lines` hands in
        the lines of one tick at once). The same counters, queue and quarantine as `ws`.
        """
        if self.last_message_tick is None or tick > self.last_message_tick:
            self.last_message_tick = tick
        st, pend, stepped, ingest = self.stats, self._pending, self._stepped, self.queue.ingest
        event, universe, fast_len, keep = self._event, self._universe, self._fast_len, self._keep
        # stable for the whole tick: `_stepped` moves only in `flush`, and `_pending` gains
        # entries only when this is False
        now = not (stepped is None or tick > stepped + 1 or pend)
        late = now and stepped is not None and tick <= stepped
        # plain frames are counted in locals, added to `stats` at the end (`_take` counts there)
        n_frames, received, duplicates = st.frames, 0, 0
        types: list[type] = []  # of the accepted events, for `events_by_source`
        line_no = first_line
        for f in frames:
            n_frames += 1
            text = f.raw
            ev = event(text, universe) if len(text) <= fast_len else None
            if ev is None:  # not a plain one-event frame, or something to report: `ws`'s path
                st.frames = n_frames
                self._take(f.recv_ms, self.frames.parse_untyped(text), text, "ws", line_no)
            else:
                received += 1
                if not n_frames & 63:
                    self.latency.add(ev.exchange_ts, f.recv_ms)
                if not keep(ev):
                    duplicates += 1
                elif not now:
                    pend.append((tick, ev, f.recv_ms, "ws", text, line_no))
                else:
                    rejection = ingest(ev)
                    if rejection is None:
                        types.append(type(ev))
                    else:
                        st.rejected += 1
                        self._quarantine(f.recv_ms, "ws", rejection.reason, rejection.field,
                                         line_no, text)
            line_no += 1
        st.frames = n_frames
        st.events_received += received
        st.duplicates += duplicates
        if types:
            st.events_accepted += len(types)
            self.events_by_source.update(types)
        if late:  # every kept plain frame of a stepped tick went to the core: each is late
            st.late_events += received - duplicates

    def rest(self, recv_ms: int, path: str, query: str, status: int, body: str | bytes,
             *, line_no: int | None = None) -> None:
        """One REST response (any status: errors are accounted, not fatal)."""
        self.stats.rest_responses += 1
        parsed = self.rest_parser.parse(path, query, status, body, recv_ms)
        if parsed.api_error is not None or status != 200:
            return  # a rate-limit or server error: the poller's business, not market data
        self._take(recv_ms, parsed, body, "rest", line_no)

    def health(self, recv_ms: int, symbol: str, kind: ec.HealthKind, count: int = 0, *,
               gap: IdGap | None = None) -> None:
        """A data-health notice of the shell (reconnect, stale stream, unrepaired gap...).

        A TRADE_GAP notice carries the id range given up: from here on, a late trade of that
        range is a duplicate, in live and in a replay of its capture alike.
        """
        self.stats.health_notices += 1
        if gap is not None:
            self.dedup.close_gap(gap)
        self._queue(recv_ms, ec.DataHealthReceived(symbol=symbol, exchange_ts=recv_ms,
                                                   kind=kind, count=count), "health")

    def event(self, recv_ms: int, ev: ec.MarketEvent) -> None:
        """An event its source already parsed and de-duplicated (a simulator, a test)."""
        self.stats.events_received += 1
        self._queue(recv_ms, ev, "event")

    def _queue(self, recv_ms: int, ev: ec.MarketEvent, source: str) -> None:
        t = ec.tick_of_recv_ms(recv_ms)
        if self.last_message_tick is None or t > self.last_message_tick:
            self.last_message_tick = t
        nxt = self._stepped
        if nxt is not None and t <= nxt + 1 and not self._pending:
            if t <= nxt:
                self.stats.late_events += 1
            self._ingest(ev, recv_ms, source, "", None)
        else:  # a later tick (received after a boundary the clock has not stepped yet)
            self._pending.append((t, ev, recv_ms, source, "", None))

    def line(self, item: CaptureLine | CaptureProblem) -> None:
        """One decoded capture line (or a problem the reader found at a line)."""
        match item:
            case WsLine():
                self.ws(item.recv_ms, item.raw, line_no=item.line_no)
            case RestLine():
                self.rest(item.recv_ms, item.path, item.query, item.status, item.raw,
                          line_no=item.line_no)
            case HealthLine():
                kind = _HEALTH_KINDS.get(item.kind)
                if kind is None:
                    self.stats.rejected += 1
                    self.stats.capture_problems += 1
                    self.quarantine.write(QuarantineEntry(
                        recv_ms=item.recv_ms, source="capture", field="kind",
                        line_no=item.line_no, reason=f"unknown health kind {item.kind!r}"))
                    return
                gap = None if item.first is None or item.last is None else \
                    IdGap(symbol=item.symbol, first=item.first, last=item.last)
                self.health(item.recv_ms, item.symbol, kind, item.count, gap=gap)
            case DepthLine():
                self.depth_line(item)
            case CaptureProblem():
                self.problem(item)

    def depth_line(self, item: DepthLine) -> None:
        """Archive depth bands (a `depth` capture line): one DepthReceived, or quarantined."""
        try:
            parsed = Parsed(events=(archive_bands(item.symbol, item.recv_ms, item.bands),))
        except DepthError as exc:
            parsed = Parsed(rejects=(Reject(reason=str(exc), field="bands", stream="depth",
                                            symbol=item.symbol[:40]),))
        if parsed.events and self.symbols and item.symbol not in self._universe:
            self.stats.ignored_outside_universe += 1
            return
        self._take(item.recv_ms, parsed, "", "depth", item.line_no)

    def problem(self, p: CaptureProblem) -> None:
        """A capture line that could not be used (quarantined), or a clock step (counted)."""
        if p.kind is ProblemKind.CLOCK_BACKWARDS:
            self.stats.clock_backwards += 1  # its line follows and is processed as usual
            return
        self.stats.rejected += 1
        self.stats.capture_problems += 1
        self.quarantine.write(QuarantineEntry(recv_ms=0, source="capture", reason=p.reason,
                                              line_no=p.line_no, raw=p.text))

    def _take(self, recv_ms: int, parsed: Parsed, raw: str | bytes, source: str,
              line_no: int | None) -> None:
        """Dedup a message's events and queue them for their tick (the per-message hot path)."""
        st = self.stats
        if parsed.ignored:
            st.ignored_outside_universe += parsed.ignored
        if parsed.unused:
            st.unused_kinds += parsed.unused
        for rej in parsed.rejects:
            st.rejected += 1
            st.parse_rejects += 1
            self._quarantine(recv_ms, source, rej.reason, rej.field, line_no, raw)
        events = parsed.events
        if not events:
            return
        text = raw if isinstance(raw, str) else ""
        t = ec.tick_of_recv_ms(recv_ms)
        if self.last_message_tick is None or t > self.last_message_tick:
            self.last_message_tick = t
        if not st.frames & 63 and source == "ws":
            self.latency.add(events[0].exchange_ts, recv_ms)
        stepped = self._stepped
        if stepped is None or t > stepped + 1 or self._pending:  # waits for its tick
            for ev in events:
                st.events_received += 1
                if self.dedup.keep(ev):
                    self._pending.append((t, ev, recv_ms, source, text, line_no))
                else:
                    st.duplicates += 1
            return
        late = t <= stepped
        for ev in events:
            st.events_received += 1
            if not self._keep(ev):
                st.duplicates += 1
                continue
            if late:
                st.late_events += 1
            rejection = self.queue.ingest(ev)
            if rejection is None:
                st.events_accepted += 1
                self.events_by_source[type(ev)] += 1
            else:
                st.rejected += 1
                self._quarantine(recv_ms, source, rejection.reason, rejection.field,
                                 line_no, text)

    def _ingest(self, ev: ec.MarketEvent, recv_ms: int, source: str, raw: str,
                line_no: int | None) -> None:
        rej = self.queue.ingest(ev)
        if rej is not None:
            self.stats.rejected += 1
            self._quarantine(recv_ms, source, rej.reason, rej.field, line_no, raw)
        elif not isinstance(ev, ec.DataHealthReceived):
            self.stats.events_accepted += 1
            self.events_by_source[type(ev)] += 1

    def _quarantine(self, recv_ms: int, source: str, reason: str, field: str,
                    line_no: int | None, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
        self.quarantine.write(QuarantineEntry(recv_ms=recv_ms, source=source, reason=reason,
                                              field=field, line_no=line_no, raw=text))

    # ------------------------------------------------------------------ ticks out
    @property
    def last_stepped(self) -> int | None:
        """The newest tick flushed (None before the first message of a fresh data dir)."""
        return self._stepped

    def pending_tick(self) -> int | None:
        """Tick of the oldest message waiting for a later tick."""
        return self._pending[0][0] if self._pending else None

    def flush(self, tick_id: int, *, health: Collection[ec.HealthKind] = ()
              ) -> tuple[ec.CanonicalBatch, ...]:
        """Everything received for `tick_id` (or late) as the core's sorted batches.

        `health` are shell conditions of this very tick (catch-up, overload), applied to every
        symbol. What arrived for the next tick meanwhile is queued right after.
        """
        if self._stepped is not None and tick_id <= self._stepped:
            raise ValueError(f"tick {tick_id} was already stepped (last {self._stepped})")
        pend = self._pending
        while pend and pend[0][0] <= tick_id:
            t, ev, recv_ms, source, raw, line_no = pend.popleft()
            if t < tick_id:
                self.stats.late_events += 1
            self._ingest(ev, recv_ms, source, raw, line_no)
        q = self.queue
        for kind in health:
            for sym in self.symbols:
                q.ingest(ec.DataHealthReceived(symbol=sym, exchange_ts=tick_id * ec.TICK_MS,
                                               kind=kind))
        batches = q.flush(tick_id)
        self._stepped = tick_id
        nxt = tick_id + 1
        while pend and pend[0][0] <= nxt:
            t, ev, recv_ms, source, raw, line_no = pend.popleft()
            self._ingest(ev, recv_ms, source, raw, line_no)
        return batches
