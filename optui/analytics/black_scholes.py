"""Black-Scholes (spot) and Black-76 (forward) prices and greeks for European index options.

Everything is vectorised: scalars and numpy arrays broadcast together. Volatility and time are
annual (0.12 = 12 %, years of 365 days); rates are continuously compounded decimals.
Invalid inputs (non-positive spot, strike, time or volatility) give NaN, never an exception.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

_SQRT_2PI = np.sqrt(2.0 * np.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * x * x) / _SQRT_2PI


def _as_arrays(*values: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(v, dtype=float) for v in values]


def black76_price(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
) -> np.ndarray:
    """Black-76 price of a European option on a forward, discounted at `rate`."""
    f, k, t, v, r = _as_arrays(forward, strike, t_years, vol, rate)
    call = np.asarray(is_call, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = v * np.sqrt(t)
        d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
        d2 = d1 - sd
        df = np.exp(-r * t)
        c = df * (f * ndtr(d1) - k * ndtr(d2))
        p = df * (k * ndtr(-d2) - f * ndtr(-d1))
        price = np.where(call, c, p)
    valid = (f > 0) & (k > 0) & (t > 0) & (v > 0)
    return np.where(valid, price, np.nan)


def bs_price(
    spot: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
) -> np.ndarray:
    """Black-Scholes-Merton price on spot with a continuous dividend yield."""
    s, t, r, q = _as_arrays(spot, t_years, rate, dividend_yield)
    forward = s * np.exp((r - q) * t)
    return black76_price(forward, strike, t, vol, r, is_call)
