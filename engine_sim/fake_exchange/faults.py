"""Fault-injection knobs of the fake exchange, its settings, and its counters.

All randomness comes from one seeded `random.Random`, so a chaos run is reproduced by its
seed (research/log_and_determinism.md, "Chaos suite"). Knobs are plain mutable fields: a test
or the demo flips them while the server runs. Frame faults *replace* the frame they hit
(a corrupted frame is lost data, not extra data), except `duplicate` which sends it twice
and `reorder` which swaps it with the next frame of the same connection.
"""

from __future__ import annotations

import random
import re

import attrs


@attrs.frozen(kw_only=True, slots=True)
class FakeConfig:
    """Protocol limits of the fake exchange; defaults are Binance's (fixtures README)."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Fact 8: a ping every 3 minutes ...
    ping_interval_s: float = 180.0
    #: ... and a client that has not ponged within 10 minutes is dropped.
    pong_timeout_s: float = 600.0
    #: Fact 7: connections are dropped at 24 h.
    lifetime_s: float = 86_400.0
    #: Fact 6: more than 10 incoming messages per second disconnects.
    max_incoming_per_s: int = 10
    #: Fact 5: 1024 streams per connection.
    max_streams: int = 1024
    #: Fact 12: 2400 request weight per minute per IP.
    weight_limit: int = 2400
    #: Length of the weight window (60 s on the exchange; shortened in tests).
    weight_window_s: float = 60.0
    #: Fact 14: the first automatic ban lasts 2 minutes.
    ban_s: float = 120.0
    #: Largest incoming WS message the server accepts.
    max_incoming_bytes: int = 64 * 1024
    #: Kept agg trades per symbol for REST `aggTrades`.
    trade_history: int = 200_000
    #: Open interest served before any was published (None: answer -1121 like an unlisted
    #: symbol, never a made-up zero that would seed a client's baselines at nothing).
    initial_open_interest: float | None = None


@attrs.define(kw_only=True)
class Faults:
    """Mutable fault knobs; probabilities are per frame / per request, counts are 'next N'."""

    seed: int = 0
    duplicate_prob: float = 0.0
    reorder_prob: float = 0.0
    malformed_prob: float = 0.0
    oversized_prob: float = 0.0
    oversized_bytes: int = 1 << 20
    nan_prob: float = 0.0
    #: Lose a published payload of a stream ending in `drop_suffix` before any subscriber
    #: gets it (a gap storm: agg ids go missing on the WS, REST still serves them).
    drop_prob: float = 0.0
    drop_suffix: str = "@aggTrade"
    #: Answer the next N REST requests with 429 + Retry-After `retry_after_s`.
    rest_429_next: int = 0
    retry_after_s: int = 1
    #: Answer the next N REST requests with 418 (a ban of `ban_s` seconds starts).
    rest_418_next: int = 0
    ban_s: float = 2.0
    #: Answer the next N REST requests with a 5xx (500, 502, 503 in turn).
    rest_5xx_next: int = 0
    rest_5xx_prob: float = 0.0
    #: Delay the next N REST answers by `rest_slow_s` seconds.
    rest_slow_next: int = 0
    rest_slow_s: float = 5.0
    rng: random.Random = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def frame_faults_on(self) -> bool:
        return (
            self.duplicate_prob > 0
            or self.reorder_prob > 0
            or self.malformed_prob > 0
            or self.oversized_prob > 0
            or self.nan_prob > 0
        )


@attrs.define(kw_only=True, slots=True)
class FakeStats:
    """What the fake exchange did (mutable counters; tests reconcile against them)."""

    ws_connections: int = 0
    ws_active: int = 0
    ws_requests: int = 0
    ws_request_errors: int = 0
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_dropped_stall: int = 0
    frames_dropped_no_conn: int = 0
    #: Seconds `deliver_many` waited for a client's socket buffer to drain (a slow reader).
    slow_client_wait_s: float = 0.0
    duplicated: int = 0
    reordered: int = 0
    malformed: int = 0
    #: Payloads lost by `drop_prob` (never sent to anyone).
    dropped: int = 0
    oversized: int = 0
    nan: int = 0
    pings_sent: int = 0
    pongs_received: int = 0
    disconnects_forced: int = 0
    disconnects_rate_limit: int = 0
    disconnects_pong_timeout: int = 0
    disconnects_lifetime: int = 0
    rest_requests: int = 0
    rest_200: int = 0
    rest_4xx: int = 0
    rest_429: int = 0
    rest_418: int = 0
    rest_5xx: int = 0
    rest_slow: int = 0
    #: Requests that arrived while a 429's Retry-After was still running (they earn a ban).
    rest_ignored_retry_after: int = 0


_NUMBER_FIELD = re.compile(r'"(p|b|a|markPrice|openInterest)":"[^"]*"')


def with_nan(text: str) -> str:
    """The frame with its first price-like decimal string replaced by `NaN`."""
    return _NUMBER_FIELD.sub(lambda m: f'"{m.group(1)}":"NaN"', text, count=1)


def truncated(text: str) -> str:
    """Malformed JSON: the frame cut in half (what a broken proxy or buffer bug produces)."""
    return text[: max(1, len(text) // 2)]


def padded(text: str, size: int) -> str:
    """Valid JSON grown to about `size` bytes by an extra string field at the top level."""
    if not text.endswith("}"):
        return text + " " * size
    return text[:-1] + ',"pad":"' + "x" * size + '"}'
