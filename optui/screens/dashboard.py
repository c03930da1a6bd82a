"""The live dashboard: a feed of collection cycles (optui.feed) drives panels updated in place.

The feed collects here (LocalFeed) or follows a collector that already runs on the store or on
another machine (RedisFeed, FileFeed). One thread worker calls the blocking feed and posts typed
messages; the handlers here own all state and update widgets by key inside one `batch_update`,
so a tick costs the cells that changed.
Below 120 columns the panels become tabs so the screen still works at 80x24 over SSH.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from optui.analytics.premium_flow import FlowSeries, flow_window
from optui.analytics.timeframes import TIMEFRAMES
from optui.collectors.health import HealthEvent, Severity, source_down_event
from optui.config import Settings
from optui.errors import OptuiError, TokenExpiredError
from optui.feed.model import Feed
from optui.indices import INDEX_KEYS
from optui.models import LegRecord, Snapshot
from optui.timeutil import IST, now_utc
from optui.ui_messages import (
    CollectionFailed,
    CycleAwaited,
    EngineFailed,
    FeedStarted,
    FlowQueried,
    FlowQueryFailed,
    IvHistoryLoaded,
    SnapshotCollected,
    TokenExpired,
)
from optui.widgets.alerts_panel import AlertsPanel
from optui.widgets.chain_table import ChainTable, all_chain_rows, chain_rows, count_divisor
from optui.widgets.dashboard_model import (
    ALERT_FILTER_LABELS,
    DataClock,
    StrikeWindow,
    buckets_of,
    cycle,
    next_alert_filter,
    notifications,
)
from optui.widgets.flow_panel import FlowPanel
from optui.widgets.format import fmt_clock, fmt_expiry, session_state
from optui.widgets.health_log import HealthLog
from optui.widgets.overview_table import OverviewTable
from optui.widgets.participants_panel import ParticipantsLoaded, ParticipantsPanel, load_view
from optui.widgets.positions_table import PositionsTable, top_oi_changes
from optui.widgets.status_header import StatusHeader

log = logging.getLogger(__name__)

WIDE_MIN_COLUMNS = 120
"""Narrower terminals get tabs instead of side-by-side panels."""

TABS: tuple[tuple[str, str], ...] = (
    ("tab-chain", "1 Chain"),
    ("tab-flow", "2 Flow"),
    ("tab-positions", "3 Positions"),
    ("tab-health", "4 Health"),
    ("tab-participants", "5 Participants"),
    ("tab-alerts", "6 Alerts"),
)

EngineFactory = Callable[[Settings], Any]
"""Builds a CollectionEngine from settings (tests and benchmarks give their own)."""

_JOBS = {
    "start": "start the feed",
    "collect": "collect one snapshot",
    "flow": "query premium flow",
    "participants": "read participant data",
    "iv_history": "read IV history",
    "close": "close the feed",
}
"""The worker's jobs and their descriptions (shown when one fails)."""


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


def _yield_gil() -> None:
    time.sleep(0)


def _close_quietly(feed: Feed) -> None:
    try:
        feed.close()
    except Exception:  # noqa: BLE001 - closing must never take the app down
        log.debug("closing the feed failed", exc_info=True)


ATTACHED_WAIT_S = 1.0
"""An attached feed's worker waits this long for the collector's next cycle, then looks again
(so the screen can go away without a blocked thread)."""


class DashboardScreen(Screen):
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
        clock: Callable[[], datetime] | None = None,
        collect: bool = True,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
    ) -> None:
        super().__init__(name=name, id=id)
        self._settings = settings
        # `feed` (any Feed), or `engine` (a built CollectionEngine, collected by a LocalFeed), or
        # a feed chosen in a worker: `engine_factory`'s engine, else optui.feed.open_feed
        # (`attach`: that Redis channel only; a collector running on the store: attach to it).
        self._feed: Feed | None = feed
        self._engine = engine
        self._owns_feed = feed is None and engine is None
        self._engine_factory = engine_factory
        self._attach_url = attach
        self._attached_to = ""
        self._started = False
        self._starting = False
        self._clock = clock or now_utc
        self._collect_enabled = collect
        self._wide = True
        self._relayout = False
        """The panels are being replaced (wide <-> tabs): widgets are not to be touched."""
        self._pending_health: list[tuple[datetime, str, str]] = []
        self._pending_alerts: list[Any] = []
        self._collecting = False
        self._paused = False
        self._failed = False
        self._timer: Timer | None = None
        self._snapshot: Snapshot | None = None
        self._chain_rows: dict[tuple[str, str], Any] = {}
        self._positions: dict[str, list[LegRecord]] = {}
        self._series: FlowSeries | None = None
        self._data_clock = DataClock()
        self._participants_seen: object | None = None
        self._capture_events_seen = 0
        self._window: StrikeWindow | None = None
        self.index = ""
        self.bucket = ""
        self.timeframe = "5m"
        self.flow_queries = 0
        """Flow queries started (tests and the benchmark read it)."""

    # ---- setup -------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            found = getattr(self.app, "settings", None)
            self._settings = found if isinstance(found, Settings) else Settings()
        return self._settings

    @property
    def feed(self) -> Feed | None:
        """The feed of cycles, once chosen."""
        return self._feed

    def _index_keys(self) -> list[str]:
        configured = [k for k in self.settings.source.indices if k in INDEX_KEYS]
        return configured or list(INDEX_KEYS)

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
        self._titles()
        self._render_all()
        self.set_interval(1.0, self._refresh_header, name="dashboard-clock")
        if self._feed is None and self._engine is not None:
            from optui.feed.local import LocalFeed

            self._feed = LocalFeed(self._engine, interval_s=self.settings.source.interval_s)
        if self._feed is not None and not self._feed.start_blocks():
            self._on_feed_started(FeedStarted(self._feed, self._feed.start()))
        elif self._collect_enabled:
            self._start_feed()

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
                self._titles()
        finally:
            self._relayout = False
        pending, self._pending_health = self._pending_health, []
        for at, level, text in pending:
            self.query_one(HealthLog).add(at, level, text)
        raised, self._pending_alerts = self._pending_alerts, []
        if raised:
            self.show_alerts(raised)
        self._render_all()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.workers.cancel_group(self, "collect")
        self.workers.cancel_group(self, "feed")  # a start still running closes its own feed
        if self._owns_feed and self._feed is not None:
            # Closing may flush a spool over the network: never on the event loop. A non-daemon
            # thread lets the process finish the flush before it exits.
            threading.Thread(target=_close_quietly, args=(self._feed,), name="optui-feed-close").start()
            self._feed = None

    def _titles(self) -> None:
        if not self._wide:
            return
        self.query_one("#overview").border_title = "Indices"
        self.query_one("#positions").border_title = "Largest OI changes"
        self.query_one("#health").border_title = "Health"
        self.query_one("#alerts").border_title = "Alerts"
        self.query_one("#participants").border_title = "Participants"

    # ---- workers: they call blocking code and post messages, nothing else ----------------

    def _run(self, job: str, *args: Any) -> None:
        """Run `job` in the thread worker; jobs of one kind never overlap (exclusive groups)."""
        self.run_worker(partial(self._feed_work, job, *args), thread=True, exclusive=True,
                        group="feed" if job == "start" else job, exit_on_error=False,
                        description=_JOBS[job])

    def _start_feed(self) -> None:
        if self._starting:  # one start at a time: a second would meet the first one's lock
            return
        self._starting = True
        self._run("start")

    def _feed_work(self, job: str, *args: Any) -> None:
        """The worker: calls the blocking feed and posts one typed message, nothing else."""
        worker = get_current_worker()
        if job == "start":
            message: Message = self._start_work()
        elif job == "collect":
            message = self._collect_work(*args)
        elif job == "flow":
            message = self._flow_work(*args)
        elif job == "iv_history":
            message = self._iv_history_work(*args)
        elif job == "participants":
            from optui.analytics.trading_calendar import TradingCalendar

            message = load_view(args[0], TradingCalendar.from_settings(self.settings), "FII",
                                "index_futures_net", 1)
        else:  # close
            _close_quietly(args[0])
            return
        if not worker.is_cancelled:
            self.post_message(message)
        elif job == "start" and isinstance(message, FeedStarted):  # the screen went away
            _close_quietly(message.feed)

    def _start_work(self) -> Message:
        try:
            feed = self._feed or self._make_feed()
            return FeedStarted(feed, feed.start())
        except OptuiError as exc:
            return EngineFailed(str(exc))
        except Exception as exc:  # noqa: BLE001 - shown as a message, trace to the log
            log.exception("starting the feed failed")
            return EngineFailed(f"cannot start collection: {exc} (details in the log)")

    def _make_feed(self) -> Feed:
        settings = self.settings
        if self._engine_factory is not None:
            from optui.feed.local import LocalFeed

            factory = self._engine_factory
            return LocalFeed(factory=lambda: factory(settings), interval_s=settings.source.interval_s)
        from optui.feed import open_feed

        return open_feed(settings, self._attach_url, factory_settings=chain_settings(settings))

    def _collect_work(self, feed: Feed) -> Message:
        try:
            cycle = feed.next_cycle(timeout_s=ATTACHED_WAIT_S)
        except TokenExpiredError as exc:
            return TokenExpired(str(exc))
        except OptuiError as exc:
            return CollectionFailed(str(exc), type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the screen must keep running
            log.exception("collection cycle failed")
            return CollectionFailed(f"collection failed: {exc} (details in the log)", "unexpected")
        if cycle is None:
            return CycleAwaited()
        snapshot = cycle.snapshot
        if snapshot is None:  # a gap: the collector's health events say why
            return CycleAwaited(cycle.health)
        # Formatting every chain and ranking every index's OI changes here, off the event loop,
        # makes index and bucket keys cheap; sleep(0) between chains hands the GIL to key presses.
        top_n = self.settings.positions.top_n
        views = {
            "chain_rows": all_chain_rows(snapshot, pause=_yield_gil, oi_unit=self.settings.ui.oi_unit),
            "positions": {k: top_oi_changes(i.legs, top_n) for k, i in snapshot.indices.items()},
        }
        return SnapshotCollected(snapshot, views, cycle)

    def _flow_work(self, feed: Feed, index: str, tf: str, start: datetime, end: datetime) -> Message:
        try:
            series = feed.flow_series(index, tf, start, end)
        except OptuiError as exc:
            return FlowQueryFailed(index, tf, str(exc))
        except Exception as exc:  # noqa: BLE001
            log.exception("premium flow query failed")
            return FlowQueryFailed(index, tf, f"{exc} (details in the log)")
        return FlowQueried(series)

    # ---- collection scheduling -----------------------------------------------------------

    # ---- participants (end-of-day files, read from the store) ----------------------------

    def _refresh_participants(self, changed: bool = True) -> None:
        """Reload the panel when the feed says new end-of-day participant data was stored."""
        store = self._feed.store if self._feed is not None else None
        if store is not None and changed:
            self._run("participants", store)

    @on(ParticipantsLoaded)
    def _on_participants_loaded(self, message: ParticipantsLoaded) -> None:
        if message.error:
            self._log("error", message.error)
        self.query_one(ParticipantsPanel).show_day(message.day)

    def action_participants(self) -> None:
        store = self._feed.store if self._feed is not None else None
        if store is None:
            self.notify("Participant data is read from the store once collection has started.",
                        title="Participants", severity="warning")
            return
        from optui.analytics.trading_calendar import TradingCalendar
        from optui.screens.participants import ParticipantsScreen

        self.app.push_screen(ParticipantsScreen(store, TradingCalendar.from_settings(self.settings),
                                                self.settings.participants.history_days))

    def _want_iv_history(self, snapshot: Snapshot) -> None:
        """Read the stored daily IV closes once per day and bucket (worker), for the overview."""
        store = self._feed.store if self._feed is not None else None
        if store is None:
            return
        from optui.widgets.overview_table import bucket_stats

        day = snapshot.timestamp.astimezone(IST).date()
        wanted = []
        for key, idx in snapshot.indices.items():
            b = bucket_stats(idx.overview, self.bucket)
            if b is not None:
                wanted.append((key, b.bucket))
        ask = (day, tuple(wanted))
        if ask != getattr(self, "_iv_history_asked", None):
            self._iv_history_asked = ask
            self._run("iv_history", store, day, wanted)

    @staticmethod
    def _iv_history_work(store: Any, day: Any, wanted: list[tuple[str, str]]) -> Message:
        from optui.storage.iv_history import iv_history

        out = {}
        for key, bucket in wanted:
            try:
                closes = iv_history(store, key, bucket, day)
            except OptuiError as exc:
                log.warning("IV history of %s %s not read: %s", key, bucket, exc)
                continue
            except Exception:  # noqa: BLE001 - the overview shows IV without its history
                log.warning("IV history of %s %s not read", key, bucket, exc_info=True)
                continue
            if any(c.atm_iv == c.atm_iv for c in closes):  # no stored close: plain ATM IV
                out[(key, bucket)] = ([c.atm_iv for c in closes], [c.spot for c in closes])
        return IvHistoryLoaded(out)

    @on(IvHistoryLoaded)
    def _show_iv_history(self, message: IvHistoryLoaded) -> None:
        self.query_one(OverviewTable).iv_history = message.history
        self._render_all(flow=False)

    def action_charts(self) -> None:
        from optui.screens.charts import ChartsScreen

        store = self._feed.store if self._feed is not None else None
        self.app.push_screen(ChartsScreen(store, lambda: self._snapshot, self.index, self.bucket,
                                          self.timeframe))

    def collect_now(self) -> None:
        """Start a cycle unless one is running: runs never overlap."""
        if self._feed is None or not self._started or self._collecting or not self._collect_enabled:
            return
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self._collecting = True
        self._run("collect", self._feed)

    def _schedule_next(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = None
        if not self._paused and self._feed is not None and self._collect_enabled:
            # On the collector's exchange-clock schedule; an attached feed waits in the worker.
            self._timer = self.set_timer(max(0.05, self._feed.delay_s()), self.collect_now)

    @on(FeedStarted)
    def _on_feed_started(self, message: FeedStarted) -> None:
        self._starting = False
        if self._feed is not None and self._feed is not message.feed:
            # A second start finished (r pressed twice): keep one feed, close the other.
            threading.Thread(target=_close_quietly, args=(message.feed,), name="optui-feed-close").start()
            return
        self._feed = message.feed
        self._started = True
        self._failed = False
        self._paused = False
        self._attached_to = message.feed.attached_to
        self._log("info", message.description)
        self._refresh_participants()
        self.collect_now()

    @on(CycleAwaited)
    def _on_cycle_awaited(self, message: CycleAwaited) -> None:
        self._collecting = False
        for event in message.health:
            self._log(event.level, event.text())
        self._schedule_next()

    @on(EngineFailed)
    def _on_engine_failed(self, message: EngineFailed) -> None:
        self._starting = False
        self._failed = True
        self._log("error", message.error)
        self.notify(f"{message.error}\nFix the setting, then press r to retry.",
                    title="Collection not started", severity="error", timeout=10)
        self._refresh_header()

    @on(SnapshotCollected)
    def _on_snapshot(self, message: SnapshotCollected) -> None:
        self._collecting = False
        self._failed = False
        views = message.views
        cycle = message.cycle
        if cycle is not None:
            if cycle.host and self._feed is not None and self._feed.attached_to:
                self._attached_to = cycle.host
            for event in cycle.health:
                self._log(event.level, event.text())
        self.show_snapshot(message.snapshot, views.get("chain_rows"), views.get("positions"))
        self._refresh_participants(cycle is None or cycle.participants_changed)
        self._schedule_next()

    @on(CollectionFailed)
    def _on_collection_failed(self, message: CollectionFailed) -> None:
        self._collecting = False
        self._failed = True
        self._log_event(source_down_event(message.error, self._data_clock.age_s(self._clock()),
                                          self._market_now()))
        self.notify(message.error, title="Collection failed", severity="error", timeout=8)
        self._refresh_header()
        self._schedule_next()

    @on(TokenExpired)
    def _on_token_expired(self, message: TokenExpired) -> None:
        self._collecting = False
        self._paused = True
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
        # The token is read when the source is built, so a fresh login needs a fresh feed.
        if self._owns_feed:
            old, self._feed = self._feed, None
            self._started = False
            if old is not None:
                self._run("close", old)
            self._start_feed()
        else:
            self._paused = False
            self.collect_now()

    @on(Worker.StateChanged)
    def _on_worker_state(self, event: Worker.StateChanged) -> None:
        # Workers catch their own errors; anything reaching here is a bug, reported not hidden.
        if event.state != WorkerState.ERROR:
            return
        group = event.worker.group
        if group == "collect":
            self._collecting = False
            self._schedule_next()
        elif group == "feed":
            self._starting = False
        report = getattr(self.app, "report_worker_state", None)
        if report is not None:  # worker state changes do not bubble: hand it to the app's reporter
            report(event)
        else:
            log.error("worker %s failed: %s", event.worker.description, event.worker.error)
            self.notify(f"{event.worker.description} failed: {event.worker.error}",
                        severity="error", timeout=8)

    # ---- flow ----------------------------------------------------------------------------

    def query_flow(self) -> None:
        """Re-query the store for the selected index and timeframe (in a thread worker)."""
        feed = self._feed
        if feed is None or not self._started:
            return
        if feed.store is None:
            self.show_flow(FlowSeries(self.index, self.timeframe, []))
            return
        # Stored flow bars carry the source's clock (the simulator's may be another day).
        anchor = self._snapshot.timestamp if self._snapshot else self._market_now()
        start, end = flow_window(anchor, self.timeframe, self.settings.flow.retention_days)
        self.flow_queries += 1
        self._run("flow", feed, self.index, self.timeframe, start, end)

    @on(FlowQueried)
    def _on_flow(self, message: FlowQueried) -> None:
        series = message.series
        if (series.index, series.timeframe) != (self.index, self.timeframe):
            return  # an answer for a selection the user already moved away from
        self.show_flow(series)

    @on(FlowQueryFailed)
    def _on_flow_failed(self, message: FlowQueryFailed) -> None:
        self._log("error", f"flow {message.index} {message.timeframe}: {message.error}")
        self.notify(f"Premium flow query failed: {message.error}", title="Store",
                    severity="error", timeout=8)

    # ---- rendering -----------------------------------------------------------------------

    def show_snapshot(
        self,
        snapshot: Snapshot,
        chain_rows: dict[tuple[str, str], Any] | None = None,
        positions: dict[str, list[LegRecord]] | None = None,
    ) -> None:
        """Take a snapshot as the current one and update every panel in one batch.

        `chain_rows` are the snapshot's chains already formatted (see all_chain_rows) and
        `positions` each index's legs ranked by `top_oi_changes`; without them each is computed
        when first shown.
        """
        now = self._clock()
        self._snapshot = snapshot
        self._want_iv_history(snapshot)
        self._chain_rows = dict(chain_rows or {})
        self._positions = dict(positions or {})
        self._data_clock.received(snapshot, now)
        buckets = buckets_of(snapshot, self.index)
        if buckets and self.bucket not in buckets:
            self.bucket = buckets[0]
        self._health(snapshot, now)
        self._render_all()
        self.query_flow()

    def show_flow(self, series: FlowSeries) -> None:
        self._series = series
        if self._relayout:
            return  # shown by the repaint that ends the relayout
        with self.app.batch_update():
            self.query_one(FlowPanel).show_series(series)

    def _render_all(self, tables: bool = True, flow: bool = True) -> None:
        """Repaint from state; a timeframe change skips the tables, an index change needs them."""
        if self._relayout:
            return  # the relayout repaints everything when it ends
        with self.app.batch_update():
            self._refresh_header()
            if flow:
                panel = self.query_one(FlowPanel)
                panel.show_selection(self.index, self.timeframe)
                series = self._series
                if series is not None and (series.index, series.timeframe) == (
                    self.index, self.timeframe
                ):
                    panel.show_series(series)
            snap = self._snapshot
            if snap is None or not tables:
                return
            self.query_one(OverviewTable).show_snapshot(
                snap, self.index, self._index_keys(), self.bucket
            )
            idx = snap.indices.get(self.index)
            legs = idx.legs if idx is not None else []
            selection = (self.index, self.bucket)
            rows = self._chain_rows.get(selection)
            if rows is None:
                lot = idx.lot_sizes.get(self.bucket, 0) if idx is not None else 0
                per = count_divisor(self.settings.ui.oi_unit, lot)
                rows = self._chain_rows[selection] = chain_rows(legs, *selection, per)
            stats = idx.overview.buckets.get(self.bucket) if idx is not None else None
            atm = stats.atm_strike if stats is not None else float("nan")
            shown, atm_key = self._chain_window(selection, rows, atm)
            self.query_one(ChainTable).show_rows(shown, *selection, atm_key=atm_key)
            top = self._positions.get(self.index)
            if top is None:
                top_n = self.settings.positions.top_n
                top = self._positions[self.index] = top_oi_changes(legs, top_n)
            self.query_one(PositionsTable).show_ranked(top)
            if self._wide:
                titles = {
                    "#overview": f"Indices · {self.bucket or '—'} (or the nearest expiry)",
                    "#chain": self._chain_title(idx, stats, len(shown)),
                    "#positions": f"Largest OI changes · {self.index}",
                }
                for selector, title in titles.items():
                    widget = self.query_one(selector)
                    if widget.border_title != title:
                        widget.border_title = title

    def _chain_window(
        self, selection: tuple[str, str], rows: dict[str, Any], atm: float
    ) -> tuple[dict[str, Any], str]:
        """The rows of the strike window around the ATM (with hysteresis), and the ATM's key."""
        if self._window is None:
            self._window = StrikeWindow(self.settings.ui.chain_strikes)
        keys = list(rows)
        strikes = [float(k) for k in keys]
        lo, hi = self._window.select(selection, strikes, atm)
        atm_key = f"{atm:g}" if atm == atm else ""
        return {k: rows[k] for k in keys[lo:hi]}, atm_key

    def _chain_title(self, idx: Any, stats: Any, strikes: int) -> str:
        expiry = fmt_expiry(stats.expiry) + f" {stats.expiry.year}" if stats is not None else "—"
        if self.settings.ui.oi_unit == "lots":
            lot = idx.lot_sizes.get(self.bucket, 0) if idx is not None else 0
            units = f"lots of {lot}" if lot else "lots (lot size unknown)"
        else:
            units = "lakh (1 L = 100,000 units)"
        return (f"Chain · {self.index} · {self.bucket or '—'} · expiry {expiry} · "
                f"{strikes} strikes (calls | strike | puts; OI, volume in {units})")

    def _refresh_header(self) -> None:
        if self._relayout:
            return
        dc = self._data_clock
        now = self._clock()
        market_now = self._market_now(now)
        holiday = self._is_holiday(market_now)
        if self._wide:
            selection = f"{self.index} · {self.bucket or '—'}{self._expiry_label()} · {self.timeframe}"
        else:  # 24 columns are left at 80: the expiry date says more than the bucket's name
            selection = f"{self.index}{self._expiry_label() or ' ' + (self.bucket or '—')} {self.timeframe}"
        if self._paused:
            selection = "PAUSED (r resumes) · " + selection
        if self._attached_to:
            selection = f"attached to {self._attached_to} · " + selection
        self.query_one(StatusHeader).show(
            dc.badge, dc.age_s(now), dc.is_stale(now, self.settings.source.interval_s),
            fmt_clock(market_now), session_state(market_now, holiday), selection,
            failed=self._failed,
        )

    def _expiry_label(self) -> str:
        """' 30 Dec' for the selected bucket's expiry, or '' before the first snapshot."""
        snap = self._snapshot
        idx = snap.indices.get(self.index) if snap is not None else None
        stats = idx.overview.buckets.get(self.bucket) if idx is not None else None
        return f" {fmt_expiry(stats.expiry)}" if stats is not None else ""

    def _is_holiday(self, at: datetime) -> bool:
        # Holidays are the source's knowledge (exchange calendar), never hard-coded here.
        return self._feed.is_holiday(at) if self._feed is not None else False

    def _health(self, snapshot: Snapshot, now: datetime) -> None:
        at = self._market_now(now)
        alerts = list(snapshot.alerts)  # raised by the core's alerts engine, which logs them
        if self._relayout:  # the panels are being replaced: keep the alerts for the new ones
            self._pending_alerts.extend(alerts)
            return
        health = self.query_one(HealthLog)
        # Alerts have their own panel: health shows the rest.
        for level, text in health.record_cycle(snapshot, at, self.settings.source.interval_s, []):
            getattr(log, level)(text)
        if alerts:
            self.show_alerts(alerts)

    def show_alerts(self, alerts: list[Any]) -> None:
        """Alerts the core raised: the alerts panel, a few toasts, the bell when enabled."""
        self.query_one(AlertsPanel).add_alerts(alerts)
        for message, title, severity in notifications(alerts):
            self.notify(message, title=title, severity=severity, timeout=8)  # type: ignore[arg-type]
        if self.settings.alerts.bell:
            self.app.bell()

    def _log_event(self, event: HealthEvent) -> None:
        log.log(logging.ERROR if event.severity is Severity.ERROR else logging.WARNING, "%s", event.line())
        self.query_one(HealthLog).add_event(event, self._market_now())

    def _log(self, level: str, text: str) -> None:
        getattr(log, "info" if level in ("info", "alert") else level)(text)
        at = self._market_now()
        if self._relayout:
            self._pending_health.append((at, level, text))
            return
        self.query_one(HealthLog).add(at, level, text)

    def _market_now(self, now: datetime | None = None) -> datetime:
        """The exchange's time, the one clock of the header and every health-log line: the newest
        snapshot's carried forward, else the source's clock, else the local clock."""
        now = now or self._clock()
        fallback = None
        if self._data_clock.snapshot_at is None and self._feed is not None:
            fallback = self._feed.exchange_now()
        return self._data_clock.market_now(now, fallback)

    # ---- actions -------------------------------------------------------------------------

    def action_cycle_index(self, step: int) -> None:
        self.index = cycle(self._index_keys(), self.index, step)
        buckets = buckets_of(self._snapshot, self.index)
        if buckets and self.bucket not in buckets:
            self.bucket = buckets[0]
        self._render_all()
        self.query_flow()

    def action_cycle_bucket(self, step: int) -> None:
        buckets = buckets_of(self._snapshot, self.index)
        if not buckets:
            return
        self.bucket = cycle(buckets, self.bucket, step)
        self._render_all(flow=False)
        if self._snapshot is not None:
            self._want_iv_history(self._snapshot)

    def action_cycle_timeframe(self, step: int) -> None:
        self.timeframe = cycle(TIMEFRAMES, self.timeframe, step)
        self._render_all(tables=False)
        self.query_flow()

    def action_collect_now(self) -> None:
        if not self._started and not self._collecting:
            self._failed = False
            self._start_feed()
            return
        self._paused = False
        self.collect_now()

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
        return True
