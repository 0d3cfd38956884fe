"""Bus addresses and stream settings: `nats://HOST:PORT/SUBJECT[?start=ISO8601|seq=N&durable=NAME]`.

One URL names everything a recorder or an engine needs: the server, the subject the recorder
publishes capture lines on, and (for a consumer) where to start and under which durable name
to remember its position. The JetStream stream that holds the subject is named after it
(`binance.usdm` -> `CAPTURE_BINANCE_USDM`) unless `stream=NAME` says otherwise. Retention is
set by the recorder when it creates the stream (`max_age`, `max_bytes`, `dup_window` in the
query, defaults below); a consumer never changes it.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse

import attrs

#: Keep 7 days of raw messages by default (replay a week; older data lives in capture files).
DEFAULT_MAX_AGE_S = 7 * 86_400.0
#: ... and at most 20 GiB, whichever limit is hit first (the oldest messages go first).
DEFAULT_MAX_BYTES = 20 << 30
#: A re-sent message id within 2 minutes is stored once (JetStream's own default window).
DEFAULT_DUP_WINDOW_S = 120.0
#: The durable consumer name when the URL gives none.
DEFAULT_DURABLE = "engine"

_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
_SIZES = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_KEYS = ("start", "seq", "durable", "stream", "max_age", "max_bytes", "dup_window")


class BusUrlError(ValueError):
    """A bus URL that cannot be used; the message names the part that is wrong."""


@attrs.frozen(kw_only=True)
class StreamSettings:
    """Retention of the stream a recorder creates (JetStream limits retention, file storage)."""

    max_age_s: float = DEFAULT_MAX_AGE_S
    max_bytes: int = DEFAULT_MAX_BYTES
    dup_window_s: float = DEFAULT_DUP_WINDOW_S


@attrs.frozen(kw_only=True)
class BusUrl:
    """A parsed bus URL. `start_ms` and `start_seq` are exclusive; neither = from the start."""

    host: str
    port: int
    subject: str
    stream: str
    durable: str = DEFAULT_DURABLE
    start_ms: int | None = None
    start_seq: int | None = None
    settings: StreamSettings = StreamSettings()

    @property
    def server(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> BusUrl:
        """Parse and check a bus URL; raises `BusUrlError` saying which part is wrong."""
        u = urllib.parse.urlsplit(text)
        if u.scheme != "nats":
            raise BusUrlError(f"{text!r}: a bus URL starts with nats:// "
                              f"(nats://HOST:PORT/SUBJECT)")
        try:
            port = u.port or 4222
        except ValueError:
            raise BusUrlError(f"{text!r}: the port must be a number 1..65535") from None
        if not u.hostname:
            raise BusUrlError(f"{text!r}: no host (nats://HOST:PORT/SUBJECT)")
        subject = u.path.lstrip("/")
        if not _SUBJECT.fullmatch(subject):
            raise BusUrlError(f"{text!r}: the subject {subject!r} must be dot-separated tokens "
                              f"of letters, digits, '_' or '-' (e.g. binance.usdm)")
        q = _query(text, u.query)
        stream = q.get("stream") or "CAPTURE_" + re.sub(r"[^A-Za-z0-9]", "_", subject).upper()
        durable = q.get("durable", DEFAULT_DURABLE)
        for what, name in (("stream", stream), ("durable", durable)):
            if not _NAME.fullmatch(name):
                raise BusUrlError(f"{text!r}: {what} name {name!r} must be 1-64 letters, "
                                  f"digits, '_' or '-'")
        if "start" in q and "seq" in q:
            raise BusUrlError(f"{text!r}: give start= (a time) or seq= (a sequence), not both")
        start_ms = _iso_ms(text, q["start"]) if "start" in q else None
        start_seq = None
        if "seq" in q:
            if not q["seq"].isdigit() or int(q["seq"]) < 1:
                raise BusUrlError(f"{text!r}: seq must be a stream sequence >= 1, "
                                  f"got {q['seq']!r}")
            start_seq = int(q["seq"])
        settings = StreamSettings(
            max_age_s=_duration(text, "max_age", q.get("max_age"), DEFAULT_MAX_AGE_S),
            max_bytes=_size(text, q.get("max_bytes"), DEFAULT_MAX_BYTES),
            dup_window_s=_duration(text, "dup_window", q.get("dup_window"),
                                   DEFAULT_DUP_WINDOW_S))
        return cls(host=u.hostname, port=port, subject=subject, stream=stream, durable=durable,
                   start_ms=start_ms, start_seq=start_seq, settings=settings)


def is_bus_url(text: str) -> bool:
    """True when `text` names a bus rather than a file (`nats://...`)."""
    return text.startswith("nats://")


def _query(text: str, query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        if key not in _KEYS:
            raise BusUrlError(f"{text!r}: unknown query key {key!r}; known: {', '.join(_KEYS)}")
        if key in out:
            raise BusUrlError(f"{text!r}: {key}= given twice")
        out[key] = value
    return out


def _iso_ms(text: str, value: str) -> int:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BusUrlError(f"{text!r}: start must be an ISO 8601 time like "
                          f"2026-12-01T00:00Z, got {value!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)  # a bare time is UTC, like every time in this project
    return int(t.timestamp() * 1000)


def _duration(text: str, key: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", value)
    if m is None or float(m.group(1)) <= 0:
        raise BusUrlError(f"{text!r}: {key} must be a positive duration like 90s, 30m, 12h or "
                          f"7d, got {value!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _size(text: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    m = re.fullmatch(r"(\d+)([kmgtKMGT]?)i?[bB]?", value)
    if m is None or int(m.group(1)) <= 0:
        raise BusUrlError(f"{text!r}: max_bytes must be a positive size like 500M or 20G, "
                          f"got {value!r}")
    return int(m.group(1)) * _SIZES[m.group(2).lower()]


__all__ = ["DEFAULT_DUP_WINDOW_S", "DEFAULT_DURABLE", "DEFAULT_MAX_AGE_S", "DEFAULT_MAX_BYTES",
           "BusUrl", "BusUrlError", "StreamSettings", "is_bus_url"]
