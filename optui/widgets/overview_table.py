"""The five-index overview: level, change, and the selected expiry bucket's chain aggregates.

Each row shows the bucket the trader selected (this_month: every index's monthly), or the
nearest expiry where an index has no such bucket (monthly-only indices have no weeklies); the
Expiry column always names the expiry the IV, PCR, max pain and straddle belong to. With stored
daily IV closes the ATM IV cells add IV rank, percentile and RV20 when every column still fits
the panel; otherwise the selected index's standing is the panel's bottom-border subtitle.
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
from optui.widgets.keyed_table import Cell, KeyedTable, cell_text

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


IvHistory = tuple[list[float], list[float]]
"""Stored daily closes before today, oldest first: (ATM IV percent, index level)."""


def iv_context(atm_iv: float, last_price: float, history: IvHistory) -> str:
    """'IVR 30 IVP 40 (41 d) RV20 11.2': where ATM IV sits in its stored closes (over one year,
    or over the days stored, said as such) and 20-day close-to-close realised volatility."""
    from optui.analytics.vol_history import iv_standing, realised_vol

    ivs, spots = history
    rv = realised_vol([*spots, last_price])
    rv_text = f"RV20 {rv:.1f}" if rv == rv else "RV20 –"
    return f"{iv_standing(atm_iv, ivs).label()} {rv_text}"


def overview_cells(
    overview: OverviewRecord, selected: bool = False, bucket: str = "",
    history: IvHistory | None = None,
) -> dict[str, Cell]:
    """The row for one index at `bucket` (see bucket_stats); changes coloured by sign.

    The ATM is the bucket's own (its straddle's strike) when known, else the index's. With
    `history` the ATM IV cell adds IV rank, IV percentile and RV20 (see iv_context).
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
        "atm_iv": fmt_iv(b.atm_iv if b else None) + (
            f" {iv_context(b.atm_iv, overview.last_price, history)}" if b and history else ""),
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
        self.iv_history: dict[tuple[str, str], IvHistory] = {}
        """(index, bucket) -> stored closes before today; shown in the full table only (in the
        ATM IV cells when they fit, else the selected index's in the subtitle)."""
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
        rows: dict[str, dict[str, Cell]] = {}
        standing: dict[str, str] = {}
        for k in keys:
            ov = snapshot.indices[k].overview
            b = bucket_stats(ov, bucket)
            rows[k] = overview_cells(ov, k == selected, bucket)
            history = None if self.compact or b is None else self.iv_history.get((k, b.bucket))
            if b is not None and history:
                standing[k] = iv_context(b.atm_iv, ov.last_price, history)
        inline = bool(standing) and self._fits_inline(rows, standing)
        if inline:
            for k, text in standing.items():
                rows[k]["atm_iv"] = f"{cell_text(rows[k]['atm_iv'])} {text}"
        written = self.sync_rows(rows, sort_column="index")
        if not inline:
            self.refit_columns()  # a narrower panel than when the standing last fitted
        subtitle = ""
        if standing and not inline and selected in standing:
            iv = cell_text(rows[selected]["atm_iv"])
            subtitle = f"{snapshot.indices[selected].overview.symbol} ATM IV {iv} {standing[selected]}"
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        return written

    def _fits_inline(self, rows: dict[str, dict[str, Cell]], standing: dict[str, str]) -> bool:
        """Whether the ATM IV cells can carry the IV standing with every column still inside
        the panel; otherwise the selected index's standing is the panel's subtitle, so Max
        pain, Straddle and Expiry are never pushed out of sight."""
        width = self.size.width
        if width <= 0:
            return False  # not laid out yet: decided again on the next snapshot
        need = {col: len(label) for col, label in self._labels.items()}
        for k, cells in rows.items():
            for col, cell in cells.items():
                text = cell_text(cell)
                if col == "atm_iv" and k in standing:
                    text = f"{text} {standing[k]}"
                need[col] = max(need[col], len(text))
        return sum(need.values()) + 2 * len(need) + 1 <= width  # as KeyedTable lays them out
