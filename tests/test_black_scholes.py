"""BSM and Black-76 prices and greeks: textbook values, parity, bounds, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.black_scholes import (
    Greeks,
    black76_greeks,
    black76_price,
    bs_greeks,
    bs_price,
)

spots = st.floats(1_000.0, 60_000.0)
moneyness = st.floats(0.7, 1.3)
years = st.floats(1.0 / 365.0, 1.0)
vols = st.floats(0.05, 1.2)
rates = st.floats(0.0, 0.1)
yields = st.floats(0.0, 0.03)


@pytest.mark.unit
def test_textbook_call_and_greeks() -> None:
    # Hull's classic example: S = K = 100, T = 1, r = 5 %, vol = 20 %.
    g = bs_greeks(100.0, 100.0, 1.0, 0.2, 0.05, True)
    assert float(bs_price(100.0, 100.0, 1.0, 0.2, 0.05, True)) == pytest.approx(10.450584, abs=1e-6)
    assert float(g.delta) == pytest.approx(0.636831, abs=1e-6)
    assert float(g.gamma) == pytest.approx(0.018762, abs=1e-6)
    assert float(g.vega) == pytest.approx(0.375240, abs=1e-6)  # per vol point
    assert float(g.theta) == pytest.approx(-6.414028 / 365.0, abs=1e-7)  # per calendar day
    assert float(g.rho) == pytest.approx(0.532325, abs=1e-6)  # per rate point


@pytest.mark.unit
def test_greeks_is_frozen_and_broadcasts() -> None:
    g = black76_greeks(
        np.array([[24000.0], [24100.0]]),
        np.array([23900.0, 24000.0, 24100.0]),
        7 / 365,
        0.12,
        0.065,
        True,
    )
    assert isinstance(g, Greeks)
    assert g.delta.shape == (2, 3) and g.vega.shape == (2, 3)
    with pytest.raises(AttributeError):
        g.delta = g.gamma  # type: ignore[misc]
    scalar = bs_greeks(24000.0, 24000.0, 0.1, 0.15, 0.065, False)
    assert np.ndim(scalar.delta) == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    "args",
    [
        (0.0, 100.0, 0.5, 0.2),
        (-1.0, 100.0, 0.5, 0.2),
        (100.0, 0.0, 0.5, 0.2),
        (100.0, 100.0, 0.0, 0.2),
        (100.0, 100.0, -0.1, 0.2),
        (100.0, 100.0, 0.5, 0.0),
        (100.0, 100.0, 0.5, math.nan),
        (math.nan, 100.0, 0.5, 0.2),
    ],
)
def test_invalid_inputs_give_nan_greeks(args: tuple[float, float, float, float]) -> None:
    for g in (bs_greeks(*args, 0.05, True), black76_greeks(*args, 0.05, False)):
        assert all(np.isnan(getattr(g, n)) for n in ("delta", "gamma", "theta", "vega", "rho"))


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(spots, moneyness, years, vols, rates, yields)
def test_put_call_parity(s: float, m: float, t: float, v: float, r: float, q: float) -> None:
    k = s * m
    c = float(bs_price(s, k, t, v, r, True, q))
    p = float(bs_price(s, k, t, v, r, False, q))
    assert c - p == pytest.approx(s * math.exp(-q * t) - k * math.exp(-r * t), abs=1e-9 * s)
    f = s * math.exp((r - q) * t)
    c76 = float(black76_price(f, k, t, v, r, True))
    p76 = float(black76_price(f, k, t, v, r, False))
    assert c76 - p76 == pytest.approx(math.exp(-r * t) * (f - k), abs=1e-9 * s)


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(spots, moneyness, years, vols, rates, yields)
def test_greek_bounds(s: float, m: float, t: float, v: float, r: float, q: float) -> None:
    k = s * m
    c = bs_greeks(s, k, t, v, r, True, q)
    p = bs_greeks(s, k, t, v, r, False, q)
    assert -1e-15 <= float(c.delta) <= math.exp(-q * t) + 1e-15
    assert -1.0 - 1e-15 <= float(p.delta) <= 1e-15
    assert float(c.delta) - float(p.delta) == pytest.approx(math.exp(-q * t), abs=1e-12)
    for g in (c, p):
        assert float(g.gamma) >= 0.0 and float(g.vega) >= 0.0
    assert float(c.gamma) == pytest.approx(float(p.gamma), rel=1e-12, abs=1e-300)
    f = s * math.exp((r - q) * t)
    c76 = black76_greeks(f, k, t, v, r, True)
    p76 = black76_greeks(f, k, t, v, r, False)
    assert -1e-15 <= float(c76.delta) <= math.exp(-r * t) + 1e-15
    assert -1.0 - 1e-15 <= float(p76.delta) <= 1e-15
    assert float(c76.gamma) >= 0.0 and float(c76.vega) >= 0.0


def _fd(fn, x: float, h: float) -> float:  # type: ignore[no-untyped-def]
    return (float(fn(x + h)) - float(fn(x - h))) / (2.0 * h)


@pytest.mark.property
@settings(max_examples=80, deadline=None)
@given(
    spots,
    st.floats(0.85, 1.15),
    st.floats(7 / 365, 1.0),
    st.floats(0.08, 0.8),
    rates,
    yields,
    st.booleans(),
)
def test_bs_greeks_match_finite_differences(
    s: float, m: float, t: float, v: float, r: float, q: float, call: bool
) -> None:
    k = s * m
    g = bs_greeks(s, k, t, v, r, call, q)
    scale = s * 1e-7  # central differences of a price of order s are good to ~1e-7 relative
    assert float(g.delta) == pytest.approx(
        _fd(lambda x: bs_price(x, k, t, v, r, call, q), s, s * 1e-6), abs=1e-6
    )
    assert float(g.gamma) == pytest.approx(
        _fd(lambda x: bs_greeks(x, k, t, v, r, call, q).delta, s, s * 1e-5), rel=1e-4, abs=1e-9
    )
    assert float(g.vega) == pytest.approx(
        _fd(lambda x: bs_price(s, k, t, x, r, call, q), v, 1e-5) / 100.0, abs=scale
    )
    assert float(g.theta) == pytest.approx(
        -_fd(lambda x: bs_price(s, k, x, v, r, call, q), t, 1e-6) / 365.0, abs=scale
    )
    assert float(g.rho) == pytest.approx(
        _fd(lambda x: bs_price(s, k, t, v, x, call, q), r, 1e-6) / 100.0, abs=scale
    )


@pytest.mark.property
@settings(max_examples=80, deadline=None)
@given(
    spots,
    st.floats(0.85, 1.15),
    st.floats(7 / 365, 1.0),
    st.floats(0.08, 0.8),
    rates,
    st.booleans(),
)
def test_black76_greeks_match_finite_differences(
    f: float, m: float, t: float, v: float, r: float, call: bool
) -> None:
    k = f * m
    g = black76_greeks(f, k, t, v, r, call)
    scale = f * 1e-7
    assert float(g.delta) == pytest.approx(
        _fd(lambda x: black76_price(x, k, t, v, r, call), f, f * 1e-6), abs=1e-6
    )
    assert float(g.gamma) == pytest.approx(
        _fd(lambda x: black76_greeks(x, k, t, v, r, call).delta, f, f * 1e-5), rel=1e-4, abs=1e-9
    )
    assert float(g.vega) == pytest.approx(
        _fd(lambda x: black76_price(f, k, t, x, r, call), v, 1e-5) / 100.0, abs=scale
    )
    assert float(g.theta) == pytest.approx(
        -_fd(lambda x: black76_price(f, k, x, v, r, call), t, 1e-6) / 365.0, abs=scale
    )
    assert float(g.rho) == pytest.approx(
        _fd(lambda x: black76_price(f, k, t, v, x, call), r, 1e-6) / 100.0, abs=scale
    )
