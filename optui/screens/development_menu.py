"""Development: run tests by marker, configure analysis and the simulator, debug tools."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Log
from textual.worker import get_current_worker

from optui import logs
from optui.config import config_path, set_value
from optui.ops.pytest_runner import TEST_MODES, PytestSummary, is_running, project_root, run_pytest
from optui.ops.steps import steps_for
from optui.screens.menu import MenuItem, MenuScreen
from optui.screens.setup_menu import system_step

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class TestLineRead(Message):
    """pytest printed a line."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


class TestRunFinished(Message):
    """A pytest run ended."""

    def __init__(self, summary: PytestSummary) -> None:
        super().__init__()
        self.summary = summary


class TestModeScreen(MenuScreen):
    """Pick a marker; pytest runs in a subprocess and its output streams into the log panel.

    One run at a time: a digit pressed while a run is going is refused with a notice, so two
    runs never mix their output. Leaving the screen stops the run.
    """

    MENU_TITLE = "Development › Test mode selection"
    ITEMS = tuple(MenuItem(key, f"{label} ({'-m ' + m if m else 'no marker filter'})", "tests")
                  for key, (label, m) in TEST_MODES.items())

    def __init__(self) -> None:
        super().__init__()
        self.last_summary: PytestSummary | None = None
        self.running: str | None = None
        """The label of the run going on this screen, if any."""
        self.tests_dir = project_root()
        """Where pytest runs; tests point this elsewhere."""

    def compose_results(self) -> ComposeResult:
        yield Log(id="results", max_lines=5000, auto_scroll=True)

    def run_item(self, item: MenuItem) -> None:
        label, marker = TEST_MODES[item.key]
        if self.running is not None or is_running():
            going = self.running or "another screen's run"
            self.notify(f"{label} not started: {going} is still going. Wait for its summary, "
                        "or press Esc to stop it.", severity="warning")
            return
        self.running = label
        self.show_heading(f"{label}")
        self._pytest_worker(marker)

    @work(thread=True, exit_on_error=False, group="pytest", description="pytest")
    def _pytest_worker(self, marker: str) -> None:
        worker = get_current_worker()

        def on_line(line: str) -> None:
            self.post_message(TestLineRead(line))

        summary = PytestSummary(marker)
        try:
            summary = run_pytest(marker, on_line, cwd=self.tests_dir, is_cancelled=lambda: worker.is_cancelled)
        finally:
            self.post_message(TestRunFinished(summary))  # the screen is free for the next run

    @on(TestLineRead)
    def _line(self, event: TestLineRead) -> None:
        self.query_one("#results", Log).write_line(event.line)

    @on(TestRunFinished)
    def _finished(self, event: TestRunFinished) -> None:
        self.running = None
        self.last_summary = event.summary
        line = f"Summary: {event.summary.line()}"
        self.query_one("#results", Log).write_line(line)
        self.notify(line, severity="information" if event.summary.ok else "warning")


class DebugToolsScreen(MenuScreen):
    """Log level (saved to the configuration) and a viewer of the log file's tail."""

    MENU_TITLE = "Development › Debug tools"
    ITEMS = tuple(MenuItem(str(i), f"Log level {level}", "level") for i, level in enumerate(LOG_LEVELS, 1)) + (
        MenuItem("5", "Show the log file (last 200 lines)", "tail"),
    )

    def on_mount(self) -> None:
        super().on_mount()
        settings = self.settings
        self.show(f"Log file: {logs.log_file(settings).absolute()}   level: {settings.general.log_level}")

    def run_item(self, item: MenuItem) -> None:
        if item.handler == "level":
            self.set_level(LOG_LEVELS[int(item.key) - 1])
        else:
            self.item_tail()

    def set_level(self, level: str) -> None:
        settings = self.settings
        path = settings.path or config_path()

        def task() -> list[object]:
            set_value("general.log_level", level, path)
            settings.general.log_level = level
            logs.set_level(level)
            return [f"Log level {level} saved to {path} and applied now."]

        self.run_task("Log level", task)

    def item_tail(self) -> None:
        path = logs.log_file(self.settings)

        def task() -> list[object]:
            lines = logs.tail(path, 200)
            if not lines:
                return [Text(f"{path} is empty or does not exist yet.", style="dim")]
            return [Text(line) for line in lines]

        self.run_task(f"Log file {path}", task)


class DevelopmentMenuScreen(MenuScreen):
    """Items 1-8 of the development menu."""

    MENU_TITLE = "Development"
    ITEMS = (
        MenuItem("1", "Test mode selection", "tests"),
        MenuItem("2", "Participant analysis configuration", "participants"),
        MenuItem("3", "Cash-flow tracking setup", "cash_flow"),
        MenuItem("4", "Position monitoring configuration", "positions"),
        MenuItem("5", "Simulated market setup (seed, speed, start time)", "simulator"),
        MenuItem("6", "Live-data fallback configuration", "fallback"),
        MenuItem("7", "Debug tools (log level, log viewer)", "debug"),
        MenuItem("8", "Complete development setup", "complete"),
    )

    def item_tests(self) -> None:
        self.app.push_screen(TestModeScreen())

    def item_participants(self) -> None:
        self.open_section("participants", "Participant analysis configuration")

    def item_cash_flow(self) -> None:
        self.open_section("cash_flow", "Cash-flow tracking setup")

    def item_positions(self) -> None:
        self.open_section("positions", "Position monitoring configuration")

    def item_simulator(self) -> None:
        self.open_section("simulator", "Simulated market setup")

    def item_fallback(self) -> None:
        self.open_section("fallback", "Live-data fallback configuration")

    def item_debug(self) -> None:
        self.app.push_screen(DebugToolsScreen())

    def item_complete(self) -> None:
        steps = [system_step(self.app)] + steps_for("development")[1:]
        self.run_steps("Complete development setup", steps)
