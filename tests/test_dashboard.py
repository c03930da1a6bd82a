"""Dashboard: shown values match the snapshots, keys switch selection, failures keep it running."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dashboard_pilot import (
    FakeEngine,
    FakeStore,
    Host,
    assert_tables_match,
    fixed_clock,
    open_dashboard,
    plain,
    sim_settings,
    table_cell,
)
from dashboard_wait import settle
from sample_data import SAMPLE_TIME, sample_snapshot
from textual.app import App
from textual.message import Message

from optui.alerts import AlertEngine, Thresholds
from optui.alerts.model import Alert
from optui.analytics.premium_flow import sentiment_of
from optui.analytics.timeframes import TIMEFRAMES
from optui.config import Settings
from optui.errors import StoreError, TokenExpiredError
from optui.models import Snapshot
from optui.screens.dashboard import DashboardScreen, chain_settings
from optui.timeutil import IST
from optui.ui_messages import FlowQueried, SnapshotCollected
from optui.widgets.alerts_panel import AlertsPanel
from optui.widgets.chain_table import ChainTable, chain_rows
from optui.widgets.dashboard_model import (
    DataClock,
    StrikeWindow,
    buckets_of,
    cycle,
    notifications,
    visible_alerts,
)
from optui.widgets.flow_panel import FlowPanel
from optui.widgets.format import (
    fmt_count,
    fmt_crore,
    fmt_delta,
    fmt_iv,
    fmt_lakh,
    fmt_pct,
    fmt_price,
    fmt_strike,
    session_state,
)
from optui.widgets.health_log import HealthLog
from optui.widgets.keyed_table import cell_text
from optui.widgets.overview_table import OverviewTable
from optui.widgets.positions_table import PositionsTable, top_oi_changes
from optui.widgets.status_header import StatusHeader

# ---------------------------------------------------------------- pure helpers


@pytest.mark.unit
def test_formats_state_their_units() -> None:
    assert fmt_crore(1234.5) == "₹1,234.50 cr"
    assert fmt_crore(-2.345, signed=True) == "-₹2.35 cr"
    assert fmt_iv(12.345) == "12.3"
    assert fmt_lakh(1_250_000) == "12.50"
    assert fmt_lakh(-41_250, signed=True) == "-0.41"
    assert fmt_price(float("nan")) == "—"
    assert fmt_strike(26000.0) == "26,000"
    assert fmt_pct(0.5) == "+0.50%"
    assert fmt_delta(-0.456) == "-0.46"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("hhmm", "weekday_date", "expected"),
    [
        ("08:59", "2026-11-26", "CLOSED"),
        ("09:00", "2026-11-26", "PRE-OPEN"),
        ("09:14", "2026-11-26", "PRE-OPEN"),
        ("09:15", "2026-11-26", "OPEN"),
        ("15:29", "2026-11-26", "OPEN"),
        ("15:30", "2026-11-26", "CLOSED"),
        ("11:00", "2026-11-28", "CLOSED"),  # Saturday
    ],
)
def test_session_state_follows_ist(hhmm: str, weekday_date: str, expected: str) -> None:
    at = datetime.fromisoformat(f"{weekday_date} {hhmm}").replace(tzinfo=IST)
    assert session_state(at) == expected
    assert session_state(at, holiday=True) == "HOLIDAY"


@pytest.mark.unit
def test_data_age_and_staleness() -> None:
    live = DataClock()
    live.received(replace(sample_snapshot(), source="kite"), SAMPLE_TIME + timedelta(seconds=3))
    now = SAMPLE_TIME + timedelta(seconds=61)
    assert live.badge == "LIVE"
    # From its arrival on the local clock: the machine's offset from the exchange never counts.
    assert live.age_s(now) == pytest.approx(58.0)
    assert live.is_stale(now, interval_s=28.0)
    assert not live.is_stale(now, interval_s=29.0)
    assert live.market_now(now) == SAMPLE_TIME + timedelta(seconds=58)
    sim = DataClock()
    sim.received(sample_snapshot(), SAMPLE_TIME + timedelta(hours=9))  # sim clock is elsewhere
    assert sim.badge == "SIMULATED"
    assert sim.age_s(SAMPLE_TIME + timedelta(hours=9, seconds=4)) == pytest.approx(4.0)
    assert sim.market_now(SAMPLE_TIME + timedelta(hours=9, seconds=4)) == SAMPLE_TIME + timedelta(
        seconds=4
    )


@pytest.mark.unit
def test_cycle_and_buckets() -> None:
    assert cycle(TIMEFRAMES, "1w", 1) == "1m"
    assert cycle(TIMEFRAMES, "1m", -1) == "1w"
    assert cycle(["a", "b"], "zz", 1) == "a"
    snap = sample_snapshot()
    assert buckets_of(snap, "NIFTY") == ["this_week", "next_week", "this_month", "next_month"]
    assert buckets_of(snap, "BANKNIFTY") == ["this_month", "next_month"]


def three_alerts(at: datetime) -> list[Alert]:
    return [
        Alert(at, "pcr_shift", "info", "NIFTY 2026-11-27", "NIFTY this_week: PCR (OI) 0.90 → 1.20"),
        Alert(at, "premium_flow", "warning", "BANKNIFTY bought", "BANKNIFTY: ₹1,200.0 cr bought"),
        Alert(at, "capture_failed", "critical", "capture", "pre-market capture failed: HTTP 403"),
    ]


@pytest.mark.unit
def test_alert_filter_and_toasts() -> None:
    alerts = three_alerts(SAMPLE_TIME)
    assert [a.rule for a in visible_alerts(alerts, "info")] == ["pcr_shift", "premium_flow", "capture_failed"]
    assert [a.rule for a in visible_alerts(alerts, "warning")] == ["premium_flow", "capture_failed"]
    assert [a.rule for a in visible_alerts(alerts, "critical")] == ["capture_failed"]
    toasts = notifications(alerts * 2)
    assert len(toasts) == 4 and toasts[0][2] == "error" and toasts[-1][0] == "and 3 more: see the alerts panel"


@pytest.mark.unit
def test_flow_alerts_come_from_the_core_engine() -> None:
    engine = AlertEngine(Thresholds(single_flow_cr=14.0), cooldown_s=300.0)
    snap = sample_snapshot()  # inflow 12.5 + i: indices 2.. exceed 14 crore
    first = engine.on_snapshot(snap)
    assert first and all(a.rule == "premium_flow" for a in first)
    assert not any(a.index == "NIFTY" for a in first)
    assert engine.on_snapshot(replace(snap, timestamp=snap.timestamp + timedelta(seconds=60))) == []
    later = engine.on_snapshot(replace(snap, timestamp=snap.timestamp + timedelta(seconds=301)))
    assert [a.message for a in later] == [a.message for a in first]


class AlertingEngine(FakeEngine):
    """Each snapshot carries three alerts of each severity, as the core's engine attaches them."""

    def collect_once(self) -> Snapshot:
        snap = super().collect_once()
        snap.alerts = three_alerts(snap.timestamp)
        return snap


@pytest.mark.mock
async def test_cycles_queued_behind_each_other_show_the_latest_and_keep_every_event() -> None:
    """Cycles that queue up while the screen is busy collapse to the newest (no backlog of
    chains to draw), yet the health events and alerts of the superseded ones are all shown."""
    from optui.collectors.health import EventKind, HealthEvent, Severity
    from optui.feed.model import FeedCycle

    screen = DashboardScreen(Settings(), collect=False, clock=fixed_clock)
    app = Host(screen)
    handled: list[Message] = []
    async with app.run_test(size=(160, 48), message_hook=handled.append) as pilot:
        await pilot.pause()
        sent = []
        for n in range(3):
            snap = replace(sample_snapshot(tick=n), timestamp=SAMPLE_TIME + timedelta(seconds=n))
            snap.alerts = [three_alerts(snap.timestamp)[n]]
            event = HealthEvent(EventKind.STORE_SLOW, Severity.WARNING, f"store write {n} slow",
                                at=snap.timestamp)
            sent.append(SnapshotCollected(snap, {}, FeedCycle(snap, [event])))
        for message in sent:  # queued in one go, as cycles posted while a frame is drawn
            screen.post_message(message)
        await pilot.pause()
        await pilot.pause()
        shown = [m for m in handled if isinstance(m, SnapshotCollected)]
        assert shown and all(m is sent[-1] for m in shown)  # the older two never drawn
        assert screen._snapshot is sent[-1].snapshot
        text = "\n".join(text for _, text in screen.query_one(HealthLog).entries)
        assert all(f"store write {n} slow" in text for n in range(3)), text
        rules = [a.rule for a in screen.query_one(AlertsPanel).alerts]
        assert sorted(rules) == ["capture_failed", "pcr_shift", "premium_flow"]


@pytest.mark.mock
async def test_alerts_panel_shows_core_alerts_filters_and_rings() -> None:
    settings = Settings()
    settings.alerts.bell = True
    bells: list[int] = []

    def ringing(screen: DashboardScreen) -> Host:
        app = Host(screen)
        app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
        return app

    async with open_dashboard(settings, engine=AlertingEngine(), size=(80, 24), host=ringing) as dash:
        panel = dash.screen.query_one(AlertsPanel)
        assert [a.rule for a in panel.shown] == ["pcr_shift", "premium_flow", "capture_failed"]
        assert bells == [1]
        titles = [n.title for n in dash.app._notifications]
        assert "Alert · capture failed" in titles and "Alert · premium flow" in titles
        await dash.pilot.press("a")
        assert [a.severity for a in panel.shown] == ["warning", "critical"]
        await dash.pilot.press("a")
        assert [a.severity for a in panel.shown] == ["critical"]
        await dash.pilot.resize_terminal(160, 48)  # the wide layout keeps the alerts and the filter
        await dash.pilot.pause()
        panel = dash.screen.query_one(AlertsPanel)
        assert panel.min_severity == "critical" and len(panel.alerts) == 3
        await dash.pilot.press("a")
        assert len(panel.shown) == 3

@pytest.mark.unit
def test_top_oi_changes_counts_each_contract_once() -> None:
    legs = sample_snapshot().indices["NIFTY"].legs
    top = top_oi_changes(legs, 10)
    assert len(top) <= 10
    keys = [(leg.expiry, leg.strike, leg.side) for leg in top]
    assert len(keys) == len(set(keys))
    sizes = [abs(leg.oi_change) for leg in top]
    assert sizes == sorted(sizes, reverse=True)


@pytest.mark.unit
def test_sentiment_uses_buying_pressure() -> None:
    assert sentiment_of(0.0, 0.0) == "no flow"
    assert "buying" in sentiment_of(7.0, 3.0)
    assert "selling" in sentiment_of(3.0, 7.0)


# ---------------------------------------------------------------- the screen


@pytest.mark.mock
@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_values_shown_match_collected_snapshot(size: tuple[int, int]) -> None:
    async with open_dashboard(engine=FakeEngine(), size=size) as dash:
        collected = dash.collected()
        assert collected, "a snapshot was collected"
        screen = dash.screen
        assert screen.index == "NIFTY" and screen.bucket == "this_week"
        assert_tables_match(screen, collected[-1])
        flows = [m for m in dash.messages if isinstance(m, FlowQueried)]
        assert flows and flows[-1].series.bars[-1].inflow_cr == 5.0
        body = str(screen.query_one("#flow-body").render())
        assert "₹5.00 cr" in body and "₹2.50 cr" in body and "+₹2.50 cr" in body
        assert "Buy/Sell 2.00" in body

@pytest.mark.mock
async def test_index_and_bucket_keys_switch_the_chain() -> None:
    async with open_dashboard(engine=FakeEngine()) as dash:
        screen, pilot = dash.screen, dash.pilot
        snap = screen._snapshot
        assert snap is not None
        await pilot.press("b")
        assert screen.bucket == "next_week"
        assert_tables_match(screen, snap)
        await pilot.press("i")
        assert screen.index == "BANKNIFTY"
        assert screen.bucket == "this_month"  # monthly-only index: weekly bucket absent
        await pilot.pause()
        assert_tables_match(screen, snap)
        assert plain(screen.query_one(OverviewTable).get_cell("BANKNIFTY", "index")).startswith("▶")
        await pilot.press("B")
        assert screen.bucket == "next_month"
        await pilot.press("I")
        assert screen.index == "NIFTY"
        positions = screen.query_one(PositionsTable)
        top = top_oi_changes(snap.indices["NIFTY"].legs, screen.settings.positions.top_n)
        assert len(positions.rows) == len(top)
        assert table_cell(positions, "r1", "oi_chg") == fmt_lakh(top[0].oi_change, signed=True)

@pytest.mark.mock
async def test_timeframe_keys_show_label_and_requery() -> None:
    engine = FakeEngine()
    async with open_dashboard(engine=engine) as dash:
        screen = dash.screen
        start_tf = screen.timeframe
        seen = []
        for _ in TIMEFRAMES:
            await dash.pilot.press("t")
            await dash.settle()
            seen.append(screen.timeframe)
            title = str(screen.query_one("#flow-title").render())
            assert screen.timeframe in title
            assert f"[{screen.timeframe}]" in str(screen.query_one("#flow-tf").render())
            assert engine.store.calls[-1][1] == screen.timeframe
            assert engine.store.calls[-1][2] == {"index": "NIFTY"}
        assert sorted(seen) == sorted(TIMEFRAMES) and seen[-1] == start_tf
        await dash.pilot.press("T")
        assert screen.timeframe == cycle(TIMEFRAMES, start_tf, -1)
        await dash.settle()
        assert engine.store.calls[-1][1] == screen.timeframe

@pytest.mark.integration
async def test_no_token_at_all_shows_the_login_prompt_and_the_fault_not_a_failed_start(tmp_path: Path) -> None:
    """Kite source, no token stored: the feed starts (the source waits for a login), the first
    cycle's refusal brings the login prompt and the health fault names the fix."""
    from optui.collectors.engine import build_engine
    from optui.screens.kite_login import ReloginPrompt
    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.server import serve

    server = serve(SimulatedExchange(seed=5, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST)), "127.0.0.1", 0)
    settings = sim_settings(tmp_path)
    settings.source.kind = "kite"
    settings.kite.root = server.url
    settings.kite.api_key = "sim_key"
    try:
        async with open_dashboard(settings, engine_factory=build_engine, size=(120, 40), rounds=3) as dash:
            screen = dash.screen
            assert isinstance(dash.app.screen, ReloginPrompt)
            texts = [text for _, text in screen.query_one(HealthLog).entries]
            assert any("no Kite access token is stored" in t and "log in" in t for t in texts), texts
            assert not any("Collection not started" in t for t in texts)
            assert screen._paused and screen.feed is not None  # started, paused for the login
            await dash.pilot.press("escape")
            await dash.pilot.pause()
    finally:
        server.close()

@pytest.mark.mock
async def test_expired_token_pushes_relogin_prompt() -> None:
    from optui.screens.kite_login import ReloginPrompt

    engine = FakeEngine(raises=TokenExpiredError("Kite rejected the access token (TokenException)"))
    async with open_dashboard(engine=engine, size=(120, 40)) as dash:
        screen = dash.screen
        assert isinstance(dash.app.screen, ReloginPrompt)
        assert engine.calls == 1
        assert screen._paused and not screen.loop.scheduled  # no retry loop against a dead token
        await dash.pilot.press("escape")
        await dash.pilot.pause()
        assert dash.app.screen is screen
        assert "PAUSED" in str(screen.query_one(StatusHeader).query_one("#selection").render())

@pytest.mark.mock
async def test_store_failure_notifies_and_keeps_running() -> None:
    async with open_dashboard(engine=FakeEngine(store=FakeStore(fail=True))) as dash:
        notes = [n for n in dash.app._notifications if n.severity == "error"]
        assert any("database is locked" in n.message for n in notes)
        assert dash.screen._snapshot is not None  # the snapshot itself still shows
        await dash.pilot.press("t")
        await dash.settle()
        assert dash.app.is_running and dash.screen.is_current

@pytest.mark.mock
async def test_collection_error_notifies_and_reschedules() -> None:
    engine = FakeEngine(raises=StoreError("InfluxDB at 127.0.0.1:8086 is unreachable: start it"))
    async with open_dashboard(engine=engine, size=(80, 24)) as dash:
        assert any("unreachable" in n.message for n in dash.app._notifications)
        assert dash.screen.loop.scheduled  # the next run is scheduled, not abandoned
        logged = [text for _, text in dash.screen.query_one(HealthLog).entries]
        # No snapshot yet and no exchange clock (this engine has no source): the machine's time.
        assert any(t.startswith("(local clock) ") and "unreachable" in t for t in logged), logged

@pytest.mark.mock
async def test_source_failure_logs_the_health_event_with_the_cached_age() -> None:
    from optui.errors import NetworkError

    engine = FakeEngine()
    async with open_dashboard(engine=engine) as dash:
        engine.raises = NetworkError("quote: cannot reach Kite (ConnectTimeout)")
        await dash.pilot.press("r")
        await dash.settle()
        logged = [(level, text) for level, text in dash.screen.query_one(HealthLog).entries]
        assert dash.screen._snapshot is not None  # the last good snapshot stays on the panels
    failed = [text for level, text in logged if level == "error" and "cannot reach Kite" in text]
    assert failed and "showing the last good snapshot, 0s old (cached)" in failed[-1]
    assert not failed[-1].startswith("(local clock)")  # stamped on the last snapshot's clock
    assert "retrying every interval" in failed[-1]

@pytest.mark.mock
async def test_runs_never_overlap() -> None:
    engine = FakeEngine()
    async with open_dashboard(engine=engine) as dash:
        dash.screen.loop.collecting = True  # as if a cycle were in flight
        await dash.pilot.press("r")
        await dash.settle()
        assert engine.calls == 1
        dash.screen.loop.collecting = False
        await dash.pilot.press("r")
        await dash.settle()
        assert engine.calls == 2

@pytest.mark.mock
async def test_narrow_layout_uses_tabs_and_wide_does_not() -> None:
    from textual.widgets import TabbedContent

    async with open_dashboard(engine=FakeEngine(), size=(80, 24)) as dash:
        screen = dash.screen
        tabs = screen.query_one(TabbedContent)
        await dash.pilot.press("2")
        assert tabs.active == "tab-flow"
        assert screen.query_one(FlowPanel).display
        logged = list(screen.query_one(HealthLog).entries)
        assert logged
        await dash.pilot.resize_terminal(160, 48)
        await dash.pilot.pause()
        assert not screen.query(TabbedContent)
        assert screen.query_one(HealthLog).entries == logged  # the log survives the relayout
        assert_tables_match(screen, screen._snapshot)

@pytest.mark.mock
@pytest.mark.integration
async def test_seeded_simulator_values_shown(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path, interval_s=3600.0)
    settings.source.snapshot_s = 0  # one cycle: no tick cadence
    # Three rounds: the engine build, the first cycle, the flow query.
    async with open_dashboard(settings, clock=None, rounds=3) as dash:
        snaps = dash.collected()
        assert snaps, f"no snapshot collected: {[n.message for n in dash.app._notifications]}"
        snap = snaps[-1]
        assert snap.source == "sim"
        assert str(dash.screen.query_one("#badge").render()) == "SIMULATED"
        assert_tables_match(dash.screen, snap)
        await dash.pilot.press("i", "b")
        await dash.pilot.pause()
        assert_tables_match(dash.screen, snap)

@pytest.mark.unit
async def test_keyed_table_updates_in_place_and_keeps_strike_order() -> None:
    from optui.widgets.keyed_table import KeyedTable

    class TableApp(App[None]):
        def compose(self):
            yield KeyedTable([("strike", "Strike", "right"), ("ltp", "LTP", "right")])

    app = TableApp()
    async with app.run_test(size=(60, 12)) as pilot:
        table = app.query_one(KeyedTable)
        rows = {k: {"strike": k, "ltp": "1.00"} for k in ("100", "200", "300")}
        assert table.sync_rows(rows) == 6
        await pilot.pause()
        before = table.lines_refreshed
        rows["200"] = {"strike": "200", "ltp": ("2.50", "green")}
        assert table.sync_rows(rows) == 1  # one changed cell, one repaint
        assert table.lines_refreshed == before + 1
        assert table.sync_rows(rows) == 0  # nothing changed: nothing written
        new = {k: {"strike": k, "ltp": "1.00"} for k in ("50", "100", "200", "300")}
        table.sync_rows(new)
        assert table.row_keys == ["50", "100", "200", "300"]  # a new strike slots in, in order
        table.sync_rows({k: v for k, v in new.items() if k != "300"})
        assert table.row_keys == ["50", "100", "200"]


@pytest.mark.unit
async def test_keyed_table_repaints_only_rows_and_columns_on_screen_never_its_scrollbars() -> None:
    """A change to a row hidden under the horizontal scrollbar, or to a column scrolled off to
    the right, marks nothing: repainting a scrollbar sends it cell by cell (~4 KB a frame)."""
    from optui.widgets.keyed_table import KeyedTable

    columns = [("strike", "Strike", "right"), *((f"c{i}", f"C{i}", "right") for i in range(12))]

    class TableApp(App[None]):
        CSS = "KeyedTable { height: 8; width: 60; overflow-x: auto; overflow-y: auto; }"

        def compose(self):
            yield KeyedTable(columns)

    def row(k: str, value: str) -> dict:
        return {"strike": k, **{f"c{i}": f"{value}{i:>9}" for i in range(12)}}

    app = TableApp()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(KeyedTable)
        rows = {str(k): row(str(k), "a") for k in range(100, 130)}
        table.sync_rows(rows)
        await pilot.pause()
        assert table.scrollbar_size_horizontal == 1 and table.scrollbar_size_vertical > 0
        shown = table.size.height - table.scrollbar_size_horizontal  # header + rows above the bar
        regions: list = []
        table.refresh = lambda *r, **kw: regions.extend(r)  # type: ignore[method-assign]
        last_shown, under_bar = table.row_keys[shown - 2], table.row_keys[shown - 1]
        rows[under_bar] = row(under_bar, "b")
        assert table.sync_rows(rows) == 12 and regions == []  # stored, drawn when scrolled in
        rows[last_shown] = {**rows[last_shown], "c11": "z"}  # the last column: off to the right
        assert table.sync_rows(rows) == 1 and regions == []
        rows[last_shown] = {**rows[last_shown], "c0": "y"}
        table.sync_rows(rows)
        width = table.size.width - table.scrollbar_size_vertical
        assert len(regions) == 1 and regions[0].y == shown - 1 and regions[0].right <= width


@pytest.mark.unit
async def test_keyed_table_wider_than_its_box_grows_a_column_without_a_relayout() -> None:
    """A column that grows in a table already wider than its box (a full chain at 160 columns)
    changes the horizontal scroll range only: no relayout of the screen, the cell shown."""
    from optui.widgets.keyed_table import KeyedTable

    columns = [("strike", "Strike", "right"), *((f"c{i}", f"C{i}", "right") for i in range(12))]

    class TableApp(App[None]):
        CSS = "KeyedTable { height: 8; width: 60; overflow-x: auto; }"

        def compose(self):
            yield KeyedTable(columns)

    app = TableApp()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(KeyedTable)
        rows = {str(k): {"strike": str(k), **{f"c{i}": f"{i:>6}" for i in range(12)}}
                for k in range(100, 104)}
        table.sync_rows(rows)
        await pilot.pause()
        wide = table.virtual_size.width
        assert wide > table.size.width
        layouts: list[bool] = []
        refresh = table.refresh

        def watched(*regions, **kwargs):  # noqa: ANN002, ANN003, ANN202
            layouts.append(bool(kwargs.get("layout")))
            return refresh(*regions, **kwargs)

        table.refresh = watched  # type: ignore[method-assign]
        rows["101"] = {**rows["101"], "c0": "1234567890"}
        table.sync_rows(rows)
        assert table.virtual_size.width == wide + 4 and layouts and not any(layouts)
        await pilot.pause()
        assert "1234567890" in table.render_line(2).text


@pytest.mark.unit
async def test_health_log_line_written_into_a_full_panel_scrolls_without_a_relayout() -> None:
    """Once the panel has its scrollbar, a new line only extends the scroll range (no relayout
    of the screen) and is shown at the bottom; the first overflow still lays the panel out."""
    class LogApp(App[None]):
        CSS = "HealthLog { height: 6; width: 50; }"

        def compose(self):
            yield HealthLog()

    app = LogApp()
    async with app.run_test(size=(80, 12)) as pilot:
        health = app.query_one(HealthLog)
        await pilot.pause()
        screen = app.screen
        layouts: list[bool] = []
        relayout = screen._refresh_layout

        def watched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            layouts.append(not kwargs.get("scroll", args[1] if len(args) > 1 else False))
            return relayout(*args, **kwargs)

        screen._refresh_layout = watched  # type: ignore[method-assign]
        for n in range(8):
            health.add(SAMPLE_TIME, "info", f"line {n}")
            await pilot.pause()
        assert health.show_vertical_scrollbar and any(layouts)  # the first overflow
        layouts.clear()
        health.add(SAMPLE_TIME, "warning", "line 8")
        await pilot.pause()
        await pilot.pause()
        assert not any(layouts)
        shown = [strip.text for strip in (health.render_line(y) for y in range(health.size.height))]
        assert "line 8" in shown[-1] and "line 7" in shown[-2], shown


@pytest.mark.unit
async def test_keyed_table_line_merges_blanks_into_styles_that_cannot_show_on_them() -> None:
    """The gap after a bold or coloured cell takes its style (one segment for bold LTP, bold
    strike, bold LTP); after a reversed cell it stays plain, as a reversed blank shows."""
    from rich.style import Style

    from optui.widgets.keyed_table import KeyedTable, blank_invisible

    assert blank_invisible("bold") and blank_invisible("green") and blank_invisible("dim italic")
    assert not blank_invisible("bold reverse") and not blank_invisible("underline")
    assert not blank_invisible("on red")

    class TableApp(App[None]):
        def compose(self):
            yield KeyedTable([("a", "A", "right"), ("b", "B", "center"), ("c", "C", "left")])

    app = TableApp()
    async with app.run_test(size=(60, 12)):
        table = app.query_one(KeyedTable)
        table._widths = {"a": 4, "b": 4, "c": 4}
        cells = {"a": ("1.5", "bold"), "b": ("100", "bold"), "c": ("2.5", "bold")}
        segments = list(table._line(cells, Style(), {}))
        assert [s.text for s in segments] == [" ", " 1.5  100   2.5   "]
        atm = {**cells, "b": ("100", "bold reverse")}
        segments = list(table._line(atm, Style(), {}))
        assert [s.text for s in segments] == [" ", " 1.5  ", "100 ", "  ", "2.5   "]
        assert segments[3].style == Style() and segments[2].style.reverse


@pytest.mark.unit
async def test_chain_swapped_for_a_short_one_keeps_its_box_and_shows_its_rows() -> None:
    class ChainApp(App[None]):
        def compose(self):
            yield ChainTable()

    def rows(bucket: str, count: int) -> dict:
        snap = sample_snapshot(strikes_each_side=count // 2)
        return chain_rows(snap.indices["NIFTY"].legs, "NIFTY", bucket)

    app = ChainApp()
    async with app.run_test(size=(160, 20)) as pilot:
        table = app.query_one(ChainTable)
        long_chain = rows("this_week", 40)
        assert len(long_chain) > 20
        table.show_rows(long_chain, "NIFTY", "this_week")
        await pilot.pause()
        table.scroll_end(animate=False, immediate=True)
        await pilot.pause()
        box, tall = table.outer_size, table.virtual_size.height
        assert table.scroll_y > 0
        short = rows("next_week", 4)
        assert 0 < len(short) < 10
        table.show_rows(short, "NIFTY", "next_week")
        await pilot.pause()
        # Same box and scroll height (no relayout), scrolled back so the short chain is in view.
        assert table.outer_size == box and table.virtual_size.height == tall
        assert table.scroll_y == 0 and table.max_scroll_y == 0
        assert table.row_keys == list(short)
        shown = "".join(seg.text for seg in table.render_line(1))
        assert cell_text(short[table.row_keys[0]]["strike"]) in shown


# ---------------------------------------------------------------- what the trader selected


@pytest.mark.mock
async def test_overview_follows_the_selected_bucket() -> None:
    async with open_dashboard(engine=FakeEngine()) as dash:
        screen = dash.screen
        snap = screen._snapshot
        assert snap is not None
        await dash.pilot.press("b", "b")
        await dash.pilot.pause()
        assert (screen.index, screen.bucket) == ("NIFTY", "this_month")
        overview = screen.query_one(OverviewTable)
        month = snap.indices["NIFTY"].overview.buckets["this_month"]
        week = snap.indices["NIFTY"].overview.buckets["this_week"]
        assert table_cell(overview, "NIFTY", "atm_iv") == fmt_iv(month.atm_iv) == "12.6"
        assert table_cell(overview, "NIFTY", "pcr") == f"{month.pcr_oi:.2f}" == "0.82"
        assert table_cell(overview, "NIFTY", "straddle") == fmt_price(month.straddle) == "300.00"
        assert table_cell(overview, "NIFTY", "expiry") == month.expiry.strftime("%d %b")
        assert fmt_price(week.straddle) != fmt_price(month.straddle)
        assert "this_month" in str(screen.query_one("#overview").border_title)
        assert_tables_match(screen, snap)

@pytest.mark.mock
@pytest.mark.integration
async def test_simulator_overview_follows_this_month(tmp_path: Path) -> None:
    """NIFTY this_month selected: the overview shows the monthly's IV, PCR and straddle."""
    settings = sim_settings(tmp_path, interval_s=3600.0)
    settings.source.snapshot_s = 0  # one cycle: no tick cadence
    settings.source.indices = ["NIFTY"]
    async with open_dashboard(settings, clock=None, rounds=3) as dash:
        screen = dash.screen
        snaps = dash.collected()
        assert snaps, [n.message for n in dash.app._notifications]
        snap = snaps[-1]
        while screen.bucket != "this_month":
            await dash.pilot.press("b")
        await dash.pilot.pause()
        buckets = snap.indices["NIFTY"].overview.buckets
        month, week = buckets["this_month"], buckets["this_week"]
        assert month.expiry != week.expiry
        overview = screen.query_one(OverviewTable)
        assert table_cell(overview, "NIFTY", "atm_iv") == fmt_iv(month.atm_iv)
        assert table_cell(overview, "NIFTY", "pcr") == f"{month.pcr_oi:.2f}"
        assert table_cell(overview, "NIFTY", "straddle") == fmt_price(month.straddle)
        assert table_cell(overview, "NIFTY", "straddle") != fmt_price(week.straddle)
        # The chain: the monthly expiry in its title, 21 strikes around the ATM by default.
        chain = screen.query_one(ChainTable)
        title = str(screen.query_one("#chain").border_title)
        assert month.expiry.strftime("%d %b %Y") in title and "this_month" in title
        strikes = [float(k) for k in chain.row_keys]
        assert len(strikes) == 21
        assert strikes[10] == month.atm_strike

@pytest.mark.unit
def test_strike_window_has_hysteresis() -> None:
    strikes = [float(s) for s in range(25_000, 27_001, 50)]
    window = StrikeWindow(each_side=10)
    sel = ("NIFTY", "this_week")
    lo, hi = window.select(sel, strikes, 26_000.0)
    assert hi - lo == 21 and strikes[lo + 10] == 26_000.0
    # Spot on the midpoint: the ATM flips to 26,050 and back; the window stays put.
    for atm in (26_050.0, 26_000.0, 26_050.0, 26_000.0):
        assert window.select(sel, strikes, atm) == (lo, hi)
    # Two strikes away: the window recentres there.
    lo2, hi2 = window.select(sel, strikes, 26_100.0)
    assert strikes[lo2 + 10] == 26_100.0
    # Each selection has its own centre; at the chain's edge the window is cut, not shifted.
    assert window.select(("NIFTY", "next_week"), strikes, 25_000.0) == (0, 11)


@pytest.mark.unit
def test_counts_never_hide_a_real_change() -> None:
    assert fmt_count(0) == "0"
    assert fmt_count(0, signed=True) == "0"
    assert fmt_count(-75, signed=True) == "-0.001"  # one NIFTY lot, not "-0.00"
    assert fmt_count(75, signed=True) == "+0.001"
    assert fmt_count(-41_250, signed=True) == "-0.41"
    assert fmt_count(1_250_000) == "12.50"
    assert fmt_count(-75, 75, signed=True) == "-1"
    assert fmt_count(1_250_025, 75) == "16,667"
    assert fmt_count(float("nan"), 75) == "—"


@pytest.mark.unit
def test_dashboard_engine_records_the_chain_window() -> None:
    s = Settings()
    widened = chain_settings(s)
    assert widened.source.offsets == list(range(-10, 11))
    assert s.source.offsets == [-2, -1, 0, 1, 2]  # the user's settings are not changed
    s.ui.chain_strikes = 1
    assert chain_settings(s) is s  # the recorded offsets already cover it


@pytest.mark.mock
@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_chain_window_opens_on_the_atm_and_stays_put(size: tuple[int, int]) -> None:
    async with open_dashboard(collect=False, size=size, rounds=0) as dash:
        screen = dash.screen
        snap = sample_snapshot(strikes_each_side=15)
        screen.show_snapshot(snap)
        await settle(dash.app, dash.pilot)
        chain = screen.query_one(ChainTable)
        stats = snap.indices["NIFTY"].overview.buckets["this_week"]
        atm_key = f"{stats.atm_strike:g}"
        keys = chain.row_keys
        assert len(keys) == 21 and keys[10] == atm_key
        # Opened scrolled so the ATM row is on screen, near the middle of the visible rows.
        visible = chain.scrollable_content_region.height - 1
        top = int(chain.scroll_y)
        assert top <= 10 < top + visible
        if visible < 21:
            assert abs((10 - top) - (visible - 1) // 2) <= 1
        # The ATM flips one strike up (spot at the midpoint): the same rows stay.
        flipped = sample_snapshot(strikes_each_side=15, tick=1)
        step = 50.0
        for b in flipped.indices["NIFTY"].overview.buckets.values():
            b.atm_strike += step
        screen.show_snapshot(flipped)
        await dash.pilot.pause()
        assert chain.row_keys == keys
        assert int(chain.scroll_y) == top

@pytest.mark.mock
async def test_chain_in_lots_names_its_unit() -> None:
    settings = Settings()
    settings.ui.oi_unit = "lots"
    async with open_dashboard(settings, collect=False, rounds=0) as dash:
        snap = sample_snapshot()
        dash.screen.show_snapshot(snap)
        await dash.pilot.pause()
        chain = dash.screen.query_one(ChainTable)
        assert "lots of 75" in str(dash.screen.query_one("#chain").border_title)
        labels = {key: chain._labels[key] for key in chain.column_keys}  # as drawn (wider: fewer fit)
        assert labels["c_oi"] == "OI (lots)" and labels["p_oi_chg"] == "ΔOI (lots)"
        for leg in snap.indices["NIFTY"].legs:
            if leg.bucket != "this_week":
                continue
            prefix = "c_" if leg.side == "CALL" else "p_"
            row = f"{leg.strike:g}"
            assert table_cell(chain, row, f"{prefix}oi") == fmt_count(leg.oi, 75)
            assert table_cell(chain, row, f"{prefix}oi_chg") == fmt_count(leg.oi_change, 75, signed=True)

@pytest.mark.mock
@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_health_panel_wraps_a_fault_fix_whole(size: tuple[int, int]) -> None:
    """A fault's recovery action (the ~200-character login fix) is read whole in the health
    panel: wrapped to the panel's width, never cut off, and wrapped again after a resize."""
    from optui.collectors.health import EventKind, HealthEvent, Severity
    from optui.collectors.supervisor import TOKEN_ACTION

    async with open_dashboard(engine=FakeEngine(), size=size) as dash:
        if size[0] < 100:
            await dash.pilot.press("4")  # the narrow layout's Health tab
            await dash.pilot.pause()
        health = dash.screen.query_one(HealthLog)
        fault = HealthEvent(EventKind.TOKEN_REJECTED, Severity.ERROR, "the Kite access token was rejected",
                            TOKEN_ACTION, at=fixed_clock())
        health.add_event(fault, fixed_clock())
        for new_size in (size, (size[0] - 20, size[1])):
            await dash.pilot.resize_terminal(*new_size)
            await dash.pilot.pause()
            health = dash.screen.query_one(HealthLog)
            width = health.scrollable_content_region.width
            shown = [strip.text.rstrip() for strip in health.lines]
            assert width > 0 and all(len(line) <= width for line in shown), (width, shown)
            squeezed = "".join("".join(shown).split())
            assert "".join(TOKEN_ACTION.split()) in squeezed

