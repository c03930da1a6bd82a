"""Full participants view: the table, the FII/DII cash panel and a terminal chart of any
participant metric over past trading days (textual-plotext).

Store reads run in a thread worker; keys: n next participant, m next metric, d more or fewer
days, escape back.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual_plotext import PlotextPlot

from optui.analytics.participants import METRICS
from optui.analytics.trading_calendar import TradingCalendar
from optui.widgets.participants_format import DISPLAY_ORDER
from optui.widgets.participants_panel import ParticipantsLoaded, ParticipantsPanel, load_view

HISTORY_DAYS = (20, 60, 120, 250)
CHART_METRICS: tuple[str, ...] = (
    "index_futures_net", "options_bias", "index_calls_net", "index_puts_net",
    "index_futures_long_share", "stock_futures_net",
)


class HistoryChart(PlotextPlot):
    """One metric over trading days; missing days are left out of the line, not drawn as 0.

    `title_text` and `points` ((date, value) drawn) describe what is on screen.
    """

    title_text = ""
    points: list[tuple[date, float | int]] = []

    def show(self, participant: str, metric: str,
             history: list[tuple[date, float | int | None]]) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        points = [(d, v) for d, v in history if v is not None]
        unit = "% long" if metric.endswith("share") else "contracts"
        span = f"{history[0][0]:%d %b} – {history[-1][0]:%d %b %Y}" if history else ""
        self.title_text = f"{participant} {metric.replace('_', ' ')} ({unit}) · end of day · {span}"
        self.points = points
        plt.title(self.title_text)
        if points:
            plt.date_form("d/m/Y")
            plt.plot([f"{d:%d/%m/%Y}" for d, _ in points], [float(v) for _, v in points],
                     marker="braille")
        self.refresh()


class ParticipantsScreen(Screen):
    """Participants table, cash panel and a history chart, from the configured store."""

    BINDINGS = [
        Binding("n", "next_participant", "Participant", id="participants.next"),
        Binding("m", "next_metric", "Metric", id="participants.metric"),
        Binding("d", "next_days", "Days", id="participants.days"),
        Binding("escape", "app.pop_screen", "Back", id="participants.back"),
    ]

    DEFAULT_CSS = """
    ParticipantsScreen HistoryChart { height: 1fr; min-height: 10; }
    ParticipantsScreen #participants-error { color: $error; }
    """

    def __init__(self, store: Any, calendar: TradingCalendar | None = None,
                 days: int = HISTORY_DAYS[0], fallback_url: str | None = None) -> None:
        """`days`: the chart's first span in trading days (`participants.history_days`);
        `fallback_url`: the store read when `store` holds none (see load_view)."""
        super().__init__()
        self.store = store
        self.fallback_url = fallback_url
        self.calendar = calendar or TradingCalendar()
        self.participant = "FII"
        self.metric = CHART_METRICS[0]
        self.spans = tuple(sorted({days, *HISTORY_DAYS}))
        self.days = days
        self.loads = 0

    def compose(self) -> ComposeResult:
        with Vertical():
            yield ParticipantsPanel(id="participants-full")
            yield Static("", id="participants-error")
            yield HistoryChart(id="participants-chart")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def reload(self) -> None:
        """Read the newest stored day and the chart's history in a worker."""
        self._load(self.participant, self.metric, self.days)

    @work(thread=True, exclusive=True, group="participants", exit_on_error=False,
          description="read participant data")
    def _load(self, participant: str, metric: str, days: int) -> None:
        self.post_message(load_view(self.store, self.calendar, participant, metric, days,
                                    self.fallback_url))

    @on(ParticipantsLoaded)
    def _on_loaded(self, message: ParticipantsLoaded) -> None:
        self.loads += 1
        self.query_one("#participants-error", Static).update(message.error)
        self.query_one(ParticipantsPanel).show_day(message.day)
        self.query_one(HistoryChart).show(self.participant, self.metric, message.history)

    def action_next_participant(self) -> None:
        self.participant = DISPLAY_ORDER[(DISPLAY_ORDER.index(self.participant) + 1) % 4]
        self.reload()

    def action_next_metric(self) -> None:
        self.metric = CHART_METRICS[(CHART_METRICS.index(self.metric) + 1) % len(CHART_METRICS)]
        assert self.metric in METRICS
        self.reload()

    def action_next_days(self) -> None:
        self.days = self.spans[(self.spans.index(self.days) + 1) % len(self.spans)]
        self.reload()
