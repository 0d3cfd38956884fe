"""What an alert states as its evidence: the market facts of its tick, as values and as text.

    ev = evidence_from_record(rec, EvidenceWindows.from_config(cfg))
    evidence_text(ev)   -> "OI −4.1 % vs 60 s avg and +12 % vs 24 h norm, $3.2 M of longs
                            liquidated (10 s decaying sum), price −2.3 % vs 60 s avg = 4.1σ,
                            funding 0.0100 %/h, basis −0.041 % (price vs index)"
    evidence_facts(ev)  -> [("Price", "60,120.5"), ("Move vs 60 s avg", "−2.3 % = 4.1σ"), ...]
    evidence_json(ev)   -> {"price": 60120.5, "move_pct": -2.3, "move_window_s": 60.0,
                            "oi_window_s": 60.0, "liq_window_s": 10.0, "basis": "mean", ...}

Each figure states its own window, the one the rule that reads it uses (engine_core/config.py):
the move and its sigma the move window (`move_window_ticks`), the OI change the fast OI window
of the OI-drop leg (`oi_fast_window_ticks`), liquidations the liquidation window of the
liquidation leg (`liq_window_ticks`). `basis` says what kind of figure they are:

    mean    the core's evidence record: price and OI *vs their moving average* over the window
            (an EMA, as the rules measure them), liquidations a *decaying sum* over the window
            (a print counts in full when it happens, then fades with the window's EMA)
    change  the shell tracker's fallback: now vs the snapshot one window ago, liquidations
            summed over that window

Every field is optional (None: the tick did not know it, e.g. no OI poll yet): a missing fact
is left out of the text, never printed as 0. The text is a pure function of the values, so
`verify`, which rebuilds the values from stored bytes, rebuilds the same text. Negative
numbers use the minus sign U+2212, as a trader reads them; the JSON keeps plain floats.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from engine_core.evidence import EvidenceRecord, EvidenceWindows

MINUS = "\u2212"
#: Version of the evidence's JSON keys and sentence, written beside them in alerts.jsonl
#: (`evidence_wording`). Bump it with any change to `evidence_json` or `evidence_text`:
#: `verify` compares the stated evidence only of alerts written in the current wording (an
#: older release's sentence is not a breach of this one's determinism).
EVIDENCE_WORDING = 1


class Basis(enum.Enum):
    """What kind of figures an evidence holds (see the module docstring)."""

    MEAN = "mean"
    CHANGE = "change"


@attrs.frozen(kw_only=True, slots=True)
class AlertEvidence:
    """The facts behind one alert (one symbol at one tick); None where unknown."""

    #: Mid price (mark where the book is missing) at the alert's tick.
    price: float | None = None
    #: Price vs its move-window average (`basis` mean) or change over it (change), in %.
    move_pct: float | None = None
    #: The same move in units of the symbol's own realized volatility (signed).
    move_sigma: float | None = None
    #: The window of the move and its sigma, in seconds.
    move_window_s: float | None = None
    #: Open interest vs its OI-window average (mean) or change over it (change), in percent.
    oi_change_pct: float | None = None
    #: The window of the OI change, in seconds.
    oi_window_s: float | None = None
    #: Open interest vs its long norm (the stock of leverage FRAGILE reads), in percent.
    oi_build_pct: float | None = None
    #: The window of that norm, in seconds (24 h by default).
    oi_norm_s: float | None = None
    #: Notional of longs (forced sells) / shorts (forced buys) liquidated in the liquidation
    #: window (a decaying sum for basis mean), USD.
    liq_long_usd: float | None = None
    liq_short_usd: float | None = None
    #: The window of the liquidations, in seconds.
    liq_window_s: float | None = None
    #: Funding rate per hour (the interval's rate divided by its hours), a fraction.
    funding_per_hour: float | None = None
    #: Open interest in contracts, and mark and index prices, at the tick.
    oi: float | None = None
    mark: float | None = None
    index: float | None = None
    #: What kind of figures the windows hold.
    basis: Basis = Basis.CHANGE

    @property
    def price_vs_index_pct(self) -> float | None:
        """Price (mid) vs index, in percent: what buyers pay over spot right now."""
        if self.price is None or self.index is None or self.index <= 0.0:
            return None
        return (self.price / self.index - 1.0) * 100.0


def duration(seconds: float) -> str:
    """A window as a trader reads it: "10 s", "60 s", "5 min", "2.5 s"."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _over(window: float | None, basis: Basis) -> str:
    """" vs 60 s avg" / " in 60 s" for a move or an OI change ("" without a window)."""
    if not window:
        return ""
    return f" vs {duration(window)} avg" if basis is Basis.MEAN else f" in {duration(window)}"


def _liq_over(window: float | None, basis: Basis) -> str:
    if not window:
        return ""
    if basis is Basis.MEAN:
        return f" ({duration(window)} decaying sum)"
    return f" in {duration(window)}"


def windows_line(windows: EvidenceWindows) -> str:
    """The windows of the core's evidence in one line (report, export, docs), e.g.
    "move vs 60 s avg (σ: the symbol's own RMS of that move), OI vs 60 s avg, liquidations
    10 s decaying sum"."""
    return (f"move vs {duration(windows.move_s)} avg "
            "(\u03c3: the symbol's own RMS of that move), "
            f"OI vs {duration(windows.oi_change_s)} avg, "
            f"liquidations {duration(windows.liquidation_s)} decaying sum")


def _signed(x: float, digits: int = 1) -> str:
    s = f"{abs(x):.{digits}f}"
    return (MINUS + s) if x < 0 and float(s) != 0 else s


def _plus(x: float, digits: int = 1) -> str:
    """`_signed` with an explicit + on a positive level (a stock above its norm, a premium)."""
    s = _signed(x, digits)
    return s if s.startswith(MINUS) or float(s) == 0 else "+" + s


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


def _move(ev: AlertEvidence) -> str | None:
    if ev.move_pct is None and ev.move_sigma is None:
        return None
    parts = []
    if ev.move_pct is not None:
        parts.append(f"{_signed(ev.move_pct)} %{_over(ev.move_window_s, ev.basis)}")
    if ev.move_sigma is not None:
        parts.append(f"{abs(ev.move_sigma):.1f}\u03c3")
    return " = ".join(parts)


def _liquidations(ev: AlertEvidence) -> str | None:
    parts = []
    if ev.liq_long_usd:
        parts.append(f"{money(ev.liq_long_usd)} of longs")
    if ev.liq_short_usd:
        parts.append(f"{money(ev.liq_short_usd)} of shorts")
    if not parts:
        return None
    return " and ".join(parts) + " liquidated" + _liq_over(ev.liq_window_s, ev.basis)


def evidence_text(ev: AlertEvidence) -> str:
    """One sentence: OI change, liquidations, price move (what is known, in that order)."""
    parts = []
    oi = []
    if ev.oi_change_pct is not None:
        oi.append(f"{_signed(ev.oi_change_pct)} %{_over(ev.oi_window_s, ev.basis)}")
    if ev.oi_build_pct is not None:
        oi.append(f"{_plus(ev.oi_build_pct, 0)} %{_norm(ev.oi_norm_s)}")
    if oi:
        parts.append("OI " + " and ".join(oi))
    liq = _liquidations(ev)
    if liq is not None:
        parts.append(liq)
    move = _move(ev)
    if move is not None:
        parts.append(f"price {move}")
    if ev.funding_per_hour is not None:
        parts.append(f"funding {_signed(ev.funding_per_hour * 100, 4)} %/h")
    basis = ev.price_vs_index_pct
    if basis is not None:
        parts.append(f"basis {_plus(basis, 3)} % (price vs index)")
    return ", ".join(parts)


def _norm(window: float | None) -> str:
    """" vs 24 h norm" ("" without a window)."""
    if not window:
        return ""
    h = window / 3600
    return f" vs {h:g} h norm" if window >= 3600 else f" vs {duration(window)} norm"


def evidence_facts(ev: AlertEvidence) -> list[tuple[str, str]]:
    """(name, value) pairs for the chat sinks' fields, the known ones only; each name
    carries its figure's window ("Move vs 60 s avg", "Liquidated (10 s decaying sum)")."""
    facts: list[tuple[str, str]] = []
    if ev.price is not None:
        facts.append(("Price", price_text(ev.price)))
    if ev.move_pct is not None or ev.move_sigma is not None:
        move = " = ".join(
            ([f"{_signed(ev.move_pct)} %"] if ev.move_pct is not None else [])
            + ([f"{abs(ev.move_sigma):.1f}\u03c3"] if ev.move_sigma is not None else []))
        facts.append((f"Move{_over(ev.move_window_s, ev.basis)}", move))
    if ev.oi_change_pct is not None:
        name = "OI" if ev.basis is Basis.MEAN and ev.oi_window_s else "OI change"
        facts.append((f"{name}{_over(ev.oi_window_s, ev.basis)}",
                      f"{_signed(ev.oi_change_pct)} %"))
    liq = [(n, v) for n, v in (("longs", ev.liq_long_usd), ("shorts", ev.liq_short_usd)) if v]
    if ev.liq_long_usd is not None or ev.liq_short_usd is not None:
        facts.append((f"Liquidated{_liq_over(ev.liq_window_s, ev.basis)}",
                      ", ".join(f"{money(v)} {n}" for n, v in liq) or "none"))
    if ev.funding_per_hour is not None:
        facts.append(("Funding", f"{_signed(ev.funding_per_hour * 100, 4)} %/h"))
    if ev.oi_build_pct is not None:
        facts.append((f"OI{_norm(ev.oi_norm_s)}", f"{_plus(ev.oi_build_pct, 0)} %"))
    basis = ev.price_vs_index_pct
    if basis is not None:
        facts.append(("Basis (price vs index)", f"{_plus(basis, 3)} %"))
    return facts


def evidence_json(ev: AlertEvidence) -> dict[str, Any]:
    """Every field by name (None kept, so a reader sees what was unknown); `basis` as text."""
    d = attrs.asdict(ev)
    d["basis"] = ev.basis.value
    d["price_vs_index_pct"] = ev.price_vs_index_pct  # derived: price and index
    return d


_FIELDS = tuple(a.name for a in attrs.fields(AlertEvidence))
#: Keys `evidence_json` adds from other fields; read back by recomputing them.
_DERIVED = frozenset({"price_vs_index_pct"})


def evidence_from_json(d: dict[str, Any]) -> AlertEvidence:
    """Inverse of `evidence_json`; ValueError naming an unknown key, a non-number or basis."""
    d = {k: v for k, v in d.items() if k not in _DERIVED}
    unknown = sorted(set(d) - set(_FIELDS))
    if unknown:
        hint = (" (window_s was split into move_window_s, oi_window_s and liq_window_s)"
                if "window_s" in unknown else "")
        raise ValueError(f"evidence: unknown key(s) {', '.join(unknown)}{hint}")
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == "basis":
            try:
                out[k] = Basis(v)
            except ValueError:
                raise ValueError(f"evidence.basis must be one of "
                                 f"{', '.join(b.value for b in Basis)}, got {v!r}") from None
            continue
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
            raise ValueError(f"evidence.{k} must be a number or null, got {v!r}")
        out[k] = None if v is None else float(v)
    return AlertEvidence(**out)


def evidence_from_record(rec: EvidenceRecord, windows: EvidenceWindows) -> AlertEvidence:
    """The facts of the core's evidence record (the token at the alert's tick), as values.

    Each figure carries the window of the rule that reads it (`windows`): the move and its
    sigma are one measurement (price vs its move-window average, in % and in sigma), the OI
    change is OI vs its fast-window average (the OI-drop leg), liquidations the decaying sum
    of the liquidation window (the liquidation leg). A pure function of the stored integers
    and the config, for `verify`.
    """
    return AlertEvidence(price=rec.price_value, move_pct=rec.move_pct,
                         move_sigma=rec.move_sigma_value, move_window_s=windows.move_s,
                         oi_change_pct=rec.oi_change_pct, oi_window_s=windows.oi_change_s,
                         oi_build_pct=rec.oi_build_pct, oi_norm_s=windows.oi_norm_s,
                         liq_long_usd=float(rec.liq_long_window),
                         liq_short_usd=float(rec.liq_short_window),
                         liq_window_s=windows.liquidation_s,
                         funding_per_hour=rec.funding_per_hour_value, oi=rec.oi_value,
                         mark=rec.mark_value, index=rec.index_value, basis=Basis.MEAN)
