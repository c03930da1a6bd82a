"""The simulated volatility smile, calibrated on NIFTY's real end-of-day smile (MARKET.md).

Volatility is a function of standardised moneyness x = log(K/F)/sqrt(T) (T in years): the put
wing is steeper than the call wing, the minimum sits slightly above the money, and short expiries
are more curved. Traders recognise a chain by this shape, and the app's IV and skew analytics are
tested against it.

Each calibrated shape is a quartic in x inside |x| <= EDGE (0.2), fitted by least squares to
MARKET.md's table (19 Aug 2026: a 6-day weekly and a 41-day monthly, ATM 10.1 %), with its slopes
at the edges held at the table's slopes out to |x| = 0.3; beyond the edge the wings leave with
those slopes and bend slowly (logarithmic wings). The quartic is convex, so the smile is curved
at every strike: the table's weekly reads 10.1 % from x = -0.1 to +0.1 only to its 0.1-point
rounding, and a real chain shows no flat stretch of equal IVs around the money. The weekly's
curvature at the money is held at WEEKLY_CURVATURE (a free fit would leave it flat); the price is
under half a vol point against the table.

No butterfly arbitrage: with vol = atm * r(x), Durrleman's condition for Black prices reads
(1 - x r'/r)^2 + atm^2 r r'' - atm^4 r^2 r'^2 T / 4 >= 0 (Gatheral, "The Volatility Surface",
ch. 3). The wings meet the quartic where x r'/r is about 0.5, so the first term leaves room for
the log wings' gentle bend (r'' < 0), and sublinear wings keep the last term vanishing as T
shrinks. The skew is held in vol points above the table's ATM (see smile_vol) so the bound does
not depend on how high volatility is. A hard cap on the wings would bend them sharply where
x r'/r is near 1 and break the condition, so there is none.
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
# (d2(vol/ATM)/dx2) / 2 at the money for the weekly: IVs two strikes either side of a 1-day NIFTY
# weekly's ATM sit 0.1-0.2 points above it, four strikes 0.4-0.8.
WEEKLY_CURVATURE = 3.0
EDGE = 0.2  # the quartic's reach; beyond it the wings leave with the edge slope, which ...
WING_DECAY = 0.3  # ... falls as 1 / (1 + WING_DECAY * distance): the 6-day weekly's put wing
# reaches 32 % at 0.70-1.35 rupees (MARKET.md: 30-35 %), and far strikes lose their value as
# expiry nears instead of keeping a floor of a fixed number of standard deviations.
TABLE_ATM = 0.101  # the ATM vol the table was read at


def fit_shape(table: ArrayLike, curvature: float | None = None) -> np.ndarray:
    """Coefficients (c1, c2, c3, c4) of vol/ATM - 1 = c1 x + c2 x^2 + c3 x^3 + c4 x^4 on |x| <= EDGE.

    `table` holds vols at SMILE_X (ATM at x = 0, the shape passes through it exactly): least
    squares on the points inside the edge, with the slopes at -EDGE and +EDGE held (weighted
    1000:1) at the table's slopes from there to x = -0.3 and +0.3. With `curvature`, c2 is fixed.
    """
    tab = np.asarray(table, dtype=float)
    ratio = tab / tab[3] - 1.0
    inside = (np.abs(SMILE_X) <= EDGE + 1e-12) & (SMILE_X != 0.0)
    x, y = SMILE_X[inside], ratio[inside]
    slopes = ((ratio[1] - ratio[0]) / (SMILE_X[1] - SMILE_X[0]),
              (ratio[6] - ratio[5]) / (SMILE_X[6] - SMILE_X[5]))
    powers = [1, 3, 4] if curvature is not None else [1, 2, 3, 4]
    fixed = 0.0 if curvature is None else curvature
    rows = [[xi**p for p in powers] for xi in x]
    rhs = list(y - fixed * x**2)
    for x0, slope in zip((-EDGE, EDGE), slopes, strict=True):
        rows.append([1e3 * p * x0 ** (p - 1) for p in powers])
        rhs.append(1e3 * (slope - 2.0 * fixed * x0))
    coef, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
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
    """Vol/ATM of one calibrated shape: the quartic inside |x| <= EDGE, log wings outside."""
    inner = _poly(np.clip(x, -EDGE, EDGE), c)
    wings = []
    for side, edge in ((-1.0, -EDGE), (1.0, EDGE)):
        d = np.maximum(side * (x - edge), 0.0)
        slope = abs(_slope(edge, c))
        wings.append(float(_poly(np.array(edge), c)) + slope / WING_DECAY * np.log1p(WING_DECAY * d))
    return np.where(x < -EDGE, wings[0], np.where(x > EDGE, wings[1], inner))


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
    """Annual volatility of `strike` on `forward` with `t_years` left (t floored at one minute).

    Above the table's ATM (TABLE_ATM) the smile keeps its size in vol points rather than growing
    in proportion: a 20 % ATM gets the 10.1 % table's skew in points, not twice it (which would
    also break Durrleman's condition on the steep put wing).
    """
    t = np.maximum(np.asarray(t_years, dtype=float), 60.0 / (365.0 * 86400.0))
    x = np.log(np.asarray(strike, dtype=float) / np.asarray(forward, dtype=float)) / np.sqrt(t)
    atm = np.asarray(atm_vol, dtype=float)
    scale = np.minimum(atm, TABLE_ATM)
    return atm + scale * (smile_ratio(x, t) - 1.0)
