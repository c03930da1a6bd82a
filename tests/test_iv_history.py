"""iv_daily from collection (the session's last ATM IV), and backfill through kiteconnect."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from kiteconnect import KiteConnect
from kiteconnect.exceptions import InputException

from optui.collectors.engine import build_engine
from optui.collectors.iv_backfill import atm_iv_from_closes, backfill_iv
from optui.config import Settings
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter, serve
from optui.storage.iv_history import IV_DAILY, day_time, iv_history, iv_point
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

pytestmark = [pytest.mark.integration]


def _settings(tmp_path: Path) -> Settings:
    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.store.url = f"sqlite:///{tmp_path / 'optui.db'}"
    s.export.out_dir = str(tmp_path / "out")
    s.export.write_json = s.export.write_csv = False
    s.simulator.start = "2026-11-25 15:20"
    s.simulator.speed = 0.01
    s.source.indices = ["NIFTY"]
    return s


def test_close_is_the_last_in_session_cycle_and_recollection_replaces(tmp_path: Path) -> None:
    eng = build_engine(_settings(tmp_path))
    try:
        ex = eng.source.exchange
        seen = []
        for at in ("15:20", "15:29", "15:30", "15:45"):  # 15:45: after the close
            ex.set_time(datetime.fromisoformat(f"2026-11-25T{at}:00+05:30"))
            seen.append(eng.collect_once().indices["NIFTY"].overview.buckets)
        rows = eng.store.query(IV_DAILY, day_time(date(2026, 11, 25)),
                               day_time(date(2026, 11, 26)), {"index": "NIFTY"})
        assert {r.tags["bucket"] for r in rows} == set(seen[2])
        for r in rows:  # the 15:30 cycle's ATM IV, not the post-close one
            assert r.fields["atm_iv"] == pytest.approx(seen[2][r.tags["bucket"]].atm_iv)
            assert r.fields["origin"] == "collect"
        assert datetime.fromtimestamp(float(rows[0].fields["at_s"]), IST).strftime("%H:%M") == "15:30"
        # Collecting the same day again at 15:25 replaces the stored close with that cycle.
        ex.set_time(datetime.fromisoformat("2026-11-25T15:25:00+05:30"))
        again = eng.collect_once().indices["NIFTY"].overview.buckets["this_week"]
        hist = iv_history(eng.store, "NIFTY", "this_week", date(2026, 11, 26))
        assert len(hist) == 1 and hist[0].atm_iv == pytest.approx(again.atm_iv)
    finally:
        eng.close()


@pytest.fixture
def sim_kite():
    ex = SimulatedExchange(seed=7, start=datetime(2026, 8, 19, 11, 0, tzinfo=IST))
    server = serve(ex, limiter=RateLimiter({"quote": 100, "historical": 1000, "other": 1000}))
    try:
        yield ex, KiteConnect("sim_key", access_token="sim_token", root=server.url)
    finally:
        server.close()


def test_historical_candles_through_kiteconnect(sim_kite) -> None:
    ex, kite = sim_kite
    nifty = kite.ltp(["NSE:NIFTY 50"])["NSE:NIFTY 50"]["instrument_token"]
    candles = kite.historical_data(nifty, "2026-08-10", "2026-08-19", "day", oi=True)
    # Up to the last completed session (19 Aug is still trading at 11:00), trading days only.
    assert [c["date"].date() for c in candles] == [date(2026, 8, d) for d in (10, 11, 12, 13, 14, 17, 18)]
    assert candles[-1]["close"] == pytest.approx(ex.market.close("NIFTY", date(2026, 8, 18)))
    assert candles[0]["date"].utcoffset() == timedelta(hours=5, minutes=30)
    option = next(r for r in ex.instruments("NFO") if r.index_key == "NIFTY"
                  and r.instrument_type == "PE" and r.expiry == date(2026, 8, 25))
    legs = kite.historical_data(option.instrument_token, "2026-08-17", "2026-08-18", "day", oi=True)
    assert len(legs) == 2 and all(c["oi"] >= 0 and c["close"] > 0 for c in legs)
    with pytest.raises(InputException, match="futures only"):
        kite.historical_data(option.instrument_token, "2026-08-17", "2026-08-18", "day",
                             continuous=True, oi=True)
    with pytest.raises(InputException, match="invalid token"):
        kite.historical_data(1, "2026-08-17", "2026-08-18", "day")


def test_backfill_through_kiteconnect_keeps_collected_days(sim_kite) -> None:
    ex, kite = sim_kite
    store = SQLiteStore(":memory:")
    collected = date(2026, 8, 14)
    store.write([iv_point("NIFTY", "this_week", collected,
                          {"atm_iv": 42.0, "spot": 1.0, "origin": "collect"})])
    report = backfill_iv(kite, store, ["NIFTY"], date(2026, 8, 10), date(2026, 8, 18), 0.065)
    text = "\n".join(report.lines())
    assert not report.problems, text
    assert "expired options are not available" in text
    week = next(r for r in report.results if r.bucket == "this_week")
    assert week.expiry == date(2026, 8, 25) and week.iv_days == 6 and week.kept_collected == 1
    hist = {h.day: h for h in iv_history(store, "NIFTY", "this_week", date(2026, 8, 19))}
    assert hist[collected].atm_iv == 42.0  # a collected close is never overwritten
    # Each backfilled day's IV is the product's solver on that day's closes.
    day = date(2026, 8, 18)
    spot = ex.market.close("NIFTY", day)
    chain = [r for r in ex.instruments("NFO") if r.index_key == "NIFTY" and r.expiry == week.expiry]
    atm = min({r.strike for r in chain}, key=lambda k: abs(k - spot))
    closes = {r.instrument_type: kite.historical_data(r.instrument_token, "2026-08-18",
                                                      "2026-08-18", "day")[0]["close"]
              for r in chain if r.strike == atm}
    want = atm_iv_from_closes(spot, atm, closes["CE"], closes["PE"], week.expiry, day, 0.065)
    assert hist[day].atm_iv == pytest.approx(want) and hist[day].origin == "backfill"
    # Close to the simulator's own ATM volatility of that day (percent).
    assert abs(hist[day].atm_iv - 100 * ex.market.atm_vol("NIFTY", day)) < 2.5
    assert all(math.isfinite(h.spot) for h in hist.values())


@pytest.mark.parametrize("backend", ["sqlite", "influx"])
def test_iv_daily_same_on_both_backends(backend: str, request: pytest.FixtureRequest,
                                        tmp_path: Path) -> None:
    from optui.storage.influx_store import InfluxStore

    if backend == "influx":
        url = request.getfixturevalue("influx_server")
        store = InfluxStore(url, database="optui_iv_daily", spool_dir=tmp_path / "spool")
        store.init_database()
    else:
        store = SQLiteStore(tmp_path / "iv.db")
    with store:
        day = date(2026, 8, 17)
        store.write([iv_point("NIFTY", "this_week", day, {"atm_iv": 11.0, "spot": 24000.0,
                                                          "origin": "collect"})])
        # The same day again replaces it (identity: index, bucket, 00:00 IST of the day).
        store.write([iv_point("NIFTY", "this_week", day, {"atm_iv": 12.5, "spot": 24100.0,
                                                          "origin": "collect"}),
                     iv_point("NIFTY", "this_week", day + timedelta(days=1),
                              {"spot": 24200.0, "origin": "backfill"})])
        closes = iv_history(store, "NIFTY", "this_week", day + timedelta(days=2))
    assert [(c.day, c.spot, c.origin) for c in closes] == [
        (day, 24100.0, "collect"), (day + timedelta(days=1), 24200.0, "backfill")]
    assert closes[0].atm_iv == 12.5 and math.isnan(closes[1].atm_iv)


def test_no_close_from_a_holiday_or_outside_the_session() -> None:
    from optui.models import BucketStats, IndexSnapshot, OverviewRecord, Snapshot
    from optui.storage.iv_history import iv_daily_points

    def snap(at: str) -> Snapshot:
        t = datetime.fromisoformat(at)
        b = BucketStats("this_week", date(2026, 12, 1), 6.0, 26000.0, 26000.0, 11.0, 11.0, 300.0,
                        1.0, 1.0, 26000.0, 0.5, 1.0, 1.0, 0.0, 0.0, 50)
        ov = OverviewRecord(t, "NIFTY", 26000.0, 26000.0, *([math.nan] * 10), buckets={"this_week": b})
        return Snapshot(t, "sim", {"NIFTY": IndexSnapshot("NIFTY", ov)})

    assert len(iv_daily_points(snap("2026-11-25T15:30:00+05:30"))) == 1
    assert iv_daily_points(snap("2026-11-25T15:30:01+05:30")) == []
    assert iv_daily_points(snap("2026-11-25T09:14:00+05:30")) == []
    assert iv_daily_points(snap("2026-11-28T11:00:00+05:30")) == []  # a Saturday
