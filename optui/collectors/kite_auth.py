"""Kite Connect login: login URL, local callback server, token exchange and the 0600 token store.

Textual-free so the same steps serve the app, `optui setup --auto` and tests; every failure is a
LoginError (or a typed source error) whose message names the problem and the fix, and no function
here ever logs or reprs a secret.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from optui.config import Settings, save_secret, secrets_path, write_private
from optui.errors import ConfigError, OptuiError
from optui.timeutil import IST, UTC, now_utc

log = logging.getLogger(__name__)

TOKEN_EXPIRY_TIME = time(6, 0)  # Kite invalidates access tokens every morning around 06:00 IST
SECRET_REJECTED = "Kite rejected the API secret: check it in the Kite developer console"
META_FILE = "kite_token.json"


class LoginError(OptuiError):
    """The Kite login could not be completed; the message says why and what to do."""


@dataclass(frozen=True)
class CallbackResult:
    """What one redirect to the callback URL carried."""

    request_token: str | None = field(repr=False)
    status: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.request_token is not None and self.error is None


@dataclass(frozen=True)
class LoginSession:
    """The outcome of a token exchange (the access token is kept out of the repr)."""

    access_token: str = field(repr=False)
    user_id: str
    user_name: str
    obtained_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenStatus:
    """Whether an access token is stored and when it stops working."""

    present: bool
    obtained_at: datetime | None
    expires_at: datetime | None
    expired: bool

    def describe(self) -> str:
        if not self.present:
            return "no access token stored: log in (Kite Connect authentication)"
        if self.expires_at is None:
            return "access token set (expiry unknown: it was not obtained here)"
        when = self.expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
        if self.expired:
            return f"access token expired at {when}: log in again"
        return f"access token valid until about {when}"


def login_url(settings: Settings, api_key: str | None = None) -> str:
    """The Kite login page for this app: `{kite.login_url}?v=3&api_key=KEY`."""
    key = (api_key if api_key is not None else settings.kite.api_key).strip()
    if not key:
        raise ConfigError(
            "kite.api_key is not set: enter it in the configuration wizard (1 Kite credentials → 1)"
        )
    return f"{settings.kite.login_url}?{urlencode({'v': 3, 'api_key': key})}"


def token_expiry(obtained_at: datetime) -> datetime:
    """The first 06:00 IST strictly after `obtained_at` (aware), when Kite drops the token."""
    if obtained_at.tzinfo is None:
        raise ValueError("token_expiry needs a timezone-aware datetime")
    local = obtained_at.astimezone(IST)
    expiry = datetime.combine(local.date(), TOKEN_EXPIRY_TIME, tzinfo=IST)
    if expiry <= local:
        expiry += timedelta(days=1)
    return expiry


def _result_from_query(query: str) -> CallbackResult:
    params = parse_qs(query)
    status = params.get("status", [""])[0]
    token = params.get("request_token", [""])[0].strip()
    if not token:
        shown = status or "missing"
        return CallbackResult(
            None,
            status,
            f"the redirect carried no request_token (status={shown}): log in again on the Kite "
            "page; if it keeps happening, check that the app's redirect URL in the Kite developer "
            "console matches kite.redirect_url",
        )
    if status and status != "success":
        return CallbackResult(None, status, f"Kite reported login status {status!r}: log in again")
    return CallbackResult(token, status or "success")


def parse_redirect(text: str) -> str:
    """The request_token from a pasted redirect URL, a query string, or a bare token."""
    raw = text.strip()
    if not raw:
        raise LoginError("nothing pasted: paste the whole redirect URL or the request_token")
    if "request_token" in raw or "?" in raw or "://" in raw or "=" in raw:
        parts = urlsplit(raw)
        query = parts.query if parts.query else raw.lstrip("?")
        result = _result_from_query(query)
        if result.request_token is None:
            raise LoginError(result.error or "no request_token in the pasted text")
        return result.request_token
    if not raw.isalnum():
        raise LoginError(
            f"{raw[:20]!r} is not a request token (letters and digits only): paste the redirect URL"
        )
    return raw


class _Handler(BaseHTTPRequestHandler):
    server: _CallbackHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != self.server.expected_path.rstrip("/"):
            self._answer(404, "Not the login callback", "This address only answers the Kite redirect.")
            return
        result = _result_from_query(parts.query)
        self.server.deliver(result)
        if result.ok:
            self._answer(200, "Login captured", "optui has the request token. Return to the terminal.")
        else:
            self._answer(400, "Login not captured", result.error or "")

    def _answer(self, code: int, title: str, body: str) -> None:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>optui: {html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(body)}</p></body></html>"
        ).encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        # The query string holds the request token: never write request lines to any log.
        return


class _CallbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], expected_path: str) -> None:
        self.expected_path = expected_path or "/"
        self._results: list[CallbackResult] = []
        self._ready = threading.Condition()
        super().__init__(address, _Handler)

    def deliver(self, result: CallbackResult) -> None:
        with self._ready:
            self._results.append(result)
            self._ready.notify_all()

    def take(self, timeout: float | None) -> CallbackResult | None:
        with self._ready:
            if not self._results:
                self._ready.wait(timeout)
            return self._results.pop(0) if self._results else None


class CallbackServer:
    """Listens on the redirect URL's host, port and path for Kite's redirect (works via `ssh -L`)."""

    def __init__(self, redirect_url: str, port: int | None = None) -> None:
        parts = urlsplit(redirect_url)
        if parts.scheme != "http" or not parts.hostname:
            raise LoginError(
                f"kite.redirect_url = {redirect_url!r}: the callback server needs a plain "
                "http://HOST:PORT/PATH address such as http://127.0.0.1:5000/success"
            )
        self.host = parts.hostname
        self.port = (parts.port or 80) if port is None else port
        self.path = parts.path or "/"
        self._server: _CallbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The address actually listened on (the bound port when 0 was asked for)."""
        return f"http://{self.host}:{self.port}{self.path}"

    def start(self) -> CallbackServer:
        try:
            self._server = _CallbackHTTPServer((self.host, self.port), self.path)
        except OSError as exc:
            raise LoginError(
                f"cannot listen on {self.host}:{self.port} for the Kite redirect ({exc.strerror}): "
                "close what uses that port or change kite.redirect_url (and the app's redirect URL "
                "in the Kite developer console); you can also paste the redirect URL instead"
            ) from None
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
            name="kite-callback",
        )
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> CallbackResult | None:
        """The next redirect received, or None after `timeout` seconds."""
        if self._server is None:
            raise LoginError("the callback server is not running")
        return self._server.take(timeout)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def __enter__(self) -> CallbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client(settings: Settings, api_key: str, access_token: str | None = None) -> Any:
    from kiteconnect import KiteConnect

    if not api_key.strip():
        raise ConfigError(
            "kite.api_key is not set: enter it in the configuration wizard (1 Kite credentials → 1)"
        )
    return KiteConnect(api_key.strip(), access_token=access_token, root=settings.kite.root, timeout=10)


def _exchange_error(exc: Exception, settings: Settings) -> OptuiError:
    from kiteconnect import exceptions as kex

    text = str(exc).lower()
    if isinstance(exc, (kex.TokenException, kex.InputException)):
        if "checksum" in text or "secret" in text:
            return LoginError(SECRET_REJECTED)
        if "api_key" in text or "api key" in text:
            return LoginError("Kite rejected the API key: check kite.api_key against the developer console")
        return LoginError(
            "Kite rejected the request token (it works once, for a few minutes): log in again"
        )
    if isinstance(exc, kex.KiteException):
        return LoginError(f"Kite answered an error during login ({exc}, HTTP {getattr(exc, 'code', '?')})")
    return LoginError(
        f"cannot reach Kite at {settings.kite.root} ({exc.__class__.__name__}): check the network "
        "and kite.root"
    )


def exchange_request_token(
    settings: Settings, api_key: str, api_secret: str, request_token: str,
    now: datetime | None = None,
) -> LoginSession:
    """Trade a request token and the API secret for an access token (`generate_session`)."""
    if not api_secret:
        raise ConfigError(
            "the Kite API secret is not set: enter it in the wizard (1 Kite credentials → 2) or set "
            "OPTUI_KITE_API_SECRET"
        )
    kite = _client(settings, api_key)
    try:
        data = kite.generate_session(request_token, api_secret)
    except Exception as exc:  # noqa: BLE001 - every client failure becomes a message
        raise _exchange_error(exc, settings) from None
    token = str(data.get("access_token") or "")
    if not token:
        raise LoginError("Kite's answer had no access token: log in again")
    obtained = now or now_utc()
    return LoginSession(
        access_token=token,
        user_id=str(data.get("user_id") or ""),
        user_name=str(data.get("user_name") or data.get("user_shortname") or ""),
        obtained_at=obtained,
        expires_at=token_expiry(obtained),
    )


def _fingerprint(token: str) -> str:
    # Ties the stored times to one token without storing anything that could be replayed.
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def meta_path() -> Path:
    """The 0600 file with when the stored access token was obtained and when it expires."""
    return secrets_path().with_name(META_FILE)


def store_access_token(token: str, obtained_at: datetime | None = None) -> TokenStatus:
    """Save the access token (secrets file, 0600) and its obtained and expiry times (0600)."""
    token = token.strip()
    if not token:
        raise LoginError("empty access token: paste the token Kite gave you")
    obtained = obtained_at or now_utc()
    expires = token_expiry(obtained)
    save_secret("kite_access_token", token)
    meta = {
        "fingerprint": _fingerprint(token),
        "obtained_at": obtained.astimezone(UTC).isoformat(),
        "expires_at": expires.astimezone(UTC).isoformat(),
    }
    write_private(meta_path(), json.dumps(meta, indent=2) + "\n")
    log.info("Kite access token stored; expires %s", expires.isoformat())
    return TokenStatus(True, obtained, expires, False)


def token_status(
    settings: Settings, secrets: dict[str, str], now: datetime | None = None
) -> TokenStatus:
    """Whether an access token is available and, if it was obtained here, when it expires."""
    token = secrets.get("kite_access_token", "")
    if not token:
        return TokenStatus(False, None, None, False)
    obtained = expires = None
    try:
        meta = json.loads(meta_path().read_text(encoding="utf-8"))
        if meta.get("fingerprint") == _fingerprint(token):
            obtained = datetime.fromisoformat(meta["obtained_at"])
            expires = datetime.fromisoformat(meta["expires_at"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no or unreadable metadata: the token came from elsewhere; expiry unknown
    at = now or now_utc()
    return TokenStatus(True, obtained, expires, bool(expires is not None and at >= expires))


def validate_token(settings: Settings, api_key: str, token: str) -> dict[str, Any]:
    """The user profile for this token (`kite.profile()`), or a typed error naming the fix."""
    from optui.collectors.kite_source import map_kite_error

    if not token.strip():
        raise LoginError("no access token given: paste one or log in")
    kite = _client(settings, api_key, token.strip())
    try:
        profile = kite.profile()
    except Exception as exc:  # noqa: BLE001 - every client failure becomes a typed error
        raise map_kite_error(exc, "profile check") from None
    return dict(profile or {})


def check_permissions(settings: Settings, api_key: str, token: str) -> list[tuple[str, bool, str]]:
    """Try the calls optui needs (profile, quote, ltp); one (name, ok, detail) row per call."""
    from optui.collectors.kite_source import map_kite_error

    kite = _client(settings, api_key, token.strip())
    calls: list[tuple[str, Any]] = [
        ("profile", lambda: kite.profile()),
        ("quote", lambda: kite.quote(["NSE:NIFTY 50"])),
        ("ltp", lambda: kite.ltp(["NSE:NIFTY 50"])),
    ]
    rows: list[tuple[str, bool, str]] = []
    for name, call in calls:
        try:
            call()
            rows.append((name, True, "allowed"))
        except Exception as exc:  # noqa: BLE001 - each call's failure is reported, not raised
            rows.append((name, False, str(map_kite_error(exc, name))))
    return rows


_KEY_NAMES = {
    "api_key": "api_key", "kite_api_key": "api_key",
    "api_secret": "api_secret", "kite_api_secret": "api_secret",
    "access_token": "access_token", "kite_access_token": "access_token",
}


def read_credentials_file(path: Path) -> dict[str, str]:
    """api_key / api_secret / access_token from a TOML, JSON or KEY=VALUE (.env) file."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise LoginError(f"cannot read {path} ({exc.strerror}): check the path") from None
    data: dict[str, Any] = {}
    try:
        loaded = json.loads(text)
        data = loaded if isinstance(loaded, dict) else {}
    except ValueError:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            for line in text.splitlines():
                name, sep, value = line.strip().removeprefix("export ").partition("=")
                if sep and not name.startswith("#"):
                    data[name.strip()] = value.strip().strip("'\"")
    flat: dict[str, Any] = dict(data)
    for nested in ("kite", "zerodha"):
        if isinstance(data.get(nested), dict):
            flat.update(data[nested])
    out: dict[str, str] = {}
    for name, value in flat.items():
        key = _KEY_NAMES.get(str(name).lower().removeprefix("optui_"))
        if key and isinstance(value, (str, int)) and str(value).strip():
            out[key] = str(value).strip()
    if "api_key" not in out and "api_secret" not in out:
        raise LoginError(
            f"{path}: no api_key or api_secret found: use lines like KITE_API_KEY=... and "
            "KITE_API_SECRET=... (or a TOML/JSON file with api_key and api_secret)"
        )
    return out
