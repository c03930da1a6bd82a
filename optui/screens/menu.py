"""The numbered-menu screen every menu builds on: digits run items, 0/Escape go back, results below.

Items that do I/O run in thread workers that post messages; handlers here own the widgets, so the
event loop never blocks and no worker touches the screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    Label,
    Log,
    OptionList,
    ProgressBar,
    RichLog,
    Static,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, get_current_worker

from optui.commands import by_scope
from optui.config import Settings, settings_dict
from optui.ops.checks import Check
from optui.ops.steps import Step, StepResult, run_step
from optui.widgets.menu_list import MenuList

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MenuItem:
    """A numbered entry: pressing `key` calls the screen method `item_<handler>`."""

    key: str
    label: str
    handler: str


class StepFinished(Message):
    """A step of a running sequence finished."""

    def __init__(self, title: str, index: int, total: int, result: StepResult) -> None:
        super().__init__()
        self.title = title
        self.index = index
        self.total = total
        self.result = result


class TaskFinished(Message):
    """A menu task finished with things to show."""

    def __init__(self, title: str, output: list[object]) -> None:
        super().__init__()
        self.title = title
        self.output = output


class StepsFinished(Message):
    """Every step of a sequence finished."""

    def __init__(self, title: str, results: list[StepResult]) -> None:
        super().__init__()
        self.title = title
        self.results = results


def check_table(title: str, rows: list[Check]) -> Table:
    """A pass/fail table whose status column reads without colour (NO_COLOR).

    Cells are Text, not markup: details and fixes carry paths and instructions such as
    `set [store] url = ...` that must show literally.
    """
    table = Table(title=title, title_justify="left", expand=True, show_lines=False)
    table.add_column("Status", no_wrap=True, width=6)
    table.add_column("Check", no_wrap=True)
    table.add_column("Result", ratio=3)
    table.add_column("How to fix", ratio=2)
    styles = {True: "bold green", False: "bold red", None: "dim"}
    for row in rows:
        table.add_row(Text(row.status, style=styles[row.ok]), Text(row.name), Text(row.detail), Text(row.fix))
    return table


def _menu_bindings() -> list[BindingType]:
    out: list[BindingType] = [
        Binding(c.keys, c.action, c.title, show=c.show, id=c.id, tooltip=c.help)
        for c in by_scope("menu") if c.keys and c.id != "pick"
    ]
    out += [Binding(str(d), f"pick('{d}')", "", show=False) for d in range(1, 10)]
    return out


class MenuScreen(Screen):
    """A titled list of numbered items with a results panel under it."""

    MENU_TITLE: ClassVar[str] = "Menu"
    ITEMS: ClassVar[tuple[MenuItem, ...]] = ()
    BACK_LABEL: ClassVar[str] = "Back"
    BINDINGS = _menu_bindings()

    def __init__(self) -> None:
        super().__init__()
        self.last_results: list[StepResult] = []
        """Results of the last step sequence, for callers and tests."""
        self._results_made_with: dict[str, object] | None = None  # the settings the panel's results used

    @property
    def settings(self) -> Settings:
        """The running app's settings."""
        return self.app.settings  # type: ignore[attr-defined, no-any-return]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Vertical(id="menu-body"):
            yield Static(self.MENU_TITLE, id="menu-title", classes="menu-title")
            options = [Option(f"{i.key}  {i.label}", id=f"item-{i.key}") for i in self.ITEMS]
            options.append(Option(f"0  {self.BACK_LABEL}", id="item-0"))
            yield MenuList(*options, id="menu-items")
            yield ProgressBar(id="menu-progress", show_eta=False)
            yield from self.compose_results()
        yield Footer()

    def compose_results(self) -> ComposeResult:
        """The results panel; subclasses may swap in a different widget."""
        yield RichLog(id="results", wrap=True, markup=False, min_width=40)

    def on_mount(self) -> None:
        self.query_one("#menu-progress").display = False
        self.query_one("#menu-items", OptionList).focus()

    def _settings_state(self) -> dict[str, object]:
        settings = self.settings
        return {"path": settings.path, **settings_dict(settings)}

    def _results_shown(self) -> None:
        """Remember which settings the results now in the panel were made with."""
        self._results_made_with = self._settings_state()

    def on_screen_resume(self) -> None:
        """Coming back (from the wizard, say): results made with settings since changed are cleared."""
        if self._results_made_with is None or self._results_made_with == self._settings_state():
            return
        self._results_made_with = None
        self.last_results = []
        self.results.clear()
        self.show(Text("Settings were saved since the results shown here, so they were cleared: "
                       "run the item again.", style="dim"))

    # ------------------------------------------------------------------ keys

    def item(self, key: str) -> MenuItem | None:
        return next((i for i in self.ITEMS if i.key == key), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick":
            return self.item(str(parameters[0])) is not None
        return True

    def action_pick(self, key: str) -> None:
        item = self.item(key)
        if item is None:
            return
        menu = self.query_one("#menu-items", OptionList)
        menu.highlighted = self.ITEMS.index(item)
        log.info("menu %s: %s %s", self.MENU_TITLE, item.key, item.label)
        try:
            self.run_item(item)
        except Exception as exc:  # an item must never take the app down or print a trace
            log.exception("menu item %s failed", item.label)
            self.notify(f"{item.label} failed: {exc}. Details in the log file.", severity="error")

    def run_item(self, item: MenuItem) -> None:
        """Run one item; subclasses with parameterised items override this."""
        handler: Callable[[], object] = getattr(self, f"item_{item.handler}")
        handler()

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()
        else:
            self.app.exit()

    def action_dashboard(self) -> None:
        self.app.action_dashboard()  # type: ignore[attr-defined]

    @on(OptionList.OptionSelected, "#menu-items")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        key = (event.option.id or "").removeprefix("item-")
        if key == "0":
            self.action_back()
        else:
            self.action_pick(key)

    # ------------------------------------------------------------------ results

    @property
    def results(self) -> RichLog | Log:
        return self.query_one("#results", RichLog | Log)  # type: ignore[arg-type]

    def show(self, renderable: object) -> None:
        """Append something to the results panel (plain lines when it is a Log)."""
        panel = self.results
        if isinstance(panel, Log):
            text = renderable.plain if isinstance(renderable, Text) else str(renderable)
            panel.write_lines(text.splitlines() or [""])
        else:
            panel.write(renderable)

    def show_heading(self, text: str) -> None:
        self.show(Text(f"— {text} —", style="bold"))

    def run_task(self, title: str, task: Callable[[], list[object]]) -> None:
        """Run blocking work in a thread worker; the renderables it returns land in the panel."""
        self._task_worker(title, task)

    @work(thread=True, exclusive=True, exit_on_error=False, group="menu-task", description="menu task")
    def _task_worker(self, title: str, task: Callable[[], list[object]]) -> None:
        self.post_message(TaskFinished(title, task()))

    @on(TaskFinished)
    def _task_finished(self, event: TaskFinished) -> None:
        self.show_heading(event.title)
        for item in event.output:
            self.show(item)
        self._results_shown()

    def push_named(self, loader: Callable[[], Screen], what: str) -> None:
        """Push another helper's screen; a missing or broken module becomes a notification."""
        try:
            screen = loader()
        except Exception as exc:
            log.exception("cannot open %s", what)
            self.notify(f"{what} is not available: {exc}", title="Cannot open", severity="error")
            self.show(Text(f"{what}: not available ({type(exc).__name__}: {exc})", style="red"))
            return
        self.app.push_screen(screen)

    def open_section(self, section: str, what: str) -> None:
        """Open one settings section of the configuration form."""

        def load() -> Screen:
            from optui.screens.settings_form import section_screen

            return section_screen(section)

        self.push_named(load, what)

    # ------------------------------------------------------------------ step workers

    def run_steps(self, title: str, steps: list[Step]) -> None:
        """Run steps in a thread worker with a progress bar; results land in the panel."""
        bar = self.query_one("#menu-progress", ProgressBar)
        bar.update(total=len(steps), progress=0)
        bar.display = len(steps) > 1
        self.show_heading(f"{title}: running {len(steps)} step{'s' if len(steps) != 1 else ''}")
        self._steps_worker(title, steps)

    @work(thread=True, exclusive=True, exit_on_error=False, group="menu-steps", description="menu steps")
    def _steps_worker(self, title: str, steps: list[Step]) -> None:
        worker = get_current_worker()
        settings = self.settings
        results: list[StepResult] = []
        for index, step in enumerate(steps, 1):
            if worker.is_cancelled:
                break
            result = run_step(step, settings)
            results.append(result)
            self.post_message(StepFinished(title, index, len(steps), result))
        self.post_message(StepsFinished(title, results))

    @on(StepFinished)
    def _step_finished(self, event: StepFinished) -> None:
        self.query_one("#menu-progress", ProgressBar).update(progress=event.index)
        self.show(check_table(f"{event.index}/{event.total} {event.result.title}", event.result.checks))

    @on(StepsFinished)
    def _steps_finished(self, event: StepsFinished) -> None:
        ok = sum(r.ok for r in event.results)
        total = len(event.results)
        failed = [r.title for r in event.results if not r.ok]
        line = f"{event.title}: {ok}/{total} steps passed" + (f" — failed: {', '.join(failed)}" if failed else "")
        self.show(Text(line, style="bold green" if not failed else "bold red"))
        self.notify(line, severity="information" if not failed else "warning")
        self.last_results = event.results
        self._results_shown()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: forward every state to the app's one reporter.
        report = getattr(self.app, "report_worker_state", None)
        if report is not None:
            report(event)


class PathPrompt(ModalScreen[str | None]):
    """Asks for a directory; dismisses with the typed path, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, default: str) -> None:
        super().__init__()
        self.prompt = prompt
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self.prompt, markup=False)
            yield Input(value=self.default, id="prompt-input")
            yield Button("Write", id="prompt-ok", variant="primary")

    @on(Input.Submitted)
    @on(Button.Pressed, "#prompt-ok")
    def _accept(self) -> None:
        value = self.query_one("#prompt-input", Input).value.strip()
        if not value:
            self.notify("Type a directory, e.g. deploy", severity="error")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
