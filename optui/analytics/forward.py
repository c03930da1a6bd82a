"""The market's forward for one expiry, read from call and put prices by put-call parity.

Why: index futures are not listed for every weekly expiry and the dividend yield is unknown, but
European parity C - P = e^{-rT} (F - K) holds strike by strike, so the strikes nearest the money
(the most liquid, with the tightest quotes) give F = K + e^{rT} (C - P) directly. The median of a
few such strikes shrugs off one stale quote.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def synthetic_forward(
    strikes: ArrayLike,
    call_prices: ArrayLike,
    put_prices: ArrayLike,
    t_years: float,
    rate: float,
    spot: float,
    n_pairs: int = 3,
) -> float:
    """Median parity forward over the n_pairs usable strikes nearest spot * e^{rT}.

    A strike is usable when its strike, call and put prices are all finite and positive and the
    implied forward is positive. With no usable strike the result is spot * e^{rT} (NaN if spot
    is not a positive number).
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}")
    k = np.asarray(strikes, dtype=float).ravel()
    c = np.asarray(call_prices, dtype=float).ravel()
    p = np.asarray(put_prices, dtype=float).ravel()
    if not (k.size == c.size == p.size):
        raise ValueError(
            f"strikes, call_prices and put_prices must have one entry per strike "
            f"(got {k.size}, {c.size}, {p.size})"
        )
    t = float(t_years)
    growth = (
        math.exp(float(rate) * t) if math.isfinite(t) and math.isfinite(float(rate)) else math.nan
    )
    s = float(spot)
    fallback = s * growth if s > 0 and math.isfinite(s) else math.nan
    with np.errstate(invalid="ignore", over="ignore"):
        implied = k + growth * (c - p)
        usable = (k > 0) & (c > 0) & (p > 0) & np.isfinite(k + c + p) & (implied > 0)
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return fallback
    if math.isfinite(fallback):
        distance = np.abs(k[idx] - fallback)
    else:
        # No usable spot: the strike where call and put cost the same is at the money.
        distance = np.abs(c[idx] - p[idx])
    nearest = idx[np.argsort(distance, kind="stable")[:n_pairs]]
    return float(np.median(implied[nearest]))
