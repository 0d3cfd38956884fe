"""The one frozen, versioned configuration: every threshold, window and weight of the engine.

Windows count ticks (250 ms each), never wall-clock time. Each field's comment gives its
meaning; `docs/rules.md` explains each rule and why its default is sensible. A config is data:
`Config.from_toml_str()` / `Config.from_dict()` build one strictly (unknown keys and wrong
types are errors naming the key), `canonical_json()` is its stable text and `digest()` its
content hash, written into every log header so replay can refuse a different config.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn

#: Version of the config schema; bump when a field is added, removed or changes meaning.
CONFIG_VERSION = 4


def _pos_int(_inst: object, att: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{att.name} must be a positive number of ticks, got {value}")


def _pos_ms(_inst: object, att: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{att.name} must be a positive number of milliseconds, got {value}")


def _non_neg(_inst: object, att: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"{att.name} must be >= 0, got {value}")


def _unit(_inst: object, att: attrs.Attribute[float], value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{att.name} must be within [0, 1], got {value}")


def _pos(_inst: object, att: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{att.name} must be > 0, got {value}")


def _ticks(default: int) -> Any:
    return attrs.field(default=default, validator=_pos_int)


def _unit_f(default: float) -> Any:
    return attrs.field(default=default, validator=_unit)


def _pos_f(default: float) -> Any:
    return attrs.field(default=default, validator=_pos)


def _nn_f(default: float) -> Any:
    return attrs.field(default=default, validator=_non_neg)


def _below(lo: str, hi: str) -> Any:
    """Class-level check that field `lo` < field `hi` (hysteresis: exit below enter)."""

    def check(inst: Any) -> None:
        if not getattr(inst, lo) < getattr(inst, hi):
            raise ValueError(f"{lo} ({getattr(inst, lo)}) must be below {hi} ({getattr(inst, hi)})")

    return check


@attrs.frozen(kw_only=True)
class FeatureConfig:
    """Rolling windows of the feature extractor and data-health limits (in ticks, except ms)."""

    fast_window_ticks: int = _ticks(20)  # 5 s: "right now" volume, depth, spread, flow
    slow_window_ticks: int = _ticks(2400)  # 10 min: the norm that "right now" is compared with
    vol_fast_window_ticks: int = _ticks(40)  # 10 s realized volatility of the mid price
    vol_slow_window_ticks: int = _ticks(2400)  # 10 min realized volatility norm
    oi_fast_window_ticks: int = _ticks(240)  # 1 min open-interest norm (for OI velocity)
    oi_slow_window_ticks: int = _ticks(345600)  # 24 h OI norm (for OI build-up), seeded
    #                                             from the OI history when it is given
    liq_window_ticks: int = _ticks(40)  # 10 s liquidation memory
    liq_baseline_window_ticks: int = _ticks(14400)  # 1 h: the symbol's own liquidation norm
    liq_baseline_floor: float = _pos_f(0.001)  # the norm is at least 0.1 % of traded notional
    liq_sustain_window_ticks: int = _ticks(120)  # 30 s: share of ticks with liquidations
    move_window_ticks: int = _ticks(240)  # 1 min: a move is the price vs its 1-min average
    sigma_window_ticks: int = _ticks(28800)  # 2 h: the norm of that move (its RMS) = 1 sigma
    basis_window_ticks: int = _ticks(2400)  # 10 min: the basis is the premium's average
    depth_band_bps: int = _ticks(50)  # depth within +-50 bps of the mid (widest band <= it)
    funding_interval_hours: int = _ticks(8)  # until FundingInfoReceived says otherwise
    warmup_ticks: int = _ticks(240)  # 1 min before any signal is trusted
    stale_book_ticks: int = _ticks(40)  # 10 s without a book update = stale book
    stale_mark_ticks: int = _ticks(40)  # 10 s without a mark price = stale mark
    stale_oi_ticks: int = _ticks(480)  # 2 min without open interest = stale OI
    health_hold_ticks: int = _ticks(240)  # gap/reconnect flags stay raised for 1 min
    late_event_ms: int = attrs.field(default=2000, validator=_pos_ms)  # older at tick end = late


@attrs.frozen(kw_only=True)
class TierConfig:
    """Leverage regime thresholds. OI figures are fractions (0.02 = 2 %)."""

    expansion_oi_velocity: float = _pos_f(0.0003)  # OI 0.03 % above its 1-min norm...
    expansion_volume_ratio: float = _pos_f(1.2)  # ...with volume 1.2x its norm
    expansion_oi_build: float = _pos_f(0.008)  # or OI 0.8 % above its 1-hour norm
    overleveraged_oi_build: float = _pos_f(0.02)  # OI 2 % above its 1-hour norm...
    overleveraged_funding: float = _pos_f(0.0000375)  # ...and |funding| >= 0.00375 % per hour
    #                                                   (0.03 % per 8-h interval)
    overleveraged_premium_pct: float = _pos_f(0.05)  # ...or |mark - index| >= 0.05 %
    exhausted_oi_velocity: float = attrs.field(default=-0.002)  # OI 0.2 % below its 1-min norm
    exhausted_liq_intensity: float = _pos_f(0.05)  # liquidations >= 5 % of normal volume
    exhausted_volume_ratio: float = _pos_f(2.0)  # or volume >= 2x its norm
    persist_ticks: int = _ticks(8)  # a new regime must hold 2 s before it is adopted

    def __attrs_post_init__(self) -> None:
        if not self.exhausted_oi_velocity < 0:
            raise ValueError("exhausted_oi_velocity must be negative (OI falling)")
        _below("expansion_oi_build", "overleveraged_oi_build")(self)


@attrs.frozen(kw_only=True)
class TriggerCostConfig:
    """How the four component scores combine into the trigger cost (0 = a nudge tips it)."""

    weight_density: float = _nn_f(0.25)
    weight_compression: float = _nn_f(0.25)
    weight_divergence: float = _nn_f(0.25)
    weight_elasticity: float = _nn_f(0.25)
    density_thin_ratio: float = _unit_f(0.3)  # top-of-book depth at 30 % of norm = no density
    density_wide_spread_ratio: float = attrs.field(default=3.0)  # spread 3x norm = no density
    compression_full_ratio: float = _unit_f(0.3)  # short vol at 30 % of its norm = full compression
    divergence_oi_build: float = _pos_f(0.02)  # OI +2 % vs 24 h norm, flat price = divergent
    divergence_move_sigma: float = _pos_f(3.0)  # price moved 3 sigma with the OI: not divergent
    divergence_premium_pct: float = _pos_f(0.1)  # |mark - index| of 0.1 % = fully divergent
    elasticity_full_ratio: float = attrs.field(default=3.0)  # price moves 3x more per volume
    # how the regime scales the fragility; 1.0 by default: the regime is read from OI, and
    # OI is counted once (in pressure), not again here
    multiplier_neutral: float = _pos_f(1.0)
    multiplier_expansion: float = _pos_f(1.0)
    multiplier_overleveraged: float = _pos_f(1.0)
    multiplier_exhausted: float = _pos_f(1.0)
    weight_divergence_oi: float = _unit_f(0.0)  # OI-vs-price in divergence (0: OI counted once)

    def __attrs_post_init__(self) -> None:
        if self.weight_density + self.weight_compression + self.weight_divergence \
                + self.weight_elasticity <= 0:
            raise ValueError("trigger cost weights must not all be zero")
        if not self.density_wide_spread_ratio > 1:
            raise ValueError("density_wide_spread_ratio must be > 1")
        if not self.elasticity_full_ratio > 1:
            raise ValueError("elasticity_full_ratio must be > 1")


@attrs.frozen(kw_only=True)
class StructuralConfig:
    """Per-symbol FSM: score recipes, enter/exit thresholds, persist and decay times."""

    # pressure = weighted OI build-up (vs its 24 h norm) and the crowd's carry: funding per
    # hour or the basis (the premium's 10-min average), whichever is further from normal
    pressure_weight_oi: float = _nn_f(0.5)
    pressure_weight_carry: float = _nn_f(0.5)
    pressure_weight_tier: float = _nn_f(0.0)  # the regime is OI again: 0 counts OI once
    pressure_oi_build_full: float = _pos_f(0.03)  # OI +3 % vs 24 h norm = full OI pressure
    pressure_funding_floor: float = _nn_f(0.0000125)  # 0.01 %/8 h, the normal rate, per hour
    pressure_funding_full: float = _pos_f(0.000075)  # 0.06 %/8 h per hour = full pressure
    pressure_basis_floor_pct: float = _nn_f(0.01)  # a basis within 0.01 % of the index: none
    pressure_basis_full_pct: float = _pos_f(0.05)  # 0.05 %: where Binance funding leaves 0.01 %
    # fragile = the loaded build-up, sqrt(OI leg x carry leg) (new positions that pay to stay
    # on), discounted by the trigger cost: x (1 - w + w x (1 - cost / 100))
    fragile_cost_weight: float = _unit_f(0.3)
    # trigger = cheapness of the trigger, flow against the crowd, first liquidations
    trigger_weight_cost: float = _nn_f(0.4)
    trigger_weight_flow: float = _nn_f(0.3)
    trigger_weight_liq: float = _nn_f(0.3)
    trigger_flow_full: float = _pos_f(0.4)  # net aggressive flow 40 % against the crowd = full
    trigger_liq_full: float = _pos_f(0.02)  # liquidations at 2 % of normal volume = full
    # unwind = liquidations on the move's side (counted only when corroborated by a move,
    # an OI drop or sustained prints), open interest leaving, price moving in sigma
    unwind_weight_liq: float = _nn_f(0.4)
    unwind_weight_oi: float = _nn_f(0.3)
    unwind_weight_move: float = _nn_f(0.3)
    unwind_liq_floor: float = _nn_f(2.0)  # liquidations within 2x the symbol's own norm: noise
    unwind_liq_full: float = _pos_f(10.0)  # 10x its own norm = full
    unwind_sustain_full: float = _unit_f(0.2)  # prints in 20 % of ticks (80 % of seconds)
    unwind_oi_drop_full: float = _pos_f(0.01)  # OI 1 % below its 1-min norm = full
    unwind_move_floor_sigma: float = _nn_f(3.0)  # within 3 sigma of its 1-min mean: no move
    unwind_move_full_sigma: float = _pos_f(12.0)  # 12 sigma = full move (calm jumps reach 8-10)
    # thresholds: enter above *_enter, leave (decay) below *_exit
    pressure_enter: float = _unit_f(0.5)
    pressure_exit: float = _unit_f(0.35)
    fragile_enter: float = _unit_f(0.55)
    fragile_exit: float = _unit_f(0.4)
    trigger_enter: float = _unit_f(0.6)
    trigger_exit: float = _unit_f(0.45)
    unwind_enter: float = _unit_f(0.5)
    unwind_exit: float = _unit_f(0.25)
    persist_ticks: int = _ticks(8)  # an escalation must hold 2 s
    unwind_persist_ticks: int = _ticks(40)  # an unwind must hold 10 s (flurries burn out)
    decay_ticks: int = _ticks(40)  # a de-escalation must hold 10 s
    unwind_end_ticks: int = _ticks(40)  # unwind score low for 10 s ends the unwind
    cooldown_ticks: int = _ticks(1200)  # 5 min of cooldown before watching again
    health_demote_ticks: int = _ticks(8)  # bad data for 2 s demotes TRIGGER_READY

    def __attrs_post_init__(self) -> None:
        for lo, hi in (("pressure_exit", "pressure_enter"), ("fragile_exit", "fragile_enter"),
                       ("trigger_exit", "trigger_enter"), ("unwind_exit", "unwind_enter"),
                       ("pressure_funding_floor", "pressure_funding_full"),
                       ("pressure_basis_floor_pct", "pressure_basis_full_pct"),
                       ("unwind_liq_floor", "unwind_liq_full"),
                       ("unwind_move_floor_sigma", "unwind_move_full_sigma")):
            _below(lo, hi)(self)


@attrs.frozen(kw_only=True)
class ClusterConfig:
    """Market-wide FSM, evaluated every 4th tick (1 s). Shares are of live symbols."""

    heat_enter: float = _unit_f(0.25)  # >= 25 % of symbols in PRESSURE or worse
    heat_exit: float = _unit_f(0.15)
    fragile_enter: float = _unit_f(0.2)  # >= 20 % FRAGILE or TRIGGER_READY
    fragile_exit: float = _unit_f(0.1)
    unwind_enter: float = _unit_f(0.15)  # >= 15 % UNWIND
    unwind_exit: float = _unit_f(0.05)
    min_symbols: int = _ticks(2)  # FRAGILE/UNWIND need at least this many symbols (capped at N)
    persist_updates: int = _ticks(2)  # an escalation must hold 2 updates (2 s)
    decay_updates: int = _ticks(10)  # a de-escalation must hold 10 s
    cooldown_updates: int = _ticks(120)  # 2 min of cooldown
    min_live_fraction: float = _unit_f(0.5)  # fewer live symbols = degraded, hold state
    value_weight: float = _unit_f(0.5)  # shares blend the symbol count and the OI value (0..1)

    def __attrs_post_init__(self) -> None:
        for lo, hi in (("heat_exit", "heat_enter"), ("fragile_exit", "fragile_enter"),
                       ("unwind_exit", "unwind_enter")):
            _below(lo, hi)(self)


@attrs.frozen(kw_only=True)
class PhaseConfig:
    """Event phase FSM (counted in cluster updates, i.e. seconds)."""

    start_confirm_updates: int = _ticks(1)  # cluster FRAGILE/UNWIND for 1 s = START
    mid_unwind_updates: int = _ticks(5)  # cluster UNWIND for 5 s = MID (also a new event from
    #                                      END/POST: a fresh cascade does not wait out POST)
    end_confirm_updates: int = _ticks(5)  # MID with the cluster settled for 5 s = END
    fizzle_calm_updates: int = _ticks(60)  # START with a calm cluster for 60 s = END
    end_hold_updates: int = _ticks(30)  # END lasts 30 s, then POST
    post_hold_updates: int = _ticks(300)  # POST lasts 5 min, then a new event epoch (PREP)


@attrs.frozen(kw_only=True)
class AlertConfig:
    """Alert engine settings."""

    ticks_per_bucket: int = _ticks(3600)  # the "15 m" bucket: 3600 ticks of 250 ms


@attrs.frozen(kw_only=True)
class Config:
    """The whole engine configuration. Immutable; compare digests to compare configs."""

    version: int = attrs.field(default=CONFIG_VERSION)
    #: Name of the profile this config came from ("default", "archive", or a file's own name);
    #: recorded in every log header through the config, shown in reports.
    profile: str = attrs.field(default="default")
    features: FeatureConfig = attrs.field(factory=FeatureConfig)
    tier: TierConfig = attrs.field(factory=TierConfig)
    trigger_cost: TriggerCostConfig = attrs.field(factory=TriggerCostConfig)
    structural: StructuralConfig = attrs.field(factory=StructuralConfig)
    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)
    phase: PhaseConfig = attrs.field(factory=PhaseConfig)
    alerts: AlertConfig = attrs.field(factory=AlertConfig)

    def __attrs_post_init__(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ValueError(
                f"config version {self.version} is not supported by this engine "
                f"(expects {CONFIG_VERSION}); migrate the file or drop the 'version' key"
            )

    # ---------------------------------------------------------------- serialization
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Build from a mapping (e.g. parsed TOML). Missing keys take their defaults.

        Raises `ConfigError` listing every unknown key, wrong type or invalid value by path.
        """
        try:
            return _CONVERTER.structure(dict(data), cls)
        except cattrs.BaseValidationError as exc:
            lines = cattrs.transform_error(exc, format_exception=_describe)
            raise ConfigError("invalid config:\n  " + "\n  ".join(lines)) from None
        except ValueError as exc:
            raise ConfigError(f"invalid config: {exc}") from None

    @classmethod
    def from_toml_str(cls, text: str) -> Config:
        """Parse TOML text (sections named like the attributes: [features], [tier], ...)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = _CONVERTER.unstructure(self)
        return out

    def canonical_json(self) -> str:
        """Stable text of every field (sorted keys, no spaces): what the digest covers."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def digest(self) -> bytes:
        """16-byte BLAKE2b content hash of `canonical_json()`."""
        return hashlib.blake2b(self.canonical_json().encode(), digest_size=16,
                               person=b"cexcfg-v1").digest()

    def evolve(self, **sections: Any) -> Config:
        """Copy with some values changed: `cfg.evolve(structural={"persist_ticks": 4})`."""
        data = self.to_dict()
        for name, changes in sections.items():
            if name not in data or not isinstance(data[name], dict):
                raise ConfigError(f"unknown config section {name!r}")
            data[name] = {**data[name], **changes}
        return Config.from_dict(data)


class ConfigError(ValueError):
    """A configuration that cannot be used, with every problem named by its key path."""


def _describe(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required key missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown key(s): {', '.join(sorted(exc.extra_fields))}"
    return str(exc) or type(exc).__name__


def _strict_int(v: object, _t: type) -> int:
    if type(v) is not int:
        raise TypeError(f"expected an integer, got {type(v).__name__} {v!r}")
    return v


def _strict_float(v: object, _t: type) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise TypeError(f"expected a number, got {type(v).__name__} {v!r}")
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        raise ValueError(f"expected a finite number, got {v!r}")
    return f


_CONVERTER = cattrs.Converter(forbid_extra_keys=True)
_CONVERTER.register_structure_hook(int, _strict_int)
_CONVERTER.register_structure_hook(float, _strict_float)
for _cls in (FeatureConfig, TierConfig, TriggerCostConfig, StructuralConfig, ClusterConfig,
             PhaseConfig, AlertConfig, Config):
    _CONVERTER.register_structure_hook(
        _cls, make_dict_structure_fn(_cls, _CONVERTER, _cattrs_forbid_extra_keys=True))
