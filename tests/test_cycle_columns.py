"""A collection cycle in columns gives exactly what the per-object path gave: streamed quotes read
from the tick book's arrays, every bucket analysed in one vectorised pass, the legs stored from
the analytics' columns, the day state in binary, rewritten store frames and strike-flow bars."""

from __future__ import annotations

import math
from dataclasses import astuple
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from reference_bucket import reference_bucket

from optui.analytics.chain import chain_aggregates, chain_aggregates_batch, pad_chains
from optui.collectors.bucket_analytics import BucketResult, analyse_bucket, analyse_buckets
from optui.collectors.chain_plan import BucketPlan, plan_index
from optui.collectors.day_state import DayState, PrevQuote
from optui.collectors.instruments import build_catalogs
from optui.collectors.quote_table import QuoteTable
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.source import MAX_QUOTE_INSTRUMENTS, quote_from_kite
from optui.collectors.stream_source import StreamingSource
from optui.collectors.tick_book import TickBook
from optui.config import AnalyticsSettings
from optui.models import IndexSnapshot, OverviewRecord, Quote, Snapshot
from optui.storage.points import Point
from optui.storage.sqlite_store import SQLiteStore
from optui.storage.strike_flow import StrikeFlowBars
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, TickBatch
from optui.timeutil import IST, UTC

START = datetime(2026, 11, 25, 11, 0, tzinfo=IST)  # a Wednesday, mid-session
OFFSETS = [-2, -1, 0, 1, 2]


def _same(a: object, b: object) -> bool:
    """Equal, floats bit for bit by their repr (NaN equals NaN, -0.0 is not 0.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return repr(a) == repr(b)
    return type(a) is type(b) and a == b


def _fields(record: object) -> tuple:
    return tuple(record) if isinstance(record, tuple) else astuple(record)  # type: ignore[call-overload]


def _assert_same_record(got: object, want: object, what: str) -> None:
    assert type(got) is type(want), what
    for j, (x, y) in enumerate(zip(_fields(got), _fields(want), strict=True)):
        assert _same(x, y), (what, j, x, y)


# -- the tick book's columns -----------------------------------------------------------------

def _ticks() -> TickBatch:
    """Ticks of every shape a quote can take: full with depth, quote mode, ltp only, an index
    (no last trade time), no trade yet today (ohlc 0), an empty book side, no timestamps."""
    rows = [  # token, mode, last, volume, oi, open, close, bid, ask, stamp, traded
        (1 * 256 + 2, MODE_FULL, 101.25, 6500, 12000, 99.0, 98.5, 101.2, 101.3, 1_764_048_600, 1_764_048_598),
        (2 * 256 + 2, MODE_FULL, 55.5, 0, 700, 0.0, 60.0, 0.0, 55.6, 1_764_048_600, 1_763_972_999),
        (3 * 256 + 2, MODE_QUOTE, 12.05, 130, 0, 11.0, 0.0, 0.0, 0.0, 0, 0),
        (4 * 256 + 2, MODE_LTP, 7.35, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0),
        (256_265, MODE_FULL, 26_010.4, 0, 0, 25_990.0, 25_950.0, 0.0, 0.0, 1_764_048_601, 0),
        (5 * 256 + 2, MODE_FULL, 3.1, 90, 40, 3.0, 2.9, 3.05, 3.15, 1_764_048_600, 0),
    ]
    b = TickBatch.empty(len(rows))
    for j, (tok, mode, last, vol, oi, open_, close, bid, ask, stamp, traded) in enumerate(rows):
        b.instrument_token[j], b.mode[j], b.last_price[j] = tok, mode, last
        b.tradable[j] = tok & 0xFF != 9
        if mode != MODE_LTP:
            b.volume[j], b.average_price[j] = vol, last - 0.01
            b.open[j], b.high[j], b.low[j], b.close[j] = open_, open_ * 1.01, open_ * 0.99, close
        if mode == MODE_FULL:
            b.oi[j], b.exchange_timestamp[j], b.last_trade_time[j] = oi, stamp, traded
            b.depth_price[j, 0, 0], b.depth_price[j, 1, 0] = bid, ask
    return b


@pytest.mark.unit
def test_the_book_answers_in_columns_what_each_quote_dict_says() -> None:
    book = TickBook(capacity=2)
    batch = _ticks()
    book.add(batch)
    tokens = [*batch.instrument_token.tolist(), 99 * 256 + 2]  # the last one never ticked
    keys = [f"NFO:X{t}" for t in tokens]
    table = book.quote_table(keys, tokens)
    want = QuoteTable.from_quotes(keys, {k: quote_from_kite(q) for k, t in zip(keys, tokens, strict=True)
                                         if (q := book.quote(t)) is not None})
    assert table.has.tolist() == [True] * 6 + [False]
    for name in ("instrument_token", "last_price", "bid", "ask", "volume", "average_price", "oi",
                 "open", "high", "low", "close", "age_s", "last_trade_day"):
        got, expected = getattr(table, name), getattr(want, name)
        assert [repr(x) for x in got.tolist()] == [repr(x) for x in expected.tolist()], name
    assert table.age_s[0] == 2.0 and math.isnan(table.age_s[2])  # quote mode: no timestamps
    assert math.isnan(table.open[1]) and table.bid[1] == 0.0  # no trade yet; empty bid side
    assert table.last_trade_day[1] == table.last_trade_day[0] - 1  # traded the day before


@pytest.mark.unit
def test_the_book_answers_ticked_rows_as_its_table_does_bit_for_bit() -> None:
    book = TickBook(capacity=2)
    batch = _ticks()
    book.add(batch)
    tokens = batch.instrument_token.tolist()[::-1]  # any order, every one ticked
    keys = [f"NFO:X{t}" for t in tokens]
    want = book.quote_table(keys, tokens)
    got = book.quote_table_at(keys, book.slots(tokens))
    assert got.keys == keys and got.has.all()
    assert got.instrument_token.dtype == want.instrument_token.dtype
    for name in ("instrument_token", "last_price", "bid", "ask", "volume", "average_price", "oi",
                 "open", "high", "low", "close", "age_s", "last_trade_day"):
        g, w = getattr(got, name), getattr(want, name)
        assert g.dtype == w.dtype, name
        assert [repr(x) for x in g.tolist()] == [repr(x) for x in w.tolist()], name
    assert math.isnan(got.open[-2]) and got.bid[-2] == 0.0  # no trade yet; empty bid side


@pytest.mark.unit
def test_a_table_takes_rows_by_key_and_a_missing_key_has_no_quote() -> None:
    q = quote_from_kite({"instrument_token": 7, "last_price": 10.0, "volume": 5,
                         "depth": {"buy": [{"price": 9.9}], "sell": [{"price": 10.1}]}})
    table = QuoteTable.concat([QuoteTable.from_quotes(["A", "B"], {"A": q}),
                               QuoteTable.from_quotes(["C"], {"C": q})])
    cols = table.take(table.rows(["C", "Z", "B", "A"]))
    assert cols["has"].tolist() == [True, False, False, True]
    assert cols["bid"].tolist() == [9.9, 0.0, 0.0, 9.9]
    assert cols["instrument_token"].tolist() == [7, 0, 0, 7]
    assert math.isnan(cols["last_price"][1]) and cols["volume"][0] == 5.0


# -- the analytics: vectorised over every bucket against the per-leg reference ----------------

@lru_cache(maxsize=4)
def _market(at: datetime, each_side: int, full: int) -> tuple[list[tuple[BucketPlan, float]], dict[str, Quote]]:
    """The simulator's plans for NIFTY and SENSEX at `at` and their quotes (a few left out)."""
    source = SimulatedSource(seed=7, start=at, clock=lambda: 0.0)
    catalogs = build_catalogs(source.instruments(), ["NIFTY", "SENSEX"])
    spots = source.quotes(["NSE:NIFTY 50", "BSE:SENSEX"])
    jobs = []
    for key, symbol in (("NIFTY", "NSE:NIFTY 50"), ("SENSEX", "BSE:SENSEX")):
        spot = spots[symbol].last_price
        jobs += [(p, spot) for p in plan_index(catalogs[key], spot, at, each_side, OFFSETS, full)]
    keys = list(dict.fromkeys(k for p, _ in jobs for k in p.call_keys() + p.put_keys()))
    quotes: dict[str, Quote] = {}
    for i in range(0, len(keys), MAX_QUOTE_INSTRUMENTS):
        quotes.update(source.quotes(keys[i: i + MAX_QUOTE_INSTRUMENTS]))
    for plan, _ in jobs[:2]:  # missing quotes: an ATM-side call, a far put
        mid = plan.strikes.size // 2
        quotes.pop(plan.call_keys()[mid], None)
        quotes.pop(plan.put_keys()[0], None)
    return jobs, quotes


def _compare(got: BucketResult, want: BucketResult, what: str) -> None:
    _assert_same_record(got.stats, want.stats, what)
    assert len(got.legs) == len(want.legs), what
    for a, b in zip(got.legs, want.legs, strict=True):
        _assert_same_record(a, b, f"{what} {b.side} {b.strike}")
    for name in ("tokens", "inflow", "outflow", "is_call"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=f"{what} {name}")
    assert got.missing == want.missing


@pytest.mark.integration
@pytest.mark.parametrize(("each_side", "full"), [(0, 1), (6, 0)])
def test_all_buckets_at_once_equal_the_per_leg_reference(each_side: int, full: int) -> None:
    """Two moments 30 s apart (the second has flow against the first), whole chains with legs
    for every strike of the nearest expiry, or a window with the offsets: every stat, leg and
    flow equals the per-leg implementation's, and the day state ends the same."""
    cfg = AnalyticsSettings()
    new_state, old_state = DayState(START.date()), DayState(START.date())
    old_state.oi_prev_close = new_state.oi_prev_close = {}
    for step in range(2):
        at = START + timedelta(seconds=30 * step)
        jobs, quotes = _market(at, each_side, full)
        assert any(p.full_chain for p, _ in jobs) == bool(full) and len(jobs) >= 6
        frozen = dict(old_state.prev)
        want = [reference_bucket(p, quotes, spot, at, cfg, OFFSETS, old_state, frozen, 180.0)
                for p, spot in jobs]
        table = QuoteTable.from_quotes(list(quotes), quotes)
        got = analyse_buckets(jobs, table, at, cfg, OFFSETS, new_state, dict(new_state.prev), 180.0)
        for (plan, _), g, w in zip(jobs, got, want, strict=True):
            _compare(g, w, f"{plan.index} {plan.bucket} step {step}")
        if step:
            assert any(np.isfinite(w.inflow).any() for w in want)  # flow was measured
        assert new_state.prev == old_state.prev and new_state.oi_first == old_state.oi_first
        assert new_state.iv_open == old_state.iv_open


@pytest.mark.integration
def test_one_bucket_alone_equals_it_among_others() -> None:
    jobs, quotes = _market(START, 0, 1)
    cfg = AnalyticsSettings()
    together = analyse_buckets(jobs, quotes, START, cfg, OFFSETS, DayState(START.date()))
    for (plan, spot), res in zip(jobs, together, strict=True):
        alone = analyse_bucket(plan, quotes, spot, START, cfg, OFFSETS, DayState(START.date()))
        _compare(alone, res, f"{plan.index} {plan.bucket}")


@pytest.mark.unit
def test_a_padded_chain_sums_exactly_as_the_chain_alone() -> None:
    """Pairwise summation groups terms by length: padding must not move a single bit."""
    rng = np.random.default_rng(3)
    lengths = [300, 131, 129, 8, 1]
    chains = []
    for n in lengths:
        k = np.sort(rng.choice(np.arange(20_000, 30_000, 25.0), n, replace=False))
        chains.append({"strikes": k, **{name: rng.uniform(0, 1e6, n) for name in (
            "call_ltp", "put_ltp", "call_oi", "put_oi", "call_volume", "put_volume", "call_iv",
            "put_iv", "call_oi_change", "put_oi_change")}})
    spots = [25_000.0] * len(chains)
    blocks = {name: pad_chains([c[name] for c in chains]) for name in chains[0]}
    batch = chain_aggregates_batch(spots, **blocks, step=25.0, skew_steps=2)
    for got, chain in zip(batch, chains, strict=True):
        _assert_same_record(got, chain_aggregates(25_000.0, **chain, step=25.0, skew_steps=2),
                            f"{chain['strikes'].size} strikes")


# -- the day state, store frames, strike-flow bars, subscriptions -------------------------------

@pytest.mark.unit
def test_day_state_round_trips_in_binary_and_reads_older_files(tmp_path: Path) -> None:
    day = date(2026, 11, 25)
    state = DayState(day, tmp_path)
    state.prev = {11: PrevQuote(1.5e7, 6500.0, 101.25, 101.3, 12_000.0, 1_764_048_600.0),
                  12: PrevQuote(float("nan"), 0.0, 0.1 + 0.2, 3.0, 40.0)}
    state.oi_first = {11: 11_500.0, 13: 7.0}
    state.iv_open = {"NIFTY/this_week/2026-12-01": (12.5, 1_764_047_700.0)}
    state.save()
    back = DayState.load(day, tmp_path)
    assert back.oi_first == state.oi_first and back.iv_open == state.iv_open
    assert list(back.prev) == [11, 12]
    for tok, p in state.prev.items():
        _assert_same_record(back.prev[tok], p, f"prev {tok}")
    nxt = DayState.load(date(2026, 11, 26), tmp_path, previous_day=day)
    assert nxt.oi_prev_close == {11: 12_000.0, 12: 40.0}  # the last OI of each previous quote
    (tmp_path / "state_2026-11-26.json").write_text(  # as written before: JSON numbers
        '{"oi_first": {"5": 3.0}, "prev": {"5": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, '
        '"oi_last": {"5": 5.0}}', encoding="utf-8")
    old = DayState.load(date(2026, 11, 26), tmp_path)
    assert old.oi_first == {5: 3.0} and old.prev == {5: PrevQuote(1.0, 2.0, 3.0, 4.0, 5.0, 6.0)}
    assert DayState.load(date(2026, 11, 27), tmp_path, previous_day=date(2026, 11, 26)).oi_prev_close == {5: 5.0}


@pytest.mark.unit
def test_a_rewritten_frame_keeps_only_what_the_new_points_do_not_replace(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    at = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)

    def point(strike: str, ce: float, pe: float | None = None) -> Point:
        fields = {"ce_net_cr": ce} if pe is None else {"ce_net_cr": ce, "pe_net_cr": pe}
        return Point("flow_strike", {"index": "NIFTY", "strike": strike}, fields, at)

    def stored() -> dict[str, dict]:
        return {r.tags["strike"]: r.fields for r in store.query("flow_strike", at, at + timedelta(seconds=1))}

    try:
        store.write([point("100", 1.0, 2.0), point("200", 3.0, 4.0)])
        store.write([point("100", 5.0, 6.0), point("200", 7.0, 8.0), point("300", 9.0, 1.0)])
        assert stored() == {"100": {"ce_net_cr": 5.0, "pe_net_cr": 6.0},
                            "200": {"ce_net_cr": 7.0, "pe_net_cr": 8.0},
                            "300": {"ce_net_cr": 9.0, "pe_net_cr": 1.0}}
        store.write([point("100", 0.5), point("200", 0.25, 0.75)])  # a field and a series left out
        assert stored() == {"100": {"ce_net_cr": 0.5, "pe_net_cr": 6.0},
                            "200": {"ce_net_cr": 0.25, "pe_net_cr": 0.75},
                            "300": {"ce_net_cr": 9.0, "pe_net_cr": 1.0}}
    finally:
        store.close()


def _flow_snapshot(at: datetime, flows: dict[tuple[str, float], tuple[float, float]]) -> Snapshot:
    ov = OverviewRecord(at, "NIFTY", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    snap = Snapshot(at, "sim")
    snap.indices["NIFTY"] = IndexSnapshot("NIFTY", ov, strike_flow=flows)
    return snap


@pytest.mark.unit
def test_strike_bars_add_cycles_and_a_moment_collected_again_replaces_its_cycle() -> None:
    bars = StrikeFlowBars()
    minute = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
    cycles = [(0.1, {("2026-12-01", 100.0): (0.1, 0.2)}),
              (0.7, {("2026-12-01", 100.0): (0.3, -0.1), ("2026-12-01", 150.0): (1e-9, 2.0)}),
              (0.9, {("2026-12-01", 150.0): (0.7, 0.3)})]
    for second, flows in cycles:
        points = bars.points(_flow_snapshot(minute + timedelta(seconds=second * 60), flows))
    got = {p.tags["strike"]: (p.fields["ce_net_cr"], p.fields["pe_net_cr"]) for p in points}
    assert got == {"100": (0.0 + 0.1 + 0.3, 0.0 + 0.2 + -0.1), "150": (0.0 + 1e-9 + 0.7, 0.0 + 2.0 + 0.3)}
    # The second moment collected again: its cycle is replaced, not added.
    points = bars.points(_flow_snapshot(minute + timedelta(seconds=42), {("2026-12-01", 100.0): (1.0, 1.0)}))
    got = {p.tags["strike"]: (p.fields["ce_net_cr"], p.fields["pe_net_cr"]) for p in points}
    assert got == {"100": (0.0 + 0.1 + 1.0, 0.0 + 0.2 + 1.0), "150": (0.0 + 0.7, 0.0 + 0.3)}


@pytest.mark.integration
def test_an_unchanged_plan_is_not_ranked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import optui.collectors.stream_source as stream_source

    jobs, _ = _market(START, 0, 1)
    plans = {"NIFTY": [p for p, _ in jobs if p.index == "NIFTY"]}
    spots = {"NIFTY": quote_from_kite({"instrument_token": 256_265, "last_price": jobs[0][1]})}
    source = StreamingSource(SimulatedSource(seed=7, start=START, clock=lambda: 0.0), "k", "t",
                             "ws://127.0.0.1:9")
    ranked = []
    real = stream_source.stream_modes
    monkeypatch.setattr(stream_source, "stream_modes", lambda *a: ranked.append(1) or real(*a))
    applied = []
    monkeypatch.setattr(source, "_ensure_loop", lambda: None)
    monkeypatch.setattr(stream_source.asyncio, "run_coroutine_threadsafe",
                        lambda coro, loop: (coro.close(), applied.append(1), _Done())[2])
    source.follow_plan(plans, spots)
    source.follow_plan(plans, spots)
    assert ranked == [1] and applied == [1]
    fewer = {"NIFTY": plans["NIFTY"][:1]}
    source.follow_plan(fewer, spots)  # a changed plan is ranked and subscribed
    assert ranked == [1, 1] and applied == [1, 1] and source.left_to_rest == 0


class _Done:
    def add_done_callback(self, fn: object) -> None:
        pass


@pytest.mark.unit
def test_a_cycle_transaction_commits_its_writes_together_or_none(tmp_path: Path) -> None:
    from optui.errors import StoreError

    store = SQLiteStore(tmp_path / "x.db")
    at = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)
    span = (at - timedelta(days=1), at + timedelta(days=1))
    try:
        store.write([Point("m", {"k": "a"}, {"v": 1.0}, at)])
        with pytest.raises(StoreError, match="numeric"), store.transaction():
            store.write([Point("m", {"k": "b"}, {"v": 2.0}, at + timedelta(seconds=1))])
            store.write([Point("m", {"k": "c"}, {"v": "text"}, at + timedelta(seconds=2))])
        assert [r.tags["k"] for r in store.query("m", *span)] == ["a"]  # b rolled back with c
        with store.transaction():
            store.write([Point("m", {"k": "b"}, {"v": 2.0}, at + timedelta(seconds=1))])
            store.write([Point("n", {"k": "d"}, {"w": 3.0}, at)])
        assert [r.tags["k"] for r in store.query("m", *span)] == ["a", "b"]
        assert [r.fields for r in store.query("n", *span)] == [{"w": 3.0}]
    finally:
        store.close()
