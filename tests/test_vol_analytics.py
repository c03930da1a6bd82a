"""IV rank/percentile, realised volatility, gamma exposure, its flip level and running VWAP."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optui.analytics.black_scholes import bs_greeks
from optui.analytics.exposure import (
    gamma_exposure,
    gex_by_strike,
    gex_profile,
    running_vwap,
    total_gex_at,
    zero_crossing,
)
from optui.analytics.vol_history import YEAR_DAYS, iv_standing, realised_vol
from optui.widgets.charts.data import otm_smile, straddle_volumes

ivs = st.floats(min_value=1.0, max_value=150.0, allow_nan=False)


def test_iv_rank_and_percentile_hand_computed() -> None:
    s = iv_standing(13.0, [10.0, 12.0, 14.0, 16.0, 20.0])
    assert s.days == 5
    assert s.percentile == pytest.approx(40.0)  # 10 and 12 of five closes lie below 13
    assert s.rank == pytest.approx(30.0)  # (13 - 10) / (20 - 10)
    assert s.label() == "IVR 30 IVP 40 (5 d)"


def test_iv_standing_short_flat_and_year_history() -> None:
    assert math.isnan(iv_standing(13.0, [12.0, 14.0]).percentile)  # too little history
    flat = iv_standing(12.0, [12.0] * 10)
    assert flat.percentile == 0.0 and math.isnan(flat.rank)
    long = iv_standing(20.0, list(np.linspace(10, 30, 400)))
    assert long.days == YEAR_DAYS and long.full_year and long.label().endswith("(1y)")
    assert iv_standing(12.0, [math.nan] * 3 + [10.0, 11.0, 13.0, 14.0, 15.0]).days == 5


@given(st.lists(ivs, min_size=5, max_size=300), ivs)
def test_iv_standing_bounds(history: list[float], current: float) -> None:
    s = iv_standing(current, history)
    assert 0.0 <= s.percentile <= 100.0
    assert math.isnan(s.rank) or 0.0 <= s.rank <= 100.0
    # Above every close: percentile 100 and rank 100.
    top = iv_standing(max(history) + 1.0, history)
    assert top.percentile == 100.0 and top.rank == 100.0


def test_realised_vol_hand_computed() -> None:
    # log returns +r, -r, +r with r = ln 1.01: mean r/3, sample variance (8/3) r^2 / 2.
    r = math.log(1.01)
    expected = math.sqrt((4.0 / 3.0) * r * r) * math.sqrt(252) * 100.0
    assert realised_vol([100.0, 101.0, 100.0, 101.0], window=3) == pytest.approx(expected)
    assert expected == pytest.approx(18.2393, abs=1e-3)
    assert math.isnan(realised_vol([100.0] * 20))  # 20 closes give only 19 returns


@given(st.lists(st.floats(min_value=1.0, max_value=1e5), min_size=21, max_size=60),
       st.floats(min_value=0.01, max_value=100.0))
def test_realised_vol_scale_free_and_non_negative(closes: list[float], k: float) -> None:
    rv = realised_vol(closes)
    assert rv >= 0.0
    assert realised_vol([c * k for c in closes]) == pytest.approx(rv, rel=1e-6, abs=1e-6)


def test_gex_formula_hand_computed() -> None:
    # 0.0005 x 1000 contracts x 75 x 20000^2 x 1 % = 150,000,000 rupees = 15 crore.
    assert float(gamma_exposure(0.0005, 1000, 75, 20000.0)) == pytest.approx(1.5e8)
    strikes, calls, puts = gex_by_strike([20000, 20000, 20100], [True, False, False],
                                         [0.0005, 0.0005, 0.0004], [75000, 75000, 7500], 20000.0)
    assert strikes.tolist() == [20000, 20100]
    assert calls.tolist() == pytest.approx([15.0, 0.0])
    assert puts.tolist() == pytest.approx([-15.0, -1.2])


def test_zero_crossing_interpolates_nearest() -> None:
    assert zero_crossing([1, 2, 3], [-1, 1, 3], near=0) == pytest.approx(1.5)
    assert zero_crossing([1, 2, 3, 4], [-1, 1, 1, -1], near=3.9) == pytest.approx(3.5)
    assert math.isnan(zero_crossing([1, 2], [1, 2], near=1))


def test_gex_flip_between_put_and_call_walls() -> None:
    # Heavy puts at 19,500 and calls at 20,500: below ~20,000 puts dominate, above calls do.
    strikes, is_call = [19500, 20500], [False, True]
    oi = [1_000_000, 1_000_000]
    iv, t = [15.0, 15.0], [7 / 365, 7 / 365]
    gamma = bs_greeks(20000.0, np.array(strikes), 7 / 365, 0.15, 0.0, np.array(is_call)).gamma
    prof = gex_profile(strikes, is_call, gamma, oi, iv, t, 20000.0)
    assert prof.call_cr[1] > 0 > prof.put_cr[0]
    assert 19500 < prof.flip < 20500
    at_flip = total_gex_at([prof.flip], strikes, is_call, iv, t, oi)
    scale = abs(float(total_gex_at([19500.0], strikes, is_call, iv, t, oi)[0]))
    assert abs(float(at_flip[0])) < 0.01 * scale  # the total is (near) zero there


def test_running_vwap_hand_computed() -> None:
    out = running_vwap([10.0, 20.0, 30.0], [1.0, math.nan, 3.0])
    assert out.tolist() == pytest.approx([10.0, 10.0, 25.0])
    assert math.isnan(running_vwap([5.0], [0.0])[0])


def test_straddle_volume_increments_reset_when_atm_moves() -> None:
    got = straddle_volumes([100, 100, 150, 150], [10, 30, 500, 520])
    assert math.isnan(got[0]) and got[1] == 20 and math.isnan(got[2]) and got[3] == 20


def test_otm_smile_takes_puts_below_forward() -> None:
    smile = otm_smile([90, 90, 110, 110], ["CALL", "PUT", "CALL", "PUT"], [20, 21, 15, 16], 100)
    assert smile.strikes == [90, 110] and smile.ivs == [21, 15]
