"""One registry of commands: it feeds the key bindings, the help screen and the command palette.

Keeping them in one list means a key shown in help always exists and the palette never misses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class Command:
    """A user-facing command: its keys, the action it runs, where it applies, and what it does."""

    id: str
    keys: str  # Textual key names, comma separated ("" when only in the palette)
    action: str  # action string run on the app ("app." prefix is implied for app scope)
    title: str
    help: str
    scope: str = "app"  # app | menu | dashboard
    show: bool = True  # shown in the footer
    palette: bool = True  # offered in the command palette


COMMANDS: tuple[Command, ...] = (
    Command("quit", "q", "quit", "Quit", "Leave optui from any screen (not while typing in a field)"),
    Command("help", "question_mark,f1", "help", "Help", "Show every key and command"),
    Command("palette", "ctrl+p", "command_palette", "Commands", "Search and run a command",
            show=False, palette=False),
    Command("dashboard", "d", "dashboard", "Dashboard", "Open the live dashboard", scope="menu"),
    Command("back", "escape,0", "back", "Back", "Go back to the previous menu (Exit on the main menu)",
            scope="menu"),
    Command("pick", "1-9", "pick", "Choose item", "Run the numbered menu item", scope="menu",
            show=False, palette=False),
    Command("menu-main", "", "open_menu('main')", "Main menu", "Go to the main menu"),
    Command("menu-setup", "", "open_menu('setup')", "Setup menu", "First-time setup steps"),
    Command("menu-development", "", "open_menu('development')", "Development menu",
            "Tests, simulator and analysis configuration"),
    Command("menu-production", "", "open_menu('production')", "Production menu",
            "Kite login, checks and deployment files"),
    Command("timeframe-next", "t", "", "Next timeframe", "Cash-flow panel: next timeframe (1m … 1w)",
            scope="dashboard", palette=False),
    Command("timeframe-prev", "T", "", "Previous timeframe", "Cash-flow panel: previous timeframe",
            scope="dashboard", palette=False),
)


def by_scope(scope: str) -> list[Command]:
    """The commands of one scope, in registry order."""
    return [c for c in COMMANDS if c.scope == scope]


def app_bindings() -> list[Binding]:
    """Bindings for the App (active on every screen)."""
    return [
        Binding(c.keys, c.action, c.title, show=c.show, id=c.id, tooltip=c.help)
        for c in by_scope("app") if c.keys and c.action
    ]


def display_keys(keys: str) -> str:
    """Key names as a user reads them."""
    names = {"question_mark": "?", "escape": "Esc", "ctrl+p": "Ctrl+P", "f1": "F1"}
    return " / ".join(names.get(k, k) for k in keys.split(",")) if keys else "palette"


class OptuiCommands(Provider):
    """Command-palette provider over the registry's palette commands."""

    def _candidates(self) -> list[Command]:
        """App commands always; screen commands only when the screen below has the action."""
        out = []
        for c in COMMANDS:
            if not (c.palette and c.action):
                continue
            if c.scope != "app" and not hasattr(self.screen, f"action_{c.action.split('(')[0]}"):
                continue
            out.append(c)
        return out

    def _runner(self, command: Command):
        if command.scope == "app":
            return partial(self.app.run_action, command.action)
        return partial(self.app.run_action, command.action, self.screen)

    async def discover(self) -> Hits:
        for command in self._candidates():
            yield DiscoveryHit(command.title, self._runner(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self._candidates():
            score = matcher.match(f"{command.title} {command.help}")
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), self._runner(command), help=command.help)
