"""A compositor whose partial updates draw only the lines and widgets that show a change.

Textual's compositor answers a partial update (some cells changed) by drawing every widget that
overlaps the box around all the changed regions, each over its whole height, cutting every
drawn line at every widget edge, and then writing the changed spans from those pieces. On the
dashboard a cycle changes the header's age, the overview, the chain and the health panel's
subtitle: the box is the whole screen, so every widget (the screen, containers, panels under
other panels) drew all of its lines to repaint a few dozen spans.

`SpanCompositor.render_partial_update` leaves the terminal as Textual's update does, from less:
on each changed line it keeps the pieces (chops, cut where widgets start and end) that overlap a
changed span, asks each widget, front to back, only for the lines on which it is the front-most
widget of such a piece, and writes each widget's pieces of a span as one cut of its line, back
to front (the widgets in front overwrite what lies under them). Full updates (a layout, a
resize) and what is exported as a screenshot are Textual's own.

It reads Textual's compositor internals (`_dirty_regions`, `_regions_to_spans`, `cuts`,
`visible_widgets`), checked against Textual 8.2. Should a Textual release change them, the first
partial update that fails on them logs a warning and the compositor draws as Textual's own from
then on: slower, never wrong.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.control import Control
from rich.segment import Segment
from textual._compositor import Compositor, CompositorUpdate
from textual.geometry import Region
from textual.strip import Strip

log = logging.getLogger(__name__)

Piece = tuple[int, Strip]
"""(x, the cells written from x) on one screen line."""


class SpanUpdate(CompositorUpdate):
    """The changed spans of the screen: per span of line y, the pieces written on it in order
    (see SpanCompositor._line_pieces)."""

    def __init__(self, lines: list[tuple[int, list[Piece]]]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        move_to = Control.move_to
        new_line = Segment.line()
        last_y = self.lines[-1][0] if self.lines else -1
        for y, pieces in self.lines:
            for x, strip in pieces:
                yield move_to(x, y).segment
                yield from strip
            if y != last_y:
                yield new_line

    def render_segments(self, console: Console) -> str:
        """The update as the terminal receives it (cursor moves and styled text)."""
        out: list[str] = []
        append = out.append
        move_to = Control.move_to
        last_y = self.lines[-1][0] if self.lines else -1
        for y, pieces in self.lines:
            for x, strip in pieces:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
            if y != last_y:
                append("\n")
        return "".join(out)


class SpanCompositor(Compositor):
    """Textual's Compositor, drawing a partial update's changed lines only (module docstring)."""

    textual_drawing = False
    """True once Textual's internals were found to differ: partial updates are Textual's own."""

    def render_partial_update(self) -> Any:
        """The changed spans of the screen (a SpanUpdate), or None when nothing changed; after
        Textual's internals were found to differ, Textual's own partial update."""
        if self.textual_drawing:
            return super().render_partial_update()
        try:
            update_regions = self._dirty_regions.copy()
            if not update_regions:
                self._dirty_regions.clear()
                return None
            spans = list(self._regions_to_spans(update_regions))
            pieces = self._span_pieces(spans)
        except (AttributeError, TypeError) as exc:  # a Textual whose compositor differs
            log.warning("drawing changed lines as Textual does: its compositor differs from "
                        "the one the dashboard's partial updates were written for (%s)", exc)
            self.textual_drawing = True
            return super().render_partial_update()
        self._dirty_regions.clear()
        return SpanUpdate(pieces)

    def _span_pieces(self, spans: list[tuple[int, int, int]]) -> list[tuple[int, list[Piece]]]:
        """Per span, in order, its line and the pieces written on it.

        A chop runs from one cut of its line to the next; the front-most widget covering it
        draws it (as Textual's _render_chops fills it: the first render for a cut wins).
        """
        cuts = self.cuts
        height = len(cuts)
        wanted: dict[int, dict[int, int]] = {}  # line -> chop start -> chop end, still to draw
        for y, x1, x2 in spans:
            if not 0 <= y < height:
                continue
            cut_set = cuts[y]
            line = wanted.setdefault(y, {})
            for x, end in pairwise(cut_set):
                if x < x2 and end > x1:
                    line[x] = end
        drawn: dict[int, dict[int, tuple[Strip, int, int]]] = {y: {} for y in wanted}
        wanted = {y: line for y, line in wanted.items() if line}
        intersection = Region.intersection
        for depth, (widget, (region, clip)) in enumerate(self.visible_widgets.items()):
            if not wanted:
                break
            x0, top, width, lines = intersection(region, clip)
            if not (width and lines):
                continue
            right = x0 + width
            rows = [y for y in range(top, top + lines)
                    if y in wanted and any(x0 <= x < right for x in wanted[y])]
            start = 0
            while start < len(rows):  # runs of consecutive lines, one render each
                end = start + 1
                while end < len(rows) and rows[end] == rows[end - 1] + 1:
                    end += 1
                y0 = rows[start]
                strips = widget.render_lines(
                    Region(x0 - region.x, y0 - region.y, width, end - start))
                for y, strip in zip(range(y0, y0 + end - start), strips, strict=False):
                    todo = wanted[y]
                    mine = [x for x in todo if x0 <= x < right]
                    for x in mine:
                        drawn[y][x] = (strip, x0, depth)
                        del todo[x]
                    if not todo:
                        del wanted[y]
                start = end
        return [(y, self._line_pieces(cuts[y], drawn[y], x1, x2) if 0 <= y < height else [])
                for y, x1, x2 in spans]

    @staticmethod
    def _line_pieces(cut_set: list[int], drawn: dict[int, tuple[Strip, int, int]], x1: int,
                     x2: int) -> list[Piece]:
        """The pieces written for span x1..x2 of a line: each widget's chops overlapping it as
        one piece, from its first chop's start up to the span's end, back to front.

        Between a widget's first and last chop here, every chop it does not draw is drawn by a
        widget in front of it, written after it: the screen ends as Textual's chop by chop
        writing leaves it, with one cut of a widget's line instead of one per chop (a table's
        row under its scrollbar is written whole, then the scrollbar over it).
        """
        runs: dict[int, list[Any]] = {}  # depth -> [first chop start, last chop end, strip, x]
        for x, end in pairwise(cut_set):
            if x < x2 and end > x1 and x in drawn:
                strip, at, depth = drawn[x]
                run = runs.get(depth)
                if run is None:
                    runs[depth] = [x, end, strip, at]
                else:
                    run[1] = end
        pieces: list[Piece] = []
        for depth in sorted(runs, reverse=True):
            x, end, strip, at = runs[depth]
            pieces.append((x, strip.crop(x - at, min(end, x2) - at)))
        return pieces


__all__ = ["SpanCompositor", "SpanUpdate"]
