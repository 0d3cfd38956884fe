"""The labeller on hand-made 1-minute series where the answer is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from engine_adapters.evaluation.bars import BAR_DTYPE
from engine_adapters.evaluation.labels import LabelRules, label_bars, label_symbol

T0 = 1_722_729_600_000  # 2024-08-04 00:00 UTC
FLUSH_AT = 2 * 1440 + 600


def series(*, days: int = 3, move: float = -0.06, oi_drop: float = 0.05, vol_x: float = 10.0,
           sell: float = 0.85, seed: int = 1, at: int = FLUSH_AT) -> np.ndarray:
    """Calm noise (0.1 %/min), and from `at` a 10-minute move with the given footprint."""
    n = days * 1440
    rng = np.random.default_rng(seed)
    b = np.zeros(n, dtype=BAR_DTYPE)
    b["minute_ms"] = T0 + 60_000 * np.arange(n)
    lr = rng.normal(0, 0.001, n)
    lr[at: at + 10] += math.log(1 + move) / 10
    c = 100 * np.exp(np.cumsum(lr))
    b["close"] = b["open"] = b["high"] = b["low"] = c
    v = np.full(n, 1e6)
    v[at: at + 10] *= vol_x
    b["quote_volume"] = v
    s = v * 0.5
    s[at: at + 10] = v[at: at + 10] * sell
    b["taker_sell_quote"] = s
    oi = np.full(n, 5e4)
    oi[at:] *= 1 - oi_drop
    b["oi"] = oi
    b["oi_value"] = oi * c
    return b


def minute_of(ms: int) -> int:
    return (ms - T0) // 60_000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_flush_with_every_footprint_is_found_at_its_onset(seed: int) -> None:
    (ev,) = label_symbol("BTCUSDT", series(seed=seed))
    assert ev.direction == "long_flush"
    assert abs(minute_of(ev.onset_ms) - FLUSH_AT) <= 4
    assert FLUSH_AT + 5 <= minute_of(ev.end_ms) <= FLUSH_AT + 30
    assert ev.drawdown == pytest.approx(-0.06, abs=0.015)
    assert ev.oi_change == pytest.approx(-0.05, abs=1e-9)
    assert ev.how.startswith("long flush: 30-min move")


def test_a_squeeze_is_the_mirror() -> None:
    (ev,) = label_symbol("ETHUSDT", series(move=0.07, sell=0.15))
    assert ev.direction == "short_squeeze" and ev.drawdown > 0.05
    assert "taker-buy share" in ev.how


@pytest.mark.parametrize("kw", [dict(oi_drop=0.0), dict(vol_x=1.5), dict(sell=0.5),
                                dict(move=-0.02)], ids=["oi-flat", "quiet", "balanced", "small"])
def test_each_missing_footprint_means_no_event(kw: dict[str, float]) -> None:
    assert label_symbol("BTCUSDT", series(**kw)) == []  # type: ignore[arg-type]


def test_a_move_small_for_a_wild_symbol_is_no_event() -> None:
    # 4 sigma of 30-min returns for 1 %/min noise is ~22 %: a 6 % drop is ordinary there
    b = series()
    rng = np.random.default_rng(9)
    noisy = b["close"] * np.exp(np.cumsum(rng.normal(0, 0.01, len(b))))
    b["close"] = noisy
    assert label_symbol("ALTUSDT", b) == []


def test_market_event_needs_enough_of_the_oi_weighted_universe() -> None:
    big, small = series(seed=1), series(seed=2, at=FLUSH_AT + 20)
    calm = series(seed=3, oi_drop=0.0)
    small["oi_value"] *= 0.01
    calm["oi_value"] *= 100  # a giant that did not flush: 2 flushing symbols hold < 20 %
    events = label_bars({"A": big, "B": small, "C": calm})
    assert [e.symbol for e in events] == ["A", "B"]
    assert not any(e.market for e in events)
    calm["oi_value"] /= 100
    events = label_bars({"A": big, "B": small, "C": calm})
    assert all(e.market for e in events) and "market-wide" in events[0].how
    # one symbol alone is never a market event
    assert not label_bars({"A": big})[0].market


def test_short_history_degrades_to_the_series_itself() -> None:
    (ev,) = label_symbol("BTCUSDT", series(days=1, at=700))
    assert "look-ahead" in ev.how
    assert abs(minute_of(ev.onset_ms) - 700) <= 4


def test_rules_from_toml(tmp_path: Path) -> None:
    p = tmp_path / "rules.toml"
    p.write_text("[labels]\nret_floor = 0.1\nwindow_min = 20\n")
    rules = LabelRules.from_toml(p)
    assert rules.ret_floor == 0.1 and rules.window_min == 20
    assert label_symbol("BTCUSDT", series(), rules) == []  # 6 % is below a 10 % floor
    p.write_text("ret_flor = 0.1\n")
    with pytest.raises(ValueError, match="unknown labelling rule"):
        LabelRules.from_toml(p)
