"""Largest open-interest changes of the selected index with their buildup: where positions moved."""

from __future__ import annotations

from collections.abc import Sequence

from optui.analytics.positions import oi_change_pct, top_oi_changes
from optui.models import LegRecord
from optui.widgets.format import (
    buildup_long,
    fmt_lakh,
    fmt_pct,
    fmt_price,
    fmt_strike,
)
from optui.widgets.keyed_table import Cell, KeyedTable

POSITION_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("contract", "Contract", "left"),
    ("ltp", "LTP", "right"),
    ("oi_chg", "ΔOI (L)", "right"),
    ("oi_chg_pct", "ΔOI %", "right"),
    ("buildup", "Buildup", "left"),
)

_STYLE = {
    "long_buildup": "green",
    "short_covering": "green",
    "short_buildup": "red",
    "long_unwinding": "red",
}


def position_cells(rank: int, leg: LegRecord) -> dict[str, Cell]:
    pct = oi_change_pct(leg)
    side = "CE" if leg.side == "CALL" else "PE"
    style = _STYLE.get(leg.buildup, "")
    return {
        "contract": f"{leg.expiry:%d%b} {fmt_strike(leg.strike)} {side}",
        "ltp": fmt_price(leg.last_price),
        "oi_chg": (fmt_lakh(leg.oi_change, signed=True), style),
        "oi_chg_pct": fmt_pct(pct),
        "buildup": (buildup_long(leg.buildup), style),
    }


__all__ = ["POSITION_COLUMNS", "PositionsTable", "position_cells", "top_oi_changes"]


class PositionsTable(KeyedTable):
    """Rows keyed by rank (largest first), so a reshuffle rewrites cells rather than the table."""

    DEFAULT_CSS = """
    PositionsTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(POSITION_COLUMNS, **kwargs)

    def show_legs(self, legs: Sequence[LegRecord], n: int = 10) -> int:
        return self.show_ranked(top_oi_changes(legs, n))

    def show_ranked(self, top: list[LegRecord]) -> int:
        """Show legs already ranked by `top_oi_changes` (e.g. in the collection worker)."""
        return self.sync_rows({f"r{i}": position_cells(i, leg) for i, leg in enumerate(top, 1)})
