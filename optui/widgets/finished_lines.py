"""Finished lines of a table: a content line finished for the screen as Textual finishes it.

A scrolled table moves every row to another y, and Textual keeps finished lines (inside the
widget's border, line filters applied) by their y on screen: a scroll would redraw every visible
row. `FinishedLines` keeps each row's finished line by row key instead; a scrolled row comes back
as the same line object, whose own caches (cut at the panel's edges, rendered to escape codes)
the compositor then reuses: a scroll costs the scrollbar and the rows scrolled into view.

A content line that must be drawn is finished here (`_Frame`: its border segments around it,
the app's line filters) rather than through Textual's per-line styling, once that gives the very
line Textual gave for one of them (`FinishedLines._learn_frame`). `LineScrollBar` keeps each of
a scrollbar's few distinct lines likewise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.color import Color as TextualColor
from textual.filter import ANSIToTruecolor, DimFilter, LineFilter, Monochrome, NoColor
from textual.geometry import Region
from textual.scroll_view import ScrollView
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip

_SEGMENT_FILTERS = (ANSIToTruecolor, DimFilter, Monochrome, NoColor)
"""Line filters that map each segment on its own (a finished line's border segments filter alike
whatever stands between them)."""


@dataclass
class _Frame:
    """How Textual finishes a content line of a widget styled with a border only: the border's
    segments before and after it, the app's line filters over the whole; `width` the widget's,
    `content_width` the content's."""

    prefix: list[Segment]
    suffix: list[Segment]
    filters: tuple[LineFilter, ...]
    background: TextualColor
    width: int
    content_width: int

    def finish(self, content: Strip) -> Strip:
        """`content` (content_width cells) as Textual's StylesCache finishes it."""
        for line_filter in self.filters:
            content = content.apply_filter(line_filter, self.background)
        return Strip([*self.prefix, *content, *self.suffix], self.width)



class LineScrollBar(ScrollBar):
    """A vertical scrollbar that keeps each finished line by what it shows.

    A scrollbar has a handful of distinct lines (track above, thumb, track below, the eighth-cell
    ends of the thumb), but Textual draws all of them again whenever the thumb moves: every
    scroll of a table. Here a line is drawn by Textual once per look and then reused, with the
    compositor's caches of it; the thumb's position picks which line goes where.
    """

    def __init__(self, vertical: bool = True, name: str | None = None, *, thickness: int = 1) -> None:
        super().__init__(vertical, name, thickness=thickness)
        self._looks: dict[Segment, Strip] = {}
        self._looks_for: tuple[object, ...] = ()

    def _bar_segments(self, width: int, height: int) -> list[Segment] | None:
        """One segment per line, as ScrollBarRender draws this bar (None: drawn otherwise)."""
        renderable = self.render()
        if not self.vertical or type(renderable) is not ScrollBarRender:
            return None
        style = renderable.style
        if not isinstance(style, Style):
            return None
        bar = ScrollBarRender.render_bar(
            size=height, virtual_size=renderable.virtual_size,
            window_size=renderable.window_size, position=renderable.position,
            thickness=width, vertical=True,
            back_color=style.bgcolor or Color.parse("#555555"),
            bar_color=style.color or Color.parse("bright_magenta"))
        segments = list(bar.segments)
        return segments if len(segments) == height else None

    def render_lines(self, crop: Region) -> list[Strip]:
        width, height = self.size
        segments = self._bar_segments(width, height) if crop.column_span == (0, width) else None
        if segments is None:
            return super().render_lines(crop)
        look = (self.size, self.background_colors, tuple(self.app.get_line_filters()))
        if look != self._looks_for:
            self._looks_for = look
            self._looks.clear()
        lines = []
        for y in crop.line_range:
            line = self._looks.get(segments[y])
            if line is None:
                line = self._looks[segments[y]] = super().render_lines(Region(0, y, width, 1))[0]
            lines.append(line)
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._looks.clear()


class FinishedLines(ScrollView):
    """A scroll view of a header line and keyed rows whose finished lines are kept by row key.

    The table below it keeps `_order` (row keys, top to bottom) and `_strips` (row key -> its
    content line, dropped when the row changes) and draws content lines (`_content_line`).
    """

    _order: list[str]
    _strips: dict[str, Strip]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._finished: dict[str, tuple[Strip, Strip]] = {}
        """Row key -> (its content line, that line as Textual finished it for the screen)."""
        self._finish_look: tuple[object, ...] = ()
        """What a finished line depends on besides its content (see _finishing)."""
        self._frame: _Frame | Literal[False] | None = None
        """How a content line is finished (None: not learnt yet; False: through Textual)."""

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        """The vertical scrollbar (a LineScrollBar), made on first use as Textual makes its own."""
        if self._vertical_scrollbar is None:
            bar = LineScrollBar(vertical=True, name="vertical",
                                thickness=self.scrollbar_size_vertical)
            bar.display = False
            self._vertical_scrollbar = bar
            self.app._start_widget(self, bar)
        return self._vertical_scrollbar

    def _finishing(self, crop: Region) -> tuple[object, ...]:
        """Everything besides a row's content that Textual's finished line of it depends on: the
        widget's size, the columns cropped, the colours under it and the app's line filters (the
        border, padding, tint and opacity are styles: a change to them clears the cache)."""
        return (self.region.size, crop.column_span, self.background_colors,
                tuple(self.app.get_line_filters()))

    def _learn_frame(self, y: int) -> _Frame | None:
        """How Textual finishes content line `y` (see _Frame), checked against Textual's own
        finished line of it; None when the widget's styles do more to a line than a border
        (padding, tint, opacity, hatch, outline, links) or the check fails."""
        styles = self.styles
        filters = tuple(self.app.get_line_filters())
        if (
            styles.padding.left or styles.padding.right or styles.tint.a
            or self.opacity != 1.0 or styles.text_opacity != 1.0
            or (styles.has_rule("hatch") and styles.hatch != "none")
            or any(edge for edge, _ in styles.outline)
            or self.hover_style._link_id
            or any(type(f) not in _SEGMENT_FILTERS for f in filters)
        ):
            return None
        width = self.region.width
        content_width = self.content_region.width
        content = self.render_line(y - styles.gutter.top)
        if content.cell_length != content_width:
            return None
        finished = list(super().render_lines(Region(0, y, width, 1))[0])
        (_, _), (right_edge, _), (_, _), (left_edge, _) = styles.border
        prefix = finished[:1] if left_edge else []
        suffix = finished[-1:] if right_edge else []
        frame = _Frame(prefix, suffix, filters, self.background_colors[1], width, content_width)
        if list(frame.finish(content)) != finished:
            return None
        return frame

    def render_lines(self, crop: Region) -> list[Strip]:
        """Lines as Textual finishes them, a row's from its finished line when it is unchanged
        (see the module docstring); other lines (border, header, blank) through Textual.

        A content line that must be drawn is finished here (_Frame: its border segments around
        it, the app's line filters) rather than through Textual's per-line styling, once that
        gives the very line Textual gave for one of them (_learn_frame)."""
        look = self._finishing(crop)
        if look != self._finish_look:
            self._finish_look = look
            self._finished.clear()
            self._frame = None
        gutter_top = self.styles.gutter.top
        content_height = self.content_size.height
        first_row = int(self.scroll_offset.y) - gutter_top - 1  # row index = y + first_row
        order, strips, finished = self._order, self._strips, self._finished
        lines: list[Strip | None] = []
        missing: list[int] = []
        for y in crop.line_range:
            row = y + first_row
            if gutter_top < y < gutter_top + content_height and 0 <= row < len(order):
                kept = finished.get(order[row])
                if kept is not None and kept[0] is strips.get(order[row]):
                    lines.append(kept[1])
                    continue
            lines.append(None)
            missing.append(y)
        content = [y for y in missing if gutter_top <= y < gutter_top + content_height]
        frame = self._frame
        if content and frame is None:
            frame = self._frame = self._learn_frame(content[0]) or False
        if frame:
            make_line = self._content_line
            scroll_x, scroll_y = self.scroll_offset
            scroll_x, scroll_y = int(scroll_x), int(scroll_y)
            width = self.size.width
            column_span = crop.column_span
            cropped = column_span != (0, frame.width)
            for y in content:
                line = make_line(y - gutter_top, scroll_x, scroll_y, width)
                if line.cell_length != frame.content_width:
                    continue  # Textual adjusts it (below)
                strip = frame.finish(line)
                if cropped:
                    strip = strip.crop(*column_span)
                lines[y - crop.y] = strip
                row = y + first_row
                if y > gutter_top and 0 <= row < len(order):
                    content_line = strips.get(order[row])
                    if content_line is not None:
                        finished[order[row]] = (content_line, strip)
            missing = [y for y in missing if lines[y - crop.y] is None]
        start = 0
        while start < len(missing):  # runs of consecutive missing lines, one Textual render each
            end = start + 1
            while end < len(missing) and missing[end] == missing[end - 1] + 1:
                end += 1
            y0 = missing[start]
            drawn = super().render_lines(Region(crop.x, y0, crop.width, end - start))
            for y, strip in zip(range(y0, y0 + end - start), drawn, strict=True):
                lines[y - crop.y] = strip
                row = y + first_row
                if gutter_top < y < gutter_top + content_height and 0 <= row < len(order):
                    content_line = strips.get(order[row])
                    if content_line is not None:
                        finished[order[row]] = (content_line, strip)
            start = end
        return lines  # type: ignore[return-value]  # every None was filled above


    def _content_line(self, y: int, scroll_x: int, scroll_y: int, width: int) -> Strip:
        """Content line `y` (0: the header) at the given scroll offset and content width."""
        raise NotImplementedError

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._finished.clear()
        self._frame = None


__all__ = ["FinishedLines", "LineScrollBar"]
