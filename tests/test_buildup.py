"""Position buildup: the four price/OI quadrants, neutral zeros and NaNs, OI change helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optui.analytics.buildup import (
    BUILDUP_LABELS,
    BUILDUPS,
    LONG_BUILDUP,
    LONG_UNWINDING,
    NEUTRAL,
    SHORT_BUILDUP,
    SHORT_COVERING,
    classify_buildup,
    oi_change,
    oi_change_pct,
)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("price", "oi", "expected"),
    [
        (1.5, 650.0, LONG_BUILDUP),
        (-1.5, 650.0, SHORT_BUILDUP),
        (1.5, -650.0, SHORT_COVERING),
        (-1.5, -650.0, LONG_UNWINDING),
        (0.0, 650.0, NEUTRAL),
        (1.5, 0.0, NEUTRAL),
        (0.0, 0.0, NEUTRAL),
        (float("nan"), 650.0, NEUTRAL),
        (-1.5, float("nan"), NEUTRAL),
    ],
)
def test_buildup_table(price: float, oi: float, expected: str) -> None:
    assert classify_buildup(np.array([price]), np.array([oi]))[0] == expected


@pytest.mark.unit
def test_classify_buildup_vectorised_and_codes() -> None:
    out = classify_buildup([0.05, -0.05, 2.0, -2.0, 0.0], [65, 65, -65, -65, 65])
    assert out.tolist() == [LONG_BUILDUP, SHORT_BUILDUP, SHORT_COVERING, LONG_UNWINDING, ""]
    assert out.dtype.kind == "U"
    assert set(BUILDUPS) == {"long_buildup", "short_buildup", "short_covering", "long_unwinding"}
    assert BUILDUP_LABELS[SHORT_COVERING] == "Short covering" and BUILDUP_LABELS[NEUTRAL] == ""


@pytest.mark.unit
def test_classify_buildup_broadcasts_and_keeps_shape() -> None:
    out = classify_buildup(np.array([[1.0, -1.0], [1.0, -1.0]]), np.array([[1.0], [-1.0]]))
    assert out.shape == (2, 2)
    assert out.tolist() == [[LONG_BUILDUP, SHORT_BUILDUP], [SHORT_COVERING, LONG_UNWINDING]]


@pytest.mark.unit
def test_oi_change_sign_is_growth() -> None:
    np.testing.assert_array_equal(oi_change([1300, 650], [650, 1300]), [650.0, -650.0])
    assert math.isnan(oi_change([100.0], [np.nan])[0])


@pytest.mark.unit
def test_oi_change_pct() -> None:
    out = oi_change_pct([1300.0, 650.0, 500.0, 10.0], [650.0, 1300.0, 0.0, np.nan])
    assert out[0] == pytest.approx(100.0)
    assert out[1] == pytest.approx(-50.0)
    assert math.isnan(out[2]) and math.isnan(out[3])
