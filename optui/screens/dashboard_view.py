"""The dashboard's panels drawn from its state: snapshot, flow, header, titles and the health log.

`DashboardView` holds what the screen shows (the current snapshot and its formatted rows, the
flow series, the selection) and repaints widgets by key inside one `batch_update`. It calls no
feed and runs no worker: the screen (optui.screens.dashboard) feeds it from messages.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import TabbedContent

from optui.analytics.premium_flow import FlowSeries
from optui.collectors.health import HealthEvent, Severity
from optui.config import Settings
from optui.feed.model import Feed
from optui.indices import INDEX_KEYS
from optui.leg_rows import leg_values, legs_where
from optui.models import LegRecord, Snapshot
from optui.timeutil import cached_label, now_utc
from optui.widgets.alerts_panel import AlertsPanel
from optui.widgets.chain_table import ChainTable, chain_rows, count_divisor
from optui.widgets.dashboard_model import DataClock, StrikeWindow, buckets_of, notifications
from optui.widgets.flow_panel import FlowPanel
from optui.widgets.format import fmt_clock, fmt_expiry, session_state
from optui.widgets.health_log import HealthLog
from optui.widgets.overview_table import OverviewTable
from optui.widgets.positions_table import PositionsTable, top_oi_changes
from optui.widgets.span_compositor import SpanCompositor
from optui.widgets.status_header import StatusHeader

log = logging.getLogger("optui.screens.dashboard")

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

PANEL_TITLES: dict[str, str] = {
    "#overview": "Indices",
    "#flow": "",
    "#chain": "",
    "#positions": "Largest OI changes",
    "#health": "Health",
    "#alerts": "Alerts",
    "#participants": "Participants",
}
"""Each panel's title before the first snapshot (the flow panel draws its own title line)."""


class DashboardView(Screen):
    """State and rendering of the live dashboard (see the module docstring)."""

    def __init__(self, settings: Settings | None = None, *,
                 clock: Any = None, name: str | None = None, id: str | None = None) -> None:  # noqa: A002
        super().__init__(name=name, id=id)
        # A cycle changes lines all over the screen: repaint those lines, not every widget.
        self._compositor = SpanCompositor()
        self._settings = settings
        self._clock = clock or now_utc
        self._wide = True
        self._relayout = False
        """The panels are being replaced (wide <-> tabs): widgets are not to be touched."""
        self._pending_health: list[tuple[datetime, str, str]] = []
        self._pending_alerts: list[Any] = []
        self._paused = False
        self._failed = False
        self._cached = False
        """The source failed: the panels show the last good snapshot (the cached tier)."""
        self._attached_to = ""
        self._collector_interval_s = 0.0  # an attached collector's interval, from its cycles
        self._snapshot: Snapshot | None = None
        self._retired: tuple[Any, ...] = ()
        """What the last new snapshot replaced, freed once its frame is out (_after_frame)."""
        self._chain_rows: dict[tuple[str, str], Any] = {}
        self._positions: dict[str, list[LegRecord]] = {}
        self._series: FlowSeries | None = None
        self._data_clock = DataClock()
        self._window: StrikeWindow | None = None
        self._titles_base: dict[str, str] = dict(PANEL_TITLES)
        self.index = ""
        self.bucket = ""
        self.timeframe = "5m"

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            found = getattr(self.app, "settings", None)
            self._settings = found if isinstance(found, Settings) else Settings()
        return self._settings

    @property
    def feed(self) -> Feed | None:  # the screen's feed loop holds it
        return None

    def query_flow(self) -> None:
        """Ask for the selected premium flow (the screen's feed loop answers)."""

    def _want_iv_history(self, snapshot: Snapshot) -> None:
        """Ask for the stored daily IV closes of the shown buckets (the screen's loop answers)."""

    def _prefetch_views(self) -> None:
        """Ask for the chains one key away from the shown one (the screen's loop formats them)."""

    def _index_keys(self) -> list[str]:
        configured = [k for k in self.settings.source.indices if k in INDEX_KEYS]
        return configured or list(INDEX_KEYS)

    # ---- the snapshot and the flow -------------------------------------------------------

    def show_snapshot(
        self,
        snapshot: Snapshot,
        chain_rows: dict[tuple[str, str], Any] | None = None,
        positions: dict[str, list[LegRecord]] | None = None,
    ) -> None:
        """Take a snapshot as the current one and update every panel in one batch.

        `chain_rows` are chains of the snapshot already formatted, keyed by (index, bucket) (the
        feed loop formats the shown one: dashboard_reads.cycle_views) and `positions` indices'
        legs ranked by `top_oi_changes`; a chain or index not given is formatted from the kept
        snapshot when shown (only its strike window, for a chain).
        """
        now = self._clock()
        # The previous snapshot and its formatted rows (tens of thousands of objects) are freed
        # once the frame is out, not between the cycle's arrival and its frame.
        self._retired = (self._snapshot, self._chain_rows, self._positions)
        self._snapshot = snapshot
        self._cached = False
        self._chain_rows = dict(chain_rows or {})
        self._positions = dict(positions or {})
        self._data_clock.received(snapshot, now)
        buckets = buckets_of(snapshot, self.index)
        if buckets and self.bucket not in buckets:
            self.bucket = buckets[0]
        self._health(snapshot, now)
        self._render_all()
        self.call_after_refresh(self._after_frame, flow=True, iv_history=True)

    def _after_frame(self, flow: bool = False, iv_history: bool = False) -> None:
        """Once the frame of a cycle or a key is out: free what a new snapshot replaced, ask for
        the premium flow (`flow`) and the IV history (`iv_history`) of the selection, and format
        the chains a key away. A read asked for wakes the feed loop's worker (a cycle's storing
        goes ahead then too): never while the frame is being drawn, nor the GIL contested."""
        self._retired = ()
        if iv_history and self._snapshot is not None:
            self._want_iv_history(self._snapshot)
        if flow:
            self.query_flow()
        self._prefetch_views()

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
            stats = idx.overview.buckets.get(self.bucket) if idx is not None else None
            atm = stats.atm_strike if stats is not None else float("nan")
            if rows is None:  # a switch: format just the shown strikes of the kept snapshot
                shown, atm_key = self._format_window(selection, legs, atm)
            else:
                shown, atm_key = self._chain_window(selection, rows, atm)
            self.query_one(ChainTable).show_rows(shown, *selection, atm_key=atm_key)
            top = self._positions.get(self.index)
            if top is None:
                top_n = self.settings.positions.top_n
                top = self._positions[self.index] = top_oi_changes(legs, top_n)
            self.query_one(PositionsTable).show_ranked(top)
            self._titles_base.update({
                "#overview": f"Indices · {self.bucket or '—'} (or the nearest expiry)",
                "#chain": self._chain_title(idx, stats, len(shown)),
                "#positions": f"Largest OI changes · {self.index}",
            })
            self._show_titles()

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

    def _format_window(
        self, selection: tuple[str, str], legs: Sequence[LegRecord], atm: float
    ) -> tuple[dict[str, Any], str]:
        """The strike window of `selection` formatted from its legs (only the rows shown), and
        the ATM's key: the same rows as `_chain_window` over the whole chain's rows."""
        index, bucket = selection
        mine = legs_where(legs, index=index, bucket=bucket)
        mine_strikes = leg_values(mine, "strike")
        strikes = sorted(set(mine_strikes))
        if self._window is None:
            self._window = StrikeWindow(self.settings.ui.chain_strikes)
        lo, hi = self._window.select(selection, strikes, atm)
        keep = set(strikes[lo:hi])
        snap = self._snapshot
        idx = snap.indices.get(index) if snap is not None else None
        lot = idx.lot_sizes.get(bucket, 0) if idx is not None else 0
        per = count_divisor(self.settings.ui.oi_unit, lot)
        rows = chain_rows([mine[i] for i, k in enumerate(mine_strikes) if k in keep], index, bucket,
                          per)
        atm_key = f"{atm:g}" if atm == atm else ""
        return rows, atm_key

    def _chain_title(self, idx: Any, stats: Any, strikes: int) -> str:
        expiry = fmt_expiry(stats.expiry) + f" {stats.expiry.year}" if stats is not None else "—"
        if self.settings.ui.oi_unit == "lots":
            lot = idx.lot_sizes.get(self.bucket, 0) if idx is not None else 0
            units = f"lots of {lot}" if lot else "lots (lot size unknown)"
        else:
            units = "lakh (1 L = 100,000 units)"
        return (f"Chain · {self.index} · {self.bucket or '—'} · expiry {expiry} · "
                f"{strikes} strikes (calls | strike | puts; OI, volume in {units})")

    # ---- titles and the header -----------------------------------------------------------

    def cached_age_s(self) -> float | None:
        """While the cached tier is shown: exchange seconds since the last good snapshot's market
        moment; None while the data is live."""
        snap = self._snapshot
        if not self._cached or snap is None:
            return None
        return max(0.0, (self._market_now() - snap.timestamp).total_seconds())

    def _cached_suffix(self) -> str:
        age = self.cached_age_s()
        return f" · {cached_label(age)}" if age is not None else ""

    def _show_titles(self) -> None:
        """Every panel's title (tab label when narrow), with the cached tier's age while it is
        shown."""
        if self._relayout:
            return
        suffix = self._cached_suffix()
        if self._wide:
            # query_one by id is answered from a cache; a DOM query (self.query) walks the DOM
            # and matches CSS on each call: ~2 ms a panel, paid on every cycle and key press.
            for selector, base in self._titles_base.items():
                title = (base + suffix) if base else suffix[3:]
                try:
                    widget = self.query_one(selector)
                except NoMatches:
                    continue
                if widget.border_title != title:
                    widget.border_title = title
            return
        try:
            tabs = self.query_one(TabbedContent)
        except NoMatches:
            return
        for tab_id, label in TABS:
            tab = tabs.get_tab(tab_id)
            text = label[2:] + (f" ({suffix[3:]})" if suffix else "")
            if str(tab.label) != text:
                tab.label = text  # type: ignore[assignment]

    def _header_flags(self) -> list[tuple[str, str]]:
        """Words the header puts before the selection (paused, attached, cached ...), each in
        full and short wording (the short one when the header is narrow)."""
        flags = []
        age = self.cached_age_s()
        if age is not None:
            flags.append((cached_label(age), "CACHED"))
        if self._paused:
            flags.append(("PAUSED (r resumes)", "PAUSED"))
        if self._attached_to:
            flags.append((f"attached to {self._attached_to}", "ATTACHED"))
        return flags

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
        self.query_one(StatusHeader).show(
            dc.badge, self._age_s(now), self._is_stale(now),
            fmt_clock(market_now), session_state(market_now, holiday), selection,
            failed=self._failed, flags=self._header_flags(),
        )
        if self._cached:
            self._show_titles()

    def _age_s(self, now: datetime) -> float | None:
        return self._data_clock.age_s(now)

    def _is_stale(self, now: datetime) -> bool:
        return self._data_clock.is_stale(now, self._interval_s())

    def _interval_s(self) -> float:
        """The interval of the collector the data comes from (an attached one's own), else ours."""
        return self._collector_interval_s or self.settings.source.interval_s

    def _expiry_label(self) -> str:
        """' 30 Dec' for the selected bucket's expiry, or '' before the first snapshot."""
        snap = self._snapshot
        idx = snap.indices.get(self.index) if snap is not None else None
        stats = idx.overview.buckets.get(self.bucket) if idx is not None else None
        return f" {fmt_expiry(stats.expiry)}" if stats is not None else ""

    def _is_holiday(self, at: datetime) -> bool:
        # Holidays are the source's knowledge (exchange calendar), never hard-coded here.
        feed = self.feed
        return feed.is_holiday(at) if feed is not None else False

    def _market_now(self, now: datetime | None = None) -> datetime:
        """The exchange's time, the one clock of the header and every health-log line: a
        replay's replayed clock; else the newest snapshot's carried forward, else the source's
        clock, else the local clock."""
        now = now or self._clock()
        feed = self.feed
        if feed is not None and feed.replay:
            replayed = feed.exchange_now()
            if replayed is not None:
                return replayed
        fallback = None
        if self._data_clock.snapshot_at is None and feed is not None:
            fallback = feed.exchange_now()
        return self._data_clock.market_now(now, fallback)

    def _market_clock_is_local(self) -> bool:
        """True when `_market_now()` can only read this machine's clock: no snapshot yet, and
        the feed has no exchange clock (or its source has not answered yet)."""
        feed = self.feed
        if self._data_clock.snapshot_at is not None or (feed is not None and feed.replay):
            return False
        return feed is None or feed.exchange_now() is None or feed.clock_is_local()

    # ---- health and alerts ---------------------------------------------------------------

    def _health(self, snapshot: Snapshot, now: datetime) -> None:
        at = self._market_now(now)
        alerts = list(snapshot.alerts)  # raised by the core's alerts engine, which logs them
        if self._relayout:  # the panels are being replaced: keep the alerts for the new ones
            self._pending_alerts.extend(alerts)
            return
        health = self.query_one(HealthLog)
        # Alerts have their own panel: health shows the rest.
        for level, text in health.record_cycle(snapshot, at, self._interval_s(), []):
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
        """Show an event the screen raised, stamped on its market clock ("(local clock)" when
        that is only the machine's)."""
        log.log(logging.ERROR if event.severity is Severity.ERROR else logging.WARNING, "%s", event.line())
        if self._market_clock_is_local():
            event = replace(event, local_clock=True)
        self.query_one(HealthLog).add_event(event, self._market_now())

    def _log_cycle_event(self, event: HealthEvent) -> None:
        """Show an event a feed cycle carried (the collector's), at the time the collector
        stamped it ("(local clock)" when that was only its machine's clock)."""
        if event.at is None:
            self._log(event.level, event.text())
            return
        getattr(log, "info" if event.level == "info" else event.level)(event.log_text())
        if self._relayout:
            text = ("(local clock) " if event.local_clock else "") + event.text()
            self._pending_health.append((event.at, event.level, text))
            return
        self.query_one(HealthLog).add_event(event, event.at)

    def _log(self, level: str, text: str) -> None:
        getattr(log, "info" if level in ("info", "alert") else level)(text)
        at = self._market_now()
        if self._market_clock_is_local():
            text = f"(local clock) {text}"
        if self._relayout:
            self._pending_health.append((at, level, text))
            return
        self.query_one(HealthLog).add(at, level, text)
