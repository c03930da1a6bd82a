"""The per-leg implementation of one bucket's analytics that the vectorised
`optui.collectors.bucket_analytics.analyse_buckets` replaced, kept as the tests' oracle: the
same definitions computed one Python object at a time, so the two must agree value for value
(tests/test_cycle_columns.py). Not used by the product.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime

import numpy as np

from optui.analytics.black_scholes import black76_greeks
from optui.analytics.buildup import classify_buildup
from optui.analytics.chain import chain_aggregates
from optui.analytics.forward import synthetic_forward
from optui.analytics.implied_vol import IV_BAD_INPUT, IV_OK, solve_black76
from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.analytics.quality import NO_IV, flag_names, quality_mask
from optui.collectors.bucket_analytics import (
    BucketResult,
    _chain_gex_cr,
    _last_known_oi,
    _pct,
    oi_coverage,
    session_open,
    traded_today,
)
from optui.collectors.chain_plan import BucketPlan
from optui.collectors.day_state import DayState, PrevQuote
from optui.config import AnalyticsSettings
from optui.indices import offset_label
from optui.models import BucketStats, LegRecord, Quote
from optui.timeutil import UTC, years_to_expiry

NAN = float("nan")


def _arr(quotes: list[Quote | None], attr: str, missing: float = NAN) -> np.ndarray:
    return np.array([missing if q is None else getattr(q, attr) for q in quotes], dtype=float)


def reference_bucket(
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

    Every planned strike stays in the arrays whether or not its quotes arrived (a missing side
    is NaN), so the ATM strike is the listed strike nearest `spot`, never moved by a missing
    quote; a missing leg is still recorded, flagged `no_price`. `prev_quotes` is the previous
    cycle's view, frozen for the whole cycle: two buckets on one expiry must both compare with
    the last cycle, not with each other. A previous quote older than `max_gap_s` gives no flow
    (what traded during an outage cannot be classified). Day anchors (the opening ATM IV, day
    change) are taken only from 09:15 IST on the exchange clock `at` and from legs that have
    traded today; OI change keeps the previous close's OI as its reference.
    """
    strikes = plan.strikes
    n = strikes.size
    keys = plan.call_keys() + plan.put_keys()
    allq: list[Quote | None] = [quotes.get(k) for k in keys]
    has_quote = np.array([q is not None for q in allq], dtype=bool)
    missing = int((~(has_quote[:n] & has_quote[n:])).sum())
    t = years_to_expiry(plan.expiry, at)
    r, q_div = cfg.rate, cfg.dividend_yield
    opened = session_open(at)

    # Both sides stacked: calls 0..n-1, puts n..2n-1; a missing quote is NaN (no book: 0).
    k2 = np.concatenate([strikes, strikes])
    is_call = np.concatenate([np.ones(n, bool), np.zeros(n, bool)])
    last = _arr(allq, "last_price")
    bid = _arr(allq, "bid", 0.0)
    ask = _arr(allq, "ask", 0.0)
    mid = prevailing_mid(bid, ask, last)
    volume = _arr(allq, "volume")
    avg = _arr(allq, "average_price")
    oi = _arr(allq, "oi")
    open_ = _arr(allq, "open")
    high = _arr(allq, "high")
    low = _arr(allq, "low")
    close = _arr(allq, "close")
    instruments = [plan.chain.calls[float(k)] for k in strikes] + [plan.chain.puts[float(k)] for k in strikes]
    tokens = np.array([i.instrument_token for i in instruments], dtype=np.int64)
    traded = np.array([traded_today(q, at) for q in allq], dtype=bool)

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

    ref_oi = np.array([
        state.reference_oi(int(tok), float(o)) if ok else NAN
        for tok, o, ok in zip(tokens, oi, has_quote, strict=True)
    ])
    view = state.prev if prev_quotes is None else prev_quotes
    now_s = at.timestamp()
    # A previous quote from the same or a later moment (a restart re-collecting earlier
    # minutes) is no "previous": it gives neither flow nor a snapshot OI change.
    prev = [
        p if ok and p is not None and p.at_s < now_s else None
        for p, ok in zip(map(view.get, map(int, tokens)), has_quote, strict=True)
    ]
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
        value, volume, last, mid=mid,
    )
    # Without a usable previous quote a leg's flow is unknown (NaN), not zero.
    has_prev = np.array([p is not None for p in prev], dtype=bool)
    inflow = np.where(has_prev, inflow, NAN)
    outflow = np.where(has_prev, outflow, NAN)
    for i in np.flatnonzero(has_quote):
        state.prev[int(tokens[i])] = PrevQuote(
            float(value[i]), float(volume[i]), float(mid[i]), float(last[i]), float(oi[i]), now_s
        )

    disc = math.exp(-r * t)
    intrinsic = np.where(is_call, np.maximum(forward - k2, 0.0), np.maximum(k2 - forward, 0.0)) * disc
    age = np.array([
        (q.timestamp - q.last_trade_time).total_seconds()
        if q is not None and q.timestamp and q.last_trade_time else NAN
        for q in allq
    ])
    tick = instruments[0].tick_size if n else 0.05
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
    atm_at = np.flatnonzero(strikes == atm)
    atm_legs = np.array([atm_at[0], atm_at[0] + n]) if atm_at.size else np.array([], dtype=int)
    with np.errstate(invalid="ignore"):
        atm_priced = bool(atm_legs.size) and bool(np.all(np.isfinite(last[atm_legs]) & (last[atm_legs] > 0)))
    atm_traded = bool(atm_legs.size) and bool(np.all(traded[atm_legs]))
    # The skew's wings: the put `skew_steps` strikes below ATM, the call as far above.
    wing = cfg.skew_steps * plan.spacing
    wings = np.concatenate([n + np.flatnonzero(np.isclose(strikes, atm - wing)),
                            np.flatnonzero(np.isclose(strikes, atm + wing))])
    wings_traded = bool(np.all(traded[wings] | ~has_quote[wings]))

    # Coverage: quoted OI against the last known OI of every listed instrument that did not quote.
    listed = plan.chain.strikes
    unquoted_tokens = [int(tok) for tok, ok in zip(tokens, has_quote, strict=True) if not ok]
    for k in listed[~np.isin(listed, strikes)]:
        unquoted_tokens += [plan.chain.calls[float(k)].instrument_token, plan.chain.puts[float(k)].instrument_token]
    known = np.array([_last_known_oi(tok, view, state, now_s) for tok in unquoted_tokens], dtype=float)
    coverage = oi_coverage(oi[has_quote], known)
    bucket_flags = [
        name for name, bad in (
            ("no_price", not atm_priced),
            ("not_traded", (atm_priced and not atm_traded) or not wings_traded),
            ("partial_chain", bool(unquoted_tokens)),
        ) if bad
    ]
    # The day's opening ATM IV: only once the session is open and both ATM legs traded today.
    anchor = agg.atm_iv if opened and atm_priced and atm_traded else NAN
    stats = BucketStats(
        bucket=plan.bucket, expiry=plan.expiry, days_to_expiry=t * 365.0, forward=float(forward),
        atm_strike=atm, atm_iv=agg.atm_iv,
        iv_open=state.first_iv(f"{plan.index}/{plan.bucket}/{plan.expiry}", anchor, at.timestamp()),
        straddle=agg.straddle, pcr_oi=agg.pcr_oi, pcr_volume=agg.pcr_volume, max_pain=agg.max_pain,
        skew=agg.skew, ce_oi=agg.ce_oi, pe_oi=agg.pe_oi, ce_oi_change=agg.ce_oi_change,
        pe_oi_change=agg.pe_oi_change, strikes=int((has_quote[:n] & has_quote[n:]).sum()),
        listed_strikes=int(listed.size), oi_coverage=coverage, flags=",".join(bucket_flags),
        gex_cr=_chain_gex_cr(gamma, oi, n, spot),  # one sum over the bucket: the same helper
    )

    # Day change against today's open: none before 09:15 IST or before the leg's first trade.
    day_change = np.where(opened, last - open_, NAN)

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
            net = float(last[j] - close[j])
            legs.append(LegRecord(
                timestamp=stamp, index=plan.index, bucket=plan.bucket,
                side="CALL" if is_call[j] else "PUT", expiry=plan.expiry, atm_strike=atm,
                strike=float(strike), strike_offset=offset_label(off), last_price=float(last[j]),
                average_price=float(avg[j]), volume=int(volume[j]) if has_quote[j] else 0,
                oi=float(oi[j]), oi_open=float(ref_oi[j]), oi_change=float(oi_chg[j]),
                iv=float(iv_pct[j]), days_to_expiry=t * 365.0, ohlc_open=float(open_[j]),
                ohlc_high=float(high[j]), ohlc_low=float(low[j]), ohlc_close=float(close[j]),
                net_change=net, net_change_percent=_pct(net, float(close[j])),
                day_change=float(day_change[j]),
                day_change_percent=_pct(float(day_change[j]), float(open_[j])),
                tradingsymbol=keys[j].split(":", 1)[1], instrument_token=int(tokens[j]),
                bid=float(bid[j]), ask=float(ask[j]), delta=float(delta[j]), gamma=float(gamma[j]),
                theta=float(theta[j]), vega=float(vega[j]),
                oi_change_snapshot=float(oi[j] - prev_oi[j]), buildup=str(buildup[j]),
                flags=str(flags[j]),
            ))
    quoted = has_quote
    return BucketResult(
        legs, stats, tokens[quoted], inflow[quoted], outflow[quoted], is_call[quoted], missing
    )
