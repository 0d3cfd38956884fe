"""Binance-shaped emission of a simulated `MarketPath` as capture lines (docs/capture-format.md).

What a live session of the engine would have received, with Binance's own cadences and
payload shapes (key order as in /work/shared/fixtures/binance/):
  /market: `<s>@aggTrade` (a Poisson number of frames per second, sized from the taker
  volume, prices on the sub-second path), `<s>@markPrice@1s` (p, ap, P, i, r, T every
  second), `<s>@forceOrder` (at most ONE per symbol per second: the latest order of the
  second; the others are not seen, as on Binance);
  /public: `<s>@bookTicker` (every `book_ms`, 250 by default), `<s>@depth20@<ms>ms`
  (20 levels a side, `depth_ms` 100/250/500);
  REST: `/fapi/v1/fundingInfo` and `/futures/data/openInterestHist` (5-min, 30 days, in
  pages of 500) at start, then `/fapi/v1/openInterest` per symbol at the live poller's
  cadence and `/fapi/v1/premiumIndex` (all symbols) at its cadence.
Lines come out in receive order (exchange time + a small latency) as bytes, lazily.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import orjson

from engine_adapters.binance.rest_client import RestClientConfig
from engine_sim.market.model import MarketPath
from engine_sim.market.profiles import SymbolProfile

_REST_CFG = RestClientConfig()
#: The live poller's cadences (engine_adapters.binance.rest_client defaults).
OI_POLL_S = int(_REST_CFG.oi_interval_s)
PREMIUM_POLL_S = int(_REST_CFG.premium_interval_s)
HIST_PERIOD_MS = 300_000
HIST_DAYS = 30
HIST_PAGE = 500
DEPTH_SPEEDS_MS = (100, 250, 500)


def _places(step: float) -> int:
    text = f"{step:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _ws(recv: int, frame: str) -> bytes:
    return orjson.dumps({"recv_ms": recv, "channel": "ws", "raw": frame})


def _rest(recv: int, path: str, query: str, body: str) -> bytes:
    return orjson.dumps({"recv_ms": recv, "channel": "rest", "path": path, "query": query,
                         "status": 200, "raw": body})


class _Pool:
    """Pre-drawn numpy variates handed out as Python floats (cheap per frame)."""

    def __init__(self, draw: Callable[[int], np.ndarray], size: int = 1 << 18) -> None:
        self.draw = draw
        self.size = size
        self.buf: list[float] = []
        self.i = 0

    def take(self, k: int) -> list[float]:
        if self.i + k > len(self.buf):
            self.buf = self.draw(max(self.size, k)).tolist()
            self.i = 0
        out = self.buf[self.i:self.i + k]
        self.i += k
        return out


class Emitter:
    """Turns one simulated path into capture lines; all randomness from `rng`."""

    def __init__(self, profiles: tuple[SymbolProfile, ...], path: MarketPath, start_ms: int,
                 seed: int, depth_ms: int = 500, book_ms: int = 250,
                 oi_history: np.ndarray | None = None) -> None:
        if depth_ms not in DEPTH_SPEEDS_MS:
            raise ValueError(f"depth_ms must be one of {DEPTH_SPEEDS_MS} (Binance's depth "
                             f"update speeds), got {depth_ms}")
        if book_ms <= 0 or 1000 % book_ms:
            raise ValueError(f"book_ms must divide 1000, got {book_ms}")
        self.pr = profiles
        self.m = path
        self.start_ms = start_ms
        self.seed = seed
        self.depth_ms = depth_ms
        self.book_ms = book_ms
        self.oi_history = oi_history
        self.pp = [_places(p.tick) for p in profiles]
        self.qp = [_places(p.step) for p in profiles]
        self.low = [p.symbol.lower() for p in profiles]
        n = len(profiles)
        m = path
        # Whole-run draws (the same for every chunk): trade counts, fills, ids, latencies.
        rng = np.random.default_rng([seed, 1])
        vol = m.buy_vol + m.sell_vol
        calm = np.array([p.volume_day / 86_400.0 / p.price for p in profiles])
        rate = np.array([p.trades_s for p in profiles])
        k = np.minimum(rng.poisson(rate * np.minimum(vol / calm, 6.0)),
                       (4 * rate + 4).astype(np.int64))
        self.n_trades = k.tolist()
        agg0 = (np.arange(n) + 1) * 1_000_000_000
        self.agg_start = (agg0 + np.cumsum(k, axis=0) - k).tolist()
        # Fills per aggTrade: 1-5; trade ids contiguous across aggTrades of a symbol.
        self.fills = [rng.integers(1, 6, int(k[:, s].sum())) for s in range(n)]
        self.fill_start = [np.concatenate([[0], np.cumsum(f)]) + 2 * int(agg0[s])
                           for s, f in enumerate(self.fills)]
        self.lat = rng.integers(5, 40, vol.shape).tolist()
        self.book_u0 = (np.arange(n) + 1) * 10_000_000_000
        self.vol = vol.tolist()
        self.sell = m.sell_vol.tolist()
        self.lm = m.log_mid.tolist()
        self.mark = m.mark.tolist()
        self.index = m.index.tolist()
        self.funding = m.funding.tolist()
        self.spread = m.spread_bps.tolist()
        self.dm = m.depth_mult.tolist()
        self.level_q = [p.depth_1pct / p.price * max(p.tick / p.price * 1e2, 0.002)
                        for p in profiles]
        self.fr_b = list(range(0, 1000, book_ms))
        self.fr_d = list(range(0, 1000, depth_ms))
        self.fracs = [x / 1000.0 for x in self.fr_b + self.fr_d]

    def lines(self, t0: int = 0, t1: int | None = None) -> Iterator[bytes]:
        """Capture lines of seconds [t0, t1) in receive order (the start-up REST with t0 0).

        Chunks are independent (their own noise, seeded by the chunk start; ids from the
        whole-run counts) so they can be made in parallel and concatenated."""
        n_s, n = self.m.log_mid.shape
        t1 = n_s if t1 is None else min(t1, n_s)
        rng = np.random.default_rng([self.seed, 2, t0])
        self.rng = rng
        self.gauss = _Pool(lambda k: rng.standard_normal(k))
        self.unif = _Pool(lambda k: rng.random(k))
        self.expo = _Pool(lambda k: rng.exponential(1.0, k))
        self.g_top = _Pool(lambda k: rng.gamma(2.0, 0.5, k))
        self.g_lvl = _Pool(lambda k: rng.gamma(1.5, 0.67, k))
        # Book update ids only need to rise: each second starts a fresh block of ids.
        self.book_u = self.book_u0 + t0 * 100_000
        if t0 == 0:
            yield from self._start_lines()
        for t in range(t0, t1):
            batch: list[tuple[int, int, bytes]] = []
            self.book_u = np.maximum(self.book_u, self.book_u0 + t * 100_000)
            for s in range(n):
                self._second(t, s, batch)
            if t % PREMIUM_POLL_S == 0:
                recv = self.start_ms + t * 1000 + 400
                batch.append((recv, 0, _rest(recv, "/fapi/v1/premiumIndex", "",
                                             self._premium_body(t, recv - 20))))
            batch.sort(key=lambda x: (x[0], x[1]))
            for _, _, line in batch:
                yield line

    # --- start-up REST -------------------------------------------------------------------
    def _start_lines(self) -> Iterator[bytes]:
        t0 = self.start_ms - 2_000
        info = [{"symbol": p.symbol, "adjustedFundingRateCap": f"{p.funding_cap:.8f}",
                 "adjustedFundingRateFloor": f"{-p.funding_cap:.8f}",
                 "fundingIntervalHours": p.funding_hours, "disclaimer": False}
                for p in self.pr]
        yield _rest(t0, "/fapi/v1/fundingInfo", "", orjson.dumps(info).decode())
        if self.oi_history is None:
            return
        n_pts = self.oi_history.shape[0]
        end = (self.start_ms // HIST_PERIOD_MS) * HIST_PERIOD_MS
        stamps = end - HIST_PERIOD_MS * np.arange(n_pts)[::-1]
        for s, p in enumerate(self.pr):
            for k in range(0, n_pts, HIST_PAGE):
                sl = slice(k, min(n_pts, k + HIST_PAGE))
                rows = [{"symbol": p.symbol, "sumOpenInterest": f"{oi:.8f}",
                         "sumOpenInterestValue": f"{oi * p.price:.8f}", "timestamp": int(ts)}
                        for oi, ts in zip(self.oi_history[sl, s], stamps[sl], strict=True)]
                q = (f"symbol={p.symbol}&period=5m&limit={HIST_PAGE}"
                     f"&startTime={int(stamps[sl][0])}&endTime={int(stamps[sl][-1])}")
                t0 += 7
                yield _rest(t0, "/futures/data/openInterestHist", q, orjson.dumps(rows).decode())

    # --- one symbol-second ---------------------------------------------------------------
    def _sub_price(self, t: int, s: int, fracs: list[float]) -> list[float]:
        """Mid prices at fractions of second t (a Brownian bridge to the next second)."""
        lm = self.lm
        a = lm[t - 1][s] if t > 0 else lm[0][s]
        d = lm[t][s] - a
        v = self.pr[s].vol_s
        z = self.gauss.take(len(fracs))
        return [math.exp(a + f * d + v * math.sqrt(f * (1.0 - f)) * e)
                for f, e in zip(fracs, z, strict=True)]

    def _second(self, t: int, s: int, out: list[tuple[int, int, bytes]]) -> None:
        p = self.pr[s]
        base = self.start_ms + t * 1000
        sym, low, pp, qp = p.symbol, self.low[s], self.pp[s], self.qp[s]
        lat = self.lat[t][s]
        end = base + 999  # a second's lines arrive within it (chunks stay in order)
        # Trades: frames from the taker volume, sides by buy/sell share.
        k = self.n_trades[t][s]
        vol = self.vol[t][s]
        if k and vol > 0:
            ms = sorted(int(u * 1000.0) for u in self.unif.take(k))
            px = self._sub_price(t, s, [x / 1000.0 for x in ms])
            w = self.expo.take(k)
            sides = self.unif.take(k)
            tot = sum(w)
            sell_p = self.sell[t][s] / vol
            a = self.agg_start[t][s]
            i0 = a - (s + 1) * 1_000_000_000
            fs = self.fill_start[s]
            for j, tms in enumerate(ms):
                tt = base + tms
                qs = f"{max(w[j] / tot * vol, p.step):.{qp}f}"
                f = int(fs[i0 + j])
                fills = int(fs[i0 + j + 1]) - f
                frame = (f'{{"stream":"{low}@aggTrade","data":{{"e":"aggTrade","E":{tt + 1},'
                         f'"a":{a + j},"s":"{sym}","p":"{px[j]:.{pp}f}","q":"{qs}","nq":"{qs}",'
                         f'"f":{f},"l":{f + fills - 1},"T":{tt},'
                         f'"m":{"true" if sides[j] < sell_p else "false"},"st":1}}}}')
                recv = min(tt + lat, end)
                out.append((recv, 1, _ws(recv, frame)))
        # Book: top of book every `book_ms`, 20 levels at the depth speed.
        spread = self.spread[t][s] * 1e-4
        mids = self._sub_price(t, s, self.fracs)
        level_q = self.level_q[s] * self.dm[t][s]
        nb = len(self.fr_b)
        gq = self.g_top.take(2 * nb)
        gu = self.unif.take(nb)
        for j, off in enumerate(self.fr_b):
            bid, ask = self._top(mids[j], spread, p.tick)
            bq = max(level_q * gq[2 * j], p.step)
            aq = max(level_q * gq[2 * j + 1], p.step)
            self.book_u[s] += 1 + int(gu[j] * 39.0)
            tt = base + off
            frame = (f'{{"stream":"{low}@bookTicker","data":{{"e":"bookTicker",'
                     f'"u":{int(self.book_u[s])},"s":"{sym}","ps":"{sym}",'
                     f'"b":"{bid:.{pp}f}","B":"{bq:.{qp}f}","a":"{ask:.{pp}f}",'
                     f'"A":"{aq:.{qp}f}","T":{tt},"E":{tt + 1},"st":1}}}}')
            recv = min(tt + lat, end)
            out.append((recv, 2, _ws(recv, frame)))
        for j, off in enumerate(self.fr_d):
            out.append(self._depth(s, mids[nb + j], spread, level_q, base + off,
                                   min(base + off + lat, end)))
        # Mark price every second.
        e = base
        mk, ix = f"{self.mark[t][s]:.8f}", f"{self.index[t][s]:.8f}"
        frame = (f'{{"stream":"{low}@markPrice@1s","data":{{"e":"markPriceUpdate","E":{e},'
                 f'"s":"{sym}","p":"{mk}","ap":"{mk}","P":"{ix}","i":"{ix}",'
                 f'"r":"{self.funding[t][s]:.8f}",'
                 f'"T":{self._next_funding_ms(t, s)},"st":1}}}}')
        out.append((e + lat, 3, _ws(e + lat, frame)))
        # Liquidations: only the latest order of the second is pushed.
        self._force_order(t, s, base, lat, out)
        # Open interest at the poller's cadence (symbols staggered over the period).
        if (t + s) % OI_POLL_S == 0:
            recv = base + 200 + 13 * s
            body = (f'{{"symbol":"{sym}","openInterest":"{float(self.m.oi[t, s]):.{qp}f}",'
                    f'"time":{recv - 25}}}')
            out.append((recv, 4, _rest(recv, "/fapi/v1/openInterest", f"symbol={sym}", body)))

    def _next_funding_ms(self, t: int, s: int) -> int:
        return self.start_ms - self.start_ms % 1000 + int(self.m.next_funding_s[t, s]) * 1000

    @staticmethod
    def _top(mid: float, spread: float, tick: float) -> tuple[float, float]:
        half = max(mid * spread / 2.0, tick / 2.0)
        bid = math.floor((mid - half) / tick) * tick
        ask = max(math.ceil((mid + half) / tick) * tick, bid + tick)
        return bid, ask

    def _depth(self, s: int, mid: float, spread: float, level_q: float, tt: int,
               recv: int) -> tuple[int, int, bytes]:
        p = self.pr[s]
        pp, qp = self.pp[s], self.qp[s]
        bid, ask = self._top(mid, spread, p.tick)
        # Levels one basis point apart (at least a tick): 20 levels reach ~0.2 %.
        gap = max(p.tick, round(mid * 0.0001 / p.tick) * p.tick)
        step = p.step
        q = [x if x > step else step for x in [level_q * g for g in self.g_lvl.take(40)]]
        steps = [i * gap for i in range(20)]
        bids = ",".join([f'["{bid - d:.{pp}f}","{x:.{qp}f}"]'
                         for d, x in zip(steps, q[:20], strict=True)])
        asks = ",".join([f'["{ask + d:.{pp}f}","{x:.{qp}f}"]'
                         for d, x in zip(steps, q[20:], strict=True)])
        u0 = int(self.book_u[s])
        u = u0 + 5 + int(self.unif.take(1)[0] * 195.0)
        self.book_u[s] = u
        frame = (f'{{"stream":"{self.low[s]}@depth20@{self.depth_ms}ms","data":{{'
                 f'"e":"depthUpdate","E":{tt + 2},"T":{tt},"s":"{p.symbol}","U":{u0 + 1},'
                 f'"u":{u},"pu":{u0},"b":[{bids}],"a":[{asks}]}}}}')
        return recv, 5, _ws(recv, frame)

    def _force_order(self, t: int, s: int, base: int, lat: int,
                     out: list[tuple[int, int, bytes]]) -> None:
        m, p, rng = self.m, self.pr[s], self.rng
        ql, qs = m.liq_long[t, s], m.liq_short[t, s]
        if ql <= 0 and qs <= 0:
            return
        price = float(np.exp(m.log_mid[t, s]))
        typical = 20_000.0 / price  # a typical forced order, contracts
        nl = 1 + int(rng.poisson(ql / typical)) if ql > 0 else 0
        ns = 1 + int(rng.poisson(qs / typical)) if qs > 0 else 0
        long_last = rng.random() < nl / (nl + ns)
        q_side, n_side = (ql, nl) if long_last else (qs, ns)
        size = q_side * (rng.beta(1.0, n_side - 1.0) if n_side > 1 else 1.0)
        qp, pp = self.qp[s], self.pp[s]
        q = max(round(float(size), qp), p.step)
        ap = price * (1.0 - 0.0005 if long_last else 1.0 + 0.0005)
        lim = ap * (0.99 if long_last else 1.01)
        tt = base + int(rng.integers(0, 960))
        qs_ = f"{q:.{qp}f}"
        frame = (f'{{"stream":"{self.low[s]}@forceOrder","data":{{"e":"forceOrder",'
                 f'"E":{tt + 3},"o":{{"s":"{p.symbol}","S":"{"SELL" if long_last else "BUY"}",'
                 f'"o":"LIMIT","f":"IOC","q":"{qs_}","p":"{lim:.{pp}f}","ap":"{ap:.{pp}f}",'
                 f'"X":"FILLED","l":"{qs_}","z":"{qs_}","T":{tt},"ps":"{p.symbol}",'
                 f'"st":1}}}}}}')
        recv = min(tt + 3 + lat, base + 999)
        out.append((recv, 6, _ws(recv, frame)))

    def _premium_body(self, t: int, at_ms: int) -> str:
        m = self.m
        rows = [{"symbol": p.symbol, "markPrice": f"{m.mark[t, s]:.8f}",
                 "indexPrice": f"{m.index[t, s]:.8f}",
                 "estimatedSettlePrice": f"{m.index[t, s]:.8f}",
                 "lastFundingRate": f"{m.funding[t, s]:.8f}",
                 "interestRate": f"{0.0001 * p.funding_hours / 8.0:.8f}",
                 "nextFundingTime": self._next_funding_ms(t, s), "time": at_ms}
                for s, p in enumerate(self.pr)]
        return orjson.dumps(rows).decode()
