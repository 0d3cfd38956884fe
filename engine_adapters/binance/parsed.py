"""What parsing a Binance message yields: events, rejects, control replies, API errors.

Shared by the WebSocket frame parser (messages.py) and the REST body parsers
(rest_payloads.py); every value is frozen, so a parse result can be kept and compared.
"""

from __future__ import annotations

import enum

import attrs

from engine_core.events import MarketEvent


@attrs.frozen(kw_only=True, slots=True)
class Reject:
    """Why (part of) a frame or body was refused: the reason, the offending key, the stream."""

    reason: str
    #: Binance key that was wrong (`p`, `o.ap`, `data`), or "" when the whole frame is bad.
    field: str = ""
    #: Combined-stream name (`btcusdt@aggTrade`), REST path, or "" for raw frames.
    stream: str = ""
    #: Symbol of the offending item, when it could be read.
    symbol: str = ""

    def __str__(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        src = f"{self.stream}: " if self.stream else ""
        return f"{src}{self.symbol + ': ' if self.symbol else ''}{self.reason}{where}"


class ControlKind(enum.Enum):
    """Which reply to a client request a control frame is."""

    #: `{"result": ..., "id": n}`: the request succeeded (`result` is null or a list).
    ACK = "ack"
    #: `{"error": {"code": c, "msg": m}, "id": n}`: the request was refused.
    ERROR = "error"


@attrs.frozen(kw_only=True, slots=True)
class Control:
    """A reply to SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS: not market data."""

    kind: ControlKind
    #: The request id echoed back; None when the server could not read it (`"id": null`).
    request_id: int | str | None
    #: LIST_SUBSCRIPTIONS result (stream names); empty for a plain ack.
    result: tuple[str, ...] = ()
    code: int | None = None
    message: str = ""


@attrs.frozen(kw_only=True, slots=True)
class ApiError:
    """A REST error answer (`{"code": -1003, "msg": ...}`) or a non-2xx status without one."""

    status: int
    #: Binance error code (-1003 = too many requests); None when the body had none (HTML 403).
    code: int | None
    message: str
    path: str = ""


@attrs.frozen(kw_only=True, slots=True)
class Parsed:
    """Everything one frame (or REST body) yielded. Events and rejects keep frame order."""

    events: tuple[MarketEvent, ...] = ()
    rejects: tuple[Reject, ...] = ()
    #: Items skipped because their symbol is outside the universe. Not an error, only counted.
    ignored: int = 0
    control: Control | None = None
    api_error: ApiError | None = None
    #: Items of a Binance kind this engine does not consume (depthUpdate, kline, ...), in the
    #: universe or not. Not an error, only counted.
    unused: int = 0
