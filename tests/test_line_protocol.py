"""Column-wise line protocol formatting against a plain point-by-point reference.

The bulk formatter memoises repeated values, groups runs of points by field names and keys tag
sets by their values; each of those shortcuts is a way to write a wrong figure (an int written as
a float, -0.0 as 0.0, one series' tags on another's point), so every case here is checked against
the definition: each point on its own through `format_value` and the escaping functions.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from optui.storage.base import FrozenTags
from optui.storage.line_protocol import (
    LineFormatter,
    UnrepresentableError,
    escape_key,
    escape_measurement,
    field_texts,
    format_points,
    format_value,
    time_ns,
)
from optui.storage.points import Point

pytestmark = pytest.mark.unit

T0 = datetime(2026, 8, 17, 3, 45, tzinfo=UTC)


def reference(points: list[Point]) -> tuple[list[str], int]:
    """Lines and the count of dropped points, one point at a time."""
    lines, dropped = [], 0
    for p in points:
        try:
            head = escape_measurement(p.measurement)
            tags = [f"{escape_key(k)}={escape_key(v)}" for k, v in sorted(p.tags.items()) if v != ""]
            stamp = time_ns(p.time)
            fields = []
            for k, v in p.fields.items():
                text = format_value(v)
                if text is not None:
                    fields.append(f"{escape_key(k)}={text}")
        except UnrepresentableError:
            dropped += 1
            continue
        if not fields:
            dropped += 1
            continue
        lines.append(f"{','.join([head, *tags])} {','.join(fields)} {stamp}")
    return lines, dropped


VALUES: list[Any] = [0.0, -0.0, 1.0, 1, True, False, 2.5, math.nan, math.inf, -math.inf, None, "a b",
                     'q"uote', 7, -7, 2**62, 1e300, 0.1, np.float64(1.5), np.int64(3)]


def random_points(rng: random.Random, n: int) -> list[Point]:
    shapes = [("ltp", "oi"), ("oi", "ltp"), ("iv",), ("x", "y", "z")]
    series = [{"index": "NIFTY", "side": "CALL"}, {"side": "PUT", "index": "NIFTY"},
              {"index": "BANK NIFTY", "side": ""}, {"index": "bad\\"}]
    pts = []
    for _ in range(n):
        names = rng.choice(shapes)
        fields = {name: rng.choice(VALUES) for name in names}
        at = T0 + timedelta(seconds=rng.randrange(4))
        measurement = rng.choice(["atm_options", "atm_options", "index overview"])
        pts.append(Point(measurement, dict(rng.choice(series)), fields, at))
    return pts


def test_random_batches_format_as_each_point_alone() -> None:
    rng = random.Random(20261129)
    for size in (1, 3, 50, 400):
        for _ in range(20):
            pts = random_points(rng, size)
            batch = format_points(pts)
            assert (batch.lines, batch.dropped) == reference(pts)


def test_repeated_values_keep_their_type_and_sign() -> None:
    # One field, many points: the column is memoised, yet 1, 1.0 and True stay distinct and
    # -0.0 keeps its sign.
    values: list[Any] = [1.0, 1, True, -0.0, 0.0] * 20
    pts = [Point("m", {"s": "a"}, {"v": v}, T0 + timedelta(seconds=i)) for i, v in enumerate(values)]
    lines = format_points(pts).lines
    assert [line.split(" ")[1] for line in lines[:5]] == ["v=1.0", "v=1i", "v=true", "v=-0.0", "v=0.0"]
    assert lines == reference(pts)[0]
    zeros = [Point("m", {"s": "a"}, {"v": v}, T0) for v in [-0.0] * 30 + [0.0] * 30]
    assert {line.split(" ")[1] for line in format_points(zeros).lines} == {"v=-0.0", "v=0.0"}


def test_non_finite_values_in_repeated_columns_are_left_out() -> None:
    pts = [Point("m", {"s": "a"}, {"v": v, "w": 2.0}, T0) for v in [math.nan, 1.5, math.inf] * 10]
    assert format_points(pts).lines == reference(pts)[0]
    assert format_points(pts).lines[0] == "m,s=a w=2.0 1786938300000000000"
    texts, missing = field_texts("v=", [1.5, math.nan, -math.inf, 1.5])
    assert texts == ["v=1.5", None, None, "v=1.5"] and missing


def test_tag_sets_keyed_by_values_never_cross_series() -> None:
    # Same keys in the same order (the values path), other key orders, and shared FrozenTags.
    a = FrozenTags(index="NIFTY", side="CALL")
    b = FrozenTags(index="NIFTY", side="PUT")
    pts = [Point("m", t, {"v": float(i)}, T0) for i, t in enumerate([a, b, a, b])]
    assert format_points(pts).lines == reference(pts)[0]
    plain = [Point("m", {"index": i, "side": s}, {"v": 1.0}, T0)
             for i in ("NIFTY", "BANKNIFTY") for s in ("CALL", "PUT")] * 3
    assert format_points(plain).lines == reference(plain)[0]
    mixed = [Point("m", {"side": "CALL", "index": "NIFTY"}, {"v": 1.0}, T0), *plain]
    assert format_points(mixed).lines == reference(mixed)[0]


def test_fields_given_in_another_order_are_all_written() -> None:
    pts = [Point("m", {"s": "a"}, {"x": 1.0, "y": 2}, T0), Point("m", {"s": "a"}, {"y": 3, "x": 4.0}, T0)]
    lines = format_points(pts).lines
    assert [sorted(line.split(" ")[1].split(",")) for line in lines] == [["x=1.0", "y=2i"], ["x=4.0", "y=3i"]]


def test_columns_match_points_for_numpy_columns_with_gaps() -> None:
    rng = np.random.default_rng(3)
    n = 300
    tags = [{"index": "NIFTY", "strike_offset": f"atm_p{i % 5}"} for i in range(n)]
    times = np.arange(n, dtype=np.int64) // 10 * 1_000_000_000 + time_ns(T0)
    price = np.round(rng.uniform(1, 500, n), 2)
    price[::7] = np.nan
    cols = {"last_price": price, "oi": rng.integers(0, 10**6, n), "strike": np.full(n, 24800.0)}
    by_columns = LineFormatter().format_columns("atm_options", tags, times, cols)
    pts = [Point("atm_options", tags[i], {k: c[i].item() for k, c in cols.items()},
                 T0 + timedelta(seconds=i // 10)) for i in range(n)]
    assert by_columns.lines == reference(pts)[0]
