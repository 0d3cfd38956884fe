"""The whole pipeline as one pure function: `step(state, tick_batch, tick_id)` (design note 2-11).

    features -> tier -> trigger cost -> structural FSM      (per token, in token order)
    -> cluster FSM and event phase (when tick_id % 4 == 0)
    -> records (quantized integers) -> alert engine over those records -> record alert bits

`EngineState` is a value: frozen attrs all the way down, tuples instead of lists. Stepping an
old state again gives the same result again, and `step` never modifies its arguments.
No layer reads upward: a token's features, tier, cost and FSM see only that token's batch; the
cluster sees only the tokens' states; the alert engine sees only the records.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import NamedTuple

import attrs

from engine_core import cluster as cluster_fsm
from engine_core import phase as phase_fsm
from engine_core import structural, tier, trigger_cost
from engine_core.alerts import (
    MARKET_WIDE,
    Alert,
    AlertState,
    evaluate_states,
    initial_alert_state,
)
from engine_core.canonical import CanonicalBatch
from engine_core.cluster import CLUSTER_EVERY_TICKS, ClusterContext
from engine_core.config import Config
from engine_core.evidence import EvidenceLevels, pack_tick_evidence, quantize_levels
from engine_core.features import (
    EmaWeights,
    FeatureFrame,
    FeatureKernel,
    FeatureParams,
    FeatureState,
    QuietValues,
    feature_kernel,
)
from engine_core.fsm import Compiled
from engine_core.phase import PhaseContext
from engine_core.record import (
    ALERTS_AT,
    BODY,
    BPS_SCALE,
    FULL,
    FUNDING_SCALE,
    I16_MAX,
    I32_MAX,
    OI_SCALE,
    PCT_SCALE,
    REC_TOKEN,
    RECORD_SIZE,
    SCORE_SCALE,
    U16_MAX,
    TickRecords,
    crc32c,
    joined,
)
from engine_core.states import RECORD_QUALITY_MASK, Quality
from engine_core.structural import FsmContext, ScoresKernel
from engine_core.tier import TierContext
from engine_core.trigger_cost import CostKernel

MAX_TOKENS = U16_MAX
_SESSION_START = int(Quality.SESSION_START)
_CLUSTER_DEGRADED = int(Quality.CLUSTER_DEGRADED)
_U32_MAX = 2**32 - 1
_pack = BODY.pack
_crc = crc32c
_new = tuple.__new__
#: `round` of a float, without the builtin's special-method lookup (~2.5x faster, same int:
#: half to even). Every value `step` rounds is a float times one of these float scales (all
#: exact in binary, so the product is the same as with the int scale), hence always a float.
_round = float.__round__
_FLOAT_SCALES = (float(PCT_SCALE), float(SCORE_SCALE), float(OI_SCALE), float(FUNDING_SCALE),
                 float(BPS_SCALE))


#: The frame fields a token record is quantized from, in the order `step` names them.
_RECORD_FIELDS = operator.itemgetter(*map(FeatureFrame._fields.index, (
    "n_events", "spread_pct", "oi", "oi_velocity", "funding_rate", "mark_vs_mid_pct",
    "liquidation_imbalance", "quality", "funding_per_hour", "price", "mark", "index_price")))


@attrs.frozen(kw_only=True, slots=True)
class EngineParams:
    """Everything derived once from the config: smoothing factors and compiled tables, and
    the per-token functions with those factors bound (`feature_kernel` and the others)."""

    features: FeatureParams
    cost: trigger_cost.CostParams
    scores: structural.ScoreParams
    structural: Compiled
    cluster: Compiled
    phase: Compiled
    extract: FeatureKernel = attrs.field(init=False, eq=False, repr=False, default=attrs.Factory(
        lambda self: feature_kernel(self.features), takes_self=True))
    cost_of: CostKernel = attrs.field(
        init=False, eq=False, repr=False,
        default=attrs.Factory(lambda self: trigger_cost.cost_kernel(self.cost), takes_self=True))
    scores_of: ScoresKernel = attrs.field(
        init=False, eq=False, repr=False,
        default=attrs.Factory(lambda self: structural.scores_kernel(self.scores),
                              takes_self=True))

    def __reduce__(self) -> tuple[Callable[..., EngineParams], tuple[object, ...]]:
        # the kernels are closures (not picklable): a pickle holds the values they come from
        return _engine_params, (self.features, self.cost, self.scores, self.structural,
                                self.cluster, self.phase)

    @classmethod
    def from_config(cls, cfg: Config) -> EngineParams:
        return cls(features=FeatureParams.from_config(cfg.features),
                   cost=trigger_cost.CostParams.from_config(cfg.trigger_cost),
                   scores=structural.ScoreParams.from_config(cfg.structural),
                   structural=structural.compile_rules(cfg.structural),
                   cluster=cluster_fsm.compile_rules(cfg.cluster),
                   phase=phase_fsm.compile_rules(cfg.phase))


def _engine_params(features: FeatureParams, cost: trigger_cost.CostParams,
                   scores: structural.ScoreParams, structural_rules: Compiled,
                   cluster: Compiled, phase: Compiled) -> EngineParams:
    """An unpickled `EngineParams` (its kernels built again)."""
    return EngineParams(features=features, cost=cost, scores=scores,
                        structural=structural_rules, cluster=cluster, phase=phase)


#: (price, mark, index, OI, funding per hour, funding rate, spread %, mark vs mid %), then
#: the record's funding, spread and mark fields and the evidence levels quantized from them.
LevelCache = tuple[tuple[float, ...], int, int, int, EvidenceLevels]


class TokenState(NamedTuple):
    """One token's memory: rolling features, regime, structural state (a named tuple).

    `quiet` is what its next empty tick may take over (`features.extract_quiet`); derived,
    never an input of its own.
    """

    features: FeatureState
    tier: TierContext
    fsm: FsmContext
    quiet: QuietValues | None = None


@attrs.frozen(kw_only=True, slots=True)
class EngineState:
    """The complete engine state between two ticks."""

    config: Config
    symbols: tuple[str, ...]
    params: EngineParams = attrs.field(eq=False, repr=False)
    last_tick: int | None = None
    weights: EmaWeights = attrs.field(factory=EmaWeights)
    tokens: tuple[TokenState, ...] = ()
    cluster: ClusterContext = attrs.field(factory=ClusterContext)
    phase: PhaseContext = attrs.field(factory=PhaseContext)
    alerts: AlertState
    #: Per token, last tick's quantized levels and the floats they came from (`step` reuses
    #: them while those floats stay equal: a function of the values, so not part of the state).
    levels: tuple[LevelCache | None, ...] = attrs.field(default=(), eq=False, repr=False)


def initial_state(cfg: Config, symbols: Sequence[str]) -> EngineState:
    """A fresh session for a fixed universe. Symbols must be unique and sorted by name."""
    syms = tuple(symbols)
    if list(syms) != sorted(set(syms)):
        raise ValueError("symbols must be unique and sorted by name (token id = index); "
                         "pass sorted(set(symbols))")
    if len(syms) > MAX_TOKENS:
        raise ValueError(f"at most {MAX_TOKENS} symbols per engine, got {len(syms)}")
    return EngineState(config=cfg, symbols=syms, params=EngineParams.from_config(cfg),
                       alerts=initial_alert_state(syms, cfg.alerts.ticks_per_bucket))


def _fresh_tokens(n: int, tick_id: int) -> tuple[TokenState, ...]:
    t = TokenState(features=FeatureState(session_tick=tick_id), tier=TierContext(),
                   fsm=FsmContext())
    return (t,) * n  # immutable values may be shared


def _restamp(data: bytes, cluster: int, phase: int, event_id: int, degraded: bool) -> bytes:
    """A tick's records re-encoded with the cluster's outcome (rare: when it moved).

    The records were packed before the cluster's turn; this gives the same bytes as packing
    them after it. The features never set CLUSTER_DEGRADED: the record's bit is the cluster's.
    """
    pack, crc, flag, out = _pack, _crc, _CLUSTER_DEGRADED, []
    for f in FULL.iter_unpack(data):
        g = list(f[:26])
        g[5], g[6], g[8] = cluster, phase, event_id
        g[9] = (g[9] & ~flag) | (flag if degraded else 0)
        body = pack(*g)
        out.append(body + crc(body).to_bytes(4, "little"))
    return b"".join(out)


def _with_alerts(data: bytes, masks: dict[int, int], n: int) -> bytes:
    """A tick's records with their alert bits set (`evaluate_states`' masks; rare)."""
    buf = bytearray(data)
    market = masks.get(MARKET_WIDE, 0)
    for i in range(n) if market else sorted(masks):
        at = i * RECORD_SIZE
        buf[at + ALERTS_AT] = masks.get(i, market)
        buf[at + 60:at + RECORD_SIZE] = _crc(bytes(buf[at:at + 60])).to_bytes(4, "little")
    return bytes(buf)


def step(state: EngineState, tick_batch: Sequence[CanonicalBatch], tick_id: int
         ) -> tuple[EngineState, TickRecords, tuple[Alert, ...]]:
    """Run one 250 ms tick. Pure: same inputs, byte-identical outputs, inputs untouched.

    `tick_batch` holds one `CanonicalBatch` per token in token order, all for `tick_id`.
    The first step of a session may use any tick id; each later one must be the next id
    (the shell steps every skipped tick, with empty batches).
    """
    if type(tick_id) is not int or tick_id < 0:
        raise ValueError(f"tick_id must be a non-negative int, got {tick_id!r}")
    last = state.last_tick
    if last is not None and tick_id != last + 1:
        raise ValueError(f"tick_id must increase by one: got {tick_id} after {last} "
                         f"(step every skipped tick with empty batches)")
    n = len(state.symbols)
    if len(tick_batch) != n:
        raise ValueError(f"tick_batch must hold one batch per token: {n} expected, "
                         f"got {len(tick_batch)}")
    cfg = state.config
    params = state.params
    session_start = last is None
    tokens = _fresh_tokens(n, tick_id) if session_start else state.tokens
    weights = state.weights.advance(params.features)

    tier_cfg, st_cfg = cfg.tier, cfg.structural
    rules = params.structural
    # Plain local names on the per-token path (profiled: a quiet market is all per-token cost).
    extract_, tier_update, cost_of = params.extract, tier.update, params.cost_of
    scores_of, fsm_update, new = params.scores_of, structural.update, _new
    new_tokens: list[TokenState] = []
    frames: list[FeatureFrame] = []
    fsms: list[int] = []
    bodies: list[bytes | int] = []
    levels: list[LevelCache | None] = []
    ev_levels: list[EvidenceLevels] = []
    prev_levels = state.levels if len(state.levels) == n else (None,) * n
    # The records carry the tick's cluster state and phase, which move only on every fourth
    # tick: they are packed with the current ones here and, on a tick where those moved,
    # patched after the cluster's turn (`_restamp`).
    cl, ph = state.cluster, state.phase
    cluster_tick = tick_id % CLUSTER_EVERY_TICKS == 0
    qualities: list[int] = []
    values: list[float] = []
    cluster_state, phase, event_id, degraded = cl.state, ph.phase, ph.event_id, cl.degraded
    extra = (_SESSION_START if session_start else 0) | (_CLUSTER_DEGRADED if degraded else 0)
    rnd, pack, crc, record_fields = _round, _pack, _crc, _RECORD_FIELDS
    pct, score, oi_scale, funding_scale, bps = _FLOAT_SCALES
    i32, i16, u16, u32 = I32_MAX, I16_MAX, U16_MAX, _U32_MAX
    for i, (ts, batch, cached) in enumerate(zip(tokens, tick_batch, prev_levels, strict=True)):
        if batch.token_id != i or batch.tick_id != tick_id:
            raise ValueError(f"batch {i} is for token {batch.token_id} tick {batch.tick_id}; "
                             f"expected token {i} tick {tick_id}")
        fs0, tctx0, fsm0, quiet = ts
        fs, frame, quiet = extract_(fs0, batch, weights, quiet)
        # The frame's fields in one C call (attribute reads, or unpacking all 38, cost more)
        (n_events, spread_pct, oi_level, oi_velocity, funding_rate, mark_vs_mid, liq_imb,
         quality, per_hour, price, mark_px, index_px) = record_fields(frame)
        tctx = tier_update(tctx0, frame, tier_cfg)
        tier_state = tctx.tier
        density, compression, divergence, elasticity, cost = cost_of(frame, tier_state)
        sc = scores_of(frame, tier_state, cost)
        fsm = fsm_update(fsm0, sc, quality, st_cfg, rules)
        new_tokens.append(new(TokenState, (fs, tctx, fsm, quiet)))
        frames.append(frame)
        pressure, fragile, trigger, unwind = sc
        st_, age, _pending, _streak = fsm
        fsms.append(st_)
        if cluster_tick:
            qualities.append(quality)
            values.append(oi_level * price)
        # quantize (docs/log-format.md): round half to even, clamp into the field's range; a
        # zero skips `round` (round(0.0) is 0): liquidations, OI change, unwind, divergence
        # are zero most ticks
        quality = (quality | extra) & RECORD_QUALITY_MASK
        cost = rnd(cost * pct)
        pressure = rnd(pressure * score)
        fragile = rnd(fragile * score)
        trigger = rnd(trigger * score)
        unwind = rnd(unwind * score) if unwind else 0
        density = rnd(density * pct)
        compression = rnd(compression * pct)
        divergence = rnd(divergence * pct) if divergence else 0
        elasticity = rnd(elasticity * pct) if elasticity else 0
        # the nine 0..10000 fields are in range on almost every tick: chained comparisons of
        # small ints (specialized bytecodes; min() and max() over nine arguments cost ~3 % of
        # a quiet token-tick's instructions, measured with cachegrind)
        if not (0 <= cost <= 10000 and 0 <= pressure <= 10000 and 0 <= fragile <= 10000
                and 0 <= trigger <= 10000 and 0 <= unwind <= 10000 and 0 <= density <= 10000
                and 0 <= compression <= 10000 and 0 <= divergence <= 10000
                and 0 <= elasticity <= 10000):
            (cost, pressure, fragile, trigger, unwind, density, compression, divergence,
             elasticity) = [0 if v < 0 else (10000 if v > 10000 else v) for v in (
                 cost, pressure, fragile, trigger, unwind, density, compression, divergence,
                 elasticity)]
        age = age if age < u32 else u32
        n_events = n_events if n_events < u16 else u16
        liq = oi = 0
        if liq_imb:
            liq = rnd(liq_imb * score)
            liq = -10000 if liq < -10000 else (10000 if liq > 10000 else liq)
        if oi_velocity:
            oi = rnd(oi_velocity * oi_scale)
            oi = -i32 if oi < -i32 else (i32 if oi > i32 else oi)
        # fields that change only when a price, OI or funding arrives: last tick's integers
        # while their floats are equal (most tokens of a quiet market, most ticks)
        key = (price, mark_px, index_px, oi_level, per_hour, funding_rate, spread_pct,
               mark_vs_mid)
        if cached is not None and cached[0] == key:
            _key, funding, spread, mark, level = cached
        else:
            funding = rnd(funding_rate * funding_scale)
            funding = -i32 if funding < -i32 else (i32 if funding > i32 else funding)
            spread = rnd(spread_pct * 100.0 * bps)
            spread = 0 if spread < 0 else (u16 if spread > u16 else spread)
            mark = rnd(mark_vs_mid * 100.0 * bps)
            mark = -i16 if mark < -i16 else (i16 if mark > i16 else mark)
            level = quantize_levels(price, mark_px, index_px, oi_level, per_hour)
            cached = (key, funding, spread, mark, level)
        levels.append(cached)
        ev_levels.append(level)
        body = pack(tick_id, i, REC_TOKEN, st_, tier_state, cluster_state, phase, 0, event_id,
                    quality, cost, pressure, fragile, trigger, unwind, density, compression,
                    divergence, elasticity, age, n_events, liq, oi, funding, spread, mark)
        bodies.append(body)  # body, then its checksum: `data` is their `joined` packing
        bodies.append(crc(body))

    data = joined(n).pack(*bodies)
    if cluster_tick:
        cl = cluster_fsm.update(cl, fsms, qualities, cfg.cluster, params.cluster, values)
        ph = phase_fsm.update(ph, cl.state, cl.degraded, cfg.phase, params.phase)
        if (cl.state, ph.phase, ph.event_id, cl.degraded) != (cluster_state, phase, event_id,
                                                               degraded):
            cluster_state = cl.state
            data = _restamp(data, cl.state, ph.phase, ph.event_id, cl.degraded)
    fsm_states = tuple(fsms)
    alert_state, masks, alerts = evaluate_states(state.alerts, tick_id, session_start,
                                                 cluster_state, fsm_states,
                                                 TickRecords(None, data))
    if masks:
        data = _with_alerts(data, masks, n)
    new_state = EngineState(config=cfg, symbols=state.symbols, params=params, last_tick=tick_id,
                            weights=weights, tokens=tuple(new_tokens), cluster=cl, phase=ph,
                            alerts=alert_state, levels=tuple(levels))
    evidence = pack_tick_evidence(tick_id, frames, ev_levels)
    return new_state, TickRecords(None, data, evidence), alerts

