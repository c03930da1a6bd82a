"""Premium flow reads who crossed the spread, not which way the index moved: the simulated
exchange knows each trade's aggressor, so the flow measured from its quotes (the REST path's
definition) is checked against it at the tick cadence's one second."""

from __future__ import annotations

from datetime import datetime

import pytest

from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.collectors.source import quote_from_kite
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.market import session_point
from optui.timeutil import IST

RISING = datetime(2026, 11, 25, 13, 20, tzinfo=IST)  # NIFTY up 9.35 points in the next 17 s


def _bar(seconds: int, closing_mid: bool) -> tuple[float, float, float, float, float]:
    """CE flow of NIFTY's weekly within 10 strikes of the money over `seconds` one-second
    quotes from RISING: (measured inflow, measured outflow, rupees bought by aggressors,
    rupees sold by aggressors, index change), all rupees but the last (points)."""
    clock = [0.0]
    exchange = SimulatedExchange(seed=7, start=RISING, clock=lambda: clock[0])
    day = RISING.date()
    listed = exchange._listing(RISING)
    _, second = session_point(RISING)
    spot = exchange.market.spot("NIFTY", day, second)
    calls = [r for r in listed.rows if r.index_key == "NIFTY" and r.instrument_type == "CE"]
    expiry = min(r.expiry for r in calls if r.expiry is not None and r.expiry >= day)
    rows = [r for r in calls if r.expiry == expiry and abs(r.strike - spot) <= 500]
    keys = [f"{r.exchange}:{r.tradingsymbol}" for r in rows]
    chain = exchange._chain(rows[0], day, listed)
    prev: dict[int, tuple[float, float, float, float]] = {}
    measured_in = measured_out = bought = sold = 0.0
    for k in range(seconds + 1):
        clock[0] = float(k)
        for data in exchange.quote(keys).values():
            q = quote_from_kite(data)
            value, mid = q.average_price * q.volume, float(prevailing_mid(q.bid, q.ask, q.last_price))
            if q.instrument_token in prev:
                p = prev[q.instrument_token]
                i, o = leg_flow(p[0], p[1], p[2], p[3], value, q.volume, q.last_price,
                                mid=mid if closing_mid else None)
                measured_in, measured_out = measured_in + float(i), measured_out + float(o)
                # Who crossed the spread in that second, as the exchange drew it.
                aggressor = chain.side[chain.row_of[q.instrument_token], (second + k - 1) // 60]
                traded = float(i) + float(o)
                bought, sold = bought + traded * (aggressor > 0), sold + traded * (aggressor < 0)
            prev[q.instrument_token] = (value, float(q.volume), mid, q.last_price)
    moved = exchange.market.spot("NIFTY", day, second + seconds) - spot
    return measured_in, measured_out, bought, sold, moved


@pytest.mark.integration
def test_one_second_flow_follows_the_aggressors_not_the_index() -> None:
    """A 17 s bar as the index rose 9 points: the aggressors bought 58 % of the calls' premium
    (the simulator tilts them towards buying what gains, as real aggressors lift offers in a
    rally), and the flow says exactly that. Judged against the opening quote alone it said 73 %
    bought: sales at the new, higher bid read as buys."""
    inflow, outflow, bought, sold, moved = _bar(17, closing_mid=True)
    assert moved > 9
    assert inflow + outflow == pytest.approx(bought + sold)
    truth = bought / (bought + sold)
    assert truth == pytest.approx(0.583, abs=0.005)
    assert inflow / (inflow + outflow) == pytest.approx(truth, abs=0.005)
    old_in, old_out, *_ = _bar(17, closing_mid=False)
    assert old_in / (old_in + old_out) == pytest.approx(0.728, abs=0.005)  # the lean it gave
