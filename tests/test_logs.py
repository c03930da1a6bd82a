"""The one logging module: what reaches logs/optui.log."""

from __future__ import annotations

import logging
from pathlib import Path

from optui.config import Settings
from optui.logs import setup_logging


def _log_once(settings: Settings, level: str) -> str:
    settings.general.log_level = level
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        path = setup_logging(settings)
        assert path is not None
        logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1:8086/api/v2/write %s", level)
        logging.getLogger("httpx").warning("httpx warning %s", level)
        for handler in root.handlers:
            handler.flush()
        return path.read_text(encoding="utf-8")
    finally:
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved[0])


def test_http_client_requests_are_logged_only_at_debug(tmp_path: Path) -> None:
    settings = Settings()
    settings.general.log_dir = str(tmp_path)
    info = _log_once(settings, "INFO")
    assert "HTTP Request" not in info and "httpx warning INFO" in info
    debug = _log_once(settings, "DEBUG")
    assert "HTTP Request: POST http://127.0.0.1:8086/api/v2/write DEBUG" in debug
    assert logging.getLogger("httpcore").level == logging.NOTSET
    _log_once(settings, "INFO")
    assert logging.getLogger("httpcore").level == logging.WARNING
