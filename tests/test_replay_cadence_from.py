"""`--from` on a day collected at the tick cadence: a replay from a later minute takes its
snapshots at the recorded frame positions from that minute on and stores what the live run
stored from then on, value for value; the dashboard's jump lands on the same snapshots."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.recording import Recorder, RecordingSource, day_path, recordings_dir
from optui.collectors.sim_source import SimulatedSource
from optui.feed.replay import ReplayFeed
from optui.storage.records import OVERVIEW
from optui.timeutil import UTC
from tests.replay_support import (
    MEASUREMENTS,
    START,
    FakeClock,
    cadence_settings,
    play,
    record_cadence_run,
    replay_day,
    stored_rows,
)

BEGIN = START + timedelta(seconds=56)  # 09:15:56: the run crosses into 09:16, where one leg goes to REST for a snapshot
MINUTE = START + timedelta(minutes=1)


@pytest.fixture(scope="module")
def cadence_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cadence-from")
    directory = recordings_dir(root / "live", simulated=True)
    snaps, _, _ = record_cadence_run(directory, root / "live", snapshots=22, start=BEGIN)
    return {"root": root, "path": day_path(directory, START.date()), "snaps": snaps,
            "live": stored_rows(root / "live" / "live.db")}


@pytest.mark.integration
@pytest.mark.parametrize("warmup", [1, None])
def test_a_tick_cadence_day_replayed_from_a_minute_stores_the_live_rows_from_then_on(
        cadence_day: dict[str, Any], tmp_path: Path, warmup: int | None) -> None:
    live = cadence_day["live"]
    since = MINUTE.astimezone(UTC)
    later = {m: [r for r in live[m] if r[0] >= since] for m in MEASUREMENTS}
    assert len({r[0] for r in later[OVERVIEW]}) >= 5  # snapshots of 09:16 to compare
    assert any(dict(r[2]).get("flow_inflow_cr", 0) > 0 for r in later[OVERVIEW])
    two = replay_day(cadence_day["path"], tmp_path / "r.db", cadence_settings(),
                     files=tmp_path / "files", start_hhmm="09:16", warmup_cycles=warmup).rows
    for measurement in MEASUREMENTS:
        assert [r for r in two[measurement] if r[0] >= since] == later[measurement], measurement
        # The first snapshot the live run took at or after 09:16 may carry the stamp of the
        # second before it (its ticks' exchange time): then it, and the bar of 09:15 it
        # closes, are stored as the live run stored them.
        earlier = [r for r in two[measurement] if r[0] < since]
        assert all(r in live[measurement] for r in earlier), measurement


@pytest.mark.integration
def test_a_replay_from_a_minute_configured_for_other_indices_stores_the_live_rows(
        cadence_day: dict[str, Any], tmp_path: Path) -> None:
    """The day was collected for NIFTY alone; replayed from 09:16 with NIFTY and BANKNIFTY
    configured, the replay collects what the recording holds, so its priming takes every live
    snapshot before 09:16 (the catch-up asks the recorded spot call) and from 09:16 on it stores
    the live rows: not a first snapshot stamped 09:15:59 with a later chain, the live 09:16:00
    snapshot missing and its leg rows stored a second late."""
    live = cadence_day["live"]
    since = MINUTE.astimezone(UTC)
    settings = cadence_settings()
    settings.source.indices = ["NIFTY", "BANKNIFTY"]
    two = replay_day(cadence_day["path"], tmp_path / "r.db", settings, files=tmp_path / "files",
                     start_hhmm="09:16", warmup_cycles=1).rows
    for measurement in MEASUREMENTS:
        assert [r for r in two[measurement] if r[0] >= since] == \
            [r for r in live[measurement] if r[0] >= since], measurement
        assert all(r in live[measurement] for r in two[measurement] if r[0] < since), measurement


@pytest.mark.integration
def test_a_jump_on_a_tick_cadence_day_lands_on_the_live_snapshots(
        cadence_day: dict[str, Any]) -> None:
    settings = cadence_settings()
    settings.general.data_dir = str(cadence_day["root"] / "live")
    feed = ReplayFeed(settings, START.date(), speed=1000.0, start_hhmm="09:16", warmup_cycles=1)
    try:
        feed.start()
        seen = play(feed)
    finally:
        feed.close()
    assert seen and seen[0].timestamp >= MINUTE - timedelta(seconds=1)  # see above
    live = [s for s in cadence_day["snaps"] if s.timestamp >= seen[0].timestamp]
    assert [s.timestamp for s in seen] == [s.timestamp for s in live]
    assert [s.indices["NIFTY"].overview.flow.inflow_cr for s in seen] == \
        pytest.approx([s.indices["NIFTY"].overview.flow.inflow_cr for s in live])


def record_straddling_day(directory: Path, state: Path) -> None:
    """A day at the tick cadence (META `snapshot_s` = 1) on the simulator's REST quotes, one
    snapshot a second from 09:15:40.98 to 09:16:09.98, each call 30 ms after the one before:
    every fifth snapshot's spot call falls just before a multiple of the 5 s interval and its
    chain call just after it."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    recorder.meta["snapshot_s"] = 1.0
    asked = sim.quote_batch

    def paced(keys: Any) -> dict:
        try:
            return asked(keys)
        finally:
            clock.advance(0.03)

    sim.quote_batch = paced  # type: ignore[method-assign]
    engine = CollectionEngine(cadence_settings(), RecordingSource(sim, recorder), None,
                              state_dir=state)
    for second in range(40, 70):
        clock.t = 1000.0 + second + 0.98
        engine.collect_once()
    engine.close()


@pytest.mark.integration
def test_a_snapshot_whose_calls_straddle_the_schedule_primes_the_replay_from_a_minute(
        tmp_path: Path) -> None:
    """Replayed from 09:16 (an alert window of priming cycles, one per recorded snapshot), the
    rows from 09:16 on are those of the replay of the whole day (which equal the live run's,
    above): no chain answered by the snapshot before its own, no alert window missing the
    snapshots between the schedule's slots."""
    directory = recordings_dir(tmp_path / "live", simulated=True)
    record_straddling_day(directory, tmp_path / "state")
    path = day_path(directory, START.date())
    whole = replay_day(path, tmp_path / "whole.db", cadence_settings()).rows
    later = replay_day(path, tmp_path / "later.db", cadence_settings(), start_hhmm="09:16").rows
    since = MINUTE.astimezone(UTC)
    assert len({r[0] for r in whole[OVERVIEW] if r[0] >= since}) == 10
    for measurement in MEASUREMENTS:
        assert later[measurement] == [r for r in whole[measurement] if r[0] >= since], measurement


@pytest.mark.unit
def test_a_cycle_begun_between_a_snapshots_calls_takes_that_snapshots_chain(tmp_path: Path) -> None:
    """Snapshots a second apart, each a spot call at s+0.98 and a chain call at s+1.01: a
    replay sought to s+1.00 (between the two) answers the spot from s+0.98 and the chain from
    s+1.01, its own snapshot's, not from the snapshot before; and so on, snapshot by snapshot."""
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    spot, chain = ["NSE:NIFTY 50"], ["NFO:A", "NFO:B"]
    for second in range(6):
        at = START + timedelta(seconds=second)
        recorder.record_quotes(at + timedelta(seconds=0.98), spot,
                               {spot[0]: {"instrument_token": 256265, "last_price": 100.0 + second}})
        recorder.record_quotes(at + timedelta(seconds=1.01), chain,
                               {k: {"instrument_token": 7, "last_price": 10.0 + second} for k in chain})
    recorder.close()
    from optui.collectors.replay_source import ReplaySource

    source = ReplaySource(day_path(tmp_path, START.date()), start=START + timedelta(seconds=3),
                          lookahead_s=4.5)
    for second in range(2, 6):
        assert source.quote_batch(spot)[spot[0]]["last_price"] == 100.0 + second
        assert source.quote_batch(chain)["NFO:B"]["last_price"] == 10.0 + second
        source.advance(1.0)
