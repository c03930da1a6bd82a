"""The embedded SQLite store: round trips, replace semantics, IST buckets, WAL, errors."""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optui.analytics.timeframes import bucket_start_ns
from optui.errors import ConfigError, StoreError
from optui.storage.base import Row, Store, open_store, time_to_ns
from optui.storage.points import Point
from optui.storage.sqlite_frames import Layout, merge_frame, pack_texts, unpack_texts
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

T0 = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)  # 09:15 IST, a Tuesday


def leg_point(at: datetime, offset: str = "atm", side: str = "CALL", price: float = 100.0,
              index: str = "NIFTY") -> Point:
    tags = {"index": index, "bucket": "this_week", "side": side, "expiry": "2026-11-25",
            "strike_offset": offset}
    return Point("atm_options", tags, {"last_price": price, "volume": 10, "flags": ""}, at)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "db" / "optui.db")
    yield s
    s.close()


@pytest.mark.unit
def test_round_trip_keeps_types_tags_and_utc_time(store: SQLiteStore) -> None:
    at = datetime(2026, 11, 24, 9, 15, 30, 123456, tzinfo=IST)
    fields = {"f": 1.5, "i": 7, "b": True, "s": "x,y", "nan": math.nan}
    assert store.write([Point("m", {"index": "NIFTY"}, fields, at)]) == 1
    rows = store.query("m", at - timedelta(seconds=1), at + timedelta(seconds=1))
    assert rows == [Row(at.astimezone(UTC), {"index": "NIFTY"}, {"f": 1.5, "i": 7, "b": True, "s": "x,y"})]
    assert rows[0].time.tzinfo is not None and rows[0].time.utcoffset() == timedelta(0)
    assert isinstance(rows[0].fields["i"], int) and isinstance(rows[0].fields["b"], bool)


@pytest.mark.unit
def test_same_identity_replaces_fields_and_keeps_the_others(store: SQLiteStore) -> None:
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 1.0, "outflow_cr": 2.0}, T0)])
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 3.5}, T0)])
    # Tag order must not matter for identity.
    store.write([Point("m2", {"b": "2", "a": "1"}, {"v": 1.0}, T0)])
    store.write([Point("m2", {"a": "1", "b": "2"}, {"v": 9.0}, T0)])
    rows = store.query("premium_flow", T0, T0 + timedelta(minutes=1))
    assert [r.fields for r in rows] == [{"inflow_cr": 3.5, "outflow_cr": 2.0}]
    assert [r.fields for r in store.query("m2", T0, T0 + timedelta(seconds=1))] == [{"v": 9.0}]


@pytest.mark.unit
def test_duplicates_within_one_batch_last_wins(store: SQLiteStore) -> None:
    store.write([leg_point(T0, price=1.0), leg_point(T0, price=2.0), leg_point(T0, "atm_p1", price=5.0)])
    rows = store.query("atm_options", T0, T0 + timedelta(seconds=1))
    assert sorted((r.tags["strike_offset"], r.fields["last_price"]) for r in rows) == [
        ("atm", 2.0), ("atm_p1", 5.0)]


@pytest.mark.unit
def test_merge_into_existing_frame_adds_series(store: SQLiteStore) -> None:
    store.write([leg_point(T0, "atm")])
    store.write([leg_point(T0, "atm_p1", price=7.0), leg_point(T0, "atm", price=8.0)])
    rows = store.query("atm_options", T0, T0 + timedelta(seconds=1))
    assert {(r.tags["strike_offset"], r.fields["last_price"]) for r in rows} == {
        ("atm", 8.0), ("atm_p1", 7.0)}
    assert all(r.fields["volume"] == 10 for r in rows)


@pytest.mark.unit
def test_range_is_half_open_and_ordered(store: SQLiteStore) -> None:
    times = [T0 + timedelta(seconds=s) for s in (30, 0, 10, 20)]
    store.write([leg_point(t, price=float(i)) for i, t in enumerate(times)])
    rows = store.query("atm_options", T0, T0 + timedelta(seconds=20))
    assert [r.time for r in rows] == [T0, T0 + timedelta(seconds=10)]
    assert store.query("atm_options", T0 + timedelta(seconds=31), T0 + timedelta(minutes=1)) == []
    assert len(store.query("atm_options", T0, T0 + timedelta(minutes=1), limit=3)) == 3


@pytest.mark.unit
def test_tag_filter_fields_selection_latest_and_tag_values(store: SQLiteStore) -> None:
    pts = [leg_point(T0 + timedelta(seconds=i), side=side, index=idx, price=float(i))
           for i, (side, idx) in enumerate([("CALL", "NIFTY"), ("PUT", "NIFTY"), ("CALL", "SENSEX")])]
    store.write(pts)
    end = T0 + timedelta(minutes=1)
    puts = store.query("atm_options", T0, end, tags={"side": "PUT"})
    assert [(r.tags["index"], r.fields["last_price"]) for r in puts] == [("NIFTY", 1.0)]
    assert store.query("atm_options", T0, end, tags={"index": "BANKNIFTY"}) == []
    only = store.query("atm_options", T0, end, fields=["last_price"])
    assert all(r.fields.keys() == {"last_price"} for r in only) and len(only) == 3
    assert store.query("atm_options", T0, end, fields=["no_such_field"]) == []
    latest = store.latest("atm_options", {"index": "NIFTY"})
    assert latest is not None and latest.tags["side"] == "PUT"
    assert store.latest("atm_options", {"index": "FINNIFTY"}) is None
    assert store.latest("nothing") is None
    assert store.tag_values("atm_options", "index") == ["NIFTY", "SENSEX"]
    assert store.tag_values("nothing", "index") == []


@pytest.mark.unit
def test_write_columns_accepts_numpy_and_matches_points(store: SQLiteStore) -> None:
    tags = [{"index": "NIFTY"}, {"index": "SENSEX"}]
    times = np.array([time_to_ns(T0)] * 2, dtype=np.int64)
    n = store.write_columns("m", tags, times, {"v": np.array([1.0, np.nan]), "k": np.array([3, 4])})
    assert n == 2
    rows = store.query("m", T0, T0 + timedelta(seconds=1))
    assert [(r.tags["index"], r.fields) for r in rows] == [
        ("NIFTY", {"v": 1.0, "k": 3}), ("SENSEX", {"k": 4})]


@pytest.mark.unit
def test_text_fields_with_separator_and_none_survive(store: SQLiteStore) -> None:
    odd = ["a\x1fb", None, "", "é,\"q\"\n"]
    store.write_columns("m", [{"i": str(i)} for i in range(4)], [time_to_ns(T0)] * 4,
                        {"s": odd, "n": [1, 2, 3, 4]})
    rows = store.query("m", T0, T0 + timedelta(seconds=1))
    assert [r.fields.get("s") for r in rows] == odd
    # A point whose only field is missing does not exist, as in InfluxDB.
    store.write_columns("m", [{"i": "9"}], [time_to_ns(T0)], {"s": [None]})
    assert len(store.query("m", T0, T0 + timedelta(seconds=1))) == 4


@pytest.mark.unit
def test_numeric_field_given_text_names_the_field(store: SQLiteStore) -> None:
    store.write([Point("m", {}, {"v": 1.0}, T0)])
    with pytest.raises(StoreError, match="'v'"):
        store.write([Point("m", {}, {"v": "oops"}, T0 + timedelta(seconds=1))])
    assert len(store.query("m", T0, T0 + timedelta(minutes=1))) == 1


@pytest.mark.unit
@pytest.mark.parametrize("every", ["1m", "5m", "15m", "1h", "1d", "1w"])
def test_aggregate_buckets_follow_ist_clock(store: SQLiteStore, every: str) -> None:
    # 1-minute bars across an IST midnight and a Monday: 2026-11-29 (Sun) 23:50 IST onwards.
    start = datetime(2026, 11, 29, 23, 50, tzinfo=IST)
    bars = [Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": float(i)},
                  start + timedelta(minutes=i)) for i in range(30)]
    store.write(bars)
    got = store.aggregate("premium_flow", ["inflow_cr"], start, start + timedelta(hours=1), every,
                          tags={"index": "NIFTY"})
    expect: dict[int, float] = {}
    for p in bars:
        b = int(bucket_start_ns(p.time_ns, every))
        expect[b] = expect.get(b, 0.0) + float(p.fields["inflow_cr"])
    assert [(time_to_ns(r.time), r.fields["inflow_cr"]) for r in got] == sorted(expect.items())
    assert all(r.tags == {"index": "NIFTY"} for r in got)


@pytest.mark.unit
def test_aggregate_functions_and_absent_fields(store: SQLiteStore) -> None:
    pts = [Point("m", {"s": "a"}, {"v": 1.0, "n": 2}, T0),
           Point("m", {"s": "b"}, {"v": 5.0}, T0),
           Point("m", {"s": "a"}, {"v": 3.0, "n": 4}, T0 + timedelta(seconds=30))]
    store.write(pts)
    end = T0 + timedelta(minutes=1)

    def one(fn: str) -> dict:
        rows = store.aggregate("m", ["v", "n", "missing"], T0, end, "1m", fn=fn)
        assert len(rows) == 1
        return rows[0].fields

    assert one("sum") == {"v": 9.0, "n": 6}
    assert one("mean") == {"v": 3.0, "n": 3.0}
    assert one("max") == {"v": 5.0, "n": 4}
    assert one("min") == {"v": 1.0, "n": 2}
    assert one("last") == {"v": 3.0, "n": 4}
    with pytest.raises(ValueError, match="fn"):
        store.aggregate("m", ["v"], T0, end, "1m", fn="median")
    with pytest.raises(ValueError, match="every"):
        store.aggregate("m", ["v"], T0, end, "2m")


@pytest.mark.property
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=60 * 24 * 9), min_size=1, max_size=40, unique=True),
    values=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=40, max_size=40),
    every=st.sampled_from(["1m", "5m", "15m", "30m", "1h", "1d", "1w"]),
)
def test_aggregate_sums_equal_input_sums(tmp_path: Path, minutes: list[int], values: list[float],
                                         every: str) -> None:
    with SQLiteStore(":memory:") as s:
        bars = [Point("premium_flow", {"index": "NIFTY"}, {"net": values[i]},
                      T0 + timedelta(minutes=m)) for i, m in enumerate(minutes)]
        s.write(bars)
        rows = s.aggregate("premium_flow", ["net"], T0, T0 + timedelta(days=10), every)
        expect: dict[int, float] = {}
        for p in bars:
            b = int(bucket_start_ns(p.time_ns, every))
            expect[b] = expect.get(b, 0.0) + float(p.fields["net"])
        assert [time_to_ns(r.time) for r in rows] == sorted(expect)
        for r in rows:
            assert r.fields["net"] == pytest.approx(expect[time_to_ns(r.time)], abs=1e-6)
        assert sum(r.fields["net"] for r in rows) == pytest.approx(sum(values[: len(minutes)]), abs=1e-3)


@pytest.mark.property
@settings(max_examples=40, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.integers(0, 600), st.sampled_from(["NIFTY", "SENSEX", "BANKNIFTY"]),
                  st.one_of(st.none(), st.floats(-1e3, 1e3, allow_nan=False))),
        min_size=1, max_size=50),
    every=st.sampled_from(["5m", "15m", "1h", "1d"]),
    fn=st.sampled_from(["sum", "mean", "max", "min", "last"]),
)
def test_every_function_matches_a_plain_recount(
    points: list[tuple[int, str, float | None]], every: str, fn: str
) -> None:
    latest: dict[tuple[int, str], float | None] = {}
    for minute, index, value in points:  # later writes of one identity replace earlier ones
        key = (minute, index)
        latest[key] = value if value is not None else latest.get(key)
    with SQLiteStore(":memory:") as s:
        s.write([Point("m", {"index": i}, {"v": v if v is not None else math.nan, "w": 1.0},
                       T0 + timedelta(minutes=m)) for m, i, v in points])
        rows = s.aggregate("m", ["v"], T0, T0 + timedelta(days=1), every, fn=fn)
    series = sorted(latest.items())  # time order, ties by index name (= series id order here)
    ids = {i: n for n, i in enumerate(dict.fromkeys(i for _m, i, _v in points))}
    series.sort(key=lambda kv: (kv[0][0], ids[kv[0][1]]))
    groups: dict[int, list[float]] = {}
    for (minute, _index), value in series:
        if value is not None:
            b = int(bucket_start_ns(time_to_ns(T0 + timedelta(minutes=minute)), every))
            groups.setdefault(b, []).append(value)
    calc = {"sum": sum, "max": max, "min": min, "last": lambda v: v[-1],
            "mean": lambda v: sum(v) / len(v)}[fn]
    assert {time_to_ns(r.time): r.fields["v"] for r in rows} == pytest.approx(
        {b: calc(v) for b, v in groups.items()})


@pytest.mark.integration
def test_wal_mode_and_reader_sees_committed_writes_while_writing(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    store = SQLiteStore(path)
    try:
        assert store.journal_mode == "wal"
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        errors: list[BaseException] = []
        seen: list[int] = []
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    n = len(store.query("atm_options", T0, T0 + timedelta(days=1)))
                    assert n % 5 == 0  # whole frames only: a write is atomic to readers
                    seen.append(n)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(60):
            at = T0 + timedelta(seconds=i)
            store.write([leg_point(at, off) for off in ("atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2")])
        stop.set()
        thread.join()
        assert not errors, errors
        assert seen and seen == sorted(seen)
        # A second store on the same file (another process, e.g. `optui export`) sees everything.
        with SQLiteStore(path) as other:
            assert len(other.query("atm_options", T0, T0 + timedelta(days=1))) == 300
            assert other.tag_values("atm_options", "strike_offset")[0] == "atm"
    finally:
        store.close()


@pytest.mark.unit
def test_bad_paths_raise_store_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=r"file.*cannot create directory"):
        SQLiteStore(blocker / "sub" / "x.db")
    with pytest.raises(StoreError, match="is a directory"):
        SQLiteStore(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 512)
    with pytest.raises(StoreError, match=r"junk\.db.*corrupt.*move it aside"):
        SQLiteStore(junk)


@pytest.mark.unit
@pytest.mark.parametrize(("message", "hint"), [
    ("attempt to write a readonly database", "read-only: fix permissions"),
    ("database or disk is full", "disk is full: free space"),
    ("database disk image is malformed", "corrupt"),
    ("database is locked", "locked by another process"),
])
def test_sqlite_failures_become_specific_store_errors(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, message: str, hint: str
) -> None:
    # Root ignores file modes and disks rarely fill on cue, so inject the driver's own errors.
    class Failing:
        def __init__(self, real: sqlite3.Connection) -> None:
            self.real = real

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError(message)
            return self.real.execute(sql, *args)

    monkeypatch.setattr(store, "_writer", Failing(store._writer))
    with pytest.raises(StoreError) as info:
        store.write([leg_point(T0)])
    text = str(info.value)
    assert hint in text and "optui.db" in text and "write to 'atm_options'" in text
    monkeypatch.undo()
    assert store.write([leg_point(T0)]) == 1  # the store still works afterwards


@pytest.mark.unit
def test_open_store_urls(tmp_path: Path) -> None:
    s = open_store(f"sqlite:///{tmp_path}/a/b/c.db")
    assert isinstance(s, SQLiteStore) and (tmp_path / "a" / "b" / "c.db").exists()
    assert s.ping() and "SQLite" in s.describe() and "c.db" in s.describe()
    s.close()
    s.close()  # twice is fine
    assert not s.ping()
    with pytest.raises(StoreError, match="closed"):
        s.query("m", T0, T0 + timedelta(seconds=1))
    with pytest.raises(ConfigError, match=r"sqlite:///PATH.*influxdb://"):
        open_store("postgres://x")
    with pytest.raises(ConfigError, match="no path"):
        open_store("sqlite:///")
    mem = open_store("sqlite:///:memory:")
    assert mem.write([leg_point(T0)]) == 1 and mem.latest("atm_options") is not None
    mem.close()


@pytest.mark.unit
def test_short_lived_threads_do_not_leak_connections(store: SQLiteStore) -> None:
    store.write([leg_point(T0)])
    counts: list[int] = []

    def worker() -> None:
        counts.append(len(store.query("atm_options", T0, T0 + timedelta(seconds=1))))

    for _ in range(20):  # like UI thread workers: a new thread per query
        t = threading.Thread(target=worker)
        t.start()
        t.join()
    assert counts == [1] * 20
    assert len(store._idle) <= 4


@pytest.mark.integration
def test_wal_is_checkpointed_and_truncated_on_close(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = SQLiteStore(path)
    for i in range(50):
        store.write([leg_point(T0 + timedelta(seconds=i), off) for off in ("atm", "atm_p1")])
    thread = store._checkpointer
    assert thread is not None and thread.is_alive()
    store.close()
    assert not thread.is_alive()
    wal = path.with_name("c.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with SQLiteStore(path) as again:  # everything reached the main file
        assert len(again.query("atm_options", T0, T0 + timedelta(minutes=5))) == 100


@pytest.mark.unit
def test_a_dropped_store_stops_its_checkpoint_thread(tmp_path: Path) -> None:
    import gc

    store = SQLiteStore(tmp_path / "d.db")
    store.write([leg_point(T0)])
    thread = store._checkpointer
    assert thread is not None
    del store
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.unit
def test_base_store_checks_arguments_and_cuts_limits(store: SQLiteStore) -> None:
    store.write([leg_point(T0 + timedelta(minutes=i), price=float(i + 1)) for i in range(3)])
    end = T0 + timedelta(hours=1)
    assert len(store.query("atm_options", T0, end, limit=2)) == 2
    assert store.query("atm_options", T0, end, limit=0) == []
    assert store.query("atm_options", T0, end, limit=-1) == []
    rows = store.aggregate("atm_options", ["last_price", "last_price"], T0, end, "1h")
    assert [r.fields for r in rows] == [{"last_price": 6.0}]  # a repeated field counts once
    assert store.aggregate("atm_options", [], T0, end, "1h") == []
    with pytest.raises(ValueError, match="every='2m'"):
        store.aggregate("atm_options", ["last_price"], T0, end, "2m")
    with pytest.raises(ValueError, match="fn='median'"):
        store.aggregate("atm_options", ["last_price"], T0, end, "1h", fn="median")
    with pytest.raises(ValueError, match="must match"):
        store.write_columns("m", [{"i": "1"}], [1, 2], {"v": [1.0, 2.0]})
    assert store.write_columns("m", [], [], {"v": []}) == 0


class _ListStore(Store):
    """The smallest Store: keeps written points, to test the base class's column path."""

    def __init__(self) -> None:
        self.points: list[Point] = []

    def write(self, points: Sequence[Point]) -> int:
        self.points.extend(points)
        return len(points)

    def _query(self, *args: object) -> list[Row]:
        return []

    def _aggregate(self, *args: object) -> list[Row]:
        return []

    def latest(self, measurement: str, tags: Mapping[str, str] | None = None) -> Row | None:
        return None

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        return []

    def close(self) -> None:
        pass

    def ping(self) -> bool:
        return True

    def describe(self) -> str:
        return "list"


@pytest.mark.unit
def test_base_write_columns_builds_points_without_nan_or_numpy_scalars() -> None:
    s = _ListStore()
    times = np.array([time_to_ns(T0), time_to_ns(T0 + timedelta(seconds=1))], dtype=np.int64)
    n = s.write_columns("m", [{"i": "0"}, {"i": "1"}], times,
                        {"v": np.array([np.nan, 2.5]), "k": np.array([3, 4]), "s": ["a", None]})
    assert n == 2
    assert [(p.tags, p.fields, p.time) for p in s.points] == [
        ({"i": "0"}, {"k": 3, "s": "a"}, T0),
        ({"i": "1"}, {"v": 2.5, "k": 4}, T0 + timedelta(seconds=1)),
    ]
    assert type(s.points[0].fields["k"]) is int


@pytest.mark.unit
@pytest.mark.parametrize("column", [["a", "b"], ["a\x1fb", "c"], [None, "x"], ["", ""], ["é,\"q\"\n"]])
def test_text_columns_pack_and_unpack_unchanged(column: list[str | None]) -> None:
    assert unpack_texts(pack_texts({"t": column})) == {"t": column}
    assert pack_texts({}) is None and unpack_texts(None) == {}


@pytest.mark.unit
def test_merge_frame_new_values_win_and_missing_ones_keep_the_old() -> None:
    old_fields = [("a", "float"), ("s", "str")]
    old_layout = Layout(1, 1, np.array([10, 20], dtype=np.int64), old_fields)
    old_nums = np.array([[1.0], [2.0]]).tobytes()
    old = (old_layout, old_nums, pack_texts({"s": ["x", "y"]}))
    new_fields = [("a", "float"), ("b", "int")]
    matrix = np.array([[np.nan, 7.0], [5.0, np.nan], [6.0, 8.0]])
    sids, fields, mat, strs = merge_frame(
        old, np.array([20, 30, 30]), np.array([0, 1, 2]), new_fields, matrix, {}
    )
    assert sids.tolist() == [10, 20, 30]
    assert fields == [("a", "float"), ("b", "int"), ("s", "str")]
    # Series 20 keeps a=2.0 (new a is NaN) and gains b; series 30's later duplicate wins.
    assert np.array_equal(mat, np.array([[1.0, np.nan], [2.0, 7.0], [6.0, 8.0]]), equal_nan=True)
    assert strs == {"s": ["x", "y", None]}


@pytest.mark.chaos
def test_full_disk_names_the_cause_and_the_store_recovers(tmp_path: Path) -> None:
    from datetime import UTC, timedelta

    from optui.errors import StoreError
    from optui.storage.points import Point

    t0 = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    store = SQLiteStore(tmp_path / "full.db")
    try:
        store.write([Point("atm_options", {"index": "NIFTY"}, {"x": 0.0}, t0)])
        pages = store._writer.execute("PRAGMA page_count").fetchone()[0]
        store._writer.execute(f"PRAGMA max_page_count={pages}")  # the disk is now full
        big = [Point("atm_options", {"index": "BANKNIFTY", "k": str(j)}, {"x": float(j), "s": "y" * 3000},
                     t0 + timedelta(seconds=1)) for j in range(40)]
        with pytest.raises(StoreError, match="full"):
            store.write(big)
        store._writer.execute("PRAGMA max_page_count=1000000")  # space freed
        store.write([Point("atm_options", {"index": "BANKNIFTY", "k": "1"}, {"x": 1.0}, t0 + timedelta(seconds=2))])
        rows = store.query("atm_options", t0, t0 + timedelta(seconds=5))
    finally:
        store.close()
    assert [(r.tags["index"], r.fields["x"]) for r in rows] == [("NIFTY", 0.0), ("BANKNIFTY", 1.0)]


@pytest.mark.unit
def test_nan_and_infinities_are_never_stored(store: SQLiteStore) -> None:
    bad = [float("inf"), float("-inf"), float("nan")]
    store.write([Point("atm_options", {"index": "NIFTY", "side": s}, {"iv": v, "oi": 5.0}, T0)
                 for s, v in zip(("A", "B", "C"), bad, strict=True)])
    tags = [{"index": "NIFTY", "side": s} for s in ("D", "E")]
    store.write_columns("atm_options", tags, [time_to_ns(T0)] * 2,
                        {"iv": np.array([np.inf, 12.5]), "oi": np.array([1.0, -np.inf])})
    rows = {r.tags["side"]: r.fields for r in store.query("atm_options", T0, T0 + timedelta(seconds=1))}
    assert rows == {"A": {"oi": 5.0}, "B": {"oi": 5.0}, "C": {"oi": 5.0}, "D": {"oi": 1.0}, "E": {"iv": 12.5}}


_PIN_READER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN")
conn.execute("SELECT count(*) FROM frames").fetchone()
print("pinned", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
conn.close()
"""


@pytest.mark.integration
def test_reader_pinning_the_wal_never_stalls_the_writer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A second process holds a read transaction: writes go on past the WAL cap, with a warning;
    once it lets go, the next write checkpoints and truncates the WAL."""
    import subprocess
    import sys

    path = tmp_path / "w.db"
    cap = 256 * 1024
    store = SQLiteStore(path, wal_cap_bytes=cap)
    wal = Path(f"{path}-wal")
    try:
        store.write([leg_point(T0)])
        reader = subprocess.Popen([sys.executable, "-c", _PIN_READER, str(path)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert reader.stdout is not None and reader.stdout.readline().strip() == "pinned"
            with caplog.at_level(logging.WARNING, logger="optui.storage.sqlite_store"):
                for i in range(1, 400):
                    store.write([leg_point(T0 + timedelta(seconds=i), f"atm_p{k}", price=float(i))
                                 for k in range(40)])
            assert wal.stat().st_size > 4 * cap  # it could not be checkpointed while pinned
            assert "long read transaction" in caplog.text
            assert caplog.text.count("long read transaction") == 1  # warned once, not per write
        finally:
            assert reader.stdin is not None
            reader.stdin.write("\n")
            reader.stdin.flush()
            reader.wait(timeout=30)
        # The next writes truncate it; the checkpoint thread may hold the WAL for a moment on a
        # loaded machine, so allow a few writes (bounded to about 5 s).
        with caplog.at_level(logging.WARNING, logger="optui.storage.sqlite_store"):
            for i in range(50):
                store._wal.next_try = 0.0  # type: ignore[union-attr]  # the once-a-second retry pacing is not under test here
                store.write([leg_point(T0 + timedelta(minutes=30, seconds=i))])
                if wal.stat().st_size < cap:
                    break
                threading.Event().wait(0.1)
        assert wal.stat().st_size < cap
        assert "let go" in caplog.text
        assert len(store.query("atm_options", T0, T0 + timedelta(hours=1))) == 1 + 399 * 40 + i + 1
    finally:
        store.close()


@pytest.mark.integration
def test_quick_check_reports_damage_open_does_not_see(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with SQLiteStore(path) as store:
        for i in range(200):
            store.write([leg_point(T0 + timedelta(seconds=i), f"atm_p{k}", price=float(i)) for k in range(30)])
    page = 16384
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # smash the headers of data pages far from the schema
        for n in range(size // page // 2, size // page):
            handle.seek(n * page)
            handle.write(b"\xff" * 12)
    store = SQLiteStore(path, quick_check_s=0.3)  # opens fine: only page 1 and the catalogue are read
    try:
        assert store.damage is None or "damaged" in store.damage
        report = store.check_integrity()
        assert report is not None and "damaged" in report and ".recover" in report and str(path) in report
        thread_report = None
        for _ in range(200):  # the periodic check in the checkpoint thread finds it too
            thread_report = store.damage
            if thread_report:
                break
            threading.Event().wait(0.05)
        assert thread_report is not None and ".recover" in thread_report
    finally:
        store.close()
