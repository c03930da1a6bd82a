"""Shared test setup: every test runs with its own config, secrets and data paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from servers import influx_process, influx_server, redis_server, victoria_server  # noqa: F401

FIXTURES = Path(__file__).resolve().parent / "fixtures"  # real files kept in the repository

# No per-example deadline: on a shared 2-core machine an example's time says nothing about the
# code (test_iv_standing_bounds failed its 200 ms default at load 16); speed goals are benchmarks.
hypothesis_settings.register_profile("optui", deadline=None)
hypothesis_settings.load_profile("optui")


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point config discovery at an empty temp dir so a developer's files never leak into tests."""
    home = tmp_path_factory.mktemp("optui-home")
    monkeypatch.setenv("OPTUI_CONFIG_FILE", str(home / "optui.toml"))
    monkeypatch.setenv("OPTUI_SECRETS_FILE", str(home / "secrets.toml"))
    for name in ("OPTUI_KITE_API_SECRET", "OPTUI_KITE_ACCESS_TOKEN", "OPTUI_INFLUXDB_TOKEN", "OPTUI_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    # A user's NO_COLOR turns every Textual app monochrome; tests that want it set it themselves.
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def fixtures_dir() -> Path:
    """The real exchange and Kite files in tests/fixtures (sources in its README)."""
    assert FIXTURES.is_dir(), f"test fixtures not found at {FIXTURES}"
    return FIXTURES
