"""The simulated market is a model: smile-consistent prices, parity, growing volume, stable OI."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from optui.analytics.black_scholes import black76_price, implied_volatility_black76
from optui.simulator import calendar as cal
from optui.simulator.chain import fair_prices, years_left
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.market import DIV_YIELD, DYNAMICS, INDEX_ORDER, RATE, session_point
from optui.simulator.smile import (
    MONTHLY_TABLE,
    MONTHLY_YEARS,
    SMILE_X,
    WEEKLY_TABLE,
    WEEKLY_YEARS,
    smile_ratio,
    smile_vol,
)
from optui.timeutil import IST

pytestmark = [pytest.mark.unit, pytest.mark.mock]

DAY = date(2026, 11, 17)
MID_SESSION = datetime(2026, 11, 17, 11, 30, tzinfo=IST)


class FakeClock:
    """Real seconds elapsed, advanced by hand."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def sim() -> SimulatedExchange:
    return SimulatedExchange(seed=11, start=MID_SESSION, clock=lambda: 0.0)


def _chain_keys(sim: SimulatedExchange, key: str, nth_expiry: int = 0) -> tuple[date, list]:
    rows = [r for r in sim.instruments() if r.index_key == key and r.instrument_type in ("CE", "PE")]
    expiry = sorted({r.expiry for r in rows})[nth_expiry]
    return expiry, [r for r in rows if r.expiry == expiry]


def _mid(q: dict) -> float:
    return (q["depth"]["buy"][0]["price"] + q["depth"]["sell"][0]["price"]) / 2.0


def test_same_seed_same_market_other_seed_other_market() -> None:
    keys = ["NSE:NIFTY 50", "BSE:SENSEX", "NFO:NIFTY26N2426000CE"]
    a = SimulatedExchange(seed=3, start=MID_SESSION, clock=lambda: 0.0)
    b = SimulatedExchange(seed=3, start=MID_SESSION, clock=lambda: 0.0)
    c = SimulatedExchange(seed=4, start=MID_SESSION, clock=lambda: 0.0)
    keys[2] = next(r.key for r in a.instruments("NFO") if r.instrument_type == "CE")
    assert a.quote(keys) == b.quote(keys)
    assert a.instruments_csv() == b.instruments_csv()
    assert a.ltp(keys[:1]) != c.ltp(keys[:1])


def test_index_levels_are_realistic(sim: SimulatedExchange) -> None:
    spots = {"NIFTY": "NSE:NIFTY 50", "BANKNIFTY": "NSE:NIFTY BANK",
             "FINNIFTY": "NSE:NIFTY FIN SERVICE", "MIDCPNIFTY": "NSE:NIFTY MID SELECT",
             "SENSEX": "BSE:SENSEX"}
    quotes = sim.quote(list(spots.values()))
    for key, symbol in spots.items():
        q = quotes[symbol]
        assert 0.85 < q["last_price"] / DYNAMICS[key].level < 1.15
        assert q["ohlc"]["low"] <= q["last_price"] <= q["ohlc"]["high"]
        assert q["net_change"] == pytest.approx(q["last_price"] - q["ohlc"]["close"], abs=0.011)


def test_implied_vol_of_mid_lies_on_the_smile_and_parity_holds(sim: SimulatedExchange) -> None:
    expiry, rows = _chain_keys(sim, "NIFTY", 1)
    spot = sim.ltp(["NSE:NIFTY 50"])["NSE:NIFTY 50"]["last_price"]
    near = [r for r in rows if abs(r.strike - spot) <= 600]
    quotes = sim.quote([r.key for r in near])
    day, second = session_point(sim.now())
    t = float(years_left(expiry, float(second), day))
    fwd = float(sim.market.forward(spot, t))
    atm = float(sim.market.atm_vol_at("NIFTY", day, second))
    checked = 0
    for r in near:
        price = _mid(quotes[r.key])
        is_call = r.instrument_type == "CE"
        if price < 5 or (r.strike < fwd) == is_call:  # out of the money: IV well determined
            continue
        iv = brentq(lambda v, r=r, c=is_call, p=price: float(
            black76_price(fwd, r.strike, t, v, RATE, c)) - p, 1e-3, 3.0)
        assert iv == pytest.approx(float(smile_vol(atm, r.strike, fwd, t)), abs=0.005)
        checked += 1
    assert checked >= 10
    by_strike: dict[float, dict[str, float]] = {}
    for r in near:
        by_strike.setdefault(r.strike, {})[r.instrument_type] = _mid(quotes[r.key])
    df = np.exp(-RATE * t)
    for strike, pair in by_strike.items():
        parity = pair["CE"] - pair["PE"] - df * (fwd - strike)
        assert abs(parity) <= 0.25, (strike, parity)


def test_smile_shape_puts_steeper_and_minimum_above_the_money() -> None:
    t = 6 / 365
    strikes = 24078.3 * np.exp(np.array([-0.3, 0.0, 0.3]) * np.sqrt(t))
    vols = smile_vol(0.101, strikes, 24078.3, t)
    assert vols[0] == pytest.approx(0.153, abs=3e-3)
    assert vols[1] == pytest.approx(0.101, abs=1e-9)
    assert vols[0] > vols[2] > vols[1]
    x = np.linspace(-0.3, 0.3, 601)
    for years, low, high in ((WEEKLY_YEARS, 0.005, 0.05), (MONTHLY_YEARS, 0.05, 0.15)):
        ratio = smile_ratio(x, years)
        assert low < x[np.argmin(ratio)] < high  # the minimum sits slightly above the money
        near = np.abs(x) <= 0.2
        assert (np.diff(ratio[near], 2) > 0).all()  # curved: no flat stretch at the money
        far = np.linspace(0.2, 3.0, 300)
        assert (np.diff(smile_ratio(far, years)) > 0).all()  # the wings keep rising
        assert (np.diff(smile_ratio(-far, years)) > 0).all()


def test_smile_follows_the_market_table() -> None:
    # MARKET.md's NIFTY smile of 19 Aug 2026 (ATM 10.1 %), vol points by standardised moneyness.
    # The weekly gives up under half a point for a curved bottom; the monthly fits closely.
    for years, table, tolerance in ((WEEKLY_YEARS, WEEKLY_TABLE, 0.5),
                                    (MONTHLY_YEARS, MONTHLY_TABLE, 0.1)):
        model = 10.1 * smile_ratio(SMILE_X, years)
        assert np.abs(model - table).max() <= tolerance, (years, model.round(2))


def test_volume_value_and_oi_evolve_consistently_through_the_day() -> None:
    clock = FakeClock()
    sim = SimulatedExchange(seed=5, speed=60.0, start=datetime(2026, 11, 17, 9, 15, tzinfo=IST),
                            clock=clock)
    _, rows = _chain_keys(sim, "NIFTY")
    keys = [r.key for r in rows[::9]] + ["NFO:NIFTY26NOVFUT"]
    previous = sim.quote(keys)
    assert all(q["volume"] == 0 for q in previous.values())
    grew = 0
    for _ in range(40):
        clock.t += 9.5  # 9.5 min 30 s of simulated time each step
        current = sim.quote(keys)
        for key in keys:
            a, b = previous[key], current[key]
            assert b["volume"] >= a["volume"]
            assert b["volume"] % 65 == 0
            traded_a = a["average_price"] * a["volume"]
            traded_b = b["average_price"] * b["volume"]
            assert traded_b >= traded_a - 0.01 * b["volume"]
            assert b["oi_day_low"] <= b["oi"] <= b["oi_day_high"]
            if b["volume"]:
                assert b["ohlc"]["low"] <= b["last_price"] <= b["ohlc"]["high"]
            else:  # no trade yet today: Kite's ohlc of 0
                assert b["ohlc"]["open"] == b["ohlc"]["high"] == b["ohlc"]["low"] == 0
            assert b["ohlc"]["close"] == a["ohlc"]["close"]
            grew += b["volume"] > a["volume"]
        previous = current
    assert grew > len(keys) * 20
    assert sim.now().time().strftime("%H:%M") == "15:35"


def test_market_closed_freezes_at_close_and_next_day_opens_from_it() -> None:
    clock = FakeClock()
    sim = SimulatedExchange(seed=5, start=datetime(2026, 11, 18, 15, 30, tzinfo=IST), clock=clock)
    _, rows = _chain_keys(sim, "NIFTY", 1)
    keys = ["NSE:NIFTY 50"] + [r.key for r in rows[100:110]]
    at_close = sim.quote(keys)
    sim.set_time(datetime(2026, 11, 18, 20, 0, tzinfo=IST))
    evening = sim.quote(keys)
    for key in keys:
        assert {k: v for k, v in evening[key].items() if k != "timestamp"} == \
               {k: v for k, v in at_close[key].items() if k != "timestamp"}
    sim.set_time(datetime(2026, 11, 19, 9, 15, tzinfo=IST))
    opening = sim.quote(keys)
    assert opening["NSE:NIFTY 50"]["ohlc"]["close"] == at_close["NSE:NIFTY 50"]["last_price"]
    for key in keys[1:]:
        # Open interest starts the day where it closed; day volume restarts.
        assert opening[key]["oi"] == at_close[key]["oi"]
        assert opening[key]["volume"] == 0


def test_open_interest_shape_and_put_call_ratio(sim: SimulatedExchange) -> None:
    options = [r for r in sim.instruments("NFO") if r.index_key == "NIFTY"
               and r.instrument_type != "FUT"]
    weekly = min(r.expiry for r in options if not r.monthly)
    monthly = min(r.expiry for r in options if r.monthly)
    for expiry, low, high in ((weekly, 0.5, 0.95), (monthly, 1.0, 1.6)):
        rows = [r for r in options if r.expiry == expiry]
        quotes = sim.quote([r.key for r in rows])
        ce = sum(q["oi"] for k, q in quotes.items() if k.endswith("CE"))
        pe = sum(q["oi"] for k, q in quotes.items() if k.endswith("PE"))
        assert low < pe / ce < high, (expiry, pe / ce)
        top = sorted(quotes, key=lambda k: quotes[k]["oi"], reverse=True)[:5]
        strikes = [next(r.strike for r in rows if r.key == k) for k in top]
        assert sum(1 for s in strikes if s % 100 == 0) >= 4


def test_depth_has_five_sorted_levels_on_ticks(sim: SimulatedExchange) -> None:
    _, rows = _chain_keys(sim, "BANKNIFTY")
    quotes = sim.quote([r.key for r in rows[::3]])
    one_sided = 0
    for q in quotes.values():
        buy = [lv["price"] for lv in q["depth"]["buy"] if lv["quantity"]]
        sell = [lv["price"] for lv in q["depth"]["sell"] if lv["quantity"]]
        assert len(q["depth"]["buy"]) == len(q["depth"]["sell"]) == 5
        assert sell and sell == sorted(sell)
        assert buy == sorted(buy, reverse=True)
        if buy:
            assert buy[0] < sell[0]
        else:
            one_sided += 1
        for p in buy + sell + [q["last_price"]]:
            assert round(p / 0.05, 6) == round(p / 0.05)
        assert all(lv["quantity"] % 30 == 0 for lv in q["depth"]["buy"] + q["depth"]["sell"])
    assert one_sided < len(quotes) / 2


def test_clock_runs_at_speed_from_start() -> None:
    clock = FakeClock()
    start = datetime(2026, 11, 17, 10, 0, tzinfo=IST)
    sim = SimulatedExchange(speed=30.0, start=start, clock=clock)
    clock.t = 10.0
    assert sim.now() == start + timedelta(minutes=5)
    assert sim.now().utcoffset() == timedelta(hours=5, minutes=30)
    with pytest.raises(ValueError, match="speed"):
        SimulatedExchange(speed=0)


def _assert_no_arbitrage(strikes: np.ndarray, calls: np.ndarray, puts: np.ndarray, fwd: float,
                         df: float, tol: np.ndarray | float, label: object) -> None:
    """Prices above discounted intrinsic, calls falling and puts rising in strike by at most
    the discounted strike step, and both convex in strike; `tol` (rupees, per strike) absorbs
    price rounding."""
    tol = np.broadcast_to(np.asarray(tol, dtype=float), strikes.shape)
    assert (calls >= df * np.maximum(fwd - strikes, 0.0) - tol).all(), label
    assert (puts >= df * np.maximum(strikes - fwd, 0.0) - tol).all(), label
    dk = np.diff(strikes)
    slack = (tol[1:] + tol[:-1]) / dk
    call_slope = np.diff(calls) / dk
    put_slope = np.diff(puts) / dk
    assert (call_slope <= slack).all() and (call_slope >= -df - slack).all(), label
    assert (put_slope >= -slack).all() and (put_slope <= df + slack).all(), label
    # Butterflies: the slope rises from one strike interval to the next.
    slack2 = (tol[2:] + 2.0 * tol[1:-1] + tol[:-2]) / (0.5 * (dk[1:] + dk[:-1]))
    assert (np.diff(call_slope) >= -slack2).all(), label
    assert (np.diff(put_slope) >= -slack2).all(), label


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 1000), day_offset=st.integers(0, 400),
       second=st.integers(0, 22_500), key=st.sampled_from(INDEX_ORDER), nth=st.integers(0, 2))
def test_every_listed_chain_is_free_of_static_arbitrage(
    seed: int, day_offset: int, second: int, key: str, nth: int
) -> None:
    day = cal.trading_day_on_or_after(date(2026, 1, 1) + timedelta(days=day_offset))
    at = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
    sim = SimulatedExchange(seed=seed, start=at + timedelta(seconds=second), clock=lambda: 0.0)
    rows = [r for r in sim.instruments() if r.index_key == key
            and r.instrument_type in ("CE", "PE")]
    expiries = sorted({r.expiry for r in rows if r.expiry is not None})
    expiry = expiries[min(nth, len(expiries) - 1)]
    rows = [r for r in rows if r.expiry == expiry]
    strikes = np.array(sorted({r.strike for r in rows}))
    t = float(years_left(expiry, float(second), day))
    spot = sim.market.spot(key, day, second)
    fwd = float(sim.market.forward(spot, t))
    df = float(np.exp(-RATE * t))
    # The model's own prices, exactly (to float rounding).
    model = {c: fair_prices(sim.market, key, day, strikes, np.full(strikes.size, c),
                            np.zeros(strikes.size, dtype=bool), spot, np.full(strikes.size, t),
                            float(second)) for c in (True, False)}
    _assert_no_arbitrage(strikes, model[True], model[False], fwd, df, 1e-7, (key, expiry, at))
    # The quoted prices a trader sees: last prices on the 0.05 tick.
    quotes = sim.quote([r.key for r in rows])
    last = {(r.strike, r.instrument_type): quotes[r.key]["last_price"] for r in rows}
    calls = np.array([last[(k, "CE")] for k in strikes])
    puts = np.array([last[(k, "PE")] for k in strikes])
    # Quoted prices are on the 0.05 tick and print at the bid or the ask (spread about 0.1 %).
    tol = 0.05 + 0.001 * np.maximum(calls, puts)
    _assert_no_arbitrage(strikes, calls, puts, fwd, df, tol, (key, expiry, at, "quoted"))


def test_weekly_far_put_wing_reaches_market_levels() -> None:
    # MARKET.md: NIFTY 24,078.30, ATM 10.1 %, the 6-day weekly's far wing reaches 30-35 % at
    # prices of 0.70-1.35 rupees; beyond, prices fall away instead of holding a floor.
    t, spot = 6 / 365, 24078.3
    fwd = spot * np.exp((RATE - DIV_YIELD) * t)
    strikes = np.arange(18000.0, 24000.0, 50.0)
    puts = np.asarray(black76_price(fwd, strikes, t, smile_vol(0.101, strikes, fwd, t), RATE,
                                    False))
    ivs = np.asarray(implied_volatility_black76(puts, fwd, strikes, t, RATE, False))
    wing = (puts >= 0.70) & (puts <= 1.35)
    assert 0.30 <= ivs[wing].max() <= 0.35
    assert puts[strikes == 20000.0][0] < 0.3  # 17 % below spot
    assert (np.diff(puts) > 0).all()


def test_far_strikes_lose_their_value_at_expiry() -> None:
    # Fifteen minutes before expiry, 3 % out of the money is worth the minimum tick at most.
    t = 15 * 60 / (365 * 86400)
    for atm in (0.08, 0.12, 0.2):
        strikes = 26000.0 * np.array([0.97, 1.03])
        vols = smile_vol(atm, strikes, 26000.0, t)
        prices = np.asarray(black76_price(26000.0, strikes, t, vols, RATE, np.array([False, True])))
        assert (prices < 0.05).all(), (atm, prices)


def test_weekly_oi_and_volume_by_strike_look_like_the_market() -> None:
    # MARKET.md (6-day weekly): largest call OI at round strikes above spot, largest put OI at
    # round strikes below, multiples of 500 first; about 20 M call and 18.5 M put lots traded a
    # day; PCR by OI 0.70.
    sim = SimulatedExchange(start=datetime(2026, 11, 25, 15, 30, tzinfo=IST), clock=lambda: 0.0)
    spot = sim.ltp(["NSE:NIFTY 50"])["NSE:NIFTY 50"]["last_price"]
    expiry, rows = _chain_keys(sim, "NIFTY")
    assert expiry == date(2026, 12, 1)
    quotes = sim.quote([r.key for r in rows])
    by_oi = {side: sorted((r for r in rows if r.instrument_type == side),
                          key=lambda r: -quotes[r.key]["oi"]) for side in ("CE", "PE")}
    assert [r.strike for r in by_oi["CE"][:2]] == [27000.0, 26500.0]
    assert [r.strike for r in by_oi["PE"][:2]] == [26000.0, 25500.0]
    assert all(r.strike > spot for r in by_oi["CE"][:2])
    assert all(r.strike < spot for r in by_oi["PE"][:2])
    lots = {side: sum(quotes[r.key]["volume"] for r in by_oi[side]) / 65 for side in by_oi}
    assert 15e6 < lots["CE"] < 25e6
    assert 0.85 < lots["PE"] / lots["CE"] < 1.0
    oi = {side: sum(quotes[r.key]["oi"] for r in by_oi[side]) for side in by_oi}
    assert oi["PE"] / oi["CE"] == pytest.approx(0.673, abs=0.005)
