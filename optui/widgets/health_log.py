"""Alerts and health log: collection timings, source warnings and errors, newest last, bounded."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import RichLog

from optui.timeutil import IST

_LEVEL_STYLE = {"info": "dim", "warning": "yellow", "error": "bold red", "alert": "bold magenta"}


class HealthLog(RichLog):
    """A bounded log so a long session never grows memory; lines are stamped in IST."""

    DEFAULT_CSS = """
    HealthLog { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, max_lines: int = 300, **kwargs: object) -> None:
        super().__init__(max_lines=max_lines, wrap=True, markup=False, **kwargs)  # type: ignore[arg-type]
        self.entries: list[tuple[str, str]] = []

    def add(self, at: datetime, level: str, text: str) -> None:
        """Append one line; `level` is info, warning, error or alert."""
        self.entries.append((level, text))
        del self.entries[: -self.max_lines if self.max_lines else 0]
        stamp = at.astimezone(IST).strftime("%H:%M:%S")
        self.write(Text.assemble((stamp + " ", "dim"), (text, _LEVEL_STYLE.get(level, ""))))
