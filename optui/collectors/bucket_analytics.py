"""One index and expiry bucket per cycle: quotes in, leg records and chain statistics out.

This is the glue between the pure analytics and the records: it gathers quote fields into
arrays, calls the vectorised functions once per bucket and builds typed records.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from optui.analytics.black_scholes import black76_greeks
from optui.analytics.buildup import classify_buildup
from optui.analytics.chain import chain_aggregates
from optui.analytics.forward import synthetic_forward
from optui.analytics.implied_vol import IV_BAD_INPUT, IV_OK, solve_black76
from optui.analytics.premium_flow import leg_flow
from optui.analytics.quality import NO_IV, flag_names, quality_mask
from optui.collectors.chain_plan import BucketPlan
from optui.collectors.day_state import DayState, PrevQuote
from optui.config import AnalyticsSettings
from optui.indices import offset_label
from optui.models import BucketStats, LegRecord, Quote
from optui.timeutil import UTC, years_to_expiry

NAN = float("nan")


@dataclass(slots=True)
class BucketResult:
    """What one bucket produced: records, statistics and per-instrument flow (rupees)."""

    legs: list[LegRecord]
    stats: BucketStats
    tokens: np.ndarray
    inflow: np.ndarray  # rupees per leg since the previous quote; NaN where there was none
    outflow: np.ndarray
    is_call: np.ndarray
    missing: int  # quoted strikes the source returned no quote for


def _arr(quotes: list[Quote], attr: str) -> np.ndarray:
    return np.array([getattr(q, attr) for q in quotes], dtype=float)


def _pct(change: float, base: float) -> float:
    return change / base * 100.0 if base and math.isfinite(base) else NAN


def analyse_bucket(
    plan: BucketPlan,
    quotes: dict[str, Quote],
    spot: float,
    at: datetime,
    cfg: AnalyticsSettings,
    offsets: list[int],
    state: DayState,
    prev_quotes: Mapping[int, PrevQuote] | None = None,
    max_gap_s: float = float("inf"),
) -> BucketResult:
    """Compute IV, greeks, flow, buildup, quality and aggregates for one bucket's quoted chain.

    `prev_quotes` is the previous cycle's view, frozen for the whole cycle: two buckets on one
    expiry must both compare with the last cycle, not with each other. A previous quote older
    than `max_gap_s` gives no flow (what traded during an outage cannot be classified).
    """
    ck, pk = plan.call_keys(), plan.put_keys()
    cq = [quotes.get(k) for k in ck]
    pq = [quotes.get(k) for k in pk]
    both = np.array([c is not None and p is not None for c, p in zip(cq, pq, strict=True)], dtype=bool)
    missing = int((~both).sum())
    strikes = plan.strikes[both]
    cq_ok: list[Quote] = [q for q, ok in zip(cq, both, strict=True) if ok and q is not None]
    pq_ok: list[Quote] = [q for q, ok in zip(pq, both, strict=True) if ok and q is not None]
    ck = [k for k, ok in zip(ck, both, strict=True) if ok]
    pk = [k for k, ok in zip(pk, both, strict=True) if ok]
    n = strikes.size
    t = years_to_expiry(plan.expiry, at)
    r, q_div = cfg.rate, cfg.dividend_yield

    # Both sides stacked: calls 0..n-1, puts n..2n-1.
    allq = cq_ok + pq_ok
    keys = ck + pk
    k2 = np.concatenate([strikes, strikes])
    is_call = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    last = _arr(allq, "last_price")
    bid = _arr(allq, "bid")
    ask = _arr(allq, "ask")
    mid = np.where((bid > 0) & (ask > 0), (bid + ask) / 2.0, last)
    volume = _arr(allq, "volume")
    avg = _arr(allq, "average_price")
    oi = _arr(allq, "oi")
    close = _arr(allq, "close")
    tokens = np.array([q.instrument_token for q in allq], dtype=np.int64)

    forward = synthetic_forward(strikes, mid[:n], mid[n:], t, r, spot)
    # Black-Scholes on spot is Black-76 on the carry forward S*e^{(r-q)T}: one solver serves both.
    model_fwd = forward if cfg.iv_model == "black76" else spot * math.exp((r - q_div) * t)
    iv, iv_code = solve_black76(last, model_fwd, k2, t, r, is_call)
    g = black76_greeks(model_fwd, k2, t, np.nan_to_num(iv, nan=0.0), r, is_call)
    has_iv = np.isfinite(iv)
    delta = np.where(has_iv, g.delta, NAN)
    gamma = np.where(has_iv, g.gamma, NAN)
    theta = np.where(has_iv, g.theta, NAN)
    vega = np.where(has_iv, g.vega, NAN)

    ref_oi = np.array([state.reference_oi(int(tok), float(o)) for tok, o in zip(tokens, oi, strict=True)])
    view = state.prev if prev_quotes is None else prev_quotes
    now_s = at.timestamp()
    # A previous quote from the same or a later moment (a restart re-collecting earlier
    # minutes) is no "previous": it gives neither flow nor a snapshot OI change.
    prev = [p if p is not None and p.at_s < now_s else None for p in map(view.get, map(int, tokens))]
    prev_oi = np.array([p.oi if p else o for p, o in zip(prev, oi, strict=True)])
    prev = [p if p is not None and now_s - p.at_s <= max_gap_s else None for p in prev]
    oi_chg = oi - ref_oi
    buildup = classify_buildup(last - close, oi_chg)

    value = avg * volume
    inflow, outflow = leg_flow(
        np.array([p.value if p else NAN for p in prev]),
        np.array([p.volume if p else NAN for p in prev]),
        np.array([p.mid if p else NAN for p in prev]),
        np.array([p.last if p else NAN for p in prev]),
        value, volume, last,
    )
    # Without a usable previous quote a leg's flow is unknown (NaN), not zero.
    has_prev = np.array([p is not None for p in prev], dtype=bool)
    inflow = np.where(has_prev, inflow, NAN)
    outflow = np.where(has_prev, outflow, NAN)
    for i, tok in enumerate(tokens):
        state.prev[int(tok)] = PrevQuote(
            float(value[i]), float(volume[i]), float(mid[i]), float(last[i]), float(oi[i]), now_s
        )

    disc = math.exp(-r * t)
    intrinsic = np.where(is_call, np.maximum(forward - k2, 0.0), np.maximum(k2 - forward, 0.0)) * disc
    age = np.array([
        (q.timestamp - q.last_trade_time).total_seconds() if q.timestamp and q.last_trade_time else NAN
        for q in allq
    ])
    tick = plan.chain.calls[float(strikes[0])].tick_size if n else 0.05
    mask = quality_mask(age, bid, ask, last, intrinsic, tick or 0.05, cfg.stale_after_s, cfg.wide_spread_pct)
    # A leg without an IV is flagged (a missing price already says no_price), never silent.
    mask |= np.where((iv_code != IV_OK) & (iv_code != IV_BAD_INPUT), NO_IV, 0)
    flags = flag_names(mask)

    iv_pct = iv * 100.0
    agg = chain_aggregates(
        spot, strikes, last[:n], last[n:], oi[:n], oi[n:], volume[:n], volume[n:],
        iv_pct[:n], iv_pct[n:], oi_chg[:n], oi_chg[n:], plan.spacing, cfg.skew_steps,
    )
    atm = agg.atm_strike
    stats = BucketStats(
        bucket=plan.bucket, expiry=plan.expiry, days_to_expiry=t * 365.0, forward=float(forward),
        atm_strike=atm, atm_iv=agg.atm_iv,
        iv_open=state.first_iv(f"{plan.index}/{plan.bucket}/{plan.expiry}", agg.atm_iv),
        straddle=agg.straddle, pcr_oi=agg.pcr_oi, pcr_volume=agg.pcr_volume, max_pain=agg.max_pain,
        skew=agg.skew, ce_oi=agg.ce_oi, pe_oi=agg.pe_oi, ce_oi_change=agg.ce_oi_change,
        pe_oi_change=agg.pe_oi_change, strikes=n,
    )

    # Legs: the configured offsets around ATM, or every quoted strike in full-chain mode.
    if plan.full_chain:
        wanted = {float(k): int(round((k - atm) / plan.spacing)) for k in strikes}
    else:
        wanted = {atm + o * plan.spacing: o for o in offsets}
    index_of = {float(k): i for i, k in enumerate(strikes)}
    stamp = at.astimezone(UTC)
    legs: list[LegRecord] = []
    for strike, off in sorted(wanted.items()):
        found = index_of.get(float(strike))
        if found is None:
            continue
        for j in (found, found + n):
            quote = allq[j]
            legs.append(LegRecord(
                timestamp=stamp, index=plan.index, bucket=plan.bucket,
                side="CALL" if is_call[j] else "PUT", expiry=plan.expiry, atm_strike=atm,
                strike=float(strike), strike_offset=offset_label(off), last_price=float(last[j]),
                average_price=float(avg[j]), volume=int(volume[j]), oi=float(oi[j]),
                oi_open=float(ref_oi[j]), oi_change=float(oi_chg[j]), iv=float(iv_pct[j]),
                days_to_expiry=t * 365.0, ohlc_open=quote.open, ohlc_high=quote.high,
                ohlc_low=quote.low, ohlc_close=quote.close, net_change=float(last[j] - close[j]),
                net_change_percent=_pct(float(last[j] - close[j]), float(close[j])),
                day_change=float(last[j] - quote.open),
                day_change_percent=_pct(float(last[j] - quote.open), quote.open),
                tradingsymbol=keys[j].split(":", 1)[1], instrument_token=int(tokens[j]),
                bid=float(bid[j]), ask=float(ask[j]), delta=float(delta[j]), gamma=float(gamma[j]),
                theta=float(theta[j]), vega=float(vega[j]),
                oi_change_snapshot=float(oi[j] - prev_oi[j]), buildup=str(buildup[j]),
                flags=str(flags[j]),
            ))
    return BucketResult(legs, stats, tokens, inflow, outflow, is_call, missing)
