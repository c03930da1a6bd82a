"""Chain aggregates: ATM tie-breaking, PCR, max pain invariants, skew and NaN-safe totals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.chain import (
    ChainAggregates,
    atm_strike,
    chain_aggregates,
    chain_aggregates_batch,
    iv_skew,
    max_pain,
    max_pain_payouts,
    pad_chains,
    pcr,
)


def brute_payouts(strikes: np.ndarray, call_oi: np.ndarray, put_oi: np.ndarray) -> np.ndarray:
    s = strikes[:, None]
    k = strikes[None, :]
    return (np.maximum(s - k, 0) * call_oi).sum(1) + (np.maximum(k - s, 0) * put_oi).sum(1)


# --- ATM ---------------------------------------------------------------------------------------


@pytest.mark.unit
def test_atm_nearest_listed_strike() -> None:
    strikes = np.array([24000.0, 24050.0, 24100.0, 24150.0])
    assert atm_strike(24071.3, strikes) == 24050.0
    assert atm_strike(24076.0, strikes) == 24100.0


@pytest.mark.unit
def test_atm_tie_goes_to_lower_strike_even_when_unsorted() -> None:
    strikes = np.array([24100.0, 24000.0, 24050.0])
    assert atm_strike(24075.0, strikes) == 24050.0
    assert atm_strike(24025.0, strikes) == 24000.0


@pytest.mark.unit
def test_atm_uses_listed_strikes_not_the_step_grid() -> None:
    # Far from the money strikes are spaced wider than the step: the nearest *listed* one wins.
    strikes = np.array([23000.0, 23500.0, 24000.0])
    assert atm_strike(23300.0, strikes) == 23500.0


@pytest.mark.unit
def test_atm_empty_or_nan() -> None:
    assert math.isnan(atm_strike(24000.0, np.array([])))
    assert math.isnan(atm_strike(float("nan"), np.array([24000.0])))
    assert atm_strike(24010.0, np.array([np.nan, 24000.0])) == 24000.0


# --- PCR ---------------------------------------------------------------------------------------


@pytest.mark.unit
def test_pcr_ratio_of_sums() -> None:
    assert pcr([30, 40], [50, 50]) == pytest.approx(0.7)


@pytest.mark.unit
def test_pcr_nan_counts_as_zero_and_zero_calls_is_nan() -> None:
    assert pcr([30, np.nan], [np.nan, 20]) == pytest.approx(1.5)
    assert math.isnan(pcr([10, 20], [0, 0]))
    assert math.isnan(pcr([], []))


# --- max pain ----------------------------------------------------------------------------------


@pytest.mark.unit
def test_max_pain_hand_example() -> None:
    # Payout at 100: puts 110 (5*10) + 120 (1*20) = 70; at 110: call 100 (2*10) + put 120 (1*10)
    # = 30; at 120: calls 2*20 + 3*10 = 70.
    strikes = np.array([100.0, 110.0, 120.0])
    call_oi = np.array([2.0, 3.0, 4.0])
    put_oi = np.array([1.0, 5.0, 1.0])
    assert list(max_pain_payouts(strikes, call_oi, put_oi)) == [70.0, 30.0, 70.0]
    assert max_pain(strikes, call_oi, put_oi) == 110.0


@pytest.mark.unit
def test_max_pain_heavy_put_oi_pulls_low_heavy_call_oi_pulls_high() -> None:
    strikes = np.arange(100.0, 200.0, 10.0)
    calls = np.ones_like(strikes)
    puts = np.ones_like(strikes)
    calls_heavy_low = calls.copy()
    calls_heavy_low[0] = 1000.0  # big call OI at 100 hurts writers for any S > 100
    assert max_pain(strikes, calls_heavy_low, puts) == 100.0
    puts_heavy_high = puts.copy()
    puts_heavy_high[-1] = 1000.0
    assert max_pain(strikes, calls, puts_heavy_high) == 190.0


@pytest.mark.unit
def test_max_pain_tie_is_lowest_strike_and_order_does_not_matter() -> None:
    strikes = np.array([120.0, 100.0, 110.0])
    zeros = np.zeros(3)
    assert max_pain(strikes, zeros, zeros) == 100.0
    assert max_pain(strikes, np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])) == 110.0


@pytest.mark.unit
def test_max_pain_nan_and_empty() -> None:
    assert math.isnan(max_pain([], [], []))
    assert math.isnan(max_pain([np.nan], [1.0], [1.0]))
    strikes = np.array([100.0, 110.0, 120.0, np.nan])
    assert max_pain(strikes, [2, np.nan, 4, 9], [1, 5, 1, 9]) == 110.0
    with pytest.raises(ValueError, match="equal-length"):
        max_pain([100.0, 110.0], [1.0], [1.0, 2.0])


chains = st.integers(min_value=1, max_value=60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(1, 4000), min_size=n, max_size=n, unique=True),
        st.lists(st.integers(0, 10_000_000), min_size=n, max_size=n),
        st.lists(st.integers(0, 10_000_000), min_size=n, max_size=n),
    )
)


@pytest.mark.property
@settings(max_examples=100, deadline=None, database=None)
@given(chains)
def test_max_pain_is_a_listed_strike_with_minimal_payout(chain) -> None:
    ks, cs, ps = (np.array(x, dtype=float) for x in chain)
    strikes = ks * 25.0
    result = max_pain(strikes, cs, ps)
    assert result in set(strikes)
    brute = brute_payouts(strikes, cs, ps)
    at_result = brute[strikes == result][0]
    assert np.all(at_result <= brute)
    assert result == strikes[brute == brute.min()].min()  # ties: lowest strike
    np.testing.assert_array_equal(max_pain_payouts(strikes, cs, ps), brute)
    order = np.argsort(strikes)  # the already-sorted fast path agrees with the sorting one
    assert max_pain(strikes[order], cs[order], ps[order]) == result
    np.testing.assert_array_equal(max_pain_payouts(strikes[order], cs[order], ps[order]),
                                  brute[order])


@pytest.mark.property
@settings(max_examples=100, deadline=None, database=None)
@given(chains, st.integers(-50_000, 50_000))
def test_max_pain_shifts_with_strikes(chain, shift) -> None:
    ks, cs, ps = (np.array(x, dtype=float) for x in chain)
    strikes = ks * 50.0 + 60_000.0
    assert max_pain(strikes + shift, cs, ps) == max_pain(strikes, cs, ps) + shift


@pytest.mark.property
@settings(max_examples=100, deadline=None, database=None)
@given(chains, st.integers(2, 1000))
def test_max_pain_ignores_oi_scale(chain, factor) -> None:
    ks, cs, ps = (np.array(x, dtype=float) for x in chain)
    strikes = ks * 50.0
    assert max_pain(strikes, cs * factor, ps * factor) == max_pain(strikes, cs, ps)


@pytest.mark.property
@settings(max_examples=100, deadline=None, database=None)
@given(chains)
def test_max_pain_mirror_swaps_calls_and_puts(chain) -> None:
    # Reflecting strikes K -> -K turns every call payout into a put payout and back.
    ks, cs, ps = (np.array(x, dtype=float) for x in chain)
    strikes = ks * 50.0
    brute = brute_payouts(strikes, cs, ps)
    mirrored = max_pain_payouts(-strikes, ps, cs)
    np.testing.assert_array_equal(mirrored, brute)


# --- skew --------------------------------------------------------------------------------------


@pytest.mark.unit
def test_iv_skew_is_otm_put_minus_otm_call() -> None:
    strikes = np.array([23900.0, 23950.0, 24000.0, 24050.0, 24100.0])
    call_iv = np.array([14.0, 13.0, 12.0, 11.0, 10.5])
    put_iv = np.array([15.5, 14.0, 12.2, 11.5, 11.0])
    assert iv_skew(strikes, call_iv, put_iv, 24000.0, 50.0, 2) == pytest.approx(15.5 - 10.5)
    assert iv_skew(strikes, call_iv, put_iv, 24000.0, 50.0, 1) == pytest.approx(14.0 - 11.0)


@pytest.mark.unit
def test_iv_skew_nan_when_wing_missing() -> None:
    strikes = np.array([23950.0, 24000.0, 24050.0])
    call_iv = np.array([13.0, 12.0, np.nan])
    put_iv = np.array([14.0, 12.2, 11.5])
    assert math.isnan(iv_skew(strikes, call_iv, put_iv, 24000.0, 50.0, 1))
    assert math.isnan(iv_skew(strikes, call_iv, put_iv, 24000.0, 50.0, 3))


# --- whole chain -------------------------------------------------------------------------------


def _chain() -> dict[str, np.ndarray]:
    return {
        "strikes": np.array([23900.0, 23950.0, 24000.0, 24050.0, 24100.0]),
        "call_ltp": np.array([180.0, 140.0, 105.0, 75.0, 52.0]),
        "put_ltp": np.array([30.0, 42.0, 58.0, np.nan, 105.0]),
        "call_oi": np.array([100.0, 200.0, 300.0, 400.0, np.nan]),
        "put_oi": np.array([500.0, 400.0, 300.0, 100.0, 20.0]),
        "call_volume": np.array([10.0, 20.0, 30.0, 40.0, 0.0]),
        "put_volume": np.array([5.0, 5.0, np.nan, 5.0, 5.0]),
        "call_iv": np.array([13.0, 12.5, 12.0, 11.6, 11.0]),
        "put_iv": np.array([14.0, 13.2, np.nan, 12.0, 11.8]),
        "call_oi_change": np.array([10.0, -5.0, np.nan, 0.0, 0.0]),
        "put_oi_change": np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    }


@pytest.mark.unit
def test_chain_aggregates_hand_example() -> None:
    agg = chain_aggregates(24010.0, **_chain(), step=50.0, skew_steps=2)
    assert isinstance(agg, ChainAggregates)
    assert agg.atm_strike == 24000.0
    assert agg.atm_iv == pytest.approx(12.0)  # put IV missing: the call's alone
    assert agg.straddle == pytest.approx(105.0 + 58.0)
    assert agg.pcr_oi == pytest.approx(1320.0 / 1000.0)
    assert agg.pcr_volume == pytest.approx(20.0 / 100.0)
    assert agg.skew == pytest.approx(14.0 - 11.0)
    assert (agg.ce_oi, agg.pe_oi) == (1000.0, 1320.0)
    assert (agg.ce_oi_change, agg.pe_oi_change) == (5.0, 15.0)
    assert agg.strikes == 5
    expected = brute_payouts(_chain()["strikes"], np.nan_to_num(_chain()["call_oi"]),
                             _chain()["put_oi"])
    assert agg.max_pain == _chain()["strikes"][np.argmin(expected)]


@pytest.mark.unit
def test_chain_aggregates_straddle_nan_when_a_leg_has_no_price() -> None:
    agg = chain_aggregates(24050.0, **_chain(), step=50.0)
    assert agg.atm_strike == 24050.0
    assert math.isnan(agg.straddle)
    assert agg.atm_iv == pytest.approx((11.6 + 12.0) / 2)


@pytest.mark.unit
def test_chain_aggregates_rejects_misaligned_arrays() -> None:
    data = _chain()
    data["put_iv"] = data["put_iv"][:-1]
    with pytest.raises(ValueError, match="put_iv"):
        chain_aggregates(24000.0, **data, step=50.0)


@pytest.mark.unit
def test_chain_aggregates_empty_chain_is_all_nan_not_an_error() -> None:
    empty = {name: np.array([]) for name in _chain()}
    agg = chain_aggregates(24000.0, **empty, step=50.0)
    assert math.isnan(agg.atm_strike) and math.isnan(agg.max_pain) and math.isnan(agg.pcr_oi)
    assert agg.ce_oi == 0.0 and agg.strikes == 0


@pytest.mark.unit
def test_batch_of_ragged_chains_matches_one_by_one() -> None:
    full = _chain()
    short = {name: arr[1:4] for name, arr in full.items()}  # 3 strikes, padded to 5
    shuffled = {name: arr[::-1] for name, arr in full.items()}  # unsorted strikes
    chains = [full, short, shuffled]
    blocks = {name: pad_chains([c[name] for c in chains]) for name in full}
    spots = np.array([24010.0, 24060.0, 23990.0])
    batch = chain_aggregates_batch(spots, **blocks, step=50.0, skew_steps=1)
    singles = [
        chain_aggregates(s, **c, step=50.0, skew_steps=1) for s, c in zip(spots, chains, strict=True)
    ]
    assert len(batch) == 3
    for got, want in zip(batch, singles, strict=True):
        for field in got.__dataclass_fields__:
            a, b = getattr(got, field), getattr(want, field)
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b), field
    assert batch[1].strikes == 3 and batch[1].atm_strike == 24050.0
    assert batch[1].ce_oi == 200.0 + 300.0 + 400.0
    assert batch[2].atm_strike == 24000.0 and batch[2].max_pain == batch[0].max_pain


@pytest.mark.unit
def test_padding_with_values_under_nan_strikes_is_ignored() -> None:
    strikes = np.array([[100.0, 110.0, 120.0, np.nan]])
    oi = np.array([[5.0, 5.0, 5.0, 1e9]])
    ones = np.ones((1, 4))
    (agg,) = chain_aggregates_batch(
        [111.0], strikes, ones, ones, oi, oi, ones, ones, ones, ones, ones, ones, step=10.0
    )
    assert agg.ce_oi == 15.0 and agg.max_pain == 110.0 and agg.strikes == 3


@pytest.mark.property
@settings(max_examples=30, deadline=None, database=None)
@given(st.lists(chains, min_size=1, max_size=6))
def test_batch_max_pain_matches_brute_force(many) -> None:
    strike_rows = [np.array(ks, dtype=float) * 50.0 for ks, _, _ in many]
    blocks = [pad_chains(strike_rows)] + [
        pad_chains([np.array(x[i], dtype=float) for x in many]) for i in (1, 2)
    ]
    k, c, p = blocks
    nan = np.full_like(k, np.nan)
    out = chain_aggregates_batch(np.zeros(len(many)), k, nan, nan, c, p, nan, nan, nan, nan,
                                 nan, nan, step=50.0)
    for agg, ks, (_, cs, ps) in zip(out, strike_rows, many, strict=True):
        brute = brute_payouts(ks, np.array(cs, dtype=float), np.array(ps, dtype=float))
        assert agg.max_pain == ks[brute == brute.min()].min()
        assert agg.atm_strike == ks.min()
