"""Premium flow: rupees traded between two quotes of each option, split into buying and selling.

Kite reports a day VWAP (`average_price`) and a day `volume`, so their product is the day's traded
value and its change between two quotes is what traded in between. That interval's trade price
(change in value over change in volume) is compared with the previous quote's mid, as in the
Lee-Ready rule: at or above the mid the buyer crossed the spread (inflow), below it the seller did
(outflow). Totals are in rupees crore, the unit Indian traders read flow in.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from optui.models import FlowSummary

CRORE = 1e7
"""Rupees in one crore."""

# Relative tolerance under which the interval's trade price counts as equal to the mid.
_MID_RTOL = 1e-9

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


def leg_flow(
    prev_value: ArrayLike,
    prev_volume: ArrayLike,
    prev_mid: ArrayLike,
    prev_last: ArrayLike,
    value: ArrayLike,
    volume: ArrayLike,
    last: ArrayLike,
) -> tuple[np.ndarray, np.ndarray]:
    """Rupees bought (inflow) and sold (outflow) per instrument between two quotes.

    `value` is average_price x volume. Only intervals where volume grew carry flow: a fall in
    volume means Kite reset its day counters, so the previous quote belongs to another trading
    day and differencing across it would invent a trade. A negative value change with positive
    volume (Kite revising its VWAP) is clipped to 0. The interval's trade price is
    value change / volume change: above the previous mid is inflow, below is outflow. At the mid,
    or when the previous mid is unknown (NaN or 0), the tick rule decides from the last trade
    price against the previous one: an uptick or zero tick is inflow, a downtick outflow (with no
    previous trade price it counts as a zero tick). So inflow + outflow == max(value change, 0)
    wherever volume grew, and both are 0 elsewhere.
    """
    pv, pvol, pmid, plast, v, vol, lst = np.broadcast_arrays(
        _f(prev_value), _f(prev_volume), _f(prev_mid), _f(prev_last), _f(value), _f(volume),
        _f(last),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        dvol = vol - pvol
        traded = np.where(dvol > 0, np.maximum(v - pv, 0.0), 0.0)
        traded = np.where(np.isfinite(traded), traded, 0.0)
        price = (v - pv) / dvol
        has_mid = np.isfinite(pmid) & (pmid > 0)
        above = has_mid & (price > pmid * (1 + _MID_RTOL))
        below = has_mid & (price < pmid * (1 - _MID_RTOL))
        tick_price = np.where(np.isfinite(lst) & (lst > 0), lst, price)
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
