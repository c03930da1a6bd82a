"""One-line dashboard header: source badge, data age, IST clock, session state, selection.

A trader must never mistake simulated, cached or stale data for a live quote, so the badge says
where the numbers come from and the age turns to a warning once it exceeds two intervals.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from textual import events
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


NARROW_COLUMNS = 100
"""Below this header width the clock may drop its date, leaving room for the selection."""
FIXED_COLUMNS = {False: 11 + 14 + 21 + 10, True: 11 + 14 + 14 + 10}
"""Columns of the fixed labels (badge, age, clock, session), wide and narrow."""


def fit_selection(flags: Sequence[tuple[str, str]], selection: str, width: int) -> str:
    """The header's selection text in `width` columns: the flags (pairs of full and short
    wording, e.g. ('replay 1x PAUSED (space resumes)', 'REPLAY 1x ⏸')) before the selection
    (index, expiry, timeframe). What a trader needs most is the selection, so when it does not
    fit the separators shorten first, then the flags, then the flags are cut (ending '…');
    the selection itself is cut only when it alone is wider than `width`."""
    full = " · ".join([*(long for long, _ in flags), selection])
    if cell_len(full) <= width or not flags:
        return full
    for wording, sep in ((0, " "), (1, " · "), (1, " ")):
        text = sep.join([*(flag[wording] for flag in flags), selection])
        if cell_len(text) <= width:
            return text
    room = width - cell_len(selection) - 1
    if room < 2:
        return selection
    prefix = " ".join(brief for _, brief in flags)
    return f"{prefix[:room - 1]}… {selection}"


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
    StatusHeader.-narrow #clock { width: 14; }
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
        self._flags: tuple[tuple[str, str], ...] = ()
        self._selection = ""
        self._clock_text = ""

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
        flags: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Set every field; classes carry the warning styles so the theme decides the colours.

        `flags` (pairs of full and short wording, see fit_selection) go before the selection,
        shortened to the width the header has."""
        badge_label = self._set("badge", badge)
        for cls in _BADGE_CLASSES.values():
            badge_label.set_class(_BADGE_CLASSES.get(badge) == cls, cls)
        age = self._set("age", f"{'stale' if stale else 'age'} {fmt_age(age_s)}")
        age.set_class(stale and not failed, "-stale")
        age.set_class(failed, "-failed")
        self._clock_text = clock_text
        self._flags, self._selection = tuple(flags), selection
        self._fit()
        session_label = self._set("session", session)
        for cls in set(_SESSION_CLASSES.values()):
            session_label.set_class(_SESSION_CLASSES.get(session) == cls, cls)

    def _fit(self) -> None:
        """The clock and the selection for the header's width: the clock drops its date below
        NARROW_COLUMNS when the flags and selection do not fit in full beside it."""
        width = self.size.width or 160  # before the first layout: fitted again at the resize
        full = " · ".join([*(long for long, _ in self._flags), self._selection])
        narrow = width < NARROW_COLUMNS and cell_len(full) > width - FIXED_COLUMNS[False] - 2
        self.set_class(narrow, "-narrow")
        clock = self._clock_text
        self._set("clock", " ".join(clock.split()[-2:]) if narrow else clock)
        room = max(0, width - FIXED_COLUMNS[narrow] - 2)  # the selection's own padding
        self._set("selection", fit_selection(self._flags, self._selection, room))

    def on_resize(self, event: events.Resize) -> None:
        self._fit()
