"""Feature extraction: one token's batch + its rolling state -> a FeatureFrame (design note step 4).

The extractor knows nothing of tiers, state machines, clusters, alerts or logs. It is a pure
function of the batch and the token's previous `FeatureState` (determinism point 2). Every
rolling window counts ticks: baselines are exponential moving averages with
alpha = 2 / (window + 1), updated once per tick whether or not anything arrived.

Flow series (volume, delta, liquidations, squared returns) start at zero at the session start
and are bias-corrected by the shared weight `w = 1 - (1 - alpha)^t` (tracked by multiplication,
see `EmaWeights`), so a baseline is meaningful after a few ticks instead of creeping up from
zero for ten minutes. Level series (mid, spread, depth, open interest) start at their first
observation.

Only +, -, *, /, sqrt and comparisons are used (SPEC section 4: no libm transcendental).
"""

from __future__ import annotations

import math

from engine_core.canonical import CanonicalBatch
from engine_core.events import (
    BookTickerReceived,
    DataHealthReceived,
    DepthReceived,
    FundingInfoReceived,
    FundingReceived,
    HealthKind,
    LiquidationReceived,
    MarkPriceReceived,
    OpenInterestHistoryReceived,
    OpenInterestReceived,
    Side,
    TradeReceived,
)
from engine_core.evidence import EvidenceFlag
from engine_core.feature_types import (
    NEVER,
    EmaWeights,
    FeatureFrame,
    FeatureKernel,
    FeatureParams,
    FeatureState,
    QuietValues,
    alpha,
    seed_oi_norm,
    unit,
)
from engine_core.quality import FLAG_OF, QualityGuard
from engine_core.ticks import TICK_MS

__all__ = ["EmaWeights", "FeatureFrame", "FeatureKernel", "FeatureParams", "FeatureState",
           "QuietValues", "alpha", "extract", "extract_quiet", "feature_kernel"]

_NEVER = NEVER
_E = EvidenceFlag
_E_NO_MID, _E_NO_PRICE, _E_NO_MARK, _E_NO_OI = int(_E.NO_MID), int(_E.NO_PRICE), \
    int(_E.NO_MARK), int(_E.NO_OI)
_E_FUNDING, _E_OI_SESSION, _E_TOP, _E_HALTED, _E_DELISTED, _E_NO_SIGMA = (
    int(_E.FUNDING_INTERVAL_ASSUMED), int(_E.OI_BASELINE_SESSION), int(_E.DEPTH_TOP_OF_BOOK),
    int(_E.HALTED), int(_E.DELISTED), int(_E.NO_SIGMA))

# The flag of each quality guard, read from the compiled quality table once (plain ints: the
# per-token path cannot afford IntFlag arithmetic or a loop over the table).
_QG = QualityGuard
(_OVERLOAD, _CATCH_UP, _NO_BOOK, _STALE_BOOK, _STALE_MARK, _STALE_OI, _TRADE_GAP,
 _LIQUIDATION_GAP, _RECONNECT, _REST_DEGRADED, _FEED_STALE, _LATE_DATA, _LIQUIDATION_SATURATED,
 _WARMUP, _HALTED_FLAG) = (FLAG_OF[g] for g in (
    _QG.OVERLOAD_REPORTED, _QG.CATCH_UP_REPORTED, _QG.NO_BOOK_YET, _QG.BOOK_STALE,
    _QG.MARK_STALE, _QG.OI_STALE, _QG.TRADE_GAP_RECENT, _QG.LIQUIDATION_GAP_RECENT,
    _QG.RECONNECT_RECENT, _QG.REST_DEGRADED_RECENT, _QG.FEED_SILENT, _QG.EVENTS_LATE,
    _QG.LIQUIDATION_CAP_BINDING, _QG.WARMING_UP, _QG.SYMBOL_HALTED))
_FAR = 2**62  # a deadline that never comes
_MARK_OR_FUNDING = (MarkPriceReceived, FundingReceived)  # a tuple: `A | B` is built per call
_tuple_new = tuple.__new__


def extract(st: FeatureState, batch: CanonicalBatch, p: FeatureParams, w: EmaWeights
            ) -> tuple[FeatureState, FeatureFrame]:
    """Fold one tick's batch into the token's state and describe the tick."""
    new, frame, _quiet = extract_quiet(st, batch, p, w, None)
    return new, frame


def extract_quiet(st: FeatureState, batch: CanonicalBatch, p: FeatureParams, w: EmaWeights,
                  quiet: QuietValues | None) -> tuple[FeatureState, FeatureFrame,
                                                      QuietValues | None]:
    """`extract`, also given and returning what an empty tick can reuse (`QuietValues`).

    `quiet` must be what the previous call for this token returned (or None): the pipeline
    keeps it beside the token's state. The results are the same bits with or without it.
    """
    return feature_kernel(p)(st, batch, w, quiet)


def feature_kernel(p: FeatureParams) -> FeatureKernel:
    """`extract_quiet` with `p` bound once: what the pipeline calls per token per tick
    (its constants are the closure's; see `trigger_cost.cost_kernel`)."""
    (a_fast, a_slow, a_vol_fast, a_vol_slow, a_oi_fast, a_oi_slow, a_liq, warmup_ticks,
     stale_book_ticks, stale_mark_ticks, stale_oi_ticks, hold, late_ms, a_liq_base,
     liq_base_floor, a_sustain, a_move, a_sigma, band_bps, default_hours, _liq_n, a_basis) = p

    def extract_quiet_k(st: FeatureState, batch: CanonicalBatch, w: EmaWeights,
                        quiet: QuietValues | None
                        ) -> tuple[FeatureState, FeatureFrame, QuietValues | None]:
        tick = batch.tick_id
        w_fast, w_slow, w_vol_fast, w_vol_slow, _w_liq = w
        (since, bid, ask, bid_qty, ask_qty, book_id, book_tick, mark, index, funding, mark_ts,
         mark_tick, oi, oi_ts, oi_tick, oi_fast0, oi_slow0, notional_fast0, notional_slow0,
         delta_fast0, depth_fast0, depth_slow0, spread_fast0, spread_slow0, prev_mid0, mid_slow0,
         rv_fast0, rv_slow0, liq_long0, liq_short0, liq_sec, liq_streak, liq_sat_tick,
         trade_gap_tick, liq_gap_tick, reconnect_tick, rest_tick, feed_stale, move_ref0,
         move_var0, move_w, liq_base0, liq_base_w, liq_active0, funding_hours, oi_seeded, band,
         band_mid, depth_tick, last_price, halted, delisted, basis_ema, basis_w) = st
        book_tick0, oi_tick0, depth_tick0 = book_tick, oi_tick, depth_tick
        n_trades = 0
        volume = notional = delta = liq_l = liq_s = 0.0
        overload = catch_up = late = False
        seed = 0.0
        events = batch.events
        if events:
            late_before = tick * TICK_MS - late_ms
            for ev in events:
                e = ev.payload
                if isinstance(e, TradeReceived):
                    n_trades += 1
                    volume += e.qty
                    nt = e.price * e.qty
                    notional += nt
                    delta += -nt if e.buyer_is_maker else nt
                    last_price = e.price
                elif isinstance(e, BookTickerReceived):
                    if e.update_id >= book_id or e.update_id == 0:
                        bid, ask, bid_qty, ask_qty = e.bid, e.ask, e.bid_qty, e.ask_qty
                        book_id = e.update_id
                        book_tick = tick
                elif isinstance(e, LiquidationReceived):
                    if e.side is Side.SELL:
                        liq_l += e.price * e.qty
                    else:
                        liq_s += e.price * e.qty
                    sec = e.exchange_ts // 1000
                    if sec == liq_sec + 1:
                        liq_streak += 1
                    elif sec != liq_sec:
                        liq_streak = 1
                    liq_sec = sec
                    if liq_streak >= 2:  # a liquidation in consecutive seconds: the 1/s cap binds
                        liq_sat_tick = tick
                elif isinstance(e, _MARK_OR_FUNDING):
                    if e.exchange_ts >= mark_ts:
                        mark, index, funding, mark_ts = e.mark_price, e.index_price, \
                            e.funding_rate, e.exchange_ts
                        mark_tick = tick
                elif isinstance(e, OpenInterestReceived):
                    if e.exchange_ts >= oi_ts:
                        oi, oi_ts, oi_tick = e.open_interest, e.exchange_ts, tick
                elif isinstance(e, DepthReceived):
                    band = e.band_notional(band_bps)
                    band_mid = e.mid
                    depth_tick = tick
                elif isinstance(e, FundingInfoReceived):
                    funding_hours = e.interval_hours
                    continue
                elif isinstance(e, OpenInterestHistoryReceived):
                    seed = seed_oi_norm(e.points, a_oi_slow)
                    if oi_ts < e.exchange_ts:  # the history's newest point is the latest OI
                        oi, oi_ts = e.points[-1][1], e.points[-1][0]
                    continue
                elif isinstance(e, DataHealthReceived):
                    k = e.kind
                    if k is HealthKind.RECONNECT:
                        reconnect_tick = tick
                    elif k is HealthKind.TRADE_GAP:
                        trade_gap_tick = tick
                    elif k is HealthKind.LIQUIDATION_GAP:
                        liq_gap_tick = tick
                    elif k is HealthKind.STREAM_STALE:
                        feed_stale = True
                    elif k is HealthKind.STREAM_RESUMED:
                        feed_stale = False
                    elif k is HealthKind.OVERLOAD:
                        overload = True
                    elif k is HealthKind.CATCH_UP:
                        catch_up = True
                    elif k is HealthKind.REST_DEGRADED:
                        rest_tick = tick
                    elif k is HealthKind.SYMBOL_HALTED:
                        halted = True
                    elif k is HealthKind.SYMBOL_TRADING:
                        halted = False
                    elif k is HealthKind.SYMBOL_DELISTED:
                        halted = delisted = True
                    continue
                if ev.exchange_ts < late_before:
                    late = True

        # --- flow EMAs (bias-corrected by the shared weights) ---------------------------------
        nf = notional_fast0 + a_fast * (notional - notional_fast0)
        ns = notional_slow0 + a_slow * (notional - notional_slow0)
        df = delta_fast0 + a_fast * (delta - delta_fast0)
        nf_hat, ns_hat = nf / w_fast, ns / w_slow
        volume_ratio = nf_hat / ns_hat if ns_hat > 0.0 else 1.0
        delta_ratio = unit(df / nf) if nf > 0.0 else 0.0
        no_liq = not (liq_long0 or liq_short0 or liq_l or liq_s) and _w_liq > 0.0
        if no_liq:  # nothing liquidated within memory (most symbols, most hours): the EMAs of
            ll = ls = liq_imb = liq_intensity = 0.0  # zeros stay +0.0, and so do their ratios
        else:
            ll = liq_long0 + a_liq * (liq_l - liq_long0)
            ls = liq_short0 + a_liq * (liq_s - liq_short0)
            liq_sum = ll + ls
            liq_imb = unit((ll - ls) / liq_sum) if liq_sum > 0.0 else 0.0
            liq_intensity = (liq_sum / _w_liq) / ns_hat if ns_hat > 0.0 else \
                (1.0 if liq_sum > 0.0 else 0.0)
        # the symbol's own liquidation norm (per tick), and how often prints come lately
        liq_base = liq_base0 + a_liq_base * (liq_l + liq_s - liq_base0)
        liq_base_w = liq_base_w + a_liq_base * (1.0 - liq_base_w)
        liq_active = liq_active0 + a_sustain * ((1.0 if liq_l + liq_s > 0.0 else 0.0) - liq_active0)

        # --- book levels (a DepthReceived is a book too) ----------------------------------------
        has_top = book_tick != _NEVER
        has_depth = depth_tick != _NEVER
        has_book = has_top or has_depth
        seen = book_tick if book_tick > depth_tick else depth_tick
        if has_top:
            mid = (bid + ask) * 0.5
            spread = (ask - bid) / mid
        else:
            mid = band_mid if band_mid > 0.0 else (last_price if last_price > 0.0 else mark)
            spread = spread_slow0
        if has_book and mid > 0.0:
            depth = band if has_depth else bid * bid_qty + ask * ask_qty
            first = (book_tick0 == _NEVER and depth_tick0 == _NEVER) or prev_mid0 <= 0.0
            if first:  # first book of the session: levels start here
                sf = ss = spread
                dpf = dps = depth
                mid_slow = prev_mid = move_ref = mid
                move_var = 0.0
            elif has_depth and depth_tick0 == _NEVER:  # depth bands replace the top of book:
                sf = spread_fast0 + a_fast * (spread - spread_fast0)  # its norm starts afresh
                ss = spread_slow0 + a_slow * (spread - spread_slow0)
                dpf = dps = depth
                mid_slow = mid_slow0 + a_slow * (mid - mid_slow0)
                prev_mid = prev_mid0
                move_ref = move_ref0 + a_move * (mid - move_ref0)
                move_var = move_var0
            else:
                sf = spread_fast0 + a_fast * (spread - spread_fast0)
                ss = spread_slow0 + a_slow * (spread - spread_slow0)
                dpf = depth_fast0 + a_fast * (depth - depth_fast0)
                dps = depth_slow0 + a_slow * (depth - depth_slow0)
                mid_slow = mid_slow0 + a_slow * (mid - mid_slow0)
                prev_mid = prev_mid0
                move_ref = move_ref0 + a_move * (mid - move_ref0)
                move_var = move_var0
            ret = mid / prev_mid - 1.0
            r2 = ret * ret
            move = mid / move_ref - 1.0
            move_var = move_var + a_sigma * (move * move - move_var)
            move_w = move_w + a_sigma * (1.0 - move_w)
            mv_hat = move_var / move_w
            move_sigma = move / math.sqrt(mv_hat) if mv_hat > 0.0 else 0.0
        else:
            mid = spread = 0.0
            sf = ss = dpf = dps = mid_slow = move_ref = move_var = 0.0
            r2 = move = move_sigma = mv_hat = 0.0
        rvf = rv_fast0 + a_vol_fast * (r2 - rv_fast0)
        rvs = rv_slow0 + a_vol_slow * (r2 - rv_slow0)
        rvs_hat = rvs / w_vol_slow
        vol_ratio = math.sqrt((rvf / w_vol_fast) / rvs_hat) if rvs_hat > 0.0 else 1.0

        # --- liquidations on the move's side, against the symbol's own norm ---------------------
        if no_liq:
            liq_excess = 0.0  # (0 / w) / norm, or 0 without a norm
        else:
            side = ll if move < 0.0 else (ls if move > 0.0 else (ll if ll > ls else ls))
            norm = liq_base / liq_base_w + liq_base_floor * ns_hat
            liq_excess = (side / _w_liq) / norm if norm > 0.0 else (1e9 if side > 0.0 else 0.0)

        # --- open interest (24 h norm, seeded by the history), mark --------------------------
        if seed > 0.0:
            oi_seeded = True
        if oi > 0.0 and (oi_tick != _NEVER or oi_seeded):
            if oi_tick0 == _NEVER and oi_fast0 <= 0.0:
                oif = oi
                ois = seed if seed > 0.0 else (oi_slow0 if oi_slow0 > 0.0 else oi)
            else:
                oif = oi_fast0 + a_oi_fast * (oi - oi_fast0)
                ois = seed if seed > 0.0 else oi_slow0 + a_oi_slow * (oi - oi_slow0)
            oi_velocity = oi / oif - 1.0 if oif > 0.0 else 0.0
            oi_build = oi / ois - 1.0 if ois > 0.0 else 0.0
        else:
            oif = ois = oi_velocity = oi_build = 0.0
        has_mark = mark_tick != _NEVER
        if quiet is not None and not events and quiet[0] is p and quiet[1] <= tick < quiet[2]:
            # Nothing arrived since `quiet` was taken and no flag's deadline has come: what
            # follows reads only fields that change with events, so its values still hold.
            _p, _from, _until, flags, ev_flags, premium_pct, mark_vs_mid, per_hour, price = quiet
        else:
            if has_mark:
                premium_pct = ((mid if has_book and mid > 0.0 else mark) / index - 1.0) * 100.0
            else:
                premium_pct = 0.0
            mark_vs_mid = (mark / mid - 1.0) * 100.0 if has_mark and has_book and mid > 0.0 \
                else 0.0
            per_hour = funding / (funding_hours if funding_hours > 0 else default_hours)

            # --- data quality: each flag comes from the quality table (quality.py) ------------
            flags = _OVERLOAD if overload else 0
            if catch_up:
                flags |= _CATCH_UP
            if not has_book:
                flags |= _NO_BOOK
            elif tick - seen >= stale_book_ticks:
                flags |= _STALE_BOOK
            mark_ref = mark_tick if mark_tick > since else since
            if tick - mark_ref >= stale_mark_ticks:
                flags |= _STALE_MARK
            oi_ref = oi_tick if oi_tick > since else since
            if tick - oi_ref >= stale_oi_ticks:
                flags |= _STALE_OI
            if tick - trade_gap_tick < hold:
                flags |= _TRADE_GAP
            if tick - liq_gap_tick < hold:
                flags |= _LIQUIDATION_GAP
            if tick - reconnect_tick < hold:
                flags |= _RECONNECT
            if tick - rest_tick < hold:
                flags |= _REST_DEGRADED
            if feed_stale:
                flags |= _FEED_STALE
            if late:
                flags |= _LATE_DATA
            if tick - liq_sat_tick < hold:
                flags |= _LIQUIDATION_SATURATED
            if tick - since < warmup_ticks:
                flags |= _WARMUP
            if halted:
                flags |= _HALTED_FLAG

            # --- what the evidence record says it did not know --------------------------------
            price = mid if has_book and mid > 0.0 else (mark if has_mark else last_price)
            ev_flags = 0 if has_top else _E_NO_MID
            if price <= 0.0:
                ev_flags |= _E_NO_PRICE
            if not has_mark:
                ev_flags |= _E_NO_MARK
            if oi <= 0.0:
                ev_flags |= _E_NO_OI
            if funding_hours == 0:
                ev_flags |= _E_FUNDING
            if not oi_seeded:
                ev_flags |= _E_OI_SESSION
            if not has_depth:
                ev_flags |= _E_TOP
            if halted:
                ev_flags |= _E_HALTED
            if delisted:
                ev_flags |= _E_DELISTED
            price = price if price > 0.0 else 0.0
            if events:
                quiet = None
            else:  # every flag above is a step in `tick` at one of these deadlines: until the
                until = _FAR  # next one (while nothing arrives) the block's results hold
                for due in (seen + stale_book_ticks if has_book else _FAR,
                            mark_ref + stale_mark_ticks, oi_ref + stale_oi_ticks,
                            trade_gap_tick + hold, liq_gap_tick + hold, reconnect_tick + hold,
                            rest_tick + hold, liq_sat_tick + hold, since + warmup_ticks):
                    if tick < due < until:
                        until = due
                quiet = (p, tick, until, flags, ev_flags, premium_pct, mark_vs_mid, per_hour, price)
        if has_mark:  # the basis: the premium's bias-corrected average (a passing blip fades)
            basis_ema = basis_ema + a_basis * (premium_pct - basis_ema)
            basis_w = basis_w + a_basis * (1.0 - basis_w)
            basis_pct = basis_ema / basis_w
        else:
            basis_pct = 0.0
        if mv_hat <= 0.0:
            ev_flags |= _E_NO_SIGMA

        # positional, in field order (checked by test_feature_tuples_are_built_in_field_order)
        new = _tuple_new(FeatureState, (
            since, bid, ask, bid_qty, ask_qty, book_id, book_tick, mark, index, funding, mark_ts,
            mark_tick, oi, oi_ts, oi_tick, oif, ois, nf, ns, df, dpf, dps, sf, ss,
            mid if has_book else 0.0, mid_slow, rvf, rvs, ll, ls, liq_sec, liq_streak, liq_sat_tick,
            trade_gap_tick, liq_gap_tick, reconnect_tick, rest_tick, feed_stale, move_ref,
            move_var, move_w if has_book else 0.0, liq_base, liq_base_w, liq_active, funding_hours,
            oi_seeded, band, band_mid, depth_tick, last_price, halted, delisted, basis_ema,
            basis_w))
        frame = _tuple_new(FeatureFrame, (
            batch.token_id, tick, len(events), n_trades, volume, notional, delta, volume_ratio,
            delta_ratio, mid, spread * 100.0, sf / ss if ss > 0.0 else 1.0,
            dpf / dps if dps > 0.0 else 1.0, vol_ratio,
            (mid / mid_slow - 1.0) * 100.0 if has_book and mid_slow > 0.0 else 0.0, oi,
            oi_velocity, oi_build, funding, premium_pct, mark_vs_mid, liq_l, liq_s, liq_imb,
            liq_intensity, flags, move, move_sigma, per_hour, ll / a_liq, ls / a_liq,
            liq_excess, liq_active, price, mark, index, ev_flags, basis_pct))
        return new, frame, quiet

    return extract_quiet_k
