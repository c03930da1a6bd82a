"""Dealer gamma exposure by strike, the level where it flips sign, and a running VWAP.

Gamma exposure (GEX) of one strike and side, in rupees per 1 % move of the index:

    GEX = gamma x OI (contracts) x lot size x spot^2 x 0.01

(gamma per rupee of spot; gamma x spot x 1 % is the delta change for a 1 % move, times
spot x contracts x lot size its rupee value). Kite's `oi` is in units (contracts x lot size), so
callers pass `oi_units / lot_size` as contracts, or use `gex_by_strike` which takes units.
Sign convention (the common one, e.g. SpotGamma / SqueezeMetrics): call GEX positive, put GEX
negative, i.e. dealers are assumed long the calls and short the puts their customers trade.
`SIGN_CONVENTION` is the sentence the screen shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from optui.analytics.black_scholes import bs_greeks

CRORE = 1e7
SIGN_CONVENTION = "calls +, puts − (dealers assumed long calls, short puts)"


def gamma_exposure(gamma: ArrayLike, oi_contracts: ArrayLike, lot_size: ArrayLike,
                   spot: ArrayLike) -> np.ndarray:
    """Unsigned GEX in rupees per 1 % move: gamma x OI x lot x spot^2 x 0.01 (see module doc)."""
    g, oi, lot, s = (np.asarray(a, dtype=float) for a in (gamma, oi_contracts, lot_size, spot))
    return g * oi * lot * s * s * 0.01


@dataclass(frozen=True, slots=True)
class GexProfile:
    """GEX by strike in rupees crore per 1 % move, signed by SIGN_CONVENTION.

    `strikes` ascending; `call_cr` >= 0, `put_cr` <= 0, `net_cr` = their sum; `total_cr` is the
    whole chain's net; `flip` the index level where the total, re-priced at that level, changes
    sign (nearest spot; NaN when it keeps one sign over the strikes' range).
    """

    strikes: np.ndarray
    call_cr: np.ndarray
    put_cr: np.ndarray
    net_cr: np.ndarray
    total_cr: float
    flip: float


def gex_by_strike(strikes: ArrayLike, is_call: ArrayLike, gamma: ArrayLike, oi_units: ArrayLike,
                  spot: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(strikes, call GEX, put GEX) in rupees crore per 1 % move, per distinct strike.

    `oi_units` is Kite's OI (contracts x lot size), so no lot size is needed: units = contracts x
    lot. Legs with NaN gamma or OI count as zero. Put GEX is negative (SIGN_CONVENTION).
    """
    k = np.asarray(strikes, dtype=float)
    call = np.asarray(is_call, dtype=bool)
    units = np.nan_to_num(np.asarray(oi_units, dtype=float))
    g = np.nan_to_num(np.asarray(gamma, dtype=float))
    gex = gamma_exposure(g, units, 1.0, spot) / CRORE
    levels, where = np.unique(k, return_inverse=True)
    calls = np.bincount(where, weights=np.where(call, gex, 0.0), minlength=levels.size)
    puts = -np.bincount(where, weights=np.where(call, 0.0, gex), minlength=levels.size)
    return levels, calls, puts


def zero_crossing(xs: ArrayLike, ys: ArrayLike, near: float) -> float:
    """The x where y changes sign (linear interpolation), the crossing nearest `near`; NaN if none.

    A point with y exactly 0 is a crossing at that x.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    found: list[float] = [float(v) for v in x[y == 0]]
    for i in np.nonzero(y[:-1] * y[1:] < 0)[0]:
        found.append(float(x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i])))
    if not found:
        return math.nan
    return min(found, key=lambda v: abs(v - near))


def total_gex_at(levels: ArrayLike, strikes: ArrayLike, is_call: ArrayLike, iv_pct: ArrayLike,
                 t_years: ArrayLike, oi_units: ArrayLike, rate: float = 0.0) -> np.ndarray:
    """Net chain GEX (rupees crore per 1 %) if the index stood at each of `levels`.

    Each leg's gamma is re-priced (Black-Scholes on spot) at the level with its own IV (percent)
    and time to expiry (years); legs with NaN IV or OI are left out.
    """
    s = np.asarray(levels, dtype=float)[:, None]
    k = np.asarray(strikes, dtype=float)[None, :]
    call = np.asarray(is_call, dtype=bool)[None, :]
    vol = np.asarray(iv_pct, dtype=float)[None, :] / 100.0
    t = np.asarray(t_years, dtype=float)[None, :]
    units = np.asarray(oi_units, dtype=float)[None, :]
    gamma = bs_greeks(s, k, t, vol, rate, call).gamma
    gex = gamma_exposure(gamma, units, 1.0, s) * np.where(call, 1.0, -1.0) / CRORE
    return np.asarray(np.nansum(gex, axis=1), dtype=float)


def gex_profile(strikes: ArrayLike, is_call: ArrayLike, gamma: ArrayLike, oi_units: ArrayLike,
                iv_pct: ArrayLike, t_years: ArrayLike, spot: float,
                rate: float = 0.0) -> GexProfile:
    """GEX by strike at `spot` from the legs' own gamma, plus the total and the flip level.

    The flip is found by re-pricing the total at every listed strike (`total_gex_at`) and taking
    the sign change nearest spot.
    """
    levels, calls, puts = gex_by_strike(strikes, is_call, gamma, oi_units, spot)
    net = calls + puts
    flip = math.nan
    if levels.size >= 2:
        grid = np.linspace(float(levels[0]), float(levels[-1]), max(2 * levels.size, 50))
        totals = total_gex_at(grid, strikes, is_call, iv_pct, t_years, oi_units, rate)
        flip = zero_crossing(grid, totals, spot)
    return GexProfile(levels, calls, puts, net, float(net.sum()), flip)


def running_vwap(prices: Sequence[float] | np.ndarray,
                 volumes: Sequence[float] | np.ndarray) -> np.ndarray:
    """Cumulative VWAP: sum(p_i x v_i) / sum(v_i) up to each i; NaN until volume has traded.

    Entries with a NaN price or a non-positive / NaN volume add nothing.
    """
    p = np.asarray(prices, dtype=float)
    v = np.asarray(volumes, dtype=float)
    use = np.isfinite(p) & np.isfinite(v) & (v > 0)
    pv = np.cumsum(np.where(use, p * v, 0.0))
    vol = np.cumsum(np.where(use, v, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(vol > 0, pv / vol, np.nan)
