"""Premium-flow panel: buying vs selling bars, net ₹ crore, pressure, sentiment, net sparkline.

Numbers come from the store's one-minute flow bars rolled up to the chosen timeframe, so the
toggle (1m ... 1w) answers from history rather than from the last few quotes.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline, Static

from optui.analytics.premium_flow import FlowSeries
from optui.analytics.timeframes import TIMEFRAMES
from optui.timeutil import IST
from optui.widgets.format import fmt_crore, fmt_ratio

BAR_WIDTH = 24


def timeframe_strip(selected: str) -> Text:
    """'1m [5m] 15m ...' with the selected timeframe highlighted."""
    text = Text()
    for tf in TIMEFRAMES:
        if tf == selected:
            text.append(f"[{tf}]", style="bold reverse")
        else:
            text.append(f" {tf} ", style="dim")
    return text


def bar(value: float, scale: float, style: str, width: int = BAR_WIDTH) -> Text:
    """A horizontal bar of `value` against `scale` (the larger side), in block characters."""
    filled = 0 if scale <= 0 or not math.isfinite(value) else round(width * value / scale)
    filled = max(0, min(width, filled))
    return Text.assemble(("█" * filled, style), ("░" * (width - filled), "dim"))


def flow_lines(series: FlowSeries | None) -> Text:
    """The panel's text for the newest bar of a series (or why there is nothing to show)."""
    if series is None:
        return Text("waiting for the first flow query…", style="dim")
    if not series.bars:
        return Text(
            f"no premium flow stored yet for {series.index} at {series.timeframe}: "
            "bars appear after two collection cycles",
            style="dim",
        )
    last = series.bars[-1]
    scale = max(last.inflow_cr, last.outflow_cr)
    mood = last.sentiment
    mood_style = "green" if "buying" in mood else "red" if "selling" in mood else ""
    net_style = "green" if last.net_cr > 0 else "red" if last.net_cr < 0 else ""
    start = last.start.astimezone(IST)
    stamp = start.strftime("%d %b") if series.timeframe in ("1d", "1w") else start.strftime("%H:%M")
    return Text.assemble(
        (f"bar from {stamp} IST\n", "dim"),
        "Buy  ", bar(last.inflow_cr, scale, "green"), f" {fmt_crore(last.inflow_cr)}\n",
        "Sell ", bar(last.outflow_cr, scale, "red"), f" {fmt_crore(last.outflow_cr)}\n",
        "Net ", (fmt_crore(last.net_cr, signed=True), f"bold {net_style}"),
        f"   Buy/Sell {fmt_ratio(last.buy_sell_ratio)}   ", ("Sentiment ", ""), (mood, f"bold {mood_style}"),
        "\n",
        (f"{len(series.bars)} bar{'' if len(series.bars) == 1 else 's'} net "
         f"{fmt_crore(series.net_cr, signed=True)}", "dim"),
    )


class FlowPanel(Vertical):
    """Timeframe strip, bars and figures, and a sparkline of net flow per bar."""

    DEFAULT_CSS = """
    FlowPanel { height: auto; min-height: 8; padding: 0 1; }
    FlowPanel #flow-title { text-style: bold; width: 1fr; height: 1; }
    FlowPanel #flow-tf { height: 1; }
    FlowPanel #flow-body { height: 5; }
    FlowPanel Sparkline { height: 1; margin-top: 0; }
    """

    def __init__(self, timeframe: str = "5m", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.timeframe = timeframe
        self.index = ""
        self.series: FlowSeries | None = None
        self._titled = False

    def compose(self) -> ComposeResult:
        yield Label("Premium flow", id="flow-title")
        yield Static(timeframe_strip(self.timeframe), id="flow-tf")
        yield Static(flow_lines(None), id="flow-body")
        yield Sparkline([], id="flow-spark")

    def show_selection(self, index: str, timeframe: str) -> None:
        """Title and timeframe strip; the figures follow when the query answers."""
        if (index, timeframe) == (self.index, self.timeframe) and self._titled:
            return
        strip_changed = timeframe != self.timeframe or not self._titled
        self._titled = True
        self.index, self.timeframe = index, timeframe
        self.query_one("#flow-title", Label).update(
            f"Premium flow · {index} · {timeframe}", layout=False
        )
        if strip_changed:  # an index key leaves the strip as it is: no repaint
            self.query_one("#flow-tf", Static).update(timeframe_strip(timeframe), layout=False)

    def show_series(self, series: FlowSeries) -> None:
        """Show a query's bars; unchanged figures are not repainted (fixed height, no relayout)."""
        if series == self.series:
            return
        self.series = series
        self.query_one("#flow-body", Static).update(flow_lines(series), layout=False)
        # One bar is no trend: a lone value would fill the whole line as if it were a peak.
        nets = [b.net_cr for b in series.bars]
        self.query_one("#flow-spark", Sparkline).data = nets if len(nets) > 1 else []
