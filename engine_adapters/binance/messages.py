"""Binance USD-M WebSocket frames -> engine_core events: a total, fast, pure parser.

`FrameParser.parse(text)` turns one frame (combined `{"stream", "data"}` or raw form, as text or
bytes) into a `Parsed` value: the market events it carries, rejects (what was wrong, which
field, which stream), how many array items were skipped because their symbol is outside the
universe, and the control reply (`{"result": null, "id": 1}`, `{"error": {...}, "id": ...}`) if
the frame was one. It never raises on input (STYLE rule 3): bad network input is a `Reject`.

Division of labour: this module checks *structure* (JSON, keys, JSON types, decimal strings,
frame size, event type). Value checks (NaN, inf, <= 0, crossed book) are done once, in
`engine_core.normalize.validate`, so "NaN" parses here to `nan` and is refused there.

Field sources (Binance USD-M "Websocket Market Streams" pages, see the fixtures README):
- aggTrade: trade_id `a`, price `p`, qty `q`, exchange_ts `T` (trade time), maker flag `m`.
- trade: trade_id `t`, otherwise as aggTrade.
- bookTicker: update_id `u`, `b`/`B`/`a`/`A`, exchange_ts `T`, falling back to event time `E`.
- forceOrder: side `o.S`, price `o.ap` (average fill) if > 0 else `o.p`, qty `o.z` (cumulative
  filled, not the last fill `o.l`: README fact 9), exchange_ts `o.T`.
- markPriceUpdate: exchange_ts `E`, mark `p`, index `i`, funding `r`, next funding `T`.
- depthUpdate of a partial-book stream (`<sym>@depth5/10/20[@100ms|@500ms]`, combined form):
  a `DepthReceived` of cumulative notional bands (`engine_adapters.depth_bands`). The diff
  stream `<sym>@depth[@100ms]` and raw-form depth frames (the stream is unknown) stay unused.
Unknown keys are ignored: live frames carry `st`, `nq`, `ps`, `ap` (README fact 11).

Hot path: the per-kind builders index the dict directly and check JSON types inline; only when
they fail does the slower spec-driven `_diagnose` run to say exactly what was wrong.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Collection
from typing import Any

import orjson

from engine_adapters.binance.frame_builders import (
    _BUILDERS,
    _FAST_BUILDERS,
    _SIDES,
    _Bad,
    _parsed_one,
    _symbol_of,
    decode_event,
)
from engine_adapters.binance.parsed import ApiError, Control, ControlKind, Parsed, Reject
from engine_adapters.depth_bands import DepthError, depth20_bands
from engine_core.events import (
    MarketEvent,
)

#: Default largest frame accepted. A full `!markPrice@arr@1s` frame for ~600 symbols is ~150 KiB.
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
#: How much of an offending value is quoted in a reject reason.
_QUOTE = 40


_IGNORED_ONE = Parsed(ignored=1)
_UNUSED_ONE = Parsed(unused=1)


class _Skip(enum.Enum):
    """Why `_item` skipped a payload object (not an error: counted, never quarantined)."""

    OUTSIDE_UNIVERSE = "outside_universe"
    UNUSED_KIND = "unused_kind"


#: Real Binance event types that carry nothing for this engine: counted as ignored, not rejected.
_UNUSED_KINDS = frozenset({
    "depthUpdate", "kline", "continuous_kline", "24hrTicker", "24hrMiniTicker",
    "compositeIndex", "contractInfo", "assetIndexUpdate",
})
#: Kinds that also come in an all-market stream with object payloads (`!forceOrder@arr`,
#: `!bookTicker`): in raw form the stream name is unknown, so an outside symbol is ignored.
_ALL_MARKET_OBJECT_KINDS = frozenset({"forceOrder", "bookTicker"})

_loads = orjson.loads
#: Partial book depth streams (`btcusdt@depth20@100ms`); `btcusdt@depth@100ms` is the diff.
_PARTIAL_DEPTH = re.compile(r"[a-z0-9_]+@depth(5|10|20)(@\d+ms)?$")


# --- slow diagnosis: the same rules as the builders, as data, to name the broken one ------

class _J(enum.Enum):
    """Expected JSON type of a payload key."""

    DEC = "decimal string"
    INT = "integer"
    BOOL = "boolean"
    STR = "string"
    OBJ = "object"
    SIDE = '"BUY" or "SELL"'


_SPEC: dict[str, tuple[tuple[str, _J], ...]] = {
    "aggTrade": (("a", _J.INT), ("p", _J.DEC), ("q", _J.DEC), ("T", _J.INT), ("m", _J.BOOL)),
    "trade": (("t", _J.INT), ("p", _J.DEC), ("q", _J.DEC), ("T", _J.INT), ("m", _J.BOOL)),
    "bookTicker": (("u", _J.INT), ("b", _J.DEC), ("B", _J.DEC), ("a", _J.DEC), ("A", _J.DEC)),
    "forceOrder": (("o", _J.OBJ),),
    "markPriceUpdate": (("E", _J.INT), ("p", _J.DEC), ("i", _J.DEC), ("r", _J.DEC),
                        ("T", _J.INT)),
}
_ORDER_SPEC = (("S", _J.SIDE), ("p", _J.DEC), ("z", _J.DEC), ("T", _J.INT))


def _json_type(v: object) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def _check(d: dict[str, Any], key: str, want: _J, prefix: str) -> tuple[str, str] | None:
    name = prefix + key
    if key not in d:
        return name, f"missing key {name!r}"
    v: Any = d[key]
    ok = {_J.DEC: str, _J.INT: int, _J.BOOL: bool, _J.STR: str, _J.OBJ: dict,
          _J.SIDE: str}[want]
    if type(v) is not ok:
        return name, f"{name!r} must be a {want.value}, got {_json_type(v)}"
    v = d[key]  # re-read as Any: the check above narrowed it to `object` for mypy
    if want is _J.DEC:
        try:
            float(v)
        except ValueError:
            return name, f"{name!r} is not a decimal number: {v[:_QUOTE]!r}"
    if want is _J.SIDE and v not in _SIDES:
        return name, f"{name!r} must be {want.value}, got {v[:_QUOTE]!r}"
    return None


def _diagnose(d: dict[str, Any], kind: str) -> tuple[str, str]:
    """Name the first key that breaks `kind`'s rules (same rules as the fast builders)."""
    for key, want in _SPEC[kind]:
        bad = _check(d, key, want, "")
        if bad:
            return bad
    if kind == "bookTicker":
        key = "T" if "T" in d else "E"
        return _check(d, key, _J.INT, "") or ("", "malformed bookTicker payload")
    if kind == "forceOrder":
        o = d["o"]
        for key, want in _ORDER_SPEC:
            bad = _check(o, key, want, "o.")
            if bad:
                return bad
        if not math.isfinite(float(o["p"])):
            return "o.p", f"'o.p' must be finite, got {o['p'][:_QUOTE]!r}"
        if "ap" in o:
            bad = _check(o, "ap", _J.DEC, "o.")
            if bad:
                return bad
            if not math.isfinite(float(o["ap"])):
                return "o.ap", f"'o.ap' must be finite, got {o['ap'][:_QUOTE]!r}"
    return "", f"malformed {kind} payload"


# --- the parser ---------------------------------------------------------------------------


class FrameParser:
    """Parses Binance USD-M WebSocket frames for a fixed symbol universe (None = any symbol)."""

    __slots__ = ("_fast_len", "_max_bytes", "_symbols", "_typed")

    def __init__(self, symbols: Collection[str] | None = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, *, typed: bool = True) -> None:
        """`typed=False` skips the msgspec decoder (the dict path alone, for comparison)."""
        if max_frame_bytes <= 0:
            raise ValueError(f"max_frame_bytes must be > 0, got {max_frame_bytes}")
        self._symbols = None if symbols is None else frozenset(symbols)
        self._max_bytes = max_frame_bytes
        self._typed = typed
        # A str of n characters encodes to at most 4n UTF-8 bytes, so below this length the
        # size check cannot fail and the hot path may skip it.
        self._fast_len = max_frame_bytes // 4

    @property
    def fast_len(self) -> int:
        """Frames up to this length may take the typed fast path (longer: size-checked)."""
        return self._fast_len

    def event(self, text: str | bytes | bytearray | memoryview) -> MarketEvent | None:
        """The typed fast path alone: the frame's one event, or None (then `parse_untyped`).

        None is not a verdict: the frame is of another shape or kind, or something in it is
        wrong, and the full path says what. Never raises.
        """
        if self._typed and len(text) <= self._fast_len:
            try:
                return decode_event(text, self._symbols)
            except Exception:  # safety net: the full path reports whatever this was
                return None
        return None

    def parse(self, text: str | bytes | bytearray | memoryview) -> Parsed:
        """Parse one frame. Never raises: anything wrong comes back as a `Reject`."""
        ev = self.event(text)
        return self.parse_untyped(text) if ev is None else _parsed_one(ev)

    def parse_untyped(self, text: str | bytes | bytearray | memoryview) -> Parsed:
        """`parse` without the typed decoder (after `event` said None). Never raises."""
        try:
            # Hot path, inlined on purpose (STYLE rule 6): a combined single-object frame of a
            # known kind for a universe symbol. Anything else, or any failure, takes the full
            # path below, which re-checks everything and explains what was wrong.
            if len(text) <= self._fast_len:
                doc = _loads(text)
                if type(doc) is dict:
                    data = doc.get("data")
                    if type(data) is dict and type(doc.get("stream")) is str:
                        kind = data.get("e")
                        if type(kind) is str:
                            builder = _FAST_BUILDERS.get(kind)
                            sym = data.get("s")
                            if builder is not None and type(sym) is str and (
                                    self._symbols is None or sym in self._symbols):
                                try:
                                    return _parsed_one(builder(data, sym))
                                except (KeyError, TypeError, ValueError, _Bad):
                                    pass
                return self._dispatch(doc)
            return self._parse(text)
        except orjson.JSONDecodeError as exc:
            return Parsed(rejects=(Reject(reason=f"not JSON: {exc}"),))
        except Exception as exc:  # safety net: a parser bug must not stop the feed
            return Parsed(rejects=(Reject(
                reason=f"internal parser error {type(exc).__name__}: {exc}"),))

    def _parse(self, text: str | bytes | bytearray | memoryview) -> Parsed:
        size = len(text)
        if type(text) is str and size * 4 > self._max_bytes:
            size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._max_bytes:
            return Parsed(rejects=(Reject(
                reason=f"frame of {size} bytes exceeds the limit of {self._max_bytes}"),))
        return self._dispatch(_loads(text))

    def _dispatch(self, doc: object) -> Parsed:
        if type(doc) is dict:
            if "stream" in doc:
                stream = doc["stream"]
                if type(stream) is not str:
                    return Parsed(rejects=(Reject(
                        reason=f"'stream' must be a string, got {_json_type(stream)}",
                        field="stream"),))
                if "data" not in doc:
                    return Parsed(rejects=(Reject(reason="combined frame without 'data'",
                                                  field="data", stream=stream),))
                data = doc["data"]
                if type(data) is dict and data.get("e") == "depthUpdate" \
                        and _PARTIAL_DEPTH.match(stream):
                    return self._depth(data, stream)
                # `!forceOrder@arr`, `!bookTicker`, `!markPrice@arr@1s`: all-market streams.
                return self._payload(data, stream, stream.startswith("!"))
            if "e" in doc:
                return self._payload(doc, "", False)
            if "id" in doc and ("result" in doc or "error" in doc):
                return _control(doc)
            keys = ", ".join(sorted(repr(k) for k in doc)[:8])
            return Parsed(rejects=(Reject(reason=f"unrecognised frame with keys {keys}"),))
        if type(doc) is list:
            return self._payload(doc, "", True)
        return Parsed(rejects=(Reject(
            reason=f"frame must be a JSON object or array, got {_json_type(doc)}"),))

    def _depth(self, data: dict[str, Any], stream: str) -> Parsed:
        """A partial-book payload -> one DepthReceived, or a Reject naming the field."""
        sym = data.get("s")
        if type(sym) is str and self._symbols is not None and sym not in self._symbols:
            return Parsed(rejects=(Reject(
                reason=f"unknown symbol {sym[:_QUOTE]!r}: not in this run's universe",
                field="s", stream=stream, symbol=sym[:_QUOTE]),))
        try:
            return _parsed_one(depth20_bands(data))
        except DepthError as exc:
            field = str(exc).partition("`")[2].partition("`")[0]
            return Parsed(rejects=(Reject(reason=str(exc), field=field.partition("[")[0],
                                          stream=stream,
                                          symbol=sym[:_QUOTE] if type(sym) is str else ""),))

    def _payload(self, data: object, stream: str, all_market: bool) -> Parsed:
        if type(data) is dict:
            match self._item(data, stream, all_market, raw=not stream):
                case _Skip.OUTSIDE_UNIVERSE:
                    return _IGNORED_ONE
                case _Skip.UNUSED_KIND:
                    return _UNUSED_ONE
                case Reject() as rej:
                    return Parsed(rejects=(rej,))
                case event:
                    return _parsed_one(event)
        if type(data) is list:
            events: list[MarketEvent] = []
            rejects: list[Reject] = []
            ignored = unused = 0
            # One bad item must not cost the others (SPEC 4: nothing valid is lost).
            for item in data:
                if type(item) is not dict:
                    rejects.append(Reject(
                        reason=f"array item must be an object, got {_json_type(item)}",
                        field="data", stream=stream))
                    continue
                match self._item(item, stream, True, raw=False):
                    case _Skip.OUTSIDE_UNIVERSE:
                        ignored += 1
                    case _Skip.UNUSED_KIND:
                        unused += 1
                    case Reject() as rej:
                        rejects.append(rej)
                    case event:
                        events.append(event)
            return Parsed(events=tuple(events), rejects=tuple(rejects), ignored=ignored,
                          unused=unused)
        return Parsed(rejects=(Reject(
            reason=f"'data' must be an object or array, got {_json_type(data)}",
            field="data", stream=stream),))

    def _item(self, d: dict[str, Any], stream: str, all_market: bool,
              raw: bool) -> MarketEvent | Reject | _Skip:
        """One payload object -> event, Reject, or why it was skipped."""
        kind = d.get("e")
        if type(kind) is not str:
            if kind is None:
                return Reject(reason="missing key 'e' (event type)", field="e", stream=stream)
            return Reject(reason=f"'e' must be a string, got {_json_type(kind)}", field="e",
                          stream=stream)
        builder = _BUILDERS.get(kind)
        if builder is None:
            if kind in _UNUSED_KINDS:
                return _Skip.UNUSED_KIND
            return Reject(reason=f"unknown event type {kind[:_QUOTE]!r}", field="e",
                          stream=stream)
        sym = _symbol_of(d, kind)
        sym_key = "o.s" if kind == "forceOrder" else "s"
        if type(sym) is not str:
            if sym is None:
                return Reject(reason=f"missing key {sym_key!r}", field=sym_key, stream=stream)
            return Reject(reason=f"{sym_key!r} must be a string, got {_json_type(sym)}",
                          field=sym_key, stream=stream)
        universe = self._symbols
        if universe is not None and sym not in universe:
            if all_market or (raw and kind in _ALL_MARKET_OBJECT_KINDS):
                return _Skip.OUTSIDE_UNIVERSE
            return Reject(reason=f"unknown symbol {sym[:_QUOTE]!r}: not in this run's universe",
                          field=sym_key, stream=stream, symbol=sym[:_QUOTE])
        try:
            return builder(d, sym)
        except (KeyError, TypeError, ValueError, _Bad):
            field, reason = _diagnose(d, kind)
            return Reject(reason=reason, field=field, stream=stream, symbol=sym[:_QUOTE])


def _control(doc: dict[str, Any]) -> Parsed:
    rid = doc["id"]
    if type(rid) is not int and type(rid) is not str:
        rid = None
    if "error" in doc:
        err = doc["error"]
        code = err.get("code") if type(err) is dict else None
        msg = err.get("msg") if type(err) is dict else None
        return Parsed(control=Control(
            kind=ControlKind.ERROR, request_id=rid,
            code=code if type(code) is int else None,
            message=msg if type(msg) is str else repr(err)[:200]))
    result = doc["result"]
    names: tuple[str, ...] = ()
    if type(result) is list:
        names = tuple(x for x in result if type(x) is str)
    return Parsed(control=Control(kind=ControlKind.ACK, request_id=rid, result=names))


__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "ApiError",
    "Control",
    "ControlKind",
    "FrameParser",
    "Parsed",
    "Reject",
]
