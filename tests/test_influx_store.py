"""InfluxStore against a real influxd 1.6.7: round trips, parity with SQLite, outage spooling.

Also line-protocol escaping (unit and hypothesis round trips through the real server) and the
2.x path: its Flux text, and its influxdb-client writes against a loopback HTTP endpoint.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optui.config import Settings
from optui.errors import StoreError
from optui.storage.base import Row, open_store, time_to_ns
from optui.storage.influx_store import InfluxStore, bucket_offset_s
from optui.storage.influx_v2 import aggregate_flux, flux_string, flux_time, query_flux
from optui.storage.line_protocol import (
    UnrepresentableError,
    escape_key,
    escape_measurement,
    format_points,
    format_value,
)
from optui.storage.points import Point
from optui.timeutil import IST, UTC

T0 = datetime(2026, 8, 17, 9, 15, tzinfo=IST)  # a Monday, market open
_db_counter = itertools.count()


@pytest.fixture
def store(influx_server: str, tmp_path: Path) -> Iterator[InfluxStore]:
    """A store on a fresh database of the session's influxd."""
    s = InfluxStore(
        influx_server, database=f"optui_test_{next(_db_counter)}", spool_dir=tmp_path / "spool"
    )
    s.init_database()
    yield s
    s.close()


def _flow_points(days: int = 8) -> list[Point]:
    """Minute flow bars for two indices over several trading days (some NaN, some ints)."""
    pts = []
    for d in range(days):
        day = T0 + timedelta(days=d)
        for i in range(0, 375, 7):
            for k, key in enumerate(("NIFTY", "BANKNIFTY")):
                fields: dict[str, Any] = {
                    "inflow_cr": round(1.5 + i * 0.25 + k, 2),
                    "outflow_cr": float(i % 11),
                    "trades": i + k,
                }
                if i % 5 == 0:
                    fields["outflow_cr"] = math.nan  # not stored: absent in that row
                pts.append(Point("premium_flow", {"index": key}, fields, day + timedelta(minutes=i)))
    return pts


def _key(rows: list[Row]) -> list[tuple[Any, ...]]:
    return sorted((r.time, sorted(r.tags.items()), sorted(r.fields.items())) for r in rows)


# -- line protocol --------------------------------------------------------------------------


@pytest.mark.unit
def test_line_protocol_escapes_and_types() -> None:
    p = Point(
        "atm options",
        {"index": "NIFTY 50", "side": "CALL", "a,b": "x=y", "empty": ""},
        {"ltp": 101.5, "oi": np.int64(7), "ok": True, "note": 'say "hi"\\', "iv": math.nan},
        datetime(2026, 8, 17, 4, 0, tzinfo=UTC),
    )
    batch = format_points([p])
    assert batch.lines == [
        'atm\\ options,a\\,b=x\\=y,index=NIFTY\\ 50,side=CALL '
        'ltp=101.5,oi=7i,ok=true,note="say \\"hi\\"\\\\" 1786939200000000000'
    ]
    assert format_value(np.float64(2.0)) == "2.0" and format_value(math.inf) is None


@pytest.mark.unit
def test_points_without_storable_fields_are_dropped_and_counted() -> None:
    at = datetime(2026, 8, 17, 4, 0, tzinfo=UTC)
    batch = format_points(
        [
            Point("m", {"s": "a"}, {"v": math.nan}, at),
            Point("m", {"s": "a\\"}, {"v": 1.0}, at),  # trailing backslash cannot round-trip
            Point("m", {"s": "b"}, {"v": 1.0}, at),
        ]
    )
    assert batch.dropped == 2 and len(batch.lines) == 1
    with pytest.raises(UnrepresentableError):
        escape_key("line\nbreak")


@pytest.mark.unit
def test_columns_format_like_points() -> None:
    from optui.storage.line_protocol import LineFormatter

    tags = [{"index": "NIFTY"}, {"index": "BANK NIFTY"}, {"index": "NIFTY"}]
    times = np.array([1, 2, 3], dtype=np.int64) * 1_000_000_000
    cols = {"ltp": np.array([1.5, math.nan, 2.0]), "oi": np.array([10, 20, 30]), "x": [None, None, "s"]}
    by_columns = LineFormatter().format_columns("m", tags, times, cols)
    points = [
        Point("m", tags[i], {k: c[i] for k, c in cols.items()}, datetime.fromtimestamp(i + 1, tz=UTC))
        for i in range(3)
    ]
    assert by_columns.lines == format_points(points).lines
    assert by_columns.lines[1] == "m,index=BANK\\ NIFTY oi=20i 2000000000"


# -- round trips on the real server ---------------------------------------------------------


@pytest.mark.integration
def test_write_query_latest_and_tags(store: InfluxStore) -> None:
    pts = _flow_points(days=1)
    assert store.write(pts) == len(pts)
    assert store.write_columns(
        "flow_columns", [{"index": "NIFTY"}] * 2, [time_to_ns(T0), time_to_ns(T0) + 60_000_000_000],
        {"inflow_cr": np.array([1.0, math.nan]), "trades": np.array([3, 4])},
    ) == 2
    assert [r.fields for r in store.query("flow_columns", T0, T0 + timedelta(minutes=2))] == [
        {"inflow_cr": 1.0, "trades": 3}, {"trades": 4}
    ]
    rows = store.query("premium_flow", T0, T0 + timedelta(hours=1), tags={"index": "NIFTY"})
    assert [r.time for r in rows] == [(T0 + timedelta(minutes=i)).astimezone(UTC) for i in range(0, 60, 7)]
    assert rows[0].fields == {"inflow_cr": 1.5, "trades": 0}  # NaN outflow absent, int stays int
    assert isinstance(rows[1].fields["outflow_cr"], float) and rows[1].fields["outflow_cr"] == 7.0
    assert rows[0].tags == {"index": "NIFTY"}
    limited = store.query("premium_flow", T0, T0 + timedelta(days=1), fields=["trades"], limit=3)
    assert len(limited) == 3 and all(set(r.fields) <= {"trades"} for r in limited)
    latest = store.latest("premium_flow", {"index": "BANKNIFTY"})
    assert latest is not None and latest.time == (T0 + timedelta(minutes=371)).astimezone(UTC)
    assert store.tag_values("premium_flow", "index") == ["BANKNIFTY", "NIFTY"]
    assert store.latest("no_such_measurement") is None
    assert "options" not in store.describe() or "optui_test" in store.describe()


@pytest.mark.integration
def test_same_identity_replaces_fields(store: InfluxStore) -> None:
    at = T0.astimezone(UTC)
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 1.0, "outflow_cr": 2.0}, at)])
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 5.0}, at)])
    rows = store.query("premium_flow", at, at + timedelta(seconds=1))
    assert len(rows) == 1
    assert rows[0].fields == {"inflow_cr": 5.0, "outflow_cr": 2.0}  # rewritten field replaced


@pytest.fixture(scope="module")
def flow_pair(influx_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """The same eight days of flow bars in InfluxDB and in SQLite (written once per module)."""
    from optui.storage import sqlite_store as sqlite_mod
    influx = InfluxStore(
        influx_server, database="optui_parity", spool_dir=tmp_path_factory.mktemp("spool")
    )
    influx.init_database()
    sqlite_store = sqlite_mod.SQLiteStore(":memory:")
    pts = _flow_points()
    influx.write(pts)
    sqlite_store.write(pts)
    yield influx, sqlite_store
    influx.close()
    sqlite_store.close()


@pytest.mark.integration
@pytest.mark.parametrize("every", ["1m", "5m", "15m", "30m", "1h", "1d", "1w"])
def test_aggregates_match_sqlite(flow_pair: tuple[Any, Any], every: str) -> None:
    store, sqlite_store = flow_pair
    start, end = T0 - timedelta(days=3), T0 + timedelta(days=12)
    fields = ["inflow_cr", "outflow_cr", "trades"]
    for fn in ("sum", "mean", "last", "max", "min"):
        for tags in ({"index": "NIFTY"}, None):
            got = store.aggregate("premium_flow", fields, start, end, every, tags=tags, fn=fn)
            want = sqlite_store.aggregate("premium_flow", fields, start, end, every, tags=tags, fn=fn)
            assert [r.time for r in got] == [r.time for r in want], (fn, tags)
            for g, w in zip(got, want, strict=True):
                assert g.tags == w.tags and set(g.fields) == set(w.fields)
                for name, value in w.fields.items():
                    assert type(g.fields[name]) is type(value), (fn, name)
                    assert g.fields[name] == pytest.approx(value, rel=1e-9), (fn, name, g.time)


@pytest.mark.integration
def test_raw_queries_match_sqlite(flow_pair: tuple[Any, Any]) -> None:
    store, sqlite_store = flow_pair
    start, end = T0 - timedelta(days=1), T0 + timedelta(days=12)
    for tags in ({"index": "BANKNIFTY"}, None):
        got = store.query("premium_flow", start, end, tags=tags)
        assert len(got) == 8 * 54 * (1 if tags else 2)
        assert _key(got) == _key(sqlite_store.query("premium_flow", start, end, tags=tags))
    assert store.latest("premium_flow") == sqlite_store.latest("premium_flow") or (
        store.latest("premium_flow").time == sqlite_store.latest("premium_flow").time
    )


@pytest.mark.integration
def test_day_and_week_buckets_start_on_the_ist_clock(store: InfluxStore) -> None:
    # 00:30 IST on Tuesday 18 Aug is still Monday in UTC: the IST day and week must win.
    late = datetime(2026, 8, 18, 0, 30, tzinfo=IST)
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 2.0}, late)])
    day = store.aggregate("premium_flow", ["inflow_cr"], T0, T0 + timedelta(days=3), "1d")
    assert [r.time.astimezone(IST) for r in day] == [datetime(2026, 8, 18, tzinfo=IST)]
    week = store.aggregate("premium_flow", ["inflow_cr"], T0 - timedelta(days=9), T0 + timedelta(days=9), "1w")
    assert [r.time.astimezone(IST) for r in week] == [datetime(2026, 8, 17, tzinfo=IST)]
    assert bucket_offset_s(3600) == 1800 and bucket_offset_s(86400) == 66600


@pytest.mark.integration
def test_compatibility_measurements_in_options_data(influx_server: str, tmp_path: Path) -> None:
    settings = Settings()
    settings.store.spool_dir = str(tmp_path / "spool")
    port = influx_server.rsplit(":", 1)[1]
    with open_store(f"influxdb://127.0.0.1:{port}", settings) as s:
        assert isinstance(s, InfluxStore) and s.database == "options-data"
        assert "infinite" in s.init_database() or "forever" in s.init_database()
        leg = {"index": "NIFTY", "bucket": "this_week", "side": "CALL", "expiry": "2026-08-18",
               "strike_offset": "atm"}
        s.write([
            Point("atm_options", leg, {"strike": 24800.0, "last_price": 112.5, "oi": 1200}, T0),
            Point("index_overview", {"index": "NIFTY"}, {"last_price": 24812.3}, T0),
        ])
        q = httpx.get(f"{influx_server}/query", params={"db": "options-data", "q": "SHOW MEASUREMENTS"})
        names = {v[0] for v in q.json()["results"][0]["series"][0]["values"]}
        assert {"atm_options", "index_overview"} <= names
        row = s.latest("atm_options", {"strike_offset": "atm"})
        assert row is not None and row.tags == leg and row.fields["oi"] == 1200


@pytest.mark.integration
def test_first_write_creates_the_database(influx_server: str, tmp_path: Path) -> None:
    s = InfluxStore(influx_server, database="created_on_first_write", spool_dir=tmp_path)
    assert s.write([Point("index_overview", {"index": "SENSEX"}, {"last_price": 81234.5}, T0)]) == 1
    assert s.latest("index_overview").fields == {"last_price": 81234.5}
    s.close()


@pytest.mark.integration
@pytest.mark.parametrize("influx_process", [{"auth": True}], indirect=True)
def test_credentials_on_a_server_with_auth(influx_process: Any, tmp_path: Path) -> None:
    influx_process.create_admin("optui", "pa55word")
    good = InfluxStore(influx_process.url, token="optui:pa55word", spool_dir=tmp_path / "a")
    good.init_database()
    assert good.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 1.0}, T0)]) == 1
    assert good.latest("index_overview") is not None
    bad = InfluxStore(influx_process.url, token="optui:wrong", spool_dir=tmp_path / "b")
    with pytest.raises(StoreError, match="rejected the credentials.*OPTUI_INFLUXDB_TOKEN") as info:
        bad.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 2.0}, T0)])
    # The point is good, only the token is wrong: it waits in the spool, nothing is lost.
    assert "wrong" not in str(info.value) and bad.spool_status().points == 1
    with pytest.raises(StoreError, match="rejected the credentials"):  # still refused, still kept
        bad.write([Point("index_overview", {"index": "NIFTY"}, {"last_price": 3.0}, T0 + timedelta(seconds=1))])
    assert bad.spool_status().points == 2
    with pytest.raises(StoreError, match="OPTUI_INFLUXDB_TOKEN"):
        bad.query("index_overview", T0, T0 + timedelta(days=1))
    bad.close()
    fixed = InfluxStore(influx_process.url, token="optui:pa55word", spool_dir=tmp_path / "b")
    assert fixed.flush() == 2
    rows = fixed.query("index_overview", T0, T0 + timedelta(days=1))
    assert [r.fields["last_price"] for r in rows] == [2.0, 3.0]
    good.close()
    fixed.close()


@pytest.mark.integration
def test_rejections_name_the_fix(store: InfluxStore) -> None:
    at = T0.astimezone(UTC)
    store.write([Point("premium_flow", {"index": "X"}, {"trades": 1}, at)])
    assert store.write([Point("premium_flow", {"index": "X"}, {"trades": "many"}, at + timedelta(seconds=1))]) == 0
    (notice,) = store.take_notices()
    assert "field type conflict" in notice and "keep each field's type" in notice
    assert str(store.rejected_path) in notice
    assert store.spool_status() is not None and store.spool_status().points == 0  # not spooled


def _count(store: InfluxStore, measurement: str) -> int:
    return len(store.query(measurement, T0 - timedelta(days=400), T0 + timedelta(days=1)))


def _cycle(at: datetime, oi_int_for: str = "") -> list[Point]:
    """One cycle: 140 legs (oi a float), an overview per index and premium flow per index."""
    pts = []
    for n in range(140):
        index = ("NIFTY", "BANKNIFTY")[n % 2]
        offset = f"atm_p{n // 2}"
        oi: float | int = 1000 + n if offset == oi_int_for and index == "NIFTY" else 1000.0 + n
        pts.append(Point("atm_options", {"index": index, "strike_offset": offset},
                         {"oi": oi, "last_price": 10.0 + n}, at))
    for index in ("NIFTY", "BANKNIFTY"):
        pts.append(Point("index_overview", {"index": index}, {"spot": 24000.0}, at))
        pts.append(Point("premium_flow", {"index": index}, {"inflow_cr": 1.5}, at))
    return pts


@pytest.mark.integration
@pytest.mark.parametrize("batch_size", [5000, 50])
def test_field_type_conflict_writes_every_other_line(influx_server: str, tmp_path: Path, batch_size: int) -> None:
    """`oi` was first stored as a float; one leg sends it as an integer. Everything else lands
    (legs, overview and premium flow, every chunk), the one line is set aside with the reason."""
    store = InfluxStore(influx_server, database=f"optui_test_{next(_db_counter)}",
                        spool_dir=tmp_path / "spool", batch_size=batch_size)
    store.init_database()
    try:
        first = T0.astimezone(UTC)
        assert store.write(_cycle(first)) == 144
        second = first + timedelta(seconds=30)
        assert store.write(_cycle(second, oi_int_for="atm_p10")) == 143
        assert _count(store, "atm_options") == 140 + 139
        assert _count(store, "index_overview") == 4 and _count(store, "premium_flow") == 4
        (notice,) = store.take_notices()
        assert "refused 1 line" in notice and "field type conflict" in notice
        text = store.rejected_path.read_text(encoding="utf-8").splitlines()
        assert text[0].startswith("# ") and "field type conflict" in text[0]
        assert text[1].startswith("atm_options,index=NIFTY,strike_offset=atm_p10 ") and "oi=1020i" in text[1]
        assert len(text) == 2 and store.rejected_total == 1
        assert store.spool_status().points == 0
    finally:
        store.close()


@pytest.mark.integration
def test_points_outside_retention_are_set_aside_and_the_rest_written(influx_server: str, tmp_path: Path) -> None:
    name = f"optui_test_{next(_db_counter)}"
    httpx.post(f"{influx_server}/query", data={"q": f'CREATE DATABASE "{name}" WITH DURATION 1h'}).raise_for_status()
    store = InfluxStore(influx_server, database=name, spool_dir=tmp_path / "spool", batch_size=64)
    try:
        now = datetime.now(UTC).replace(microsecond=0)  # retention is judged on the server's clock
        old = now - timedelta(days=3)
        pts = [Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": float(i)}, now - timedelta(seconds=i))
               for i in range(300)]
        pts[7] = Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": -1.0}, old)
        pts[150] = Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": -2.0}, old - timedelta(seconds=1))
        assert store.write(pts) == 298
        rows = store.query("premium_flow", now - timedelta(hours=1), now + timedelta(seconds=1))
        assert len(rows) == 298
        lines = store.rejected_path.read_text(encoding="utf-8").splitlines()
        assert sum(not ln.startswith("#") for ln in lines) == 2 and "retention" in lines[0]
        assert "".join(store.take_notices()).count("refused 1 line") == 2
    finally:
        store.close()


@pytest.mark.unit
def test_unreachable_server_spools_writes_and_reads_say_what_to_do(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    s = InfluxStore(url, spool_dir=tmp_path)
    assert s.write(_flow_points(days=1)[:5]) == 5 and s.spool_status().points == 5
    with pytest.raises(StoreError, match="not reachable.*start influxd"):
        s.query("premium_flow", T0, T0 + timedelta(days=1))
    bare = InfluxStore(url, spool_dir=None)
    with pytest.raises(StoreError, match="not reachable"):
        bare.write(_flow_points(days=1)[:1])
    s.close()
    bare.close()


# -- outage: spool and replay in order ------------------------------------------------------


@pytest.mark.integration
@pytest.mark.chaos
def test_outage_spools_and_replays_every_point_once_in_order(influx_process: Any, tmp_path: Path) -> None:
    store = InfluxStore(influx_process.url, batch_size=40, spool_dir=tmp_path / "spool")
    store.init_database()
    at = T0.astimezone(UTC)

    def batch(k: int) -> list[Point]:
        return [Point("premium_flow", {"index": "NIFTY"}, {"seq": k * 100 + i}, at + timedelta(seconds=k * 100 + i)) for i in range(100)]

    assert store.write(batch(0)) == 100
    influx_process.stop()
    assert not store.ping()
    assert store.write(batch(1)) == 100  # accepted into the spool
    assert store.write(batch(2)) == 100
    assert store.spool_status().points == 200
    assert "spooled: 200 point(s)" in store.describe()
    # A restart of the writer process must not lose the spool.
    store.close()
    store = InfluxStore(influx_process.url, batch_size=40, spool_dir=tmp_path / "spool", retry_after_s=0)
    influx_process.start()
    assert store.write(batch(3)) == 100  # replays the spool first, then writes this batch
    assert store.spool_status().points == 0
    # A second outage, recovered by an explicit flush.
    influx_process.stop()
    assert store.write(batch(4)) == 100 and store.spool_status().points == 100
    influx_process.start()
    assert store.flush() == 100 and store.spool_status().points == 0
    rows = store.query("premium_flow", at, at + timedelta(hours=1))
    assert [r.fields["seq"] for r in rows] == list(range(500))
    store.close()


# -- property: escaping survives the real server --------------------------------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")),
    min_size=1, max_size=10,
)
_name = st.one_of(_text, st.sampled_from(["a b", "x,y", "k=v", "a\\b", "é ü", '"q"', "#h"]))
_value = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=20),
)


@pytest.mark.integration
@pytest.mark.property
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_name, tag_key=_name, tag_value=_name, field_key=_name, value=_value)
def test_escaping_round_trips_through_influxd(
    store: InfluxStore, name: str, tag_key: str, tag_value: str, field_key: str, value: Any
) -> None:
    if "time" in (tag_key, field_key) or tag_key == field_key:
        return  # reserved by InfluxDB / ambiguous in SELECT *
    try:
        escape_measurement(name), escape_key(tag_key), escape_key(tag_value), escape_key(field_key)
    except UnrepresentableError:
        # Names InfluxDB would misread are refused (counted), never written altered.
        point = Point(name, {tag_key: tag_value}, {field_key: 1.0}, datetime(2026, 1, 1, tzinfo=UTC))
        assert format_points([point]).dropped == 1
        return
    measurement = f"{name} {next(_db_counter)}"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    written = store.write([Point(measurement, {tag_key: tag_value}, {field_key: value}, at)])
    rows = store.query(measurement, at, at + timedelta(seconds=1))
    if isinstance(value, float) and not math.isfinite(value):
        assert written == 0 and rows == []
        return
    assert written == 1
    assert rows == [Row(at, {tag_key: tag_value}, {field_key: value})]


# -- the 2.x path ---------------------------------------------------------------------------


@pytest.mark.unit
def test_flux_text_for_reads() -> None:
    start = datetime(2026, 8, 17, tzinfo=IST)
    text = query_flux("options-data", "premium_flow", start, start + timedelta(days=1), {"index": 'N"1'}, 5)
    assert 'from(bucket: "options-data")' in text
    assert "range(start: 2026-08-16T18:30:00.000000000Z, stop: 2026-08-17T18:30:00.000000000Z)" in text
    assert 'r["index"] == "N\\"1"' in text and "limit(n: 5)" in text
    agg = aggregate_flux("b", "premium_flow", ["inflow_cr"], start, start, 604800, bucket_offset_s(604800), None, "sum")
    assert "aggregateWindow(every: 604800s, offset: 325800s, fn: sum" in agg
    assert flux_string("${x}") == '"\\${x}"' and flux_time(start).endswith("Z")


# What InfluxDB 2 answers to query_flux(): one table per series, fields pivoted into columns.
_FLUX_CSV = (
    "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,double,long\r\n"
    "#group,false,false,true,true,false,true,true,false,false\r\n"
    "#default,_result,,,,,,,,\r\n"
    ",result,table,_start,_stop,_time,_measurement,index,inflow_cr,trades\r\n"
    ",,0,2026-08-16T18:30:00Z,2026-08-17T18:30:00Z,2026-08-17T03:45:00Z,premium_flow,NIFTY,1.5,3\r\n"
    ",,0,2026-08-16T18:30:00Z,2026-08-17T18:30:00Z,2026-08-17T03:46:00Z,premium_flow,NIFTY,,4\r\n"
    "\r\n"
)


class _V2Endpoint(BaseHTTPRequestHandler):
    """Just enough of InfluxDB 2's HTTP API to receive writes and answer /ping."""

    received: list[tuple[str, str, bytes]] = []
    status = 204

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(204)
        self.send_header("X-Influxdb-Version", "v2.7.10")
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((self.path, self.headers.get("Authorization", ""), body))
        if self.path.startswith("/api/v2/query"):
            payload = _FLUX_CSV.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/csv; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(type(self).status)
        payload = b'{"code":"unauthorized","message":"unauthorized access"}' if type(self).status == 401 else b""
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.mock
def test_v2_writes_through_influxdb_client(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _V2Endpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _V2Endpoint.received = []
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        s = InfluxStore(url, org="desk", bucket="options-data", token="s3cret-token", spool_dir=tmp_path)
        assert s.write(_flow_points(days=1)[:10]) == 10
        path, auth, body = _V2Endpoint.received[0]
        assert path.startswith("/api/v2/write?") and "org=desk" in path and "bucket=options-data" in path
        assert "precision=ns" in path and auth == "Token s3cret-token"
        assert body.decode().count("\n") >= 9 and body.startswith(b"premium_flow,index=NIFTY ")
        rows = s.query("premium_flow", T0, T0 + timedelta(days=1), tags={"index": "NIFTY"})
        assert rows == [
            Row(datetime(2026, 8, 17, 3, 45, tzinfo=UTC), {"index": "NIFTY"}, {"inflow_cr": 1.5, "trades": 3}),
            Row(datetime(2026, 8, 17, 3, 46, tzinfo=UTC), {"index": "NIFTY"}, {"trades": 4}),
        ]
        flux = json.loads(_V2Endpoint.received[-1][2])["query"]
        assert 'r["index"] == "NIFTY"' in flux and "pivot(" in flux
        _V2Endpoint.status = 401
        with pytest.raises(StoreError, match="OPTUI_INFLUXDB_TOKEN") as info:
            s.write(_flow_points(days=1)[:1])
        assert "s3cret" not in str(info.value) and "s3cret" not in repr(s) and "s3cret" not in s.describe()
        s.close()
    finally:
        _V2Endpoint.status = 204
        server.shutdown()
        server.server_close()


@pytest.mark.integration
def test_v2_write_path_against_a_real_server(victoria_server: Any, tmp_path: Path) -> None:
    # VictoriaMetrics accepts /api/v2/write: the influxdb-client write path meets a real server.
    s = InfluxStore(victoria_server.url, org="desk", bucket="options-data", token="t0ken",
                    spool_dir=tmp_path, version="v2.x", batch_size=50)
    pts = _flow_points(days=1)
    assert s.write(pts) == len(pts) == 108
    assert s.spool_status().points == 0
    series = {
        (m["metric"]["__name__"], m["metric"]["index"]): dict(zip(m["timestamps"], m["values"], strict=True))
        for m in victoria_server.export("premium_flow_.*")
    }
    for p in pts:
        key = p.time_ns // 1_000_000  # VictoriaMetrics keeps milliseconds
        assert series[("premium_flow_inflow_cr", p.tags["index"])][key] == p.fields["inflow_cr"]
        assert series[("premium_flow_trades", p.tags["index"])][key] == p.fields["trades"]
    s.close()


@pytest.mark.unit
def test_from_url_reads_settings_and_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPTUI_INFLUXDB_TOKEN", "tok-123456789")
    settings = Settings()
    settings.store.spool_dir = str(tmp_path)
    settings.store.batch_size = 77
    s = InfluxStore.from_url("influxdbs://db.example:9999?version=2&bucket=b2", settings)
    assert s.url == "https://db.example:9999" and s.bucket == "b2" and s.batch_size == 77
    assert "tok-123456789" not in repr(s) + s.describe()
    with pytest.raises(Exception, match="influxdb://HOST:PORT"):
        InfluxStore.from_url("influxdb://", settings)
    s.close()


@pytest.mark.unit
def test_influxdb1_and_influxdb2_schemes_are_aliases(tmp_path: Path) -> None:
    from optui.config import canonical_store_url
    from optui.errors import ConfigError

    assert canonical_store_url("influxdb1://db.example:8086") == "influxdb://db.example:8086?version=1"
    assert canonical_store_url("influxdb2s://h:8086?bucket=b") == "influxdbs://h:8086?bucket=b&version=2"
    assert canonical_store_url("influxdb://h:8086?version=2") == "influxdb://h:8086?version=2"
    with pytest.raises(ConfigError, match=r"influxdb1:// means version 1; use influxdb://h:1\?version=1"):
        canonical_store_url("influxdb1://h:1?version=2")
    settings = Settings()
    settings.store.spool_dir = str(tmp_path / "spool")
    v1 = open_store("influxdb1://127.0.0.1:9?db=x", settings)
    v2 = open_store("influxdb2://127.0.0.1:9?bucket=y", settings)
    try:
        assert isinstance(v1, InfluxStore) and v1.describe().startswith("InfluxDB 1.x") and v1.database == "x"
        assert isinstance(v2, InfluxStore) and "bucket y" in v2.describe()
        # The store's own factory reads the aliases too; other schemes are refused naming the form.
        direct = InfluxStore.from_url("influxdb2://127.0.0.1:9?bucket=z", settings)
        assert direct.bucket == "z" and "bucket z" in direct.describe()
        direct.close()
        for wrong in ("influxdb3://h:8086", "influx://h:8086"):
            with pytest.raises(ConfigError, match=r"use influxdb://HOST:PORT\[\?version=1\|2\]"):
                InfluxStore.from_url(wrong, settings)
        with pytest.raises(ConfigError, match="version must be 1 or 2"):
            InfluxStore.from_url("influxdb://h:8086?version=3", settings)
    finally:
        v1.close()
        v2.close()
