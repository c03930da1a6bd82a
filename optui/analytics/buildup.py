"""Position buildup: what a price move plus an open-interest move says traders are doing.

Rising OI means new positions; falling OI means positions closing. The price direction says which
side drove it: up with new OI is long buildup, down with new OI short buildup, up with closing OI
short covering, down with closing OI long unwinding. A flat or unknown move in either says
nothing, so it is left neutral ("").
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

LONG_BUILDUP = "long_buildup"  # price up, OI up
SHORT_BUILDUP = "short_buildup"  # price down, OI up
SHORT_COVERING = "short_covering"  # price up, OI down
LONG_UNWINDING = "long_unwinding"  # price down, OI down
NEUTRAL = ""

BUILDUPS: tuple[str, ...] = (LONG_BUILDUP, SHORT_BUILDUP, SHORT_COVERING, LONG_UNWINDING)

_LABELS = np.array((NEUTRAL, *BUILDUPS))

BUILDUP_LABELS: dict[str, str] = {
    LONG_BUILDUP: "Long buildup",
    SHORT_BUILDUP: "Short buildup",
    SHORT_COVERING: "Short covering",
    LONG_UNWINDING: "Long unwinding",
    NEUTRAL: "",
}
"""Display names for the buildup codes stored in `LegRecord.buildup`."""


def classify_buildup(price_change: ArrayLike, oi_change: ArrayLike) -> np.ndarray:
    """Buildup code per element (a str array); "" where either change is zero or NaN."""
    dp, doi = np.broadcast_arrays(
        np.asarray(price_change, dtype=float), np.asarray(oi_change, dtype=float)
    )
    # Code 0 is neutral; 1..4 follow BUILDUPS: +1 when the price fell, +2 when OI fell.
    # NaN compares False both ways, so it lands in neutral.
    with np.errstate(invalid="ignore"):
        moved = ((dp > 0) | (dp < 0)) & ((doi > 0) | (doi < 0))
        code = np.where(moved, 1 + (dp < 0) + 2 * (doi < 0), 0)
    return _LABELS[code]


def oi_change(oi: ArrayLike, reference_oi: ArrayLike) -> np.ndarray:
    """OI minus the reference OI (previous close or previous snapshot): positive when OI grew."""
    with np.errstate(invalid="ignore"):
        return np.asarray(oi, dtype=float) - np.asarray(reference_oi, dtype=float)


def oi_change_pct(oi: ArrayLike, reference_oi: ArrayLike) -> np.ndarray:
    """OI change as a percentage of the reference OI; NaN when the reference is 0 or unknown."""
    ref = np.asarray(reference_oi, dtype=float)
    change = oi_change(oi, ref)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = change / ref * 100.0
    return np.where(np.isfinite(ref) & (ref > 0), pct, np.nan)
