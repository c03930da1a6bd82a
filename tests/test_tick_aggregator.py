"""The tick aggregator: state, flow per trade, OI buildup, snapshots; and agreement with REST."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest
from kiteconnect import KiteConnect

from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.collectors.source import quote_from_kite
from optui.collectors.tick_aggregator import TickAggregator
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter, SimulatorServer, serve
from optui.simulator.ticker import exchange_frame
from optui.tick_packets import MODE_FULL, MODE_QUOTE, TickBatch, parse_frame
from optui.timeutil import IST


def _ticks(rows: list[tuple[int, int, float, int, float, float, float, int, int]]) -> TickBatch:
    """(token, mode, last, volume, average, bid, ask, oi, exchange time) per tick."""
    b = TickBatch.empty(len(rows))
    for j, (tok, mode, last, vol, avg, bid, ask, oi, at) in enumerate(rows):
        b.instrument_token[j], b.mode[j], b.last_price[j] = tok, mode, last
        b.volume[j], b.average_price[j], b.oi[j], b.exchange_timestamp[j] = vol, avg, oi, at
        b.depth_price[j, 0, 0], b.depth_price[j, 1, 0] = bid, ask
        b.close[j] = 100.0
    return b


@pytest.mark.unit
def test_flow_per_trade_in_frame_order_with_duplicates_and_strangers() -> None:
    agg = TickAggregator([11, 22], reference_oi={11: 1000.0}, snapshot_every_s=5)
    t0 = 1_800_000_000
    # Instrument 11 ticks three times in one batch: each trade is judged against the mid before it.
    batch = _ticks([
        (11, MODE_FULL, 101.0, 100, 101.0, 100.0, 102.0, 1100, t0),
        (22, MODE_FULL, 50.0, 10, 50.0, 49.0, 51.0, 500, t0),
        (11, MODE_FULL, 102.0, 200, 101.5, 101.0, 103.0, 1200, t0 + 1),  # traded 102 > mid 101
        (33, MODE_FULL, 1.0, 1, 1.0, 0.5, 1.5, 1, t0 + 1),  # not tracked
        (11, MODE_FULL, 100.0, 300, 101.0, 99.0, 101.0, 1150, t0 + 2),  # traded 100 < mid 102
        (11, MODE_QUOTE, 100.5, 400, 101.0, 0.0, 0.0, 0, t0 + 3),  # no depth: no flow
    ])
    snap = agg.add(batch)
    assert snap is not None and snap.unknown_ticks == 1
    i11 = int(np.flatnonzero(snap.instrument_token == 11)[0])
    # 100 @ 102 bought (10,200) then 100 @ 100 sold (10,000); the first tick only sets the base.
    assert snap.inflow[i11] == pytest.approx(10_200.0)
    assert snap.outflow[i11] == pytest.approx(10_000.0)
    assert snap.last_price[i11] == 100.5 and snap.volume[i11] == 400
    assert snap.oi_change[i11] == 150.0 and snap.buildup[i11] == "long_buildup"
    assert snap.ticks.tolist() == [4, 1]
    # The next snapshot is due 5 exchange seconds on; its interval flow starts afresh.
    assert agg.add(_ticks([(22, MODE_FULL, 51.0, 20, 50.5, 50.0, 52.0, 500, t0 + 4)])) is None
    later = agg.add(_ticks([(22, MODE_FULL, 52.0, 30, 51.0, 51.0, 53.0, 510, t0 + 5)]))
    assert later is not None and later.interval_inflow[i11] == 0.0
    assert later.interval_inflow[1] + later.interval_outflow[1] == pytest.approx(
        30 * 51.0 - 10 * 50.0)


@pytest.mark.unit
def test_flow_reference_forgotten_after_a_gap() -> None:
    agg = TickAggregator([11, 22])
    agg.add(_ticks([(11, MODE_FULL, 10.0, 100, 10.0, 9.0, 11.0, 0, 1),
                    (22, MODE_FULL, 10.0, 100, 10.0, 9.0, 11.0, 0, 1)]))
    agg.forget_flow_reference([11])  # the connection carrying 11 was down
    snap = agg.add(_ticks([(11, MODE_FULL, 12.0, 500, 11.0, 11.0, 13.0, 0, 60),
                           (22, MODE_FULL, 12.0, 500, 11.0, 11.0, 13.0, 0, 60)]))
    assert snap is not None and snap.inflow[0] == 0.0 and snap.outflow[0] == 0.0
    assert snap.inflow[1] == pytest.approx(500 * 11.0 - 100 * 10.0)
    stale = TickAggregator([11], max_gap_s=30)
    stale.add(_ticks([(11, MODE_FULL, 10.0, 100, 10.0, 9.0, 11.0, 0, 1)]))
    snap = stale.add(_ticks([(11, MODE_FULL, 12.0, 500, 11.0, 11.0, 13.0, 0, 60)]))
    assert snap is not None and snap.inflow[0] + snap.outflow[0] == 0.0


class StepClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def clock() -> StepClock:
    return StepClock()


@pytest.fixture(scope="module")
def market(clock: StepClock) -> Iterator[tuple[SimulatedExchange, SimulatorServer]]:
    start = datetime(2026, 11, 18, 10, 0, tzinfo=IST)
    exchange = SimulatedExchange(seed=11, start=start, clock=clock)
    srv = serve(exchange, "127.0.0.1", 0, limiter=RateLimiter(limits={"other": 10**6}))
    yield exchange, srv
    srv.close()


def _chain_keys(exchange: SimulatedExchange) -> dict[int, str]:
    """Token -> NFO key of 40 NIFTY options around the money of the nearest expiry."""
    rows = [r for r in exchange.instruments("NFO") if r.index_key == "NIFTY"
            and r.instrument_type in ("CE", "PE")]
    expiry = min(r.expiry for r in rows if r.expiry)
    near = sorted((r for r in rows if r.expiry == expiry), key=lambda r: abs(r.strike - 26_000))
    return {r.instrument_token: r.key for r in near[:40]}


def _rest_flow(kite: KiteConnect, keys: dict[int, str], moments: list[float],
               clock: StepClock) -> dict[int, tuple[float, float]]:
    """Flow per instrument as the REST path computes it: quote_from_kite, prevailing_mid, leg_flow."""
    prev: dict[int, tuple[float, float, float, float]] = {}
    flow = dict.fromkeys(keys, (0.0, 0.0))
    for t in moments:
        clock.t = t
        raw = kite.quote(list(keys.values()))
        for data in raw.values():
            q = quote_from_kite(data)
            tok = q.instrument_token
            mid = float(prevailing_mid(q.bid, q.ask, q.last_price))
            value = q.average_price * q.volume
            p = prev.get(tok, (np.nan,) * 4)
            i, o = leg_flow(p[0], p[1], p[2], p[3], value, q.volume, q.last_price, mid=mid)
            flow[tok] = (flow[tok][0] + float(i), flow[tok][1] + float(o))
            prev[tok] = (value, float(q.volume), mid, q.last_price)
        assert len(raw) == len(keys)
    return flow


def _tick_flow(exchange: SimulatedExchange, keys: dict[int, str], moments: list[float],
               clock: StepClock) -> TickAggregator:
    agg = TickAggregator(list(keys))
    modes = dict.fromkeys(keys, MODE_FULL)
    for t in moments:
        clock.t = t
        agg.add(parse_frame(exchange_frame(exchange, modes)))
    return agg


@pytest.mark.integration
@pytest.mark.mock
def test_tick_flow_equals_rest_flow_on_the_same_minutes(
        market: tuple[SimulatedExchange, SimulatorServer], clock: StepClock) -> None:
    """Ticks and REST quotes of the same simulated moments give the same flow per instrument.

    Tolerance 1e-6 rupees: both paths see identical numbers (prices in paise both ways, the same
    mid and leg_flow), so only float summation could differ.
    """
    exchange, srv = market
    keys = _chain_keys(exchange)
    kite = KiteConnect("sim_key", access_token="sim_token", root=srv.url)
    moments = [60.0 * k for k in range(16)]  # 10:00 to 10:15, once a minute
    rest = _rest_flow(kite, keys, moments, clock)
    agg = _tick_flow(exchange, keys, moments, clock)
    snap = agg.snapshot()
    total = 0.0
    for j, tok in enumerate(snap.instrument_token):
        assert snap.inflow[j] == pytest.approx(rest[int(tok)][0], abs=1e-6)
        assert snap.outflow[j] == pytest.approx(rest[int(tok)][1], abs=1e-6)
        total += snap.inflow[j] + snap.outflow[j]
    assert total > 1e7  # crores traded: the comparison is not of zeros


@pytest.mark.integration
@pytest.mark.mock
def test_finer_ticks_trade_the_same_value_as_minute_quotes(
        market: tuple[SimulatedExchange, SimulatorServer], clock: StepClock) -> None:
    """Ticks every 5 s against REST once a minute over the same 15 minutes.

    The traded value is the change of average_price x volume, so it telescopes: both cadences
    count the same rupees, up to Kite's 0.01 rounding of average_price (an interval with no new
    volume carries its rounding to the next), within 0.1 %. The buy/sell split may differ: a
    minute's VWAP against one mid is coarser than each 5 s trade against its own.
    """
    exchange, srv = market
    keys = _chain_keys(exchange)
    kite = KiteConnect("sim_key", access_token="sim_token", root=srv.url)
    minutes = [60.0 * k for k in range(16)]
    rest = _rest_flow(kite, keys, minutes, clock)
    agg = _tick_flow(exchange, keys, [5.0 * k for k in range(181)], clock)
    gross_rest = sum(i + o for i, o in rest.values())
    gross_tick = float((agg.inflow + agg.outflow).sum())
    assert gross_tick == pytest.approx(gross_rest, rel=1e-3)
    assert gross_rest > 1e9
