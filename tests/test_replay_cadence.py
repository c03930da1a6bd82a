"""The tick cadence recorded and replayed: a streamed collector snapshots once per exchange
second that ticked (spots from the index ticks, no REST call per snapshot), stores overview
and flow every snapshot and legs once per interval, and a replay into an empty store takes its
snapshots at the recorded frame positions and stores the same rows value for value."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from optui.alerts import AlertEngine
from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.recording import (
    STREAM_CALL,
    STREAM_QUOTES,
    Recorder,
    day_path,
    read_day,
    recordings_dir,
)
from optui.collectors.replay import ReplayPlan, replay_collector
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.stream_plan import is_spot_call
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.feed.replay import ReplayFeed
from optui.models import Snapshot
from optui.simulator.server import serve
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from tests.test_replay import ALERTS, START, dump

SPEED = 5.0  # simulated seconds per real second: a frame per simulated second, 5 a real second
INTERVAL_S = 5.0


def _settings() -> Settings:
    s = Settings()
    s.source.indices = ["NIFTY"]
    s.source.interval_s = INTERVAL_S
    s.source.chain_strikes = 4
    s.participants.enabled = False
    return s


def record_cadence_run(directory: Path, root: Path, snapshots: int,
                       start: datetime = START) -> tuple[list[Snapshot], list[str], StreamingSource]:
    """`optui collect`'s Collector over the simulator's ticker at the 1 s tick cadence, on a
    simulated clock running SPEED times real time from `start`, recording on. Mid-run one leg's
    ticks are taken off the live set, so one snapshot polls it over REST before it streams
    again."""
    sim = SimulatedSource(seed=7, speed=SPEED, start=start)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 1.0 / SPEED
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    source = StreamingSource(sim, "sim_key", "sim_token", server.url.replace("http", "ws", 1),
                             recorder=recorder, server=server, max_age_s=5.0, snapshot_s=1.0)
    store = SQLiteStore(root / "live.db")
    engine = CollectionEngine(_settings(), source, store, out_dir=root / "files",
                              state_dir=root / "state")
    engine.alerts = AlertEngine.from_settings(_settings(), store)
    snaps: list[Snapshot] = []
    lines: list[str] = []
    collect = engine.collect_once

    def counted() -> Snapshot:
        if len(snaps) == 6:  # a streamed leg goes to REST for one snapshot, then streams again
            leg = snaps[-1].indices["NIFTY"].legs[0].instrument_token
            source._on_loop(source.book.mark_stale, [leg])
        snaps.append(collect())
        if len(snaps) >= snapshots:
            collector.stop_event.set()
        return snaps[-1]

    engine.collect_once = counted  # type: ignore[method-assign]
    collector = Collector(engine, INTERVAL_S, printer=lambda line, style="": lines.append(line))
    assert collector.run() == 0
    engine.close()
    return snaps, lines, source


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

    live = SQLiteStore(tmp_path / "live" / "live.db")
    one = dump(live)
    live.close()
    overview_times = sorted({row[0] for row in one[OVERVIEW]})
    leg_times = sorted({row[0] for row in one[LEGS]})
    assert len(overview_times) == len(snaps)  # overview and flow: every snapshot
    # Legs: the first snapshot of each interval of exchange time, and only those.
    slots = {}
    for at in overview_times:
        slots.setdefault(int(at.timestamp() // INTERVAL_S), at)
    assert leg_times == sorted(slots.values())
    assert len(leg_times) < len(overview_times)
    # One summary line per interval (and one at the stop), not one per snapshot.
    summaries = [line for line in live_lines if "snapshots=" in line]
    assert len(slots) <= len(summaries) <= len(slots) + 1
    assert sum(int(line.split("snapshots=")[1].split()[0]) for line in summaries) == len(snaps)

    plan = ReplayPlan(path, f"sqlite:///{tmp_path / 'replay.db'}", tmp_path / "files")
    lines: list[str] = []
    collector, state = replay_collector(_settings(), plan, START.date(), speed=None,
                                        printer=lambda line, style="": lines.append(line))
    try:
        assert collector.run() == 0
    finally:
        collector.engine.close()
        state.cleanup()
    replayed = SQLiteStore(tmp_path / "replay.db")
    two = dump(replayed)
    replayed.close()
    for measurement in (LEGS, OVERVIEW, FLOW, ALERTS):
        assert two[measurement] == one[measurement], measurement
    flows = [row for row in one[OVERVIEW] if dict(row[2]).get("flow_inflow_cr", 0) > 0]
    assert flows, "no premium flow measured: the comparison is not of zeros"
    assert [line.split("snapshots=")[1].split()[0] for line in lines if "snapshots=" in line] == \
        [line.split("snapshots=")[1].split()[0] for line in summaries]

    # The dashboard's replay steps through the same snapshots, one cycle each.
    settings = _settings()
    settings.general.data_dir = str(tmp_path / "live")
    feed = ReplayFeed(settings, START.date(), speed=1000.0)
    feed.start()
    seen = []
    try:
        while (cycle := feed.next_cycle()) is not None:
            assert cycle.snapshot is not None
            seen.append(cycle.snapshot.timestamp)
    finally:
        feed.close()
    assert seen == stamps
