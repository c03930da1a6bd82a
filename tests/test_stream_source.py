"""The ticker as the engine's live path: streamed cycles equal polled ones value for value, the
REST tier takes over while the ticker is down, and every fault reaches the cycle's warnings."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.collectors.chain_plan import BucketPlan
from optui.collectors.engine import CollectionEngine
from optui.collectors.instruments import ExpiryChain
from optui.collectors.kite_source import KiteSource
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.source import quote_from_kite
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_plan import (
    MIXED,
    REST_FALLBACK,
    STREAM,
    feed_tier,
    stream_modes,
    ticker_root,
)
from optui.collectors.stream_source import StreamingSource
from optui.collectors.tick_aggregator import TickAggregator
from optui.collectors.tick_book import TickBook
from optui.config import Settings
from optui.errors import NetworkError, TokenExpiredError
from optui.models import Instrument, Quote, WarningKind
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import SimulatorServer, serve
from optui.simulator.ticker import exchange_frame
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, TickBatch, pack_frame, parse_frame
from optui.timeutil import IST

START = datetime(2026, 11, 25, 10, 0, tzinfo=IST)  # a Wednesday, mid-session
INDICES = ["NIFTY", "SENSEX"]  # an NFO and a BFO chain


class FakeClock:
    """A monotonic clock the test moves (the simulator's `clock`)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- units ------------------------------------------------------------------------------------

def _inst(token: int, strike: float, kind: str) -> Instrument:
    return Instrument(token, token // 256, f"NIFTY26DEC{int(strike)}{kind}", "NIFTY", 0.0, None,
                      strike, 0.05, 65, kind, "NFO-OPT", "NFO")


def _plan(strikes: list[float], base: int) -> BucketPlan:
    calls = {k: _inst(base + 2 * i, k, "CE") for i, k in enumerate(strikes)}
    puts = {k: _inst(base + 2 * i + 1, k, "PE") for i, k in enumerate(strikes)}
    chain = ExpiryChain(date(2026, 12, 1), np.array(strikes), calls, puts)
    return BucketPlan("NIFTY", "this_week", chain, np.array(strikes), 50.0, False)


def _spot(token: int, price: float) -> Quote:
    q = quote_from_kite({"instrument_token": token, "last_price": price})
    return q


@pytest.mark.unit
def test_modes_stream_spots_first_then_the_legs_nearest_the_money() -> None:
    strikes = [float(k) for k in range(25_000, 27_050, 50)]  # 41 strikes, 82 legs
    plans = {"NIFTY": [_plan(strikes, 10_000)]}
    spots = {"NIFTY": _spot(256_265, 26_010.0)}
    modes, left = stream_modes(plans, spots)
    assert left == 0 and len(modes) == 83 and set(modes.values()) == {"full"}
    modes, left = stream_modes(plans, spots, capacity=11)
    assert left == 72 and len(modes) == 11
    assert next(iter(modes)) == 256_265  # the spot first
    kept = {k for k, i in zip(strikes, range(41), strict=True)
            if 10_000 + 2 * i in modes and 10_000 + 2 * i + 1 in modes}
    assert kept == {25_900.0, 25_950.0, 26_000.0, 26_050.0, 26_100.0}  # ATM 26,000 +- 2 strikes


@pytest.mark.unit
def test_feed_tiers_and_ticker_urls() -> None:
    assert feed_tier(10, 0) == STREAM and feed_tier(10, 2) == MIXED
    assert feed_tier(0, 12) == REST_FALLBACK and feed_tier(0, 0) == REST_FALLBACK
    assert ticker_root("https://api.kite.trade") == "wss://ws.kite.trade"
    assert ticker_root("http://127.0.0.1:8765") == "ws://127.0.0.1:8765"


def _batch(rows: list[tuple[int, int, float, int, int]]) -> TickBatch:
    """Ticks of (token, mode, last price, volume, oi)."""
    b = TickBatch.empty(len(rows))
    for j, (tok, mode, last, vol, oi) in enumerate(rows):
        b.instrument_token[j], b.mode[j], b.last_price[j] = tok, mode, last
        if mode != MODE_LTP:
            b.volume[j], b.average_price[j], b.close[j] = vol, last, 100.0
        if mode == MODE_FULL:
            b.oi[j], b.exchange_timestamp[j] = oi, 1_764_045_000 + j
            b.depth_price[j, 0, 0], b.depth_price[j, 1, 0] = last - 0.5, last + 0.5
    return b


@pytest.mark.unit
def test_book_applies_repeated_frames_of_one_tick_per_instrument_as_ticks_one_by_one() -> None:
    a, b, c = 2 * 256 + 2, 3 * 256 + 2, 4 * 256 + 2
    frames = [[(a, MODE_FULL, 10.0, 100, 500), (b, MODE_QUOTE, 20.0, 7, 0)],
              [(a, MODE_LTP, 11.0, 0, 0), (b, MODE_FULL, 21.0, 9, 40)],  # the same tokens again
              [(c, MODE_FULL, 5.0, 1, 2), (a, MODE_QUOTE, 12.0, 150, 0)],
              [(a, MODE_LTP, 13.0, 0, 0), (a, MODE_FULL, 14.0, 160, 510)]]  # one repeats
    whole, single = TickBook(capacity=1), TickBook(capacity=1)
    names = [f for f in TickBatch.__slots__ if f != "skipped_packets"]  # type: ignore[attr-defined]
    for rows in frames:
        frame = _batch(rows)
        whole.add(frame)
        for j in range(len(frame)):
            single.add(TickBatch(*(getattr(frame, n)[j : j + 1] for n in names)))
        for t in (a, b, c):
            assert whole.quote(t) == single.quote(t)
        assert whole.ticks.tolist() == single.ticks.tolist()
        assert whole.live_mode.tolist() == single.live_mode.tolist()
    q = whole.quote(a)
    assert q is not None and q["last_price"] == 14.0 and q["oi"] == 510


@pytest.mark.unit
def test_a_batch_answers_whole_from_the_book_only_while_each_of_its_legs_is_live() -> None:
    """The lookups a batch keeps between cycles follow the subscriptions, the book's new rows,
    stale connections and a changed batch."""
    import asyncio
    from types import SimpleNamespace

    a, b, c = 2 * 256 + 2, 3 * 256 + 2, 4 * 256 + 2
    now = 1_764_045_010.0
    src = StreamingSource(SimulatedSource(seed=7, start=START, clock=FakeClock()), "k", "t", "ws://x")

    async def update(modes: object) -> None:
        shard.modes = dict(modes)  # type: ignore[call-overload]

    shard = SimpleNamespace(index=0, ws=object(), last_exchange_time=now, modes={})
    src.ticker = SimpleNamespace(shards=[shard], update=update)  # type: ignore[assignment]
    src._key_token.update({"NFO:A": a, "NFO:B": b, "NFO:C": c})
    src._modes = {a: "full", b: "full", c: "full"}
    asyncio.run(src._apply_modes(dict(src._modes)))
    src.book.add(_batch([(a, MODE_FULL, 10.0, 100, 500), (b, MODE_FULL, 20.0, 7, 40)]))

    def answered(batches: list[list[str]]) -> list[list[float]]:
        return [t.last_price.tolist() for t in src._streamed_tables(batches, 0, now)]

    assert answered([["NFO:A", "NFO:B"], ["NFO:C"]]) == [[10.0, 20.0]]  # C has no tick yet
    src.book.add(_batch([(c, MODE_QUOTE, 30.0, 1, 0)]))
    assert answered([["NFO:A", "NFO:B"], ["NFO:C"]]) == [[10.0, 20.0]]  # not yet in full mode
    src.book.add(_batch([(c, MODE_FULL, 31.0, 1, 0), (a, MODE_LTP, 11.0, 0, 0)]))
    assert answered([["NFO:A", "NFO:B"], ["NFO:C"]]) == [[11.0, 20.0], [31.0]]
    assert answered([["NFO:B", "NFO:A"], ["NFO:C"]]) == [[20.0, 11.0], [31.0]]  # other keys
    asyncio.run(src._apply_modes({a: "full", c: "full"}))  # B unsubscribed
    assert answered([["NFO:B", "NFO:A"], ["NFO:C"]]) == []
    assert answered([["NFO:A"], ["NFO:C"]]) == [[11.0], [31.0]]
    src.book.mark_stale([c])
    assert answered([["NFO:A"], ["NFO:C"]]) == [[11.0]]
    shard.last_exchange_time = now - 10.0  # the connection's ticks are too old
    assert answered([["NFO:A"], ["NFO:C"]]) == []


@pytest.mark.unit
def test_book_applies_a_frame_as_its_ticks_one_by_one() -> None:
    a, b = 2 * 256 + 2, 3 * 256 + 2
    rows = [(a, MODE_FULL, 10.0, 100, 500), (b, MODE_QUOTE, 20.0, 7, 0), (a, MODE_LTP, 11.0, 0, 0),
            (a, MODE_QUOTE, 12.0, 150, 0), (b, MODE_FULL, 21.0, 9, 40), (a, MODE_LTP, 13.0, 0, 0)]
    frame = parse_frame(pack_frame(_batch(rows)))  # packets grouped by layout: ltp, quote, full
    whole, single = TickBook(capacity=1), TickBook(capacity=1)
    whole.add(frame)
    names = [f for f in TickBatch.__slots__ if f != "skipped_packets"]  # type: ignore[attr-defined]
    for j in range(len(frame)):
        single.add(TickBatch(*(getattr(frame, n)[j : j + 1] for n in names)))
    assert whole.quote(a) == single.quote(a) and whole.quote(b) == single.quote(b)
    qa = whole.quote(a)
    assert qa is not None and qa["oi"] == 500 and qa["depth"]["buy"][0]["price"] == 9.5
    assert qa["volume"] == 100 and qa["last_price"] == 10.0  # the full tick comes last in the frame
    assert whole.quote(b) is not None and whole.quote(b)["oi"] == 40  # type: ignore[index]
    assert whole.quote(99) is None and whole.is_live([a, b, 99]).tolist() == [True, True, False]
    whole.mark_stale([a])
    assert whole.is_live([a, b]).tolist() == [False, True]


@pytest.mark.unit
def test_a_streamed_quote_is_the_polled_quote_of_the_same_moment() -> None:
    """Packets built from the simulator's quotes, parsed and read back as /quote entries, give
    the engine the same Quote as GET /quote at that moment, field for field."""
    exchange = SimulatedExchange(seed=7, start=START, clock=FakeClock())
    legs = [r for r in exchange.instruments() if r.instrument_type in ("CE", "PE")
            and r.index_key in INDICES][:300]
    keys = [f"{r.exchange}:{r.tradingsymbol}" for r in legs] + ["NSE:NIFTY 50", "BSE:SENSEX"]
    polled = exchange.quote(keys)
    tokens = {k: v["instrument_token"] for k, v in polled.items()}
    book = TickBook()
    book.add(parse_frame(exchange_frame(exchange, dict.fromkeys(tokens.values(), MODE_FULL))))
    differ = []
    for key, tok in tokens.items():
        one, two = quote_from_kite(polled[key]), quote_from_kite(book.quote(tok) or {})
        for f in dataclasses.fields(one):
            x, y = getattr(one, f.name), getattr(two, f.name)
            if not (x == y or (isinstance(x, float) and math.isnan(x) and math.isnan(y))):
                differ.append((key, f.name, x, y))
    assert len(tokens) == 302 and differ == []


@pytest.mark.unit
def test_tick_flow_agrees_with_the_rest_definition_on_the_same_minutes() -> None:
    """Premium flow from full-mode ticks (TickAggregator) against the REST path's leg_flow on
    polled quotes, over the same two simulated minutes of the 60 NIFTY legs nearest the money.

    Polled every second (the ticker's cadence) the two are the same computation: equal to 1e-9
    of the gross. Polled every 15 s (a collection cycle) the traded value (gross) agrees to
    0.5 % and net flow to 2 % of the gross (measured: 0.12 % and 0.09 %): the REST path
    classifies a 15 s batch of trades against one mid where the ticks classify each second's,
    and a VWAP revision clipped within a second nets out over 15 s."""
    clock = FakeClock()
    exchange = SimulatedExchange(seed=7, start=START, clock=clock)
    legs = [r for r in exchange.instruments("NFO") if r.index_key == "NIFTY"
            and r.instrument_type in ("CE", "PE")]
    expiry = min(r.expiry for r in legs if r.expiry)
    spot = exchange.quote(["NSE:NIFTY 50"])["NSE:NIFTY 50"]["last_price"]
    near = sorted((r for r in legs if r.expiry == expiry), key=lambda r: abs(r.strike - spot))[:60]
    keys = [f"NFO:{r.tradingsymbol}" for r in near]
    tokens = [r.instrument_token for r in near]
    agg = TickAggregator(tokens)
    rest: dict[int, list[np.ndarray]] = {1: [], 15: []}
    previous: dict[int, np.ndarray | None] = {1: None, 15: None}
    for second in range(121):
        clock.t = 1000.0 + second
        agg.add(parse_frame(exchange_frame(exchange, dict.fromkeys(tokens, MODE_FULL))))
        for cadence in (1, 15):
            if second % cadence:
                continue
            quotes = exchange.quote(keys)
            q = [quote_from_kite(quotes[k]) for k in keys]
            now = np.array([[x.average_price * x.volume, x.volume, x.bid, x.ask, x.last_price]
                            for x in q])
            before = previous[cadence]
            if before is not None:
                mid = prevailing_mid(before[:, 2], before[:, 3], before[:, 4])
                rest[cadence].append(np.array(leg_flow(
                    before[:, 0], before[:, 1], mid, before[:, 4], now[:, 0], now[:, 1],
                    now[:, 4], mid=prevailing_mid(now[:, 2], now[:, 3], now[:, 4]))))
            previous[cadence] = now
    order = np.argsort(tokens)  # the aggregator's rows are sorted by token
    tick_in, tick_out = np.zeros(60), np.zeros(60)
    tick_in[order], tick_out[order] = agg.inflow, agg.outflow
    for cadence, tolerance_gross, tolerance_net in ((1, 1e-9, 1e-9), (15, 5e-3, 0.02)):
        flows = np.sum(rest[cadence], axis=0)  # (in/out, leg)
        gross_tick = tick_in.sum() + tick_out.sum()
        gross_rest = flows[0].sum() + flows[1].sum()
        assert gross_tick > 1e7  # crores traded: something to compare
        assert abs(gross_rest - gross_tick) <= tolerance_gross * gross_tick, cadence
        net_tick, net_rest = tick_in.sum() - tick_out.sum(), flows[0].sum() - flows[1].sum()
        assert abs(net_rest - net_tick) <= tolerance_net * gross_tick, (cadence, net_tick, net_rest)
    assert np.allclose(np.sum(rest[1], axis=0)[0], tick_in, rtol=1e-9, atol=1e-6)


# -- the engine over the ticker on loopback (integration) ------------------------------------------

def _settings(indices: list[str] = INDICES) -> Settings:
    s = Settings()
    s.source.indices = list(indices)
    s.source.interval_s = 5.0
    s.participants.enabled = False
    s.record.enabled = False
    return s


def dump(store: SQLiteStore) -> dict[str, list[tuple[Any, ...]]]:
    lo, hi = START - timedelta(days=3), START + timedelta(days=3)
    return {m: sorted((r.time, sorted(r.tags.items()), sorted(r.fields.items()))
                      for r in store.query(m, lo, hi)) for m in (LEGS, OVERVIEW, FLOW)}


class Streamed:
    """A simulated exchange served on loopback, a StreamingSource on it, and its engine."""

    def __init__(self, root: Path, kind: str = "sim", token: str = "sim_token",
                 stall_after_s: float = 10.0, indices: list[str] = INDICES) -> None:
        self.clock = FakeClock()
        sim = SimulatedSource(seed=7, start=START, clock=self.clock)
        self.exchange = sim.exchange
        self.server: SimulatorServer = serve(self.exchange, "127.0.0.1", 0)
        self.server.tick_interval = 0.25
        rest: Any = sim
        if kind == "kite":
            rest = KiteSource("sim_key", "sim_token", root=self.server.url)
        ws = self.server.url.replace("http://", "ws://", 1)
        self.source = StreamingSource(rest, "sim_key", token, ws, server=self.server,
                                      stall_after_s=stall_after_s, backoff_base_s=0.05,
                                      backoff_max_s=0.2)
        self.store = SQLiteStore(root / "stream.db")
        self.engine = CollectionEngine(_settings(indices), self.source, self.store,
                                       state_dir=root / "state")

    def step(self, seconds: float = 5.0, catch_up: bool = True) -> None:
        self.clock.t += seconds
        if catch_up:
            assert wait_caught_up(self.source, self.exchange.now()), "the stream did not catch up"

    def close(self) -> None:
        self.engine.close()


@pytest.fixture
def streamed(tmp_path: Path) -> Iterator[Streamed]:
    s = Streamed(tmp_path)
    yield s
    s.close()


@pytest.mark.integration
def test_streamed_cycles_store_what_polled_cycles_store(streamed: Streamed, tmp_path: Path) -> None:
    """The same simulated minutes collected over the ticker and over REST alone: the stored
    overview, legs and flow are equal value for value; from the second cycle every quote is
    streamed; the cycle is dated by the polled index spots, as without the ticker."""
    clock = FakeClock()
    polled = CollectionEngine(_settings(), SimulatedSource(seed=7, start=START, clock=clock),
                              SQLiteStore(tmp_path / "rest.db"), state_dir=tmp_path / "rest-state")
    feeds = []
    for cycle in range(5):
        if cycle:
            clock.t += 5.0
            streamed.step(5.0)
        snap = streamed.engine.collect_once()
        rest_snap = polled.collect_once()
        stats = streamed.engine.last
        feeds.append((stats.feed, stats.streamed, stats.instruments))
        assert snap.timestamp == rest_snap.timestamp == START + timedelta(seconds=5 * cycle)
        assert polled.last.feed == ""
    assert feeds[0][0] in (REST_FALLBACK, MIXED)  # the ticker starts with the first plan
    # The spots are polled (they date the cycle); every leg is streamed.
    assert all(f == STREAM and n == total - 2 > 1000 for f, n, total in feeds[1:]), feeds
    one, two = dump(streamed.store), dump(polled.store)  # type: ignore[arg-type]
    polled.close()
    cycles = {START + timedelta(seconds=5 * c) for c in range(4)}
    assert cycles <= {row[0] for row in one[OVERVIEW]} and len(one[LEGS]) > 0
    for measurement in (LEGS, OVERVIEW, FLOW):
        assert one[measurement] == two[measurement], measurement


@pytest.mark.integration
@pytest.mark.chaos
def test_rest_takes_over_while_the_ticker_is_down_and_the_gap_is_reported(
        streamed: Streamed) -> None:
    source, engine = streamed.source, streamed.engine
    engine.collect_once()
    streamed.step()
    engine.collect_once()
    assert engine.last.feed == STREAM
    streamed.server.close()  # every connection dropped, the port closed: REST still answers
    streamed.step(catch_up=False)
    assert wait_caught_up(source, streamed.exchange.now(), timeout_s=0.5) is False
    snap = engine.collect_once()
    assert engine.last.feed == REST_FALLBACK and engine.last.streamed == 0
    texts = [w for w in snap.warnings if w.kind == WarningKind.STREAM]
    assert any("lost" in w and "polled over REST meanwhile" in w for w in texts), texts
    assert any(w.startswith("feed: rest-fallback") for w in texts), texts
    assert len(snap.indices) == 2 and snap.leg_count > 0  # collection went on
    # The exchange comes back on the same port: the ticker reconnects, resubscribes, and the gap
    # it could not see is named with its exchange times.
    port = int(streamed.server.url.rsplit(":", 1)[1])
    streamed.server = serve(streamed.exchange, "127.0.0.1", port)
    streamed.server.tick_interval = 0.05
    source._server = streamed.server
    streamed.step()
    snap = engine.collect_once()
    texts = [w for w in snap.warnings if w.kind == WarningKind.STREAM]
    assert engine.last.feed == STREAM
    gap = [w for w in texts if "no ticks 10:00:05-10:00:15 IST" in w]
    assert gap and all("gap stays a gap" in w for w in gap), texts
    assert any(w.startswith("feed: stream (all") for w in texts), texts


@pytest.mark.integration
def test_a_refused_token_leaves_the_cycles_to_rest(tmp_path: Path) -> None:
    """Kite's REST API through the official client on loopback, the ticker beside it refusing
    the token: cycles are polled and say why; a new login streams again."""
    s = Streamed(tmp_path, kind="kite", token="expired", indices=["SENSEX"])
    try:
        warnings = list(s.engine.collect_once().warnings)
        s.step(catch_up=False)
        for _ in range(200):  # until every connection has been refused
            if s.source._refused:
                break
            time.sleep(0.05)
        snap = s.engine.collect_once()
        warnings += snap.warnings
        assert s.engine.last.feed == REST_FALLBACK and snap.leg_count > 0
        refused = [w for w in warnings if "access token refused (HTTP 403); streaming stopped "
                   "until a new login" in w]
        assert len(refused) == 3, warnings  # each connection says so once
        s.source.set_access_token("sim_token")  # a new login: the ticker reconnects with it
        s.step()
        s.engine.collect_once()
        assert s.engine.last.feed == STREAM
    finally:
        s.close()


@pytest.mark.integration
@pytest.mark.mock
def test_bad_ticker_input_is_named_in_the_cycle_and_collection_goes_on(tmp_path: Path) -> None:
    """A truncated frame, a frame of an instrument never subscribed, an exchange error frame and
    a connection that goes silent without closing each become a warning saying what was done."""
    s = Streamed(tmp_path, stall_after_s=2.0)
    try:
        s.engine.collect_once()
        s.step()
        s.engine.collect_once()
        assert s.engine.last.feed == STREAM
        session = s.server.sessions()[0]
        stray = TickBatch.empty(1)
        stray.instrument_token[0], stray.last_price[0] = 77 * 256 + 2, 5.0
        session.send_raw(b"\x00\x02\x00\xb8\x00")  # two packets announced, one cut short
        session.send_raw(pack_frame(stray))
        session.send_text({"type": "error", "data": "Order book unavailable"})
        s.step()
        snap = s.engine.collect_once()
        texts = [w for w in snap.warnings if w.kind == WarningKind.STREAM]
        assert any("bad binary frame skipped (packet 1 of 2 claims 184 bytes; 1 remain)" in w
                   and "collection goes on" in w for w in texts), texts
        assert any("1 tick(s) of instruments not subscribed on their connection ignored" in w
                   for w in texts), texts
        assert any("exchange error: Order book unavailable" in w for w in texts), texts
        assert s.engine.last.feed == STREAM and snap.leg_count > 0
        # REST fails while the ticker streams: the spots come from their ticks too; a rejected
        # login still pauses collection.
        polled = s.source.rest.quote_batch

        calls: list[list[str]] = []

        def failing(keys: list[str]) -> dict:
            calls.append(keys)
            raise NetworkError("quote: cannot reach Kite (ConnectionError)")

        s.source.rest.quote_batch = failing  # type: ignore[method-assign]
        s.step()
        snap = s.engine.collect_once()
        assert calls and s.engine.last.feed == STREAM and snap.leg_count > 0
        said = [*snap.warnings, *s.source.take_notices()]
        assert any("index spots streamed: their REST call failed (quote: cannot reach Kite" in w
                   for w in said), (said, calls)

        def refused(keys: list[str]) -> dict:
            raise TokenExpiredError("quote: Kite access token is invalid or expired")

        s.source.rest.quote_batch = refused  # type: ignore[method-assign]
        with pytest.raises(TokenExpiredError):
            s.engine.collect_once()
        s.source.rest.quote_batch = polled  # type: ignore[method-assign]
        session.paused.set()  # alive but silent: no ticks, no heartbeats
        for _ in range(300):
            if any(st.stalls for st in s.source.ticker.stats):  # type: ignore[union-attr]
                break
            time.sleep(0.05)
        snap = s.engine.collect_once()
        texts = [w for w in snap.warnings if w.kind == WarningKind.STREAM]
        assert any("stalled: no data or heartbeat for 2 s; reconnecting" in w for w in texts), texts
        assert snap.leg_count > 0
    finally:
        s.close()


@pytest.mark.unit
def test_stream_is_on_by_default_for_the_simulator_and_off_keeps_pure_rest(tmp_path: Path) -> None:
    from optui.collectors.make_source import with_stream
    from optui.collectors.recording import RecordingSource

    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    assert settings.source.stream is True
    sim = SimulatedSource(seed=7, start=START, clock=FakeClock())
    streamed = with_stream(settings, sim, simulated=True)
    try:
        assert isinstance(streamed, StreamingSource) and streamed.recorder is not None
        assert streamed.label == "SIMULATED" and streamed.name == "sim"
        assert streamed.recorder.directory == tmp_path / "sim" / "recordings"
        assert streamed._root.startswith("ws://127.0.0.1:")
    finally:
        streamed.close()
    settings.source.stream = False
    polled = with_stream(settings, SimulatedSource(seed=7, start=START, clock=FakeClock()), True)
    assert isinstance(polled, RecordingSource)
    polled.close()
