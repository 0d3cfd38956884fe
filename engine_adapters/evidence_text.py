"""What an alert states as its evidence: the market facts of its tick, as values and as text.

    ev = AlertEvidence(price=60_120.5, move_pct=-2.3, move_sigma=-4.1, oi_change_pct=-4.1,
                       window_s=60, liq_long_usd=3.2e6, liq_short_usd=0.0,
                       funding_per_hour=0.0001)
    evidence_text(ev)   -> "OI −4.1 % in 60 s, $3.2 M of longs liquidated, price −2.3 % = 4.1σ"
    evidence_facts(ev)  -> [("Price", "60,120.5"), ("Move", "−2.3 % = 4.1σ"), ...]
    evidence_json(ev)   -> {"price": 60120.5, "move_pct": -2.3, ...}   (alerts.jsonl, sinks)

Every field is optional (None: the tick did not know it, e.g. no OI poll yet): a missing fact
is left out of the text, never printed as 0. The text is a pure function of the values, so
`verify`, which rebuilds the values from stored bytes, rebuilds the same text. Negative
numbers use the minus sign U+2212, as a trader reads them; the JSON keeps plain floats.
"""

from __future__ import annotations

from typing import Any

import attrs

from engine_core.evidence import EvidenceRecord, EvidenceWindows

MINUS = "\u2212"


@attrs.frozen(kw_only=True, slots=True)
class AlertEvidence:
    """The facts behind one alert (one symbol at one tick); None where unknown."""

    #: Mid price (mark where the book is missing) at the alert's tick.
    price: float | None = None
    #: Price change over `window_s`, in percent.
    move_pct: float | None = None
    #: The same change in units of the symbol's own realized volatility (signed).
    move_sigma: float | None = None
    #: Open-interest change over `window_s`, in percent.
    oi_change_pct: float | None = None
    #: The window of the changes above, in seconds.
    window_s: int | None = None
    #: Notional of longs (forced sells) / shorts (forced buys) liquidated in the window, USD.
    liq_long_usd: float | None = None
    liq_short_usd: float | None = None
    #: Funding rate per hour (the interval's rate divided by its hours), a fraction.
    funding_per_hour: float | None = None
    #: Open interest in contracts, and mark and index prices, at the tick.
    oi: float | None = None
    mark: float | None = None
    index: float | None = None


def _signed(x: float, digits: int = 1) -> str:
    s = f"{abs(x):.{digits}f}"
    return (MINUS + s) if x < 0 and float(s) != 0 else s


def money(usd: float) -> str:
    """$950, $12.4 k, $3.2 M, $1.05 B (three significant figures at most)."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if usd >= scale:
            v = usd / scale
            return f"${v:.3g} {unit}" if v < 100 else f"${v:.0f} {unit}"
    return f"${usd:.0f}"


def price_text(p: float) -> str:
    """A price with as many decimals as its size needs (60,120.5 / 0.0012345)."""
    if p >= 1000:
        return f"{p:,.1f}"
    if p >= 1:
        return f"{p:,.4g}" if p < 10 else f"{p:,.2f}"
    return f"{p:.5g}"


def _window(ev: AlertEvidence) -> str:
    return f" in {ev.window_s} s" if ev.window_s else ""


def _move(ev: AlertEvidence) -> str | None:
    if ev.move_pct is None and ev.move_sigma is None:
        return None
    parts = []
    if ev.move_pct is not None:
        parts.append(f"{_signed(ev.move_pct)} %")
    if ev.move_sigma is not None:
        parts.append(f"{abs(ev.move_sigma):.1f}\u03c3")
    return " = ".join(parts)


def _liquidations(ev: AlertEvidence) -> str | None:
    parts = []
    if ev.liq_long_usd:
        parts.append(f"{money(ev.liq_long_usd)} of longs")
    if ev.liq_short_usd:
        parts.append(f"{money(ev.liq_short_usd)} of shorts")
    return " and ".join(parts) + " liquidated" if parts else None


def evidence_text(ev: AlertEvidence) -> str:
    """One sentence: OI change, liquidations, price move (what is known, in that order)."""
    parts = []
    if ev.oi_change_pct is not None:
        parts.append(f"OI {_signed(ev.oi_change_pct)} %{_window(ev)}")
    liq = _liquidations(ev)
    if liq is not None:
        parts.append(liq)
    move = _move(ev)
    if move is not None:
        parts.append(f"price {move}")
    if ev.funding_per_hour is not None:
        parts.append(f"funding {_signed(ev.funding_per_hour * 100, 4)} %/h")
    return ", ".join(parts)


def evidence_facts(ev: AlertEvidence) -> list[tuple[str, str]]:
    """(name, value) pairs for the chat sinks' fields, the known ones only."""
    facts: list[tuple[str, str]] = []
    if ev.price is not None:
        facts.append(("Price", price_text(ev.price)))
    move = _move(ev)
    if move is not None:
        facts.append((f"Move{_window(ev)}", move))
    if ev.oi_change_pct is not None:
        facts.append((f"OI change{_window(ev)}", f"{_signed(ev.oi_change_pct)} %"))
    liq = [(n, v) for n, v in (("longs", ev.liq_long_usd), ("shorts", ev.liq_short_usd)) if v]
    if ev.liq_long_usd is not None or ev.liq_short_usd is not None:
        facts.append(("Liquidated", ", ".join(f"{money(v)} {n}" for n, v in liq) or "none"))
    if ev.funding_per_hour is not None:
        facts.append(("Funding", f"{_signed(ev.funding_per_hour * 100, 4)} %/h"))
    return facts


def evidence_json(ev: AlertEvidence) -> dict[str, Any]:
    """Every field by name (None kept, so a reader sees what was unknown)."""
    return attrs.asdict(ev)


def evidence_from_json(d: dict[str, Any]) -> AlertEvidence:
    """Inverse of `evidence_json`; ValueError naming an unknown key or a non-number."""
    known = {a.name for a in attrs.fields(AlertEvidence)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"evidence: unknown key(s) {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError(f"evidence.{k} must be a number or null, got {v!r}")
        out[k] = None if v is None else (int(v) if k == "window_s" else float(v))
    return AlertEvidence(**out)


def evidence_from_record(rec: EvidenceRecord, windows: EvidenceWindows) -> AlertEvidence:
    """The facts of the core's evidence record (the token at the alert's tick), as values.

    The move and its sigma are one measurement (price vs its move-window average), so the
    text says "price −2.3 % = 4.1σ"; `window_s` is the move window, liquidations are those
    of the liquidation window. A pure function of the stored integers, for `verify`.
    """
    return AlertEvidence(price=rec.price_value, move_pct=rec.move_pct,
                         move_sigma=rec.move_sigma_value, oi_change_pct=rec.oi_change_pct,
                         window_s=round(windows.move_s) or None,
                         liq_long_usd=float(rec.liq_long_window),
                         liq_short_usd=float(rec.liq_short_window),
                         funding_per_hour=rec.funding_per_hour_value, oi=rec.oi_value,
                         mark=rec.mark_value, index=rec.index_value)
