"""Per-trade premium flow of streamed legs at the tick cadence: the same numbers as the REST
definition on the same market, a leg handed between the tiers counted once, and memory that
does not grow with ticks."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from optui.analytics.premium_flow import leg_flow
from optui.collectors.engine import CollectionEngine
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_plan import MIXED, STREAM
from optui.collectors.stream_source import StreamingSource
from optui.collectors.tick_book import TickBook
from optui.collectors.tick_flow import TickFlow
from optui.config import Settings
from optui.simulator.server import serve
from optui.storage.records import FLOW
from optui.storage.sqlite_store import SQLiteStore
from optui.storage.strike_flow import STRIKE_FLOW
from optui.tick_packets import MODE_FULL, MODE_QUOTE, TickBatch
from tests.test_stream_source import START, FakeClock


def _ticks(tokens: np.ndarray, second: int, volume: np.ndarray, last: np.ndarray) -> TickBatch:
    b = TickBatch.empty(tokens.size)
    b.instrument_token[:] = tokens
    b.mode[:] = MODE_FULL
    b.tradable[:] = True
    b.last_price[:] = last
    b.average_price[:] = last
    b.volume[:] = volume
    b.depth_price[:, 0, 0] = last - 0.5
    b.depth_price[:, 1, 0] = last + 0.5
    b.exchange_timestamp[:] = 1_764_045_000 + second
    b.close[:] = 100.0
    return b


def _kite(token: int, second: int, volume: int, last: float) -> dict:
    """A polled Kite quote entry of the same shape the REST tier hands over."""
    from datetime import datetime

    from optui.timeutil import IST

    at = datetime.fromtimestamp(1_764_045_000 + second, IST).replace(tzinfo=None)
    return {"instrument_token": token, "volume": volume, "average_price": last, "last_price": last,
            "timestamp": at, "depth": {"buy": [{"price": last - 0.5}], "sell": [{"price": last + 0.5}]}}


@pytest.mark.unit
def test_a_leg_handed_to_rest_and_back_is_counted_once() -> None:
    """Volume 100 -> 160 (streamed), -> 250 (polled: the REST tier's), -> 300 (streamed again):
    the ticks' flow covers 100->160 and 250->300 only, so with REST's 160->250 every rupee
    traded is counted exactly once."""
    flow = TickFlow()
    tok = np.array([5 * 256 + 2])
    flow.fold(_ticks(tok, 0, np.array([100]), np.array([10.0])))
    flow.answered([], {"k": _kite(5 * 256 + 2, 0, 100, 10.0)})  # a first polled answer
    flow.fold(_ticks(tok, 1, np.array([160]), np.array([11.0])))
    flow.answered([int(tok[0])], {})
    first = flow.take()[int(tok[0])]
    assert sum(first) == pytest.approx(160 * 11.0 - 100 * 10.0)
    flow.fold(_ticks(tok, 2, np.array([200]), np.array([11.5])))  # ticks while REST answers
    flow.answered([], {"k": _kite(int(tok[0]), 3, 250, 12.0)})
    assert flow.take() == {}  # the REST definition measures this interval
    flow.fold(_ticks(tok, 4, np.array([300]), np.array([12.5])))
    flow.answered([int(tok[0])], {})
    again = flow.take()[int(tok[0])]
    assert sum(again) == pytest.approx(300 * 12.5 - 250 * 12.0)  # from the polled quote on
    assert again[0] > 0 and again[1] == 0  # traded above the polled quote's mid: bought


@pytest.mark.unit
def test_a_take_holds_each_legs_flow_once_whatever_the_calls_of_its_cycle() -> None:
    """Calls answering disjoint legs (kept as columns), a leg answered twice in one take (its
    flows add), a leg handed to REST after a streamed answer (dropped): the table and the map
    agree, tokens ascending."""
    a, b, c = 7 * 256 + 2, 5 * 256 + 2, 6 * 256 + 2
    tok = np.array([a, b, c])

    def cycle(calls: list[tuple[list[int], dict]]) -> tuple[dict, object]:
        flows = [TickFlow(), TickFlow()]
        for f in flows:
            f.fold(_ticks(tok, 0, np.array([100, 100, 100]), np.array([10.0, 10.0, 10.0])))
            f.answered(tok.tolist(), {})
            f.take()
            f.fold(_ticks(tok, 1, np.array([160, 130, 110]), np.array([11.0, 9.0, 10.5])))
            for streamed, polled in calls[:1]:
                f.answered(np.array(streamed) if f is flows[0] else streamed, polled)
            f.fold(_ticks(tok, 2, np.array([170, 150, 120]), np.array([11.5, 8.5, 10.0])))
            for streamed, polled in calls[1:]:
                f.answered(streamed, polled)
        return flows[0].take(), flows[1].take_table()

    as_map, table = cycle([([c, a], {}), ([b], {})])
    assert set(as_map) == {a, b, c}
    assert table.tokens.tolist() == sorted([a, b, c])  # type: ignore[attr-defined]
    assert sum(as_map[a]) == pytest.approx(160 * 11.0 - 100 * 10.0)
    assert sum(as_map[b]) == pytest.approx(150 * 8.5 - 100 * 10.0)
    again, _ = cycle([([a, b], {}), ([a], {})])  # a twice: both intervals add up
    assert sum(again[a]) == pytest.approx(170 * 11.5 - 100 * 10.0)
    handed, table = cycle([([a, b], {}), ([], {"k": _kite(a, 2, 170, 11.5)})])
    assert set(handed) == {b} and table.tokens.tolist() == [b]  # type: ignore[attr-defined]
    for key, (i, o) in handed.items():
        at = table.tokens.tolist().index(key)  # type: ignore[attr-defined]
        assert (i, o) == (table.inflow[at], table.outflow[at])  # type: ignore[attr-defined]


@pytest.mark.unit
def test_memory_does_not_grow_with_ticks_or_snapshots() -> None:
    """1,000 instruments, 500 frames of every one of them and a snapshot (take) after each:
    the per-instrument arrays keep their size and the heap does not grow after the first."""
    tokens = np.arange(1000, dtype=np.int64) * 256 + 2
    flow = TickFlow()
    volume = np.full(tokens.size, 100)
    last = np.full(tokens.size, 50.0)

    def run(frames: range) -> None:
        for k in frames:
            flow.fold(_ticks(tokens, k, volume + k, last + (k % 7) * 0.05))
            flow.answered(tokens[k % 3::3].tolist(), {})
            flow.take()

    run(range(0, 50))
    slots = flow.slots()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    run(range(50, 550))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if s.size_diff > 0)
    assert flow.slots() == slots == 1000
    assert all(getattr(flow.aggregator, name).size == 1000
               for name, _ in flow.aggregator._SLOT_ARRAYS)
    assert grown < 64 * 1024, grown  # 500,000 ticks later: no per-tick or per-snapshot growth


def _settings() -> Settings:
    s = Settings()
    s.source.indices = ["NIFTY"]
    s.source.interval_s = 30.0
    s.source.chain_strikes = 6
    s.participants.enabled = False
    s.record.enabled = False
    return s


@pytest.mark.integration
def test_per_trade_flow_at_one_second_equals_the_rest_definition(tmp_path: Path) -> None:
    """The same simulated half minute (10:00:40-10:01:15) snapshotted every second over the
    ticker at the tick cadence (spots and legs from the ticks, flow per trade) and polled every
    second over REST alone: the stored one-minute flow bars and every strike's bars are equal.
    At 10:00:50 the ATM call is polled for one snapshot (its ticks taken off the live set) and
    streams again the next second: handed over both ways within the minute without a rupee
    counted twice or lost."""
    clock = FakeClock()
    begin = START + timedelta(seconds=40)
    sim = SimulatedSource(seed=7, start=begin, clock=clock)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 0.05
    source = StreamingSource(sim, "sim_key", "sim_token", server.url.replace("http", "ws", 1),
                             server=server, snapshot_s=1.0)
    streamed = CollectionEngine(_settings(), source, SQLiteStore(tmp_path / "stream.db"),
                                state_dir=tmp_path / "state")
    rest_clock = FakeClock()
    polled = CollectionEngine(_settings(), SimulatedSource(seed=7, start=begin, clock=rest_clock),
                              SQLiteStore(tmp_path / "rest.db"), state_dir=tmp_path / "rest-state")
    feeds: list[str] = []
    polls: list[int] = []
    try:
        atm_call = 0
        for second in range(36):
            if second:
                clock.t += 1.0
                rest_clock.t += 1.0
                assert wait_caught_up(source, sim.now()), "the stream did not catch up"
            if second == 10:
                source._on_loop(source.book.mark_stale, [atm_call])
            calls = source.rest_calls
            snap = streamed.collect_once()
            polls.append(source.rest_calls - calls)
            rest_snap = polled.collect_once()
            assert snap.timestamp == rest_snap.timestamp == begin + timedelta(seconds=second)
            feeds.append(streamed.last.feed)
            if second == 1:
                legs = [leg for leg in snap.indices["NIFTY"].legs if leg.side == "CALL"]
                atm = snap.indices["NIFTY"].overview.atm_strike
                atm_call = next(leg.instrument_token for leg in legs if leg.strike == atm
                                and leg.bucket == "this_week")
        assert feeds[1:10] == [STREAM] * 9 and feeds[10] == MIXED and feeds[11] == STREAM, feeds
        # No REST call per snapshot: the first cycle's (the ticker starts with it), the
        # handed-over leg's, and a leg new to the plan (the window follows the money) until
        # its first tick.
        # No REST call per snapshot for the spots: a cycle polls only legs the ticks do not
        # answer (the handed-over leg; a leg new to the plan as the window follows the money,
        # until its first tick), and then says stream+rest.
        assert polls[1:10] == [0] * 9 and polls[10] == 1, polls
        assert all(p == 0 or f == MIXED for p, f in zip(polls[11:], feeds[11:], strict=True))
    finally:
        streamed.close()
        polled.close()
    one, two = SQLiteStore(tmp_path / "stream.db"), SQLiteStore(tmp_path / "rest.db")
    lo, hi = START - timedelta(minutes=1), START + timedelta(minutes=5)
    try:
        bars = [{r.time: r.fields for r in store.query(FLOW, lo, hi)} for store in (one, two)]
        strikes = [{(r.time, r.tags["expiry"], r.tags["strike"]): r.fields
                    for r in store.query(STRIKE_FLOW, lo, hi)} for store in (one, two)]
    finally:
        one.close()
        two.close()
    assert set(bars[0]) == set(bars[1]) and len(bars[0]) == 2
    gross = 0.0
    for minute, fields in bars[1].items():
        for name, value in fields.items():
            if isinstance(value, float):
                assert bars[0][minute][name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        gross += fields["inflow_cr"] + fields["outflow_cr"]
    assert gross > 1.0  # crores traded: the comparison is not of zeros
    assert set(strikes[0]) == set(strikes[1])
    for ident, fields in strikes[1].items():
        for name in ("ce_net_cr", "pe_net_cr"):
            assert strikes[0][ident][name] == pytest.approx(fields[name], rel=1e-9, abs=1e-12)


@pytest.mark.unit
def test_a_reference_older_than_the_gap_gives_unknown_flow_as_rest() -> None:
    """A leg that last ticked before an outage longer than `max_gap_s` (the previous session,
    a long disconnection) has no measured flow in the interval that spans it: NaN, as the REST
    path's leg without a usable previous quote; the next interval measures again."""
    flow = TickFlow(max_gap_s=180.0)
    tok = np.array([7 * 256 + 2])
    flow.fold(_ticks(tok, 0, np.array([100]), np.array([10.0])))
    flow.answered(tok.tolist(), {})
    flow.take()
    flow.fold(_ticks(tok, 600, np.array([500]), np.array([11.0])))  # ten minutes later
    flow.answered(tok.tolist(), {})
    inflow, outflow = flow.take()[int(tok[0])]
    assert inflow != inflow and outflow != outflow  # NaN: not measured
    flow.fold(_ticks(tok, 601, np.array([520]), np.array([11.5])))
    flow.answered(tok.tolist(), {})
    assert sum(flow.take()[int(tok[0])]) == pytest.approx(520 * 11.5 - 500 * 11.0)


@pytest.mark.unit
@pytest.mark.parametrize("stray_tick", [False, True])
def test_a_leg_back_in_the_window_flows_from_its_last_answer_whatever_the_tick_timing(
        stray_tick: bool) -> None:
    """A leg answered at 10:00:28 leaves the chain window (cycles 29-32 do not quote it) and is
    back at 33, its first tick after the resubscription landing before the cycle's answer. A
    tick of 29 may or may not reach it after its last answer, before its unsubscription
    applies: either way its flow at 33 is the one interval 28 -> 33, the REST tier's against
    its previous quote (28 -> 29 and 29 -> 33 apart would read 1,400 in and 6,600 out)."""
    flow = TickFlow()
    tok = np.array([9 * 256 + 2])
    states = {28: (100, 10.0), 29: (200, 12.0), 33: (1000, 9.0)}

    def tick(second: int) -> TickBatch:
        volume, last = states[second]
        return _ticks(tok, second, np.array([volume]), np.array([last]))

    flow.fold(tick(28))
    flow.answered(tok.tolist(), {})
    flow.take()
    if stray_tick:
        flow.fold(tick(29))
    for _second in range(29, 33):
        flow.take()  # cycles that do not quote the leg
    flow.fold(tick(33))
    flow.answered(tok.tolist(), {})
    inflow, outflow = flow.take()[int(tok[0])]
    want_in, want_out = leg_flow(1000.0, 100.0, 10.0, 10.0, 9000.0, 1000.0, 9.0, mid=9.0)
    assert (inflow, outflow) == pytest.approx((float(want_in), float(want_out)))
    assert (inflow, outflow) == pytest.approx((0.0, 8000.0))


@pytest.mark.unit
@pytest.mark.parametrize("first_full_before_answer", [False, True])
def test_a_resubscribed_leg_answers_from_ticks_only_after_its_full_tick(
        first_full_before_answer: bool) -> None:
    """Kite ticks a subscription in quote mode until its mode message applies: a leg subscribed
    `full` whose only tick since it was (re)subscribed is a quote packet (no depth, no OI, no
    flow reference) is not live for a full answer, so the cycle polls it and the polled quote
    becomes its flow reference; once a full tick came it answers from the ticks. Before or
    after the cycle's answer, its flow from then on is the REST definition's."""
    book, flow = TickBook(), TickFlow()
    tok = 11 * 256 + 2
    full = _ticks(np.array([tok]), 28, np.array([100]), np.array([10.0]))
    book.add(full)
    flow.fold(full)
    book.mark_stale([tok])  # left the window (unsubscribed); now subscribed again
    quote = _ticks(np.array([tok]), 33, np.array([1000]), np.array([9.0]))
    quote.mode[:] = MODE_QUOTE
    quote.exchange_timestamp[:] = 0  # a quote packet carries no exchange time
    book.add(quote)
    flow.fold(quote)
    assert book.is_live([tok]).tolist() == [True]
    assert book.is_live([tok], MODE_FULL).tolist() == [False]  # not answered from the ticks
    at33 = _ticks(np.array([tok]), 33, np.array([1000]), np.array([9.0]))
    if first_full_before_answer:
        book.add(at33)
        flow.fold(at33)
        assert book.is_live([tok], np.array([MODE_FULL])).tolist() == [True]
        flow.answered([tok], {})
    else:
        flow.answered([], {"NFO:X": _kite(tok, 33, 1000, 9.0)})  # polled: the REST tier's
        book.add(at33)
        flow.fold(at33)
    flow.take()
    flow.fold(_ticks(np.array([tok]), 34, np.array([1100]), np.array([9.5])))
    flow.answered([tok], {})
    inflow, outflow = flow.take()[tok]
    want = leg_flow(9000.0, 1000.0, 9.0, 9.0, 10450.0, 1100.0, 9.5, mid=9.5)
    assert (inflow, outflow) == pytest.approx((float(want[0]), float(want[1])))
    assert inflow + outflow == pytest.approx(10450.0 - 9000.0)
