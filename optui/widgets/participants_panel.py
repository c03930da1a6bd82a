"""Placeholder for participant positions, saying where the data will come from and when."""

from __future__ import annotations

from textual.widgets import Static

PARTICIPANTS_TEXT = (
    "Participants (FII · DII · Pro · Client)\n"
    "Source: NSE participant-wise open interest and volume files (F&O, end of day) and NSE's "
    "provisional FII/DII cash-market figures (₹ crore).\n"
    "These are end-of-day facts published after the close and labelled with their trade date; "
    "a later release fills this panel."
)


class ParticipantsPanel(Static):
    """Says what the panel will show, so an empty slot is never mistaken for no positions."""

    DEFAULT_CSS = """
    ParticipantsPanel { height: auto; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(PARTICIPANTS_TEXT, **kwargs)  # type: ignore[arg-type]
