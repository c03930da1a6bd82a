"""The participants panel and screen on data imported from the real NSE files into SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dashboard_wait import settle
from textual.app import App
from textual.widgets import DataTable, Static

from optui.collectors.participants_import import import_paths
from optui.screens.participants import HistoryChart, ParticipantsScreen
from optui.storage.base import Store, open_store
from optui.widgets.participants_panel import EMPTY_TEXT, ParticipantsPanel

pytestmark = pytest.mark.participants

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The NSE folders only: tests/fixtures also holds Kite files, which are not participant data.
NSE_FILES = [FIXTURES / "nse_participant", FIXTURES / "nse_fiidii_cash"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    import_paths(s, NSE_FILES)
    yield s
    s.close()


class Host(App[None]):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def on_mount(self) -> None:
        self.push_screen(ParticipantsScreen(self.store))


def _cell(table: DataTable, row: str, col: str) -> str:
    return str(table.get_cell(row, col))


async def test_screen_shows_table_cash_and_history(store: Store) -> None:
    app = Host(store)
    async with app.run_test(size=(140, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, ParticipantsScreen)
        for _ in range(50):
            await pilot.pause(0.05)
            if screen.loads:
                break
        panel = screen.query_one(ParticipantsPanel)
        assert panel.day is not None
        when = str(panel.query_one("#participants-when", Static).render())
        assert "2026-08-18" in when and "end of day" in when
        table = panel.query_one("#participants-table", DataTable)
        assert [str(k.value) for k in table.rows] == ["FII", "DII", "Pro", "Client"]
        assert _cell(table, "FII", "index_futures_net") == "-194,158"
        assert _cell(table, "FII", "index_futures_net_change_1d") == "-12,571"
        assert _cell(table, "Client", "options_bias") == "+993,038"
        assert _cell(table, "DII", "index_futures_net_change_1w") == "—"
        cash = panel.query_one("#cash-table", DataTable)
        assert _cell(cash, "FII", "Net") == "+₹599.54 cr"
        assert _cell(cash, "DII", "Streak") == "1 day buying"
        assert "2026-09-18" in str(panel.query_one("#cash-when", Static).render())
        chart = screen.query_one(HistoryChart)
        loads = screen.loads
        await pilot.press("m")
        for _ in range(50):
            await pilot.pause(0.05)
            if screen.loads > loads:
                break
        assert screen.metric == "options_bias"
        assert chart.title_text.startswith("FII options bias (contracts) · end of day")
        # 20 trading days to 18 Aug; only 14, 17 and 18 Aug are stored, gaps stay gaps.
        assert [(f"{d:%d}", v) for d, v in chart.points] == [
            ("14", -773821), ("17", -730980), ("18", -842741)]


async def test_panel_without_data_says_how_to_load_it() -> None:
    class PanelHost(App[None]):
        def compose(self):  # noqa: ANN202
            yield ParticipantsPanel(compact=True)

    app = PanelHost()
    async with app.run_test(size=(60, 20)):
        panel = app.query_one(ParticipantsPanel)
        empty = panel.query_one("#participants-empty", Static)
        assert empty.display and str(empty.render()) == EMPTY_TEXT
        assert not panel.query_one("#participants-table").display


class _Engine:
    """A collection engine stand-in with a real store and a real pre-market capture."""

    source_name = "sim"

    def __init__(self, store: Store, capture: object) -> None:
        self.store = store
        self.premarket = capture

    def collect_once(self):  # noqa: ANN201
        from sample_data import sample_snapshot

        return sample_snapshot()

    def close(self) -> None:
        pass


async def test_dashboard_panel_and_capture_events(store: Store, tmp_path: Path) -> None:
    from datetime import date, datetime, time

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.collectors.premarket import PremarketCapture
    from optui.config import Settings
    from optui.screens.dashboard import DashboardScreen
    from optui.timeutil import IST
    from optui.widgets.health_log import HealthLog

    capture = PremarketCapture(store, TradingCalendar(), download_dir=tmp_path)
    # 19 Aug: 18 Aug's files are stored but its cash is not in the (empty) folder.
    capture.tick(datetime.combine(date(2026, 8, 19), time(8, 0), tzinfo=IST))
    assert capture.event_count == 1

    class DashHost(App[None]):
        def on_mount(self) -> None:
            self.push_screen(DashboardScreen(Settings(), engine=_Engine(store, capture)))

    app = DashHost()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        await pilot.pause()
        await settle(app, pilot)
        await pilot.pause()
        panel = app.screen.query_one(ParticipantsPanel)
        assert panel.compact and panel.day is not None
        table = panel.query_one("#participants-table", DataTable)
        assert len(table.columns) == 3
        assert _cell(table, "Client", "index_futures_net_change_1d") == "+13,205"
        texts = [text for _, _, text in app.screen.query_one(HealthLog).history]
        assert any("participant data for 2026-08-18 missing cash" in t for t in texts)
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ParticipantsScreen)


async def test_simulated_session_shows_participants_imported_into_the_live_store(
        store: Store, tmp_path: Path) -> None:
    """`optui participants import` stores the exchange's files in the live store (store.url);
    a simulated session writes its own store beside it (data/sim/optui.db), and its panel said
    "No participant data stored yet ... load past days with `optui participants import`" right
    after the import. The panel and the screen now read the live store when their own has none."""
    from optui.config import Settings
    from optui.screens.dashboard import DashboardScreen
    from optui.widgets.participants_panel import live_participants_url

    settings = Settings()
    settings.store.url = f"sqlite:///{tmp_path / 'p.db'}"  # the live store, `store` above
    sim = open_store(f"sqlite:///{tmp_path / 'sim' / 'optui.db'}")
    assert live_participants_url(settings.store.url, sim) == settings.store.url
    assert live_participants_url(settings.store.url, store) is None  # the live store itself
    assert live_participants_url(f"sqlite:///{tmp_path / 'none.db'}", sim) is None  # not created
    assert not (tmp_path / "none.db").exists()

    class DashHost(App[None]):
        def on_mount(self) -> None:
            self.push_screen(DashboardScreen(settings, engine=_Engine(sim, None)))

    app = DashHost()
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            panel = app.screen.query_one(ParticipantsPanel)
            for _ in range(4):
                await settle(app, pilot)
                await pilot.pause()
                if panel.day is not None:
                    break
            assert panel.day is not None and panel.day.trade_date.isoformat() == "2026-08-18"
            table = panel.query_one("#participants-table", DataTable)
            assert _cell(table, "Client", "index_futures_net_change_1d") == "+13,205"
            await pilot.press("p")
            screen = app.screen
            assert isinstance(screen, ParticipantsScreen)
            for _ in range(50):
                await pilot.pause(0.05)
                if screen.loads:
                    break
            assert screen.query_one(ParticipantsPanel).day is not None
    finally:
        sim.close()
