"""One registry of commands: it feeds the key bindings, the help screen and the command palette.

Keeping them in one list means a key shown in help always exists and the palette never misses one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.keys import format_key


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
    Command("back", "escape,0", "back", "Back", "Go back to the previous menu (0 exits on the main menu)",
            scope="menu"),
    Command("pick", "1-9", "pick", "Choose item", "Run the numbered menu item", scope="menu",
            show=False, palette=False),
    Command("menu-main", "", "open_menu('main')", "Main menu", "Go to the main menu"),
    Command("menu-setup", "", "open_menu('setup')", "Setup menu", "First-time setup steps"),
    Command("menu-development", "", "open_menu('development')", "Development menu",
            "Tests, simulator and analysis configuration"),
    Command("menu-production", "", "open_menu('production')", "Production menu",
            "Kite login, checks and deployment files"),
)


def by_scope(scope: str) -> list[Command]:
    """The commands of one scope, in registry order."""
    return [c for c in COMMANDS if c.scope == scope]


def app_bindings() -> list[BindingType]:
    """Bindings for the App (active on every screen)."""
    return [
        Binding(c.keys, c.action, c.title, show=c.show, id=c.id, tooltip=c.help)
        for c in by_scope("app") if c.keys and c.action
    ]


_KEY_NAMES = {
    "question_mark": "?", "escape": "Esc", "ctrl+p": "Ctrl+P", "f1": "F1",
    "left_square_bracket": "[", "right_square_bracket": "]",
}


def display_keys(keys: str) -> str:
    """Key names as a user reads them: "full_stop" is ".", "plus,equals_sign" is "+ / =".

    Textual's `format_key` names every key it knows (punctuation, space); ours first.
    """
    if not keys:
        return "palette"
    return " / ".join(_KEY_NAMES.get(k) or format_key(k) for k in keys.split(","))


def screen_commands(screen_type: type) -> list[Command]:
    """A screen's own bindings as commands, so screens with their own keys join help and palette."""
    out = []
    registry_ids = {c.id for c in COMMANDS}
    for binding in getattr(screen_type, "BINDINGS", []):
        if not isinstance(binding, Binding) or not binding.description or binding.id in registry_ids:
            continue
        out.append(Command(
            binding.id or f"{screen_type.__name__}.{binding.action}", binding.key, binding.action,
            binding.description, binding.tooltip or binding.description, scope=screen_type.__name__,
            show=binding.show,
        ))
    return out


def dashboard_commands() -> list[Command]:
    """The dashboard's keys, or none while its module cannot be imported."""
    try:
        from optui.screens.dashboard import DashboardScreen
    except Exception:
        return []
    return screen_commands(DashboardScreen)


class OptuiCommands(Provider):
    """Command-palette provider over the registry's palette commands."""

    def _candidates(self) -> list[Command]:
        """App commands always; screen commands only when the screen below has the action."""
        out = []
        own = screen_commands(type(self.screen))
        title = getattr(self.screen, "MENU_TITLE", "")
        own += [
            Command(f"item-{item.key}", item.key, f"pick('{item.key}')", f"{title}: {item.key} {item.label}",
                    f"Menu item {item.key}", scope="menu")
            for item in getattr(self.screen, "ITEMS", ())
        ]
        for c in (*COMMANDS, *own):
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
