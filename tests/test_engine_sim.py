"""End to end on the in-process simulated exchange: plan, quote, analytics, store, files."""

from __future__ import annotations

import csv
import math
from datetime import timedelta
from pathlib import Path

import pytest

from optui.collectors.engine import build_engine
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.indices import INDEX_KEYS
from optui.models import LEG_CSV_COLUMNS, Snapshot

pytestmark = [pytest.mark.mock, pytest.mark.integration]


def sim_settings(tmp_path: Path, **source: object) -> Settings:
    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    s.store.url = f"sqlite:///{tmp_path / 'optui.db'}"
    s.export.out_dir = str(tmp_path / "out")
    s.simulator.start = "2026-11-25 11:00"  # a Wednesday session, NSE open
    s.simulator.speed = 60.0  # a simulated minute per real second: volume moves between cycles
    for key, value in source.items():
        setattr(s.source, key, value)
    return s


@pytest.fixture
def engine(tmp_path: Path):
    eng = build_engine(sim_settings(tmp_path))
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def first_cycle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Snapshot, Path]:
    """An engine's first cycle on every index, for the tests that only read it: the snapshot
    and the folder of its leg files."""
    root = tmp_path_factory.mktemp("first-cycle")
    eng = build_engine(sim_settings(root))
    try:
        return eng.collect_once(), root / "out"
    finally:
        eng.close()


def test_one_cycle_covers_all_indices_buckets_and_offsets(first_cycle: tuple[Snapshot, Path]) -> None:
    snap, _ = first_cycle
    assert snap.source == "sim" and snap.timestamp.utcoffset() == timedelta(0)
    assert list(snap.indices) == list(INDEX_KEYS)
    nifty = snap.indices["NIFTY"]
    assert set(nifty.overview.buckets) == {"this_week", "next_week", "this_month", "next_month"}
    assert set(snap.indices["BANKNIFTY"].overview.buckets) == {"this_month", "next_month"}
    for key, idx in snap.indices.items():
        assert len(idx.legs) == len(idx.overview.buckets) * 5 * 2, key
    atm_legs = [leg for leg in nifty.legs if leg.strike_offset == "atm"]
    for leg in atm_legs:
        assert leg.strike == leg.atm_strike
        assert 3.0 < leg.iv < 80.0, leg
        assert math.isfinite(leg.delta)
    wing = [leg for leg in nifty.legs if leg.strike_offset == "atm_p2"]
    assert all(leg.strike > leg.atm_strike for leg in wing)  # the leg's own strike, not ATM's
    stats = nifty.overview.buckets["this_week"]
    assert stats.pcr_oi > 0 and stats.straddle > 0 and stats.max_pain > 0
    assert abs(stats.forward - nifty.overview.last_price) / nifty.overview.last_price < 0.02


def test_iv_recovers_simulator_smile_and_parity(first_cycle: tuple[Snapshot, Path]) -> None:
    snap, _ = first_cycle
    for idx in snap.indices.values():
        for b in idx.overview.buckets.values():
            # ATM IV from Black-76 on the synthetic forward lands on a realistic smile level.
            assert 5.0 < b.atm_iv < 60.0, (idx.index, b)


def test_second_cycle_has_flow_and_store_rows(engine, tmp_path: Path) -> None:
    # Cycles a simulated minute apart, however long a cycle takes on this machine: the clock
    # barely moves during a cycle, then steps.
    exchange = engine.source.exchange
    exchange.speed = 0.01
    exchange.set_time(exchange.now())
    first = engine.collect_once()
    exchange.set_time(first.timestamp + timedelta(minutes=1))
    if isinstance(engine.source, StreamingSource):  # a snapshot is dated by its second's ticks
        assert wait_caught_up(engine.source, first.timestamp + timedelta(minutes=1))
    second = engine.collect_once()
    assert second.timestamp > first.timestamp
    flow = second.indices["NIFTY"].overview.flow
    assert flow.inflow_cr + flow.outflow_cr > 0
    assert 0.0 <= flow.buying_pressure <= 1.0
    rows = engine.store.query("atm_options", first.timestamp - timedelta(seconds=1),
                              second.timestamp + timedelta(seconds=1), tags={"index": "NIFTY"})
    assert len(rows) == 2 * len(second.indices["NIFTY"].legs)
    overview = engine.store.latest("index_overview", {"index": "SENSEX"})
    assert overview is not None and overview.fields["last_price"] == pytest.approx(second.indices["SENSEX"].overview.last_price)
    bars = engine.store.query("premium_flow", first.timestamp - timedelta(minutes=2),
                              second.timestamp + timedelta(minutes=2), tags={"index": "NIFTY"})
    assert bars and sum(r.fields.get("inflow_cr", 0) + r.fields.get("outflow_cr", 0) for r in bars) > 0


def test_legacy_files_written(first_cycle: tuple[Snapshot, Path]) -> None:
    snap, files = first_cycle
    out = files / "raw_snapshots" / "options"
    json_files = list(out.rglob("*.json"))
    assert len(json_files) == snap.leg_count
    csv_files = list(out.rglob("*.csv"))
    assert csv_files
    with csv_files[0].open(newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == LEG_CSV_COLUMNS


def test_full_chain_mode_records_every_strike(tmp_path: Path) -> None:
    eng = build_engine(sim_settings(tmp_path, indices=["NIFTY"], full_chain_expiries=1))
    try:
        snap = eng.collect_once()
    finally:
        eng.close()
    nifty = snap.indices["NIFTY"]
    week = [leg for leg in nifty.legs if leg.bucket == "this_week"]
    assert len(week) == 2 * nifty.overview.buckets["this_week"].strikes > 100
    assert {"atm", "atm_m10", "atm_p10"} <= {leg.strike_offset for leg in week}


def test_restart_keeps_reference_oi(tmp_path: Path) -> None:
    s = sim_settings(tmp_path, indices=["FINNIFTY"])
    eng = build_engine(s)
    first = eng.collect_once()
    eng.close()
    s.simulator.start = "2026-11-25 14:00"  # restarted later the same day: OI has moved since
    eng2 = build_engine(s)
    try:
        again = eng2.collect_once()
    finally:
        eng2.close()
    ref1 = {leg.instrument_token: leg.oi_open for leg in first.indices["FINNIFTY"].legs}
    common = [leg for leg in again.indices["FINNIFTY"].legs if leg.instrument_token in ref1]
    assert common
    for leg in common:
        assert leg.oi_open == ref1[leg.instrument_token]
    assert any(leg.oi != leg.oi_open for leg in common)


def test_unconfigured_simulator_starts_at_an_open_session() -> None:
    from datetime import datetime

    from optui.collectors.sim_source import demo_start
    from optui.timeutil import IST

    # 24 Nov 2026 is an NSE holiday: the demo clock moves to Wednesday's open.
    assert demo_start(datetime(2026, 11, 24, 11, 0, tzinfo=IST)) == datetime(2026, 11, 25, 9, 15, tzinfo=IST)
    assert demo_start(datetime(2026, 11, 25, 16, 0, tzinfo=IST)) == datetime(2026, 11, 26, 9, 15, tzinfo=IST)
    assert demo_start(datetime(2026, 11, 27, 8, 0, tzinfo=IST)) == datetime(2026, 11, 27, 9, 15, tzinfo=IST)
    assert demo_start(datetime(2026, 11, 25, 10, 0, tzinfo=IST)) is None  # in session: real time


def test_simulated_source_knows_holidays() -> None:
    from datetime import datetime

    from optui.collectors.sim_source import SimulatedSource
    from optui.timeutil import IST

    src = SimulatedSource(start=datetime(2026, 11, 25, 10, 0, tzinfo=IST))
    assert src.is_holiday(datetime(2026, 11, 24, 10, 0, tzinfo=IST))
    assert not src.is_holiday(datetime(2026, 11, 25, 10, 0, tzinfo=IST))
    assert not src.is_holiday(datetime(2026, 11, 28, 10, 0, tzinfo=IST))  # Saturday: closed, not a holiday


def test_flow_after_a_long_gap_is_not_attributed(tmp_path: Path) -> None:
    eng = build_engine(sim_settings(tmp_path, indices=["NIFTY"]))
    try:
        exchange = eng.source.exchange
        exchange.speed = 0.01  # the clock steps between cycles, whatever a cycle's duration
        exchange.set_time(exchange.now())
        eng.collect_once()
        exchange.set_time(exchange.now() + timedelta(hours=2))  # an outage of two hours
        after_gap = eng.collect_once()
        exchange.set_time(exchange.now() + timedelta(minutes=1))
        next_cycle = eng.collect_once()
    finally:
        eng.close()
    gap_flow = after_gap.indices["NIFTY"].overview.flow
    assert gap_flow.inflow_cr == 0 and gap_flow.outflow_cr == 0
    flow = next_cycle.indices["NIFTY"].overview.flow
    assert flow.inflow_cr + flow.outflow_cr > 0


def test_buckets_sharing_an_expiry_agree(tmp_path: Path) -> None:
    s = sim_settings(tmp_path, indices=["NIFTY"])
    s.simulator.start = "2026-11-17 11:00"  # next week's expiry (23 Nov) is also the monthly
    eng = build_engine(s)
    try:
        eng.collect_once()
        exchange = eng.source.exchange
        exchange.set_time(exchange.now() + timedelta(minutes=2))
        snap = eng.collect_once()
    finally:
        eng.close()
    buckets = snap.indices["NIFTY"].overview.buckets
    assert buckets["next_week"].expiry == buckets["this_month"].expiry
    legs = {(leg.bucket, leg.side, leg.strike): leg for leg in snap.indices["NIFTY"].legs}
    shared = [(k[1], k[2]) for k in legs if k[0] == "next_week" and ("this_month", k[1], k[2]) in legs]
    assert shared
    assert any(legs[("next_week", side, k)].oi_change_snapshot != 0 for side, k in shared)
    for side, k in shared:
        assert legs[("next_week", side, k)].oi_change_snapshot == legs[("this_month", side, k)].oi_change_snapshot


def test_simulated_data_kept_apart_from_live_history(tmp_path: Path) -> None:
    from optui.collectors.engine import is_simulated, store_url_for

    s = Settings()
    s.general.data_dir = str(tmp_path / "data")
    assert is_simulated(s, "sim") and not is_simulated(s, "kite")
    s.kite.root = "http://127.0.0.1:8765"  # `optui simulate` behind the Kite client
    assert is_simulated(s, "kite")
    assert store_url_for(s, True) == f"sqlite:///{tmp_path / 'data' / 'sim' / 'optui.db'}"
    assert store_url_for(s, False) == s.store.url
    assert store_url_for(s, True, "sqlite:///x.db") == "sqlite:///x.db"
    s.store.url = "influxdb://127.0.0.1:8086"
    assert store_url_for(s, True) == "influxdb://127.0.0.1:8086"  # configured on purpose
