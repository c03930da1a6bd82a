"""Where positions moved: the legs with the largest open-interest change, each contract once.

Shared by the dashboard's positions table and the API (`/api/analytics/cash-flows/position-changes`),
so both rank the same legs the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from optui.leg_rows import leg_array, leg_column
from optui.models import LegRecord


def top_oi_changes(legs: Sequence[LegRecord], n: int) -> list[LegRecord]:
    """The n legs with the largest |OI change| (vs the reference OI), largest first; equal
    changes in leg order. A contract (expiry, strike, side) in two buckets counts once, as its
    first leg. Read from the legs' columns: only the n legs returned are built (optui.leg_rows)."""
    change = leg_array(legs, "oi_change")
    with np.errstate(invalid="ignore"):
        movers = np.flatnonzero(np.isfinite(change) & (change != 0))
    if n <= 0 or not movers.size:
        return []
    at = movers.tolist()
    expiry, strike, side = (leg_column(legs, name) for name in ("expiry", "strike", "side"))
    keys = list(zip([expiry[i] for i in at], np.asarray(strike, dtype=float)[movers].tolist(),
                    [side[i] for i in at], strict=True))
    # Each key's first mover: a dict filled from the last mover back keeps the first's place.
    first = sorted(dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True)).values())
    ranked = np.asarray(first, dtype=np.intp)
    ranked = ranked[np.argsort(-np.abs(change[movers[ranked]]), kind="stable")][:n]
    return [legs[i] for i in movers[ranked].tolist()]


def oi_change_pct(leg: LegRecord) -> float:
    """OI change as a percent of the reference OI (`oi_open`); NaN when there is none."""
    return leg.oi_change / leg.oi_open * 100.0 if leg.oi_open else float("nan")


__all__ = ["oi_change_pct", "top_oi_changes"]
