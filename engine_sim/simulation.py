"""A seeded, scripted multi-symbol USD-M market: calm, leverage build-up, cascade, recovery.

The simulator produces engine_core events in receive order, as a real exchange would deliver
them (trades and book updates every 100 ms step, mark price every second, open interest on a
poll cadence, at most one liquidation per symbol per second — Binance's forceOrder rule).
It is what the scenario tests, the benchmarks, the synthetic captures and the demo's fake
exchange play. Randomness comes only from `random.Random(seed)`: the same seed and script
give the same market, event for event.

A script is a list of `Segment`s; each sets per-role targets (`Regime`) that the market moves
to linearly over the segment's first `ramp` fraction. Roles: "leader" and "follower" symbols
take part in the build-up and the cascade (followers at reduced strength), "bystander" symbols
stay calm, so every scenario also has a control group.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Sequence

import attrs

from engine_core.events import (
    BookTickerReceived,
    FundingReceived,
    LiquidationReceived,
    MarketEvent,
    MarkPriceReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)

STEP_MS = 100


@attrs.frozen(kw_only=True)
class Regime:
    """Market conditions one role moves towards. Rates are per hour or per second as named."""

    vol_bps_s: float = 3.0  # price volatility, basis points per sqrt(second)
    drift_pct_h: float = 0.0  # price drift, percent per hour
    activity: float = 1.0  # traded notional vs the symbol's normal
    flow_bias: float = 0.0  # -1 = all aggressive selling, +1 = all aggressive buying
    depth: float = 1.0  # top-of-book size vs normal
    spread_ticks: float = 1.0  # bid-ask spread in price ticks
    oi_growth_pct_h: float = 0.0  # open-interest growth, percent per hour
    funding: float = 0.0001  # funding rate per 8 h interval (0.01 % is Binance's baseline)
    premium_pct: float = 0.0  # mark above index, percent
    liq_prob: float = 0.0  # chance of a liquidation in a given second
    liq_size: float = 0.0  # liquidation notional vs one second of normal traded notional
    liq_long_share: float = 1.0  # share of liquidations that hit longs (forced sells)


CALM = Regime()


@attrs.frozen(kw_only=True)
class Segment:
    name: str
    seconds: float
    leader: Regime = CALM
    follower: Regime | None = None  # None: halfway between calm and leader
    bystander: Regime = CALM
    ramp: float = 0.3  # share of the segment spent moving to the new targets


@attrs.frozen(kw_only=True)
class SymbolSpec:
    symbol: str
    price: float
    tick: float  # price tick size
    step: float  # quantity step size
    notional_s: float  # normal traded notional per second (quote)
    oi: float  # open interest in contracts
    depth_notional: float  # normal top-of-book notional per side


#: Liquid USDT perpetuals with realistic magnitudes (prices as of late 2026, rounded).
DEFAULT_SPECS: tuple[SymbolSpec, ...] = (
    SymbolSpec(symbol="BNBUSDT", price=610.0, tick=0.01, step=0.01, notional_s=80_000,
               oi=600_000, depth_notional=60_000),
    SymbolSpec(symbol="BTCUSDT", price=86_000.0, tick=0.1, step=0.001, notional_s=2_000_000,
               oi=95_000, depth_notional=1_500_000),
    SymbolSpec(symbol="DOGEUSDT", price=0.21, tick=0.00001, step=1.0, notional_s=150_000,
               oi=9_000_000_000, depth_notional=80_000),
    SymbolSpec(symbol="ETHUSDT", price=2_700.0, tick=0.01, step=0.001, notional_s=1_200_000,
               oi=2_100_000, depth_notional=900_000),
    SymbolSpec(symbol="SOLUSDT", price=140.0, tick=0.01, step=0.01, notional_s=400_000,
               oi=30_000_000, depth_notional=200_000),
    SymbolSpec(symbol="XRPUSDT", price=1.49, tick=0.0001, step=0.1, notional_s=300_000,
               oi=700_000_000, depth_notional=150_000),
)


def spec_for(symbol: str, index: int) -> SymbolSpec:
    """A known spec, or a plausible made-up one for any other symbol name."""
    for s in DEFAULT_SPECS:
        if s.symbol == symbol:
            return s
    price = 1.0 + (index * 37 % 500)
    return SymbolSpec(symbol=symbol, price=price, tick=0.001, step=0.1, notional_s=50_000,
                      oi=10_000_000 / price, depth_notional=40_000)


_FIELDS = [a.name for a in attrs.fields(Regime)]


def _blend(a: Regime, b: Regime, t: float) -> Regime:
    return Regime(**{f: getattr(a, f) + (getattr(b, f) - getattr(a, f)) * t for f in _FIELDS})


class _Sym:
    """Mutable per-symbol simulation state (the simulator is a shell component, not the core)."""

    def __init__(self, spec: SymbolSpec, role: str) -> None:
        self.spec = spec
        self.role = role
        self.mid = spec.price
        self.oi = spec.oi
        self.trade_id = 1_000_000
        self.regime = CALM


class MarketSimulator:
    """Plays a script for a set of symbols; iterate `events()` for (recv_ms, event) pairs."""

    def __init__(self, symbols: Sequence[str], script: Sequence[Segment], *, seed: int = 7,
                 start_ms: int = 1_795_564_800_000, roles: dict[str, str] | None = None,
                 oi_poll_ms: int = 5_000, latency_ms: tuple[int, int] = (5, 40)) -> None:
        if start_ms % 1000:
            raise ValueError("start_ms must be a whole second")
        self.symbols = tuple(symbols)
        self.script = tuple(script)
        self.seed = seed
        self.start_ms = start_ms
        self.oi_poll_ms = oi_poll_ms
        self.latency_ms = latency_ms
        self.roles = roles or default_roles(self.symbols)
        self.duration_ms = int(sum(s.seconds for s in self.script) * 1000)

    def segment_at(self, t_ms: int) -> str:
        """Name of the script segment playing at `t_ms` (for summaries and assertions)."""
        el = (t_ms - self.start_ms) / 1000
        for seg in self.script:
            if el < seg.seconds:
                return seg.name
            el -= seg.seconds
        return self.script[-1].name if self.script else ""

    def _targets(self, seg: Segment, role: str) -> Regime:
        if role == "leader":
            return seg.leader
        if role == "follower":
            return seg.follower or _blend(CALM, seg.leader, 0.5)
        return seg.bystander

    def events(self) -> Iterator[tuple[int, MarketEvent]]:
        """Every event with its receive time, in receive order."""
        rng = random.Random(self.seed)
        syms = [_Sym(spec_for(s, i), self.roles.get(s, "bystander"))
                for i, s in enumerate(self.symbols)]
        book_uid = 9_000_000_000
        heap: list[tuple[int, int, MarketEvent]] = []
        seq = 0
        # one symbol's streams arrive in order (TCP): receive times never go backwards
        last_recv: dict[str, int] = {}
        t = self.start_ms
        lo_lat, hi_lat = self.latency_ms
        for seg in self.script:
            starts = [s.regime for s in syms]
            targets = [self._targets(seg, s.role) for s in syms]
            seg_end = t + int(seg.seconds * 1000)
            ramp_ms = max(1.0, seg.seconds * 1000 * seg.ramp)
            seg_start = t
            while t < seg_end:
                frac = min(1.0, (t - seg_start) / ramp_ms)
                for k, s in enumerate(syms):
                    s.regime = _blend(starts[k], targets[k], frac)
                    for ev in self._step(rng, s, t):
                        if isinstance(ev, BookTickerReceived):
                            book_uid += rng.randint(1, 50)
                            ev = attrs.evolve(ev, update_id=book_uid)
                        recv = max(ev.exchange_ts + rng.randint(lo_lat, hi_lat),
                                   last_recv.get(ev.symbol, 0))
                        last_recv[ev.symbol] = recv
                        heapq.heappush(heap, (recv, seq, ev))
                        seq += 1
                t += STEP_MS
                while heap and heap[0][0] <= t:
                    recv, _, ev = heapq.heappop(heap)
                    yield recv, ev
        while heap:
            recv, _, ev = heapq.heappop(heap)
            yield recv, ev

    def _step(self, rng: random.Random, s: _Sym, t: int) -> list[MarketEvent]:
        r, sp = s.regime, s.spec
        dt = STEP_MS / 1000
        out: list[MarketEvent] = []
        old_mid = s.mid
        shock = r.vol_bps_s / 1e4 * rng.gauss(0, 1) * dt**0.5
        s.mid *= 1.0 + r.drift_pct_h / 100 / 3600 * dt + shock
        s.oi *= 1.0 + r.oi_growth_pct_h / 100 / 3600 * dt
        tick, step = sp.tick, sp.step
        # trades: about 20 per second at normal activity
        lam = 20 * r.activity * dt
        n = int(lam) + (1 if rng.random() < lam - int(lam) else 0)
        per_trade = sp.notional_s * r.activity * dt / max(1.0, lam)
        buy_p = 0.5 + r.flow_bias / 2
        for j in range(n):
            qty = max(step, _round(per_trade * rng.expovariate(1.0) / s.mid, step))
            price = _round(s.mid * (1 + rng.uniform(-1, 1) * 1e-5), tick)
            s.trade_id += 1
            out.append(TradeReceived(symbol=sp.symbol, exchange_ts=t + j * STEP_MS // max(1, n),
                                     price=price, qty=qty, buyer_is_maker=rng.random() >= buy_p,
                                     trade_id=s.trade_id))
        if s.mid != old_mid or rng.random() < 0.5:
            spread = max(1, round(r.spread_ticks * (0.8 + 0.4 * rng.random()))) * tick
            bid = _round(s.mid - spread / 2, tick)
            ask = _round(bid + spread, tick)
            side_qty = sp.depth_notional * r.depth / s.mid
            out.append(BookTickerReceived(
                symbol=sp.symbol, exchange_ts=t, bid=bid,
                bid_qty=max(step, _round(side_qty * rng.uniform(0.5, 1.5), step)), ask=ask,
                ask_qty=max(step, _round(side_qty * rng.uniform(0.5, 1.5), step))))
        if t % 1000 == 0:
            index = _round(s.mid, tick / 100)
            mark = _round(s.mid * (1 + r.premium_pct / 100), tick / 100)
            out.append(MarkPriceReceived(symbol=sp.symbol, exchange_ts=t, mark_price=mark,
                                         index_price=index, funding_rate=round(r.funding, 8),
                                         next_funding_ts=(t // 28_800_000 + 1) * 28_800_000))
            if r.liq_prob > 0 and rng.random() < r.liq_prob:
                notional = sp.notional_s * r.liq_size * rng.uniform(0.5, 1.5)
                long_hit = rng.random() < r.liq_long_share
                price = _round(s.mid * (0.999 if long_hit else 1.001), tick)
                out.append(LiquidationReceived(
                    symbol=sp.symbol, exchange_ts=t + rng.randint(0, 900),
                    side=Side.SELL if long_hit else Side.BUY, price=price,
                    qty=max(step, _round(notional / price, step))))
        if t % self.oi_poll_ms == 0:
            out.append(OpenInterestReceived(symbol=sp.symbol, exchange_ts=t,
                                            open_interest=_round(s.oi, step)))
        if t % 60_000 == 0:
            out.append(FundingReceived(
                symbol=sp.symbol, exchange_ts=t, funding_rate=round(r.funding, 8),
                mark_price=_round(s.mid * (1 + r.premium_pct / 100), tick / 100),
                index_price=_round(s.mid, tick / 100),
                next_funding_ts=(t // 28_800_000 + 1) * 28_800_000))
        return out


def _round(x: float, step: float) -> float:
    """Round to a multiple of `step`, returning the float a Binance decimal string parses to."""
    decimals = max(0, -int(f"{step:e}".split("e")[1]))
    return round(round(x / step) * step, decimals)


def default_roles(symbols: Sequence[str]) -> dict[str, str]:
    """First half leaders, next third followers, the rest bystanders (at least one each)."""
    n = len(symbols)
    n_lead = max(1, n // 2)
    n_follow = max(0, min(n - n_lead - 1, (n + 2) // 3))
    roles = {}
    for i, s in enumerate(symbols):
        roles[s] = "leader" if i < n_lead else ("follower" if i < n_lead + n_follow else
                                                 "bystander")
    return roles


# --------------------------------------------------------------------------- scripts
BUILD_UP = Regime(vol_bps_s=1.2, activity=1.2, depth=0.8, oi_growth_pct_h=12.0, funding=0.0007,
                  premium_pct=0.08)
TRIGGER = Regime(vol_bps_s=2.0, drift_pct_h=-8.0, activity=1.6, flow_bias=-0.6, depth=0.5,
                 spread_ticks=2.0, oi_growth_pct_h=0.0, funding=0.0007, premium_pct=0.06,
                 liq_prob=0.4, liq_size=0.03)
CASCADE = Regime(vol_bps_s=12.0, drift_pct_h=-80.0, activity=4.0, flow_bias=-0.7, depth=0.3,
                 spread_ticks=4.0, oi_growth_pct_h=-120.0, funding=0.0003, premium_pct=-0.05,
                 liq_prob=0.95, liq_size=0.6)
RECOVERY = Regime(vol_bps_s=4.0, activity=1.2, depth=0.9, funding=0.0001)


def compressed(r: Regime, scale: float) -> Regime:
    """The same regime with time running 1/scale times faster (hourly rates scaled up)."""
    return attrs.evolve(r, drift_pct_h=r.drift_pct_h / scale,
                        oi_growth_pct_h=r.oi_growth_pct_h / scale)


def cascade_script(scale: float = 1.0) -> list[Segment]:
    """Calm, a long leverage build-up, the trigger, a cascade and recovery (~100 min at 1.0).

    With `scale` < 1 the whole story is compressed in time (durations times scale, price drift
    and open-interest growth per hour divided by it), for the demo and its compressed config.
    """
    return [
        Segment(name="calm", seconds=15 * 60 * scale),
        Segment(name="build-up", seconds=50 * 60 * scale, leader=compressed(BUILD_UP, scale),
                ramp=0.5),
        Segment(name="trigger", seconds=2 * 60 * scale, leader=compressed(TRIGGER, scale),
                ramp=0.2),
        Segment(name="cascade", seconds=3 * 60 * scale, leader=compressed(CASCADE, scale),
                ramp=0.1),
        Segment(name="recovery", seconds=30 * 60 * scale, leader=compressed(RECOVERY, scale),
                ramp=0.2),
    ]


def calm_script(hours: float) -> list[Segment]:
    return [Segment(name="calm", seconds=hours * 3600)]
