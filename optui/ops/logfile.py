"""The app's log file: where tracebacks go instead of the screen, and a tail reader for the viewer."""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path

from optui.config import Settings
from optui.logs import log_file as log_path


def configure_logging(settings: Settings, level: str | None = None) -> Path:
    """Send the root logger to the rotating log file only (a terminal handler would garble the screen)."""
    from optui.logs import setup_logging

    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler:  # e.g. basicConfig's stderr handler
            root.removeHandler(handler)
    path = setup_logging(settings, to_stderr=False) or log_path(settings)
    if level:
        root.setLevel(level)
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
