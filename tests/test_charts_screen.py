"""The charts screen in a Textual pilot on a seeded simulated session: the values each chart
was given, checked against the snapshot and the store (not pixels)."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from dashboard_wait import settle
from textual.app import App

from optui.analytics.exposure import SIGN_CONVENTION, gex_by_strike
from optui.collectors.engine import build_engine
from optui.commands import dashboard_commands
from optui.config import Settings
from optui.models import Snapshot
from optui.screens.charts import ChartsScreen
from optui.widgets.charts.plots import (
    DayChart,
    FlowChart,
    FlowHeatmap,
    GexChart,
    OiChart,
    SmileChart,
    StraddleVwapChart,
)

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    tmp: Path = tmp_path_factory.mktemp("charts")
    s = Settings()
    s.general.data_dir = str(tmp / "data")
    s.store.url = f"sqlite:///{tmp / 'optui.db'}"
    s.export.write_json = s.export.write_csv = False
    s.simulator.start = "2026-11-23 15:29"
    s.simulator.speed = 0.01
    s.source.indices = ["NIFTY"]
    s.source.full_chain_expiries = 2
    eng = build_engine(s)
    ex = eng.source.exchange
    snaps: list[Snapshot] = []
    for at in ("2026-11-23T15:29", "2026-11-25T11:00", "2026-11-25T11:01", "2026-11-25T11:02",
               "2026-11-25T11:03"):
        ex.set_time(datetime.fromisoformat(f"{at}:00+05:30"))
        snaps.append(eng.collect_once())
    yield eng, snaps
    eng.close()


class Host(App[None]):
    def __init__(self, screen: ChartsScreen) -> None:
        super().__init__()
        self.charts = screen

    def on_mount(self) -> None:
        self.push_screen(self.charts)


async def _loaded(pilot, screen: ChartsScreen, loads: int = 0) -> None:
    for _ in range(200):
        await pilot.pause(0.05)
        if screen.loads > loads:
            return
    raise AssertionError("the charts never loaded")


async def test_charts_show_the_session(session) -> None:
    eng, snaps = session
    snap = snaps[-1]
    idx = snap.indices["NIFTY"]
    stats = idx.overview.buckets["this_week"]
    screen = ChartsScreen(eng.store, snap, "NIFTY", "this_week", "1m")
    app = Host(screen)
    async with app.run_test(size=(180, 50)) as pilot:
        await _loaded(pilot, screen)
        assert not screen.has_class("compact")
        legs = [lg for lg in idx.legs if lg.bucket == "this_week"]
        by = {(lg.strike, lg.side): lg for lg in legs}

        oi = screen.query_one(OiChart).shown
        assert stats.atm_strike in oi["strikes"] and len(oi["strikes"]) == 11  # ATM +- 5
        i = oi["strikes"].index(stats.atm_strike)
        assert oi["ce_oi"][i] == by[(stats.atm_strike, "CALL")].oi
        assert oi["pe_oi_change"][i] == by[(stats.atm_strike, "PUT")].oi_change

        smile = screen.query_one(SmileChart)
        assert "close 23 Nov" in smile.title_text  # 24 Nov is a holiday
        k = next(k for k in smile.shown["strikes"] if k > stats.forward)
        assert smile.shown["ivs"][smile.shown["strikes"].index(k)] == by[(k, "CALL")].iv
        assert len(smile.shown["prev_ivs"]) > 20  # yesterday's 15:29 chain of the same expiry
        assert smile.shown["prev_ivs"] != smile.shown["ivs"][:len(smile.shown["prev_ivs"])]

        day = screen.query_one(DayChart).shown
        today = [s.indices["NIFTY"].overview.buckets["this_week"] for s in snaps[1:]]
        assert day["atm_iv"] == pytest.approx([b.atm_iv for b in today])
        assert day["straddle"] == pytest.approx([b.straddle for b in today])
        assert day["times"] == ["11:00:00", "11:01:00", "11:02:00", "11:03:00"]
        assert "(1 d)" in screen.query_one(DayChart).title_text  # one stored close behind it

        vwap = screen.query_one(StraddleVwapChart).shown
        assert vwap["straddle"][-1] == pytest.approx(
            by[(stats.atm_strike, "CALL")].last_price + by[(stats.atm_strike, "PUT")].last_price)
        assert len(vwap["vwap"]) == 3  # no volume increment before the second sample
        lo, hi = min(vwap["straddle"]), max(vwap["straddle"])
        assert all(lo <= v <= hi for v in vwap["vwap"])

        flow = screen.query_one(FlowChart).shown
        assert flow["net_cr"] and all(math.isfinite(v) for v in flow["net_cr"])
        stored = [s.indices["NIFTY"].overview.flow.net_cr for s in snaps[2:]]
        assert sum(flow["net_cr"]) == pytest.approx(sum(stored), abs=1e-6)

        heat = screen.query_one(FlowHeatmap).shown
        expiry = stats.expiry.isoformat()
        want = sum(ce + pe for s in snaps[2:]
                   for (e, _), (ce, pe) in s.indices["NIFTY"].strike_flow.items() if e == expiry)
        assert want != 0 and sum(map(sum, heat["net_cr"])) == pytest.approx(want, abs=1e-9)
        assert len(heat["times"]) == 3 and heat["strikes"] == sorted(heat["strikes"])
        assert len(heat["strikes"]) <= 31  # 15 strikes either side of the money at most

        gex = screen.query_one(GexChart)
        _, calls, puts = gex_by_strike([lg.strike for lg in legs], [lg.side == "CALL" for lg in legs],
                                       [lg.gamma for lg in legs], [lg.oi for lg in legs],
                                       idx.overview.last_price)
        assert gex.shown["total_cr"] == pytest.approx(float(np.sum(calls) + np.sum(puts)))
        assert SIGN_CONVENTION in gex.title_text
        assert all(v >= 0 for v in gex.shown["call_cr"]) and all(v <= 0 for v in gex.shown["put_cr"])


async def test_compact_at_80x24_shows_one_chart_at_a_time(session) -> None:
    eng, snaps = session
    screen = ChartsScreen(eng.store, snaps[-1], "NIFTY", "this_week")
    app = Host(screen)
    async with app.run_test(size=(80, 24)) as pilot:
        await _loaded(pilot, screen)
        assert screen.has_class("compact")
        shown = [c for c in screen.query(".cell.current")]
        assert [c.id for c in shown] == ["cell-chart-oi"]
        oi = screen.query_one(OiChart)
        assert oi.compact and set(oi.shown) == {"strikes", "ce_oi", "pe_oi"}  # no OI change
        assert len(oi.shown["strikes"]) == 21  # the whole width: ATM +- 10
        assert "OI by strike" in str(shown[0].query_one(".caption").render())
        await pilot.press("v")
        assert [c.id for c in screen.query(".cell.current")] == ["cell-chart-smile"]
        await pilot.press("v")
        day = screen.query_one(DayChart)
        # Compact, the straddle is not drawn: the title gives its value, not a right axis.
        assert set(day.shown) >= {"straddle"} and day.shown["straddle"]
        assert "(right)" not in day.title_text, day.title_text
        assert f"straddle ₹{day.shown['straddle'][-1]:,.2f}" in day.title_text, day.title_text
        loads = screen.loads
        await pilot.press("b")
        await _loaded(pilot, screen, loads)
        assert screen.bucket == "next_week" and screen.data is not None
        assert screen.data.bucket == "next_week"


@pytest.mark.parametrize("size", [(160, 48), (120, 36)])
async def test_every_caption_is_read_whole(session, size: tuple[int, int]) -> None:
    """With four charts a row each caption wraps to fit its cell and is shown whole: at 160x48
    the gamma exposure caption wraps to four lines, and a three-line cap cut its sign convention
    after "short"; at 120 columns it wraps to six, and a four-line cap cut it after "(dealers"
    (what the sign means was never on screen)."""
    from textual.widgets import Static

    eng, snaps = session
    screen = ChartsScreen(eng.store, snaps[-1], "NIFTY", "this_week")
    app = Host(screen)
    async with app.run_test(size=size) as pilot:
        await _loaded(pilot, screen)
        await pilot.pause()
        assert not screen.has_class("compact")
        for cell in screen.query(".cell"):
            caption = cell.query_one(".caption", Static)
            width = caption.content_region.width
            need = caption.get_content_height(caption.content_region.size, app.size, width)
            assert need <= caption.content_region.height, (cell.id, need, str(caption.render()))
        gex = screen.query_one("#cell-chart-gex .caption", Static)
        assert SIGN_CONVENTION in str(gex.render())


def test_gex_total_is_the_whole_chains_when_only_strikes_near_the_money_are_drawn(session) -> None:
    """The dashboard records legs for 10 strikes each side of the money (the collector for 2):
    the GEX chart's total summed only those, about a third short of the chain's on a weekly
    four days out and more on a monthly. With the legs cut to ATM +- 2 the total is still the
    whole chain's (its legs here are all recorded: full_chain_expiries = 2)."""
    from dataclasses import replace

    from optui.widgets.charts.data import load_chart_data

    _, snaps = session
    snap = snaps[-1]
    idx = snap.indices["NIFTY"]
    stats = idx.overview.buckets["this_week"]
    legs = [lg for lg in idx.legs if lg.bucket == "this_week"]
    _, calls, puts = gex_by_strike([lg.strike for lg in legs], [lg.side == "CALL" for lg in legs],
                                   [lg.gamma for lg in legs], [lg.oi for lg in legs],
                                   idx.overview.last_price)
    whole = float(np.sum(calls) + np.sum(puts))
    assert stats.gex_cr == pytest.approx(whole, rel=1e-9)
    step = 50.0
    near = [lg for lg in idx.legs if abs(lg.strike - stats.atm_strike) <= 2 * step]
    cut = replace(snap, indices={"NIFTY": replace(idx, legs=near)})
    data = load_chart_data(None, cut, "NIFTY", "this_week")
    assert data.gex is not None and abs(data.gex.total_cr - whole) > 0.2 * abs(whole)
    chart = GexChart()
    chart.draw(_NoPlot(), data)
    assert chart.shown["total_cr"] == pytest.approx(whole, rel=1e-9)
    assert f"total {whole:+,.0f} (whole chain)" in chart.title_text, chart.title_text
    lo, hi = min(lg.strike for lg in near), max(lg.strike for lg in near)
    assert f"(in {lo:,.0f}-{hi:,.0f})" in chart.title_text, chart.title_text


def test_snapshots_of_one_minute_are_drawn_at_their_own_seconds() -> None:
    """At the tick cadence the day chart gets a snapshot a second: 10:05:10 and 10:05:40 are two
    x positions, not one (drawn at 10:05 both, the IV's move within the minute stood as a
    vertical bar)."""
    from optui.widgets.charts.data import ChartData

    at = datetime.fromisoformat("2026-11-25T10:05:10+05:30")
    data = ChartData("NIFTY", "this_week")
    data.times = [at, at.replace(second=40)]
    data.atm_iv, data.straddle = [10.6, 10.8], [240.0, 241.5]
    chart = DayChart()
    chart.draw(_NoPlot(), data)
    assert chart.shown["times"] == ["10:05:10", "10:05:40"]


def test_day_and_week_flow_bars_are_labelled_by_date() -> None:
    """The 1d timeframe's bars start at 00:00 IST each day: labelled to the minute they all read
    00:00; by date they read 24 Nov, 25 Nov."""
    from optui.analytics.premium_flow import FlowBar, FlowSeries
    from optui.widgets.charts.data import ChartData

    days = [datetime.fromisoformat(f"2026-11-{d}T00:00:00+05:30") for d in (24, 25)]
    data = ChartData("NIFTY", "this_week")
    data.flow = FlowSeries("NIFTY", "1d", [FlowBar(d, 10.0, 8.0) for d in days])
    chart = FlowChart()
    chart.draw(_NoPlot(), data)
    assert chart.shown["labels"] == ["24 Nov", "25 Nov"]
    data.flow = FlowSeries("NIFTY", "5m", [FlowBar(days[1].replace(hour=9, minute=15), 1.0, 0.5)])
    chart.draw(_NoPlot(), data)
    assert chart.shown["labels"] == ["09:15"]


class _NoPlot:
    """Stands in for plotext: the chart's figures are what is checked, not its pixels."""

    def __getattr__(self, name: str):  # noqa: ANN204
        return lambda *args, **kwargs: None


def test_the_heatmap_labels_each_row_with_its_own_strike() -> None:
    """Flow bought at the highest of eight strikes (26,350) only: drawn by plotext, the one
    green row carries the label 26350 (the strike labels ran upside down, so that row read
    26000, the lowest strike, and every strike's flow was shown against its mirror)."""
    import re
    from datetime import timedelta

    import plotext

    from optui.widgets.charts.data import ChartData

    strikes = [26000.0 + 50 * i for i in range(8)]
    at = datetime.fromisoformat("2026-11-25T11:00:00+05:30")
    data = ChartData("NIFTY", "this_week", spot=26175.0, expiry="2026-12-01")
    data.heat_strikes = strikes
    data.heat_times = [at + timedelta(minutes=m) for m in range(3)]
    data.heat_net_cr = [[0.0, 0.0, 0.0] for _ in strikes]
    data.heat_net_cr[-1] = [2.0, 2.0, 2.0]
    plotext.clf()
    plotext.plotsize(40, 20)
    FlowHeatmap().draw(plotext, data)
    green = []
    for line in plotext.build().splitlines():
        if re.search(r"\x1b\[[0-9;]*38;2;0;255;0m", line):
            green.append(re.sub(r"\x1b\[[0-9;]*m", "", line).split("┤")[0].strip())
    plotext.clf()
    assert green and set(green) - {""} == {"26350"}, green


def test_dashboard_key_opens_charts() -> None:
    keys = {c.id: c.keys for c in dashboard_commands()}
    assert keys["dashboard.charts"] == "g"


def test_overview_shows_iv_rank_percentile_and_rv(session) -> None:
    from optui.storage.iv_history import iv_history
    from optui.widgets.overview_table import overview_cells

    eng, snaps = session
    ov = snaps[-1].indices["NIFTY"].overview
    closes = iv_history(eng.store, "NIFTY", "this_week", ov.timestamp.date())
    assert len(closes) == 1  # yesterday's collected close only
    hist = ([c.atm_iv for c in closes] * 5, [c.spot for c in closes] * 5)
    cell = overview_cells(ov, bucket="this_week", history=hist)["atm_iv"]
    text = cell[0] if isinstance(cell, tuple) else cell
    assert "(5 d)" in text and "IVP" in text and "RV20 –" in text  # 5 closes: no 20-day RV
    assert overview_cells(ov, bucket="this_week")["atm_iv"] == cell.__class__(
        overview_cells(ov, bucket="this_week")["atm_iv"])  # without history: unchanged cell


def test_heat_matrix_sums_minutes_into_bars() -> None:
    from optui.timeutil import IST
    from optui.widgets.charts.data import heat_matrix

    t0 = datetime(2026, 11, 25, 11, 0, tzinfo=IST)
    rows = [(t0, 100.0, 1.0), (t0.replace(minute=3), 100.0, 2.0), (t0.replace(minute=5), 150.0, -4.0)]
    strikes, times, matrix = heat_matrix(rows, 300)
    assert strikes == [100.0, 150.0]
    assert [f"{t:%H:%M}" for t in times] == ["11:00", "11:05"]
    assert matrix == [[3.0, 0.0], [0.0, -4.0]]


async def test_charts_follow_the_newest_snapshot_and_start_empty(session) -> None:
    eng, snaps = session
    current: list[Snapshot | None] = [None]
    screen = ChartsScreen(eng.store, lambda: current[0], "NIFTY", "this_week", refresh_s=0.05)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        await _loaded(pilot, screen)
        assert screen.data is not None and screen.data.at is None
        assert "no snapshot yet" in str(screen.query_one("#charts-status").render())
        current[0] = snaps[-1]  # the dashboard collected: the screen redraws on its own
        await _loaded(pilot, screen, screen.loads)
        assert screen.data.at == snaps[-1].indices["NIFTY"].overview.timestamp
        assert screen.query_one(OiChart).shown["strikes"]


async def test_dashboard_overview_iv_standing_and_g_opens_charts(tmp_path: Path) -> None:
    from datetime import date, timedelta

    from dashboard_pilot import Host as DashHost
    from dashboard_pilot import sim_settings, table_cell

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.screens.dashboard import DashboardScreen
    from optui.storage.base import open_store
    from optui.storage.iv_history import iv_point
    from optui.widgets.overview_table import OverviewTable

    settings = sim_settings(tmp_path, interval_s=3600.0)
    settings.source.snapshot_s = 0  # one cycle: no tick cadence
    settings.simulator.start = "2026-11-25 11:00"
    settings.source.indices = ["NIFTY"]
    days = TradingCalendar().last_n(date(2026, 11, 24), 25)
    with open_store(settings.store.url) as store:
        store.write([iv_point("NIFTY", b, d, {"atm_iv": 5.0 + n, "spot": 26000.0 + 10 * n,
                                              "origin": "collect"})
                     for n, d in enumerate(days)
                     for b in ("this_week", "next_week", "this_month", "next_month")])
    screen = DashboardScreen(settings)
    app = DashHost(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(4):
            await settle(app, pilot)
            await pilot.pause()
        assert screen._snapshot is not None
        iv = screen._snapshot.indices["NIFTY"].overview.buckets[screen.bucket].atm_iv
        below = sum(1 for n in range(25) if 5.0 + n < iv)
        # At 160 columns the standing in the ATM IV cells would push Max pain, Straddle and
        # Expiry out of the panel: the cells stay plain, every column fits, and the selected
        # index's standing is the panel's subtitle.
        table = screen.query_one(OverviewTable)
        assert f"IVP {below / 25 * 100:.0f} (25 d)" not in table_cell(table, "NIFTY", "atm_iv")
        assert table.virtual_size.width <= table.size.width
        subtitle = str(table.border_subtitle)
        assert subtitle.startswith("NIFTY ATM IV ") and "RV20 " in subtitle, subtitle
        assert f"IVP {below / 25 * 100:.0f} (25 d)" in subtitle, subtitle
        # Wide enough, each row's ATM IV carries it (and the subtitle is gone).
        await pilot.resize_terminal(200, 50)
        for _ in range(3):
            await settle(app, pilot)
            await pilot.pause()
        cell = table_cell(table, "NIFTY", "atm_iv")
        assert f"IVP {below / 25 * 100:.0f} (25 d)" in cell and "RV20 " in cell, cell
        assert table.virtual_size.width <= table.size.width and not str(table.border_subtitle)
        await pilot.resize_terminal(160, 48)  # and narrower again: the columns shrink back
        for _ in range(3):
            await settle(app, pilot)
            await pilot.pause()
        assert table.virtual_size.width <= table.size.width and str(table.border_subtitle)
        assert days[0] < date(2026, 11, 24) - timedelta(days=30)
        await pilot.press("g")
        await pilot.pause()
        charts = app.screen
        assert isinstance(charts, ChartsScreen) and charts.index == "NIFTY"
        await _loaded(pilot, charts)
        assert charts.data is not None and charts.data.history_days == 25
        assert f"IVP {below / 25 * 100:.0f} (25 d)" in charts.query_one(DayChart).title_text


def test_previous_close_smile_at_the_tick_cadence(tmp_path: Path) -> None:
    """Streamed, leg rows are stored once per interval_s while the day's close (iv_daily) is the
    last snapshot's: on 23 Nov the chain is stored at 15:29:00 and the close is 15:29:20, so the
    next session's smile chart overlays the 15:29:00 chain (it found no chain at the close's
    second and said "no stored close"), each strike's out-of-the-money side picked against the
    forward of the bucket the contract was in then (next week's, not the expiring week's)."""
    from optui.widgets.charts.data import load_chart_data

    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.store.url = f"sqlite:///{tmp_path / 'optui.db'}"
    s.export.write_json = s.export.write_csv = False
    s.record.enabled = False
    s.simulator.start = "2026-11-23 15:29"
    s.simulator.speed = 0.01
    s.source.indices = ["NIFTY"]
    s.source.chain_strikes = 6
    eng = build_engine(s)
    try:
        eng.source.snapshot_s = 1.0  # the tick cadence: legs at the first snapshot of each 30 s
        ex = eng.source.exchange
        closes = {}
        for at in ("2026-11-23T15:29:00", "2026-11-23T15:29:20", "2026-11-25T11:00:00"):
            ex.set_time(datetime.fromisoformat(f"{at}+05:30"))
            closes[at] = eng.collect_once()
        day_close = closes["2026-11-23T15:29:00"].indices["NIFTY"]
        data = load_chart_data(eng.store, closes["2026-11-25T11:00:00"], "NIFTY", "this_week")
    finally:
        eng.close()
    assert data.prev_smile_day is not None and data.prev_smile_day.isoformat() == "2026-11-23"
    # The same contract (1 Dec: next week on 23 Nov, this week on 25 Nov).
    then = next(b for b in day_close.overview.buckets.values() if b.expiry.isoformat() == data.expiry)
    want = {lg.strike: lg.iv for lg in day_close.legs if lg.bucket == then.bucket
            and lg.side == ("PUT" if lg.strike < then.forward else "CALL") and math.isfinite(lg.iv)}
    assert len(want) >= 5
    assert dict(zip(data.prev_smile.strikes, data.prev_smile.ivs, strict=True)) == want
