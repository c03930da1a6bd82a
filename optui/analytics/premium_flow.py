"""Premium flow: rupees traded between two quotes of each option, split into buying and selling.

Kite reports a day VWAP (`average_price`) and a day `volume`, so their product is the day's traded
value and its change between two quotes is what traded in between. As in the Lee-Ready rule, a
trade is compared with the mid of the quote in force when it traded: the interval's trade price
(change in value over change in volume) with the mid across the interval (the mean of the two
quotes' mids), the interval's last trade with the closing quote's mid; above the mid the buyer
crossed the spread (inflow), below it the seller did (outflow), and a tie goes to the tick rule.
Totals are in rupees crore, the unit Indian traders read flow in.

Also the history side: a `FlowSeries` of timeframe bars (what a store query answers, see
optui.storage.flow_queries) and the window of bars a view asks for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike

from optui.analytics.timeframes import timeframe_seconds
from optui.models import FlowSummary

CRORE = 1e7
"""Rupees in one crore."""

# Relative tolerance under which the interval's trade price counts as equal to the mid.
_MID_RTOL = 1e-9

AVERAGE_PRICE_STEP = 0.01
"""Kite reports average_price rounded to 0.01 rupee."""

FlowTotals = FlowSummary
"""Flow totals are `optui.models.FlowSummary` (crore fields, net, pressure and bullish flow)."""

STRONG_BUYING = "strong buying"
BUYING = "buying"
NEUTRAL = "neutral"
SELLING = "selling"
STRONG_SELLING = "strong selling"
NO_FLOW = "no flow"

# Lower bounds of buying pressure (inflow share) for each sentiment, strongest first. A 55/45
# split is already a clear tilt in index options, where both sides trade heavily all day;
# 65/35 or beyond is one-sided.
SENTIMENT_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (0.65, STRONG_BUYING),
    (0.55, BUYING),
    (0.45, NEUTRAL),
    (0.35, SELLING),
)


def _f(values: ArrayLike) -> np.ndarray:
    return np.asarray(values, dtype=float)


def prevailing_mid(bid: ArrayLike, ask: ArrayLike, last: ArrayLike) -> np.ndarray:
    """The mid a trade is judged against: (bid + ask) / 2 with both sides quoted, else the last price.

    Used by both the REST quote path and the ticker path, so the two classify flow alike.
    """
    b, a, lst = np.broadcast_arrays(_f(bid), _f(ask), _f(last))
    with np.errstate(invalid="ignore"):
        return np.where((b > 0) & (a > 0), (b + a) / 2.0, lst)


def leg_flow(
    prev_value: ArrayLike,
    prev_volume: ArrayLike,
    prev_mid: ArrayLike,
    prev_last: ArrayLike,
    value: ArrayLike,
    volume: ArrayLike,
    last: ArrayLike,
    average_price_step: float = AVERAGE_PRICE_STEP,
    mid: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rupees bought (inflow) and sold (outflow) per instrument between two quotes.

    `value` is average_price x volume. Only intervals where volume grew carry flow: a fall in
    volume means Kite reset its day counters, so the previous quote belongs to another trading
    day and differencing across it would invent a trade. A negative value change with positive
    volume (Kite revising its VWAP) is clipped to 0. So inflow + outflow == max(value change, 0)
    wherever volume grew, and both are 0 elsewhere.

    `mid` is the prevailing mid of the quote that ends the interval (the one `value`, `volume`
    and `last` come from). A trade is judged against the quote in force when it traded (Lee and
    Ready): the last trade of an interval is its latest, nearest the closing quote, and the
    interval's trades are spread over it, between the two quotes. Judged against the opening
    quote alone, a print at the new bid after the market moved several spreads up reads as a
    buy: at a one-second cadence the option's quote moves more than its half spread most
    seconds, and the flow would follow the second's price move, not who crossed the spread.

    The direction, in order:
    1. The interval's trade price (value change / volume change) above the interval's mid
       (the mean of the previous and the closing mid; the previous mid without `mid`) is
       inflow, below it outflow, when it is clear of that mid by more than its own uncertainty.
       Kite rounds average_price to `average_price_step`, so each value is uncertain by half a
       step times the day volume; over a small interval late in the day that can swamp the price
       (half a paisa on 5 million units is 25,000 rupees), and the sign would be noise.
    2. Otherwise (within that uncertainty, or within 1e-9 relative of the mid) the last trade
       price against the closing mid (the previous mid without one) decides the same way.
    3. At the mid, or with no mid at all (NaN or 0), the tick rule: the last trade price (the
       interval's price when there is none) against the previous last price; an uptick or zero
       tick is inflow, a downtick outflow; with no previous last price it counts as a zero tick.
    Pass average_price_step=0 to trust the interval's price exactly.
    """
    pv, pvol, pmid, plast, v, vol, lst, cmid = np.broadcast_arrays(
        _f(prev_value), _f(prev_volume), _f(prev_mid), _f(prev_last), _f(value), _f(volume),
        _f(last), _f(np.nan if mid is None else mid),
    )
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        dvol = vol - pvol
        traded = np.where(dvol > 0, np.maximum(v - pv, 0.0), 0.0)
        traded = np.where(np.isfinite(traded), traded, 0.0)
        price = (v - pv) / dvol
        has_prev = np.isfinite(pmid) & (pmid > 0)
        has_close = np.isfinite(cmid) & (cmid > 0)
        # The interval's mid, and the mid in force at its last trade.
        span = np.where(has_prev & has_close, 0.5 * (pmid + cmid), np.where(has_prev, pmid, cmid))
        at_last = np.where(has_close, cmid, pmid)
        has_mid = has_prev | has_close
        slack = np.maximum(
            0.5 * average_price_step * (np.abs(vol) + np.abs(pvol)) / dvol,
            _MID_RTOL * np.abs(span),
        )
        above = has_mid & (price > span + slack)
        below = has_mid & (price < span - slack)
        has_last = np.isfinite(lst) & (lst > 0)
        undecided = ~above & ~below
        above |= undecided & has_mid & has_last & (lst > at_last * (1 + _MID_RTOL))
        below |= undecided & has_mid & has_last & (lst < at_last * (1 - _MID_RTOL))
        tick_price = np.where(has_last, lst, price)
        downtick = np.isfinite(plast) & (plast > 0) & (tick_price < plast)
    buy = above | (~below & ~downtick)
    inflow = np.where(buy, traded, 0.0)
    outflow = traded - inflow
    return inflow, outflow


def flow_totals(inflow: ArrayLike, outflow: ArrayLike, is_call: ArrayLike) -> FlowSummary:
    """Sum per-instrument rupee flow into crore totals, split by calls and puts (NaN counts 0)."""
    i, o, c = np.broadcast_arrays(_f(inflow), _f(outflow), np.asarray(is_call, dtype=bool))
    i = np.where(np.isfinite(i), i, 0.0)
    o = np.where(np.isfinite(o), o, 0.0)
    ce_in = float(i[c].sum()) / CRORE
    ce_out = float(o[c].sum()) / CRORE
    pe_in = float(i[~c].sum()) / CRORE
    pe_out = float(o[~c].sum()) / CRORE
    return FlowSummary(
        inflow_cr=ce_in + pe_in,
        outflow_cr=ce_out + pe_out,
        ce_inflow_cr=ce_in,
        ce_outflow_cr=ce_out,
        pe_inflow_cr=pe_in,
        pe_outflow_cr=pe_out,
    )


def sentiment(buying_pressure: float) -> str:
    """Name the tilt of buying pressure (inflow share, 0..1) using SENTIMENT_THRESHOLDS.

    'strong buying' >= 0.65 > 'buying' >= 0.55 > 'neutral' >= 0.45 > 'selling' >= 0.35 >
    'strong selling'; 'no flow' when nothing traded (NaN).
    """
    if not np.isfinite(buying_pressure):
        return NO_FLOW
    for bound, name in SENTIMENT_THRESHOLDS:
        if buying_pressure >= bound:
            return name
    return STRONG_SELLING


def sentiment_of(inflow_cr: float, outflow_cr: float) -> str:
    """`sentiment` of the buying pressure inflow / (inflow + outflow); 'no flow' when both are 0."""
    total = inflow_cr + outflow_cr
    return sentiment(inflow_cr / total if total > 0 else math.nan)


@dataclass(frozen=True, slots=True)
class FlowBar:
    """One timeframe bucket of premium flow for one index, rupees crore; `start` is aware (UTC)."""

    start: datetime
    inflow_cr: float
    outflow_cr: float
    ce_net_cr: float = 0.0
    pe_net_cr: float = 0.0

    @property
    def net_cr(self) -> float:
        return self.inflow_cr - self.outflow_cr

    @property
    def buy_sell_ratio(self) -> float:
        """Inflow over outflow (1.0 is balanced); NaN when nothing was sold."""
        return self.inflow_cr / self.outflow_cr if self.outflow_cr > 0 else math.nan

    @property
    def sentiment(self) -> str:
        """The bar's tilt, named by `sentiment_of`."""
        return sentiment_of(self.inflow_cr, self.outflow_cr)


@dataclass(frozen=True, slots=True)
class FlowSeries:
    """The answer to one flow query: one index's bars at one timeframe, oldest first."""

    index: str
    timeframe: str
    bars: list[FlowBar] = field(default_factory=list)

    @property
    def net_cr(self) -> float:
        """Net flow over every bar of the series, rupees crore."""
        return sum(b.net_cr for b in self.bars)


FLOW_BARS = 40
"""How many timeframe bars a flow query asks for (the dashboard sparkline's length)."""


def flow_window(anchor: datetime, timeframe: str, retention_days: int) -> tuple[datetime, datetime]:
    """[start, end) covering the last FLOW_BARS buckets up to `anchor`, the market moment shown.

    Ends just after `anchor`: bars stored past it (another run's later minutes) are not "now".
    Never reaches further back than the retention, where there is nothing left to read. Raises
    ValueError for an unknown timeframe.
    """
    tf_s = timeframe_seconds(timeframe)
    end = anchor + timedelta(microseconds=1)
    span = min(FLOW_BARS * tf_s, retention_days * 86400)
    return end - timedelta(seconds=span), end
