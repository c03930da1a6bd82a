"""The app survives any terminal size, recovers when it grows, and a crash is logged and fails.

The sizes are the ones that crashed it: 3x5 on the main menu (an OptionList laid out at zero
width under the too-small cover), and resize storms across the dashboard's wide/tabbed switch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sample_data import sample_snapshot
from textual.widgets import TabbedContent

from optui.app import OptuiApp, TooSmallScreen
from optui.config import Settings
from optui.screens.dashboard import DashboardScreen
from optui.widgets.keyed_table import cell_text
from optui.widgets.overview_table import OverviewTable

pytestmark = pytest.mark.chaos

TINY = [(3, 5), (1, 1), (80, 1), (1, 40), (79, 23), (2, 2)]


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("OPTUI_CONFIG_FILE", str(tmp_path / "home" / "optui.toml"))
    monkeypatch.chdir(tmp_path)
    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.general.log_dir = str(tmp_path / "logs")
    s.store.url = f"sqlite:///{tmp_path / 'data' / 'optui.db'}"
    yield s
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_optui", False)]:
        root.removeHandler(handler)
        handler.close()


async def test_main_menu_survives_tiny_sizes_and_recovers(settings: Settings) -> None:
    app = OptuiApp(settings, mouse=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        for width, height in TINY:
            await pilot.resize_terminal(width, height)
            await pilot.pause()
            assert isinstance(app.screen, TooSmallScreen), (width, height)
            assert app.is_running and app.return_code is None, (width, height)
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert type(app.screen).__name__ == "MainMenuScreen"
        # The menu was laid out again at the new size: its options are on screen.
        assert app.screen.query_one("OptionList").size.width > 0
        assert app.is_running and app.return_code is None


class QuietDashboard(DashboardScreen):
    """The dashboard on sample data, without a collector."""

    def __init__(self) -> None:
        super().__init__(collect=False)


async def test_dashboard_survives_a_resize_storm(settings: Settings) -> None:
    app = OptuiApp(settings, mouse=False)
    # One pass of every switch: tabbed to wide and back, to too-small and back, at 119/120 columns.
    storm = [(90, 30), (160, 48), (3, 5), (100, 30), (1, 1), (130, 40), (80, 24), (200, 60),
             (81, 24), (119, 30), (120, 30), (2, 2), (90, 30)]
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        dash = QuietDashboard()
        await app.push_screen(dash)
        dash.show_snapshot(sample_snapshot())
        await pilot.pause()
        for i, (width, height) in enumerate(storm):
            await pilot.resize_terminal(width, height)
            if i % 2:
                dash.show_snapshot(sample_snapshot())  # a cycle lands mid-storm
            if i % 3 == 0:
                await pilot.pause()
        await pilot.pause()
        await pilot.pause()
        assert app.is_running and app.return_code is None
        assert app.screen is dash
        # 90 columns: the tabbed layout, with the overview showing every index.
        assert dash.query(TabbedContent)
        assert dash.query_one(OverviewTable).row_count == 5
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        await pilot.pause()
        assert not dash.query(TabbedContent)
        assert dash.query_one(OverviewTable).row_count == 5


async def test_unexpected_error_is_logged_and_fails_the_exit_status(
    settings: Settings, tmp_path: Path
) -> None:
    def crash() -> None:
        raise RuntimeError("layout went sideways")

    app = OptuiApp(settings, mouse=False)
    with pytest.raises(RuntimeError, match="layout went sideways"):
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            app.call_later(crash)  # raised inside the app's own message loop
            await pilot.pause()
            await pilot.pause()
    assert app.return_code == 1
    log_text = (tmp_path / "logs" / "optui.log").read_text()
    assert "optui stopped on an unexpected error" in log_text
    assert "Traceback" in log_text and "layout went sideways" in log_text


@pytest.mark.mock
@pytest.mark.parametrize("size", [(120, 40), (135, 40), (160, 48), (200, 50)])
async def test_the_overview_keeps_its_figures_in_sight_beside_the_flow_panel(size) -> None:  # noqa: ANN001
    """From 120 columns the overview shares the top row with the 58-column flow panel: at 120
    it showed Index, LTP, Chg, Chg % and ATM and cut ATM IV, PCR, Max pain, Straddle and Expiry
    off. Now the points change, the ATM strike, the expiry and then the percent change go first,
    so the table always fits its panel and ATM IV, PCR, Max pain and Straddle stay."""
    from test_snapshots import DashboardHost

    app = DashboardHost()
    async with app.run_test(size=size) as pilot:
        app.dash.show_snapshot(sample_snapshot())
        await pilot.pause()
        await pilot.pause()
        table = app.dash.query_one(OverviewTable)
        assert table.virtual_size.width <= table.size.width, (table.column_keys, table.size)
        assert {"index", "ltp", "atm_iv", "pcr", "max_pain", "straddle"} <= set(table.column_keys)
        if size[0] >= 160:
            assert len(table.column_keys) == 10  # everything, as before


@pytest.mark.mock
@pytest.mark.parametrize("days", [42, 294])
async def test_the_80_column_overview_shows_iv_rank_and_percentile(days: int) -> None:
    """At 80x24 the overview has no border for the IV standing subtitle and showed none (the
    charts screen did): the compact table's IVR/IVP column gives each index's rank and
    percentile, with the days behind them when less than a year, and the table still fits."""
    from test_snapshots import DashboardHost

    from optui.analytics.vol_history import YEAR_DAYS, iv_standing
    from optui.widgets.keyed_table import cell_text
    from optui.widgets.overview_table import bucket_stats

    snap = sample_snapshot()
    ov = snap.indices["NIFTY"].overview
    b = bucket_stats(ov, "this_week")
    assert b is not None
    closes = [b.atm_iv - 3.0 + 6.0 * (n % 7) / 6 for n in range(days)]  # 8.8 .. 14.8 around 11.8
    app = DashboardHost()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.dash.query_one(OverviewTable)
        assert table.compact
        table.iv_history = {("NIFTY", b.bucket): (closes, [26000.0] * days)}
        app.dash.show_snapshot(snap)
        await pilot.pause()
        await pilot.pause()
        want = iv_standing(b.atm_iv, closes)
        assert want.days == min(days, YEAR_DAYS)
        rank, pct = f"{want.rank:.0f}", f"{want.percentile:.0f}"
        assert (rank, pct) == ("50", "43")  # 11.8 in 8.8..14.8; 3 of 7 closes below it
        cell = cell_text(table.get_cell("NIFTY", "iv_standing"))
        assert cell == (f"{rank}/{pct} {days}d" if days < YEAR_DAYS else f"{rank}/{pct}"), cell
        assert cell_text(table.get_cell("BANKNIFTY", "iv_standing")) == "–"  # nothing stored
        assert {"index", "ltp", "chg_pct", "atm_iv", "iv_standing", "pcr", "max_pain",
                "straddle"} == set(table.column_keys)
        assert table.virtual_size.width <= table.size.width, (table.column_keys, table.size)


@pytest.mark.mock
@pytest.mark.parametrize("size", [(120, 40), (140, 40), (160, 48)])
async def test_the_chain_shows_both_sides_oi_and_the_health_log_has_room(size) -> None:  # noqa: ANN001
    """At 120x40 the chain was wider than its panel: the calls showed OI, OI change and buildup
    while the puts' were past the right edge, and the chain's 60 % of the height left the
    bottom row 5 lines, so the health log under the alerts had none. Now the Flag, Vol, Delta
    and IV columns go (both sides at once) until the chain fits, and the chain leaves the
    bottom row its 8 lines."""
    from test_snapshots import DashboardHost

    from optui.widgets.chain_table import ChainTable
    from optui.widgets.format import fmt_count
    from optui.widgets.health_log import HealthLog

    snap = sample_snapshot(strikes_each_side=12)
    app = DashboardHost()
    async with app.run_test(size=size) as pilot:
        app.dash.show_snapshot(snap)
        for _ in range(3):
            await pilot.pause()
        chain = app.dash.query_one(ChainTable)
        assert chain.virtual_size.width <= chain.scrollable_content_region.width, chain.column_keys
        keys = set(chain.column_keys)
        for field in ("ltp", "chg", "oi", "oi_chg", "bu"):
            assert {f"c_{field}", f"p_{field}"} <= keys, (field, chain.column_keys)
        assert all(k == "strike" or f"p_{k[2:]}" in keys and f"c_{k[2:]}" in keys for k in keys)
        if size[0] >= 160:
            assert len(keys) == 19  # everything, flags included
        put = next(leg for leg in snap.indices["NIFTY"].legs
                   if leg.bucket == app.dash.bucket and leg.side == "PUT" and f"{leg.strike:g}" in chain.row_keys)
        assert cell_text(chain.get_cell(f"{put.strike:g}", "p_oi")) == fmt_count(put.oi, 1e5)
        health = app.dash.query_one(HealthLog)
        assert health.scrollable_content_region.height >= 2, health.region
        assert health.region.bottom <= size[1] - 1  # above the footer, not cut off
