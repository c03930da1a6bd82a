"""One-line dashboard header: source badge, data age, IST clock, session state, selection.

A trader must never mistake simulated, cached or stale data for a live quote, so the badge says
where the numbers come from and the age turns to a warning once it exceeds two intervals.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from optui.widgets.format import (
    CLOSED_STATE,
    HOLIDAY_STATE,
    OPEN_STATE,
    PRE_OPEN_STATE,
    fmt_age,
)

_BADGE_CLASSES = {"LIVE": "-live", "SIMULATED": "-sim", "CACHED": "-cached", "REPLAY": "-replay"}
_SESSION_CLASSES = {
    OPEN_STATE: "-open",
    PRE_OPEN_STATE: "-preopen",
    CLOSED_STATE: "-closed",
    HOLIDAY_STATE: "-closed",
}


class StatusHeader(Horizontal):
    """Where the data comes from and how old it is, at a glance."""

    DEFAULT_CSS = """
    StatusHeader {
        height: 1;
        width: 1fr;
        background: $panel;
    }
    StatusHeader Label { padding: 0 1; height: 1; }
    StatusHeader #badge { text-style: bold; background: $primary; color: $text; }
    StatusHeader #badge.-live { background: $success; }
    StatusHeader #badge.-sim { background: $accent; }
    StatusHeader #badge.-cached, StatusHeader #badge.-replay { background: $secondary; }
    StatusHeader #age.-stale { background: $warning; color: $text; text-style: bold; }
    StatusHeader #age.-failed { background: $error; color: $text; text-style: bold; }
    StatusHeader #session.-open { color: $success; text-style: bold; }
    StatusHeader #session.-preopen { color: $warning; text-style: bold; }
    StatusHeader #session.-closed { color: $text-muted; }
    StatusHeader #selection { width: 1fr; content-align-horizontal: right; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("CONNECTING", id="badge")
        yield Label("age —", id="age")
        yield Label("", id="clock")
        yield Label("", id="session")
        yield Label("", id="selection")

    def show(
        self,
        badge: str,
        age_s: float | None,
        stale: bool,
        clock_text: str,
        session: str,
        selection: str,
        failed: bool = False,
    ) -> None:
        """Set every field; classes carry the warning styles so the theme decides the colours."""
        badge_label = self.query_one("#badge", Label)
        badge_label.update(badge)
        for cls in _BADGE_CLASSES.values():
            badge_label.set_class(_BADGE_CLASSES.get(badge) == cls, cls)
        age = self.query_one("#age", Label)
        suffix = " STALE" if stale else ""
        age.update(f"age {fmt_age(age_s)}{suffix}")
        age.set_class(stale and not failed, "-stale")
        age.set_class(failed, "-failed")
        self.query_one("#clock", Label).update(clock_text)
        session_label = self.query_one("#session", Label)
        session_label.update(session)
        for cls in set(_SESSION_CLASSES.values()):
            session_label.set_class(_SESSION_CLASSES.get(session) == cls, cls)
        self.query_one("#selection", Label).update(selection)
