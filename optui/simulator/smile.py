"""The simulated volatility smile, calibrated on NIFTY's real end-of-day smile (MARKET.md).

Volatility is a function of standardised moneyness x = log(K/F)/sqrt(T) (T in years): the put
wing is steeper than the call wing, the minimum sits slightly above the money, and short expiries
are more curved. Traders recognise a chain by this shape, and the app's IV and skew analytics are
tested against it.

Each calibrated shape is a quartic in x fitted by least squares to MARKET.md's table (19 Aug 2026:
a 6-day weekly and a 41-day monthly, ATM 10.1 %), continued beyond |x| = 0.3 with the quartic's
edge slope plus WING_CONVEXITY, and bounded smoothly at MAX_RATIO: the weekly's far wings reach
30-35 % where options cost 0.70-1.35 rupees, as MARKET.md reports (a hard cap would put a kink in
the smile and a negative butterfly at it). The quartic is smooth and convex, so the smile is curved at every strike:
the table's weekly reads 10.1 % from x = -0.1 to +0.1 only to its 0.1-point rounding, and a real
chain shows no flat stretch of equal IVs around the money. The weekly's curvature at the money is
held at WEEKLY_CURVATURE (the free fit would leave it flatter than real short-dated chains); the
price is half a vol point against the table at x = -0.1.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

SMILE_X = np.array([-0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3])
# Vol in %, read off NIFTY on 19 Aug 2026 (ATM 10.1 %): 6-day weekly, 41-day monthly.
WEEKLY_TABLE = np.array([15.3, 12.2, 10.1, 10.1, 10.1, 11.3, 13.7])
MONTHLY_TABLE = np.array([16.7, 14.0, 11.6, 10.1, 9.4, 10.3, 12.6])
WEEKLY_YEARS = 6.0 / 365.0
MONTHLY_YEARS = 41.0 / 365.0
# d2(vol/ATM)/dx2 / 2 at the money for the weekly: IVs two strikes either side of a 1-day NIFTY
# weekly's ATM differ from it by 0.1-0.25 points, four strikes by 0.5-0.9.
WEEKLY_CURVATURE = 4.0
EDGE = 0.3  # the table's last point: beyond it the wings steepen ...
WING_CONVEXITY = 1.0  # ... as ratio += slope * d + WING_CONVEXITY * d^2 (d = distance past EDGE)
MAX_RATIO = 3.5  # ... up to about this multiple of ATM (weekly wings at 30-35 %) ...
CAP_WIDTH = 0.4  # ... approached smoothly over about this much of the ratio


def fit_shape(table: ArrayLike, curvature: float | None = None) -> np.ndarray:
    """Coefficients (c1, c2, c3, c4) of vol/ATM - 1 = c1 x + c2 x^2 + c3 x^3 + c4 x^4.

    `table` holds vols at SMILE_X with the ATM at x = 0; least squares over the other points
    (the shape passes through ATM exactly). With `curvature`, c2 is held at that value.
    """
    tab = np.asarray(table, dtype=float)
    ratio = tab / tab[SMILE_X == 0.0][0] - 1.0
    keep = SMILE_X != 0.0
    x, y = SMILE_X[keep], ratio[keep]
    powers = [1, 3, 4] if curvature is not None else [1, 2, 3, 4]
    target = y - (curvature * x**2 if curvature is not None else 0.0)
    design = np.stack([x**p for p in powers], axis=1)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    if curvature is None:
        return coef
    return np.array([coef[0], curvature, coef[1], coef[2]])


WEEKLY_COEF = fit_shape(WEEKLY_TABLE, WEEKLY_CURVATURE)
MONTHLY_COEF = fit_shape(MONTHLY_TABLE)


def _poly(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return 1.0 + x * (c[0] + x * (c[1] + x * (c[2] + x * c[3])))


def _slope(x: float, c: np.ndarray) -> float:
    return float(c[0] + x * (2.0 * c[1] + x * (3.0 * c[2] + x * 4.0 * c[3])))


def _shape(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Vol/ATM of one calibrated shape: the quartic inside |x| <= EDGE, steepening wings outside."""
    inner = _poly(np.clip(x, -EDGE, EDGE), c)
    d_left = np.maximum(-EDGE - x, 0.0)
    d_right = np.maximum(x - EDGE, 0.0)
    left = float(_poly(np.array(-EDGE), c)) - _slope(-EDGE, c) * d_left + WING_CONVEXITY * d_left**2
    right = float(_poly(np.array(EDGE), c)) + _slope(EDGE, c) * d_right + WING_CONVEXITY * d_right**2
    out = np.where(x < -EDGE, left, np.where(x > EDGE, right, inner))
    # Smooth minimum of the shape and MAX_RATIO (softplus), rescaled to stay 1 at the money.
    gap = np.abs(out - MAX_RATIO)
    capped = np.minimum(out, MAX_RATIO) - CAP_WIDTH * np.log1p(np.exp(-gap / CAP_WIDTH))
    return capped / _AT_MONEY


_AT_MONEY = 1.0 - CAP_WIDTH * float(np.log1p(np.exp(-(MAX_RATIO - 1.0) / CAP_WIDTH)))


def smile_ratio(x: ArrayLike, t_years: ArrayLike) -> np.ndarray:
    """Vol divided by ATM vol at standardised moneyness `x` for time `t_years`."""
    xa = np.asarray(x, dtype=float)
    t = np.clip(np.asarray(t_years, dtype=float), WEEKLY_YEARS, MONTHLY_YEARS)
    # Blend the two calibrated shapes in log time: in between they morph smoothly.
    w = (np.log(t) - np.log(WEEKLY_YEARS)) / (np.log(MONTHLY_YEARS) - np.log(WEEKLY_YEARS))
    return (1.0 - w) * _shape(xa, WEEKLY_COEF) + w * _shape(xa, MONTHLY_COEF)


def smile_vol(
    atm_vol: ArrayLike, strike: ArrayLike, forward: ArrayLike, t_years: ArrayLike
) -> np.ndarray:
    """Annual volatility of `strike` on `forward` with `t_years` left (t floored at one minute)."""
    t = np.maximum(np.asarray(t_years, dtype=float), 60.0 / (365.0 * 86400.0))
    x = np.log(np.asarray(strike, dtype=float) / np.asarray(forward, dtype=float)) / np.sqrt(t)
    return np.asarray(atm_vol, dtype=float) * smile_ratio(x, t)
