"""Timeframe buckets for the flow toggle (1m to 1w), aligned to the IST wall clock.

The store keeps one-minute bars; coarser timeframes are sums of those bars, never of raw quotes,
so a toggle answers at once. Buckets follow what an Indian trader reads on a chart: 15-minute
bars start at 09:15 IST, days at IST midnight, weeks on Monday 00:00 IST. Times go in and out as
UTC epoch nanoseconds (int64), the store's native form.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

TIMEFRAMES: tuple[str, ...] = ("1m", "5m", "15m", "30m", "1h", "1d", "1w")

_SECONDS: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "1d": 86400,
    "1w": 7 * 86400,
}

_NS = 1_000_000_000
# IST is UTC+05:30 all year (India has no daylight saving).
_IST_OFFSET_NS = (5 * 3600 + 30 * 60) * _NS
# 1970-01-01 was a Thursday: three days after the Monday that starts its week.
_EPOCH_WEEKDAY = 3


def parse_timeframe(text: str) -> str:
    """Normalise a timeframe such as '15m' or '1H'; raise ValueError naming the allowed ones."""
    tf = str(text).strip().lower()
    if tf not in _SECONDS:
        raise ValueError(f"unknown timeframe {text!r}: choose from {', '.join(TIMEFRAMES)}")
    return tf


def timeframe_seconds(tf: str) -> int:
    """Length of one bucket of timeframe `tf`, in seconds."""
    return _SECONDS[parse_timeframe(tf)]


def bucket_start_ns(ts_ns: ArrayLike, tf: str) -> np.ndarray:
    """Start (UTC epoch ns) of the IST-aligned bucket of timeframe `tf` holding each instant."""
    width = timeframe_seconds(tf) * _NS
    local = np.asarray(ts_ns, dtype=np.int64) + _IST_OFFSET_NS
    if tf.strip().lower() == "1w":
        day = 86400 * _NS
        days = np.floor_divide(local, day)
        monday = days - np.mod(days + _EPOCH_WEEKDAY, 7)
        return monday * day - _IST_OFFSET_NS
    # Every other width divides a day, so flooring local time aligns to the IST wall clock.
    return np.floor_divide(local, width) * width - _IST_OFFSET_NS


def rollup(ts_ns: ArrayLike, values: ArrayLike, tf: str) -> tuple[np.ndarray, np.ndarray]:
    """Sum bars (rows of `values`, n or n x k) into `tf` buckets; returns (starts_ns, sums).

    Starts are sorted ascending and only buckets holding at least one bar appear. NaN values count
    as 0, so every column's total is conserved across timeframes.
    """
    ts = np.asarray(ts_ns, dtype=np.int64).ravel()
    vals = np.asarray(values, dtype=float)
    one_d = vals.ndim == 1
    v2 = vals.reshape(-1, 1) if one_d else vals
    if v2.ndim != 2 or v2.shape[0] != ts.size:
        raise ValueError(
            f"rollup needs one row of values per timestamp: {ts.size} timestamps, "
            f"values shaped {vals.shape}"
        )
    if ts.size == 0:
        starts = np.empty(0, dtype=np.int64)
        return starts, np.zeros((0,) if one_d else (0, v2.shape[1]))
    v2 = np.where(np.isfinite(v2), v2, 0.0)
    starts_all = bucket_start_ns(ts, tf)
    order = np.argsort(starts_all, kind="stable")
    sorted_starts = starts_all[order]
    first = np.flatnonzero(np.r_[True, sorted_starts[1:] != sorted_starts[:-1]])
    sums = np.add.reduceat(v2[order], first, axis=0)
    starts = sorted_starts[first]
    return starts, (sums[:, 0] if one_d else sums)
