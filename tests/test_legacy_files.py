"""The original collectors' JSON-per-leg files and 24-column CSV sidecar."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optui.errors import StoreError
from optui.models import LEG_CSV_COLUMNS, IndexSnapshot, LegRecord, OverviewRecord, Snapshot
from optui.storage.legacy_files import (
    csv_path,
    csv_row,
    json_path,
    legacy_values,
    write_legacy_files,
)
from optui.timeutil import IST, UTC

AT = datetime(2026, 11, 24, 9, 20, 15, tzinfo=IST).astimezone(UTC)
HEADER = ("timestamp,index,bucket,expiry,side,atm_strike,strike,strike_offset,last_price,"
          "average_price,volume,oi,oi_open,oi_change,iv,ohlc_open,ohlc_high,ohlc_low,ohlc_close,"
          "net_change,net_change_percent,day_change,day_change_percent,days_to_expiry")


def make_leg(at: datetime = AT, side: str = "CALL", offset: str = "atm", iv: float = 12.5,
             bucket: str = "this_week") -> LegRecord:
    return LegRecord(
        timestamp=at, index="NIFTY", bucket=bucket, side=side, expiry=date(2026, 11, 25),
        atm_strike=24100.0, strike=24150.0, strike_offset=offset, last_price=101.5,
        average_price=100.0, volume=1200, oi=50000.0, oi_open=45000.0, oi_change=5000.0, iv=iv,
        days_to_expiry=1.25, ohlc_open=90.0, ohlc_high=110.0, ohlc_low=85.0, ohlc_close=95.0,
        net_change=6.5, net_change_percent=6.84, day_change=11.5, day_change_percent=12.78,
        tradingsymbol="NIFTY25N2524150CE", delta=math.nan,
    )


def make_snapshot(legs: list[LegRecord], at: datetime = AT) -> Snapshot:
    ov = OverviewRecord(at, "NIFTY", 24100.0, 24112.0, 24000.0, 24200.0, 23950.0, 24050.0,
                        62.0, 0.26, 112.0, 0.47, 250.0, 1.04)
    return Snapshot(at, "sim", {"NIFTY": IndexSnapshot("NIFTY", ov, legs)})


@pytest.mark.unit
def test_csv_has_exactly_the_24_columns_in_order_and_header_once(tmp_path: Path) -> None:
    assert ",".join(LEG_CSV_COLUMNS) == HEADER and len(LEG_CSV_COLUMNS) == 24
    legs = [make_leg(), make_leg(side="PUT", iv=math.nan)]
    assert write_legacy_files(make_snapshot(legs), tmp_path) == (2, 2)
    later = AT + timedelta(seconds=30)
    write_legacy_files(make_snapshot([make_leg(later)], later), tmp_path)
    path = tmp_path / "raw_snapshots" / "options" / "options_20261124.csv"
    raw = path.read_bytes()
    assert b"\r" not in raw
    lines = raw.decode().splitlines()
    assert lines[0] == HEADER and lines.count(HEADER) == 1 and len(lines) == 4
    rows = list(csv.DictReader(path.open(newline="")))
    assert rows[0]["timestamp"] == "2026-11-24T09:20:15+05:30"
    assert rows[0]["expiry"] == "2026-11-25" and rows[0]["side"] == "CALL"
    assert rows[0]["strike"] == "24150.0" and rows[0]["volume"] == "1200"
    assert rows[1]["iv"] == "" and rows[0]["iv"] == "12.5"  # NaN -> empty cell
    assert rows[2]["timestamp"] == "2026-11-24T09:20:45+05:30"


@pytest.mark.unit
def test_json_file_per_leg_named_like_the_originals(tmp_path: Path) -> None:
    legs = [make_leg(offset=o) for o in ("atm_m1", "atm", "atm_p1")]
    legs.append(make_leg(side="PUT", bucket="next_month"))
    assert write_legacy_files(make_snapshot(legs), tmp_path, csv_rows=False) == (4, 0)
    base = tmp_path / "raw_snapshots" / "options"
    names = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.json"))
    assert names == [
        "next_month/NIFTY_PUT_next_month_2026-11-25_20261124_092015.json",
        "this_week/NIFTY_CALL_this_week_2026-11-25_20261124_092015.json",
        "this_week/NIFTY_CALL_this_week_2026-11-25_20261124_092015_atm_m1.json",
        "this_week/NIFTY_CALL_this_week_2026-11-25_20261124_092015_atm_p1.json",
    ]
    assert not list(base.glob("*.csv"))
    atm = base / names[1]
    data = json.loads(atm.read_text())
    assert list(data)[:24] == list(LEG_CSV_COLUMNS)
    assert data["timestamp"] == "2026-11-24T09:20:15+05:30" and data["strike_offset"] == "atm"
    assert data["delta"] is None and data["tradingsymbol"] == "NIFTY25N2524150CE"
    assert b"\r" not in atm.read_bytes() and b"NaN" not in atm.read_bytes()


@pytest.mark.unit
def test_file_name_and_csv_day_use_ist(tmp_path: Path) -> None:
    late = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)  # 00:30 IST on the 25th
    leg = make_leg(late)
    assert json_path(tmp_path, leg).name.endswith("_20261125_003000.json")
    assert csv_path(tmp_path, late).name == "options_20261125.csv"


@pytest.mark.unit
def test_switches_off_and_empty_snapshot(tmp_path: Path) -> None:
    assert write_legacy_files(make_snapshot([make_leg()]), tmp_path, False, False) == (0, 0)
    assert write_legacy_files(make_snapshot([]), tmp_path) == (0, 0)
    assert not any(tmp_path.rglob("*.*"))


@pytest.mark.unit
def test_unwritable_target_names_path_and_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StoreError, match=r"data.*export\.out_dir"):
        write_legacy_files(make_snapshot([make_leg()]), blocker)


_text = st.text(max_size=8)
_num = st.one_of(st.floats(), st.integers(-10**20, 10**20))


@pytest.mark.property
@given(symbol=_text, buildup=_text, flags=_text, iv=st.floats(), volume=st.integers(-10**20, 10**20),
       delta=_num, offset=st.sampled_from(["atm", "atm_p2", "atm_m7"]))
def test_files_hold_exactly_the_original_json_and_csv_text(
        tmp_path_factory: pytest.TempPathFactory, symbol: str, buildup: str, flags: str, iv: float,
        volume: int, delta: float, offset: str) -> None:
    """Any leg's file is json.dumps(legacy_values(leg), indent=2) and its CSV row csv_row(...)
    (escapes, NaN, infinities, huge ints, unicode), as the original collectors wrote them."""
    tmp = tmp_path_factory.mktemp("legacy")
    leg = replace(make_leg(offset=offset, iv=iv), tradingsymbol=symbol, buildup=buildup,
                  flags=flags, volume=volume, delta=delta)
    write_legacy_files(make_snapshot([leg]), tmp)
    values = legacy_values(leg)
    assert json_path(tmp, leg).read_text(encoding="utf-8") == \
        json.dumps(values, indent=2, allow_nan=False) + "\n"
    with csv_path(tmp, AT).open(newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh))[1] == csv_row(values)
