"""Collector state that would grow with the days run stays bounded, deciding exactly as before:
alert cooldowns forget passes that hold nothing back; the SQLite store forgets the reader
connections it closed."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from optui.alerts.engine import Cooldowns
from optui.alerts.model import Alert
from optui.storage.points import Point
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import UTC

OPEN = datetime(2026, 11, 24, 3, 45, tzinfo=UTC)  # 09:15 IST


class Unbounded(Cooldowns):
    KEYS_KEPT = 10**9  # the rule without forgetting: the reference


@pytest.mark.unit
def test_cooldowns_stay_bounded_over_a_day_of_new_subjects_with_the_same_decisions() -> None:
    rng = random.Random(3)
    per_rule = {"oi_spike": 60.0, "iv_jump": 900.0}
    bounded, reference = Cooldowns(300.0, per_rule), Unbounded(300.0, per_rule)
    rules = ["oi_spike", "iv_jump", "buildup"]
    steps = [OPEN + timedelta(seconds=30 * i) for i in range(750)]  # a day of 30 s cycles
    # A replay going back an hour at 13:00 and on again: later passes are kept over the jump.
    steps = steps[:450] + [s - timedelta(hours=1) for s in steps[450:570]] + steps[450:]
    decisions, largest = [], 0
    for i, at in enumerate(steps):
        for _ in range(6):  # new strikes keep entering the money: subjects drift through the day
            subject = f"NIFTY this_week CE {24000 + 50 * (i // 2 + rng.randrange(8))}"
            alert = Alert(at, rng.choice(rules), "warning", subject, "m")
            decisions.append((bounded.allow(alert), reference.allow(alert)))
        if i < 450:
            largest = max(largest, len(bounded._last))
    assert all(a == b for a, b in decisions)
    assert sum(a for a, _ in decisions) > 500 and sum(not a for a, _ in decisions) > 500
    assert len(reference._last) > 1.5 * Cooldowns.KEYS_KEPT  # the day does outgrow the bound
    assert largest <= Cooldowns.KEYS_KEPT + 1 and len(bounded._last) <= Cooldowns.KEYS_KEPT + 1


@pytest.mark.unit
def test_closed_reader_connections_leave_nothing_behind(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "optui.db")
    try:
        store.write([Point("index_overview", {"index": "NIFTY"}, {"ltp": 24000.0}, OPEN)])
        for _ in range(5):  # bursts of 12 readers at once: 4 stay pooled, the rest are closed
            start, done = threading.Barrier(12), []

            def read(start: threading.Barrier = start, done: list = done) -> None:
                start.wait()
                done.append(store.latest("index_overview", {"index": "NIFTY"}))

            threads = [threading.Thread(target=read) for _ in range(12)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(done) == 12 and all(r is not None and r.fields["ltp"] == 24000.0 for r in done)
        # The writer's entry and one per pooled reader, not one per connection ever opened.
        assert len(store._versions) <= 1 + len(store._idle) <= 5
    finally:
        store.close()
