"""Data-quality flags: each triggered alone, combinations, masks and their names."""

from __future__ import annotations

import numpy as np
import pytest

from optui.analytics.quality import (
    BELOW_INTRINSIC,
    CROSSED,
    FLAG_BITS,
    NO_ASK,
    NO_BID,
    NO_IV,
    NO_PRICE,
    STALE,
    WIDE_SPREAD,
    discounted_intrinsic,
    flag_names,
    parse_flags,
    quality_flags,
    quality_mask,
)

# A clean quote: traded 5 s ago, bid 100 / ask 101 (1 % spread), last 100.5, intrinsic 80.
CLEAN = {"quote_age_s": 5.0, "bid": 100.0, "ask": 101.0, "last": 100.5, "intrinsic": 80.0}


def flags(**changes: float) -> str:
    row = {**CLEAN, **changes}
    out = quality_flags(
        np.array([row["quote_age_s"]]), np.array([row["bid"]]), np.array([row["ask"]]),
        np.array([row["last"]]), np.array([row["intrinsic"]]),
        tick=0.05, stale_after_s=300.0, wide_spread_pct=10.0,
    )
    return str(out[0])


@pytest.mark.unit
def test_clean_quote_has_no_flags() -> None:
    assert flags() == ""


@pytest.mark.unit
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"quote_age_s": 301.0}, "stale"),
        ({"bid": 0.0, "last": 100.9}, "no_bid"),
        ({"bid": float("nan")}, "no_bid"),
        ({"ask": 0.0}, "no_ask"),
        ({"bid": 101.0, "ask": 100.0}, "crossed"),
        ({"intrinsic": 100.56}, "below_intrinsic"),
        ({"bid": 90.0, "ask": 101.0}, "wide_spread"),
        ({"last": 0.0}, "no_price"),
        ({"last": float("nan")}, "no_price"),
    ],
)
def test_each_flag_alone(changes: dict[str, float], expected: str) -> None:
    assert flags(**changes) == expected


@pytest.mark.unit
def test_thresholds_are_strict() -> None:
    assert flags(quote_age_s=300.0) == ""  # exactly at the limit is not stale
    assert flags(intrinsic=100.55) == ""  # one tick under intrinsic is tolerated
    assert flags(bid=95.0, ask=105.0) == ""  # spread 10 / mid 100 = exactly 10 %
    assert flags(quote_age_s=float("nan")) == ""  # unknown trade time is not called stale


@pytest.mark.unit
def test_empty_book_and_no_price_combine_in_fixed_order() -> None:
    assert flags(bid=0.0, ask=0.0, last=0.0, quote_age_s=900.0) == "stale,no_bid,no_ask,no_price"


@pytest.mark.unit
def test_no_price_is_not_also_below_intrinsic() -> None:
    assert flags(last=0.0, intrinsic=500.0) == "no_price"


@pytest.mark.unit
def test_crossed_book_is_not_called_wide() -> None:
    assert flags(bid=120.0, ask=100.0) == "crossed"


@pytest.mark.unit
def test_mask_and_names_round_trip() -> None:
    mask = quality_mask([400.0, 5.0], [0.0, 100.0], [101.0, 101.0], [100.5, 100.5], [0.0, 0.0])
    assert mask.tolist() == [STALE | NO_BID, 0]
    assert flag_names(mask).tolist() == ["stale,no_bid", ""]
    assert parse_flags("stale,no_bid") == STALE | NO_BID
    assert parse_flags("") == 0
    every = STALE | NO_BID | NO_ASK | CROSSED | BELOW_INTRINSIC | WIDE_SPREAD | NO_PRICE | NO_IV
    assert parse_flags(flag_names(every).item()) == every
    assert parse_flags("no_iv") == NO_IV
    assert len(set(FLAG_BITS.values())) == len(FLAG_BITS) == 8
    with pytest.raises(ValueError, match="unknown quality flag 'bogus'"):
        parse_flags("stale,bogus")
    with pytest.raises(ValueError, match="outside"):
        flag_names(np.array([1 << 8]))


@pytest.mark.unit
def test_per_leg_ticks_broadcast() -> None:
    out = quality_flags(
        [5.0, 5.0], [100.0, 100.0], [101.0, 101.0], [100.0, 100.0], [100.5, 100.5],
        tick=np.array([0.05, 1.0]),
    )
    assert out.tolist() == ["below_intrinsic", ""]


@pytest.mark.unit
def test_discounted_intrinsic() -> None:
    r, t = 0.065, 0.5
    out = discounted_intrinsic([24100.0, 24100.0, 24000.0], [24000.0, 24000.0, 24100.0],
                               t, r, [True, False, True])
    assert out[0] == pytest.approx(100.0 * np.exp(-r * t))
    assert out[1] == 0.0 and out[2] == 0.0
    put = discounted_intrinsic(24000.0, 24100.0, t, r, False)
    assert float(put) == pytest.approx(100.0 * np.exp(-r * t))
