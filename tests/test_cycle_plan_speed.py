"""The plan of a cycle as it was computed before it was made cheaper: strike spacing without
np.unique on a chain's already sorted strikes, and the quote batches of an unchanged plan
taken from the cycle before."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.collectors.chain_plan import quote_batches
from optui.collectors.instruments import strike_spacing


def _spacing_before(strikes: np.ndarray, spot: float, fallback: float, near: int = 10) -> float:
    """strike_spacing as first written (np.unique for the strikes and the gaps' counts)."""
    s = np.unique(np.asarray(strikes, dtype=float))
    if s.size < 3 or not np.isfinite(spot):
        return float(fallback)
    nearest = np.sort(s[np.argsort(np.abs(s - spot))[: max(near, 3)]])
    gaps = np.diff(nearest)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return float(fallback)
    values, counts = np.unique(np.round(gaps, 6), return_counts=True)
    return float(values[np.argmax(counts)] if counts.max() > 1 else gaps.min())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([0.5, 25.0, 50.0, 50.0, 100.0, 100.0, 500.0, 33.3333333]),
             min_size=0, max_size=40),
    st.floats(-1000.0, 30000.0),
    st.booleans(),
    st.integers(0, 12),
)
def test_strike_spacing_equals_the_first_definition(steps: list[float], spot: float,
                                                     shuffle: bool, near: int) -> None:
    strikes = 20000.0 + np.cumsum(steps)
    if shuffle:  # any order, with repeats: np.unique's path
        strikes = np.concatenate([strikes[::-1], strikes[: len(strikes) // 2]])
    got = strike_spacing(strikes, spot, 50.0, near)
    assert got == _spacing_before(strikes, spot, 50.0, near)


def test_strike_spacing_reads_nan_strikes_as_before() -> None:
    strikes = np.array([100.0, 150.0, np.nan, 200.0, 250.0, 300.0])
    assert strike_spacing(strikes, 210.0, 7.0) == _spacing_before(strikes, 210.0, 7.0) == 50.0
    assert strike_spacing(strikes, float("nan"), 7.0) == 7.0


def test_an_unchanged_plan_is_batched_as_before_and_a_changed_one_again() -> None:
    groups = [[f"NFO:A{i}" for i in range(300)], [f"NFO:B{i}" for i in range(300)],
              [f"NFO:C{i}" for i in range(150)]]
    first = quote_batches(groups, 500)
    assert [len(b) for b in first] == [450, 300]
    first[0].clear()  # the caller's lists are its own
    again = quote_batches([list(g) for g in groups], 500)
    assert again == [groups[0] + groups[2], groups[1]]
    groups[2].append("NFO:D")  # a changed plan
    assert quote_batches(groups, 500) == [groups[0] + groups[2], groups[1]]
    assert quote_batches(groups, 400) == groups  # another limit: packed again


def test_a_table_gives_the_rows_of_the_keys_asked_again_and_of_new_keys() -> None:
    from optui.collectors.quote_table import QuoteTable

    table = QuoteTable.empty(["A", "B", "C"])
    assert table.rows(["C", "A", "X"]).tolist() == [2, 0, -1]
    rows = table.rows(["C", "A", "X"])
    rows[0] = 7  # the caller's copy
    assert QuoteTable.empty(["A", "B", "C"]).rows(["C", "A", "X"]).tolist() == [2, 0, -1]
    assert QuoteTable.empty(["B", "C", "A"]).rows(["C", "A", "X"]).tolist() == [1, 2, -1]
    assert QuoteTable.empty(["B", "C", "A"]).rows(["A"]).tolist() == [2]
