"""The live view's market columns: the core's evidence of a tick, as cells, headers, caption.

`record_evidence` decodes the evidence records a `TickRecords` carries (only the rows shown),
through `evidence_from_record` with the config's windows, so the view states the numbers the
alerts, `export` and `report` state; `market_headers` names each figure's window ("move 60s",
"OI 60s", "liq 10s") and `market_caption` what kind of figure it is (vs the window's average,
a decaying sum). Unknown facts are dashes, never zeros.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine_adapters.evidence_text import (
    AlertEvidence,
    Basis,
    duration,
    evidence_from_record,
    money,
    price_text,
)
from engine_core.evidence import EvidenceRecord, EvidenceWindows
from engine_core.record import RECORD_SIZE, Record


def _short(seconds: float | None) -> str:
    """A window in a header: "60s", "2m", "2.5s" (the long form is `duration`)."""
    if not seconds:
        return ""
    text = duration(seconds)
    return text.replace(" min", "m").replace(" s", "s")


def market_headers(ev: AlertEvidence) -> tuple[str, ...]:
    """The market columns' headers, each naming its figure's window ("move 60s", "liq 10s")."""
    return tuple(f"{name} {_short(w)}".rstrip() for name, w in (
        ("price", None), ("move", ev.move_window_s), ("\u03c3", None), ("OI", ev.oi_window_s),
        ("fund/h", None), ("liq", ev.liq_window_s)))


def market_caption(ev: AlertEvidence) -> str:
    """What the market columns are, windows included (the table's caption)."""
    if ev.basis is Basis.CHANGE:
        return "move, OI: change over the window; liq: longs (L), shorts (S) in the window"
    return ("move, OI: vs their window's average; \u03c3: the move in the symbol's own "
            "volatility; liq: longs (L), shorts (S), decaying sum of the window")


def min_width(header: str) -> int:
    """Market columns are not cut (a price "60,120…" misleads); the score columns give way."""
    wide = header.startswith(("price", "fund", "liq"))
    return max(len(header), 9 if wide else 6)


def _pct(v: float | None, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def market_cells(ev: AlertEvidence | None, columns: Sequence[str]) -> list[str]:
    """price, move %, move in sigma, OI change %, funding %/h, liquidations by side."""
    if not columns:
        return []
    if ev is None:
        return ["-"] * len(columns)
    liq = " ".join(f"{money(v)} {side}" for side, v in (("L", ev.liq_long_usd),
                                                       ("S", ev.liq_short_usd)) if v)
    return ["-" if ev.price is None else price_text(ev.price),
            _pct(ev.move_pct, "{:+.2f}%"), _pct(ev.move_sigma, "{:+.1f}"),
            _pct(ev.oi_change_pct, "{:+.2f}%"),
            _pct(None if ev.funding_per_hour is None else ev.funding_per_hour * 100, "{:+.4f}%"),
            liq or "-"]


def record_evidence(records: Sequence[Record], windows: EvidenceWindows,
                    positions: Iterable[int] | None = None) -> dict[int, AlertEvidence]:
    """token id -> the core's evidence of this tick, for `records` (a `TickRecords`; empty
    when it carries no evidence bytes; one record per token, in the records' order). Only
    the records at `positions` (indices into `records`) are decoded when given."""
    data = getattr(records, "evidence", b"")
    out: dict[int, AlertEvidence] = {}
    if len(data) != len(records) * RECORD_SIZE:
        return out
    for i in range(len(records)) if positions is None else positions:
        r = records[i]
        rec = EvidenceRecord.from_bytes(data[i * RECORD_SIZE:(i + 1) * RECORD_SIZE], check=False)
        if rec.token_id == r.token_id and rec.tick_id == r.tick_id:
            out[r.token_id] = evidence_from_record(rec, windows)
    return out
