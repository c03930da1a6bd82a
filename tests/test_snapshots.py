"""Screen snapshots of the dashboard, main menu and wizard at 80x24 and 160x48.

Data is hand-built and the clock injected, so frames are stable: a changed frame means the layout
or a number's formatting changed. Update baselines with `pytest --snapshot-update` and review them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sample_data import SAMPLE_TIME, sample_snapshot
from textual.app import App
from textual.pilot import Pilot

from optui.analytics.premium_flow import FlowBar, FlowSeries
from optui.config import Settings
from optui.screens.dashboard import DashboardScreen

SIZES = [(80, 24), (160, 48)]


def sample_flow(index: str = "NIFTY", timeframe: str = "5m") -> FlowSeries:
    """Twelve five-minute bars ending at the sample time, with a buying tilt at the end."""
    bars = []
    for i in range(12):
        start = SAMPLE_TIME - timedelta(minutes=5 * (11 - i))
        inflow = 4.0 + (i % 4) * 1.5
        outflow = 5.0 - (i % 3) * 0.75
        bars.append(FlowBar(start, inflow, outflow, ce_net_cr=inflow - outflow, pe_net_cr=0.0))
    return FlowSeries(index, timeframe, bars)


class DashboardHost(App[None]):
    """Just the dashboard on hand-built data: no engine, no clock."""

    def __init__(self) -> None:
        super().__init__()
        self.dash = DashboardScreen(
            Settings(), collect=False, clock=lambda: SAMPLE_TIME + timedelta(seconds=4)
        )

    def on_mount(self) -> None:
        self.push_screen(self.dash)


async def show_sample(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, DashboardHost)
    app.dash.show_snapshot(sample_snapshot())
    app.dash.show_flow(sample_flow())
    await pilot.pause()


@pytest.mark.mock
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard_snapshot(snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(DashboardHost(), terminal_size=size, run_before=show_sample)


def _menu_settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.general.log_dir = str(tmp_path / "logs")
    # Relative to the test's working directory (tmp_path, see fixed_config_path): the main
    # menu names the simulator's store under it, the same text on every run.
    s.general.data_dir = "data"
    return s


@pytest.fixture
def fixed_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The wizard prints the configuration path; a per-run temp path would change every frame.
    monkeypatch.setenv("OPTUI_CONFIG_FILE", "/home/trader/.config/optui/optui.toml")
    monkeypatch.setenv("OPTUI_SECRETS_FILE", str(tmp_path / "secrets.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.mock
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_menu_snapshot(snap_compare, size, tmp_path, fixed_config_path) -> None:
    from optui import app as app_module

    app = app_module.OptuiApp(_menu_settings(tmp_path), start="main", mouse=False)
    assert snap_compare(app, terminal_size=size)


@pytest.mark.mock
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_wizard_snapshot(snap_compare, size, tmp_path, fixed_config_path) -> None:
    from optui import app as app_module
    from optui.screens import wizard
    app = app_module.OptuiApp(_menu_settings(tmp_path), start="main", mouse=False)

    async def open_wizard(pilot: Pilot) -> None:
        await pilot.app.push_screen(wizard.WizardScreen())
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_wizard)
