"""Timeframe buckets: IST alignment of every timeframe and conservation of rolled-up sums."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.analytics.timeframes import (
    TIMEFRAMES,
    bucket_start_ns,
    parse_timeframe,
    rollup,
    timeframe_seconds,
)
from optui.timeutil import IST, UTC


def ns(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000_000


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


def start(at: datetime, tf: str) -> datetime:
    value = int(bucket_start_ns(np.array([ns(at)]), tf)[0])
    return datetime.fromtimestamp(value / 1e9, tz=UTC).astimezone(IST)


@pytest.mark.unit
def test_timeframe_names_and_lengths() -> None:
    assert TIMEFRAMES == ("1m", "5m", "15m", "30m", "1h", "1d", "1w")
    assert [timeframe_seconds(tf) for tf in TIMEFRAMES] == [
        60, 300, 900, 1800, 3600, 86400, 604800
    ]


@pytest.mark.unit
def test_parse_timeframe_normalises_and_names_allowed_values() -> None:
    assert parse_timeframe(" 1H ") == "1h"
    assert parse_timeframe("15M") == "15m"
    with pytest.raises(ValueError, match="2h.*1m, 5m, 15m, 30m, 1h, 1d, 1w"):
        parse_timeframe("2h")


@pytest.mark.unit
def test_market_open_starts_a_15m_bucket() -> None:
    # 09:15 IST is 03:45 UTC: naive UTC flooring would give 03:45 too, but 09:20 must not.
    assert start(ist(2026, 8, 19, 9, 15), "15m") == ist(2026, 8, 19, 9, 15)
    assert start(ist(2026, 8, 19, 9, 29, 59), "15m") == ist(2026, 8, 19, 9, 15)
    assert start(ist(2026, 8, 19, 9, 30), "15m") == ist(2026, 8, 19, 9, 30)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("tf", "expected"),
    [
        ("1m", (2026, 8, 19, 10, 47)),
        ("5m", (2026, 8, 19, 10, 45)),
        ("15m", (2026, 8, 19, 10, 45)),
        ("30m", (2026, 8, 19, 10, 30)),
        # An hour bucket on the IST clock: 10:00 IST is 04:30 UTC, not a UTC hour.
        ("1h", (2026, 8, 19, 10, 0)),
        ("1d", (2026, 8, 19, 0, 0)),
        ("1w", (2026, 8, 17, 0, 0)),  # Monday 17 August 2026
    ],
)
def test_each_timeframe_aligns_to_ist(tf: str, expected: tuple[int, ...]) -> None:
    assert start(ist(2026, 8, 19, 10, 47, 31), tf) == ist(*expected)


@pytest.mark.unit
def test_day_bucket_is_ist_midnight_not_utc() -> None:
    # 01:00 IST on the 20th is still the 19th in UTC; the IST day must win.
    assert start(ist(2026, 8, 20, 1, 0), "1d") == ist(2026, 8, 20)


@pytest.mark.unit
def test_week_bucket_is_monday_ist() -> None:
    assert start(ist(2026, 8, 17, 0, 0), "1w") == ist(2026, 8, 17)  # Monday itself
    assert start(ist(2026, 8, 16, 23, 59), "1w") == ist(2026, 8, 10)  # Sunday night
    # 00:30 IST Monday is still Sunday in UTC.
    assert start(ist(2026, 8, 24, 0, 30), "1w") == ist(2026, 8, 24)
    assert start(ist(2026, 8, 24, 0, 30), "1w").weekday() == 0


@pytest.mark.unit
def test_rollup_sums_minute_bars_into_15m() -> None:
    minutes = [ist(2026, 8, 19, 9, m) for m in (15, 16, 29, 30, 44, 45)]
    ts = np.array([ns(t) for t in minutes])
    values = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, np.nan], [4.0, 40.0], [5.0, 50.0],
                       [6.0, 60.0]])
    starts, sums = rollup(ts, values, "15m")
    assert [datetime.fromtimestamp(s / 1e9, tz=IST).strftime("%H:%M") for s in starts] == [
        "09:15", "09:30", "09:45"
    ]
    np.testing.assert_array_equal(sums, [[6.0, 30.0], [9.0, 90.0], [6.0, 60.0]])


@pytest.mark.unit
def test_rollup_accepts_unsorted_1d_values_and_empty_input() -> None:
    ts = np.array([ns(ist(2026, 8, 19, 9, 20)), ns(ist(2026, 8, 18, 9, 20)),
                   ns(ist(2026, 8, 19, 15, 29))])
    starts, sums = rollup(ts, np.array([1.0, 2.0, 4.0]), "1d")
    assert list(starts) == [ns(ist(2026, 8, 18)), ns(ist(2026, 8, 19))]
    np.testing.assert_array_equal(sums, [2.0, 5.0])
    starts, sums = rollup(np.array([], dtype=np.int64), np.zeros((0, 3)), "1h")
    assert starts.size == 0 and sums.shape == (0, 3)


@pytest.mark.unit
def test_rollup_rejects_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="one row of values per timestamp"):
        rollup(np.array([0, 60_000_000_000]), np.zeros((3, 2)), "5m")


_DAY_NS = 86400 * 1_000_000_000
_BASE = ns(ist(2026, 8, 3, 9, 15))


@pytest.mark.property
@pytest.mark.parametrize("tf", TIMEFRAMES)
@settings(max_examples=40, deadline=None, database=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 30 * 1440), st.integers(-10**6, 10**6), st.integers(0, 10**6)),
        min_size=1,
        max_size=200,
    ),
)
def test_rollup_conserves_sums_and_aligns(tf, bars) -> None:
    ts = np.array([_BASE + m * 60_000_000_000 for m, _, _ in bars], dtype=np.int64)
    values = np.array([[a, b] for _, a, b in bars], dtype=float)
    starts, sums = rollup(ts, values, tf)
    np.testing.assert_array_equal(sums.sum(axis=0), values.sum(axis=0))
    assert np.all(np.diff(starts) > 0)
    width = timeframe_seconds(tf) * 1_000_000_000
    # Every bar's bucket starts at or before it and the next bucket starts after it.
    own = bucket_start_ns(ts, tf)
    assert np.all((own <= ts) & (ts < own + width))
    assert set(own.tolist()) == set(starts.tolist())
    # Coarser timeframes are sums of finer buckets.
    if tf != "1m":
        fine_starts, fine_sums = rollup(ts, values, "1m")
        again_starts, again_sums = rollup(fine_starts, fine_sums, tf)
        np.testing.assert_array_equal(again_starts, starts)
        np.testing.assert_array_equal(again_sums, sums)
