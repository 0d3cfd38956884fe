"""The shell loop shared by `live`, `run` and `demo`: messages in, ticks stepped, files out.

    frame text / REST body / health notice  --on_*()-->  parse, dedup, assign to a tick
    step_tick(tick_id): ingest that tick's events -> flush -> journal -> engine_core.step
                        -> log -> alerts.jsonl + sinks

Ticks are assigned by receive time, never by when the loop got round to a message:
a message received at `recv_ms` belongs to tick `recv_ms // 250 + 1` (the first tick boundary
after it), or to the current tick if that one was already stepped (it is then late). So the
live path and `run` over a capture of it take identical decisions: both call this class with
the same receive times in the same order.

Nothing invalid reaches the core: parser rejects and normalizer rejections go to
`quarantine.jsonl` with their reason; duplicates are dropped by `EventDeduper`.
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Callable, Sequence

import attrs

import engine_core as ec
from engine_adapters.binance.dedup import EventDeduper, IdGap
from engine_adapters.binance.messages import FrameParser, Parsed
from engine_adapters.binance.rest_payloads import RestParser
from engine_adapters.clock import LatencyTracker
from engine_adapters.quarantine import QuarantineEntry, QuarantineWriter
from engine_adapters.storage import AlertsFile, JournalWriter, LogWriter, trim_journal
from engine_app.datadir import DataDir

TICK_MS = 250
AlertSink = Callable[[Sequence[ec.Alert]], None]


def tune_gc() -> None:
    """Collector settings for a long session: fewer young-generation passes, a frozen heap.

    Engine objects are acyclic and freed by reference counting; the cyclic collector mostly
    rescans live objects. Freezing what exists after start-up and raising the first
    threshold cut its share of a `run` by ~5% and shorten the pauses a tick can hit.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


def tick_of(recv_ms: int) -> int:
    """The tick a message received at `recv_ms` belongs to (ticks end on 250 ms boundaries)."""
    return recv_ms // TICK_MS + 1


@attrs.define
class SessionStats:
    """Counters of one session.

    Every parsed event is accounted for: `events_received == events_accepted + duplicates +
    (rejected - parse_rejects)` once all ticks are stepped; parse rejects are messages that
    never became an event, `ignored` counts array items outside the universe.
    """

    frames: int = 0
    rest_responses: int = 0
    health_notices: int = 0
    events_received: int = 0
    events_accepted: int = 0
    duplicates: int = 0
    rejected: int = 0  # every quarantined item: parse rejects + invalid events + bad lines
    parse_rejects: int = 0
    ignored: int = 0
    late_events: int = 0
    ticks: int = 0
    alerts: collections.Counter[str] = attrs.field(factory=collections.Counter)
    states_reached: set[str] = attrs.field(factory=set)
    cluster_reached: set[str] = attrs.field(factory=set)
    phases_reached: set[str] = attrs.field(factory=set)
    first_tick: int | None = None
    last_tick: int | None = None


class Session:
    """One engine session over a data dir: owns the core state and every output file."""

    def __init__(self, data_dir: DataDir, cfg: ec.Config, symbols: Sequence[str], *,
                 engine_version: str, fsync: str = "interval:4",
                 allow_config_change: bool = False, sinks: Sequence[AlertSink] = (),
                 on_gap: Callable[[IdGap], None] | None = None) -> None:
        self.dir = data_dir
        self.cfg = cfg
        self.symbols = tuple(symbols)
        self.stats = SessionStats()
        self.sinks = list(sinks)
        self.on_gap = on_gap
        data_dir.ensure()
        self.log = LogWriter.open(data_dir.root, cfg, self.symbols, engine_version, fsync=fsync,
                                  allow_config_change=allow_config_change)
        # a crash between journaling a tick and logging it leaves the journal ahead
        ahead = trim_journal(data_dir.root, self.log.last_tick)
        self.journal = JournalWriter.open(data_dir.root, cfg, self.symbols, engine_version,
                                          fsync=fsync, allow_config_change=allow_config_change)
        self.recovery_messages = [
            r.message for r in (self.log.recovery, self.journal.recovery) if _dropped(r)]
        if ahead:
            self.recovery_messages.append(
                f"journal was {ahead} tick(s) ahead of the log (a crash between the two); "
                f"dropped them so replay matches the log")
        self.alerts_file = AlertsFile(data_dir.alerts)
        # alerts of ticks a crash dropped from the log must go too, or verify would disagree
        self.alerts_file.truncate_after(self.log.last_tick)
        self.quarantine = QuarantineWriter(data_dir.quarantine)
        self.state = ec.initial_state(cfg, self.symbols)
        self.queue = ec.CanonicalEngine(self.symbols)
        self.frames = FrameParser(self.symbols)
        self.rest = RestParser(self.symbols)
        self.dedup = EventDeduper()
        #: Accepted events by payload class (names in metrics; classes are cheaper to count).
        self.events_by_source: collections.Counter[type] = collections.Counter()
        #: Receive time minus exchange time of a sample of messages (every 64th frame).
        self.latency = LatencyTracker()
        # (tick, event, recv_ms, source, raw text, capture line) in arrival order
        self._pending: collections.deque[
            tuple[int, ec.MarketEvent, int, str, str, int | None]] = collections.deque()
        self._stepped: int | None = None
        #: Tick of the newest message taken (what `drain` must step up to).
        self.last_message_tick: int | None = None
        self.last_records: tuple[ec.Record, ...] = ()
        self.recent_alerts: collections.deque[ec.Alert] = collections.deque(maxlen=20)
        self._closed = False
        if self.log.last_tick is not None:
            # a restart continues the log; the new session must start after it
            self._stepped = self.log.last_tick

    # ------------------------------------------------------------------ messages in
    def on_frame(self, recv_ms: int, text: str | bytes, *, line_no: int | None = None) -> None:
        """One WebSocket frame exactly as received."""
        self.stats.frames += 1
        self._take(recv_ms, self.frames.parse(text), text, "ws", line_no)

    def on_rest(self, recv_ms: int, path: str, query: str, status: int, body: str | bytes,
                *, line_no: int | None = None) -> None:
        """One REST response (any status: errors are accounted, not fatal)."""
        self.stats.rest_responses += 1
        parsed = self.rest.parse(path, query, status, body)
        if parsed.api_error is not None or status != 200:
            return  # a rate-limit or server error: the poller's business, not market data
        self._take(recv_ms, parsed, body, "rest", line_no)

    def on_health(self, recv_ms: int, symbol: str, kind: ec.HealthKind, count: int = 0, *,
                  gap: IdGap | None = None) -> None:
        """A data-health notice of the shell (reconnect, stale stream, unrepaired gap...).

        A TRADE_GAP notice carries the id range given up: from here on, a late trade of that
        range is a duplicate, in live and in a replay of its capture alike.
        """
        self.stats.health_notices += 1
        if gap is not None:
            self.dedup.close_gap(gap)
        ev = ec.DataHealthReceived(symbol=symbol, exchange_ts=recv_ms, kind=kind, count=count)
        self._queue(recv_ms, ev, "health", "", None)

    def _take(self, recv_ms: int, parsed: Parsed, raw: str | bytes, source: str,
              line_no: int | None) -> None:
        """Dedup a message's events and queue them for their tick (the per-message hot path)."""
        st = self.stats
        if parsed.ignored:
            st.ignored += parsed.ignored
        for rej in parsed.rejects:
            st.rejected += 1
            st.parse_rejects += 1
            self._quarantine(recv_ms, source, rej.reason, rej.field, line_no, raw)
        events = parsed.events
        if not events:
            return
        text = raw if isinstance(raw, str) else ""
        t = recv_ms // TICK_MS + 1
        if self.last_message_tick is None or t > self.last_message_tick:
            self.last_message_tick = t
        if not st.frames & 63 and source == "ws":
            self.latency.add(events[0].exchange_ts, recv_ms)
        stepped = self._stepped
        # the common case: the message belongs to the tick being filled (or is late for an
        # already stepped one), so its events go into the core's queue at once
        direct = stepped is not None and t <= stepped + 1 and not self._pending
        late = direct and t <= stepped  # type: ignore[operator]
        dedup = self.dedup
        ingest = self.queue.ingest
        by_source = self.events_by_source
        for ev in events:
            st.events_received += 1
            cls = type(ev)
            if cls is ec.TradeReceived:
                keep, gap = dedup.trade(ev.symbol, ev.trade_id)  # type: ignore[union-attr]
                if gap is not None and self.on_gap is not None:
                    self.on_gap(gap)
            elif cls is ec.BookTickerReceived:
                keep = dedup.book(ev.symbol, ev.update_id)  # type: ignore[union-attr]
            elif cls is ec.MarkPriceReceived:
                keep = dedup.mark(ev.symbol, ev.exchange_ts)
            elif cls is ec.LiquidationReceived:
                keep = dedup.liquidation(ev.symbol, ev.exchange_ts)
            else:
                keep = True
            if not keep:
                st.duplicates += 1
            elif direct:
                if late:
                    st.late_events += 1
                rejection = ingest(ev)
                if rejection is None:
                    st.events_accepted += 1
                    by_source[cls] += 1
                else:
                    st.rejected += 1
                    self._quarantine(recv_ms, source, rejection.reason, rejection.field,
                                     line_no, text)
            else:
                self._pending.append((t, ev, recv_ms, source, text, line_no))

    def _queue(self, recv_ms: int, ev: ec.MarketEvent, source: str, raw: str,
               line_no: int | None) -> None:
        t = recv_ms // TICK_MS + 1
        if self.last_message_tick is None or t > self.last_message_tick:
            self.last_message_tick = t
        nxt = self._stepped
        if nxt is not None and t <= nxt + 1 and not self._pending:
            # the common case: it belongs to the tick being filled, so queue it in the core now
            if t <= nxt:
                self.stats.late_events += 1
            self._ingest(ev, recv_ms, source, raw, line_no)
        else:  # a later tick (received after a boundary the clock has not stepped yet)
            self._pending.append((t, ev, recv_ms, source, raw, line_no))

    def _ingest(self, ev: ec.MarketEvent, recv_ms: int, source: str, raw: str,
                line_no: int | None) -> None:
        rej = self.queue.ingest(ev)
        if rej is not None:
            self.stats.rejected += 1
            self._quarantine(recv_ms, source, rej.reason, rej.field, line_no, raw)
        elif type(ev) is not ec.DataHealthReceived:
            self.stats.events_accepted += 1
            self.events_by_source[type(ev)] += 1

    def _quarantine(self, recv_ms: int, source: str, reason: str, field: str,
                    line_no: int | None, raw: str | bytes) -> None:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
        self.quarantine.write(QuarantineEntry(recv_ms=recv_ms, source=source, reason=reason,
                                              field=field, line_no=line_no, raw=text))

    # ------------------------------------------------------------------ ticks
    @property
    def next_tick(self) -> int | None:
        """The tick to step next, or None before the first message of a fresh data dir."""
        return None if self._stepped is None else self._stepped + 1

    def pending_tick(self) -> int | None:
        """Tick of the oldest message waiting to be stepped."""
        return self._pending[0][0] if self._pending else None

    def step_tick(self, tick_id: int, *, health: Sequence[ec.HealthKind] = ()
                  ) -> tuple[tuple[ec.Record, ...], tuple[ec.Alert, ...]]:
        """Step one tick: everything received for it (or late) goes in, files come out."""
        if self._stepped is not None and tick_id <= self._stepped:
            raise ValueError(f"tick {tick_id} was already stepped (last {self._stepped})")
        st = self.stats
        q = self.queue
        pend = self._pending
        while pend and pend[0][0] <= tick_id:
            t, ev, recv_ms, source, raw, line_no = pend.popleft()
            if t < tick_id:
                st.late_events += 1
            self._ingest(ev, recv_ms, source, raw, line_no)
        for kind in health:  # shell conditions of this very tick (catch-up, overload)
            for sym in self.symbols:
                q.ingest(ec.DataHealthReceived(symbol=sym, exchange_ts=tick_id * TICK_MS,
                                               kind=kind))
        session_start = self.state.last_tick is None
        batches = q.flush(tick_id)
        self.journal.append_tick(tick_id, batches, session_start=session_start)
        self.state, records, alerts = ec.step(self.state, batches, tick_id)
        self.log.append_tick(tick_id, records, alerts)
        if alerts:
            self.alerts_file.append(alerts)
            for a in alerts:
                st.alerts[a.kind.name] += 1
                self.recent_alerts.append(a)
            for sink in self.sinks:
                sink(alerts)
        self._stepped = tick_id
        st.ticks += 1
        if st.first_tick is None:
            st.first_tick = tick_id
        st.last_tick = tick_id
        r0 = records[0] if records else None
        if r0 is not None:
            st.cluster_reached.add(ec.ClusterState(r0.cluster).name)
            st.phases_reached.add(ec.EventPhase(r0.phase).name)
            for r in records:
                st.states_reached.add(ec.StructuralState(r.fsm).name)
        self.last_records = records
        # what arrived for the next tick while this one was pending goes in now, in order
        nxt = tick_id + 1
        while pend and pend[0][0] <= nxt:
            t, ev, recv_ms, source, raw, line_no = pend.popleft()
            self._ingest(ev, recv_ms, source, raw, line_no)
        return records, alerts

    def drain(self) -> int:
        """Step every tick up to the newest message's, so nothing received stays unstepped.

        `run` calls it at the end of a capture, `live` at shutdown (after the feeds stopped):
        the messages of the tick in progress are stepped then rather than dropped.
        """
        n = 0
        last = self.last_message_tick
        if last is None:
            return 0
        nxt = self.pending_tick() if self._stepped is None or self.state.last_tick is None \
            else self._stepped + 1
        while nxt is not None and nxt <= last:
            self.step_tick(nxt)
            nxt += 1
            n += 1
        return n

    def log_bytes(self) -> int:
        """Bytes in the log segments (a metric)."""
        return sum(p.stat().st_size for p in self.dir.log.glob("*") if p.is_file())

    def close(self) -> None:
        """Flush and close every file (the current tick is complete: ticks are atomic)."""
        if self._closed:
            return
        self._closed = True
        for closer in (self.log.close, self.journal.close, self.alerts_file.close,
                       self.quarantine.close):
            closer()
        self.dir.write_manifest(self.cfg, self.symbols, self.stats)


def _dropped(recovery: object) -> bool:
    """Did opening the file have to cut a torn tail? (Clean opens say nothing.)"""
    return bool(getattr(recovery, "truncated_bytes", 0) or getattr(recovery, "dropped_ticks", ())
                or getattr(recovery, "removed_files", ()))
