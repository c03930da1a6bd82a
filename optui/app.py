"""The optui Textual app: theme, logging and the first screen; menus and the dashboard do the rest."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Center, Middle
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from optui.commands import COMMANDS, OptuiCommands, app_bindings, display_keys
from optui.config import Settings
from optui.errors import OptuiError
from optui.logs import configure_logging

log = logging.getLogger("optui.app")

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(ModalScreen[None]):
    """Covers the app while the terminal is under 80x24, instead of a broken layout."""

    # A modal screen hides the app's bindings, so quitting is bound here too.
    BINDINGS = [Binding("q", "app.quit", "Quit", id="too-small.quit")]

    def compose(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(id="too-small-message")

    def on_mount(self) -> None:
        self.update_size(self.app.size.width, self.app.size.height)

    def update_size(self, width: int, height: int) -> None:
        self.query_one("#too-small-message", Static).update(
            f"Terminal too small: {width}x{height}.\n"
            f"optui needs at least {MIN_WIDTH}x{MIN_HEIGHT}.\n"
            "Enlarge the window or reduce the font.\n"
            "q quits."
        )


class OptuiApp(App[None]):
    """Starts on the main menu (or the dashboard) and reports failed workers without tracebacks."""

    TITLE = "optui"
    CSS_PATH = "app.tcss"
    BINDINGS = app_bindings()
    COMMANDS = App.COMMANDS | {OptuiCommands}
    MENUS: ClassVar[dict[str, str]] = {
        "setup": "optui.screens.setup_menu:SetupMenuScreen",
        "development": "optui.screens.development_menu:DevelopmentMenuScreen",
        "production": "optui.screens.production_menu:ProductionMenuScreen",
    }

    def __init__(self, settings: Settings, start: str = "main", mouse: bool = True) -> None:
        super().__init__()
        self.settings = settings
        self.start = start
        self.mouse = mouse
        self.log_file = configure_logging(settings)
        self._started = False
        self.animation_level = "full" if settings.ui.animations else "none"
        if settings.ui.theme in self.available_themes:
            self.theme = settings.ui.theme

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications show their text literally, never as markup: they carry error messages,
        paths and values (`[store]`, `[::1]`) that markup would eat or reject."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("mouse", self.mouse)
        return super().run(*args, **kwargs)

    def on_mount(self) -> None:
        from optui.screens.main_menu import MainMenuScreen

        log.info("optui started (start=%s, config=%s)", self.start, self.settings.path)
        self.push_screen(MainMenuScreen())
        if self.start == "dashboard":
            self.action_dashboard()
        self._started = True
        self._check_size(self.size.width, self.size.height)

    def on_resize(self, event: Resize) -> None:
        if self._started:  # before on_mount the first screen is not there to cover yet
            self._check_size(event.size.width, event.size.height)

    def _check_size(self, width: int, height: int) -> None:
        small = width < MIN_WIDTH or height < MIN_HEIGHT
        top = self.screen_stack[-1] if self.screen_stack else None
        if small and not isinstance(top, TooSmallScreen):
            self.push_screen(TooSmallScreen())
        elif small and isinstance(top, TooSmallScreen) and top.is_mounted:
            top.update_size(width, height)
        elif not small and isinstance(top, TooSmallScreen):
            self.pop_screen()

    # ------------------------------------------------------------------ actions

    def action_help(self) -> None:
        from optui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        known = {k for c in COMMANDS for k in c.keys.split(",")}
        # Textual's own screen keys (focus, copy) are not optui commands.
        known |= {k for b in Screen.BINDINGS if isinstance(b, Binding) for k in b.key.split(",")}
        extra = []
        for key, active in self.active_bindings.items():
            binding = active.binding
            if active.node is self.screen and key not in known and binding.description:
                extra.append((binding.key_display or display_keys(key), binding.description, "This screen"))
        self.push_screen(HelpScreen(extra))

    def action_dashboard(self) -> None:
        try:
            from optui.screens.dashboard import DashboardScreen

            if isinstance(self.screen, DashboardScreen):
                return
            self.push_screen(DashboardScreen())
        except Exception as exc:
            log.exception("cannot open the dashboard")
            self.notify(f"The dashboard cannot open: {exc}. Details in {self.log_file}",
                        title="Dashboard", severity="error")

    def action_open_menu(self, name: str) -> None:
        from optui.screens.main_menu import MainMenuScreen

        while len(self.screen_stack) > 2 and not isinstance(self.screen, MainMenuScreen):
            self.pop_screen()
        if not isinstance(self.screen, MainMenuScreen):
            self.push_screen(MainMenuScreen())
        if name in self.MENUS:
            module, _, cls = self.MENUS[name].partition(":")
            screen_type = getattr(__import__(module, fromlist=[cls]), cls)
            self.push_screen(screen_type())

    # ------------------------------------------------------------------ failures

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        self.report_worker_state(event)

    def report_worker_state(self, event: Worker.StateChanged) -> None:
        """Log every worker's end; a failed one becomes an error notification, its trace the log's."""
        worker = event.worker
        name = worker.description or worker.name or worker.group
        match event.state:
            case WorkerState.ERROR:
                error = worker.error
                if error is not None:
                    log.error("worker %s failed", name, exc_info=(type(error), error, error.__traceback__))
                if isinstance(error, OptuiError):
                    message = str(error)
                else:
                    message = f"{type(error).__name__}: {error}. Details in {self.log_file}"
                self.notify(message, title=f"{name} failed", severity="error", timeout=10)
            case WorkerState.CANCELLED:
                log.info("worker %s cancelled", name)
            case WorkerState.SUCCESS:
                log.debug("worker %s finished", name)
            case _:
                log.debug("worker %s is %s", name, event.state.name)
