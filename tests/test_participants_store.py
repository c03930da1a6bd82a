"""Participant data in both stores (SQLite and a real influxd): import, replace, views, history."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from optui.analytics.trading_calendar import TradingCalendar
from optui.collectors.participants_import import import_paths
from optui.storage.base import Store, open_store
from optui.storage.participants_store import (
    PARTICIPANTS_MEASUREMENT,
    cash_history,
    load_participant_files,
    metric_history,
    participants_day,
    stored_trade_dates,
)
from optui.timeutil import IST

pytestmark = pytest.mark.participants

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The NSE folders only: tests/fixtures also holds Kite files, which are not participant data.
NSE_FILES = [FIXTURES / "nse_participant", FIXTURES / "nse_fiidii_cash"]
_db = itertools.count()


@pytest.fixture(params=["sqlite", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    else:
        from optui.storage.influx_store import InfluxStore

        url = request.getfixturevalue("influx_server")
        s = InfluxStore(url, database=f"optui_particip_{next(_db)}", spool_dir=tmp_path / "spool")
        s.init_database()  # type: ignore[attr-defined]
    yield s
    s.close()


def test_import_folder_then_views_match_hand_values(store: Store) -> None:
    report = import_paths(store, NSE_FILES)
    assert report.rejected == []
    assert sorted((k, d) for k, d, _ in report.stored) == [
        ("cash", date(2026, 9, 18)),
        *[(k, date(2026, 8, d)) for k in ("oi", "vol") for d in (14, 17, 18)],
    ]
    cal = TradingCalendar()
    day = participants_day(store, cal, date(2026, 8, 17))
    assert day is not None
    fii = day.participants["FII"].as_dict()
    assert fii["index_futures_net"] == -181587
    assert fii["index_futures_net_change_1d"] == -181587 - (25537 - 202235)  # vs Fri 14 Aug
    assert fii["index_futures_net_change_1w"] is None
    assert day.volume is not None
    assert day.volume.pro_share_pct == pytest.approx(100 * (74232918 + 74191054) / (2 * 137273451))
    assert day.cash == {}  # no cash stored for 17 Aug
    latest = participants_day(store, cal)
    assert latest is not None and latest.trade_date == date(2026, 8, 18)
    assert latest.cash["FII"].net_cr == 599.54 and latest.cash["FII"].streak == 1
    assert latest.cash["DII"].trade_date == date(2026, 9, 18)


def test_reimport_replaces_a_day(store: Store, tmp_path: Path) -> None:
    import_paths(store, [FIXTURES / "nse_participant"])
    import_paths(store, [FIXTURES / "nse_participant" / "fao_participant_oi_18082026.csv"])
    start = date(2026, 8, 1)
    rows = store.query(PARTICIPANTS_MEASUREMENT, datetime(2026, 8, 1, tzinfo=IST),
                       datetime(2026, 8, 31, tzinfo=IST))
    assert len(rows) == 3 * 2 * 5  # three days, two kinds, five rows: no duplicates
    assert stored_trade_dates(store, start, date(2026, 8, 31)) == [
        date(2026, 8, 14), date(2026, 8, 17), date(2026, 8, 18)]
    # A corrected file for 18 Aug (FII futures long +10, TOTAL +10) replaces the stored day.
    src = (FIXTURES / "nse_participant" / "fao_participant_oi_18082026.csv").read_text()
    fixed = src.replace("FII,25502,", "FII,25512,").replace("TOTAL,338477,", "TOTAL,338487,")
    folder = tmp_path / "fix"
    folder.mkdir()
    (folder / "fao_participant_oi_18082026.csv").write_text(fixed)
    assert import_paths(store, [folder]).rejected == []
    files = load_participant_files(store, date(2026, 8, 18), date(2026, 8, 18))
    assert files[date(2026, 8, 18)].rows["FII"]["future_index_long"] == 25512


def test_rejected_file_stores_nothing(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "fao_participant_oi_14082026.csv"
    text = (FIXTURES / "nse_participant" / bad.name).read_text()
    bad.write_text(text.replace("FII,25537", "FII,abc"))
    html = tmp_path / "fao_participant_vol_14082026.csv"
    html.write_text("<html><head><title>Access Denied</title></head></html>")
    report = import_paths(store, [tmp_path])
    assert report.stored == []
    assert len(report.rejected) == 2
    assert any("line 5" in r and "not a whole number" in r for r in report.rejected)
    assert any("HTML page" in r for r in report.rejected)
    assert store.latest(PARTICIPANTS_MEASUREMENT) is None


def test_metric_and_cash_history_by_trading_days(store: Store) -> None:
    import_paths(store, NSE_FILES)
    cal = TradingCalendar()
    series = metric_history(store, cal, "Client", "options_bias", date(2026, 8, 18), 4)
    assert series == [(date(2026, 8, 13), None), (date(2026, 8, 14), 740271),
                      (date(2026, 8, 17), 756367), (date(2026, 8, 18), 993038)]
    cash = cash_history(store, cal, date(2026, 9, 18), 2)
    assert [d for d, _, _ in cash] == [date(2026, 9, 17), date(2026, 9, 18)]
    assert cash[1][1] is not None and cash[1][1].net_cr == 599.54 and cash[0][1] is None
