"""Black-Scholes (spot) and Black-76 (forward) prices, greeks and implied volatility for options.

Everything is vectorised: scalars and numpy arrays broadcast together. Volatility and time are
annual (0.12 = 12 %, years of 365 days); rates are continuously compounded decimals.
Invalid inputs (non-positive spot, strike, time or volatility) give NaN, never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from optui.analytics.implied_vol import (
    IV_ABOVE_BOUND,
    IV_BAD_INPUT,
    IV_BELOW_INTRINSIC,
    IV_EXPIRED,
    IV_NO_CONVERGENCE,
    IV_OK,
    IV_UNDETERMINED,
    STATUS_NAMES,
    solve_black76,
)

__all__ = [
    "IV_ABOVE_BOUND",
    "IV_BAD_INPUT",
    "IV_BELOW_INTRINSIC",
    "IV_EXPIRED",
    "IV_NO_CONVERGENCE",
    "IV_OK",
    "IV_UNDETERMINED",
    "STATUS_NAMES",
    "Greeks",
    "black76_greeks",
    "black76_price",
    "bs_greeks",
    "bs_price",
    "implied_volatility",
    "implied_volatility_black76",
    "iv_status",
    "solve_black76",
]

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


@dataclass(frozen=True)
class Greeks:
    """Sensitivities in the units a trader reads, each an array shaped like the broadcast inputs."""

    delta: np.ndarray
    """Change in price per 1 rupee move of the underlying (spot for BSM, forward for Black-76)."""
    gamma: np.ndarray
    """Change in delta per 1 rupee move of the same underlying."""
    theta: np.ndarray
    """Change in price per calendar day passing (annual theta / 365); usually negative."""
    vega: np.ndarray
    """Change in price per 1 volatility point (0.01 of annual volatility)."""
    rho: np.ndarray
    """Change in price per 1 percentage point of the rate (Black-76: forward held fixed)."""


def _greek_inputs(
    forward: np.ndarray, strike: ArrayLike, t_years: np.ndarray, vol: ArrayLike, rate: np.ndarray
) -> tuple[np.ndarray, ...]:
    """d1, d2, sqrt(T), discount factor and validity mask shared by both models."""
    k, v = _as_arrays(strike, vol)
    sqrt_t = np.sqrt(t_years)
    sd = v * sqrt_t
    d1 = (np.log(forward / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = np.exp(-rate * t_years)
    valid = (
        (forward > 0)
        & (k > 0)
        & (t_years > 0)
        & (v > 0)
        & np.isfinite(forward * k * v * rate * t_years)
    )
    return k, v, sqrt_t, d1, d2, df, valid


def _masked(valid: np.ndarray, **arrays: np.ndarray) -> Greeks:
    return Greeks(**{name: np.where(valid, a, np.nan) for name, a in arrays.items()})


def black76_greeks(
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
) -> Greeks:
    """Black-76 greeks; delta and gamma are with respect to the forward. Invalid inputs give NaN."""
    f, t, r = _as_arrays(forward, t_years, rate)
    call = np.asarray(is_call, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k, v, sqrt_t, d1, d2, df, valid = _greek_inputs(f, strike, t, vol, r)
        pdf = _pdf(d1)
        n1, n2, m1, m2 = ndtr(d1), ndtr(d2), ndtr(-d1), ndtr(-d2)
        price = np.where(call, df * (f * n1 - k * n2), df * (k * m2 - f * m1))
        delta = np.where(call, df * n1, -df * m1)
        gamma = df * pdf / (f * v * sqrt_t)
        vega = f * df * pdf * sqrt_t
        theta = r * price - f * df * pdf * v / (2.0 * sqrt_t)
        rho = -t * price
    return _masked(
        valid, delta=delta, gamma=gamma, theta=theta / 365.0, vega=vega / 100.0, rho=rho / 100.0
    )


def bs_greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
) -> Greeks:
    """Black-Scholes-Merton greeks on spot with a continuous dividend yield; bad inputs give NaN."""
    s, t, r, q = _as_arrays(spot, t_years, rate, dividend_yield)
    call = np.asarray(is_call, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = s * np.exp((r - q) * t)
        k, v, sqrt_t, d1, d2, df, valid = _greek_inputs(f, strike, t, vol, r)
        valid &= (s > 0) & np.isfinite(q)
        qf = np.exp(-q * t)
        pdf = _pdf(d1)
        n1, n2, m1, m2 = ndtr(d1), ndtr(d2), ndtr(-d1), ndtr(-d2)
        delta = np.where(call, qf * n1, -qf * m1)
        gamma = qf * pdf / (s * v * sqrt_t)
        vega = s * qf * pdf * sqrt_t
        decay = -s * qf * pdf * v / (2.0 * sqrt_t)
        theta = np.where(
            call,
            decay - r * k * df * n2 + q * s * qf * n1,
            decay + r * k * df * m2 - q * s * qf * m1,
        )
        rho = np.where(call, k * t * df * n2, -k * t * df * m2)
    return _masked(
        valid, delta=delta, gamma=gamma, theta=theta / 365.0, vega=vega / 100.0, rho=rho / 100.0
    )


def implied_volatility_black76(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
) -> np.ndarray:
    """Black-76 implied volatility; NaN where no volatility reproduces the price (see iv_status)."""
    return solve_black76(price, forward, strike, t_years, rate, is_call)[0]


def implied_volatility(
    price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
    dividend_yield: ArrayLike = 0.0,
) -> np.ndarray:
    """Black-Scholes-Merton implied volatility on spot; NaN where no volatility fits the price.

    A BSM price on spot S with yield q is the Black-76 price on F = S e^{(r-q)T}, so this solves
    on that forward; iv_status(price, forward, ...) with the same forward says why a value is NaN.
    """
    s, t, r, q = _as_arrays(spot, t_years, rate, dividend_yield)
    with np.errstate(over="ignore", invalid="ignore"):
        forward = s * np.exp((r - q) * t)
    return solve_black76(price, forward, strike, t, r, is_call)[0]


def iv_status(
    price: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    t_years: ArrayLike,
    rate: ArrayLike,
    is_call: ArrayLike,
) -> np.ndarray:
    """Why each Black-76 implied volatility is or is not finite, as int8 codes.

    IV_OK (0) solved; IV_BELOW_INTRINSIC (1) price at or below discounted intrinsic;
    IV_ABOVE_BOUND (2) price at or above the discounted forward (call) or strike (put);
    IV_BAD_INPUT (3) price, forward, strike or rate zero, negative or not finite;
    IV_EXPIRED (4) time to expiry not positive; IV_UNDETERMINED (5) the price does not pin the
    volatility down (a 1e-15 relative price change would move it by more than 1e-9, e.g. deep in
    the money with the time value lost to rounding); IV_NO_CONVERGENCE (6) never expected.
    STATUS_NAMES maps codes to words. Use solve_black76 to get volatility and status in one pass.
    """
    return solve_black76(price, forward, strike, t_years, rate, is_call)[1]
