"""The five-index overview: level, change, and the selected expiry bucket's chain aggregates.

Each row shows the bucket the trader selected (this_month: every index's monthly), or the
nearest expiry where an index has no such bucket (monthly-only indices have no weeklies); the
Expiry column always names the expiry the IV, PCR, max pain and straddle belong to.
"""

from __future__ import annotations

from collections.abc import Sequence

from optui.indices import BUCKETS, INDEX_KEYS
from optui.models import BucketStats, OverviewRecord, Snapshot
from optui.widgets.format import (
    fmt_expiry,
    fmt_iv,
    fmt_pct,
    fmt_price,
    fmt_ratio,
    fmt_signed,
    fmt_strike,
)
from optui.widgets.keyed_table import Cell, KeyedTable

OVERVIEW_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("index", "Index", "left"),
    ("ltp", "LTP", "right"),
    ("chg", "Chg", "right"),
    ("chg_pct", "Chg %", "right"),
    ("atm", "ATM", "right"),
    ("atm_iv", "ATM IV %", "right"),
    ("pcr", "PCR", "right"),
    ("max_pain", "Max pain", "right"),
    ("straddle", "Straddle", "right"),
    ("expiry", "Expiry", "left"),
)

COMPACT_COLUMNS: tuple[str, ...] = ("index", "ltp", "chg_pct", "atm_iv", "pcr", "max_pain", "straddle")
"""The columns kept when the overview must fit 80 columns."""


def first_bucket(overview: OverviewRecord) -> BucketStats | None:
    """The nearest expiry bucket present, in the standard bucket order."""
    for name in BUCKETS:
        if name in overview.buckets:
            return overview.buckets[name]
    return next(iter(overview.buckets.values()), None)


def _signed(text: str, value: float) -> Cell:
    return (text, "green" if value > 0 else "red" if value < 0 else "")


def bucket_stats(overview: OverviewRecord, bucket: str = "") -> BucketStats | None:
    """The named bucket's aggregates, or the nearest expiry's when the index has no such bucket."""
    return overview.buckets.get(bucket) or first_bucket(overview)


def overview_cells(
    overview: OverviewRecord, selected: bool = False, bucket: str = ""
) -> dict[str, Cell]:
    """The row for one index at `bucket` (see bucket_stats); changes coloured by sign.

    The ATM is the bucket's own (its straddle's strike) when known, else the index's.
    """
    b = bucket_stats(overview, bucket)
    marker = "▶ " if selected else "  "
    atm = b.atm_strike if b is not None and b.atm_strike == b.atm_strike else overview.atm_strike
    return {
        "index": (marker + overview.symbol, "bold" if selected else ""),
        "ltp": fmt_price(overview.last_price),
        "chg": _signed(fmt_signed(overview.net_change), overview.net_change),
        "chg_pct": _signed(fmt_pct(overview.net_change_percent), overview.net_change_percent),
        "atm": fmt_strike(atm),
        "atm_iv": fmt_iv(b.atm_iv if b else None),
        "pcr": fmt_ratio(b.pcr_oi if b else None),
        "max_pain": fmt_strike(b.max_pain if b else None),
        "straddle": fmt_price(b.straddle if b else None),
        "expiry": fmt_expiry(b.expiry if b else None),
    }


class OverviewTable(KeyedTable):
    """One row per index, keyed by index key, updated in place each cycle."""

    DEFAULT_CSS = """
    OverviewTable { height: auto; }
    """

    def __init__(self, compact: bool = False, **kwargs: object) -> None:
        self.compact = compact
        columns = [c for c in OVERVIEW_COLUMNS if not compact or c[0] in COMPACT_COLUMNS]
        super().__init__(columns, **kwargs)

    def show_snapshot(
        self,
        snapshot: Snapshot,
        selected: str = "",
        order: Sequence[str] = INDEX_KEYS,
        bucket: str = "",
    ) -> int:
        """Show each index of the snapshot (configured order first) at the selected expiry
        bucket; returns cells written."""
        keys = [k for k in order if k in snapshot.indices]
        keys += [k for k in snapshot.indices if k not in keys]
        rows = {
            k: overview_cells(snapshot.indices[k].overview, k == selected, bucket) for k in keys
        }
        return self.sync_rows(rows, sort_column="index")
