"""Synthetic forward from put-call parity: recovery, robustness to bad quotes, fallback."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.black_scholes import black76_price
from optui.analytics.forward import synthetic_forward

R, T = 0.065, 10 / 365


def _chain(
    forward: float, spot: float, vol: float = 0.13
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    strikes = np.arange(round(spot / 50) * 50 - 1000, round(spot / 50) * 50 + 1001, 50.0)
    calls = black76_price(forward, strikes, T, vol, R, True)
    puts = black76_price(forward, strikes, T, vol, R, False)
    return strikes, calls, puts


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.floats(15_000.0, 60_000.0), st.floats(-0.01, 0.01), st.floats(0.05, 0.6))
def test_recovers_forward_from_parity_consistent_prices(
    spot: float, basis: float, vol: float
) -> None:
    forward = spot * math.exp(R * T) * (1.0 + basis)
    strikes, calls, puts = _chain(forward, spot, vol)
    assert synthetic_forward(strikes, calls, puts, T, R, spot) == pytest.approx(forward, rel=1e-10)


@pytest.mark.unit
def test_median_ignores_one_stale_quote() -> None:
    spot, forward = 24_000.0, 24_080.0
    strikes, calls, puts = _chain(forward, spot)
    atm = int(np.argmin(np.abs(strikes - spot * math.exp(R * T))))
    calls = calls.copy()
    calls[atm] *= 1.5  # one stale print at the money
    assert synthetic_forward(strikes, calls, puts, T, R, spot) == pytest.approx(forward, rel=1e-9)


@pytest.mark.unit
def test_skips_strikes_without_both_prices() -> None:
    spot, forward = 24_000.0, 23_990.0
    strikes, calls, puts = _chain(forward, spot)
    near = np.argsort(np.abs(strikes - spot * math.exp(R * T)))[:3]
    calls, puts = calls.copy(), puts.copy()
    calls[near[0]] = 0.0
    puts[near[1]] = math.nan
    puts[near[2]] = -1.0
    assert synthetic_forward(strikes, calls, puts, T, R, spot, n_pairs=1) == pytest.approx(
        forward, rel=1e-10
    )


@pytest.mark.unit
def test_falls_back_to_spot_carry_when_no_pair_is_usable() -> None:
    strikes = np.array([23_900.0, 24_000.0, 24_100.0])
    expected = 24_000.0 * math.exp(R * T)
    assert synthetic_forward(
        strikes, [0.0, 0.0, 0.0], [10.0, 20.0, 30.0], T, R, 24_000.0
    ) == pytest.approx(expected)
    assert synthetic_forward([], [], [], T, R, 24_000.0) == pytest.approx(expected)
    assert synthetic_forward(
        strikes, [math.nan] * 3, [math.nan] * 3, T, R, 24_000.0
    ) == pytest.approx(expected)
    assert math.isnan(synthetic_forward([], [], [], T, R, math.nan))


@pytest.mark.unit
def test_without_spot_uses_strikes_where_call_equals_put() -> None:
    forward = 24_030.0
    strikes, calls, puts = _chain(forward, 24_000.0)
    assert synthetic_forward(strikes, calls, puts, T, R, math.nan) == pytest.approx(
        forward, rel=1e-10
    )


@pytest.mark.unit
def test_rejects_mismatched_lengths_and_bad_pair_count() -> None:
    with pytest.raises(ValueError, match="one entry per strike"):
        synthetic_forward([1.0, 2.0], [1.0], [1.0], T, R, 100.0)
    with pytest.raises(ValueError, match="n_pairs"):
        synthetic_forward([1.0], [1.0], [1.0], T, R, 100.0, n_pairs=0)
