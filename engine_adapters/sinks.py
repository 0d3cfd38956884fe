"""Alert sinks beyond stdout and alerts.jsonl: an HTTP webhook that never holds up the tick loop.

The tick loop calls a sink synchronously (`Session.sinks`), so a sink may only *enqueue*:
`WebhookSink.__call__` appends to a bounded deque and wakes a background asyncio task, which
POSTs one alert at a time, in order, retrying with exponential backoff and jitter until the
receiver answers 2xx. A slow or dead receiver therefore costs memory, never tick latency.

Delivery is at least once: a request that timed out may still have reached the receiver, so
every POST carries an `Idempotency-Key` (tick, kind, token) the receiver can deduplicate on.
Nothing is lost while the queue has room. When it is full the *new* alert is dropped, counted
in `dropped_on_overflow` and logged (the first drop, then every 1000th): never silently.
A 4xx answer other than 408/429 is the receiver refusing the alert (bad URL, auth): retrying
cannot help, so it is counted in `rejected`, logged, and the queue moves on.

Config lives in the app's TOML as an array of tables, read by `webhooks_from_toml`:

    [[sinks.webhook]]
    url = "https://hooks.example.com/engine"
    timeout_s = 5
    headers = { Authorization = "Bearer ..." }
    kinds = ["SYSTEMIC_ALERT", "STRUCTURAL_UNWIND"]   # optional filter
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import random
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import attrs

from engine_adapters.evidence_text import AlertEvidence
from engine_adapters.storage.alerts_json import alert_to_json
from engine_core.alerts import Alert
from engine_core.states import AlertKind

log = logging.getLogger(__name__)

#: Answers worth retrying: the receiver is busy or briefly unable, not refusing.
RETRY_STATUS = frozenset({408, 425, 429})


def _positive(name: str) -> Any:
    def check(_inst: object, _attr: object, value: float) -> None:
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    return check


def _url(_inst: object, _attr: object, value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"webhook url must start with http:// or https://, got {value!r}")


@attrs.frozen(kw_only=True, slots=True)
class WebhookConfig:
    """One webhook receiver, as configured in `[[sinks.webhook]]`."""

    url: str = attrs.field(validator=_url)
    timeout_s: float = attrs.field(default=5.0, validator=_positive("timeout_s"))
    #: None retries for ever (while the queue has room); N gives up on an alert after N retries.
    max_retries: int | None = attrs.field(default=None, validator=attrs.validators.optional(
        attrs.validators.ge(0)))
    backoff_base_s: float = attrs.field(default=0.5, validator=_positive("backoff_base_s"))
    backoff_cap_s: float = attrs.field(default=30.0, validator=_positive("backoff_cap_s"))
    queue_limit: int = attrs.field(default=100_000, validator=_positive("queue_limit"))
    #: Extra request headers, e.g. (("Authorization", "Bearer ..."),).
    headers: tuple[tuple[str, str], ...] = ()
    #: Only these alert kinds are sent; None sends every kind.
    kinds: frozenset[AlertKind] | None = None


_KEYS = {a.name for a in attrs.fields(WebhookConfig)}


def webhooks_from_toml(data: Mapping[str, Any]) -> tuple[WebhookConfig, ...]:
    """Every `[[sinks.webhook]]` entry of an already-parsed TOML document (none: empty tuple).

    Raises ValueError naming the entry and key, e.g. "sinks.webhook[1].timeout_s must be ...".
    """
    sinks = data.get("sinks", {})
    if not isinstance(sinks, Mapping):
        raise ValueError("[sinks] must be a table")
    entries = sinks.get("webhook", [])
    if not isinstance(entries, list):
        raise ValueError("sinks.webhook must be an array of tables: write [[sinks.webhook]]")
    out = []
    for i, e in enumerate(entries):
        where = f"sinks.webhook[{i}]"
        if not isinstance(e, Mapping):
            raise ValueError(f"{where} must be a table")
        unknown = sorted(set(e) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; "
                             f"known: {', '.join(sorted(_KEYS))}")
        if "url" not in e:
            raise ValueError(f"{where}: url is required")
        kw: dict[str, Any] = dict(e)
        try:
            headers = kw.pop("headers", {})
            if not isinstance(headers, Mapping):
                raise ValueError("headers must be a table of name = \"value\"")
            kw["headers"] = tuple((str(k), str(v)) for k, v in headers.items())
            if "kinds" in kw:
                names = kw.pop("kinds")
                bad = [n for n in names if n not in AlertKind.__members__]
                if bad or not isinstance(names, list):
                    raise ValueError(f"kinds: unknown alert kind(s) {bad}; known: "
                                     f"{', '.join(AlertKind.__members__)}")
                kw["kinds"] = frozenset(AlertKind[n] for n in names)
            for key in ("timeout_s", "backoff_base_s", "backoff_cap_s"):
                if key in kw and (isinstance(kw[key], bool)
                                  or not isinstance(kw[key], int | float)):
                    raise ValueError(f"{key} must be a number, got {kw[key]!r}")
            for key in ("max_retries", "queue_limit"):
                if key in kw and (isinstance(kw[key], bool) or not isinstance(kw[key], int)):
                    raise ValueError(f"{key} must be an integer, got {kw[key]!r}")
            out.append(WebhookConfig(**kw))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    return tuple(out)


@attrs.frozen(kw_only=True, slots=True)
class WebhookStats:
    """Counters of one webhook sink at one moment."""

    #: Alerts the receiver acknowledged with 2xx.
    delivered: int
    #: Requests that failed (timeout, connection error, 5xx, 408/429) and were retried.
    retries: int
    #: Every failed request, including the last one of an abandoned alert.
    failed_attempts: int
    #: Alerts given up after `max_retries`.
    abandoned: int
    #: Alerts the receiver refused with a 4xx (not retried).
    rejected: int
    #: Alerts not queued because the queue was full.
    dropped_on_overflow: int
    #: Alerts waiting (the one in flight included).
    pending: int


def _body(alert: Alert, evidence: AlertEvidence | None = None) -> bytes:
    return json.dumps(alert_to_json(alert, evidence), sort_keys=True,
                      separators=(",", ":")).encode()


class WebhookSink:
    """POSTs alerts as JSON to one URL from a background task; calling it only enqueues."""

    #: The loop hands this sink each alert's evidence (`evidence=`), stated in the body.
    takes_evidence = True

    def __init__(self, url: str, *, timeout_s: float = 5.0, max_retries: int | None = None,
                 backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0,
                 queue_limit: int = 100_000, headers: Mapping[str, str] | None = None,
                 kinds: frozenset[AlertKind] | None = None, seed: int = 0) -> None:
        self.config = WebhookConfig(
            url=url, timeout_s=timeout_s, max_retries=max_retries,
            backoff_base_s=backoff_base_s, backoff_cap_s=backoff_cap_s,
            queue_limit=queue_limit, headers=tuple((headers or {}).items()), kinds=kinds)
        self._queue: collections.deque[tuple[Alert, AlertEvidence | None]] = \
            collections.deque()
        self._rng = random.Random(seed)  # jitter only; seeded so tests are repeatable
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._delivered = self._retries = self._failed = 0
        self._abandoned = self._rejected = self._dropped = 0

    @classmethod
    def from_config(cls, cfg: WebhookConfig, *, seed: int = 0) -> WebhookSink:
        return cls(cfg.url, timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
                   backoff_base_s=cfg.backoff_base_s, backoff_cap_s=cfg.backoff_cap_s,
                   queue_limit=cfg.queue_limit, headers=dict(cfg.headers), kinds=cfg.kinds,
                   seed=seed)

    # ------------------------------------------------------------------ tick-loop side
    def __call__(self, alerts: Sequence[Alert],
                 evidence: Sequence[AlertEvidence | None] | None = None) -> None:
        """Enqueue `alerts` (O(len(alerts)), no I/O, no await); safe from any thread.

        `evidence`, when given, holds one entry per alert (None: nothing to state)."""
        q = self._queue
        limit = self.config.queue_limit
        kinds = self.config.kinds
        added = False
        for i, a in enumerate(alerts):
            if kinds is not None and a.kind not in kinds:
                continue
            if len(q) >= limit:
                self._dropped += 1
                if self._dropped % 1000 == 1:
                    log.warning("webhook %s: queue full (%d alerts), dropped %d alert(s) so far; "
                                "latest dropped: %s at tick %d", self.config.url, limit,
                                self._dropped, a.kind.name, a.tick_id)
                continue
            q.append((a, evidence[i] if evidence is not None else None))
            added = True
        if added and self._wake is not None:
            if threading.get_ident() == self._loop_thread:
                self._wake.set()
            elif self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake.set)

    @property
    def stats(self) -> WebhookStats:
        return WebhookStats(delivered=self._delivered, retries=self._retries,
                            failed_attempts=self._failed, abandoned=self._abandoned,
                            rejected=self._rejected, dropped_on_overflow=self._dropped,
                            pending=len(self._queue))

    # ------------------------------------------------------------------ background side
    async def start(self) -> None:
        """Start the delivery task on the running loop (alerts queued before are kept)."""
        if self._task is not None:
            raise RuntimeError("WebhookSink.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        if self._queue:
            self._wake.set()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            headers={"Content-Type": "application/json", **dict(self.config.headers)})
        self._task = asyncio.create_task(self._run(), name=f"webhook {self.config.url}")
        self._task.add_done_callback(self._on_task_done)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook %s: delivery task crashed; alerts now only queue",
                      self.config.url, exc_info=task.exception())

    async def stop(self, drain_timeout_s: float = 5.0) -> WebhookStats:
        """Deliver what is queued for up to `drain_timeout_s`, then stop; returns the counters.

        Alerts still pending after the drain are logged (count and first tick) and stay in
        `stats.pending`.
        """
        task = self._task
        if task is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_timeout_s
            while self._queue and not task.done() and loop.time() < deadline:
                await asyncio.sleep(min(0.01, max(0.0, deadline - loop.time())))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._queue:
            log.warning("webhook %s: stopped with %d alert(s) undelivered (first at tick %d)",
                        self.config.url, len(self._queue), self._queue[0][0].tick_id)
        return self.stats

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._deliver(*self._queue[0])
            self._queue.popleft()

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cfg = self.config
        ceiling = min(cfg.backoff_cap_s, cfg.backoff_base_s * float(1 << min(attempt, 30)))
        delay = ceiling / 2 + self._rng.random() * ceiling / 2  # "equal jitter"
        if retry_after is not None:
            delay = max(delay, min(retry_after, cfg.backoff_cap_s))
        return delay

    async def _deliver(self, alert: Alert, evidence: AlertEvidence | None = None) -> None:
        """Send one alert until it is acknowledged, refused, or abandoned."""
        assert self._session is not None
        cfg = self.config
        body = _body(alert, evidence)
        key = f"{alert.tick_id}-{alert.kind.name}-{alert.token_id}"
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self._session.post(cfg.url, data=body,
                                              headers={"Idempotency-Key": key}) as resp:
                    status = resp.status
                    await resp.read()
                    if 200 <= status < 300:
                        self._delivered += 1
                        return
                    if 400 <= status < 500 and status not in RETRY_STATUS:
                        self._failed += 1
                        self._rejected += 1
                        log.error("webhook %s refused alert %s (tick %d) with HTTP %d; not "
                                  "retried (check the url and headers)", cfg.url,
                                  alert.kind.name, alert.tick_id, status)
                        return
                    what = f"HTTP {status}"
                    retry_after = _retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                what = type(exc).__name__
            self._failed += 1
            if cfg.max_retries is not None and attempt >= cfg.max_retries:
                self._abandoned += 1
                log.error("webhook %s: gave up on alert %s (tick %d) after %d attempts (%s)",
                          cfg.url, alert.kind.name, alert.tick_id, attempt + 1, what)
                return
            self._retries += 1
            delay = self._backoff(attempt, retry_after)
            if attempt == 0 or attempt % 10 == 0:
                log.warning("webhook %s: %s; retry %d in %.2f s", cfg.url, what, attempt + 1,
                            delay)
            attempt += 1
            await asyncio.sleep(delay)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
