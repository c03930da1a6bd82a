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
    StatusHeader #badge { text-style: bold; background: $primary; color: $text; width: 11; }
    StatusHeader #age { width: 14; }
    StatusHeader #clock { width: 21; }
    StatusHeader #session { width: 10; }
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

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: dict[str, str] = {}

    def _set(self, name: str, text: str) -> Label:
        """Update a label only when its text changed; fixed widths make a relayout unnecessary.

        The clock ticks every second, and a relayout would repaint the whole screen over SSH.
        """
        label = self.query_one(f"#{name}", Label)
        if self._shown.get(name) != text:
            self._shown[name] = text
            label.update(text, layout=False)
        return label

    def compose(self) -> ComposeResult:
        yield Label("WAITING", id="badge")
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
        badge_label = self._set("badge", badge)
        for cls in _BADGE_CLASSES.values():
            badge_label.set_class(_BADGE_CLASSES.get(badge) == cls, cls)
        age = self._set("age", f"{'stale' if stale else 'age'} {fmt_age(age_s)}")
        age.set_class(stale and not failed, "-stale")
        age.set_class(failed, "-failed")
        self._set("clock", clock_text)
        session_label = self._set("session", session)
        for cls in set(_SESSION_CLASSES.values()):
            session_label.set_class(_SESSION_CLASSES.get(session) == cls, cls)
        self._set("selection", selection)
