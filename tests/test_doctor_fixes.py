"""`optui doctor`'s Kite rows name the fix that fits the failure: a network fault is not a login."""

from __future__ import annotations

from pathlib import Path

import pytest

from optui.config import Settings, secrets_path, write_private
from optui.ops.doctor import token_checks
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import serve
from tests.servers import free_port


def _kite_settings(root: str) -> Settings:
    settings = Settings()
    settings.source.kind = "kite"
    settings.kite.api_key = "sim_key"
    settings.kite.root = root
    return settings


@pytest.mark.integration
def test_an_unreachable_kite_is_reported_as_the_network_not_as_a_login(tmp_path: Path) -> None:
    write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
    rows, _ = token_checks(_kite_settings(f"http://127.0.0.1:{free_port()}"))  # nothing listens
    login = next(r for r in rows if r.name == "Kite login")
    assert login.ok is False and "cannot reach Kite" in login.detail
    assert "log in" not in login.fix and "kite.root" in login.fix


@pytest.mark.integration
def test_a_rejected_token_names_optui_login(tmp_path: Path) -> None:
    write_private(secrets_path(), 'kite_access_token = "not_the_token"\n')
    server = serve(SimulatedExchange(seed=5), "127.0.0.1", 0)
    try:
        rows, _ = token_checks(_kite_settings(server.url))
    finally:
        server.close()
    login = next(r for r in rows if r.name == "Kite login")
    assert login.ok is False
    assert "optui login" in login.fix and "Kite Connect authentication" in login.fix


@pytest.mark.unit
def test_a_running_collector_with_only_warnings_open_passes(tmp_path: Path) -> None:
    """A fresh health file whose open faults are warnings (participant files missing) is a
    running collector: its row passes and the warning is its own informing row; an open error
    (data not collected) fails the row."""
    from datetime import UTC, datetime

    from optui.collectors.health import (
        HEALTH_FILE,
        EventKind,
        HealthEvent,
        Severity,
        write_health_file,
    )
    from optui.ops.doctor import collector_checks

    at = datetime(2026, 11, 27, 5, 30, 10, tzinfo=UTC)
    settings = Settings()
    settings.general.data_dir = str(tmp_path / "data")
    settings.source.kind = "sim"
    path = tmp_path / "data" / "state" / "sim" / HEALTH_FILE
    warning = HealthEvent(EventKind.PARTICIPANTS_CAPTURE_FAILED, Severity.WARNING,
                          "participant data for 2026-11-26 missing oi", "import NSE's files", at)
    error = HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, "Kite answered an error", "wait", at)

    def rows(open_events: list[HealthEvent]) -> dict[str, bool | None]:
        write_health_file(path, {"at": at.isoformat(), "source": "sim", "cycles": 3, "gaps": 0,
                                 "cached_age_s": None, "open": [e.as_dict() for e in open_events],
                                 "recent": []})
        return {r.name: r.ok for r in collector_checks(settings, at)}

    assert rows([warning]) == {"Collector": True, "  warning participants_capture_failed": None}
    assert rows([error, warning]) == {"Collector": False, "  error source_down": False,
                                      "  warning participants_capture_failed": None}
    assert rows([]) == {"Collector": True}
