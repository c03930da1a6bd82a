"""Watch the 0600 secrets file for a new Kite access token while the source is paused.

Kite invalidates access tokens every morning (about 06:00 IST). The collector does not exit: it
pauses the source and polls this watch once an interval; a re-login (the app, `optui setup`, or an
operator editing the file) stores a new token, and the next poll hands it to the source without a
restart. The token is never logged or shown.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

from optui.config import secrets_path

TOKEN_KEY = "kite_access_token"


class SecretsWatch:
    """Remembers the secrets file's state (mtime, size, content digest) and tells a change.

    `path` defaults to the configured secrets file (OPTUI_SECRETS_FILE or secrets.toml beside the
    config). A missing file reads as empty; a file that cannot be parsed reads as no token.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or secrets_path()
        self._seen = self._fingerprint()

    def _fingerprint(self) -> tuple[int, int, str]:
        try:
            stat = self.path.stat()
            digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return (0, 0, "")
        return (stat.st_mtime_ns, stat.st_size, digest)

    def mark(self) -> None:
        """Take the file's current state as seen (call when the token is rejected)."""
        self._seen = self._fingerprint()

    def changed(self) -> bool:
        """Whether the file's content changed since the last `mark` (mtime alone is not enough:
        an editor may rewrite the same bytes)."""
        now = self._fingerprint()
        if now[2] == self._seen[2]:
            self._seen = now
            return False
        self._seen = now
        return True

    def token(self) -> str:
        """The access token stored in the file now, '' when none (or unreadable)."""
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return ""
        value = data.get(TOKEN_KEY)
        return str(value) if value else ""
