"""Option legs of one index and bucket in the familiar chain layout: calls | strike | puts.

Calls mirror puts around the strike column as on NSE's option chain, so the premiums sit next to
the strike and open interest at the outer edges. OI, OI change and volume are in lakh units or
in lots (the `ui.oi_unit` setting; the column labels say which). Next to each LTP is its change
against the previous close, so each buildup label (price and OI direction) can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from optui.leg_rows import leg_column, leg_values, legs_where
from optui.models import LegRecord, Snapshot
from optui.widgets.dashboard_model import nearest_index
from optui.widgets.format import (
    LAKH,
    QUALITY_MARK_WIDTH,
    buildup_short,
    fmt_count,
    fmt_delta,
    fmt_iv,
    fmt_price,
    fmt_signed,
    fmt_strike,
    quality_mark,
)
from optui.widgets.keyed_table import Cell, KeyedTable, cell_text

OI_UNITS: tuple[str, ...] = ("lakh", "lots")
"""How the chain counts OI, OI change and volume (the `ui.oi_unit` setting)."""

# Per-side fields, from the strike outwards; "{u}" is the count unit's short label.
SIDE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("ltp", "LTP", "right"),
    ("chg", "Chg", "right"),
    ("iv", "IV %", "right"),
    ("delta", "Delta", "right"),
    ("oi", "OI ({u})", "right"),
    ("oi_chg", "ΔOI ({u})", "right"),
    ("vol", "Vol ({u})", "right"),
    ("bu", "Bu", "left"),
    ("q", "Flag", "left"),
)
COMPACT_FIELDS: tuple[str, ...] = ("ltp", "chg", "oi_chg", "bu")
"""The fields kept when the chain must fit 80 columns: enough to check each buildup label
(price change and OI change); OI itself needs the wide layout."""

DROP_ORDER: tuple[str, ...] = ("q", "vol", "delta", "iv")
"""Fields left out of both sides, first to last, while the wide chain is wider than its panel
(120-159 columns): at 120 the puts' OI, OI change and buildup were past the right edge while
the calls' showed, so call and put OI could not be read side by side."""

FLAG_WIDTH = QUALITY_MARK_WIDTH
"""The Flag column's width when fitting the chain: the widest mark, so the columns shown do not
flip as flags come and go and no mark runs past the panel's edge."""

_BUILDUP_STYLE = {"LB": "green", "SC": "green", "SB": "red", "LU": "red"}
_UNIT_LABEL = {"lakh": "L", "lots": "lots"}


def chain_columns(compact: bool = False, oi_unit: str = "lakh") -> list[tuple[str, str, str]]:
    """Column keys and labels: calls reversed (outer to inner), strike, puts (inner to outer).

    Labels carry no side prefix: the strike column splits calls (left) from puts (right).
    """
    unit = _UNIT_LABEL.get(oi_unit, "L")
    fields = [
        (key, label.format(u=unit), justify)
        for key, label, justify in SIDE_FIELDS
        if not compact or key in COMPACT_FIELDS
    ]
    calls = [(f"c_{key}", label, justify) for key, label, justify in reversed(fields)]
    puts = [(f"p_{key}", label, justify) for key, label, justify in fields]
    return [*calls, ("strike", "Strike", "center"), *puts]


def count_divisor(oi_unit: str, lot_size: int) -> float:
    """What a count is divided by for display: a lakh, or the lot size in "lots" mode.

    Without a known lot size, "lots" cannot be shown truthfully: NaN says so (cells show —).
    """
    if oi_unit == "lots":
        return float(lot_size) if lot_size > 0 else float("nan")
    return LAKH


def _sign_style(value: float) -> str:
    return "green" if value > 0 else "red" if value < 0 else ""


def leg_cells(leg: LegRecord | None, prefix: str, per: float = LAKH) -> dict[str, Cell]:
    """One side's cells for a strike (blank when that side was not quoted).

    `per` divides OI, OI change and volume (see count_divisor; NaN shows —). Every cell is a
    (text, style) pair, the table's own form, so an unchanged row compares equal to the shown
    one in a single dict comparison.
    """
    if leg is None:
        return {f"{prefix}{key}": ("", "") for key, _, _ in SIDE_FIELDS}
    code = buildup_short(leg.buildup)
    # Change against the previous close; with no close (a new strike) there is nothing to compare.
    price_chg = leg.net_change if leg.ohlc_close > 0 else float("nan")
    known = per == per  # NaN when lots were asked for but the lot size is unknown
    return {
        f"{prefix}ltp": (fmt_price(leg.last_price), "bold"),
        f"{prefix}chg": (fmt_signed(price_chg), _sign_style(price_chg)),
        f"{prefix}iv": (fmt_iv(leg.iv), ""),
        f"{prefix}delta": (fmt_delta(leg.delta), ""),
        f"{prefix}oi": (fmt_count(leg.oi if known else None, per), ""),
        f"{prefix}oi_chg": (
            fmt_count(leg.oi_change if known else None, per, signed=True),
            _sign_style(leg.oi_change),
        ),
        f"{prefix}vol": (fmt_count(leg.volume if known else None, per), ""),
        f"{prefix}bu": (code, _BUILDUP_STYLE.get(code, "")),
        f"{prefix}q": (quality_mark(leg.flags), "yellow" if leg.flags else ""),
    }


def chain_rows(
    legs: Sequence[LegRecord], index: str, bucket: str, per: float = LAKH,
    around: tuple[float, int] | None = None,
) -> dict[str, dict[str, Cell]]:
    """Rows keyed by strike, ascending, for the legs of one index and bucket.

    `per` divides the counts (see count_divisor). With `around` (atm, n), only the rows of
    the n strikes either side of the strike nearest `atm` (a finite price) among the bucket's
    strikes: the rows a StrikeWindow of fewer than n strikes each side can show. Only the
    legs of the rows made are read as records (optui.leg_rows).
    """
    mine = legs_where(legs, index=index, bucket=bucket)
    if around is not None and math.isfinite(around[0]) and mine:
        at, reach = around
        strikes = leg_values(mine, "strike")
        ordered = sorted(set(strikes))
        centre = nearest_index(ordered, at)
        keep = set(ordered[max(0, centre - reach):centre + reach + 1])
        mine = [mine[i] for i, k in enumerate(strikes) if k in keep]
    calls: dict[float, LegRecord] = {}
    puts: dict[float, LegRecord] = {}
    atm = float("nan")
    for leg in mine:
        (calls if leg.side == "CALL" else puts)[leg.strike] = leg
        atm = leg.atm_strike
    rows: dict[str, dict[str, Cell]] = {}
    for strike in sorted(set(calls) | set(puts)):
        is_atm = strike == atm
        row = {
            **leg_cells(calls.get(strike), "c_", per),
            "strike": (fmt_strike(strike), "bold reverse" if is_atm else "bold"),
            **leg_cells(puts.get(strike), "p_", per),
        }
        rows[f"{strike:g}"] = row
    return rows


class ChainTable(KeyedTable):
    """Strike rows updated in place; new strikes (the ATM moved) slot in by strike order.

    The panel keeps the height of the longest chain shown (KEEP_HEIGHT): with a full chain for
    the nearest expiry only, flipping to a short chain would otherwise shrink the panel, move
    every panel below it and relayout the whole screen on each key press. A newly selected chain
    opens scrolled so its ATM row sits mid-panel; after that the user's scrolling is kept.
    """

    KEEP_HEIGHT = True

    DEFAULT_CSS = """
    ChainTable { height: auto; max-height: 100%; overflow-x: auto; }
    """

    def __init__(self, compact: bool = False, oi_unit: str = "lakh", **kwargs: object) -> None:
        self.compact = compact
        self.oi_unit = oi_unit
        self.selection: tuple[str, str] = ("", "")
        self._all_columns = chain_columns(compact, oi_unit)
        self._shown_rows: dict[str, dict[str, Cell]] = {}
        """The rows last given to show_rows (every column), refitted on a resize."""
        super().__init__(self._all_columns, **kwargs)

    def show_legs(self, legs: Sequence[LegRecord], index: str, bucket: str) -> int:
        """Show the chain for (index, bucket); a new selection clears first. Returns cells written."""
        return self.show_rows(chain_rows(legs, index, bucket), index, bucket)

    def show_rows(
        self, rows: dict[str, dict[str, Cell]], index: str, bucket: str, atm_key: str = ""
    ) -> int:
        """Show rows already built by `chain_rows` (e.g. formatted in a worker).

        A new (index, bucket) replaces the rows and scrolls to `atm_key`'s row: at once when
        the panel keeps its size (the first frame shows the new chain where it stays, drawn
        once), and again once laid out, in case the panel's height changed after all (another
        panel grew); that second scroll is no change, and no frame, when it did not.
        """
        opened = (index, bucket) != self.selection
        if opened:
            self.clear_rows(layout=False)
            self.selection = (index, bucket)
        self._shown_rows = rows
        columns = self.fit_columns(rows, self.scrollable_content_region.width)
        self.set_columns(columns)
        if len(columns) < len(self._all_columns):  # rows of exactly the shown columns
            keys = [c[0] for c in columns]
            rows = {k: {c: row[c] for c in keys} for k, row in rows.items()}
        written = self.sync_rows(rows, sort_column="strike")
        if opened and atm_key in rows:
            if not self.box_changing and self.size:
                self.scroll_to_row(atm_key)
            self.call_after_refresh(self.scroll_to_row, atm_key)
        return written

    def fit_columns(self, rows: dict[str, dict[str, Cell]], width: int) -> list[tuple[str, str, str]]:
        """Every column, less DROP_ORDER's fields (both sides at once) until the rest of `rows`
        fits `width` (the Flag column counted FLAG_WIDTH wide); all of them while the width is
        unknown (0) and in the compact chain, whose fields are chosen for 80 columns."""
        columns = self._all_columns
        if self.compact or width <= 0 or not rows:
            return columns
        need = {}
        for key, label, _ in columns:
            if key.endswith("_q"):
                need[key] = max(len(label), FLAG_WIDTH)
            else:
                need[key] = max(len(label), *(len(cell_text(row.get(key, ""))) for row in rows.values()))

        def fits() -> bool:
            return sum(need[c[0]] for c in columns) + 2 * len(columns) + 1 <= width

        for drop in DROP_ORDER:
            if fits():
                break
            columns = [c for c in columns if c[0] not in (f"c_{drop}", f"p_{drop}")]
        return columns

    def on_resize(self, event: object) -> None:
        if self._shown_rows and not self.compact:
            self.show_rows(self._shown_rows, *self.selection)

    def scroll_to_row(self, key: str) -> None:
        """Scroll so the row `key` sits in the middle of the visible rows (under the header)."""
        if key not in self.row_keys:
            return
        visible = max(1, self.scrollable_content_region.height - 1)
        position = self.row_keys.index(key)
        self.scroll_to(y=max(0, position - (visible - 1) // 2), animate=False, immediate=True)


def all_chain_rows(
    snapshot: Snapshot, pause: Callable[[], object] | None = None, oi_unit: str = "lakh"
) -> dict[tuple[str, str], dict[str, dict[str, Cell]]]:
    """Chain rows for every (index, bucket) of a snapshot; pure, so a worker thread can run it.

    `pause` runs between chains: a worker passes `time.sleep(0)` so a key press waiting for the
    GIL gets it within one chain's formatting rather than after all of them. `oi_unit` is
    "lakh" or "lots" (each bucket's own lot size).
    """
    out: dict[tuple[str, str], dict[str, dict[str, Cell]]] = {}
    for key, idx in snapshot.indices.items():
        for bucket in dict.fromkeys(leg_column(idx.legs, "bucket")):  # in the order first met
            per = count_divisor(oi_unit, idx.lot_sizes.get(bucket, 0))
            out[(key, bucket)] = chain_rows(idx.legs, key, bucket, per)
            if pause is not None:
                pause()
    return out
