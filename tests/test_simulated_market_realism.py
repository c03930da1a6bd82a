"""The simulated market looks like the real one (MARKET.md), seen through the product's engine.

ATM IVs here are the engine's: its IV solver on the simulator's quoted prices, not the model's
own volatility. Right values are those of the default seed (7) at the stated moments.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from optui.collectors.engine import build_engine
from optui.config import Settings
from optui.models import Snapshot
from optui.simulator import calendar as cal
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.market import INDEX_ORDER, MarketModel
from optui.timeutil import IST

pytestmark = [pytest.mark.mock, pytest.mark.integration]


def collect(tmp_path: Path, start: str, indices: list[str] | None = None,
            full_chain_expiries: int = 0) -> Snapshot:
    """One engine cycle on the in-process simulator (seed 7) started at `start` IST."""
    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.store.url = f"sqlite:///{tmp_path / 'optui.db'}"
    s.export.out_dir = str(tmp_path / "out")
    s.simulator.start = start
    if indices is not None:
        s.source.indices = indices
    s.source.full_chain_expiries = full_chain_expiries
    engine = build_engine(s)
    try:
        return engine.collect_once()
    finally:
        engine.close()


def whole_chain_pcr(sim: SimulatedExchange, key: str) -> float:
    """Put-call ratio by OI over every listed strike of the nearest expiry of `key`."""
    rows = [r for r in sim.instruments() if r.index_key == key and r.instrument_type in ("CE", "PE")]
    expiry = min(r.expiry for r in rows if r.expiry is not None)
    rows = [r for r in rows if r.expiry == expiry]
    quotes = sim.quote([r.key for r in rows])
    calls = sum(quotes[r.key]["oi"] for r in rows if r.instrument_type == "CE")
    puts = sum(quotes[r.key]["oi"] for r in rows if r.instrument_type == "PE")
    return puts / calls


def test_atm_iv_by_index_follows_the_market(tmp_path: Path) -> None:
    snap = collect(tmp_path, "2026-11-25 10:00")
    # The monthlies of the NSE indices share one expiry (29 Dec): like for like.
    iv = {key: snap.indices[key].overview.buckets["this_month"].atm_iv
          for key in ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY")}
    assert snap.indices["NIFTY"].overview.buckets["this_month"].expiry == date(2026, 12, 29)
    assert snap.indices["BANKNIFTY"].overview.buckets["this_month"].expiry == date(2026, 12, 29)
    iv["SENSEX"] = snap.indices["SENSEX"].overview.buckets["next_month"].atm_iv  # 31 Dec
    assert iv["NIFTY"] == pytest.approx(9.16, abs=0.05)
    assert iv["BANKNIFTY"] == pytest.approx(11.05, abs=0.05)
    assert iv["FINNIFTY"] == pytest.approx(10.49, abs=0.05)
    assert iv["MIDCPNIFTY"] == pytest.approx(13.75, abs=0.05)
    assert iv["SENSEX"] == pytest.approx(9.63, abs=0.05)
    # MARKET.md: BANKNIFTY 1-4 points above NIFTY, MIDCPNIFTY higher still, FINNIFTY between,
    # SENSEX close to NIFTY.
    assert 1.0 <= iv["BANKNIFTY"] - iv["NIFTY"] <= 4.0
    assert iv["NIFTY"] < iv["FINNIFTY"] < iv["BANKNIFTY"] < iv["MIDCPNIFTY"]
    assert abs(iv["SENSEX"] - iv["NIFTY"]) <= 1.0


def test_index_vol_order_holds_every_day() -> None:
    model = MarketModel(seed=7)
    day, checked = date(2025, 1, 1), 0
    while day <= date(2027, 12, 31):
        if cal.is_trading_day(day):
            vol = {key: model.atm_vol(key, day) for key in INDEX_ORDER}
            assert vol["NIFTY"] < vol["FINNIFTY"] < vol["BANKNIFTY"] < vol["MIDCPNIFTY"], day
            assert 1.15 < vol["BANKNIFTY"] / vol["NIFTY"] < 1.4, day
            assert abs(vol["SENSEX"] / vol["NIFTY"] - 1.0) < 0.1, day
            checked += 1
        day = date.fromordinal(day.toordinal() + 1)
    assert checked > 700


def test_weekly_smile_is_curved_near_the_money(tmp_path: Path) -> None:
    # Monday 30 Nov 2026, the weekly expires on Tuesday 1 Dec: the chain once read a flat 9.1 %
    # from 26,400 to 26,650. IVs are the engine's, solved from the simulator's prices.
    snap = collect(tmp_path, "2026-11-30 10:00", ["NIFTY"], full_chain_expiries=1)
    nifty = snap.indices["NIFTY"]
    week = nifty.overview.buckets["this_week"]
    assert week.expiry == date(2026, 12, 1)
    atm = week.atm_iv
    assert atm == pytest.approx(9.21, abs=0.05)
    # Out of the money on each side: puts below the ATM strike, calls above.
    iv = {leg.strike_offset: leg.iv for leg in nifty.legs if leg.bucket == "this_week"
          and leg.side == ("PUT" if leg.strike < leg.atm_strike else "CALL")}
    assert iv["atm_m4"] == pytest.approx(10.12, abs=0.05)
    assert iv["atm_p4"] == pytest.approx(9.55, abs=0.05)
    assert iv["atm_m4"] - atm > 0.3 and iv["atm_p4"] - atm > 0.3
    assert iv["atm_m2"] - atm > 0.2  # the put side rises from the first strikes
    # Rising and convex away from the money, up to the 0.05-rupee rounding of a 2-rupee
    # option's price (about 0.05 vol points six strikes out).
    calls = [iv[f"atm_p{n}"] for n in range(1, 7)]
    puts = [iv[f"atm_m{n}"] for n in range(1, 7)]
    for wing in (calls, puts):
        assert (np.diff(wing) > 0).all() and (np.diff(wing, 2) > -0.05).all(), wing
    assert puts[3] - atm > calls[3] - atm  # the put wing is the steeper


def test_atm_iv_and_pcr_move_through_the_session(tmp_path: Path) -> None:
    morning = collect(tmp_path / "a", "2026-11-25 10:00", ["NIFTY"])
    afternoon = collect(tmp_path / "b", "2026-11-25 14:00", ["NIFTY"])
    iv_10 = morning.indices["NIFTY"].overview.buckets["this_week"].atm_iv
    iv_14 = afternoon.indices["NIFTY"].overview.buckets["this_week"].atm_iv
    assert iv_10 == pytest.approx(8.98, abs=0.05)
    assert iv_14 == pytest.approx(8.72, abs=0.05)
    # MARKET.md: ATM IV drifts through a session by a few tenths of a point.
    assert 0.1 <= abs(iv_14 - iv_10) <= 1.0
    pcr = []
    for hour in (10, 14):
        sim = SimulatedExchange(start=datetime(2026, 11, 25, hour, 0, tzinfo=IST),
                                clock=lambda: 0.0)
        pcr.append(whole_chain_pcr(sim, "NIFTY"))
    assert pcr[0] == pytest.approx(0.635, abs=0.005)
    assert pcr[1] == pytest.approx(0.667, abs=0.005)
    # Around MARKET.md's weekly 0.70, and moving with the index (it rose 0.85 % in between).
    assert all(0.4 < p < 1.2 for p in pcr)
    assert 0.02 <= pcr[1] - pcr[0] <= 0.3
    spot = [s.indices["NIFTY"].overview.last_price for s in (morning, afternoon)]
    assert spot[1] > spot[0]


def test_intraday_vol_drift_is_a_few_tenths() -> None:
    model = MarketModel(seed=7)
    drift = []
    day = date(2026, 6, 1)
    while len(drift) < 60:
        if cal.is_trading_day(day):
            path = model.atm_vol_path("NIFTY", day)
            drift.append(100.0 * abs(path[(14 * 60 - 555) * 60] - path[(10 * 60 - 555) * 60]))
        day = date.fromordinal(day.toordinal() + 1)
    assert 0.1 <= float(np.median(drift)) <= 0.5
    assert max(drift) < 1.5
