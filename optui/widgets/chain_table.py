"""Option legs of one index and bucket in the familiar chain layout: calls | strike | puts.

Calls mirror puts around the strike column as on NSE's option chain, so the premiums sit next to
the strike and open interest at the outer edges. OI and volume are in lakhs (the header says so).
"""

from __future__ import annotations

from collections.abc import Callable

from optui.models import LegRecord, Snapshot
from optui.widgets.format import (
    buildup_short,
    fmt_delta,
    fmt_iv,
    fmt_lakh,
    fmt_price,
    fmt_strike,
    quality_mark,
)
from optui.widgets.keyed_table import Cell, KeyedTable

# Per-side fields, from the strike outwards.
SIDE_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("ltp", "LTP", "right"),
    ("iv", "IV %", "right"),
    ("delta", "Delta", "right"),
    ("oi", "OI (L)", "right"),
    ("oi_chg", "ΔOI (L)", "right"),
    ("vol", "Vol (L)", "right"),
    ("bu", "Bu", "left"),
    ("q", "Flag", "left"),
)
COMPACT_FIELDS: tuple[str, ...] = ("ltp", "iv", "oi", "oi_chg", "bu")
"""The fields kept when the chain must fit 80 columns."""

_BUILDUP_STYLE = {"LB": "green", "SC": "green", "SB": "red", "LU": "red"}


def chain_columns(compact: bool = False) -> list[tuple[str, str, str]]:
    """Column keys and labels: calls reversed (outer to inner), strike, puts (inner to outer).

    Labels carry no side prefix: the strike column splits calls (left) from puts (right).
    """
    fields = [f for f in SIDE_FIELDS if not compact or f[0] in COMPACT_FIELDS]
    calls = [(f"c_{key}", label, justify) for key, label, justify in reversed(fields)]
    puts = [(f"p_{key}", label, justify) for key, label, justify in fields]
    return [*calls, ("strike", "Strike", "center"), *puts]


def leg_cells(leg: LegRecord | None, prefix: str) -> dict[str, Cell]:
    """One side's cells for a strike (blank when that side was not quoted).

    Every cell is a (text, style) pair, the table's own form, so an unchanged row compares equal
    to the shown one in a single dict comparison.
    """
    if leg is None:
        return {f"{prefix}{key}": ("", "") for key, _, _ in SIDE_FIELDS}
    code = buildup_short(leg.buildup)
    chg_style = "green" if leg.oi_change > 0 else "red" if leg.oi_change < 0 else ""
    return {
        f"{prefix}ltp": (fmt_price(leg.last_price), "bold"),
        f"{prefix}iv": (fmt_iv(leg.iv), ""),
        f"{prefix}delta": (fmt_delta(leg.delta), ""),
        f"{prefix}oi": (fmt_lakh(leg.oi), ""),
        f"{prefix}oi_chg": (fmt_lakh(leg.oi_change, signed=True), chg_style),
        f"{prefix}vol": (fmt_lakh(leg.volume), ""),
        f"{prefix}bu": (code, _BUILDUP_STYLE.get(code, "")),
        f"{prefix}q": (quality_mark(leg.flags), "yellow" if leg.flags else ""),
    }


def chain_rows(legs: list[LegRecord], index: str, bucket: str) -> dict[str, dict[str, Cell]]:
    """Rows keyed by strike, ascending, for the legs of one index and bucket."""
    calls: dict[float, LegRecord] = {}
    puts: dict[float, LegRecord] = {}
    atm = float("nan")
    for leg in legs:
        if leg.index != index or leg.bucket != bucket:
            continue
        (calls if leg.side == "CALL" else puts)[leg.strike] = leg
        atm = leg.atm_strike
    rows: dict[str, dict[str, Cell]] = {}
    for strike in sorted(set(calls) | set(puts)):
        is_atm = strike == atm
        row = {
            **leg_cells(calls.get(strike), "c_"),
            "strike": (fmt_strike(strike), "bold reverse" if is_atm else "bold"),
            **leg_cells(puts.get(strike), "p_"),
        }
        rows[f"{strike:g}"] = row
    return rows


class ChainTable(KeyedTable):
    """Strike rows updated in place; new strikes (the ATM moved) slot in by strike order.

    The panel keeps the height of the longest chain shown (KEEP_HEIGHT): with a full chain for
    the nearest expiry only, flipping to a short chain would otherwise shrink the panel, move
    every panel below it and relayout the whole screen on each key press.
    """

    KEEP_HEIGHT = True

    DEFAULT_CSS = """
    ChainTable { height: auto; max-height: 100%; overflow-x: auto; }
    """

    def __init__(self, compact: bool = False, **kwargs: object) -> None:
        self.compact = compact
        self.selection: tuple[str, str] = ("", "")
        super().__init__(chain_columns(compact), **kwargs)

    def show_legs(self, legs: list[LegRecord], index: str, bucket: str) -> int:
        """Show the chain for (index, bucket); a new selection clears first. Returns cells written."""
        return self.show_rows(chain_rows(legs, index, bucket), index, bucket)

    def show_rows(self, rows: dict[str, dict[str, Cell]], index: str, bucket: str) -> int:
        """Show rows already built by `chain_rows` (e.g. formatted in a worker)."""
        if (index, bucket) != self.selection:
            self.clear_rows(layout=False)
            self.selection = (index, bucket)
        return self.sync_rows(rows, sort_column="strike")


def all_chain_rows(
    snapshot: Snapshot, pause: Callable[[], object] | None = None
) -> dict[tuple[str, str], dict[str, dict[str, Cell]]]:
    """Chain rows for every (index, bucket) of a snapshot; pure, so a worker thread can run it.

    `pause` runs between chains: a worker passes `time.sleep(0)` so a key press waiting for the
    GIL gets it within one chain's formatting rather than after all of them.
    """
    out: dict[tuple[str, str], dict[str, dict[str, Cell]]] = {}
    for key, idx in snapshot.indices.items():
        by_bucket: dict[str, list[LegRecord]] = {}
        for leg in idx.legs:
            by_bucket.setdefault(leg.bucket, []).append(leg)
        for bucket, legs in by_bucket.items():
            out[(key, bucket)] = chain_rows(legs, key, bucket)
            if pause is not None:
                pause()
    return out
