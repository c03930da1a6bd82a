"""The optui Textual app: theme, logging and the first screen; menus and the dashboard do the rest."""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.driver import Driver
from textual.events import Resize
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from optui.commands import COMMANDS, OptuiCommands, app_bindings, display_keys
from optui.config import Settings
from optui.errors import OptuiError
from optui.logs import configure_logging
from optui.terminal import HangupAwareDriver, TerminalClosed

log = logging.getLogger("optui.app")

MIN_WIDTH, MIN_HEIGHT = 80, 24


class TooSmallScreen(Screen[None]):
    """Covers the app while the terminal is under 80x24, instead of a broken layout.

    An opaque screen, not a modal one: the screens under a modal are laid out at the terminal's
    size too, and Textual's widgets fail at widths near zero (an OptionList at 3 columns raises
    ValueError). Under this cover nothing but one wrapping line of text is laid out, which works
    down to 1x1; the screens below are laid out again at the new size when it is lifted.
    """

    BINDINGS = [Binding("q", "app.quit", "Quit", id="too-small.quit")]

    def compose(self) -> ComposeResult:
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
        self.attach: str | None = None
        """redis://HOST:PORT/DB: the dashboard follows that collector's channel only."""
        self.replay: object = None
        """An optui.screens.dashboard.ReplayRequest: the dashboard replays that recorded day."""
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

    def get_driver_class(self) -> type[Driver]:
        """On POSIX terminals, a driver that exits when the terminal goes away (see optui.terminal)."""
        driver = super().get_driver_class()
        if driver.__name__ == "LinuxDriver" and not os.environ.get("TEXTUAL_DRIVER"):
            return HangupAwareDriver
        return driver

    @property
    def _background_screens(self) -> list[Screen]:
        # Textual lays out the screen under the top one at every resize (it may show through);
        # under the opaque too-small cover nothing shows through, and laying the screen out at a
        # few columns is what crashes its widgets. Lifting the cover lays it out at the new size.
        if isinstance(self.screen_stack[-1] if self.screen_stack else None, TooSmallScreen):
            return []
        return super()._background_screens

    @on(TerminalClosed)
    def _on_terminal_closed(self, message: TerminalClosed) -> None:
        # Nobody is there to read a message or answer a prompt: leave, and say why in the log.
        log.info("exiting: %s", message.reason)
        self.exit()

    def _handle_exception(self, error: Exception) -> None:
        # Textual prints a traceback into the terminal and exits; the trace belongs in the log,
        # and the exit status must say the app failed (cli.py passes return_code on).
        log.critical("optui stopped on an unexpected error", exc_info=error)
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        self.panic(
            f"optui stopped on an unexpected error; the details are in {self.log_file}",
        )

    def on_mount(self) -> None:
        from optui.screens.main_menu import MainMenuScreen

        log.info("optui started (start=%s, config=%s)", self.start, self.settings.path)
        self.push_screen(MainMenuScreen())
        if self.start == "dashboard":
            self.action_dashboard()
        elif self.start == "login":  # `optui login`: the Kite login, then the main menu
            from optui.screens.kite_login import KiteLoginScreen

            self.push_screen(KiteLoginScreen())
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
            if self.replay is not None:
                self.push_screen(DashboardScreen(replay=self.replay))  # type: ignore[arg-type]
            else:
                self.push_screen(DashboardScreen(attach=self.attach) if self.attach else DashboardScreen())
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
