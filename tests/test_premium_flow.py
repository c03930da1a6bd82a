"""Premium flow: classification against the mid, tick rule, day resets, conservation, totals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.premium_flow import (
    BUYING,
    CRORE,
    NEUTRAL,
    NO_FLOW,
    SELLING,
    STRONG_BUYING,
    STRONG_SELLING,
    FlowTotals,
    flow_totals,
    leg_flow,
    sentiment,
)
from optui.models import FlowSummary


def one(prev_value, prev_volume, prev_mid, prev_last, value, volume, last):
    inflow, outflow = leg_flow(
        [prev_value], [prev_volume], [prev_mid], [prev_last], [value], [volume], [last]
    )
    return float(inflow[0]), float(outflow[0])


@pytest.mark.unit
def test_trade_above_mid_is_inflow() -> None:
    # 1,000 units at VWAP 100 then 1,500 at VWAP 101: 500 traded for 151,500 - 100,000 = 51,500,
    # i.e. at 103, above the previous mid of 101.
    assert one(100_000, 1_000, 101.0, 101.0, 151_500, 1_500, 103.0) == (51_500.0, 0.0)


@pytest.mark.unit
def test_trade_below_mid_is_outflow_even_on_an_uptick() -> None:
    # 500 units at 98 < mid 101: the seller crossed, whatever the last trade did.
    assert one(100_000, 1_000, 101.0, 90.0, 149_000, 1_500, 99.0) == (0.0, 49_000.0)


@pytest.mark.unit
def test_trade_at_mid_uses_tick_rule() -> None:
    # 500 units at exactly 100 == mid: last 99 < previous last 100 is a downtick -> outflow.
    assert one(100_000, 1_000, 100.0, 100.0, 150_000, 1_500, 99.0) == (0.0, 50_000.0)
    # Uptick -> inflow.
    assert one(100_000, 1_000, 100.0, 100.0, 150_000, 1_500, 100.5) == (50_000.0, 0.0)
    # Zero tick -> inflow.
    assert one(100_000, 1_000, 100.0, 100.0, 150_000, 1_500, 100.0) == (50_000.0, 0.0)


@pytest.mark.unit
def test_missing_mid_falls_back_to_tick_rule() -> None:
    for mid in (float("nan"), 0.0):
        assert one(100_000, 1_000, mid, 100.0, 149_000, 1_500, 98.0) == (0.0, 49_000.0)
        assert one(100_000, 1_000, mid, 100.0, 151_500, 1_500, 103.0) == (51_500.0, 0.0)


@pytest.mark.unit
def test_no_volume_change_or_day_reset_carries_no_flow() -> None:
    # Same volume: nothing traded even if the VWAP was revised.
    assert one(100_000, 1_000, 100.0, 100.0, 101_000, 1_000, 101.0) == (0.0, 0.0)
    # Volume fell: a new day's counters; the previous quote is yesterday's.
    assert one(5_000_000, 50_000, 100.0, 100.0, 20_000, 200, 100.0) == (0.0, 0.0)


@pytest.mark.unit
def test_negative_value_change_with_volume_is_clipped() -> None:
    assert one(100_000, 1_000, 100.0, 100.0, 99_000, 1_010, 100.0) == (0.0, 0.0)


@pytest.mark.unit
def test_nan_inputs_give_no_flow() -> None:
    assert one(np.nan, 1_000, 100.0, 100.0, 150_000, 1_500, 100.0) == (0.0, 0.0)
    assert one(100_000, np.nan, 100.0, 100.0, 150_000, 1_500, 100.0) == (0.0, 0.0)


@pytest.mark.unit
def test_leg_flow_is_vectorised() -> None:
    inflow, outflow = leg_flow(
        [100_000, 100_000], [1_000, 1_000], [101, 101], [101, 101],
        [151_500, 149_000], [1_500, 1_500], [103, 99],
    )
    np.testing.assert_array_equal(inflow, [51_500.0, 0.0])
    np.testing.assert_array_equal(outflow, [0.0, 49_000.0])


# Late in the day: 5,000,000 units traded at a reported VWAP of 100.00 (true 99.9951); then 6,500
# units trade at 110.5, above a mid of 110, and Kite reports VWAP 100.01 (true 100.0087).
# Rounding makes the interval price (value change / volume change) 107.70: below the mid.
LATE = {"prev_value": 100.00 * 5_000_000, "prev_volume": 5_000_000, "prev_mid": 110.0,
        "value": 100.01 * 5_006_500, "volume": 5_006_500}


@pytest.mark.unit
def test_rounded_vwap_cannot_flip_a_buy_into_a_sell() -> None:
    traded = 100.01 * 5_006_500 - 100.00 * 5_000_000
    assert traded / 6_500 == pytest.approx(107.70, abs=0.01)
    inflow, outflow = leg_flow(**LATE, prev_last=110.2, last=110.5)
    assert (float(inflow), float(outflow)) == (pytest.approx(traded), 0.0)
    # Trusting the rounded interval price exactly would call it selling.
    inflow, outflow = leg_flow(**LATE, prev_last=110.2, last=110.5, average_price_step=0.0)
    assert (float(inflow), float(outflow)) == (0.0, pytest.approx(traded))


@pytest.mark.unit
def test_unclear_interval_price_uses_last_price_then_tick_rule() -> None:
    # Last trade below the mid: selling, though it is an uptick.
    inflow, outflow = leg_flow(**LATE, prev_last=109.0, last=109.5)
    assert float(inflow) == 0.0 and float(outflow) > 0
    # Last trade at the mid: the tick rule (downtick from 110.2) decides.
    inflow, outflow = leg_flow(**LATE, prev_last=110.2, last=110.0)
    assert float(inflow) == 0.0 and float(outflow) > 0


@pytest.mark.unit
def test_last_trade_is_judged_against_the_quote_it_traded_at() -> None:
    # One second: the quote moved from 99.95/100.05 to 101.00/101.10 and the sellers hit the new
    # bid at 101.00. Above the opening mid (100.00), below the closing one (101.05): selling.
    inflow, outflow = leg_flow(**LATE | {"prev_mid": 100.0}, prev_last=100.0, last=101.0,
                               mid=101.05)
    assert float(inflow) == 0.0 and float(outflow) > 0
    # Without the closing quote the opening mid decides (a buy, the old reading).
    inflow, outflow = leg_flow(**LATE | {"prev_mid": 100.0}, prev_last=100.0, last=101.0)
    assert float(inflow) > 0 and float(outflow) == 0.0
    # No closing mid (NaN or 0): the opening one.
    for missing in (float("nan"), 0.0):
        inflow, _ = leg_flow(**LATE | {"prev_mid": 100.0}, prev_last=100.0, last=101.0,
                             mid=missing)
        assert float(inflow) > 0


@pytest.mark.unit
def test_interval_price_is_judged_against_the_mid_across_the_interval() -> None:
    # 500 units at 100.5 while the mid moved from 100 to 101: at the interval's mid (100.5)
    # the last trade decides (101.2 above the closing mid 101: buying) ...
    assert leg_flow(100_000, 1_000, 100.0, 100.0, 150_250, 1_500, 101.2, 0.0, mid=101.0)[0] > 0
    # ... and at 100.4, below the interval's mid, the sellers crossed, though above the opening mid.
    inflow, outflow = leg_flow(100_000, 1_000, 100.0, 100.0, 150_200, 1_500, 101.2, 0.0, mid=101.0)
    assert float(inflow) == 0.0 and float(outflow) == pytest.approx(50_200.0)


finite = st.floats(-1e9, 1e9, allow_nan=False)
maybe = st.one_of(finite, st.just(float("nan")), st.just(0.0))


@pytest.mark.property
@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(st.tuples(finite, finite, maybe, maybe, finite, finite, maybe, maybe), min_size=1,
             max_size=30),
    st.sampled_from([0.0, 0.01, 0.05]),
)
def test_flow_is_conserved(rows, step) -> None:
    cols = [np.array(c) for c in zip(*rows, strict=True)]
    prev_value, prev_volume, _, _, value, volume, _, _ = cols
    inflow, outflow = leg_flow(*cols[:7], average_price_step=step, mid=cols[7])
    assert np.all(inflow >= 0) and np.all(outflow >= 0)
    assert np.all((inflow == 0) | (outflow == 0))  # each interval goes one way
    expected = np.where(volume > prev_volume, np.maximum(value - prev_value, 0.0), 0.0)
    np.testing.assert_array_equal(inflow + outflow, expected)


# --- totals ------------------------------------------------------------------------------------


@pytest.mark.unit
def test_flow_totals_in_crore_split_by_side() -> None:
    inflow = np.array([3e7, 1e7, 0.0, np.nan])
    outflow = np.array([1e7, 0.0, 4e7, 5e7])
    is_call = np.array([True, True, False, False])
    totals = flow_totals(inflow, outflow, is_call)
    assert isinstance(totals, FlowSummary) and FlowTotals is FlowSummary
    assert (totals.ce_inflow_cr, totals.ce_outflow_cr) == (4.0, 1.0)
    assert (totals.pe_inflow_cr, totals.pe_outflow_cr) == (0.0, 9.0)
    assert (totals.inflow_cr, totals.outflow_cr) == (4.0, 10.0)
    assert totals.net_cr == pytest.approx(-6.0)
    assert totals.buying_pressure == pytest.approx(4.0 / 14.0)
    assert totals.pressure_ratio == pytest.approx(0.4)
    assert totals.bullish_cr == pytest.approx((4.0 - 1.0) - (0.0 - 9.0))
    assert CRORE == 1e7


@pytest.mark.unit
def test_flow_totals_of_nothing() -> None:
    totals = flow_totals(np.array([]), np.array([]), np.array([], dtype=bool))
    assert totals.inflow_cr == 0.0
    assert math.isnan(totals.buying_pressure)
    assert sentiment(totals.buying_pressure) == NO_FLOW


@pytest.mark.unit
@pytest.mark.parametrize(
    ("pressure", "expected"),
    [
        (1.0, STRONG_BUYING),
        (0.65, STRONG_BUYING),
        (0.6499, BUYING),
        (0.55, BUYING),
        (0.5, NEUTRAL),
        (0.45, NEUTRAL),
        (0.4499, SELLING),
        (0.35, SELLING),
        (0.3499, STRONG_SELLING),
        (0.0, STRONG_SELLING),
        (float("nan"), NO_FLOW),
    ],
)
def test_sentiment_thresholds(pressure: float, expected: str) -> None:
    assert sentiment(pressure) == expected


def test_flow_bar_ratio_sentiment_and_series_net() -> None:
    from datetime import UTC, datetime

    from optui.analytics.premium_flow import FlowBar, FlowSeries, sentiment_of

    at = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    bought = FlowBar(at, inflow_cr=7.0, outflow_cr=3.0)
    assert bought.net_cr == 4.0 and bought.buy_sell_ratio == pytest.approx(7.0 / 3.0)
    assert bought.sentiment == sentiment(0.7) == STRONG_BUYING == sentiment_of(7.0, 3.0)
    nothing_sold = FlowBar(at, inflow_cr=2.0, outflow_cr=0.0)
    assert math.isnan(nothing_sold.buy_sell_ratio) and nothing_sold.sentiment == STRONG_BUYING
    assert FlowBar(at, 0.0, 0.0).sentiment == NO_FLOW
    assert FlowSeries("NIFTY", "5m", [bought, FlowBar(at, 1.0, 6.0)]).net_cr == -1.0
    assert FlowSeries("NIFTY", "5m").net_cr == 0


@pytest.mark.integration
def test_query_flow_series_sums_minute_bars_from_the_store(tmp_path) -> None:
    from datetime import datetime, timedelta

    from optui.analytics.premium_flow import flow_window
    from optui.storage.base import open_store
    from optui.storage.flow_queries import query_flow_series
    from optui.storage.points import Point
    from optui.storage.records import FLOW
    from optui.timeutil import IST

    t0 = datetime(2026, 11, 26, 11, 30, tzinfo=IST)  # a 5-minute bucket start on the IST clock
    bars = [Point(FLOW, {"index": idx}, {"inflow_cr": 1.0 + m, "outflow_cr": 0.5,
                                         "ce_inflow_cr": 1.0, "ce_outflow_cr": 0.25,
                                         "pe_inflow_cr": float(m), "pe_outflow_cr": 0.25},
                  t0 + timedelta(minutes=m))
            for m in range(7) for idx in ("NIFTY", "BANKNIFTY")]
    with open_store(f"sqlite:///{tmp_path / 'flow.db'}") as store:
        store.write(bars)
        start, end = flow_window(t0 + timedelta(minutes=6), "5m", 90)
        series = query_flow_series(store, "NIFTY", "5m", start, end)
    assert (series.index, series.timeframe) == ("NIFTY", "5m")
    assert [b.start for b in series.bars] == [t0, t0 + timedelta(minutes=5)]
    first, second = series.bars
    assert first.inflow_cr == pytest.approx(1 + 2 + 3 + 4 + 5) and first.outflow_cr == 2.5
    assert first.ce_net_cr == pytest.approx(5 * 0.75) and first.pe_net_cr == pytest.approx(10 - 1.25)
    assert second.inflow_cr == pytest.approx(6 + 7) and series.net_cr == pytest.approx(28 - 3.5)


@pytest.mark.unit
def test_flow_panel_counts_its_bars_in_words() -> None:
    """"1 bar net", "2 bars net": the panel's series line under the newest bar."""
    from datetime import UTC, datetime

    from optui.analytics.premium_flow import FlowBar, FlowSeries
    from optui.widgets.flow_panel import flow_lines

    at = datetime(2026, 11, 27, 5, 30, tzinfo=UTC)
    one = FlowSeries("NIFTY", "5m", [FlowBar(at, 16.66, 15.39)])
    assert flow_lines(one).plain.splitlines()[-1] == "1 bar net +₹1.27 cr"
    two = FlowSeries("NIFTY", "5m", [FlowBar(at, 16.66, 15.39), FlowBar(at, 2.0, 3.0)])
    assert flow_lines(two).plain.splitlines()[-1] == "2 bars net +₹0.27 cr"
