"""Operator metrics of a live session: Prometheus text on /metrics and a JSON /health.

Served on 127.0.0.1 only (`--metrics-port`). Counters come from the session, the transport
and the tick loop; nothing here feeds back into the engine.
"""

from __future__ import annotations

import collections
import json
import time
from typing import TYPE_CHECKING, Protocol

import attrs
from aiohttp import web

if TYPE_CHECKING:
    from engine_adapters.binance.rest_client import RestClient
    from engine_adapters.binance.ws_client import WsFeed
    from engine_app.session import Session


@attrs.define
class Metrics:
    """Counters of the tick loop and the shell (the transports keep their own)."""

    frames: int = 0
    gaps: int = 0
    trades_lost: int = 0
    overloaded_ticks: int = 0
    clock_offset_ms: float | None = None
    health: collections.Counter[str] = attrs.field(factory=collections.Counter)
    last_lag_ms: int = 0
    lag_samples: collections.deque[int] = attrs.field(
        factory=lambda: collections.deque(maxlen=2400))
    step_ms_samples: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=2400))
    #: CPU time of the loop's thread for the same work (what it costs when the box is busy).
    step_cpu_ms_samples: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=2400))
    started_s: float = attrs.field(factory=time.monotonic)
    _rate_mark: tuple[float, int] = (0.0, 0)
    events_per_s: float = 0.0

    def observe_tick(self, lag_ms: int, step_s: float, cpu_s: float | None = None) -> None:
        self.last_lag_ms = lag_ms
        self.lag_samples.append(lag_ms)
        self.step_ms_samples.append(step_s * 1000)
        if cpu_s is not None:
            self.step_cpu_ms_samples.append(cpu_s * 1000)

    def rate(self, events_total: int) -> float:
        """Events per second since the previous call (at most every second)."""
        now = time.monotonic()
        t0, n0 = self._rate_mark
        if now - t0 >= 1.0:
            if t0:
                self.events_per_s = (events_total - n0) / (now - t0)
            self._rate_mark = (now, events_total)
        return self.events_per_s

    def lag_p99(self) -> int:
        s = sorted(self.lag_samples)
        return s[int(0.99 * (len(s) - 1))] if s else 0


class MetricsSource(Protocol):
    """What the endpoints read: the live runner satisfies it (so this module never imports it)."""

    metrics: Metrics
    metrics_url: str | None

    @property
    def session(self) -> Session | None: ...

    @property
    def feed(self) -> WsFeed | None: ...

    @property
    def rest(self) -> RestClient | None: ...


def _line(name: str, value: float | int, help_: str, kind: str = "gauge",
          labels: str = "") -> list[str]:
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name}{labels} {value}"]


def prometheus_text(runner: MetricsSource) -> str:
    m = runner.metrics
    out: list[str] = []
    s = runner.session
    if s is not None:
        st, ic = s.stats, s.counts
        out += _line("engine_ticks_total", st.ticks, "ticks stepped", "counter")
        out += _line("engine_events_accepted_total", ic.events_accepted,
                     "events that reached the core", "counter")
        out += _line("engine_duplicates_total", ic.duplicates, "duplicate events dropped",
                     "counter")
        out += _line("engine_quarantined_total", ic.rejected, "rejected input", "counter")
        out += _line("engine_late_events_total", ic.late_events, "events stepped late", "counter")
        out.append("# HELP engine_alerts_total alerts raised by kind")
        out.append("# TYPE engine_alerts_total counter")
        for kind, n in sorted(st.alerts.items()):
            out.append(f'engine_alerts_total{{kind="{kind}"}} {n}')
        out.append("# HELP engine_events_by_stream_total accepted events by source")
        out.append("# TYPE engine_events_by_stream_total counter")
        for name, n in sorted((k.__name__, n) for k, n in s.ingest.events_by_source.items()):
            out.append(f'engine_events_by_stream_total{{source="{name}"}} {n}')
        out += _line("engine_log_bytes", s.log_bytes(), "bytes in log segments")
        out.append("# HELP engine_event_latency_ms receive time minus exchange event time")
        out.append("# TYPE engine_event_latency_ms gauge")
        latency = s.ingest.latency
        for q in (0.5, 0.99):
            out.append(f'engine_event_latency_ms{{quantile="{q}"}} {latency.percentile(q)}')
    out += _line("engine_events_per_second", round(m.events_per_s, 1), "recent event rate")
    out += _line("engine_tick_lag_ms", m.last_lag_ms, "lateness of the last tick")
    out += _line("engine_tick_lag_p99_ms", m.lag_p99(), "p99 tick lateness (last 10 min)")
    out += _line("engine_overloaded_ticks_total", m.overloaded_ticks,
                 "ticks stepped more than the overload limit late", "counter")
    out += _line("engine_trade_gaps_total", m.gaps, "aggTrade id gaps seen", "counter")
    out += _line("engine_trades_lost_total", m.trades_lost, "trades not recovered by backfill",
                 "counter")
    if m.clock_offset_ms is not None:
        out += _line("engine_clock_offset_ms", m.clock_offset_ms,
                     "exchange clock minus local clock")
    out.append("# HELP engine_health_notices_total data-health notices by kind")
    out.append("# TYPE engine_health_notices_total counter")
    for kind, n in sorted(m.health.items()):
        out.append(f'engine_health_notices_total{{kind="{kind}"}} {n}')
    if runner.feed is not None:
        c = runner.feed.counters
        out += _line("engine_ws_reconnects_total", c.reconnects, "WebSocket reconnects",
                     "counter")
        out += _line("engine_ws_stalls_total", c.stalls, "silent connections detected",
                     "counter")
        out += _line("engine_ws_connections", runner.feed.connected(), "open connections")
    if runner.rest is not None:
        r = runner.rest
        out += _line("engine_rest_weight_used", r.budget.used, "request weight used this minute")
        out += _line("engine_rest_429_total", r.counters.status_429, "HTTP 429 answers", "counter")
        out += _line("engine_rest_418_total", r.counters.status_418, "HTTP 418 answers", "counter")
    return "\n".join(out) + "\n"


def health_doc(runner: MetricsSource) -> dict[str, object]:
    s = runner.session
    lag = runner.metrics.last_lag_ms
    ok = s is not None and lag < 2000
    return {"ok": ok, "last_tick": None if s is None else s.stats.last_tick,
            "tick_lag_ms": lag,
            "connections": None if runner.feed is None else runner.feed.connected()}


async def serve_metrics(runner: MetricsSource, port: int) -> web.AppRunner:
    async def metrics(_req: web.Request) -> web.Response:
        return web.Response(text=prometheus_text(runner),
                            content_type="text/plain", charset="utf-8")

    async def health(_req: web.Request) -> web.Response:
        doc = health_doc(runner)
        return web.Response(text=json.dumps(doc), content_type="application/json",
                            status=200 if doc["ok"] else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    web_runner = web.AppRunner(app, access_log=None)
    await web_runner.setup()
    site = web.TCPSite(web_runner, "127.0.0.1", port)
    await site.start()
    host, bound = web_runner.addresses[0][:2]
    runner.metrics_url = f"http://{host}:{bound}"
    return web_runner
