"""The API's bearer token: where it comes from, first-run generation, rotation, and the check.

The token is `OPTUI_API_TOKEN` when set, else `api_token` in the secrets file (mode 0600,
optui.config.secrets_path). When neither exists, `ensure_token` generates one, stores it and
says so once (the caller prints it); `--rotate-token` replaces the stored one. A running server
re-reads the secrets file when it changes, so a rotation takes effect without a restart.

A request is authorised by `Authorization: Bearer TOKEN` (or HTTP Basic with the token as the
password, which a browser prompts for at /docs). A WebSocket may instead give `?token=TOKEN` or
the subprotocols `["optui", "bearer.TOKEN"]` (the server then accepts subprotocol "optui").
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from optui.errors import ConfigError

log = logging.getLogger(__name__)

TOKEN_ENV = "OPTUI_API_TOKEN"
SECRET_NAME = "api_token"
SUBPROTOCOL = "optui"
"""The WebSocket subprotocol accepted when the client offers the token as `bearer.TOKEN`."""
TOKEN_PREFIX = "bearer."


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The token in force and where it came from: "environment", "secrets file", "generated"
    (this run, first use) or "rotated" (this run, on request)."""

    token: str
    origin: str
    path: Path | None = None

    @property
    def new(self) -> bool:
        """True when this run created it: the one time it is shown."""
        return self.origin in ("generated", "rotated")


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def stored_token() -> str:
    """The token in the secrets file, or "" (ConfigError when the file is unreadable)."""
    from optui.config import load_secrets

    return load_secrets(environ={}).get(SECRET_NAME, "")


_stored = stored_token


def ensure_token(rotate: bool = False, environ: dict[str, str] | None = None) -> TokenInfo:
    """The token to serve with: the environment's, else the secrets file's, else a new one
    stored there 0600. `rotate` stores a new one in the secrets file (the environment's, when
    set, still wins: the caller says so). Raises ConfigError when the secrets file cannot be read
    or written."""
    from optui.config import save_secret, secrets_path

    env = dict(os.environ if environ is None else environ)
    if rotate:
        token = new_token()
        try:
            path = save_secret(SECRET_NAME, token)
        except OSError as exc:
            raise ConfigError(f"cannot write the API token to {secrets_path()}: {exc.strerror}") from None
        log.info("API token rotated (stored in %s)", path)
        if env.get(TOKEN_ENV):
            return TokenInfo(env[TOKEN_ENV], "environment", path)
        return TokenInfo(token, "rotated", path)
    if env.get(TOKEN_ENV):
        return TokenInfo(env[TOKEN_ENV], "environment")
    stored = _stored()
    if stored:
        return TokenInfo(stored, "secrets file", secrets_path())
    token = new_token()
    try:
        path = save_secret(SECRET_NAME, token)
    except OSError as exc:
        raise ConfigError(f"cannot write the API token to {secrets_path()}: {exc.strerror}") from None
    log.info("API token generated (stored in %s)", path)
    return TokenInfo(token, "generated", path)


def is_loopback(host: str) -> bool:
    """True for a loopback address or the name localhost."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, info: TokenInfo) -> None:
    """Refuse a non-loopback address unless the token was set explicitly beforehand (the
    environment, or the secrets file from an earlier run or a rotation): raises ConfigError."""
    if is_loopback(host) or info.origin in ("environment", "secrets file", "rotated"):
        return
    raise ConfigError(
        f"refusing to serve on {host} without an API token set beforehand: set {TOKEN_ENV}, or run "
        "`optui serve --rotate-token` once on loopback and use the token it prints"
    )


class TokenSource:
    """The token in force for a running server: the environment's, else the secrets file's
    (re-read at most every `recheck_s` seconds when the file changed), else `fallback`."""

    def __init__(self, fallback: str = "", recheck_s: float = 1.0,
                 environ: dict[str, str] | None = None) -> None:
        self._env = (dict(os.environ if environ is None else environ)).get(TOKEN_ENV, "")
        self._token = fallback
        self._recheck_s = recheck_s
        self._checked = 0.0
        self._stamp: int | None = None
        self._lock = threading.Lock()
        self._refresh(force=True)

    def _refresh(self, force: bool = False) -> None:
        from optui.config import secrets_path

        now = time.monotonic()
        if not force and now - self._checked < self._recheck_s:
            return
        with self._lock:
            self._checked = now
            path = secrets_path()
            try:
                stamp = path.stat().st_mtime_ns
            except OSError:
                return
            if stamp == self._stamp:
                return
            self._stamp = stamp
            try:
                stored = _stored()
            except ConfigError as exc:
                log.warning("API token not re-read: %s", exc)
                return
            if stored:
                self._token = stored

    def current(self) -> str:
        if self._env:
            return self._env
        self._refresh()
        return self._token


def _equal(given: str, token: str) -> bool:
    return bool(token) and hmac.compare_digest(given.encode(), token.encode())


def header_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token an Authorization header carries (Bearer, or Basic's password), else None."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, rest = value.decode("latin-1").strip().partition(" ")
        if scheme.lower() == "bearer":
            return rest.strip()
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(rest.strip(), validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2]
    return None


def websocket_token(scope: dict) -> tuple[str | None, bool]:
    """(token, by subprotocol) a WebSocket handshake carries: the header, else `?token=`, else
    a `bearer.TOKEN` subprotocol."""
    token = header_token(scope.get("headers", []))
    if token is not None:
        return token, False
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query):
        if key == "token":
            return value, False
    for proto in scope.get("subprotocols", []) or []:
        if proto.startswith(TOKEN_PREFIX):
            return proto[len(TOKEN_PREFIX):], True
    return None, False


def authorised(given: str | None, source: TokenSource) -> bool:
    """True when `given` is the token in force (compared in constant time)."""
    return given is not None and _equal(given, source.current())


_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']+|(bearer\.)[^\s,\"']+", re.IGNORECASE)


def redact(text: str) -> str:
    """A log line with any `token=...` or `bearer....` value hidden."""
    return _TOKEN_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactTokens(logging.Filter):
    """Hides token values in log records (the server logs WebSocket paths with their query)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args) \
                if isinstance(record.args, tuple) else record.args
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


__all__ = [
    "SUBPROTOCOL", "TOKEN_ENV", "AuthMiddleware", "RedactTokens", "TokenInfo", "TokenSource", "authorised",
    "check_bind", "ensure_token", "header_token", "is_loopback", "new_token", "redact",
    "websocket_token",
]


class AuthMiddleware:
    """ASGI middleware: every HTTP request and WebSocket handshake must carry the token.

    HTTP without it: 401 JSON with `WWW-Authenticate` (Basic at /docs, so a browser asks for
    it; Bearer elsewhere). A WebSocket without it is refused before it is accepted (HTTP 401
    JSON where the server supports denial responses, else close code 1008). The token given is
    never echoed, logged or put in an error.
    """

    def __init__(self, app: object, source: TokenSource) -> None:
        self.app = app
        self.source = source

    async def __call__(self, scope: dict, receive: object, send: object) -> None:
        from optui.api.errors import dumps, send_json_error

        kind = scope.get("type")
        if kind == "http":
            given = header_token(scope.get("headers", []))
            if not authorised(given, self.source):
                path = scope.get("path", "")
                browser = path in ("/docs", "/openapi.json", "/redoc") or path.startswith("/docs/")
                challenge = 'Basic realm="optui API"' if browser else 'Bearer realm="optui API"'
                why = "missing" if given is None else "wrong"
                await send_json_error(send, 401, (
                    f"API token {why}: send the header 'Authorization: Bearer <token>' "
                    f"(the token is {TOKEN_ENV} or api_token in the secrets file)"),
                    {"WWW-Authenticate": challenge})
                return
        elif kind == "websocket":
            given, by_proto = websocket_token(scope)
            if not authorised(given, self.source):
                why = "missing" if given is None else "wrong"
                message = (f"API token {why}: send 'Authorization: Bearer <token>', ?token=<token> "
                           "or the subprotocols optui, bearer.<token>")
                if "websocket.http.response" in scope.get("extensions", {}) or {}:
                    body = dumps({"error": message})
                    await send({"type": "websocket.http.response.start", "status": 401,  # type: ignore[operator]
                                "headers": [(b"content-type", b"application/json"),
                                            (b"content-length", str(len(body)).encode())]})
                    await send({"type": "websocket.http.response.body", "body": body})  # type: ignore[operator]
                else:
                    await send({"type": "websocket.close", "code": 1008, "reason": "API token " + why})  # type: ignore[operator]
                return
            if by_proto:
                scope = dict(scope)
                scope["optui.subprotocol"] = SUBPROTOCOL
        await self.app(scope, receive, send)  # type: ignore[operator]
