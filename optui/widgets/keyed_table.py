"""A DataTable that syncs rows by key, touching only cells whose text changed.

Rebuilding a table every tick makes it flicker, loses the cursor and rewrites the whole panel to
the terminal; over SSH the bytes matter. Rows are added, updated cell by cell, or removed by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text


def _plain(cell: Cell) -> tuple[str, str]:
    """What a cell looks like, for change detection: its text and its style."""
    if isinstance(cell, Text):
        return cell.plain, str(cell.style) + "|".join(str(s.style) for s in cell.spans)
    return cell, ""


class KeyedTable(DataTable):
    """DataTable with `sync_rows`: keyed in-place updates instead of clear-and-refill."""

    DEFAULT_CSS = """
    KeyedTable { height: auto; max-height: 100%; }
    """

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(zebra_stripes=True, cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self._column_keys = [key for key, _ in columns]
        for key, label in columns:
            self.add_column(label, key=key)
        self._shown: dict[str, dict[str, tuple[str, str]]] = {}

    @property
    def column_keys(self) -> list[str]:
        return list(self._column_keys)

    @property
    def row_keys(self) -> list[str]:
        return list(self._shown)

    def sync_rows(
        self,
        rows: Mapping[str, Mapping[str, Cell]],
        sort_column: str | None = None,
    ) -> int:
        """Make the table show `rows` (row key -> column key -> cell); return cells written.

        Rows absent from `rows` are removed and new ones added. When rows were added and
        `sort_column` (a column unique per row, such as the strike) is given, rows are put back in
        the order of `rows`, so a new strike appears in its place rather than at the bottom.
        """
        written = 0
        for key in [k for k in self._shown if k not in rows]:
            self.remove_row(key)
            del self._shown[key]
        added = False
        for key, all_cells in rows.items():
            # Callers may pass more cells than a compact table has columns.
            cells = {col: all_cells[col] for col in self._column_keys if col in all_cells}
            shown = self._shown.get(key)
            if shown is None:
                values = [cells.get(col, "") for col in self._column_keys]
                self.add_row(*values, key=key)
                self._shown[key] = {col: _plain(cells.get(col, "")) for col in self._column_keys}
                written += len(values)
                added = True
                continue
            for col, cell in cells.items():
                look = _plain(cell)
                if shown.get(col) != look:
                    self.update_cell(key, col, cell)
                    shown[col] = look
                    written += 1
        if added and sort_column is not None and len(rows) > 1:
            rank = {self._shown[key][sort_column][0]: i for i, key in enumerate(rows)}
            self.sort(sort_column, key=lambda cell: rank.get(_plain(cell)[0], len(rank)))
        return written

    def clear_rows(self) -> None:
        """Drop every row (selection changed to another index or bucket)."""
        self.clear()
        self._shown.clear()

