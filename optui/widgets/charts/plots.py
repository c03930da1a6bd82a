"""The chart widgets: each draws one part of a `ChartData` with textual-plotext and keeps the
values it was given in `shown` (what the chart plots, for tests and the screen reader)."""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

from optui.analytics.exposure import SIGN_CONVENTION
from optui.widgets.charts.data import ChartData


def _finite(xs: list[Any], ys: list[float]) -> tuple[list[Any], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _hm(times: list[Any]) -> list[str]:
    """Times to the second: at the tick cadence a minute holds up to sixty points, which drawn
    at one x (to the minute) stood as a vertical bar, like a jump that did not happen."""
    return [f"{t:%H:%M:%S}" for t in times]


class ChartPlot(PlotextPlot):
    """A plot that redraws from ChartData; `compact` draws fewer series for small terminals.

    `title_text` is the chart's caption (the screen shows it above the plot, where it wraps)."""

    title_text = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: dict[str, Any] = {}
        self.compact = False

    def show(self, data: ChartData) -> None:
        """Redraw from `data`."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        self.shown = {}
        self.draw(plt, data)
        self.refresh()

    def draw(self, plt: Any, data: ChartData) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class OiChart(ChartPlot):
    """Call and put OI (lakh units) by strike around the money; OI change in the full form."""

    def draw(self, plt: Any, data: ChartData) -> None:
        self.title_text = f"{data.index} {data.bucket} OI by strike (lakh units), ATM {data.atm_strike:g}"
        lo, hi = _around(data.strikes, data.atm_strike, 10 if self.compact else 5)
        strikes = data.strikes[lo:hi]
        labels = [f"{k:g}" for k in strikes]
        ce = [v / 1e5 if math.isfinite(v) else 0.0 for v in data.ce_oi[lo:hi]]
        pe = [v / 1e5 if math.isfinite(v) else 0.0 for v in data.pe_oi[lo:hi]]
        self.shown = {"strikes": list(strikes), "ce_oi": data.ce_oi[lo:hi],
                      "pe_oi": data.pe_oi[lo:hi]}
        if not labels:
            return
        if self.compact:
            plt.multiple_bar(labels, [ce, pe], labels=["CE", "PE"], color=["red", "green"])
            return
        ce_chg = [v / 1e5 if math.isfinite(v) else 0.0 for v in data.ce_oi_change[lo:hi]]
        pe_chg = [v / 1e5 if math.isfinite(v) else 0.0 for v in data.pe_oi_change[lo:hi]]
        self.shown.update(ce_oi_change=data.ce_oi_change[lo:hi],
                          pe_oi_change=data.pe_oi_change[lo:hi])
        plt.multiple_bar(labels, [ce, pe, ce_chg, pe_chg],
                         labels=["CE OI", "PE OI", "CE chg", "PE chg"],
                         color=["red", "green", "orange", "cyan"])


class SmileChart(ChartPlot):
    """The selected expiry's IV smile (OTM legs) with the previous close's smile overlaid."""

    def draw(self, plt: Any, data: ChartData) -> None:
        prev = f" vs close {data.prev_smile_day:%d %b}" if data.prev_smile_day else " (no stored close)"
        self.title_text = f"IV smile % {data.index} {data.bucket}{prev}"
        self.shown = {"strikes": data.smile.strikes, "ivs": data.smile.ivs,
                      "prev_strikes": data.prev_smile.strikes, "prev_ivs": data.prev_smile.ivs}
        if data.smile.strikes:
            plt.plot(data.smile.strikes, data.smile.ivs, label="now", marker="braille")
        if data.prev_smile.strikes:
            plt.plot(data.prev_smile.strikes, data.prev_smile.ivs, label="prev close",
                     marker="braille", color="gray")
        if math.isfinite(data.spot):
            plt.vline(data.spot, "yellow")


class DayChart(ChartPlot):
    """ATM IV and ATM straddle through the day (store), IV rank/percentile and RV20 in the title."""

    def draw(self, plt: Any, data: ChartData) -> None:
        standing = data.standing.label() if data.standing else "IVR – IVP –"
        rv = f"RV20 {data.rv20:.1f}" if math.isfinite(data.rv20) else "RV20 –"
        iv = f"ATM IV {data.current_iv:.2f}" if math.isfinite(data.current_iv) else "ATM IV –"
        xs, ivs = _finite(_hm(data.times), data.atm_iv)
        xs2, tps = _finite(_hm(data.times), data.straddle)
        # Compact, the straddle is not drawn: its latest value is said instead of its axis.
        tp = ("" if not tps else f" · straddle ₹{tps[-1]:,.2f}" if self.compact
              else " · straddle (right)")
        self.title_text = f"{iv} · {standing} · {rv}{tp}"
        self.shown = {"times": xs, "atm_iv": ivs, "straddle": tps}
        plt.date_form("H:M:S")
        if ivs:
            plt.plot(xs, ivs, label="ATM IV %", marker="braille")
        if tps and not self.compact:
            plt.plot(xs2, tps, label="straddle ₹", marker="braille", yside="right", color="yellow")


class StraddleVwapChart(ChartPlot):
    """The ATM straddle's premium through the day against its own running VWAP."""

    def draw(self, plt: Any, data: ChartData) -> None:
        last = data.vwap_straddle[-1] if data.vwap_straddle else math.nan
        vwap = data.straddle_vwap[-1] if data.straddle_vwap else math.nan
        side = ("above" if last > vwap else "below") if math.isfinite(last + vwap) else "–"
        self.title_text = (f"ATM straddle ₹{last:.1f} vs VWAP ₹{vwap:.1f} ({side})"
                           if math.isfinite(last) else "ATM straddle vs VWAP: no data yet")
        xs, ps = _finite(_hm(data.vwap_times), data.vwap_straddle)
        xv, vs = _finite(_hm(data.vwap_times), data.straddle_vwap)
        self.shown = {"times": xs, "straddle": ps, "vwap": vs}
        plt.date_form("H:M:S")
        if ps:
            plt.plot(xs, ps, label="straddle", marker="braille")
        if vs:
            plt.plot(xv, vs, label="VWAP", marker="braille", color="yellow")


class FlowChart(ChartPlot):
    """Net premium flow (₹ crore) per timeframe bar; CE and PE net beside it in the full form."""

    def draw(self, plt: Any, data: ChartData) -> None:
        series = data.flow
        tf = series.timeframe if series else ""
        self.title_text = f"Premium flow net ₹ cr per {tf} bar"
        bars = series.bars if series else []
        # Day and week bars all start at 00:00 IST: they are told apart by their date.
        form = "%d %b" if tf.strip().lower() in ("1d", "1w") else "%H:%M"
        labels = [f"{b.start.astimezone(_ist()):{form}}" for b in bars]
        net = [b.net_cr for b in bars]
        self.shown = {"starts": [b.start for b in bars], "labels": labels, "net_cr": net}
        if not bars:
            return
        if self.compact:
            plt.bar(labels, net, color="cyan")
        else:
            plt.multiple_bar(labels, [net, [b.ce_net_cr for b in bars], [b.pe_net_cr for b in bars]],
                             labels=["net", "CE net", "PE net"], color=["cyan", "red", "green"])


class GexChart(ChartPlot):
    """Gamma exposure by strike (₹ crore per 1 % move), total and flip level in the title."""

    def draw(self, plt: Any, data: ChartData) -> None:
        gex = data.gex
        if gex is None or gex.strikes.size == 0:
            self.title_text = "GEX: no legs with gamma yet"
            return
        # The total is the quoted chain's (BucketStats.gex_cr), not only the legs drawn: those
        # are the strikes around the money, a part of the expiry's gamma (a monthly's far less
        # than half). The flip is re-priced from the legs drawn, so it names their range.
        window = f"{gex.strikes[0]:,.0f}-{gex.strikes[-1]:,.0f}"
        if math.isfinite(data.chain_gex_cr):
            total = data.chain_gex_cr
            cover = data.chain_oi_coverage
            scope = ("whole chain" if not math.isfinite(cover) or cover >= 0.995
                     else f"{cover:.0%} of its OI")
        else:
            total, scope = gex.total_cr, f"strikes {window}"
        flip = f"{gex.flip:,.0f}" if math.isfinite(gex.flip) else "none"
        self.title_text = (f"GEX {data.expiry} ₹ cr per 1% · total {total:+,.0f} ({scope}) · "
                           f"flip {flip} (in {window}) · {SIGN_CONVENTION}")
        lo, hi = _around(gex.strikes.tolist(), data.spot, 8 if self.compact else 15)
        ks = [f"{k:g}" for k in gex.strikes[lo:hi]]
        calls, puts = gex.call_cr[lo:hi].tolist(), gex.put_cr[lo:hi].tolist()
        self.shown = {"strikes": gex.strikes[lo:hi].tolist(), "call_cr": calls, "put_cr": puts,
                      "total_cr": total, "legs_total_cr": gex.total_cr, "flip": gex.flip}
        if self.compact:
            plt.bar(ks, gex.net_cr[lo:hi].tolist(), color="cyan")
        else:
            plt.multiple_bar(ks, [calls, puts], labels=["call +", "put −"], color=["red", "green"])


def _around(strikes: list[float], spot: float, each_side: int) -> tuple[int, int]:
    if not strikes or not math.isfinite(spot):
        return 0, len(strikes)
    centre = min(range(len(strikes)), key=lambda i: abs(strikes[i] - spot))
    return max(0, centre - each_side), centre + each_side + 1


def _ist() -> Any:
    from optui.timeutil import IST

    return IST


def flow_colour(value: float, scale: float) -> tuple[int, int, int]:
    """RGB for a net flow: green when bought, red when sold, brighter with size (0 = dark)."""
    if scale <= 0 or not math.isfinite(value):
        return (30, 30, 30)
    level = int(40 + 215 * min(abs(value) / scale, 1.0))
    return (0, level, 0) if value > 0 else (level, 0, 0) if value < 0 else (30, 30, 30)


class FlowHeatmap(ChartPlot):
    """Net premium flow (CE + PE, ₹ crore) by strike (rows, highest on top) and time bar
    (columns): green bought, red sold, brightness by size."""

    def draw(self, plt: Any, data: ChartData) -> None:
        self.title_text = f"Flow by strike × time, {data.expiry or '–'}: green bought, red sold"
        strikes, times, net = data.heat_strikes, data.heat_times, data.heat_net_cr
        if self.compact and strikes:
            lo, hi = _around(strikes, data.spot, 6)
            strikes, net = strikes[lo:hi], net[lo:hi]
            times, net = times[-20:], [row[-20:] for row in net]
        self.shown = {"strikes": list(strikes), "times": list(times), "net_cr": net}
        if not strikes or not times:
            return
        scale = max((abs(v) for row in net for v in row), default=0.0)
        matrix = [[flow_colour(v, scale) for v in row] for row in reversed(net)]
        plt.matrix_plot(matrix)
        plt.xlabel("")
        plt.ylabel("")
        step = max(1, len(times) // 6)
        plt.xticks(list(range(0, len(times), step)), [f"{t:%H:%M}" for t in times[::step]])
        # plotext draws the matrix's first row at the top but numbers the y axis from the
        # bottom (row i at y = n - 1 - i): with the highest strike first in the matrix, the
        # tick at y is strike y, lowest at the bottom.
        rstep = max(1, len(strikes) // 8)
        rows = list(range(len(strikes)))[::rstep]
        plt.yticks(rows, [f"{strikes[r]:g}" for r in rows])
