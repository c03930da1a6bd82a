"""Logging, in one place: the rotating log file (tracebacks go there, never to the screen),
warnings on stderr for the headless collector, and a tail reader for the app's log viewer.

Log lines start with an ISO 8601 time in IST with its offset, e.g.
`2026-11-24T09:15:30.123+05:30 WARNING optui.storage.spool: ...`.
"""

from __future__ import annotations

import logging
import logging.handlers
from collections import deque
from datetime import datetime
from pathlib import Path

from optui.config import Settings
from optui.timeutil import IST

LOG_FILE = "optui.log"

SHOWN: dict[str, object] = {"optui_shown": True}
"""`extra=` for a log call whose text the headless collector already printed on stdout (a
status line's warning, the exit report): it goes to the log file, not again to stderr."""


def _not_shown(record: logging.LogRecord) -> bool:
    """stderr's filter: False for a record marked with SHOWN."""
    return not getattr(record, "optui_shown", False)


def log_file(settings: Settings) -> Path:
    """Where the log file lives."""
    return Path(settings.general.log_dir).expanduser() / LOG_FILE


class ZonedFormatter(logging.Formatter):
    """Times as ISO 8601 in IST with the +05:30 offset, so a line read anywhere is unambiguous."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        return datetime.fromtimestamp(record.created, IST).isoformat(timespec="milliseconds")


class OneLineFormatter(logging.Formatter):
    """The message without a traceback: traces belong in the log file, not on a user's terminal."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info = record.exc_text = record.stack_info = None
        try:
            return super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved


def setup_logging(settings: Settings, to_stderr: bool = False) -> Path | None:
    """Rotating file log in the log directory; stderr gets warnings when asked (headless),
    except those logged with `extra=SHOWN` (printed on stdout already).

    Returns the log file, or None when its directory is not writable (then nothing is logged to
    a file). Calling it again replaces the handlers it added before.
    """
    root = logging.getLogger()
    root.setLevel(settings.general.log_level)
    for handler in list(root.handlers):
        if getattr(handler, "_optui", False):
            root.removeHandler(handler)
    fmt = ZonedFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    target = log_file(settings)
    path: Path | None = target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(target, maxBytes=10_000_000, backupCount=5, encoding="utf-8")
        file_handler.setFormatter(fmt)
        file_handler._optui = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    except OSError:
        path = None
    if to_stderr:
        err = logging.StreamHandler()
        err.setLevel(logging.WARNING)
        err.addFilter(_not_shown)  # already on stdout: stderr keeps the problems said nowhere else
        err.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
        err._optui = True  # type: ignore[attr-defined]
        root.addHandler(err)
    # urllib3 logs full request URLs at DEBUG; Kite puts nothing secret in URLs, but keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    _quiet_http_clients()
    return path


def _quiet_http_clients() -> None:
    """httpx and httpcore (the InfluxDB client's transport) log every request at INFO: they keep
    that only when the root level is DEBUG, else they log warnings and worse."""
    quiet = logging.NOTSET if logging.getLogger().level <= logging.DEBUG else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)


def configure_logging(settings: Settings, level: str | None = None) -> Path:
    """For the full-screen app: the root logger to the rotating log file only (a terminal
    handler would garble the screen)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:  # e.g. basicConfig's stderr handler
            root.removeHandler(handler)
    path = setup_logging(settings, to_stderr=False) or log_file(settings)
    if level:
        root.setLevel(level)
        _quiet_http_clients()
    return path


def set_level(level: str) -> None:
    """Change the running process's log level (the saved setting applies at next start)."""
    logging.getLogger().setLevel(level)
    _quiet_http_clients()


def tail(path: Path, lines: int = 200) -> list[str]:
    """The last `lines` lines of a text file; empty when it does not exist yet."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except FileNotFoundError:
        return []
