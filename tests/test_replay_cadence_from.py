"""`--from` on a day collected at the tick cadence: a replay from a later minute takes its
snapshots at the recorded frame positions from that minute on and stores what the live run
stored from then on, value for value; the dashboard's jump lands on the same snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optui.collectors.recording import day_path, recordings_dir
from optui.collectors.replay import ReplayPlan, replay_collector
from optui.feed.replay import ReplayFeed
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC
from tests.test_replay import ALERTS, START, dump
from tests.test_replay_cadence import _settings, record_cadence_run

BEGIN = START + timedelta(seconds=56)  # 09:15:56: the run crosses into 09:16, where one leg goes to REST for a snapshot
MINUTE = START + timedelta(minutes=1)


@pytest.fixture(scope="module")
def cadence_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cadence-from")
    directory = recordings_dir(root / "live", simulated=True)
    snaps, _, _ = record_cadence_run(directory, root / "live", snapshots=22, start=BEGIN)
    live = SQLiteStore(root / "live" / "live.db")
    try:
        stored = dump(live)
    finally:
        live.close()
    return {"root": root, "path": day_path(directory, START.date()), "snaps": snaps,
            "live": stored}


@pytest.mark.integration
@pytest.mark.parametrize("warmup", [1, None])
def test_a_tick_cadence_day_replayed_from_a_minute_stores_the_live_rows_from_then_on(
        cadence_day: dict[str, Any], tmp_path: Path, warmup: int | None) -> None:
    live = cadence_day["live"]
    since = MINUTE.astimezone(UTC)
    later = {m: [r for r in live[m] if r[0] >= since] for m in (LEGS, OVERVIEW, FLOW, ALERTS)}
    assert len({r[0] for r in later[OVERVIEW]}) >= 5  # snapshots of 09:16 to compare
    assert any(dict(r[2]).get("flow_inflow_cr", 0) > 0 for r in later[OVERVIEW])
    plan = ReplayPlan(cadence_day["path"], f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "files")
    lines: list[str] = []
    collector, state = replay_collector(_settings(), plan, START.date(), speed=None,
                                        start_hhmm="09:16", warmup_cycles=warmup,
                                        printer=lambda line, style="": lines.append(line))
    try:
        assert collector.run() == 0
    finally:
        collector.engine.close()
        state.cleanup()
    replayed = SQLiteStore(tmp_path / "r.db")
    try:
        two = dump(replayed)
    finally:
        replayed.close()
    for measurement in (LEGS, OVERVIEW, FLOW, ALERTS):
        assert two[measurement] == later[measurement], measurement


@pytest.mark.integration
def test_a_jump_on_a_tick_cadence_day_lands_on_the_live_snapshots(
        cadence_day: dict[str, Any]) -> None:
    settings = _settings()
    settings.general.data_dir = str(cadence_day["root"] / "live")
    feed = ReplayFeed(settings, START.date(), speed=1000.0, start_hhmm="09:16", warmup_cycles=1)
    try:
        feed.start()
        seen = []
        while (cycle := feed.next_cycle()) is not None:
            assert cycle.snapshot is not None
            seen.append(cycle.snapshot)
    finally:
        feed.close()
    live = [s for s in cadence_day["snaps"] if s.timestamp >= MINUTE]
    assert [s.timestamp for s in seen] == [s.timestamp for s in live]
    assert [s.indices["NIFTY"].overview.flow.inflow_cr for s in seen] == \
        pytest.approx([s.indices["NIFTY"].overview.flow.inflow_cr for s in live])
    _ = datetime, IST
