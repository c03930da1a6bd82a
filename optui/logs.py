"""Logging to a file (tracebacks go there, never to the screen) and optionally to stderr."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from optui.config import Settings

LOG_FILE = "optui.log"


def log_file(settings: Settings) -> Path:
    """Where the log file lives."""
    return Path(settings.general.log_dir).expanduser() / LOG_FILE


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
    """Rotating file log in the log directory; stderr gets warnings when asked (headless)."""
    root = logging.getLogger()
    root.setLevel(settings.general.log_level)
    for handler in list(root.handlers):
        if getattr(handler, "_optui", False):
            root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
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
        err.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
        err._optui = True  # type: ignore[attr-defined]
        root.addHandler(err)
    # urllib3 logs full request URLs at DEBUG; Kite puts nothing secret in URLs, but keep it quiet.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    return path
