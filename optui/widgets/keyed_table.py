"""A keyed live table: rows added, updated cell by cell, or removed by key; each row's line cached.

Textual's DataTable re-renders every visible cell whenever any cell changes (its render caches
are keyed on a global update counter), which at a full option chain costs hundreds of
milliseconds per tick. Here each row keeps its rendered line until one of its cells changes, and
only changed lines are refreshed, so a tick costs the rows that moved, on screen and on the wire.

Each row also keeps its finished line (inside the panel's border, line filters applied) by row
key (optui.widgets.finished_lines): a scroll costs the scrollbar and the rows scrolled into view.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.strip import Strip

from optui.widgets.finished_lines import FinishedLines
from optui.widgets.frame_now import ScrollsDrawnNow

StyledCell = tuple[str, str]
"""(text, Rich style string): cheap to build, compare and render, unlike a Rich Text per cell."""
Cell = str | StyledCell

_GAP = 2
"""Spaces between columns."""

_PAD = "\0pad"
"""The look of the blank that pads a line to the view's width (drawn in the pad style)."""


@dataclass
class _Viewport:
    """Rows top..bottom (exclusive) are on screen; regions to repaint gather here."""

    top: int
    bottom: int
    scroll_x: int
    width: int
    """Columns shown, left of a vertical scrollbar."""
    regions: list[Region] = field(default_factory=list)
    relayout: bool = False
    """A column grew: every line must be redrawn at the new widths."""


_TEXT = operator.itemgetter(0)
"""A styled cell's text."""


def cell_text(cell: Cell) -> str:
    """The characters a cell shows."""
    return cell if isinstance(cell, str) else cell[0]


@functools.lru_cache(maxsize=256)
def blank_invisible(style: str) -> bool:
    """Whether a blank drawn in `style` looks the same as one drawn without it: only the
    foreground, bold, dim and italic change (none of which marks a blank), no background,
    reverse, underline, strike or frame."""
    parsed = Style.parse(style)
    return parsed.bgcolor is None and not any((
        parsed.reverse, parsed.underline, parsed.underline2, parsed.strike, parsed.overline,
        parsed.blink, parsed.blink2, parsed.conceal, parsed.frame, parsed.encircle))


def _look(cell: Cell) -> StyledCell:
    return (cell, "") if isinstance(cell, str) else cell


class KeyedTable(ScrollsDrawnNow, FinishedLines, can_focus=True):
    """A header line and keyed rows; arrow keys and Page Up/Down scroll when focused."""

    DEFAULT_CSS = """
    KeyedTable { height: auto; max-height: 100%; }
    KeyedTable > .keyed-table--header { text-style: bold; color: $text-accent; }
    """
    COMPONENT_CLASSES = {"keyed-table--header"}
    KEEP_HEIGHT = False
    """Keep the scroll height of the most rows shown so far, so the box never shrinks back:
    swapping a long row set for a short one then costs no relayout of the screen around it."""
    BINDINGS = [
        Binding("up", "scroll_up", "Up", show=False),
        Binding("down", "scroll_down", "Down", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("end", "scroll_end", "Bottom", show=False),
    ]

    def __init__(self, columns: Sequence[tuple[str, ...]], **kwargs: object) -> None:
        """`columns`: (key, label) or (key, label, justify) with justify left, right or center."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._column_keys = [c[0] for c in columns]
        self._key_set = set(self._column_keys)
        self._labels = {c[0]: c[1] for c in columns}
        self._justify = {c[0]: (c[2] if len(c) > 2 else "left") for c in columns}
        self._widths = {c[0]: len(c[1]) for c in columns}
        self._cells: dict[str, dict[str, StyledCell]] = {}
        self._order: list[str] = []
        self._position: dict[str, int] = {}
        self._strips: dict[str, Strip] = {}
        self._header: Strip | None = None
        self._base_style: Style | None = None
        self._view: tuple[int, int] = (-1, -1)
        self._layout_pending = False
        self._tallest = 0
        self._column_starts: list[int] | None = None
        self._row_styles: dict[str, Style] = {}
        self.box_changing = True
        """The last change of rows resized the widget: its size is known after the next layout."""
        self.lines_refreshed = 0
        """Row lines marked for repaint so far (the benchmark reads it)."""

    # ---- the keyed API ---------------------------------------------------------------

    @property
    def column_keys(self) -> list[str]:
        return list(self._column_keys)

    @property
    def row_keys(self) -> list[str]:
        return list(self._order)

    @property
    def rows(self) -> dict[str, dict[str, StyledCell]]:
        return {key: dict(self._cells[key]) for key in self._order}

    @property
    def row_count(self) -> int:
        return len(self._order)

    def get_cell(self, row_key: str, column_key: str) -> StyledCell:
        return self._cells[row_key][column_key]

    def add_row(self, key: str, cells: Mapping[str, Cell], *, layout: bool = True,
                measure: bool = True) -> None:
        """Append a row; `layout=False` defers the relayout to the caller (batch adds),
        `measure=False` the widening of columns (_measure_all)."""
        if self._styled(cells):
            # Already (text, style) for every column (chain rows are): kept as given (see
            # _update_row), as a switch of index or bucket adds a whole chain of them.
            self._cells[key] = cells  # type: ignore[assignment]
        else:
            self._cells[key] = {col: _look(cells.get(col, "")) for col in self._column_keys}
        self._position[key] = len(self._order)
        self._order.append(key)
        if measure:
            self._measure(self._cells[key])
        if layout:
            self._layout_changed()

    def remove_row(self, key: str, *, layout: bool = True) -> None:
        self._cells.pop(key, None)
        self._strips.pop(key, None)
        self._finished.pop(key, None)
        self._order.remove(key)
        self._position = {k: i for i, k in enumerate(self._order)}
        if layout:
            self._layout_changed()

    def update_cell(self, row_key: str, column_key: str, value: Cell) -> bool:
        """Set one cell; returns whether it looked different (only then is it repainted)."""
        view = self._viewport()
        changed = self._update_row(row_key, {column_key: value}, view)
        self._flush(view)
        return bool(changed)

    def _styled(self, cells: Mapping[str, Cell]) -> bool:
        """Whether `cells` is a plain dict of a (text, style) pair for every column: such a row
        is kept as given rather than copied, so the caller must not change it afterwards (chain
        rows are made afresh for every cycle)."""
        return (type(cells) is dict and cells.keys() == self._key_set
                and str not in map(type, cells.values()))

    def _update_row(self, row_key: str, cells: Mapping[str, Cell], view: _Viewport) -> int:
        """Set cells of one row and mark the span from the first to the last changed cell.

        One region per row rather than per cell keeps a full-chain tick cheap on the event loop,
        and the span still leaves unchanged columns off the wire. Rows scrolled out of view only
        store their cells: they are drawn when scrolled in. A row of (text, style) pairs for
        every column (see _styled) replaces the kept one whole, compared column by column in C.
        """
        row = self._cells[row_key]
        if row == cells:  # the steady state for a row of styled cells, compared in C
            return 0
        if self._styled(cells):
            if self._measure(cells):  # type: ignore[arg-type]
                view.relayout = True
            return self._replace_row(row_key, cells, view)  # type: ignore[arg-type]
        row = self._cells[row_key] = dict(row)  # a row kept as given is never changed in place
        first = last = -1
        changed = 0
        grew = False
        widths = self._widths
        for i, col in enumerate(self._column_keys):
            value = cells.get(col)
            if value is None:
                continue
            look = value if isinstance(value, tuple) else (value, "")
            if row[col] != look:
                row[col] = look
                changed += 1
                if len(look[0]) > widths[col]:
                    widths[col] = len(look[0])
                    grew = True
                if first < 0:
                    first = i
                last = i
        if not changed:
            return 0
        self._strips.pop(row_key, None)
        if grew:
            view.relayout = True
        else:
            self._mark_span(row_key, first, last, view)
        return changed

    def _replace_row(self, row_key: str, cells: dict[str, StyledCell], view: _Viewport) -> int:
        """Keep a whole row of styled cells as given (its columns already widened for it) and
        mark its changed span when it is on screen; returns cells changed, compared in C."""
        row = self._cells[row_key]
        if row is cells or row == cells:
            return 0
        keys = self._column_keys
        self._cells[row_key] = cells
        self._strips.pop(row_key, None)
        diffs = list(map(operator.ne, map(row.__getitem__, keys), map(cells.__getitem__, keys)))
        if not view.relayout and view.top <= self._position[row_key] < view.bottom:
            first = diffs.index(True)
            self._mark_span(row_key, first, len(diffs) - 1 - diffs[::-1].index(True), view)
        return diffs.count(True)

    def sync_rows(
        self, rows: Mapping[str, Mapping[str, Cell]], sort_column: str | None = None
    ) -> int:
        """Make the table show `rows` (row key -> column key -> cell); return cells written.

        Rows absent from `rows` are removed and new ones added; when rows were added the table
        takes the order of `rows` (so a new strike appears in its place, not at the bottom).
        `sort_column` is accepted for callers that name the ordering column. When every row is
        a dict of styled cells (see _styled: a chain) the columns are widened for all of them
        at once and each changed row is kept as given.
        """
        written = 0
        gone = [k for k in self._order if k not in rows]
        for key in gone:
            self.remove_row(key, layout=False)
        added = False
        view = self._viewport()
        fresh = not self._cells  # a new selection: every row is added (measured at once below)
        styled = bool(rows) and all(map(self._styled, rows.values()))
        if styled and self._measure_all(rows.values()):  # type: ignore[arg-type]
            view.relayout = True
        for key, cells in rows.items():
            if key not in self._cells:
                self.add_row(key, cells, layout=False, measure=not (fresh or styled))
                written += len(self._column_keys)
                added = True
            elif styled:
                written += self._replace_row(key, cells, view)  # type: ignore[arg-type]
            else:
                written += self._update_row(key, cells, view)
        if fresh and self._cells and not styled:
            self._measure_all(self._cells.values())
        if added and list(rows) != self._order:
            self._order = [k for k in rows if k in self._cells]
            self._position = {k: i for i, k in enumerate(self._order)}
        if added or gone or self._layout_pending or view.relayout:
            self._layout_changed()
        else:
            self._flush(view)
        return written

    def set_columns(self, columns: Sequence[tuple[str, ...]]) -> None:
        """Show these columns (as in the constructor) from now on, keeping the rows' cells of
        those still shown; nothing is done when the keys and labels are unchanged."""
        keys = [c[0] for c in columns]
        if keys == self._column_keys and all(self._labels[c[0]] == c[1] for c in columns):
            return
        self._column_keys = keys
        self._key_set = set(keys)
        self._labels = {c[0]: c[1] for c in columns}
        self._justify = {c[0]: (c[2] if len(c) > 2 else "left") for c in columns}
        self._cells = {k: {col: row.get(col, ("", "")) for col in keys}
                       for k, row in self._cells.items()}
        self._strips.clear()
        self._widths = {c[0]: len(c[1]) for c in columns}
        for row in self._cells.values():
            self._measure(row)
        self._layout_changed()

    def refit_columns(self) -> None:
        """Size every column to its label and the cells it holds now (columns only ever widen
        as cells change; a table that stopped showing a wide cell shrinks back here)."""
        widths = {col: len(label) for col, label in self._labels.items()}
        for row in self._cells.values():
            for col, (text, _) in row.items():
                widths[col] = max(widths[col], len(text))
        if widths != self._widths:
            self._widths = widths
            self._layout_changed()

    def clear_rows(self, *, layout: bool = True) -> None:
        """Drop every row (selection changed to another index or bucket).

        `layout=False` leaves the sizing to the next `sync_rows`, so replacing a table's rows
        costs one size change (often none) rather than shrinking to nothing and growing back.
        """
        self._cells.clear()
        self._strips.clear()
        self._finished.clear()
        self._order.clear()
        self._position.clear()
        if layout:
            self._layout_changed()
        else:
            self._layout_pending = True

    clear = clear_rows

    # ---- rendering -------------------------------------------------------------------

    def _measure(self, cells: Mapping[str, StyledCell]) -> bool:
        """Widen columns for new cells; True when a width changed (every line must redraw).

        Cells hold single-width characters only (digits, ₹, —, ▶), so len() is the cell width.
        """
        grew = False
        widths = self._widths
        for col, (text, _) in cells.items():
            if len(text) > widths[col]:
                widths[col] = len(text)
                grew = True
        return grew

    def _measure_all(self, rows: Collection[Mapping[str, StyledCell]]) -> bool:
        """Widen columns for every row of `rows` (one pass per column in C, for a whole chain);
        True when a width changed."""
        widths = self._widths
        grew = False
        for col in self._column_keys:
            widest = max(map(len, map(_TEXT, map(operator.itemgetter(col), rows))))
            if widest > widths[col]:
                widths[col] = widest
                grew = True
        return grew

    @property
    def _total_width(self) -> int:
        return sum(self._widths.values()) + _GAP * len(self._widths) + 1

    def _layout_changed(self) -> None:
        self._layout_pending = False
        self._column_starts = None
        self._strips.clear()
        self._finished.clear()
        self._header = None
        lines = len(self._order) + 1
        if self.KEEP_HEIGHT:
            self._tallest = lines = max(self._tallest, lines)
        size = Size(self._total_width, lines)
        self.lines_refreshed += len(self._order) + 1
        if self.scroll_y > self.max_scroll_y:  # fewer rows now: keep the last ones in view
            self.scroll_y = self.max_scroll_y
        self.box_changing = False
        if size == self.virtual_size:
            self.refresh()
        elif self._same_box(size):
            # Only the scroll range changed: a relayout would reflow and repaint the whole screen
            # (tens of ms at a full chain) for a widget whose box stays where it is.
            self.set_reactive(KeyedTable.virtual_size, size)
            self._scroll_update(size)
            self.refresh()
        else:
            self.box_changing = True
            self.virtual_size = size

    @property
    def max_scroll_y(self) -> int:
        """Scrolling stops at the last row, not at the end of the kept height (KEEP_HEIGHT)."""
        shown = self.container_size.height - self.scrollbar_size_horizontal
        return max(0, len(self._order) + 1 - shown)

    def _same_box(self, size: Size) -> bool:
        """Whether the widget keeps its size with content of `size`: then no relayout is needed.

        True when the width is unchanged, or does not follow the content and the content
        overflowed the box before and still does, or fitted and still fits (a column of the
        chain grew: only the horizontal scroll range changes, no scrollbar comes or goes), and
        the height does not follow the content, or follows it but was clipped by max-height
        before and still is (the chain shows a window of rows).
        """
        if not self.is_mounted or not self.size:
            return False
        if size.width != self.virtual_size.width:
            width = self.styles.width
            if width is not None and width.is_auto:
                return False
            box = self.size.width
            if (self.virtual_size.width > box) != (size.width > box):
                return False  # a horizontal scrollbar comes or goes
        height = self.styles.height
        if height is not None and not height.is_auto:
            return True
        shown = self.size.height + 1  # a horizontal scrollbar can take a line of the box
        return self.virtual_size.height > shown and size.height > shown

    def _viewport(self) -> _Viewport:
        """Which rows are on screen now, read once per update rather than once per row.

        Rows end above a horizontal scrollbar: a row scrolled under it is not shown, and
        marking it would repaint the scrollbar (drawn cell by cell: ~4 KB on the wire).
        """
        scroll_x, scroll_y = self.scroll_offset
        top = int(scroll_y)
        shown = self.size.height - self.scrollbar_size_horizontal
        width = self.size.width - self.scrollbar_size_vertical
        return _Viewport(top, top + max(0, shown - 1), int(scroll_x), width)

    def _mark_span(self, key: str, first: int, last: int, view: _Viewport) -> None:
        """Queue a repaint of columns first..last of one row, as far as it is on screen (never
        under a scrollbar)."""
        position = self._position[key]
        if not view.top <= position < view.bottom:
            return
        starts = self._column_starts
        if starts is None:
            starts = [1]
            for col in self._column_keys:
                starts.append(starts[-1] + self._widths[col] + _GAP)
            self._column_starts = starts
        left = max(0, starts[first] - view.scroll_x)
        right = min(view.width, starts[last + 1] - view.scroll_x)
        if right <= left:  # scrolled out of view sideways (or under the vertical scrollbar)
            return
        self.lines_refreshed += 1
        view.regions.append(Region(left, position + 1 - view.top, right - left, 1))

    def _flush(self, view: _Viewport) -> None:
        if view.relayout:
            self._layout_changed()
        elif view.regions:
            self.refresh(*view.regions)

    def _line(
        self, cells: Mapping[str, StyledCell], base: Style, styles: dict[str, Style],
        view: tuple[int, int] | None = None, pad: Style | None = None,
    ) -> Strip:
        """One row's strip, neighbours with the same style merged (fewer escape codes); with
        `view` (start, end) the columns start..end only, blank-padded to end in `pad` (default
        `base`) (what
        Strip.crop_extend makes of the whole line, cut here in the text: cropping a Strip
        split and rebuilt its segments, more than the line itself cost).

        The gap after a cell takes the cell's style when that style cannot show on a blank
        (see blank_invisible): a bold LTP, the bold strike and the next bold LTP are then one
        segment, not five; every segment costs a full truecolor escape sequence on the wire
        and a pass through Textual's line filters.

        `styles` caches each style string combined with `base`: parsing and combining Rich
        styles per cell was a third of a full-chain repaint.
        """
        texts: list[str] = [" "]
        looks: list[str] = [""]
        gap = " " * _GAP
        widths = self._widths
        justify = self._justify
        for col in self._column_keys:
            text, style = cells.get(col, ("", ""))
            width = widths[col]
            how = justify[col]
            if how == "right":
                text = text.rjust(width)
            elif how == "center":
                text = text.center(width)
            else:
                text = text.ljust(width)
            if looks[-1] == style:
                texts[-1] += text
            else:
                texts.append(text)
                looks.append(style)
            if not style or blank_invisible(style):
                texts[-1] += gap
            else:
                texts.append(gap)
                looks.append("")
        # Cells hold single-width characters only, so a length is a cell length.
        length = sum(map(len, texts))
        if view is not None:
            start, end = view
            if length < end:
                texts.append(" " * (end - length))
                looks.append(_PAD)
            cut_texts: list[str] = []
            cut_looks: list[str] = []
            pos = 0
            for text, style in zip(texts, looks, strict=True):
                stop = pos + len(text)
                if stop > start and pos < end:
                    cut_texts.append(text[max(0, start - pos):end - pos])
                    cut_looks.append(style)
                pos = stop
            texts, looks, length = cut_texts, cut_looks, max(0, end - start)
        segments = []
        for text, style in zip(texts, looks, strict=True):
            if style is _PAD:
                segments.append(Segment(text, base if pad is None else pad))
                continue
            rich = styles.get(style)
            if rich is None:
                rich = styles[style] = base + self.app.console.get_style(style) if style else base
            segments.append(Segment(text, rich))
        return Strip(segments, length)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        return self._content_line(y, int(scroll_x), int(scroll_y), self.size.width)

    def _content_line(self, y: int, scroll_x: int, scroll_y: int, width: int) -> Strip:
        """Content line `y` (0: the header) at the given scroll offset and content width."""
        # rich_style walks the DOM for the background; it only changes with the CSS.
        base = self._base_style
        if base is None:
            base = self._base_style = self.rich_style
            self._row_styles = {}
        view = (scroll_x, width)
        if view != self._view:
            # Lines are cached cropped to the view: a horizontal scroll or resize redraws them.
            self._view = view
            self._strips.clear()
            self._header = None
        if y == 0:
            if self._header is None:
                style = base + self.get_component_rich_style("keyed-table--header")
                labels = {c: (self._labels[c], "") for c in self._column_keys}
                self._header = self._line(labels, style, {}, (view[0], view[0] + width), base)
            return self._header
        index = y - 1 + scroll_y
        if index >= len(self._order):
            return Strip.blank(width, base)
        key = self._order[index]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line(self._cells[key], base, self._row_styles,
                                                   (view[0], view[0] + width))
        return strip

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self._header = None
        self._base_style = None
