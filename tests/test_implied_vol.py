"""Implied volatility: round trips, recovery to 1e-9 where the price determines it, NaN + status."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.black_scholes import (
    IV_ABOVE_BOUND,
    IV_BAD_INPUT,
    IV_BELOW_INTRINSIC,
    IV_EXPIRED,
    IV_OK,
    IV_UNDETERMINED,
    STATUS_NAMES,
    black76_price,
    bs_price,
    implied_volatility,
    implied_volatility_black76,
    iv_status,
    solve_black76,
)

F, R = 24_000.0, 0.065


def _vega(f: np.ndarray, k: np.ndarray, t: np.ndarray, v: np.ndarray, r: float) -> np.ndarray:
    sd = v * np.sqrt(t)
    d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    return np.exp(-r * t) * f * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * np.sqrt(t)


def _determined(price: np.ndarray, vega: np.ndarray) -> np.ndarray:
    # With a 45-ulp margin for the reference pricer's own rounding (ndtr differences), and
    # above 1e-290 where that pricer's ndtr terms are no longer subnormal.
    with np.errstate(divide="ignore", invalid="ignore"):
        return (price > 1e-290) & (1e-14 * price <= 1e-9 * vega)


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(
    st.floats(-1.5, 1.5),
    st.floats(0.5 / 365, 3.0),
    st.floats(0.01, 3.0),
    st.booleans(),
    st.floats(0.0, 0.12),
)
def test_round_trip_recovers_vol(log_m: float, t: float, vol: float, call: bool, r: float) -> None:
    k = F * math.exp(log_m)
    price = float(black76_price(F, k, t, vol, r, call))
    iv, status = solve_black76(price, F, k, t, r, call)
    if price <= 0:
        assert np.isnan(iv) and status == IV_BAD_INPUT
        return
    if status == IV_OK:
        # Reprices to 1e-8, or recovers the vol itself to 1e-12: deep in the tail (prices near
        # 1e-285) a vol off by 1e-13 already moves the price by 1e-8 of itself.
        repriced = float(black76_price(F, k, t, float(iv), r, call))
        assert repriced == pytest.approx(price, rel=1e-8, abs=1e-300) or abs(float(iv) - vol) <= 1e-12
    if _determined(np.array(price), _vega(np.array(F), np.array(k), np.array(t), np.array(vol), r)):
        assert status == IV_OK
        assert abs(float(iv) - vol) <= 1e-9
    else:
        # Undetermined: either flagged, or a finite answer that still reprices exactly.
        assert status in (IV_OK, IV_UNDETERMINED, IV_BELOW_INTRINSIC, IV_ABOVE_BOUND)
        assert np.isnan(iv) == (status != IV_OK)


@pytest.mark.unit
def test_grid_recovers_vol_everywhere_determined() -> None:
    rng = np.random.default_rng(7)
    n = 60_000
    k = F * np.exp(rng.uniform(-2.0, 2.0, n))  # beyond the lookup table on purpose
    t = np.exp(rng.uniform(np.log(0.2 / 365), np.log(5.0), n))
    vol = np.exp(rng.uniform(np.log(0.005), np.log(5.0), n))
    call = rng.random(n) < 0.5
    price = black76_price(F, k, t, vol, R, call)
    iv, status = solve_black76(price, F, k, t, R, call)
    det = _determined(price, _vega(np.full(n, F), k, t, vol, R))
    assert det.sum() > n // 3
    assert np.all(status[det] == IV_OK)
    assert np.max(np.abs(iv[det] - vol[det])) <= 1e-9
    # Nowhere a finite answer that fails to reproduce the price.
    ok = status == IV_OK
    back = black76_price(F, k[ok], t[ok], iv[ok], R, call[ok])
    assert np.all(np.abs(back - price[ok]) <= 1e-8 * price[ok] + 1e-300)
    assert np.array_equal(np.isnan(iv), status != IV_OK)


@pytest.mark.unit
def test_deep_otm_tiny_prices() -> None:
    k = np.array([30_000.0, 18_000.0, 60_000.0])
    call = np.array([True, False, True])
    t = np.array([0.02, 0.02, 0.05])
    vol = np.abs(np.log(F / k)) / (25.0 * np.sqrt(t))  # |ln(F/K)| / (vol sqrt T) = 25
    price = black76_price(F, k, t, vol, R, call)
    assert np.all(price < 1e-100) and np.all(price > 0)
    iv = implied_volatility_black76(price, F, k, t, R, call)
    np.testing.assert_allclose(iv, vol, rtol=1e-12)


@pytest.mark.unit
def test_bsm_round_trip_with_dividend() -> None:
    s, q, t = 24_000.0, 0.012, 30 / 365
    k = np.array([20_000.0, 23_500.0, 24_000.0, 24_500.0, 28_000.0])
    vol = np.array([0.25, 0.14, 0.12, 0.11, 0.2])
    for call in (True, False):
        price = bs_price(s, k, t, vol, R, call, q)
        np.testing.assert_allclose(implied_volatility(price, s, k, t, R, call, q), vol, atol=1e-10)


@pytest.mark.unit
def test_nan_and_status_for_unsolvable_prices() -> None:
    t, k = 7 / 365, 23_000.0
    df = math.exp(-R * t)
    intrinsic = df * (F - k)
    cases = [
        (intrinsic * 0.999, True, IV_BELOW_INTRINSIC),
        (intrinsic, True, IV_BELOW_INTRINSIC),
        (df * F, True, IV_ABOVE_BOUND),
        (df * F * 1.01, True, IV_ABOVE_BOUND),
        (df * k, False, IV_ABOVE_BOUND),
        (0.0, True, IV_BAD_INPUT),
        (-5.0, False, IV_BAD_INPUT),
        (math.nan, True, IV_BAD_INPUT),
        (math.inf, True, IV_BAD_INPUT),
    ]
    prices = np.array([c[0] for c in cases])
    calls = np.array([c[1] for c in cases])
    iv = implied_volatility_black76(prices, F, k, t, R, calls)
    status = iv_status(prices, F, k, t, R, calls)
    assert np.all(np.isnan(iv))
    assert status.dtype == np.int8
    assert [int(s) for s in status] == [int(c[2]) for c in cases]
    assert all(int(s) in STATUS_NAMES for s in status)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("spot", "strike", "t", "rate", "expected"),
    [
        (0.0, 24_000.0, 0.1, R, IV_BAD_INPUT),
        (-1.0, 24_000.0, 0.1, R, IV_BAD_INPUT),
        (24_000.0, 0.0, 0.1, R, IV_BAD_INPUT),
        (math.nan, 24_000.0, 0.1, R, IV_BAD_INPUT),
        (24_000.0, 24_000.0, 0.1, math.nan, IV_BAD_INPUT),
        (24_000.0, 24_000.0, 0.0, R, IV_EXPIRED),
        (24_000.0, 24_000.0, -0.01, R, IV_EXPIRED),
        (24_000.0, 24_000.0, math.nan, R, IV_EXPIRED),
    ],
)
def test_bad_inputs_never_raise(
    spot: float, strike: float, t: float, rate: float, expected: int
) -> None:
    assert np.isnan(implied_volatility(300.0, spot, strike, t, rate, True))
    assert iv_status(300.0, spot, strike, t, rate, True) == expected


@pytest.mark.unit
def test_deep_itm_without_time_value_is_flagged_not_guessed() -> None:
    t, k, vol = 1 / 365, 17_000.0, 0.05
    price = float(black76_price(F, k, t, vol, R, True))  # time value far below one ulp of price
    assert np.isnan(implied_volatility_black76(price, F, k, t, R, True))
    assert iv_status(price, F, k, t, R, True) in (IV_UNDETERMINED, IV_BELOW_INTRINSIC)
    # The same option as an OTM put carries the time value explicitly and is solvable.
    put = float(black76_price(F, 23_000.0, t, 0.4, R, False))
    assert implied_volatility_black76(put, F, 23_000.0, t, R, False) == pytest.approx(0.4, abs=1e-9)


@pytest.mark.unit
def test_scalar_and_broadcast_shapes() -> None:
    iv = implied_volatility_black76(200.0, F, 24_000.0, 7 / 365, R, True)
    assert isinstance(iv, np.ndarray) and iv.shape == ()
    strikes = np.array([23_800.0, 24_000.0, 24_200.0])
    vols = np.array([[0.1], [0.2]])
    prices = black76_price(F, strikes, 7 / 365, vols, R, True)
    out = implied_volatility_black76(prices, F, strikes, 7 / 365, R, True)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, np.broadcast_to(vols, (2, 3)), atol=1e-12)
    assert iv_status(prices, F, strikes, 7 / 365, R, True).shape == (2, 3)
    assert implied_volatility_black76(np.array([]), F, 24_000.0, 0.1, R, True).shape == (0,)


@pytest.mark.unit
def test_bad_entries_do_not_disturb_good_ones() -> None:
    k = np.array([24_000.0, 24_000.0, 24_000.0, 24_000.0])
    good = float(black76_price(F, 24_000.0, 0.05, 0.15, R, True))
    prices = np.array([good, math.nan, -1.0, good])
    iv = implied_volatility_black76(prices, F, k, 0.05, R, True)
    assert iv[0] == pytest.approx(0.15, abs=1e-12) and iv[3] == pytest.approx(0.15, abs=1e-12)
    assert np.isnan(iv[1]) and np.isnan(iv[2])


@pytest.mark.unit
def test_threaded_solve_matches_single_thread() -> None:
    rng = np.random.default_rng(11)
    n = 300_000  # enough slices for the threaded path on any machine with 2+ cores
    k = F * rng.uniform(0.7, 1.3, n)
    t = rng.integers(1, 91, n) / 365
    call = rng.random(n) < 0.5
    price = black76_price(F, k, t, rng.uniform(0.05, 1.2, n), R, call)
    price[::97] = np.nan
    iv1, st1 = solve_black76(price, F, k, t, R, call, threads=1)
    iv2, st2 = solve_black76(price, F, k, t, R, call)
    np.testing.assert_array_equal(iv1, iv2)
    np.testing.assert_array_equal(st1, st2)


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(
    st.floats(0.75, 1.3),
    st.integers(1, 90),
    st.floats(0.05, 1.2),
    st.floats(0.0, 0.03),
)
def test_bsm_call_and_put_give_the_same_vol(m: float, days: int, vol: float, q: float) -> None:
    s, t = 24_000.0, days / 365
    k = s * m
    call = float(bs_price(s, k, t, vol, R, True, q))
    put = float(bs_price(s, k, t, vol, R, False, q))
    iv = implied_volatility(np.array([call, put]), s, k, t, R, np.array([True, False]), q)
    # Each side recovers the vol wherever its own price determines it.
    vegas = _vega(np.full(2, s * math.exp((R - q) * t)), np.full(2, k), np.full(2, t), vol, R)
    det = _determined(np.array([call, put]), vegas)
    assert np.all(np.abs(iv[det] - vol) <= 1e-9)
    if det.all():
        assert abs(iv[0] - iv[1]) <= 2e-9
