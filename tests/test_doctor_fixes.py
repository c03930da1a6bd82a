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
