"""The simulated volatility smile, calibrated on NIFTY's real end-of-day smile (MARKET.md).

Volatility is a function of standardised moneyness x = log(K/F)/sqrt(T) (T in years): the put
wing is steeper than the call wing, the minimum sits slightly above the money, and short expiries
are more curved. Traders recognise a chain by this shape, and the app's IV and skew analytics are
tested against it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SMILE_X = np.array([-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3])
# Vol relative to ATM, read off NIFTY on 19 Aug 2026 (ATM 10.1 %): 6-day weekly, 41-day monthly.
WEEKLY_SHAPE = np.array([15.3, 12.2, 10.1, 10.1, 10.1, 11.3, 13.7]) / 10.1
MONTHLY_SHAPE = np.array([16.7, 14.0, 11.6, 10.1, 9.4, 10.3, 12.6]) / 10.1
WEEKLY_YEARS = 6.0 / 365.0
MONTHLY_YEARS = 41.0 / 365.0
# Far wings grow linearly beyond the table, up to this multiple of ATM (weekly wings at ~3x).
MAX_RATIO = 4.0


def _shape(x: np.ndarray, shape: np.ndarray) -> np.ndarray:
    inner = np.interp(x, SMILE_X, shape)
    left_slope = (shape[0] - shape[1]) / (SMILE_X[1] - SMILE_X[0])
    right_slope = (shape[-1] - shape[-2]) / (SMILE_X[-1] - SMILE_X[-2])
    left = shape[0] + left_slope * (SMILE_X[0] - x)
    right = shape[-1] + right_slope * (x - SMILE_X[-1])
    out = np.where(x < SMILE_X[0], left, np.where(x > SMILE_X[-1], right, inner))
    return np.minimum(out, MAX_RATIO)


def smile_ratio(x: ArrayLike, t_years: ArrayLike) -> np.ndarray:
    """Vol divided by ATM vol at standardised moneyness `x` for time `t_years`."""
    xa = np.asarray(x, dtype=float)
    t = np.clip(np.asarray(t_years, dtype=float), WEEKLY_YEARS, MONTHLY_YEARS)
    # Blend the two calibrated shapes in log time: in between they morph smoothly.
    w = (np.log(t) - np.log(WEEKLY_YEARS)) / (np.log(MONTHLY_YEARS) - np.log(WEEKLY_YEARS))
    return (1.0 - w) * _shape(xa, WEEKLY_SHAPE) + w * _shape(xa, MONTHLY_SHAPE)


def smile_vol(
    atm_vol: ArrayLike, strike: ArrayLike, forward: ArrayLike, t_years: ArrayLike
) -> np.ndarray:
    """Annual volatility of `strike` on `forward` with `t_years` left (t floored at one minute)."""
    t = np.maximum(np.asarray(t_years, dtype=float), 60.0 / (365.0 * 86400.0))
    x = np.log(np.asarray(strike, dtype=float) / np.asarray(forward, dtype=float)) / np.sqrt(t)
    return np.asarray(atm_vol, dtype=float) * smile_ratio(x, t)
