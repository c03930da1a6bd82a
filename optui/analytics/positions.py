"""Where positions moved: the legs with the largest open-interest change, each contract once.

Shared by the dashboard's positions table and the API (`/api/analytics/cash-flows/position-changes`),
so both rank the same legs the same way.
"""

from __future__ import annotations

import math

from optui.models import LegRecord


def top_oi_changes(legs: list[LegRecord], n: int) -> list[LegRecord]:
    """The n legs with the largest |OI change| (vs the reference OI), largest first."""
    movers = [leg for leg in legs if math.isfinite(leg.oi_change) and leg.oi_change != 0]
    # Legs repeat across buckets that share an expiry; count each contract once.
    unique: dict[tuple[object, float, str], LegRecord] = {}
    for leg in movers:
        unique.setdefault((leg.expiry, leg.strike, leg.side), leg)
    return sorted(unique.values(), key=lambda leg: abs(leg.oi_change), reverse=True)[:n]


def oi_change_pct(leg: LegRecord) -> float:
    """OI change as a percent of the reference OI (`oi_open`); NaN when there is none."""
    return leg.oi_change / leg.oi_open * 100.0 if leg.oi_open else float("nan")


__all__ = ["oi_change_pct", "top_oi_changes"]
