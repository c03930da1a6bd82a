"""A snapshot's legs held as columns (optui.leg_rows.LegRows) read exactly as the LegRecords built
eagerly from the same columns: row by row, sliced, iterated, compared, pickled; and every reader
that goes over all legs from the columns (the feed's payload, the leg files, the store's
columns, the OI-change ranking, the chain rows, the flagged count) gives what it gave for a list
of those LegRecords."""

from __future__ import annotations

import copy
import json
import math
import pickle
from dataclasses import astuple, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optui.analytics.positions import top_oi_changes
from optui.collectors.engine import CollectionEngine
from optui.collectors.sim_source import SimulatedSource
from optui.config import Settings
from optui.feed.codec import snapshot_from_payload, snapshot_payload
from optui.leg_rows import LEG_FIELDS, LegRows, leg_array, leg_column, leg_values, legs_where
from optui.models import IndexSnapshot, LegRecord, Snapshot
from optui.storage.cache import dumps as cache_dumps
from optui.storage.legacy_files import write_legacy_files
from optui.storage.records import leg_columns
from optui.timeutil import IST, UTC
from optui.widgets.chain_table import all_chain_rows, chain_rows
from optui.widgets.dashboard_model import StrikeWindow

AT = datetime(2026, 11, 25, 11, 0, 7, tzinfo=IST).astimezone(UTC)


def _same(a: object, b: object) -> bool:
    """Equal and of one type, floats bit for bit by their repr (NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    return a == b


def _assert_same_legs(got: object, want: list[LegRecord]) -> None:
    rows = list(got)  # type: ignore[call-overload]
    assert len(rows) == len(want)
    for i, (a, b) in enumerate(zip(rows, want, strict=True)):
        assert type(a) is LegRecord
        for name, x, y in zip(LEG_FIELDS, astuple(a), astuple(b), strict=True):
            assert _same(x, y), (i, name, x, y)


def _eager(columns: dict[str, object]) -> list[LegRecord]:
    """LegRecords built from columns in one pass, as the analytics built them before."""
    return list(map(LegRecord, *(col.tolist() if isinstance(col, np.ndarray) else col
                                 for col in (columns[name] for name in LEG_FIELDS))))


def _columns() -> dict[str, object]:
    """Five legs of every kind of value a column holds: float arrays with NaN and ±inf, int64
    arrays, string arrays, lists of aware datetimes, dates and strings."""
    n = 5
    floats = np.array([1.5, math.nan, -0.0, math.inf, 24150.0])
    cols: dict[str, object] = {name: floats * (j + 1) for j, name in enumerate(LEG_FIELDS)}
    cols.update(
        timestamp=[AT, AT, AT, AT + timedelta(seconds=1), AT],
        index=["NIFTY"] * 3 + ["SENSEX"] * 2,
        bucket=["this_week", "this_week", "next_week", "this_week", "this_week"],
        side=["CALL", "PUT"] * 2 + ["CALL"],
        expiry=[date(2026, 12, 1)] * 3 + [date(2026, 12, 4)] * 2,
        strike_offset=["atm", "atm", "atm_p1", "atm_m1", "atm"],
        volume=np.array([0, 75, 1_500, 2**40, 3], dtype=np.int64),
        instrument_token=np.array([256265, 12, 13, 14, 15], dtype=np.int64),
        tradingsymbol=[f"NIFTY25DEC{k}CE" for k in range(n)],
        buildup=np.array(["", "long_buildup", "short_buildup", "", "long_unwinding"]),
        flags=np.array(["", "stale", "", "wide_spread,no_iv", ""]),
    )
    return cols


@pytest.mark.unit
def test_rows_read_as_the_eagerly_built_records_field_for_field() -> None:
    cols = _columns()
    want = _eager(cols)
    legs = LegRows(cols)
    assert len(legs) == 5 and bool(legs) and repr(legs) == "LegRows(5 legs)"
    for i in (3, 0, -1, 1, 2, 4, -5):  # one at a time, in any order, before any iteration
        _assert_same_legs([legs[i]], [want[i]])
    assert legs[3] is legs[3]  # built once
    _assert_same_legs(legs, want)
    _assert_same_legs(reversed(legs), want[::-1])
    assert type(legs[0].volume) is int and type(legs[3].timestamp) is datetime
    assert type(legs[0].expiry) is date and type(legs[1].buildup) is str
    assert math.isnan(legs[1].last_price) and legs[3].last_price == math.inf
    with pytest.raises(IndexError):
        legs[5]  # noqa: B018 - the read raises
    with pytest.raises(IndexError):
        legs[-6]  # noqa: B018


@pytest.mark.unit
def test_slices_takes_and_selections_are_legs_of_those_rows() -> None:
    cols = _columns()
    want = _eager(cols)
    legs = LegRows(cols)
    for part in (slice(1, 4), slice(None, None, 2), slice(None, None, -1), slice(4, 1),
                 slice(-2, None), slice(0, 99)):
        got = legs[part]
        assert isinstance(got, LegRows)
        _assert_same_legs(got, want[part])
    _assert_same_legs(legs.take([4, 0, -2]), [want[4], want[0], want[3]])
    _assert_same_legs(legs_where(legs, bucket="this_week", index="NIFTY"), want[:2])
    _assert_same_legs(legs_where(want, bucket="this_week", index="NIFTY"), want[:2])
    assert legs.where(bucket="none") == []
    with pytest.raises(IndexError):
        legs.take([5])
    # A slice's array columns are views of the whole; a slice of a slice reads the right rows.
    assert np.shares_memory(legs[1:4].column("oi"), cols["oi"])  # type: ignore[arg-type]
    _assert_same_legs(legs[1:5][1:3], want[2:4])
    view = legs[1:4]  # its columns asked for one by one, in another order than the fields'
    for name in reversed(LEG_FIELDS):
        view.column(name)
    assert list(view.columns) == list(LEG_FIELDS)
    _assert_same_legs(view, want[1:4])


@pytest.mark.unit
def test_columns_are_read_without_building_records() -> None:
    cols = _columns()
    legs = LegRows(cols)
    assert leg_column(legs, "oi") is cols["oi"] and legs.column("index") is cols["index"]
    assert leg_values(legs, "volume") == [0, 75, 1_500, 2**40, 3]
    assert all(type(v) is int for v in leg_values(legs, "volume"))
    np.testing.assert_array_equal(leg_array(legs, "strike"), cols["strike"])  # type: ignore[arg-type]
    assert legs._rows is None  # nothing was built  # noqa: SLF001
    want = _eager(cols)
    assert leg_values(want, "side") == leg_values(legs, "side")
    np.testing.assert_array_equal(leg_array(want, "iv"), leg_array(legs, "iv"))


@pytest.mark.unit
def test_concat_joins_rows_and_adjacent_slices_stay_one_block() -> None:
    cols = _columns()
    want = _eager(cols)
    legs = LegRows(cols)
    joined = LegRows.concat([legs[0:2], legs[2:5]])
    _assert_same_legs(joined, want)
    assert joined is legs  # the whole of it
    middle = LegRows.concat([legs[1:2], legs[2:4]])
    _assert_same_legs(middle, want[1:4])
    assert middle[0] is legs[1] and list(middle)[2] is legs[3]  # a row is built once
    assert np.shares_memory(middle.column("oi"), cols["oi"])  # type: ignore[arg-type]
    mixed = LegRows.concat([legs[3:5], want[0:1], legs[1:2]])  # not adjacent, and a list
    _assert_same_legs(mixed, [want[3], want[4], want[0], want[1]])
    assert len(LegRows.concat([])) == 0
    with pytest.raises(ValueError, match="lengths"):
        LegRows({**cols, "oi": np.zeros(4)})
    with pytest.raises(ValueError, match="missing: flags"):
        LegRows({k: v for k, v in cols.items() if k != "flags"})


@pytest.mark.unit
def test_equality_pickle_and_copies() -> None:
    cols = _columns()
    legs = LegRows(cols)
    records = list(legs)
    assert legs == records and records == legs and legs == legs and legs != records[:4]
    assert legs != "legs" and legs != 5
    finite = {k: (np.nan_to_num(v, posinf=7.0) if isinstance(v, np.ndarray) else v)
              for k, v in cols.items()}
    assert LegRows(finite) == _eager(finite)  # equal values: equal (NaN never equals NaN)
    for other in (pickle.loads(pickle.dumps(legs)), copy.deepcopy(legs), copy.copy(legs)):
        assert isinstance(other, LegRows)
        _assert_same_legs(other, records)
    frozen = LegRows.of(records)
    assert frozen[2] is records[2]  # the records given are its rows
    _assert_same_legs(LegRows(frozen.columns), records)
    idx = IndexSnapshot("NIFTY", None, legs)  # type: ignore[arg-type]
    assert idx == replace(idx, legs=records)


# -- the readers of every leg, against the same snapshot with eager LegRecords -----------------

@pytest.fixture(scope="module")
def cycles(tmp_path_factory: pytest.TempPathFactory) -> list[Snapshot]:
    """Two simulated cycles a minute apart (the second has flow and OI changes) of two indices,
    the nearest expiry's whole chain and the offsets of the others."""
    root = tmp_path_factory.mktemp("leg-rows")
    s = Settings()
    s.source.indices = ["NIFTY", "SENSEX"]
    s.source.full_chain_expiries = 1
    clock = [0.0]
    source = SimulatedSource(seed=7, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST),
                             clock=lambda: clock[0])
    eng = CollectionEngine(s, source, state_dir=root / "state")
    try:
        first = eng.collect_once()
        clock[0] += 60.0
        return [first, eng.collect_once()]
    finally:
        eng.close()


def _eager_snapshot(snap: Snapshot) -> Snapshot:
    """The snapshot with each index's legs as a list of LegRecords built from its columns."""
    out = copy.copy(snap)
    out.indices = {k: replace(idx, legs=_eager(idx.legs.columns))  # type: ignore[attr-defined]
                   for k, idx in snap.indices.items()}
    return out


@pytest.mark.integration
def test_collected_legs_are_columns_that_read_as_the_eager_records(cycles: list[Snapshot]) -> None:
    snap = cycles[-1]
    for idx in snap.indices.values():
        assert isinstance(idx.legs, LegRows) and len(idx.legs) > 100
        want = _eager(idx.legs.columns)
        _assert_same_legs(idx.legs, want)
        assert any(math.isnan(leg.delta) for leg in want) or any(leg.flags for leg in want)
        assert any(leg.oi_change_snapshot != 0 for leg in want)  # the second cycle moved
    assert snap.leg_count == sum(len(i.legs) for i in snap.indices.values())


@pytest.mark.integration
def test_the_feed_payload_is_the_same_text_and_decodes_to_the_same_legs(
        cycles: list[Snapshot]) -> None:
    for snap in cycles:
        eager = _eager_snapshot(snap)
        text = cache_dumps(snapshot_payload(snap))
        assert text == cache_dumps(snapshot_payload(eager))
        assert json.dumps(snapshot_payload(snap)) == json.dumps(snapshot_payload(eager))
        back = snapshot_from_payload(json.loads(text))
        for key, idx in back.indices.items():
            # NaN and ±inf travel as null (NaN back): compare with the eager legs so cleaned.
            want = [LegRecord(*[math.nan if isinstance(v, float) and not math.isfinite(v) else v
                                for v in astuple(leg)]) for leg in eager.indices[key].legs]
            _assert_same_legs(idx.legs, want)


@pytest.mark.integration
def test_leg_files_store_columns_and_counts_are_the_same(cycles: list[Snapshot],
                                                         tmp_path: Path) -> None:
    snap = copy.copy(cycles[-1])  # 60 legs of each index (a file each is written twice)
    snap.indices = {k: replace(idx, legs=idx.legs[-60:]) for k, idx in snap.indices.items()}
    eager = copy.copy(snap)  # from the columns of the whole, not the views' own
    eager.indices = {k: replace(idx, legs=_eager(cycles[-1].indices[k].legs.columns)[-60:])
                     for k, idx in snap.indices.items()}
    a, b = tmp_path / "rows", tmp_path / "eager"
    assert write_legacy_files(snap, a) == write_legacy_files(eager, b)
    for key, idx in snap.indices.items():  # the views' columns read in the files' order
        _assert_same_legs(idx.legs, list(eager.indices[key].legs))
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) > snap.leg_count  # a JSON per leg and the CSV
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    got, want = leg_columns(snap), leg_columns(eager)
    assert got.times_ns == want.times_ns and got.tags_list == want.tags_list
    assert got.columns.keys() == want.columns.keys()
    for name, col in want.columns.items():
        assert [repr(v) for v in np.asarray(got.columns[name]).tolist()] == \
            [repr(v) for v in np.asarray(col).tolist()], name
    assert snap.flagged_count == eager.flagged_count


def _top_oi_changes_per_leg(legs: list[LegRecord], n: int) -> list[LegRecord]:
    """The ranking as it was written leg by leg."""
    movers = [leg for leg in legs if math.isfinite(leg.oi_change) and leg.oi_change != 0]
    unique: dict[tuple[object, float, str], LegRecord] = {}
    for leg in movers:
        unique.setdefault((leg.expiry, leg.strike, leg.side), leg)
    return sorted(unique.values(), key=lambda leg: abs(leg.oi_change), reverse=True)[:n]


@pytest.mark.integration
def test_ranking_and_chain_rows_read_from_columns_as_from_records(cycles: list[Snapshot]) -> None:
    snap = cycles[-1]
    eager = _eager_snapshot(snap)
    for key, idx in snap.indices.items():
        records = eager.indices[key].legs
        for n in (0, 1, 10, 10_000):
            want = _top_oi_changes_per_leg(list(records), n)
            _assert_same_legs(top_oi_changes(idx.legs, n), want)
            _assert_same_legs(top_oi_changes(records, n), want)
        for bucket in idx.overview.buckets:
            assert chain_rows(idx.legs, key, bucket) == chain_rows(records, key, bucket)
    assert all_chain_rows(snap) == all_chain_rows(eager)


@pytest.mark.unit
def test_ranking_keeps_each_contract_once_and_ties_in_leg_order() -> None:
    cols = _columns()
    cols["oi_change"] = np.array([-50.0, 50.0, math.nan, 0.0, 50.0])
    cols["expiry"] = [date(2026, 12, 1)] * 5
    cols["side"] = ["CALL", "PUT", "CALL", "CALL", "PUT"]
    cols["strike"] = np.array([100.0, 100.0, 100.0, 200.0, 100.0])  # row 4: row 1's contract
    legs = LegRows(cols)
    want = _top_oi_changes_per_leg(_eager(cols), 5)
    got = top_oi_changes(legs, 5)
    _assert_same_legs(got, want)
    assert [leg.oi_change for leg in got] == [-50.0, 50.0] and got[1] is legs[1]


@pytest.mark.integration
def test_rows_around_the_atm_hold_every_row_the_strike_window_shows(
        cycles: list[Snapshot]) -> None:
    """Whatever centre the window kept from before (none, near, far), the window over the rows
    around the ATM shows the rows it shows over the whole chain's, at every ATM."""
    idx = cycles[-1].indices["NIFTY"]
    full = chain_rows(idx.legs, "NIFTY", "this_week")
    strikes = [float(k) for k in full]
    assert len(strikes) > 60
    each = 10
    for at in strikes[::3] + [strikes[0], strikes[-1]]:
        near = chain_rows(idx.legs, "NIFTY", "this_week", around=(at, each + 2))
        assert len(near) <= 2 * (each + 2) + 1 and set(near) <= set(full)
        i = strikes.index(at)
        for before in (None, i, i - 1, i + 1, i - 2, i + 3, 0, len(strikes) - 1):
            shown = []
            for rows in (full, near):
                window = StrikeWindow(each)
                if before is not None and 0 <= before < len(strikes):
                    window._centres[("NIFTY", "this_week")] = strikes[before]  # noqa: SLF001
                keys = list(rows)
                lo, hi = window.select(("NIFTY", "this_week"), [float(k) for k in keys], at)
                shown.append({k: rows[k] for k in keys[lo:hi]})
            assert shown[0] == shown[1], (at, before)
