"""One numbered form screen per configuration section: press a digit to edit that field.

Values are checked as they are typed and saved to the TOML file on Enter (comments kept); secrets go
to the 0600 secrets file and are only ever shown masked. The section definitions live in
`optui.screens.form_sections` so this module holds only the screen behaviour.
"""

from __future__ import annotations

import logging
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, Label, Static

from optui.config import (
    Settings,
    config_path,
    load_secrets,
    load_settings,
    mask,
    redact_url,
    save_secret,
    set_value,
)
from optui.errors import ConfigError, OptuiError
from optui.screens import form_sections
from optui.screens.form_sections import SECTIONS, FormField, check_value
from optui.screens.worker_reports import ReportsWorkers

log = logging.getLogger(__name__)

HELP = "digit: pick field · Enter: save or run · ↑↓ move · Esc: leave field / back"
KEEP_SECRET_URL = "set (it holds a secret, not shown): type a whole new URL to replace it"


class FieldSaved(Message):
    """A field's new value was validated and written."""

    def __init__(self, index: int, key: str, shown: str) -> None:
        super().__init__()
        self.index, self.key, self.shown = index, key, shown


class FieldRejected(Message):
    """A typed value failed validation or could not be written; nothing was saved."""

    def __init__(self, index: int, key: str, problem: str) -> None:
        super().__init__()
        self.index, self.key, self.problem = index, key, problem


class ActionFinished(Message):
    """A form action (test, import, review) finished with a report to show."""

    def __init__(self, index: int, ok: bool, text: str, saves: int = 0) -> None:
        super().__init__()
        self.index, self.ok, self.text = index, ok, text
        self.saves = saves  # the screen's save count when the action started


def current_settings(app: Any) -> Settings:
    """The app's settings if it holds them, else freshly loaded ones."""
    settings = getattr(app, "settings", None)
    return settings if isinstance(settings, Settings) else load_settings()


def refresh_app_settings(app: Any) -> Settings | None:
    """Reload settings (file + environment) and hand them to the app so other screens see them."""
    try:
        fresh = load_settings()
    except ConfigError:
        return None
    if hasattr(app, "settings"):
        app.settings = fresh
    return fresh


REDACTED_KEYS = frozenset({"alerts.webhook_url"})
"""Settings whose value carries a secret (a token in a URL): shown and echoed redacted."""


def shown_value(fld: FormField, settings: Settings, secrets: dict[str, str]) -> str:
    """What the screen shows for a field: the setting (URLs without their passwords), a masked
    secret, or the action's hint."""
    if fld.secret:
        return mask(secrets.get(fld.secret, ""))
    if fld.key:
        section, _, name = fld.key.partition(".")
        value = getattr(getattr(settings, section), name)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, str) and "://" in value:
            return redact_url(value)
        return str(value) if value != "" else "(empty)"
    return fld.hint


def editable_value(fld: FormField, settings: Settings) -> str | None:
    """The text to put in a setting's input box, or None when it holds a secret (a URL's
    password, a webhook's token) that must not be shown: the box is then left empty."""
    section, _, name = fld.key.partition(".")
    value = getattr(getattr(settings, section), name)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    text = str(value)
    if "://" in text and redact_url(text) != text:
        return None
    return text


class SectionScreen(ReportsWorkers, Screen[None]):
    """A numbered form over one configuration section."""

    AUTO_FOCUS = None  # digits reach the screen until a field is chosen
    CSS_PATH = "wizard.tcss"
    BINDINGS = [
        *[Binding(str(n), f"field({n})", f"field {n}", show=False) for n in range(1, 10)],
        Binding("0", "back", "Back", show=False),
        Binding("escape", "back", "Back"),
        Binding("d", "app.dashboard", "Dashboard", show=False),
        Binding("down", "app.focus_next", "Next", show=False),
        Binding("up", "app.focus_previous", "Previous", show=False),
    ]

    def __init__(self, section: str) -> None:
        if section not in SECTIONS:
            raise ConfigError(f"unknown configuration section {section!r}: one of {', '.join(SECTIONS)}")
        super().__init__(name=f"section-{section}")
        self.section = section
        self.title_text, self.fields = SECTIONS[section]
        self.saves = 0
        """Saves made on this screen; an action's result from before the latest save is stale."""

    def compose(self) -> ComposeResult:
        yield Header()
        # markup=False throughout: values, paths and help such as "[store] url" show literally.
        yield Static(f"{self.title_text}  ·  file: {config_path()}", id="form-title", markup=False)
        yield Static(HELP, id="form-help")
        with VerticalScroll(id="form-fields"):
            for n, fld in enumerate(self.fields, start=1):
                with Horizontal(classes="form-row", id=f"row-{n}"):
                    yield Label(f"{n}  {fld.label}", classes="form-label", markup=False)
                    if fld.is_action and not fld.prompt:
                        yield Button(fld.button or "Run", id=f"field-{n}", compact=True)
                    else:
                        yield Input(
                            placeholder=fld.prompt or fld.hint,
                            password=bool(fld.secret),
                            id=f"field-{n}",
                            compact=True,
                        )
                    yield Static("", classes="form-value", id=f"value-{n}", markup=False)
        yield Static("", id="form-message", markup=False)
        yield Static("", id="form-result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        if not self.sub_title:
            self.sub_title = self.title_text
        self._refresh_values()

    def _refresh_values(self) -> None:
        try:
            settings = current_settings(self.app)
            secrets = load_secrets()
        except ConfigError as exc:
            self._say(str(exc), error=True)
            return
        for n, fld in enumerate(self.fields, start=1):
            self.query_one(f"#value-{n}", Static).update(shown_value(fld, settings, secrets))
            if fld.key and not fld.is_action:
                box = self.query_one(f"#field-{n}", Input)
                if not box.has_focus:
                    text = editable_value(fld, settings)
                    box.value = text or ""
                    if text is None:
                        box.placeholder = KEEP_SECRET_URL

    def _say(self, text: str, error: bool = False) -> None:
        box = self.query_one("#form-message", Static)
        box.update(text)
        box.set_class(error, "error")
        box.set_class(not error and bool(text), "ok")

    def _index_of(self, widget_id: str | None) -> int:
        return int((widget_id or "field-0").rsplit("-", 1)[1])

    def action_field(self, n: int) -> None:
        if n > len(self.fields):
            self.app.bell()
            return
        fld = self.fields[n - 1]
        if fld.is_action and not fld.prompt:
            self.query_one(f"#field-{n}", Button).focus()
            self.run_action_field(n, None)
            return
        self.query_one(f"#field-{n}", Input).focus()
        self._say(fld.help or f"editing {fld.label}: type and press Enter to save")

    def action_back(self) -> None:
        if isinstance(self.focused, (Input, Button)):
            self.set_focus(None)  # leave the field first; the next Escape or 0 goes back
            self._say("")
            return
        self.dismiss(None)

    @on(Input.Changed)
    def _check_as_typed(self, event: Input.Changed) -> None:
        n = self._index_of(event.input.id)
        fld = self.fields[n - 1] if 0 < n <= len(self.fields) else None
        if fld is None or not fld.key or fld.is_action or not event.input.has_focus:
            return  # programmatic refreshes are not typing
        problem = check_value(fld.key, event.value, current_settings(self.app))
        shown = redact_url(event.value) if fld.key in REDACTED_KEYS else event.value
        self._say(problem or f"{fld.key} = {shown!r} looks right: Enter saves it", error=bool(problem))

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        n = self._index_of(event.input.id)
        fld = self.fields[n - 1]
        if not fld.is_action and not fld.secret:
            settings = current_settings(self.app)
            if not event.value.strip() and editable_value(fld, settings) is None:
                self.set_focus(None)
                self._say(f"{fld.key} kept: it holds a secret that is not shown; type a whole new URL to replace it")
                return
            problem = check_value(fld.key, event.value, settings)
            if problem:
                self._say(problem, error=True)
                return  # stay in the field to correct it
        # Enter ends the edit: the next digit picks a field instead of typing into this one.
        self.set_focus(None)
        if fld.is_action:
            self.run_action_field(n, event.value)
        elif fld.secret:
            self._save_secret(n, fld.secret, event.value)
            event.input.value = ""
        else:
            self._save_setting(n, fld.key, event.value)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.run_action_field(self._index_of(event.button.id), None)

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-save")
    def _save_setting(self, n: int, key: str, raw: str) -> None:
        try:
            set_value(key, raw.strip())
        except ConfigError as exc:
            self.post_message(FieldRejected(n, key, str(exc)))
            return
        except OSError as exc:
            self.post_message(FieldRejected(n, key, f"cannot write {config_path()} ({exc.strerror})"))
            return
        log.info("setting %s saved", key)
        self.post_message(FieldSaved(n, key, redact_url(raw.strip()) if key in REDACTED_KEYS else raw.strip()))

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-save")
    def _save_secret(self, n: int, name: str, raw: str) -> None:
        value = raw.strip()
        if not value:
            self.post_message(FieldRejected(n, name, "empty value: type the secret, or Esc to keep the current one"))
            return
        try:
            path = save_secret(name, value)
        except (ConfigError, OSError) as exc:
            self.post_message(FieldRejected(n, name, f"secret not saved: {exc}"))
            return
        log.info("secret %s saved", name)  # the name only, never the value
        self.post_message(FieldSaved(n, name, f"{mask(value)} (in {path}, mode 0600)"))

    def run_action_field(self, n: int, text: str | None) -> None:
        fld = self.fields[n - 1]
        screen = form_sections.screen_for_action(fld.action)
        if screen is not None:
            self.app.push_screen(screen, lambda _result: self._refresh_values())
            return
        self._say(f"{fld.label}: running…")
        self._show_result("", ok=True)
        self._run_action(n, fld.action, text, self.saves)

    def _show_result(self, text: str, ok: bool) -> None:
        result = self.query_one("#form-result", Static)
        result.update(text)
        result.set_class(not ok, "error")

    @work(thread=True, exclusive=True, exit_on_error=False, group="form-action")
    def _run_action(self, n: int, action: str, text: str | None, saves: int = 0) -> None:
        try:
            settings = load_settings()
            ok, report = form_sections.run_action(action, settings, self.section, text)
        except OptuiError as exc:
            ok, report = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - shown as one line; the trace goes to the log
            log.exception("form action %s failed", action)
            ok, report = False, f"{action} failed ({exc.__class__.__name__}): see the log file"
        self.post_message(ActionFinished(n, ok, report, saves))

    @on(FieldSaved)
    def _saved(self, message: FieldSaved) -> None:
        self.saves += 1
        refresh_app_settings(self.app)
        self._refresh_values()
        self._show_result("", ok=True)  # a test or check from before this save no longer holds
        shown = redact_url(message.shown) if "://" in message.shown else message.shown
        self._say(f"saved {message.key} = {shown}")

    @on(FieldRejected)
    def _rejected(self, message: FieldRejected) -> None:
        self._say(message.problem, error=True)
        if self.focused is None and 0 < message.index <= len(self.fields):
            box = self.query_one(f"#field-{message.index}")
            if isinstance(box, Input):
                box.focus()  # back into the field to correct it

    @on(ActionFinished)
    def _action_done(self, message: ActionFinished) -> None:
        refresh_app_settings(self.app)
        self._refresh_values()
        label = self.fields[message.index - 1].label
        if message.saves != self.saves:
            self._say(f"{label}: settings changed while it ran, so its result no longer holds: run it again",
                      error=True)
            self._show_result("", ok=True)
            return
        self._say(f"{label}: {'done' if message.ok else 'failed'}", error=not message.ok)
        self._show_result(message.text, message.ok)


def section_screen(section: str) -> Screen[None]:
    """The form screen for one configuration section (see `form_sections.SECTIONS`)."""
    return SectionScreen(section)
