"""The five-index overview: level, change, and the selected expiry bucket's chain aggregates.

Each row shows the bucket the trader selected (this_month: every index's monthly), or the
nearest expiry where an index has no such bucket (monthly-only indices have no weeklies); the
Expiry column always names the expiry the IV, PCR, max pain and straddle belong to. With stored
daily IV closes the ATM IV cells add IV rank, percentile and RV20 when every column still fits
the panel; otherwise the selected index's standing is the panel's bottom-border subtitle. The
80-column (compact) table has no border: there an IVR/IVP column gives each index's rank and
percentile as '30/63 41d' (the days behind them when less than a year).
"""

from __future__ import annotations

from collections.abc import Sequence

from optui.analytics.vol_history import IvStanding
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

DROP_ORDER: tuple[str, ...] = ("chg", "atm", "expiry", "chg_pct")
"""Columns left out, first to last, while the overview is wider than its panel (the points
change beside its percent, the ATM strike the chain shows, the expiry the title names)."""

NARROW_LABELS: dict[str, str] = {"atm_iv": "ATM IV"}
"""Shorter headers once every DROP_ORDER column is out and the rest still do not fit."""

STANDING_COLUMN: tuple[str, str, str] = ("iv_standing", "IVR/IVP", "right")
"""The compact table's IV rank / IV percentile column, after ATM IV (see IvStanding.short_label)."""

COMPACT_IV_LABELS: tuple[str, ...] = ("ATM IV %", "ATM IV", "IV %")
"""The compact ATM IV header, tried in turn until the IVR/IVP column fits beside it."""


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


def compact_standing(atm_iv: float, history: IvHistory) -> IvStanding:
    """Where ATM IV sits in the stored closes of `history` (see iv_context), for the compact
    table's IVR/IVP column."""
    from optui.analytics.vol_history import iv_standing

    return iv_standing(atm_iv, history[0])


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
    """One row per index, keyed by index key, updated in place each cycle.

    The columns follow the table's width: when they do not all fit (a 120-159 column terminal
    beside the flow panel), DROP_ORDER's columns go first, so ATM IV, PCR, Max pain and
    Straddle stay in sight; the IV standing joins the ATM IV cells only when nothing then has
    to go, else the selected index's is the subtitle."""

    DEFAULT_CSS = """
    OverviewTable { height: auto; }
    """

    def __init__(self, compact: bool = False, **kwargs: object) -> None:
        self.compact = compact
        self.iv_history: dict[tuple[str, str], IvHistory] = {}
        """(index, bucket) -> stored closes before today: in the full table in the ATM IV cells
        when they fit, else the selected index's in the subtitle; compact, the IVR/IVP column."""
        self._compact_standing: dict[str, IvStanding] = {}
        """The compact table's standing per index key (empty: no IVR/IVP column)."""
        self._base = [c for c in OVERVIEW_COLUMNS if not compact or c[0] in COMPACT_COLUMNS]
        self._shown: tuple[dict[str, dict[str, Cell]], dict[str, str], str] = ({}, {}, "")
        """The last snapshot's rows (every column), IV standings and selected row's label."""
        super().__init__(self._base, **kwargs)

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
        self._compact_standing = {}
        for k in keys:
            ov = snapshot.indices[k].overview
            b = bucket_stats(ov, bucket)
            rows[k] = overview_cells(ov, k == selected, bucket)
            history = None if b is None else self.iv_history.get((k, b.bucket))
            if b is not None and history and self.compact:
                self._compact_standing[k] = compact_standing(b.atm_iv, history)
            elif b is not None and history:
                standing[k] = iv_context(b.atm_iv, ov.last_price, history)
        label = ""
        if selected in standing:
            label = (f"{snapshot.indices[selected].overview.symbol} ATM IV "
                     f"{cell_text(rows[selected]['atm_iv'])} {standing[selected]}")
        self._shown = (rows, standing, label)
        return self._lay_out()

    def on_resize(self, event: object) -> None:
        if self._shown[0]:
            self._lay_out()

    def _lay_out(self) -> int:
        """Fit the columns to the width, sync the rows and set the subtitle (see the class)."""
        if self.compact:
            return self._lay_out_compact()
        rows, standing, label = self._shown
        width = self.size.width
        inline = bool(standing) and width > 0 and self._fit(rows, standing, width) == self._base
        columns = self._base if width <= 0 else self._fit(rows, standing if inline else {}, width)
        self.set_columns(columns)
        if inline:
            rows = {k: {**cells, "atm_iv": f"{cell_text(cells['atm_iv'])} {standing[k]}"}
                    if k in standing else cells for k, cells in rows.items()}
        written = self.sync_rows(rows, sort_column="index")
        if not inline:
            self.refit_columns()  # a narrower panel than when the standing last fitted
        subtitle = "" if inline else label
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        return written

    def _lay_out_compact(self) -> int:
        """The compact columns, with the IVR/IVP column when there is a standing and it fits."""
        rows = self._shown[0]
        columns, with_days = self._fit_compact(rows, self.size.width)
        self.set_columns(columns)
        if STANDING_COLUMN in columns:
            shown = self._compact_standing
            rows = {k: {**cells, STANDING_COLUMN[0]: shown[k].short_label(with_days)
                        if k in shown else "–"} for k, cells in rows.items()}
        written = self.sync_rows(rows, sort_column="index")
        self.refit_columns()
        return written

    def _fit_compact(self, rows: dict[str, dict[str, Cell]],
                     width: int) -> tuple[list[tuple[str, str, str]], bool]:
        """The compact columns and whether the IVR/IVP cells say their days: the column after
        ATM IV, the ATM IV header shortened (COMPACT_IV_LABELS) and then the days left out until
        it fits `width`; without it when nothing fits. Sized for the widest label the days can
        give, so the layout holds as IV moves."""
        base = list(self._base)
        if not self._compact_standing:
            return base, True
        at = next(i for i, c in enumerate(base) if c[0] == "atm_iv") + 1
        need = {key: max([len(label)] + [len(cell_text(cells.get(key, ""))) for cells in rows.values()])
                for key, label, _ in base if key != "atm_iv"}
        iv_cells = max((len(cell_text(cells.get("atm_iv", ""))) for cells in rows.values()), default=0)
        for with_days in (True, False):
            standing_width = max([len(STANDING_COLUMN[1])] + [
                s.short_width() if with_days else len("100/100") for s in self._compact_standing.values()])
            for iv_label in COMPACT_IV_LABELS:
                used = (sum(need.values()) + max(iv_cells, len(iv_label)) + standing_width
                        + 2 * (len(base) + 1) + 1)
                if width <= 0 or used <= width:
                    columns = [(k, iv_label if k == "atm_iv" else label, j) for k, label, j in base]
                    return columns[:at] + [STANDING_COLUMN] + columns[at:], with_days
        return base, True

    def _fit(self, rows: dict[str, dict[str, Cell]], standing: dict[str, str],
             width: int) -> list[tuple[str, str, str]]:
        """The base columns, less DROP_ORDER's first ones until the rest (ATM IV cells with
        `standing` appended) fit `width` as KeyedTable lays them out."""
        need = {key: len(label) for key, label, _ in self._base}
        for k, cells in rows.items():
            for col in need:
                text = cell_text(cells.get(col, ""))
                if col == "atm_iv" and k in standing:
                    text = f"{text} {standing[k]}"
                need[col] = max(need[col], len(text))
        columns = list(self._base)

        def fits() -> bool:
            return sum(need[c[0]] for c in columns) + 2 * len(columns) + 1 <= width

        for drop in DROP_ORDER:
            if fits():
                return columns
            columns = [c for c in columns if c[0] != drop]
        if not fits():  # 120 columns: the ATM IV header is the widest cell of its column
            columns = [(key, NARROW_LABELS.get(key, label), justify)
                       for key, label, justify in columns]
        return columns
