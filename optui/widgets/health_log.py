"""Health log: collection timings, source warnings and errors, newest last, bounded (alerts have their own panel)."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from rich.text import Text
from textual.events import Resize
from textual.geometry import Region
from textual.widgets import RichLog

from optui.collectors.health import HealthEvent
from optui.models import Snapshot, SnapshotWarning
from optui.timeutil import IST

_LEVEL_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red", "alert": "bold magenta"}


SUMMARY_EVERY_S = 300.0
"""A collection summary goes to the log at most this often; new warnings always do."""


class HealthLog(RichLog):
    """A bounded log so a long session never grows memory; lines are stamped in IST.

    Lines wrap to the panel's width (a fault's fix is read whole, however narrow the panel) and
    are wrapped again when the panel's width changes."""

    DEFAULT_CSS = """
    HealthLog { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, max_lines: int = 300, **kwargs: object) -> None:
        # min_width=1: RichLog's default renders at least 78 cells wide, and overflow-x hidden
        # then cuts a narrower panel's lines off.
        super().__init__(max_lines=max_lines, wrap=True, markup=False, min_width=1, **kwargs)  # type: ignore[arg-type]
        self._wrapped_width = 0
        self.entries: list[tuple[str, str]] = []
        self.history: list[tuple[datetime, str, str]] = []
        """(time, level, text) of every line still shown, to carry over a relayout."""
        self._last_summary: datetime | None = None
        self._last_warnings: frozenset[SnapshotWarning] = frozenset()

    def add(self, at: datetime, level: str, text: str) -> None:
        """Append one line; `level` is info, warning, error or alert."""
        self.entries.append((level, text))
        self.history.append((at, level, text))
        keep = -self.max_lines if self.max_lines else 0
        del self.entries[:keep]
        del self.history[:keep]
        self._write_line(at, level, text)

    def _write_line(self, at: datetime, level: str, text: str) -> None:
        stamp = at.astimezone(IST).strftime("%H:%M:%S")
        self._writing = True
        try:
            self.write(Text.assemble((stamp + " ", "dim"), (text, _LEVEL_STYLE.get(level, ""))))
        finally:
            self._writing = False

    def refresh(self, *regions: Region, repaint: bool = True, layout: bool = False,
                recompose: bool = False) -> Self:
        """A written line grows the log's scroll height, which Textual answers with a relayout
        of the whole screen (~20 ms on the event loop); the panel's box does not follow its
        lines (height 1fr), so while the vertical scrollbar neither comes nor goes only the
        scroll range is updated."""
        if layout and getattr(self, "_writing", False) and self._box_kept():
            layout = False
            self._scroll_update(self.virtual_size)
        return super().refresh(*regions, repaint=repaint, layout=layout, recompose=recompose)

    def _box_kept(self) -> bool:
        height = self.styles.height
        if not self.is_mounted or not self.size or height is None or height.is_auto:
            return False
        box = self.size.height
        return self.show_vertical_scrollbar == (self.virtual_size.height > box)

    def on_resize(self, event: Resize) -> None:
        """Wrap the shown lines again at a new width (lines are wrapped when written)."""
        width = event.size.width
        if not width or width == self._wrapped_width:
            return
        first, self._wrapped_width = self._wrapped_width == 0, width
        if first or not self.history:
            return  # RichLog renders the writes it deferred until its size was known
        self.clear()
        for at, level, text in self.history:
            self._write_line(at, level, text)

    def add_event(self, event: HealthEvent, at: datetime) -> str:
        """Show one health-model event (optui.collectors.health) with its fix; returns the line."""
        text = ("(local clock) " if event.local_clock else "") + event.text()
        self.add(event.at or at, event.level, text)
        return text

    def replay(self, history: list[tuple[datetime, str, str]]) -> None:
        """Show lines a previous log held (the layout switched between tabs and panels)."""
        for at, level, text in history:
            self.add(at, level, text)

    def record_cycle(
        self, snapshot: Snapshot, at: datetime, interval_s: float, alerts: list[str]
    ) -> list[tuple[str, str]]:
        """Log what a collection cycle says about health; returns the lines written.

        A summary (and a slow-cycle warning) at most every few minutes, warnings only when they
        change, alerts always: a line per tick would scroll and repaint the panel every second.
        """
        lines: list[tuple[str, str]] = []
        if self._last_summary is None or (at - self._last_summary).total_seconds() >= SUMMARY_EVERY_S:
            self._last_summary = at
            lines.append(("info", f"collected {snapshot.leg_count} legs for "
                                  f"{len(snapshot.indices)} indices in {snapshot.duration_s:.2f} s "
                                  f"({snapshot.flagged_count} flagged)"))
            # Slow cycles are health events (SLOW_CYCLE, source.slow_cycle_share), shown as such.
        warnings = frozenset(snapshot.warnings)
        lines += [("warning", str(w)) for w in sorted(warnings - self._last_warnings)]
        self._last_warnings = warnings
        lines += [("alert", text) for text in alerts]
        for level, text in lines:
            self.add(at, level, text)
        subtitle = f"last cycle {snapshot.duration_s:.2f} s · {snapshot.leg_count} legs"
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle
        return lines
