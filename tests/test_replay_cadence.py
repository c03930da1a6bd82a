"""The tick cadence recorded and replayed: a streamed collector snapshots once per exchange
second that ticked (spots from the index ticks, no REST call per snapshot), stores overview
and flow every snapshot and legs once per interval, and a replay into an empty store takes its
snapshots at the recorded frame positions and stores the same rows value for value."""

from __future__ import annotations

from pathlib import Path

import pytest

from optui.collectors.recording import (
    STREAM_CALL,
    STREAM_QUOTES,
    day_path,
    read_day,
    recordings_dir,
)
from optui.collectors.stream_plan import is_spot_call
from optui.feed.replay import ReplayFeed
from optui.storage.records import LEGS, OVERVIEW
from tests.replay_support import (
    CADENCE_INTERVAL_S,
    MEASUREMENTS,
    START,
    cadence_settings,
    play,
    record_cadence_run,
    replay_day,
    stored_rows,
)


@pytest.mark.integration
def test_a_day_at_the_tick_cadence_replays_into_the_same_store(tmp_path: Path) -> None:
    directory = recordings_dir(tmp_path / "live", simulated=True)
    snaps, live_lines, _ = record_cadence_run(directory, tmp_path / "live", snapshots=16)
    stamps = [s.timestamp for s in snaps]
    assert stamps == sorted(set(stamps))  # one snapshot per exchange second at most
    path = day_path(directory, START.date())
    spot_calls = [r for r in read_day(path) if r.kind == STREAM_QUOTES
                  and is_spot_call(r.json()["keys"]) and r.json()["stream"]]
    # After the first cycle (the ticker starts with it) the spots come from the index ticks
    # (on a loaded machine a late tick can leave a snapshot to REST: the test in
    # test_tick_cadence.py steps its clock instead).
    assert len(spot_calls) >= (len(snaps) - 1) // 2
    # Each snapshot repeats the same calls: after the first of its keys in a frame, a call is
    # written as a reference to it.
    stored = [r.kind for r in read_day(path, unpack=False)]
    assert stored.count(STREAM_CALL) > stored.count(STREAM_QUOTES)

    one = stored_rows(tmp_path / "live" / "live.db")
    overview_times = sorted({row[0] for row in one[OVERVIEW]})
    leg_times = sorted({row[0] for row in one[LEGS]})
    assert len(overview_times) == len(snaps)  # overview and flow: every snapshot
    # Legs: the first snapshot of each interval of exchange time, and only those.
    slots = {}
    for at in overview_times:
        slots.setdefault(int(at.timestamp() // CADENCE_INTERVAL_S), at)
    assert leg_times == sorted(slots.values())
    assert len(leg_times) < len(overview_times)
    # One summary line per interval (and one at the stop), not one per snapshot.
    summaries = [line for line in live_lines if "snapshots=" in line]
    assert len(slots) <= len(summaries) <= len(slots) + 1
    assert sum(int(line.split("snapshots=")[1].split()[0]) for line in summaries) == len(snaps)

    replay = replay_day(path, tmp_path / "replay.db", cadence_settings(), files=tmp_path / "files")
    two, lines = replay.rows, replay.lines
    for measurement in MEASUREMENTS:
        assert two[measurement] == one[measurement], measurement
    flows = [row for row in one[OVERVIEW] if dict(row[2]).get("flow_inflow_cr", 0) > 0]
    assert flows, "no premium flow measured: the comparison is not of zeros"
    assert [line.split("snapshots=")[1].split()[0] for line in lines if "snapshots=" in line] == \
        [line.split("snapshots=")[1].split()[0] for line in summaries]

    # The dashboard's replay steps through the same snapshots, one cycle each.
    settings = cadence_settings()
    settings.general.data_dir = str(tmp_path / "live")
    feed = ReplayFeed(settings, START.date(), speed=1000.0)
    feed.start()
    try:
        seen = [snap.timestamp for snap in play(feed)]
    finally:
        feed.close()
    assert seen == stamps
