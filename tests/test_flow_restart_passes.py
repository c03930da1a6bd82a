"""A restart over market minutes the store already holds from another pass (the simulator or a
replay run again over the same moments) never counts a minute's premium flow twice: the bar is
the chain of cycles the collector continues, each measured from the previous one's quotes."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_records import make_snapshot

from optui.models import FlowSummary
from optui.storage.records import FlowBarAccumulator, write_snapshot
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

MINUTE = datetime(2026, 11, 30, 9, 21, tzinfo=IST).astimezone(UTC)


def _cycle(store: SQLiteStore, acc: FlowBarAccumulator, at: datetime, since: datetime, inflow: float) -> None:
    write_snapshot(store, make_snapshot(at, FlowSummary(inflow_cr=inflow, since=since)), acc)


@pytest.mark.unit
def test_a_restart_over_a_minute_another_pass_stored_counts_one_pass(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "x.db") as store:
        # Pass 1: every 10 s from :04, 1 crore each.
        first = FlowBarAccumulator(store)
        for s in range(4, 60, 10):
            _cycle(store, first, MINUTE + timedelta(seconds=s), MINUTE + timedelta(seconds=s - 10), 1.0)
        # Pass 2 over the same minute: every 10 s from :00, 10 crore each, killed after :20 ...
        second = FlowBarAccumulator(store)
        for s in (0, 10, 20):
            _cycle(store, second, MINUTE + timedelta(seconds=s), MINUTE + timedelta(seconds=s - 10), 10.0)
        # ... and restarted: it continues from the quotes of :20 (its day state).
        restarted = FlowBarAccumulator(store)
        for s in (30, 40, 50, 60):
            _cycle(store, restarted, MINUTE + timedelta(seconds=s), MINUTE + timedelta(seconds=s - 10), 10.0)
        bars = store.query("premium_flow", MINUTE, MINUTE + timedelta(minutes=1))
    assert [b.time for b in bars] == [MINUTE]
    assert bars[0].fields["inflow_cr"] == pytest.approx(60.0)  # pass 2's six cycles, nothing of pass 1


@pytest.mark.unit
def test_a_restart_after_an_unmeasured_cycle_keeps_the_minutes_earlier_cycles(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "x.db") as store:
        acc = FlowBarAccumulator(store)
        for s in (5, 15):
            _cycle(store, acc, MINUTE + timedelta(seconds=s), MINUTE + timedelta(seconds=s - 10), 1.0)
        # A restart without day state: its first cycle has nothing to measure from.
        fresh = FlowBarAccumulator(store)
        write_snapshot(store, make_snapshot(MINUTE + timedelta(seconds=30), FlowSummary(measured=False)), fresh)
        _cycle(store, fresh, MINUTE + timedelta(seconds=40), MINUTE + timedelta(seconds=30), 2.0)
        again = FlowBarAccumulator(store)  # and another restart, with day state this time
        _cycle(store, again, MINUTE + timedelta(seconds=50), MINUTE + timedelta(seconds=40), 4.0)
        bars = store.query("premium_flow", MINUTE, MINUTE + timedelta(minutes=1))
    assert bars[0].fields["inflow_cr"] == pytest.approx(8.0)
