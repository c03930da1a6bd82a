"""The previous session's closing OI and index closes, captured before the open, anchor OI change."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from optui.collectors.closing_oi import (
    CLOSING_OI,
    INDEX_CLOSE,
    close_time,
    load_closing_oi,
    load_index_closes,
)
from optui.collectors.engine import CollectionEngine
from optui.collectors.kite_source import KiteSource
from optui.collectors.premarket import CaptureFailed, CaptureStored, PremarketCapture
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.source import MarketSource
from optui.config import Settings
from optui.indices import INDEX_SPECS
from optui.models import Quote
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import serve
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

MONDAY, HOLIDAY, WEDNESDAY = date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)  # 24th: Guru Nanak Jayanti
CHRISTMAS_EVE, AFTER_CHRISTMAS = date(2026, 12, 24), date(2026, 12, 28)  # Fri 25th holiday + weekend


def _settings() -> Settings:
    s = Settings()
    s.source.indices = ["NIFTY", "BANKNIFTY"]
    return s


def _sim(at: datetime) -> SimulatedSource:
    return SimulatedSource(seed=7, start=at, clock=lambda: 0.0)


def _capture(store: SQLiteStore, source: MarketSource, at: datetime, settings: Settings | None = None,
             tmp: Path | None = None) -> CollectionEngine:
    """The 08:00 IST capture on the exchange clock, as `optui collect` runs it before the open."""
    settings = settings or _settings()
    engine = CollectionEngine(settings, source, store, state_dir=tmp)
    engine.premarket = PremarketCapture(store, engine._calendar())  # local files only
    engine.tick_premarket(at)
    return engine


def _close_quotes(trade_date: date, tokens: set[int]) -> tuple[dict[int, Quote], dict[str, float]]:
    """The last quotes of `trade_date`'s session (at 15:30 IST) of `tokens`, and the index spots."""
    source = _sim(datetime.combine(trade_date, time(15, 30), tzinfo=IST))
    keys = [i.key for i in source.instruments() if i.instrument_token in tokens]
    quotes = source.quotes(keys)
    spots = source.quotes([INDEX_SPECS[k].spot_symbol for k in _settings().source.indices])
    source.close()
    return ({q.instrument_token: q for q in quotes.values()},
            {k: spots[INDEX_SPECS[k].spot_symbol].last_price for k in _settings().source.indices})


def _assert_matches_close(store: SQLiteStore, trade_date: date) -> dict[int, float]:
    stored = load_closing_oi(store, trade_date)
    quotes, spots = _close_quotes(trade_date, set(stored))
    assert len(quotes) > 100 and set(quotes) <= set(stored)
    assert {t: stored[t] for t in quotes} == {t: float(q.oi) for t, q in quotes.items()}
    # The rest are contracts first listed after that session (the new weekly expiry).
    assert any(v > 0 for v in stored.values())
    assert load_index_closes(store, trade_date) == pytest.approx(spots)
    for index in _settings().source.indices:
        rows = store.query(CLOSING_OI, close_time(trade_date), close_time(trade_date) + timedelta(seconds=1),
                           tags={"index": index})
        assert rows and {r.tags["side"] for r in rows} == {"CE", "PE"}
    return stored


@pytest.mark.integration
def test_capture_at_eight_stores_the_previous_sessions_closing_oi_and_index_closes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    at = datetime.combine(WEDNESDAY, time(8, 0), tzinfo=IST)
    source = _sim(at)
    engine = _capture(store, source, at)
    stored = _assert_matches_close(store, MONDAY)
    assert isinstance(engine.premarket.events[-1], CaptureStored)
    assert engine.premarket.events[-1].parts == ("closes",)
    # A re-capture replaces: same rows, no duplicates.
    count = len(store.query(CLOSING_OI, close_time(MONDAY), close_time(MONDAY) + timedelta(seconds=1)))
    engine.capture_closes(at + timedelta(minutes=30))
    again = store.query(CLOSING_OI, close_time(MONDAY), close_time(MONDAY) + timedelta(seconds=1))
    assert len(again) == count == len(stored)
    # Before 08:00 the scheduler takes nothing; after the open no quote carries the close.
    empty = SQLiteStore(tmp_path / "y.db")
    _capture(empty, source, at - timedelta(minutes=1))
    assert load_closing_oi(empty, MONDAY) == {}
    assert CollectionEngine(_settings(), source, empty).capture_closes(
        datetime.combine(WEDNESDAY, time(9, 15), tzinfo=IST)) is None
    source.close()
    store.close()
    empty.close()


@pytest.mark.integration
def test_capture_through_the_kite_client_against_the_simulator(tmp_path: Path) -> None:
    at = datetime.combine(WEDNESDAY, time(8, 0), tzinfo=IST)
    server = serve(SimulatedExchange(seed=7, start=at, clock=lambda: 0.0), "127.0.0.1", 0)
    store = SQLiteStore(tmp_path / "x.db")
    try:
        kite = KiteSource("sim_key", "sim_token", root=server.url, cache_dir=tmp_path / "instruments")
        kite.instruments()  # the client's exchange clock follows the server's Date header
        assert kite.now().astimezone(IST).replace(second=0, microsecond=0) == at
        engine = _capture(store, kite, kite.now())
        assert isinstance(engine.premarket.events[-1], CaptureStored), engine.premarket.events
    finally:
        server.close()
    _assert_matches_close(store, MONDAY)
    store.close()


@pytest.mark.integration
def test_after_a_long_weekend_the_capture_takes_the_last_trading_days_close(tmp_path: Path) -> None:
    at = datetime.combine(AFTER_CHRISTMAS, time(8, 0), tzinfo=IST)
    store = SQLiteStore(tmp_path / "x.db")
    source = _sim(at)
    engine = _capture(store, source, at)
    assert isinstance(engine.premarket.events[-1], CaptureStored)
    assert engine.premarket.events[-1].trade_date == CHRISTMAS_EVE
    _assert_matches_close(store, CHRISTMAS_EVE)
    source.close()
    store.close()


@pytest.mark.integration
def test_on_a_holiday_nothing_is_captured_and_the_next_day_takes_the_day_before_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    at = datetime.combine(HOLIDAY, time(8, 0), tzinfo=IST)
    source = _sim(at)
    engine = _capture(store, source, at)
    assert engine.premarket.events == []
    assert store.query(INDEX_CLOSE, close_time(MONDAY) - timedelta(days=9), close_time(WEDNESDAY)) == []
    source.close()
    store.close()


class _NoNiftyClose(SimulatedSource):
    """The simulator with the NIFTY spot's previous close missing from its quote."""

    def quotes(self, keys):  # type: ignore[no-untyped-def]
        from dataclasses import replace

        spot = INDEX_SPECS["NIFTY"].spot_symbol
        return {k: replace(q, close=float("nan")) if k == spot else q
                for k, q in super().quotes(keys).items()}


@pytest.mark.integration
def test_a_quote_without_a_close_is_a_failed_capture_and_stores_nothing(tmp_path: Path) -> None:
    at = datetime.combine(WEDNESDAY, time(8, 0), tzinfo=IST)
    source = _NoNiftyClose(seed=7, start=at, clock=lambda: 0.0)
    store = SQLiteStore(tmp_path / "x.db")
    engine = _capture(store, source, at)
    event = engine.premarket.events[-1]
    assert isinstance(event, CaptureFailed) and event.missing == ("closes",)
    assert "NIFTY: no previous close" in event.message()
    assert load_closing_oi(store, MONDAY) == {} and load_index_closes(store, MONDAY) == {}
    source.close()
    store.close()


def _legs(snap) -> dict[tuple[str, str, str, float], tuple[float, float]]:  # type: ignore[no-untyped-def]
    return {(k, leg.bucket, leg.side, leg.strike): (leg.oi_change, leg.oi_open)
            for k, idx in snap.indices.items() for leg in idx.legs}


@pytest.mark.integration
def test_a_collector_first_started_at_eleven_measures_oi_change_from_the_previous_close(tmp_path: Path) -> None:
    eleven = datetime.combine(WEDNESDAY, time(11, 0), tzinfo=IST)
    # Ran through Tuesday: its last cycle at the close leaves the state file with oi_last.
    ran = tmp_path / "ran"
    tuesday_close = _sim(datetime.combine(MONDAY, time(15, 30), tzinfo=IST))
    CollectionEngine(_settings(), tuesday_close, None, state_dir=ran).collect_once()
    tuesday_close.close()
    through = CollectionEngine(_settings(), _sim(eleven), None, state_dir=ran).collect_once()

    # A new machine: the 08:00 capture went to the shared store, the collector starts at 11:00.
    store = SQLiteStore(tmp_path / "x.db")
    early = _sim(datetime.combine(WEDNESDAY, time(8, 0), tzinfo=IST))
    _capture(store, early, early.now())
    early.close()
    late = CollectionEngine(_settings(), _sim(eleven), store, state_dir=tmp_path / "new").collect_once()

    expected, got = _legs(through), _legs(late)
    assert got == expected and len(got) > 20
    closing = load_closing_oi(store, MONDAY)
    assert all(oi_open in closing.values() for _, oi_open in got.values())
    assert any(chg != 0 for chg, _ in got.values())
    # Without the stored close the day's first OI is the reference: every change reads 0.
    bare = CollectionEngine(_settings(), _sim(eleven), None, state_dir=tmp_path / "bare").collect_once()
    assert all(chg == 0 for chg, _ in _legs(bare).values())


@pytest.mark.unit
def test_an_older_state_file_is_not_the_previous_close(tmp_path: Path) -> None:
    from optui.collectors.day_state import DayState

    (tmp_path / "state_2026-11-17.json").write_text('{"oi_last": {"5": 100.0}}')
    assert DayState.load(WEDNESDAY, tmp_path, previous_day=MONDAY).oi_prev_close == {}
    (tmp_path / "state_2026-11-24.json").write_text('{"oi_last": {"5": 120.0, "6": 7.0}}')
    state = DayState.load(WEDNESDAY, tmp_path, previous_day=MONDAY, closing_oi=lambda: {5: 130.0})
    assert state.oi_prev_close == {5: 130.0, 6: 7.0}
    assert state.reference_oi(6, 50.0) == 7.0 and state.reference_oi(9, 50.0) == 50.0
    assert datetime.combine(MONDAY, time(15, 30), tzinfo=IST).astimezone(UTC) == close_time(MONDAY)
