"""The live dashboard: a feed of collection cycles (optui.feed) drives panels updated in place.

The feed collects here (LocalFeed), follows a collector that already runs on the store or on
another machine (RedisFeed, FileFeed), or replays a recorded day (ReplayFeed). One long-lived
thread worker (optui.screens.feed_loop.FeedLoop) calls the blocking feed and posts typed
messages; this screen keeps the layout, the key bindings and the message handlers, and the
panels are drawn by optui.screens.dashboard_view, so a tick costs the cells that changed.
Below 120 columns the panels become tabs so the screen still works at 80x24 over SSH.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.scalar import Scalar
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from optui.analytics.timeframes import TIMEFRAMES
from optui.collectors.health import source_down_event
from optui.config import Settings
from optui.feed.model import Feed, FeedCycle
from optui.feed.replay import ReplayRequest
from optui.heap import freeze_heap, thaw_heap
from optui.screens.dashboard_reads import DashboardReads, cycle_views
from optui.screens.dashboard_replay import REPLAY_BINDINGS
from optui.screens.dashboard_view import TABS, WIDE_MIN_COLUMNS
from optui.screens.feed_loop import FeedLoop
from optui.ui_messages import (
    CollectionFailed,
    CycleAwaited,
    EngineFailed,
    FeedNote,
    FeedStarted,
    SnapshotCollected,
    TokenExpired,
)
from optui.widgets.alerts_panel import AlertsPanel
from optui.widgets.chain_table import ChainTable
from optui.widgets.dashboard_model import ALERT_FILTER_LABELS, buckets_of, cycle, next_alert_filter
from optui.widgets.flow_panel import FlowPanel
from optui.widgets.frame_now import after_frame, draw_now
from optui.widgets.health_log import HealthLog
from optui.widgets.overview_table import OverviewTable
from optui.widgets.participants_panel import ParticipantsPanel
from optui.widgets.positions_table import PositionsTable
from optui.widgets.status_header import StatusHeader

log = logging.getLogger(__name__)

CHAIN_ROOM = 1 + 10 + 8 + 1
"""Lines the wide layout keeps besides the chain: the header, the top row, the bottom row's
minimum and the footer (dashboard.tcss)."""
CHAIN_MIN_ROWS = 4
"""The chain's header and three strikes, however short the terminal."""

__all__ = ["DashboardScreen", "EngineFactory", "ReplayRequest", "WIDE_MIN_COLUMNS", "chain_settings"]

EngineFactory = Callable[[Settings], Any]
"""Builds a CollectionEngine from settings (tests and benchmarks give their own)."""


def chain_settings(settings: Settings) -> Settings:
    """Settings whose recorded legs cover the dashboard's chain window (ui.chain_strikes).

    The collector records legs only at `source.offsets` (ATM +-2 by default); the chain shows
    `ui.chain_strikes` each side, so the dashboard's engine records those strikes too.
    """
    each = settings.ui.chain_strikes
    wanted = sorted(set(settings.source.offsets) | set(range(-each, each + 1)))
    if wanted == sorted(settings.source.offsets):
        return settings
    widened = copy.deepcopy(settings)
    widened.source.offsets = wanted
    return widened


def replay_chain_settings(settings: Settings) -> Settings:
    """Settings for a replay on the dashboard: the live dashboard's chain window (chain_settings)
    when the recorded quotes cover it (whole chains, source.chain_strikes = 0, or a window at
    least ui.chain_strikes wide), so the replayed chain shows the strikes the live one showed;
    else the settings as they are (a wider window would ask for strikes never quoted)."""
    each = settings.source.chain_strikes
    if each == 0 or each >= settings.ui.chain_strikes:
        return chain_settings(settings)
    return settings


class DashboardScreen(DashboardReads):
    """Live overview, chain, premium flow, position changes and health for the five indices."""

    CSS_PATH = str(Path(__file__).resolve().parent.parent / "widgets" / "dashboard.tcss")

    BINDINGS = [
        Binding("i,right_square_bracket", "cycle_index(1)", "Index", id="dashboard.index_next",
                tooltip="Show the next index"),
        Binding("I,left_square_bracket", "cycle_index(-1)", "Index back", show=False,
                id="dashboard.index_prev", tooltip="Show the previous index"),
        Binding("b", "cycle_bucket(1)", "Expiry", id="dashboard.bucket_next",
                tooltip="Show the next expiry bucket"),
        Binding("B", "cycle_bucket(-1)", "Expiry back", show=False, id="dashboard.bucket_prev",
                tooltip="Show the previous expiry bucket"),
        Binding("t", "cycle_timeframe(1)", "Timeframe", id="dashboard.tf_next",
                tooltip="Next premium-flow timeframe (1m to 1w)"),
        Binding("T", "cycle_timeframe(-1)", "TF back", show=False, id="dashboard.tf_prev",
                tooltip="Previous premium-flow timeframe"),
        Binding("r", "collect_now", "Collect now", id="dashboard.collect_now",
                tooltip="Run a collection cycle now, or resume after a failure"),
        *REPLAY_BINDINGS,
        Binding("p", "participants", "Participants", id="dashboard.participants",
                tooltip="Participants table, FII/DII cash and history charts (end of day)"),
        Binding("a", "cycle_alert_filter", "Alerts filter", id="dashboard.alert_filter",
                tooltip="Alerts shown: all, warning and critical, critical only"),
        Binding("g", "charts", "Charts", show=False, id="dashboard.charts",
                tooltip="Charts: OI, smile, IV and straddle, flow, gamma exposure"),
        Binding("escape", "back", "Back", id="dashboard.back", tooltip="Back to the menu"),
        *(
            Binding(label[0], f"show_tab('{tab}')", label[2:], show=False,
                    id=f"dashboard.{tab}", tooltip=f"Show the {label[2:]} tab")
            for tab, label in TABS
        ),
    ]

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        feed: Feed | None = None,
        engine: Any = None,
        engine_factory: EngineFactory | None = None,
        attach: str | None = None,
        replay: ReplayRequest | None = None,
        clock: Callable[[], datetime] | None = None,
        collect: bool = True,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
    ) -> None:
        super().__init__(settings, clock=clock, name=name, id=id)
        # `feed` (any Feed), or `engine` (a built CollectionEngine, collected by a LocalFeed), or
        # a feed the loop makes: `replay`'s ReplayFeed, `engine_factory`'s engine, else
        # optui.feed.open_feed (`attach`: that Redis channel only; a collector running on the
        # store: attach to it).
        self._given_feed: Feed | None = feed
        self._engine = engine
        self._owns_feed = feed is None and engine is None
        self._engine_factory = engine_factory
        self._attach_url = attach
        self._replay = replay
        self._collect_enabled = collect
        self.loop: FeedLoop | None = None
        self._iv_history_asked: object = None
        self.flow_queries = 0
        """Flow queries started (tests and the benchmark read it)."""
        self._frozen = 0
        """How far freeze_heap has run (see _freeze_once)."""

    # ---- setup -------------------------------------------------------------------------

    @property
    def feed(self) -> Feed | None:
        """The feed of cycles, once chosen."""
        loop = self.loop
        return loop.feed if loop is not None else self._given_feed

    def compose(self) -> ComposeResult:
        self._wide = self.app.size.width >= WIDE_MIN_COLUMNS
        if not self.index:
            self.index = self._index_keys()[0]
            tf = self.settings.flow.timeframe
            self.timeframe = tf if tf in TIMEFRAMES else "5m"
        yield StatusHeader(id="dash-header")
        if self._wide:
            with Horizontal(id="dash-top"):
                yield OverviewTable(id="overview", classes="panel")
                yield FlowPanel(self.timeframe, id="flow", classes="panel")
            yield ChainTable(oi_unit=self.settings.ui.oi_unit, id="chain", classes="panel")
            with Horizontal(id="dash-bottom"):
                yield PositionsTable(id="positions", classes="panel")
                with Vertical(id="dash-events"):
                    yield AlertsPanel(id="alerts", classes="panel")
                    yield HealthLog(id="health", classes="panel")
                yield ParticipantsPanel(compact=True, id="participants", classes="panel")
        else:
            yield OverviewTable(compact=True, id="overview")
            with TabbedContent(id="dash-tabs"):
                with TabPane(TABS[0][1][2:], id=TABS[0][0]):
                    yield ChainTable(compact=True, oi_unit=self.settings.ui.oi_unit, id="chain")
                with TabPane(TABS[1][1][2:], id=TABS[1][0]):
                    yield FlowPanel(self.timeframe, id="flow")
                with TabPane(TABS[2][1][2:], id=TABS[2][0]):
                    yield PositionsTable(id="positions")
                with TabPane(TABS[3][1][2:], id=TABS[3][0]):
                    yield HealthLog(id="health")
                with TabPane(TABS[4][1][2:], id=TABS[4][0]):
                    yield Vertical(ParticipantsPanel(id="participants"))
                with TabPane(TABS[5][1][2:], id=TABS[5][0]):
                    yield AlertsPanel(id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self._show_titles()
        self._render_all()
        self.set_interval(1.0, self._refresh_header, name="dashboard-clock")
        feed = self._given_feed
        if feed is None and self._engine is not None:
            from optui.feed.local import LocalFeed

            feed = LocalFeed(self._engine, interval_s=self.settings.source.interval_s)
        if feed is None and not self._collect_enabled:
            return  # shown from outside (show_snapshot): nothing to run
        self.loop = FeedLoop(self.post_message, feed=feed,
                             make_feed=self._make_feed if feed is None else None,
                             owns_feed=self._owns_feed, collect=self._collect_enabled,
                             views=lambda c: cycle_views(self.settings, c, (self.index, self.bucket)))
        loop = self.loop
        self.run_worker(lambda: loop.run(lambda: get_current_worker().is_cancelled), thread=True,
                        group="feed", exit_on_error=False, description="run the feed")

    def _make_feed(self) -> Feed:
        """Called in the worker: the replay, the factory's engine, or open_feed's choice."""
        settings = self.settings
        if self._replay is not None:
            from optui.feed.replay import ReplayFeed

            r = self._replay
            return ReplayFeed(replay_chain_settings(settings), r.day, speed=r.speed, start_hhmm=r.start_hhmm)
        if self._engine_factory is not None:
            from optui.feed.local import LocalFeed

            factory = self._engine_factory
            return LocalFeed(factory=lambda: factory(settings), interval_s=settings.source.interval_s)
        from optui.feed import open_feed

        return open_feed(settings, self._attach_url, factory_settings=chain_settings(settings))

    async def on_resize(self, event: events.Resize) -> None:
        await self._fit_layout()

    async def on_screen_resume(self, event: events.ScreenResume) -> None:
        # A cover (too small, help) does not pass resizes on: the terminal may have changed.
        await self._fit_layout()

    async def _fit_layout(self) -> None:
        """Switch between side-by-side panels and tabs until the layout fits the current width.

        Resizes can arrive while a recompose is in flight (a resize storm): one switch runs at a
        time, then checks the width again; panels are not touched while they are being replaced.
        The health log and the alerts panel (with its filter) carry over.
        """
        if self._relayout:
            return
        self._relayout = True
        try:
            while (self.app.size.width >= WIDE_MIN_COLUMNS) != self._wide:
                history = list(self.query_one(HealthLog).history)
                old = self.query_one(AlertsPanel)
                alerts, min_severity = list(old.alerts), old.min_severity
                await self.recompose()
                self.query_one(HealthLog).replay(history)
                panel = self.query_one(AlertsPanel)
                panel.min_severity = min_severity
                panel.add_alerts(alerts)
        finally:
            self._relayout = False
        self._fit_chain_height()
        self._show_titles()
        pending, self._pending_health = self._pending_health, []
        for at, level, text in pending:
            self.query_one(HealthLog).add(at, level, text)
        raised, self._pending_alerts = self._pending_alerts, []
        if raised:
            self.show_alerts(raised)
        self._render_all()

    def _fit_chain_height(self) -> None:
        """Side by side, the chain takes at most 60 % of the height and leaves the bottom row
        its 8 lines: at 120x40 60 % left it 5 and the health log below the alerts had none."""
        if not self._wide:
            return
        height = self.app.size.height
        rows = max(CHAIN_MIN_ROWS, min(height * 6 // 10, height - CHAIN_ROOM))
        chain = self.query_one(ChainTable)
        if chain.styles.max_height != Scalar.parse(str(rows)):
            chain.styles.max_height = rows

    def on_unmount(self) -> None:
        # The worker closes a feed the screen owns (a spool may flush over the network): never
        # on the event loop; the process waits for that thread before it exits.
        if self.loop is not None:
            self.loop.stop()
        if self._frozen:
            self._frozen = 0
            thaw_heap()

    # ---- messages from the feed loop -----------------------------------------------------

    @on(FeedStarted)
    def _on_feed_started(self, message: FeedStarted) -> None:
        self._failed = False
        self._paused = False
        self._attached_to = message.feed.attached_to
        if message.feed.replay:
            self._data_clock.label = "REPLAY"
        self._log("info", message.description)
        self._refresh_participants()
        self._refresh_header()
        self._freeze_once(1)  # the feed's modules are imported: freeze them with the app

    @on(EngineFailed)
    def _on_engine_failed(self, message: EngineFailed) -> None:
        self._failed = True
        self._log("error", message.error)
        self.notify(f"{message.error}\nFix the setting, then press r to retry.",
                    title="Collection not started", severity="error", timeout=10)
        self._refresh_header()

    @on(SnapshotCollected)
    def _on_snapshot(self, message: SnapshotCollected) -> None:
        self._failed = False
        views = message.views
        cycle = message.cycle
        participants = cycle is None or cycle.participants_changed
        for older in message.skipped:  # superseded in the queue: only their news is shown
            self._cycle_events(older.cycle)
            self._health(older.snapshot, self._clock())
            participants = participants or older.cycle is None or older.cycle.participants_changed
        self._cycle_events(cycle)
        self.show_snapshot(message.snapshot, views.get("chain_rows"), views.get("positions"))
        if cycle is not None and cycle.gap:  # attached mid-outage: the collector's cached tier
            age = cycle.cached_age_s if cycle.cached_age_s is not None else cycle.age_s
            self._show_cached(age)
        # The frame now, not after a relay of idle messages (frame_now); what follows wakes
        # other threads (a read, a full collection): after it.
        draw_now(self)
        if self.loop is not None:  # the cycle's publication and storing follow its frame
            after_frame(self, self.loop.frame_written, message)
        # What the first cycle imported and built for good (2); with the second, what storing
        # the first built: tags, day state, the alert rules' history (3).
        self._freeze_once(3 if self._frozen >= 2 else 2)
        self._refresh_participants(participants)

    def _freeze_once(self, stage: int) -> None:
        """freeze_heap at each stage of the start once: the feed started (1), the first cycle
        shown (2), the second (3). See optui.heap."""
        if self._frozen < stage:
            self._frozen = stage
            freeze_heap()

    def _cycle_events(self, cycle: FeedCycle | None) -> None:
        """A cycle's health events to the log; the collector's host and interval noted."""
        if cycle is None:
            return
        feed = self.feed
        if cycle.host and feed is not None and feed.attached_to:
            self._attached_to = cycle.host
        for event in cycle.health:
            self._log_cycle_event(event)
        if cycle.interval_s > 0:
            self._collector_interval_s = cycle.interval_s

    @on(CycleAwaited)
    def _on_gap(self, message: CycleAwaited) -> None:
        """The collector followed here published a gap: its health events say why; while it
        serves its last good snapshot (the cached tier) the panels keep it with its age."""
        for event in message.health:
            self._log_cycle_event(event)
        if message.cached_age_s is not None and self._snapshot is not None:
            self._show_cached(message.cached_age_s)

    def _show_cached(self, age_s: float) -> None:
        """The shown snapshot is the collector's cached tier, `age_s` exchange seconds after
        its market moment: every title and the header say so, counting on from there."""
        assert self._snapshot is not None
        self._data_clock.received(self._snapshot, self._clock() - timedelta(seconds=age_s))
        self._failed = True
        self._cached = True
        self._refresh_header()
        self._show_titles()

    @on(CollectionFailed)
    def _on_collection_failed(self, message: CollectionFailed) -> None:
        self._failed = True
        self._cached = self._snapshot is not None  # the last good snapshot stays: the cached tier
        self._log_event(source_down_event(message.error, self._data_clock.age_s(self._clock()),
                                          self._market_now()))
        self.notify(message.error, title="Collection failed", severity="error", timeout=8)
        self._refresh_header()
        self._show_titles()

    @on(FeedNote)
    def _on_feed_note(self, message: FeedNote) -> None:
        self._log(message.level, message.text)
        if message.level == "error":
            self.notify(message.text, title="Replay", severity="error", timeout=8)
        elif message.ended:
            self.notify(message.text, title="Replay", timeout=8)
        self._refresh_header()

    @on(TokenExpired)
    def _on_token_expired(self, message: TokenExpired) -> None:
        self._paused = True  # the loop paused itself: no retry against a dead token
        self._failed = True
        self._log("error", f"Kite login needed: {message.error}")
        self._refresh_header()
        try:
            from optui.screens.kite_login import ReloginPrompt
        except ImportError:
            self.notify(
                f"{message.error}\nLog in again (Production → 2 Kite Connect authentication), "
                "then press r to resume.",
                title="Kite login expired", severity="error", timeout=15,
            )
            return
        self.app.push_screen(
            ReloginPrompt(message.error, on_login=self._after_login), callback=self._after_prompt
        )

    def _after_prompt(self, log_in_now: bool | None) -> None:
        if not log_in_now:
            self.notify("Collection paused until you log in: press r to resume.",
                        title="Kite login", severity="warning")

    def _after_login(self, logged_in: bool | None) -> None:
        if not logged_in:
            self.notify("Not logged in: collection stays paused. Press r to retry.",
                        title="Kite login", severity="warning")
            return
        self._paused = False
        if self.loop is not None:
            # The token is read when the source is built: a feed the screen owns starts afresh.
            self.loop.restart()

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        # The loop catches its own errors; anything reaching here is a bug, reported not hidden.
        if event.state != WorkerState.ERROR:
            return
        report = getattr(self.app, "report_worker_state", None)
        if report is not None:  # worker state changes do not bubble: hand it to the app's reporter
            report(event)
        else:
            log.error("worker %s failed: %s", event.worker.description, event.worker.error)
            self.notify(f"{event.worker.description} failed: {event.worker.error}",
                        severity="error", timeout=8)

    # ---- actions -------------------------------------------------------------------------

    def _store(self) -> Any:
        feed = self.feed
        return feed.store if feed is not None else None

    def action_participants(self) -> None:
        store = self._store()
        if store is None:
            self.notify("Participant data is read from the store once collection has started.",
                        title="Participants", severity="warning")
            return
        from optui.analytics.trading_calendar import TradingCalendar
        from optui.screens.participants import ParticipantsScreen
        from optui.widgets.participants_panel import live_participants_url

        self.app.push_screen(ParticipantsScreen(store, TradingCalendar.from_settings(self.settings),
                                                self.settings.participants.history_days,
                                                live_participants_url(self.settings.store.url, store)))

    def action_charts(self) -> None:
        from optui.screens.charts import ChartsScreen

        self.app.push_screen(ChartsScreen(self._store(), lambda: self._snapshot, self.index,
                                          self.bucket, self.timeframe))

    def collect_now(self) -> None:
        """A cycle now unless one is running (runs never overlap); retries a failed start."""
        if self.loop is not None and self._collect_enabled:
            self.loop.collect_now()

    def action_collect_now(self) -> None:
        loop = self.loop
        if loop is not None and not loop.started:
            self._failed = False
        self._paused = False
        self.collect_now()
        self._refresh_header()

    def action_cycle_index(self, step: int) -> None:
        self.index = cycle(self._index_keys(), self.index, step)
        buckets = buckets_of(self._snapshot, self.index)
        if buckets and self.bucket not in buckets:
            self.bucket = buckets[0]
        self._render_all()
        draw_now(self)
        self.call_after_refresh(self._after_frame, flow=True)

    def action_cycle_bucket(self, step: int) -> None:
        buckets = buckets_of(self._snapshot, self.index)
        if not buckets:
            return
        self.bucket = cycle(buckets, self.bucket, step)
        self._render_all(flow=False)
        draw_now(self)
        self.call_after_refresh(self._after_frame, iv_history=True)

    def action_cycle_timeframe(self, step: int) -> None:
        self.timeframe = cycle(TIMEFRAMES, self.timeframe, step)
        self._render_all(tables=False)
        draw_now(self)
        self.call_after_refresh(self.query_flow)  # once the frame is out (see _after_frame)

    def action_cycle_alert_filter(self) -> None:
        panel = self.query_one(AlertsPanel)
        panel.set_min_severity(next_alert_filter(panel.min_severity))
        self.notify(f"Alerts shown: {ALERT_FILTER_LABELS[panel.min_severity]}", title="Alerts", timeout=3)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_tab":
            return not self._wide
        if action == "back":
            return len(self.app.screen_stack) > 1
        return super().check_action(action, parameters)
