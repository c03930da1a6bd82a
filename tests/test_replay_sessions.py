"""A day collected by several sessions (restarts, gaps, a simulator restarted at an earlier
moment over minutes already stored) replays session by session into the store the live
sessions left, value for value, from the first record or from a later minute."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from optui.collectors.record_sessions import day_sessions
from optui.collectors.recording import Recorder, RecordingSource, day_path, recordings_dir
from optui.collectors.replay import plan_parts
from optui.collectors.sim_source import SimulatedSource
from optui.config import Settings
from optui.errors import ConfigError
from optui.models import Snapshot
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.timeutil import IST, UTC
from tests.replay_support import (
    INDICES,
    MEASUREMENTS,
    START,
    FakeClock,
    live_engine,
    play,
    replay_day,
    replay_process_env,
    replay_settings,
    run_cycles,
    stored_rows,
)

DAY = START.date()
STRIKES = 3
"""Strikes quoted each side of the ATM: the sessions are under test here, and a window costs a
quarter of whole chains (those replay in tests/test_replay.py)."""


def settings() -> Settings:
    return replay_settings(chain_strikes=STRIKES)


def at(hhmmss: str) -> datetime:
    return datetime.combine(DAY, datetime.strptime(hhmmss, "%H:%M:%S").time(), IST)


def live_session(root: Path, start: datetime, cycles: int,
                 jump: tuple[int, datetime] | None = None) -> list[Snapshot]:
    """One `optui collect` process on the simulator started at `start` (same recordings, store,
    files and day state as the sessions before it), stopped after `cycles` cycles; with
    `jump` (n, moment) its clock leaps to `moment` after the n-th cycle (a gap)."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=start, clock=clock)
    recorder = Recorder(recordings_dir(root, simulated=True), sim.name, sim.label, flusher=False)
    engine = live_engine(settings(), RecordingSource(sim, recorder), root)
    snaps: list[Snapshot] = []

    def sleep(seconds: float) -> None:
        if jump is not None and len(snaps) == jump[0]:
            clock.t = 1000.0 + (jump[1] - start).total_seconds()
        else:
            clock.advance(seconds)

    return run_cycles(engine, 5.0, cycles, sleep=sleep, snaps=snaps)


@pytest.fixture(scope="module")
def sessions_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """12:00:00 to 12:00:20; then a simulator restarted at 11:00, three cycles, a gap to
    11:59:50 and on over 12:00:00 and 12:00:05 again; then one resuming at 12:00:30."""
    root = tmp_path_factory.mktemp("sessions")
    a = live_session(root, at("12:00:00"), 5)
    b = live_session(root, at("11:00:00"), 7, jump=(3, at("11:59:50")))
    c = live_session(root, at("12:00:30"), 2)
    return {"root": root, "path": day_path(recordings_dir(root, simulated=True), DAY),
            "snaps": (a, b, c)}


def _replay(day: dict[str, Any], db: Path, hhmm: str | None = None) -> tuple[dict, list[str]]:
    replay = replay_day(day["path"], db, settings(), start_hhmm=hhmm, warmup_cycles=1)
    return replay.rows, replay.lines


def _live(day: dict[str, Any]) -> dict:
    return stored_rows(day["root"] / "live.db")


def _flow(rows: list, when: datetime, index: str = "NIFTY") -> float:
    """The stored premium inflow (crore) of an index's overview row at `when`."""
    return next(dict(f)["flow_inflow_cr"] for t, tags, f in rows
                if t == when.astimezone(UTC) and dict(tags)["index"] == index)


@pytest.mark.integration
def test_sessions_are_found_in_recorded_order(sessions_day: dict[str, Any]) -> None:
    found = day_sessions(sessions_day["path"])
    assert [(s.number, s.first_call.astimezone(IST).strftime("%H:%M:%S"),
             s.last_call.astimezone(IST).strftime("%H:%M:%S")) for s in found] == \
        [(1, "12:00:00", "12:00:20"), (2, "11:00:00", "12:00:05"), (3, "12:00:30", "12:00:35")]
    assert found[0].end == found[1].start and found[2].end is None


@pytest.mark.integration
def test_a_day_collected_over_the_same_minutes_twice_replays_into_the_live_store(
        sessions_day: dict[str, Any], tmp_path: Path) -> None:
    a, b, c = sessions_day["snaps"]
    live = _live(sessions_day)
    # What the live sessions left: 12:00:00 and 12:00:05 as the restarted simulator stored
    # them (the second session wrote them last), the rest of 12:00 from the first session.
    times = sorted({row[0] for row in live[OVERVIEW]})
    assert [t.astimezone(IST).strftime("%H:%M:%S") for t in times] == [
        "11:00:00", "11:00:05", "11:00:10", "11:59:50", "11:59:55", "12:00:00", "12:00:05",
        "12:00:10", "12:00:15", "12:00:20", "12:00:30", "12:00:35"]
    # The simulated market is the same at the same moment whoever collects it; the premium
    # flow is not: the first session's first cycle had no previous quotes to measure from,
    # the second's 12:00:00 is measured from its 11:59:55 quotes.
    noon = at("12:00:00")
    assert a[0].timestamp == b[5].timestamp == noon.astimezone(UTC)
    first, second = a[0].indices["NIFTY"].overview.flow, b[5].indices["NIFTY"].overview.flow
    assert not first.measured and second.measured and second.inflow_cr > 0
    assert _flow(live[OVERVIEW], noon) == pytest.approx(second.inflow_cr)
    assert _flow(live[OVERVIEW], at("12:00:10")) == \
        pytest.approx(a[2].indices["NIFTY"].overview.flow.inflow_cr)
    assert len(live[OVERVIEW]) == len(times) * len(INDICES)

    replayed, lines = _replay(sessions_day, tmp_path / "replay.db")
    for measurement in MEASUREMENTS:
        assert replayed[measurement] == live[measurement], measurement
    assert [line.split()[0] for line in lines if "legs=" in line] == [
        "12:00:00", "12:00:05", "12:00:10", "12:00:15", "12:00:20",
        "11:00:00", "11:00:05", "11:00:10", "11:59:50", "11:59:55", "12:00:00", "12:00:05",
        "12:00:30", "12:00:35"]
    assert "replay: session 2 (11:00:00 to 12:00:05 IST) of 3 recorded that day" in lines


@pytest.mark.integration
@pytest.mark.parametrize("hhmm", ["12:00", "11:59"])
def test_a_replay_from_a_minute_of_such_a_day_stores_what_the_live_sessions_left(
        sessions_day: dict[str, Any], tmp_path: Path, hhmm: str) -> None:
    """Every session's cycles from the minute on, in recorded order, each primed from its own
    beginning on the day state the sessions before it left."""
    replayed, lines = _replay(sessions_day, tmp_path / "from.db", hhmm)
    since = at(f"{hhmm}:00").astimezone(UTC)
    live = _live(sessions_day)
    for measurement in (LEGS, OVERVIEW, FLOW):
        assert replayed[measurement] == [r for r in live[measurement] if r[0] >= since], measurement
    assert replayed[OVERVIEW]


@pytest.mark.integration
def test_which_sessions_a_start_plays(sessions_day: dict[str, Any]) -> None:
    sessions = day_sessions(sessions_day["path"])

    def shown(hhmm: str, **kw: Any) -> list[tuple[int, str | None]]:
        moment = at(hhmm if hhmm.count(":") == 2 else f"{hhmm}:00")
        return [(p.session.number, p.start.astimezone(IST).strftime("%H:%M") if p.start else None)
                for p in plan_parts(sessions, moment, **kw) if p.shown]

    assert shown("11:30") == [(1, None), (2, "11:30"), (3, None)]
    assert shown("12:00") == [(1, None), (2, "12:00"), (3, None)]
    # A jump goes to the first session holding the moment; those recorded before it are read
    # for their day state only.
    assert shown("11:30", first_holding=True) == [(2, "11:30"), (3, None)]
    assert shown("12:00", first_holding=True) == [(1, None), (2, "12:00"), (3, None)]
    # Before every session, or in no session's span: the first recorded after it.
    assert shown("10:00", first_holding=True) == shown("10:00") == [(1, None), (2, None), (3, None)]
    assert shown("12:00:25", first_holding=True) == shown("12:00:25") == [(3, None)]
    with pytest.raises(ConfigError, match=r"13:00 IST is after the recording of 2026-11-25: its "
                       r"cycles run from 11:00:00 to 12:00:35 IST \(3 sessions: 12:00:00 to "
                       r"12:00:20 IST, 11:00:00 to 12:00:05 IST, 12:00:30 to 12:00:35 IST\)"):
        plan_parts(sessions, at("13:00:00"))



@pytest.mark.integration
def test_the_dashboard_replay_plays_the_sessions_in_recorded_order_and_jumps_into_them(
        sessions_day: dict[str, Any]) -> None:
    from optui.feed.replay import ReplayFeed

    a, b, c = sessions_day["snaps"]
    played = settings()
    played.general.data_dir = str(sessions_day["root"])
    feed = ReplayFeed(played, DAY, speed=1000.0, source_kind="sim", warmup_cycles=1)

    def flows(snaps: list[Snapshot]) -> list[tuple[datetime, float]]:
        return [(s.timestamp, s.indices["NIFTY"].overview.flow.inflow_cr) for s in snaps]

    try:
        assert "; 3 collector sessions recorded that day, played in recorded order" in feed.start()
        seen = play(feed)
        assert flows(seen) == pytest.approx(flows([*a, *b, *c]))
        assert any("session 2 (11:00:00 to 12:00:05 IST) of 3 recorded that day begins" in str(w)
                   for s in seen for w in s.warnings)
        # 11:30 is held by the second session (its gap): the first is read for its day state,
        # the second plays from its first cycle at or after 11:30, then the third.
        assert feed.jump_refusal("11:30") is None
        assert "replay jumped to 11:30:00 IST" in feed.jump("11:30")
        assert flows(play(feed)) == pytest.approx(flows([*b[3:], *c]))
        assert feed.jump_refusal("13:00") == (
            "13:00 IST is after the recording of 2026-11-25: its cycles run from 11:00:00 to "
            "12:00:35 IST (3 sessions: 12:00:00 to 12:00:20 IST, 11:00:00 to 12:00:05 IST, "
            "12:00:30 to 12:00:35 IST)")
    finally:
        feed.close()


@pytest.mark.integration
def test_optui_replay_says_each_session_and_refuses_a_time_after_them(
        sessions_day: dict[str, Any], tmp_path: Path) -> None:
    import subprocess
    import sys

    env, _ = replay_process_env(tmp_path, sessions_day["path"], STRIKES)
    run = subprocess.run([sys.executable, "-m", "optui.cli", "replay", "--date", DAY.isoformat()],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout.splitlines()
    sessions = [line for line in out if line.startswith("replay: session ")]
    assert sessions == [
        "replay: session 1 (12:00:00 to 12:00:20 IST) of 3 recorded that day",
        "replay: session 2 (11:00:00 to 12:00:05 IST) of 3 recorded that day",
        "replay: session 3 (12:00:30 to 12:00:35 IST) of 3 recorded that day"]
    assert sum("legs=" in line for line in out) == 14 and out[-1].startswith("replay done: 14 cycle(s)")
    run = subprocess.run([sys.executable, "-m", "optui.cli", "replay", "--date", DAY.isoformat(),
                          "--from", "13:00"],
                         capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert ("13:00 IST is after the recording of 2026-11-25: its cycles run from 11:00:00 to "
            "12:00:35 IST (3 sessions: ") in run.stderr
