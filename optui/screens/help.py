"""The help screen: every command in the registry with its keys, plus the current screen's keys."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from optui.commands import COMMANDS, dashboard_commands, display_keys
from optui.widgets.format import FLAG_MARKS

SCOPES = {"app": "Everywhere", "menu": "Menus", "DashboardScreen": "Dashboard"}


def flag_legend() -> list[tuple[str, str, str, str]]:
    """Rows of the help table for the chain's Flag column: (mark, flag name, where, meaning)
    for each quality flag, and '+N' (N more flags on that leg)."""
    rows = [(mark, f"Flag {name}", "Chain", meaning) for name, (mark, meaning) in FLAG_MARKS.items()]
    rows.append(("+N", "Flag count", "Chain", "N more flags on that leg (after the first's mark)"))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists the registry's commands; Escape closes it."""

    BINDINGS = [
        Binding("escape,question_mark,f1", "close", "Close", id="help-close"),
        Binding("q", "app.quit", "Quit", id="help-quit"),  # a modal hides the app's bindings
    ]

    def __init__(self, extra: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__()
        self.extra = extra or []
        """(keys, title, scope label) rows from the screen underneath that the registry lacks."""

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("Keys and commands — Escape closes, Ctrl+P searches them", id="help-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        table.add_columns("Keys", "Command", "Where", "What it does")
        seen: set[str] = set()
        shown_keys: set[str] = set()
        for c in (*COMMANDS, *dashboard_commands()):
            if c.id in seen:
                continue
            seen.add(c.id)
            shown_keys.update(display_keys(c.keys).split(" / "))
            # Text cells: a DataTable reads plain strings as markup ("[" is a key here).
            table.add_row(*map(Text, (display_keys(c.keys), c.title, SCOPES.get(c.scope, c.scope), c.help)),
                          key=c.id)
        for keys, title, where in self.extra:
            if keys not in shown_keys:
                shown_keys.add(keys)
                table.add_row(*map(Text, (keys, title, where, "")), key=f"extra-{keys}")
        for row in flag_legend():
            table.add_row(*map(Text, row), key=f"flag-{row[1]}")
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
