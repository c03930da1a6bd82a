"""`optui export csv|json`: legacy 24-column CSV for legs, JSON lines, ranges and errors."""

from __future__ import annotations

import csv
import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from optui.errors import ConfigError, StoreError
from optui.models import LEG_CSV_COLUMNS, IndexSnapshot, LegRecord, OverviewRecord, Snapshot
from optui.storage.export import export_rows
from optui.storage.points import Point
from optui.storage.records import write_snapshot
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

AT = datetime(2026, 11, 24, 9, 20, 15, tzinfo=IST)


def make_leg(at: datetime, index: str, side: str, iv: float = 12.5) -> LegRecord:
    return LegRecord(
        timestamp=at.astimezone(UTC), index=index, bucket="this_week", side=side,
        expiry=date(2026, 11, 25), atm_strike=24100.0, strike=24150.0, strike_offset="atm_p1",
        last_price=101.5, average_price=100.0, volume=1200, oi=50000.0, oi_open=45000.0,
        oi_change=5000.0, iv=iv, days_to_expiry=1.25, ohlc_open=90.0, ohlc_high=110.0,
        ohlc_low=85.0, ohlc_close=95.0, net_change=6.5, net_change_percent=6.84, day_change=11.5,
        day_change_percent=12.78,
    )


def make_snapshot(at: datetime) -> Snapshot:
    out: dict[str, IndexSnapshot] = {}
    for index in ("NIFTY", "SENSEX"):
        ov = OverviewRecord(at.astimezone(UTC), index, 24100.0, 24112.0, 24000.0, 24200.0,
                            23950.0, 24050.0, 62.0, 0.26, 112.0, 0.47, 250.0, 1.04)
        legs = [make_leg(at, index, "CALL"), make_leg(at, index, "PUT", iv=math.nan)]
        out[index] = IndexSnapshot(index, ov, legs)
    return Snapshot(at.astimezone(UTC), "sim", out)


@pytest.fixture
def store() -> SQLiteStore:
    s = SQLiteStore(":memory:")
    for i in range(3):  # three cycles a minute apart
        write_snapshot(s, make_snapshot(AT + timedelta(minutes=i)))
    write_snapshot(s, make_snapshot(AT + timedelta(days=2)))  # outside the range below
    yield s
    s.close()


@pytest.mark.unit
def test_csv_export_of_legs_uses_the_24_legacy_columns(store: SQLiteStore, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "legs.csv"
    n = export_rows(store, "csv", AT, AT + timedelta(hours=1), out)
    assert n == 12
    raw = out.read_bytes()
    assert b"\r" not in raw
    rows = list(csv.reader(raw.decode().splitlines()))
    assert tuple(rows[0]) == LEG_CSV_COLUMNS and len(rows) == 13
    first = dict(zip(LEG_CSV_COLUMNS, rows[1], strict=True))
    assert first["timestamp"] == "2026-11-24T09:20:15+05:30"
    assert first["index"] in {"NIFTY", "SENSEX"} and first["strike_offset"] == "atm_p1"
    assert first["strike"] == "24150.0" and first["expiry"] == "2026-11-25"
    assert {r[LEG_CSV_COLUMNS.index("iv")] for r in rows[1:]} == {"12.5", ""}
    assert not list(out.parent.glob(".*part"))


@pytest.mark.unit
def test_index_filter_and_json_lines(store: SQLiteStore, tmp_path: Path) -> None:
    out = tmp_path / "nifty.jsonl"
    n = export_rows(store, "json", AT, AT + timedelta(hours=1), out, index="NIFTY")
    lines = out.read_text().splitlines()
    assert n == len(lines) == 6
    obj = json.loads(lines[0])
    assert obj["measurement"] == "atm_options" and obj["tags"]["index"] == "NIFTY"
    assert obj["timestamp"] == "2026-11-24T09:20:15+05:30" and obj["fields"]["strike"] == 24150.0
    assert all("NaN" not in line for line in lines)


@pytest.mark.unit
def test_other_measurements_as_csv_and_json(store: SQLiteStore, tmp_path: Path) -> None:
    store.write([Point("premium_flow", {"index": "NIFTY"}, {"inflow_cr": 1.5, "outflow_cr": 0.5},
                       AT.replace(second=0))])
    out = tmp_path / "flow.csv"
    assert export_rows(store, "csv", AT - timedelta(minutes=1), AT + timedelta(hours=1), out,
                       measurement="premium_flow") == 1
    assert out.read_text().splitlines() == [
        "timestamp,index,inflow_cr,outflow_cr", "2026-11-24T09:20:00+05:30,NIFTY,1.5,0.5"]
    ov = tmp_path / "ov.jsonl"
    assert export_rows(store, "json", AT, AT + timedelta(hours=1), ov,
                       measurement="index_overview") == 6


@pytest.mark.unit
def test_bad_requests_say_what_to_do(store: SQLiteStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="use csv or json"):
        export_rows(store, "xlsx", AT, AT + timedelta(hours=1), tmp_path / "x")
    with pytest.raises(ConfigError, match="range is empty"):
        export_rows(store, "csv", AT, AT, tmp_path / "x")
    with pytest.raises(ConfigError, match="timezone"):
        export_rows(store, "csv", datetime(2026, 11, 24), AT, tmp_path / "x")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="blocker"):
        export_rows(store, "csv", AT, AT + timedelta(hours=1), blocker / "out.csv")


@pytest.mark.unit
def test_empty_range_writes_header_only(store: SQLiteStore, tmp_path: Path) -> None:
    out = tmp_path / "none.csv"
    assert export_rows(store, "csv", AT - timedelta(days=9), AT - timedelta(days=8), out) == 0
    assert out.read_text() == ",".join(LEG_CSV_COLUMNS) + "\n"


@pytest.mark.unit
def test_export_matches_the_live_csv_sidecar_cell_for_cell(tmp_path: Path) -> None:
    from optui.storage.legacy_files import write_legacy_files

    snap = make_snapshot(AT)
    with SQLiteStore(":memory:") as s:
        write_snapshot(s, snap)
        export_rows(s, "csv", AT, AT + timedelta(seconds=1), tmp_path / "export.csv")
    write_legacy_files(snap, tmp_path / "live", json_files=False)
    live = (tmp_path / "live" / "raw_snapshots" / "options" / "options_20261124.csv").read_text()
    exported = (tmp_path / "export.csv").read_text()
    assert sorted(exported.splitlines()) == sorted(live.splitlines())


@pytest.mark.integration
def test_json_export_writes_null_for_missing_and_old_infinities(tmp_path: Path) -> None:
    """A file written before +-inf was filtered (values stored raw) still exports, with null."""
    import sqlite3

    import numpy as np

    path = tmp_path / "old.db"
    with SQLiteStore(path) as s:
        write_snapshot(s, make_snapshot(AT))
    conn = sqlite3.connect(path)  # put +inf into every stored numeric cell of the first leg frame
    mid = conn.execute("SELECT id FROM measurements WHERE name='atm_options'").fetchone()[0]
    nums = conn.execute("SELECT nums FROM frames WHERE measurement_id=?", (mid,)).fetchone()[0]
    matrix = np.frombuffer(nums, dtype=np.float64).copy()
    matrix[0] = np.inf
    conn.execute("UPDATE frames SET nums=? WHERE measurement_id=?", (matrix.tobytes(), mid))
    conn.commit()
    conn.close()
    with SQLiteStore(path) as s:
        out = tmp_path / "legs.jsonl"
        assert export_rows(s, "json", AT, AT + timedelta(hours=1), out) == 4
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert "Infinity" not in out.read_text() and "NaN" not in out.read_text()
    assert sum(v is None for o in objs for v in o["fields"].values()) >= 3  # NaN ivs and the +inf
    assert all(o["fields"]["iv"] in (12.5, None) for o in objs)
    assert {o["fields"]["iv"] for o in objs if o["tags"]["side"] == "PUT"} == {None}


@pytest.mark.unit
def test_unknown_index_or_measurement_lists_the_known_ones(store: SQLiteStore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="index 'NIFTYY' is not known: choose one of NIFTY, BANKNIFTY, "
                                          "FINNIFTY, MIDCPNIFTY, SENSEX"):
        export_rows(store, "csv", AT, AT + timedelta(hours=1), tmp_path / "a.csv", index="NIFTYY")
    with pytest.raises(ConfigError, match="measurement 'atm_option' is not known: choose one of "
                                          "atm_options, index_overview, premium_flow"):
        export_rows(store, "json", AT, AT + timedelta(hours=1), tmp_path / "a.json", measurement="atm_option")
    assert not list(tmp_path.iterdir())  # nothing written for a request that was refused
    # an index in any case is the same index
    assert export_rows(store, "json", AT, AT + timedelta(hours=1), tmp_path / "n.json", index="nifty") == 6


@pytest.mark.unit
def test_an_existing_file_is_replaced_only_when_asked(store: SQLiteStore, tmp_path: Path) -> None:
    out = tmp_path / "legs.csv"
    out.write_text("my notes\n")
    with pytest.raises(ConfigError, match="legs.csv already exists: .*--force"):
        export_rows(store, "csv", AT, AT + timedelta(hours=1), out)
    assert out.read_text() == "my notes\n"
    assert export_rows(store, "csv", AT, AT + timedelta(hours=1), out, overwrite=True) == 12
    assert out.read_text().startswith(",".join(LEG_CSV_COLUMNS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legs.csv"]  # no .part left behind
    with pytest.raises(ConfigError, match="is a directory: give --out a file name"):
        export_rows(store, "csv", AT, AT + timedelta(hours=1), tmp_path, overwrite=True)
