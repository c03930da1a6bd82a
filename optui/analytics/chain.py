"""Chain aggregates for one index and expiry: ATM, PCR, max pain, IV skew, OI totals.

Inputs are per-strike numpy arrays (one row per listed strike, call and put side by side).
Missing values arrive as NaN: a strike with no put listed has NaN put fields. In totals, ratios
and max pain, NaN open interest and volume count as 0, because a leg that did not quote holds no
known interest and must not turn a whole chain's total into NaN.

Every calculation works on a 2-D block (one chain per row, NaN-padded strikes), so a whole
market's 50-odd expiries are summarised in one vectorised pass by `chain_aggregates_batch`; the
single-chain functions are that code on one row, so there is one implementation to trust.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# Relative tolerance under which two distances or payouts count as a tie (ties go to the lower
# strike); float rounding must not decide between two strikes that are equal in exact arithmetic.
_TIE_RTOL = 1e-12

_FIELDS = (
    "call_ltp", "put_ltp", "call_oi", "put_oi", "call_volume", "put_volume", "call_iv", "put_iv",
    "call_oi_change", "put_oi_change",
)


def _rows(values: ArrayLike) -> np.ndarray:
    """A float 2-D block: 1-D input becomes one row."""
    arr = np.asarray(values, dtype=float)
    return arr.reshape(1, -1) if arr.ndim <= 1 else arr


def _zero_nan(arr: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(arr), arr, 0.0)


def _pick(values: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Per row, the value at the first True of `hit`, NaN when there is none."""
    if values.shape[1] == 0:
        return np.full(values.shape[0], np.nan)
    rows = np.arange(values.shape[0])
    first = np.argmax(hit, axis=1)
    return np.where(hit[rows, first], values[rows, first], np.nan)


def _atm_rows(spot: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Nearest listed strike per row, the lower on a tie; NaN when no strike or spot is known."""
    with np.errstate(invalid="ignore"):
        dist = np.abs(k - spot[:, None])
    dist = np.where(np.isfinite(dist), dist, np.inf)
    best = dist.min(axis=1, initial=np.inf)
    tol = _TIE_RTOL * np.maximum(np.abs(np.nan_to_num(spot)), 1.0)
    tied = np.isfinite(dist) & (dist <= (best + tol)[:, None])
    atm = np.where(tied, k, np.inf).min(axis=1, initial=np.inf)
    return np.where(np.isfinite(atm), atm, np.nan)


def _payout_rows(k: np.ndarray, c: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Payout to holders if each row settled at each of its strikes; NaN at NaN strikes.

    O(n log n) per row: sorted prefix sums replace the n x n payout matrix. c and p are NaN-free.
    """
    valid = np.isfinite(k)
    c = np.where(valid, c, 0.0)
    p = np.where(valid, p, 0.0)
    keys = np.where(valid, k, np.inf)
    # Chains usually arrive sorted with padding at the end; only shuffled ones pay for a sort.
    in_order = bool(np.all(keys[:, 1:] >= keys[:, :-1]))
    if in_order:
        ks, cs, ps = k, c, p
    else:
        order = np.argsort(keys, axis=1, kind="stable")
        rows = np.arange(k.shape[0])[:, None]
        ks, cs, ps = k[rows, order], c[rows, order], p[rows, order]
    # Distances from each row's lowest strike keep magnitudes small, so products lose less
    # precision and shifting every strike by a constant leaves the arithmetic unchanged.
    # Padding (NaN strikes, sorted last, with no OI) sits at distance 0 and adds nothing.
    x = np.where(np.isfinite(ks), ks - ks[:, :1], 0.0)
    x = np.where(np.isfinite(x), x, 0.0)
    # Calls at or below S pay S - K: S * sum(c) - sum(c K) over K <= S (equal K contributes 0).
    call_pay = x * np.cumsum(cs, axis=1) - np.cumsum(cs * x, axis=1)
    # Puts at or above S pay K - S: sum(p K) - S * sum(p) over K >= S.
    put_pay = (
        np.cumsum((ps * x)[:, ::-1], axis=1)[:, ::-1] - x * np.cumsum(ps[:, ::-1], axis=1)[:, ::-1]
    )
    if in_order:
        out = call_pay + put_pay
    else:
        out = np.empty_like(k)
        out[rows, order] = call_pay + put_pay
    return np.where(valid, out, np.nan)


def _max_pain_rows(k: np.ndarray, pay: np.ndarray) -> np.ndarray:
    """Per row, the lowest strike whose payout is minimal; NaN for a row with no strikes."""
    ok = np.isfinite(pay)
    best = np.where(ok, pay, np.inf).min(axis=1, initial=np.inf)
    tol = _TIE_RTOL * np.maximum(np.abs(np.where(np.isfinite(best), best, 0.0)), 1.0)
    tied = ok & (pay <= (best + tol)[:, None])
    result = np.where(tied, k, np.inf).min(axis=1, initial=np.inf)
    return np.where(np.isfinite(result), result, np.nan)


def _value_at_rows(
    k: np.ndarray, values: np.ndarray, target: np.ndarray, step: np.ndarray
) -> np.ndarray:
    """Per row, the finite value listed at `target` (matched to 1e-6 of a step), else NaN."""
    usable = np.isfinite(step) & (step != 0)
    tol = np.where(usable, np.abs(step) * 1e-6, 1e-9 * np.maximum(np.abs(target), 1.0))
    with np.errstate(invalid="ignore"):
        hit = (np.abs(k - target[:, None]) <= tol[:, None]) & np.isfinite(values)
    return _pick(values, hit)


def _skew_rows(
    k: np.ndarray,
    call_iv: np.ndarray,
    put_iv: np.ndarray,
    atm: np.ndarray,
    step: np.ndarray,
    steps: int,
) -> np.ndarray:
    put_wing = _value_at_rows(k, put_iv, atm - steps * step, step)
    call_wing = _value_at_rows(k, call_iv, atm + steps * step, step)
    return put_wing - call_wing


def atm_strike(spot: float, strikes: ArrayLike) -> float:
    """The listed strike nearest to `spot`; on an exact tie the lower one; NaN if none is known."""
    return float(_atm_rows(np.array([spot], dtype=float), _rows(strikes))[0])


def pcr(put_values: ArrayLike, call_values: ArrayLike) -> float:
    """Put-call ratio sum(put) / sum(call) (NaN counts as 0); NaN when the call sum is 0."""
    puts = float(_zero_nan(np.asarray(put_values, dtype=float)).sum())
    calls = float(_zero_nan(np.asarray(call_values, dtype=float)).sum())
    return puts / calls if calls > 0 else float("nan")


def _check_lengths(k: np.ndarray, c: np.ndarray, p: np.ndarray) -> None:
    if not (k.shape == c.shape == p.shape):
        raise ValueError(
            f"max pain needs equal-length strikes, call_oi and put_oi (got {k.size}, {c.size}, "
            f"{p.size})"
        )


def max_pain_payouts(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> np.ndarray:
    """Total intrinsic payout to option holders if the index settled at each listed strike.

    Returned in the order of `strikes` (NaN for a NaN strike); NaN OI counts as 0.
    """
    k, c, p = _rows(strikes), _zero_nan(_rows(call_oi)), _zero_nan(_rows(put_oi))
    _check_lengths(k, c, p)
    return _payout_rows(k, c, p)[0]


def max_pain(strikes: ArrayLike, call_oi: ArrayLike, put_oi: ArrayLike) -> float:
    """The listed strike at which option holders would be paid least at expiry (lowest on ties).

    Payout at settlement S is sum over strikes K of call_oi*max(S-K, 0) + put_oi*max(K-S, 0),
    evaluated at every listed strike. NaN OI counts as 0; NaN when no strike is listed.
    """
    k, c, p = _rows(strikes), _zero_nan(_rows(call_oi)), _zero_nan(_rows(put_oi))
    _check_lengths(k, c, p)
    return float(_max_pain_rows(k, _payout_rows(k, c, p))[0])


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
    one = np.array([1.0])
    return float(
        _skew_rows(_rows(strikes), _rows(call_iv), _rows(put_iv), one * atm, one * step, steps)[0]
    )


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


def chain_aggregates_batch(
    spot: ArrayLike,
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
    step: ArrayLike,
    skew_steps: int = 2,
) -> list[ChainAggregates]:
    """Summarise many chains at once: one chain per row of (m, n) blocks, NaN-padded strikes.

    `spot` and `step` give one value per chain (or one for all). A padded slot has a NaN strike
    and is ignored whatever its other fields hold.
    """
    k = _rows(strikes)
    m = k.shape[0]
    data = {name: _rows(v) for name, v in zip(_FIELDS, (
        call_ltp, put_ltp, call_oi, put_oi, call_volume, put_volume, call_iv, put_iv,
        call_oi_change, put_oi_change), strict=True)}
    bad = [name for name, arr in data.items() if arr.shape != k.shape]
    if bad:
        raise ValueError(
            f"chain arrays must have one value per strike ({k.shape[-1]}); wrong shape: "
            f"{', '.join(bad)}"
        )
    spots = np.broadcast_to(np.asarray(spot, dtype=float), (m,))
    steps = np.broadcast_to(np.asarray(step, dtype=float), (m,))
    valid = np.isfinite(k)
    clean = {name: np.where(valid, _zero_nan(data[name]), 0.0) for name in _FIELDS[2:6]}
    clean.update({n: np.where(valid, _zero_nan(data[n]), 0.0) for n in _FIELDS[8:]})

    atm = _atm_rows(spots, k)
    with np.errstate(invalid="ignore"):
        at_atm = k == atm[:, None]
    ivs = np.stack([_pick(data["call_iv"], at_atm), _pick(data["put_iv"], at_atm)])
    iv_count = np.isfinite(ivs).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        atm_iv = np.where(iv_count > 0, _zero_nan(ivs).sum(axis=0) / iv_count, np.nan)
    legs = np.stack([_pick(data["call_ltp"], at_atm), _pick(data["put_ltp"], at_atm)])
    with np.errstate(invalid="ignore"):
        priced = np.all(np.isfinite(legs) & (legs > 0), axis=0)
    straddle = np.where(priced, legs.sum(axis=0), np.nan)

    if valid.all():
        sums = {name: arr.sum(axis=1) for name, arr in clean.items()}
    else:
        # A padded row sums its listed strikes only, in order: the same additions as the chain
        # summarised alone (pairwise summation groups terms by the row's length, so padding
        # would move the last bits and a chain's figures would depend on its batch).
        sums = {name: np.array([row[ok].sum() for row, ok in zip(arr, valid, strict=True)])
                for name, arr in clean.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        pcr_oi = np.where(sums["call_oi"] > 0, sums["put_oi"] / sums["call_oi"], np.nan)
        pcr_vol = np.where(
            sums["call_volume"] > 0, sums["put_volume"] / sums["call_volume"], np.nan
        )
    pain = _max_pain_rows(k, _payout_rows(k, clean["call_oi"], clean["put_oi"]))
    skew = _skew_rows(k, data["call_iv"], data["put_iv"], atm, steps, skew_steps)
    counts = valid.sum(axis=1)
    return [
        ChainAggregates(
            atm_strike=float(atm[i]),
            atm_iv=float(atm_iv[i]),
            straddle=float(straddle[i]),
            pcr_oi=float(pcr_oi[i]),
            pcr_volume=float(pcr_vol[i]),
            max_pain=float(pain[i]),
            skew=float(skew[i]),
            ce_oi=float(sums["call_oi"][i]),
            pe_oi=float(sums["put_oi"][i]),
            ce_oi_change=float(sums["call_oi_change"][i]),
            pe_oi_change=float(sums["put_oi_change"][i]),
            strikes=int(counts[i]),
        )
        for i in range(m)
    ]


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
    def flat(values: ArrayLike) -> np.ndarray:
        return np.asarray(values, dtype=float).ravel()

    return chain_aggregates_batch(
        spot, flat(strikes), flat(call_ltp), flat(put_ltp), flat(call_oi), flat(put_oi),
        flat(call_volume), flat(put_volume), flat(call_iv), flat(put_iv), flat(call_oi_change),
        flat(put_oi_change), step, skew_steps,
    )[0]


def pad_chains(chains: list[ArrayLike], fill: float = np.nan) -> np.ndarray:
    """Stack ragged per-chain arrays into an (m, n) block, padding short rows with `fill`.

    Pad strikes with NaN (the default) so `chain_aggregates_batch` ignores the padding.
    """
    rows = [np.asarray(c, dtype=float).ravel() for c in chains]
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), width), fill)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out
