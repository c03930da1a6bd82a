"""Kite Connect login screens: the OAuth flow, pasting a token, checking the stored one, re-login.

All network and file work runs in thread workers that post past-tense messages; the screens only
show what those messages carry, and never show a secret.
"""

from __future__ import annotations

import logging
import os
import sys
import webbrowser
from collections.abc import Callable
from typing import Any, Literal

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, Input, Static
from textual.worker import get_current_worker

from optui.collectors.kite_auth import (
    CallbackResult,
    CallbackServer,
    LoginError,
    TokenStatus,
    exchange_request_token,
    login_url,
    parse_redirect,
    store_access_token,
    token_status,
    validate_token,
)
from optui.config import load_secrets, secrets_path
from optui.errors import OptuiError
from optui.screens.settings_form import current_settings
from optui.screens.worker_reports import ReportsWorkers
from optui.timeutil import fmt_ist

log = logging.getLogger(__name__)

ENV_TOKEN_WARNING = (
    "\nOPTUI_KITE_ACCESS_TOKEN is set in the environment and overrides the stored token: "
    "unset it so the new token is used."
)


class CallbackListening(Message):
    """The local callback server is up at `url`."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


class CallbackCaptured(Message):
    """Kite's redirect reached the callback server (with or without a request token)."""

    def __init__(self, result: CallbackResult) -> None:
        super().__init__()
        self.result = result


class LoginSucceeded(Message):
    """A request token was exchanged and the access token stored."""

    def __init__(self, user_name: str, user_id: str, expires_at: Any) -> None:
        super().__init__()
        self.user_name, self.user_id, self.expires_at = user_name, user_id, expires_at


class LoginFailed(Message):
    """A login step failed; `problem` names the cause and the fix."""

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem


class TokenValidated(Message):
    """An access token answered a profile call."""

    def __init__(self, profile: dict[str, Any], status: TokenStatus) -> None:
        super().__init__()
        self.profile, self.status = profile, status


class TokenRejected(Message):
    """An access token is missing, expired or refused; nothing was saved."""

    def __init__(self, problem: str) -> None:
        super().__init__()
        self.problem = problem


def display_available() -> bool:
    """Whether a browser can open on this machine's screen (not over SSH, not headless)."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class KiteLoginScreen(ReportsWorkers, Screen[bool]):
    """Shows the login URL, listens for Kite's redirect and accepts a pasted redirect or token."""

    CSS_PATH = "wizard.tcss"
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, port: int | None = None, open_browser: bool | None = None) -> None:
        super().__init__(name="kite-login")
        self._port = port  # None: the redirect URL's port; 0 in tests for a free one
        self._open_browser = display_available() if open_browser is None else open_browser
        self.logged_in = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Kite Connect login", id="login-title", classes="form-title")
        # markup=False: URLs, paths and Kite's messages show literally (brackets included).
        yield Static("", id="login-url", markup=False)
        yield Static("", id="login-how", markup=False)
        yield Input(placeholder="paste the redirect URL or the request_token, then Enter",
                    id="login-paste")
        yield Static("", id="login-status", markup=False)
        yield Static("", id="login-result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        settings = current_settings(self.app)
        redirect = settings.kite.redirect_url
        try:
            url = login_url(settings)
        except OptuiError as exc:
            self._status(str(exc), error=True)
            return
        self.query_one("#login-url", Static).update(f"Open: {url}")
        self.query_one("#login-how", Static).update(
            f"Kite sends you back to {redirect}, where this app listens. Over SSH, forward it first: "
            f"ssh -L {self._redirect_port(redirect)}:127.0.0.1:{self._redirect_port(redirect)} "
            "HOST. Or paste the address the browser ends on (or just the request_token) below."
        )
        if not load_secrets().get("kite_api_secret"):
            self._status("the API secret is not set: set it in the wizard (1 Kite credentials → 2) "
                         "or OPTUI_KITE_API_SECRET before logging in", error=True)
        self._listen(redirect)
        if self._open_browser:
            self._browse(url)

    @staticmethod
    def _redirect_port(redirect: str) -> int:
        from urllib.parse import urlsplit

        try:
            return urlsplit(redirect).port or 80
        except ValueError:
            return 5000

    def _status(self, text: str, error: bool = False) -> None:
        box = self.query_one("#login-status", Static)
        box.update(text)
        box.set_class(error, "error")

    @work(thread=True, exclusive=True, exit_on_error=False, group="login-browser")
    def _browse(self, url: str) -> None:
        try:
            webbrowser.open(url, new=2)
        except webbrowser.Error:
            log.info("no browser could be opened for the Kite login")

    @work(thread=True, exclusive=True, exit_on_error=False, group="login-listen")
    def _listen(self, redirect: str) -> None:
        worker = get_current_worker()
        try:
            server = CallbackServer(redirect, port=self._port).start()
        except LoginError as exc:
            self.post_message(LoginFailed(str(exc)))
            return
        self.post_message(CallbackListening(server.url))
        try:
            while not worker.is_cancelled:
                result = server.wait(0.25)
                if result is None:
                    continue
                self.post_message(CallbackCaptured(result))
                if result.ok:
                    break
        finally:
            server.close()

    @work(thread=True, exclusive=True, exit_on_error=False, group="login-exchange")
    def _exchange(self, request_token: str) -> None:
        try:
            settings = current_settings(self.app)
            secret = load_secrets().get("kite_api_secret", "")
            session = exchange_request_token(settings, settings.kite.api_key, secret, request_token)
            store_access_token(session.access_token, session.obtained_at)
        except OptuiError as exc:
            self.post_message(LoginFailed(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown as one line; the trace goes to the log
            log.exception("Kite token exchange failed")
            self.post_message(LoginFailed(f"login failed ({exc.__class__.__name__}): see the log file"))
            return
        self.post_message(LoginSucceeded(session.user_name, session.user_id, session.expires_at))

    @on(CallbackListening)
    def _listening(self, message: CallbackListening) -> None:
        self.listening_url = message.url
        if not self.query_one("#login-status", Static).has_class("error"):
            self._status(f"waiting for Kite's redirect on {message.url} …")

    @on(CallbackCaptured)
    def _captured(self, message: CallbackCaptured) -> None:
        if message.result.request_token is None:
            self._status(message.result.error or "the redirect had no request token", error=True)
            return
        self._status("request token received: exchanging it for an access token …")
        self._exchange(message.result.request_token)

    @on(Input.Submitted, "#login-paste")
    def _pasted(self, event: Input.Submitted) -> None:
        try:
            token = parse_redirect(event.value)
        except LoginError as exc:
            self._status(str(exc), error=True)
            return
        event.input.value = ""
        self._status("exchanging the pasted request token …")
        self._exchange(token)

    @on(LoginSucceeded)
    def _succeeded(self, message: LoginSucceeded) -> None:
        self.logged_in = True
        self.workers.cancel_group(self, "login-listen")
        self._status("logged in")
        self.query_one("#login-result", Static).update(
            f"Logged in as {message.user_name or '?'} ({message.user_id or '?'}). Access token saved "
            f"to {secrets_path()} (mode 0600); it expires at "
            f"{fmt_ist(message.expires_at, with_date=True)}. Esc goes back."
            + ENV_TOKEN_WARNING * bool(os.environ.get("OPTUI_KITE_ACCESS_TOKEN"))
        )

    @on(LoginFailed)
    def _failed(self, message: LoginFailed) -> None:
        self._status(message.problem, error=True)

    def action_back(self) -> None:
        self.dismiss(self.logged_in)


class TokenPromptScreen(ReportsWorkers, Screen[bool]):
    """`manual`: paste an access token, checked with a profile call before saving.
    `previous`: check the stored token with a profile call and show when it expires."""

    CSS_PATH = "wizard.tcss"
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, mode: Literal["manual", "previous"] = "manual") -> None:
        if mode not in ("manual", "previous"):
            raise ValueError(f"mode must be 'manual' or 'previous', not {mode!r}")
        super().__init__(name=f"token-{mode}")
        self.mode = mode
        self.valid = False

    def compose(self) -> ComposeResult:
        yield Header()
        title = "Enter an access token" if self.mode == "manual" else "Use the previous token"
        yield Static(title, id="token-title", classes="form-title")
        if self.mode == "manual":
            yield Input(placeholder="paste the access token (hidden), then Enter", password=True,
                        id="token-input")
        yield Static("", id="token-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        if self.mode == "previous":
            self._say("checking the stored token with a profile call …")
            self._check(None)

    def _say(self, text: str, error: bool = False) -> None:
        box = self.query_one("#token-status", Static)
        box.update(text)
        box.set_class(error, "error")

    @on(Input.Submitted, "#token-input")
    def _submitted(self, event: Input.Submitted) -> None:
        token = event.value.strip()
        event.input.value = ""
        if not token:
            self._say("nothing pasted: paste the access token, or Esc to go back", error=True)
            return
        self._say("checking the token with a profile call …")
        self._check(token)

    @work(thread=True, exclusive=True, exit_on_error=False, group="token-check")
    def _check(self, pasted: str | None) -> None:
        try:
            settings = current_settings(self.app)
            secrets = load_secrets()
            token = pasted if pasted is not None else secrets.get("kite_access_token", "")
            if not token:
                self.post_message(TokenRejected(
                    "no stored access token: log in (3 Production → 2) or enter one (→ 3)"))
                return
            profile = validate_token(settings, settings.kite.api_key, token)
            if pasted is not None:
                status = store_access_token(pasted)
            else:
                status = token_status(settings, secrets)
        except OptuiError as exc:
            self.post_message(TokenRejected(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown as one line; the trace goes to the log
            log.exception("access token check failed")
            self.post_message(TokenRejected(f"token check failed ({exc.__class__.__name__}): see the log"))
            return
        self.post_message(TokenValidated(profile, status))

    @on(TokenValidated)
    def _validated(self, message: TokenValidated) -> None:
        self.valid = True
        who = f"{message.profile.get('user_name', '?')} ({message.profile.get('user_id', '?')})"
        saved = f" Saved to {secrets_path()} (mode 0600)." if self.mode == "manual" else ""
        if self.mode == "manual" and os.environ.get("OPTUI_KITE_ACCESS_TOKEN"):
            saved += ENV_TOKEN_WARNING
        self._say(f"Token valid for {who}.{saved} {message.status.describe()}. Esc goes back.")

    @on(TokenRejected)
    def _rejected(self, message: TokenRejected) -> None:
        self._say(message.problem, error=True)

    def action_back(self) -> None:
        self.dismiss(self.valid)


class ReloginPrompt(ModalScreen[bool]):
    """Pushed from any screen when collection hits an expired token: log in now, or later."""

    CSS_PATH = "wizard.tcss"
    BINDINGS = [
        Binding("enter,l", "login", "Log in now"),
        Binding("escape,n", "later", "Later"),
    ]

    def __init__(self, problem: str = "", on_login: Callable[[bool | None], None] | None = None) -> None:
        super().__init__(name="relogin")
        self.problem = problem or "The Kite access token has expired (every morning about 06:00 IST)."
        self._on_login = on_login

    def compose(self) -> ComposeResult:
        with Vertical(id="relogin-box"):
            yield Static("Kite login needed", classes="form-title")
            yield Static(self.problem, id="relogin-problem", markup=False)
            yield Static("Collection pauses until a new token is stored.")
            with Horizontal(id="relogin-buttons"):
                yield Button("Log in now (Enter)", id="relogin-yes", variant="primary", compact=True)
                yield Button("Later (Esc)", id="relogin-no", compact=True)

    @on(Button.Pressed, "#relogin-yes")
    def action_login(self) -> None:
        app = self.app
        self.dismiss(True)
        app.push_screen(KiteLoginScreen(), self._on_login)

    @on(Button.Pressed, "#relogin-no")
    def action_later(self) -> None:
        self.dismiss(False)
