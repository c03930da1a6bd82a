"""Chain aggregates for one index and expiry: ATM, PCR, max pain, IV skew, OI totals.

Inputs are per-strike numpy arrays (one row per listed strike, call and put side by side), so a
whole chain is summarised in a few vectorised passes. Missing values arrive as NaN: a strike with
no put listed has NaN put fields. For totals, NaN open interest and volume count as 0, because a
leg that did not quote holds no known interest and must not turn a whole chain's total into NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# Relative tolerance under which two distances or payouts count as a tie (ties go to the lower
# strike); float rounding must not decide between two strikes that are equal in exact arithmetic.
_TIE_RTOL = 1e-12


def _f(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=float).ravel()


def _zero_nan(values: ArrayLike) -> np.ndarray:
    arr = _f(values)
    return np.where(np.isfinite(arr), arr, 0.0)


def atm_strike(spot: float, strikes: ArrayLike) -> float:
    """The listed strike nearest to `spot`; on an exact tie the lower one; NaN if none is known."""
    k = _f(strikes)
    k = k[np.isfinite(k)]
    if k.size == 0 or not np.isfinite(spot):
        return float("nan")
    dist = np.abs(k - spot)
    best = dist.min()
    tied = dist <= best + _TIE_RTOL * max(abs(spot), 1.0)
    return float(k[tied].min())


def pcr(put_values: ArrayLike, call_values: ArrayLike) -> float:
    """Put-call ratio sum(put) / sum(call) (NaN counts as 0); NaN when the call sum is 0."""
    puts = float(_zero_nan(put_values).sum())
    calls = float(_zero_nan(call_values).sum())
    return puts / calls if calls > 0 else float("nan")


def max_pain_payouts(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> np.ndarray:
    """Total intrinsic payout to option holders if the index settled at each listed strike.

    Returned in the order of `strikes`. O(n log n): sorted prefix sums replace the n x n matrix.
    """
    k = _f(strikes)
    c = _zero_nan(call_oi)
    p = _zero_nan(put_oi)
    if not (k.size == c.size == p.size):
        raise ValueError(
            f"max pain needs equal-length strikes, call_oi and put_oi (got {k.size}, {c.size}, "
            f"{p.size})"
        )
    out = np.full(k.size, np.nan)
    ok = np.isfinite(k)
    if not ok.any():
        return out
    order = np.flatnonzero(ok)[np.argsort(k[ok], kind="stable")]
    ks = k[order]
    # Distances from the lowest strike keep magnitudes small, so products lose less precision
    # and shifting every strike by a constant leaves the arithmetic unchanged.
    x = ks - ks[0]
    cs, ps = c[order], p[order]
    # Calls at or below S pay S - K: S * sum(c) - sum(c K) over K <= S (equal K contributes 0).
    call_pay = x * np.cumsum(cs) - np.cumsum(cs * x)
    # Puts at or above S pay K - S: sum(p K) - S * sum(p) over K >= S.
    put_pay = np.cumsum((ps * x)[::-1])[::-1] - x * np.cumsum(ps[::-1])[::-1]
    out[order] = call_pay + put_pay
    return out


def max_pain(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> float:
    """The listed strike at which option holders would be paid least at expiry (lowest on ties).

    Payout at settlement S is sum over strikes K of call_oi*max(S-K, 0) + put_oi*max(K-S, 0),
    evaluated at every listed strike. NaN OI counts as 0; NaN when no strike is listed.
    """
    k = _f(strikes)
    pay = max_pain_payouts(k, call_oi, put_oi)
    ok = np.isfinite(pay)
    if not ok.any():
        return float("nan")
    best = pay[ok].min()
    tied = ok & (pay <= best + _TIE_RTOL * max(abs(best), 1.0))
    return float(k[tied].min())


def _value_at(strikes: np.ndarray, values: np.ndarray, target: float, step: float) -> float:
    """Value listed at `target`, matched to a small fraction of the strike step; NaN if absent."""
    if not np.isfinite(target):
        return float("nan")
    tol = abs(step) * 1e-6 if np.isfinite(step) and step != 0 else 1e-9 * max(abs(target), 1.0)
    hits = np.flatnonzero(np.abs(strikes - target) <= tol)
    for i in hits:
        if np.isfinite(values[i]):
            return float(values[i])
    return float("nan")


def iv_skew(
    strikes: ArrayLike,
    call_iv: ArrayLike,
    put_iv: ArrayLike,
    atm: float,
    step: float,
    steps: int,
) -> float:
    """Put IV `steps` strikes below ATM minus call IV `steps` strikes above it.

    Both wings are out of the money, so a positive value is the usual index put skew. The result
    is in the IVs' own units (pass percent to get volatility points); NaN when either is missing.
    """
    k = _f(strikes)
    put_wing = _value_at(k, _f(put_iv), atm - steps * step, step)
    call_wing = _value_at(k, _f(call_iv), atm + steps * step, step)
    return put_wing - call_wing


@dataclass(frozen=True, slots=True)
class ChainAggregates:
    """One expiry's chain summary; field names match `optui.models.BucketStats`."""

    atm_strike: float
    atm_iv: float  # mean of the finite call and put IVs at the ATM strike, input units
    straddle: float  # ATM call + put last price; NaN when either leg has no price
    pcr_oi: float
    pcr_volume: float
    max_pain: float
    skew: float  # put IV minus call IV at the configured wing, input units
    ce_oi: float
    pe_oi: float
    ce_oi_change: float
    pe_oi_change: float
    strikes: int  # listed strikes summarised


def chain_aggregates(
    spot: float,
    strikes: ArrayLike,
    call_ltp: ArrayLike,
    put_ltp: ArrayLike,
    call_oi: ArrayLike,
    put_oi: ArrayLike,
    call_volume: ArrayLike,
    put_volume: ArrayLike,
    call_iv: ArrayLike,
    put_iv: ArrayLike,
    call_oi_change: ArrayLike,
    put_oi_change: ArrayLike,
    step: float,
    skew_steps: int = 2,
) -> ChainAggregates:
    """Summarise one expiry's chain (one row per strike) around the listed strike nearest spot.

    NaN OI, volume and OI change count as 0 in totals and ratios; NaN IVs and prices are skipped.
    """
    k = _f(strikes)
    arrays = {
        "call_ltp": _f(call_ltp), "put_ltp": _f(put_ltp), "call_oi": _f(call_oi),
        "put_oi": _f(put_oi), "call_volume": _f(call_volume), "put_volume": _f(put_volume),
        "call_iv": _f(call_iv), "put_iv": _f(put_iv), "call_oi_change": _f(call_oi_change),
        "put_oi_change": _f(put_oi_change),
    }
    bad = [name for name, arr in arrays.items() if arr.size != k.size]
    if bad:
        raise ValueError(
            f"chain arrays must have one value per strike ({k.size}); wrong length: {', '.join(bad)}"
        )
    atm = atm_strike(spot, k)
    atm_iv = straddle = float("nan")
    if np.isfinite(atm):
        i = int(np.flatnonzero(k == atm)[0])
        ivs = np.array([arrays["call_iv"][i], arrays["put_iv"][i]])
        ivs = ivs[np.isfinite(ivs)]
        atm_iv = float(ivs.mean()) if ivs.size else float("nan")
        legs = np.array([arrays["call_ltp"][i], arrays["put_ltp"][i]])
        if np.all(np.isfinite(legs) & (legs > 0)):
            straddle = float(legs.sum())
    return ChainAggregates(
        atm_strike=atm,
        atm_iv=atm_iv,
        straddle=straddle,
        pcr_oi=pcr(arrays["put_oi"], arrays["call_oi"]),
        pcr_volume=pcr(arrays["put_volume"], arrays["call_volume"]),
        max_pain=max_pain(k, arrays["call_oi"], arrays["put_oi"]),
        skew=iv_skew(k, arrays["call_iv"], arrays["put_iv"], atm, step, skew_steps),
        ce_oi=float(_zero_nan(arrays["call_oi"]).sum()),
        pe_oi=float(_zero_nan(arrays["put_oi"]).sum()),
        ce_oi_change=float(_zero_nan(arrays["call_oi_change"]).sum()),
        pe_oi_change=float(_zero_nan(arrays["put_oi_change"]).sum()),
        strikes=int(np.isfinite(k).sum()),
    )
