"""The configuration wizard: nine numbered sections plus "everything in order" as item 10.

Item 10 needs two digits, so "1" waits a moment for a following "0"; Enter (or the pause) opens
item 1 at once, and "a" is a one-key alias for 10. Every item opens a section form.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from optui.config import config_path
from optui.screens.form_sections import SECTIONS, WIZARD_ORDER
from optui.screens.settings_form import section_screen
from optui.widgets.menu_list import MenuList

ALL_ITEM = "10"
SECOND_DIGIT_WAIT_S = 0.8  # how long "1" waits for a "0" before opening item 1

ITEMS: list[tuple[str, str]] = [
    ("1", "Kite credentials"),
    ("2", "Monitoring and health checks"),
    ("3", "Database"),
    ("4", "Logging"),
    ("5", "Data source and market data"),
    ("6", "Performance"),
    ("7", "Options analytics"),
    ("8", "Security"),
    ("9", "Participant analysis"),
    (ALL_ITEM, "Everything in order (1 to 9)"),
]
SECTION_OF = dict(zip([key for key, _ in ITEMS[:-1]], WIZARD_ORDER, strict=True))

HELP = "1-9 open · 1 then 0 (or a): all in order · ↑↓ + Enter · 0 / Esc back"


class WizardScreen(Screen[None]):
    """The numbered list of configuration sections."""

    CSS_PATH = "wizard.tcss"
    AUTO_FOCUS = "#wizard-items"
    BINDINGS = [
        *[Binding(str(d), f"digit('{d}')", f"item {d}", show=False) for d in range(10)],
        Binding("a", "open('10')", "All in order"),
        Binding("d", "app.dashboard", "Dashboard"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__(name="wizard")
        self._pending: Timer | None = None
        self.sequence: list[str] = []  # sections still to show in "everything in order"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Configuration wizard  ·  file: {config_path()}", id="wizard-title", markup=False)
        yield Static(HELP, id="wizard-help")
        options = [Option(f"{key:>2}  {label}", id=f"wizard-{key}") for key, label in ITEMS]
        options.append(Option(" 0  Back", id="wizard-0"))
        yield MenuList(*options, id="wizard-items")
        yield Static("", id="wizard-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Configuration wizard"

    def _highlight(self, key: str) -> None:
        menu = self.query_one("#wizard-items", OptionList)
        menu.highlighted = menu.get_option_index(f"wizard-{key}")

    def _say(self, text: str) -> None:
        self.query_one("#wizard-status", Static).update(text)

    def _cancel_pending(self) -> bool:
        had = self._pending is not None
        if self._pending is not None:
            self._pending.stop()
            self._pending = None
        return had

    def action_digit(self, digit: str) -> None:
        if self._cancel_pending() and digit == "0":
            self.action_open(ALL_ITEM)
            return
        if digit == "0":
            self.action_back()
        elif digit == "1":
            self._highlight("1")
            self._say("1 … type 0 now for 10 (everything in order); Enter opens 1")
            self._pending = self.set_timer(SECOND_DIGIT_WAIT_S, self._pending_expired)
        else:
            self.action_open(digit)

    def _pending_expired(self) -> None:
        self._pending = None
        self.action_open("1")

    def action_open(self, key: str) -> None:
        self._cancel_pending()
        self._highlight(key)
        if key == ALL_ITEM:
            self.sequence = list(WIZARD_ORDER)
            self._next_in_sequence(None)
            return
        self._say("")
        self.app.push_screen(section_screen(SECTION_OF[key]))

    def _next_in_sequence(self, _result: object) -> None:
        if not self.sequence:
            self._say("all sections visited: settings saved as you went")
            return
        section = self.sequence.pop(0)
        done = len(WIZARD_ORDER) - len(self.sequence)
        self._say(f"everything in order: {done}/{len(WIZARD_ORDER)} {SECTIONS[section][0]}")
        screen = section_screen(section)
        screen.sub_title = f"step {done} of {len(WIZARD_ORDER)} · Esc: next section"
        self.app.push_screen(screen, self._next_in_sequence)

    @on(OptionList.OptionSelected, "#wizard-items")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        key = (event.option.id or "").removeprefix("wizard-")
        if key == "0":
            self.action_back()
        else:
            self.action_open(key)

    def action_back(self) -> None:
        self._cancel_pending()
        self.dismiss(None)
