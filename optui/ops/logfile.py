"""The app's log file: where tracebacks go instead of the screen, and a tail reader for the viewer."""

from __future__ import annotations

import logging
import logging.handlers
from collections import deque
from pathlib import Path

from optui.config import Settings

LOG_NAME = "optui.log"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(settings: Settings) -> Path:
    """settings.general.log_dir/optui.log."""
    return Path(settings.general.log_dir).expanduser() / LOG_NAME


def configure_logging(settings: Settings, level: str | None = None) -> Path:
    """Send the root logger to a rotating log file only (a terminal handler would garble the screen)."""
    path = log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_optui", False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
            handler.close()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._optui = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level or settings.general.log_level)
    return path


def set_level(level: str) -> None:
    """Change the running process's log level (the saved setting applies at next start)."""
    logging.getLogger().setLevel(level)


def tail(path: Path, lines: int = 200) -> list[str]:
    """The last `lines` lines of a text file; empty when it does not exist yet."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in deque(handle, maxlen=lines)]
    except FileNotFoundError:
        return []
