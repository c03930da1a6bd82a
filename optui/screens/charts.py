"""Charts of the selected index and expiry: OI by strike, IV smile vs the previous close, ATM IV
and straddle through the day, straddle vs its VWAP, premium flow bars, premium flow by strike
and time (heatmap) and gamma exposure.

The store is read in a thread worker (optui.widgets.charts.data); the snapshot is the
dashboard's latest. Below 120x36 the screen shows one chart at a time in its compact form
(`v` steps through them). Keys: i index, b expiry, v next chart, r reload, escape back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.events import Resize
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static

from optui.heap import run_once
from optui.models import Snapshot
from optui.timeutil import IST
from optui.widgets.charts.data import ChartData, load_chart_data
from optui.widgets.charts.plots import (
    ChartPlot,
    DayChart,
    FlowChart,
    FlowHeatmap,
    GexChart,
    OiChart,
    SmileChart,
    StraddleVwapChart,
)
from optui.widgets.dashboard_model import buckets_of, cycle

CHARTS: tuple[tuple[str, type[ChartPlot]], ...] = (
    ("chart-oi", OiChart), ("chart-smile", SmileChart), ("chart-day", DayChart),
    ("chart-vwap", StraddleVwapChart), ("chart-flow", FlowChart), ("chart-heat", FlowHeatmap),
    ("chart-gex", GexChart),
)
COMPACT_BELOW = (120, 36)
"""Terminal columns and rows below which one compact chart is shown at a time."""


class ChartsLoaded(Message):
    """ChartData for the selection, read in a worker."""

    def __init__(self, data: ChartData) -> None:
        super().__init__()
        self.data = data


class ChartsScreen(Screen):
    """Seven charts of one index and expiry bucket from the latest snapshot and the store."""

    BINDINGS = [
        Binding("i", "cycle_index", "Index", id="charts.index"),
        Binding("b", "cycle_bucket", "Expiry", id="charts.bucket"),
        Binding("v", "next_chart", "Next chart", id="charts.next"),
        Binding("r", "reload", "Reload", id="charts.reload"),
        Binding("escape", "app.pop_screen", "Back", id="charts.back"),
    ]

    DEFAULT_CSS = """
    ChartsScreen #charts-grid { grid-size: 4 2; grid-gutter: 0 1; height: 1fr; }
    ChartsScreen #cell-chart-heat { column-span: 2; }
    ChartsScreen.compact #charts-grid { grid-size: 1 1; }
    ChartsScreen.compact #cell-chart-heat { column-span: 1; }
    ChartsScreen.compact .cell { display: none; }
    ChartsScreen.compact .cell.current { display: block; }
    ChartsScreen .caption { height: auto; max-height: 8; text-style: bold; }
    ChartsScreen ChartPlot { height: 1fr; min-height: 6; }
    ChartsScreen #charts-status { height: 1; color: $text-muted; }
    """

    def __init__(self, store: Any, snapshot: Snapshot | None | Callable[[], Snapshot | None],
                 index: str, bucket: str, timeframe: str = "5m",
                 refresh_s: float = 5.0) -> None:
        """`snapshot`: the snapshot to draw, or a callable giving the newest one (the dashboard's,
        which keeps collecting underneath); a newer snapshot is drawn within `refresh_s`."""
        super().__init__()
        self.store = store
        self._snapshot_of = snapshot if callable(snapshot) else (lambda: snapshot)
        self.refresh_s = refresh_s
        self._drawn_at: Any = None
        self.index = index
        self.bucket = bucket
        self.timeframe = timeframe
        self.current = 0
        self.data: ChartData | None = None
        self.loads = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="charts-status")
        with Grid(id="charts-grid"):
            for chart_id, kind in CHARTS:
                with Vertical(classes="cell", id=f"cell-{chart_id}"):
                    yield Static("", classes="caption")
                    yield kind(id=chart_id)
        yield Footer()

    @property
    def snapshot(self) -> Snapshot | None:
        """The newest snapshot available to the screen."""
        return self._snapshot_of()

    def on_mount(self) -> None:
        self._layout(self.app.size.width, self.app.size.height)
        self.reload()
        self.set_interval(self.refresh_s, self._follow)

    def _follow(self) -> None:
        snap = self.snapshot
        if snap is not None and snap.timestamp != self._drawn_at:
            self.reload()

    def on_resize(self, event: Resize) -> None:
        self._layout(event.size.width, event.size.height)

    def _layout(self, width: int, height: int) -> None:
        compact = width < COMPACT_BELOW[0] or height < COMPACT_BELOW[1]
        self.set_class(compact, "compact")
        for n, cell in enumerate(self.query(".cell")):
            cell.set_class(n == self.current, "current")
            chart = cell.query_one(ChartPlot)
            if chart.compact != compact:
                chart.compact = compact
                if self.data is not None:
                    self._draw(chart, self.data)

    def _draw(self, chart: ChartPlot, data: ChartData) -> None:
        """Redraw one chart and its caption (titles live in the caption: it wraps, a plot's
        own title is dropped when wider than the plot)."""
        chart.show(data)
        parent = chart.parent
        if parent is not None:
            parent.query_one(".caption", Static).update(chart.title_text)

    def reload(self) -> None:
        """Read the store for the selection in a worker; the charts redraw when it answers."""
        self.query_one("#charts-status", Static).update(
            f"{self.index} {self.bucket} · loading …")
        snap = self.snapshot
        self._drawn_at = snap.timestamp if snap is not None else None
        self._load(snap, self.index, self.bucket)

    def _load(self, snapshot: Snapshot | None, index: str, bucket: str) -> None:
        """Read the chart data in a thread worker; run_once: a finished worker waits in a
        reference cycle for a full collection, the snapshot must not (optui.heap)."""
        store, timeframe = self.store, self.timeframe

        def load() -> None:
            self.post_message(ChartsLoaded(load_chart_data(store, snapshot, index, bucket,
                                                           timeframe)))

        self.run_worker(run_once(load), thread=True, exclusive=True, group="charts",
                        exit_on_error=False, description="read chart data")

    @on(ChartsLoaded)
    def _on_loaded(self, message: ChartsLoaded) -> None:
        data = message.data
        if (data.index, data.bucket) != (self.index, self.bucket):
            return
        self.data = data
        self.loads += 1
        for chart in self.query(ChartPlot):
            self._draw(chart, data)
        at = f"{data.at.astimezone(IST):%d %b %H:%M:%S} IST" if data.at else "no snapshot yet"
        problems = f" · {'; '.join(data.problems)}" if data.problems else ""
        spot = f"spot {data.spot:,.2f}" if data.spot == data.spot else "no quotes yet"
        self.query_one("#charts-status", Static).update(
            f"{data.index} {data.bucket} · {at} · {spot}{problems}")

    def action_cycle_index(self) -> None:
        keys = list(self.snapshot.indices) if self.snapshot else []
        if keys:
            self.index = cycle(keys, self.index, 1)
            buckets = buckets_of(self.snapshot, self.index)
            if buckets and self.bucket not in buckets:
                self.bucket = buckets[0]
            self.reload()

    def action_cycle_bucket(self) -> None:
        buckets = buckets_of(self.snapshot, self.index)
        if buckets:
            self.bucket = cycle(buckets, self.bucket, 1)
            self.reload()

    def action_next_chart(self) -> None:
        self.current = (self.current + 1) % len(CHARTS)
        self._layout(self.app.size.width, self.app.size.height)

    def action_reload(self) -> None:
        self.reload()
