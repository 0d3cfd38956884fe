"""Why a capture line is not a valid envelope: the slow diagnosis behind `iter_capture`.

The reader's hot path only accepts or refuses; for a refused line this names the first
thing wrong (a missing key, a wrong JSON type, a bad value) for the quarantine file.
"""

from __future__ import annotations

#: How much of a bad line a `CaptureProblem` keeps (the quarantine file keeps 4096 chars too).
PROBLEM_TEXT_CHARS = 4096


def json_type(v: object) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
            dict: "object"}.get(type(v), type(v).__name__)


def diagnose(doc: object) -> str:
    """Say why a decoded line is not a valid envelope (the fast path already refused it)."""
    if type(doc) is not dict:
        return f"a capture line must be a JSON object, got {json_type(doc)}"
    want: list[tuple[str, type]] = [("recv_ms", int), ("channel", str)]
    if doc.get("channel") == "health":
        want += [("symbol", str), ("kind", str)]
    else:
        want += [("raw", str)]
    if doc.get("channel") == "rest":
        want += [("path", str), ("status", int)]
    for key, typ in want:
        if key not in doc:
            return f"missing key {key!r}"
        if type(doc[key]) is not typ:
            return f"{key!r} must be a JSON {json_type(typ())}, got {json_type(doc[key])}"
    if doc["recv_ms"] < 0:
        return f"'recv_ms' must be >= 0, got {doc['recv_ms']}"
    if doc["channel"] not in ("ws", "rest", "health"):
        return f"'channel' must be \"ws\", \"rest\" or \"health\", got {doc['channel'][:40]!r}"
    if "query" in doc and type(doc["query"]) is not str:
        return f"'query' must be a JSON string, got {json_type(doc['query'])}"
    return "invalid capture line"


def problem_text(line: bytes) -> str:
    text = line[:PROBLEM_TEXT_CHARS * 4].rstrip(b"\r\n").decode("utf-8", "replace")
    return text[:PROBLEM_TEXT_CHARS]
