"""Replay on the dashboard: a recorded simulated day played through the collection engine with
the REPLAY badge and the replayed clock; pause stops it, a step moves it one cycle, a jump lands
on the asked minute, and nothing reaches the live store."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from dashboard_wait import settle
from replay_support import FakeClock
from textual.message import Message
from textual.widgets._footer import FooterKey

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.recording import Recorder, RecordingSource, recordings_dir
from optui.collectors.sim_source import SimulatedSource
from optui.config import Settings
from optui.feed.replay import SPEEDS, ReplayFeed, next_speed
from optui.models import LegRecord, Snapshot
from optui.screens.dashboard import DashboardScreen, ReplayRequest
from optui.screens.dashboard_replay import JumpPrompt, parse_hhmm
from optui.timeutil import IST
from optui.ui_messages import SnapshotCollected
from optui.widgets.chain_table import ChainTable
from optui.widgets.status_header import StatusHeader
from tests.dashboard_pilot import Host

START = datetime(2026, 11, 25, 9, 15, tzinfo=IST)  # a Wednesday open
INTERVAL_S = 10.0
CYCLES = 14  # 09:15:00 to 09:17:10
LIVE: dict[Path, dict[datetime, Snapshot]] = {}
"""The live run's snapshots by moment, per recorded day."""




def _settings(root: Path) -> Settings:
    s = Settings()
    s.source.kind = "sim"
    s.source.indices = ["NIFTY"]
    s.source.interval_s = INTERVAL_S
    s.participants.enabled = False
    s.general.data_dir = str(root / "data")
    s.general.log_dir = str(root / "logs")
    s.store.url = f"sqlite:///{root / 'live.db'}"
    return s


@pytest.fixture(scope="module")
def recorded_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated morning recorded by `optui collect`'s Collector (seed 7, 5 s cycles)."""
    root = tmp_path_factory.mktemp("dash-replay")
    settings = _settings(root)
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = Recorder(recordings_dir(root / "data", simulated=True), sim.name, sim.label, flusher=False)
    engine = CollectionEngine(settings, RecordingSource(sim, recorder), None, state_dir=root / "state")
    collect, count = engine.collect_once, [0]

    live: dict[datetime, Snapshot] = {}

    def counted():  # noqa: ANN202
        count[0] += 1
        if count[0] >= CYCLES:
            collector.stop_event.set()
        snap = collect()
        live[snap.timestamp] = snap
        return snap

    engine.collect_once = counted  # type: ignore[method-assign]
    collector = Collector(engine, INTERVAL_S, printer=lambda line, style="": None, sleep=clock.advance)
    assert collector.run() == 0
    engine.close()
    LIVE[root] = live
    return root


def _header(screen: DashboardScreen, part: str) -> str:
    return str(screen.query_one(StatusHeader).query_one(f"#{part}").render())


@pytest.mark.integration
async def test_replay_on_the_dashboard_pauses_steps_and_jumps(recorded_day: Path) -> None:
    settings = _settings(recorded_day)
    screen = DashboardScreen(settings, replay=ReplayRequest(START.date(), speed=1.0))
    messages: list[Message] = []
    app = Host(screen)
    async with app.run_test(size=(160, 48), message_hook=messages.append) as pilot:
        await settle(app, pilot)
        snaps = [m.snapshot for m in messages if isinstance(m, SnapshotCollected)]
        assert snaps and snaps[0].timestamp == START  # the first record's moment
        # The chain shows the live dashboard's window (ui.chain_strikes each side), not only
        # the collector's recorded offsets: the recording holds whole chains.
        offsets = {leg.strike_offset for leg in snaps[0].indices["NIFTY"].legs}
        assert {"atm_m10", "atm", "atm_p10"} <= offsets and len(offsets) == 21
        assert _header(screen, "badge") == "REPLAY"
        assert "09:15:0" in _header(screen, "clock")  # the replayed clock, not the machine's
        assert "replay 1x playing" in _header(screen, "selection")
        # Before any key is pressed the footer offers the replay's keys, not "r Collect now".
        await pilot.pause()
        footer = {key.description for key in screen.query(FooterKey)}
        assert {"Pause", "Step", "Jump"} <= footer and "Collect now" not in footer, footer
        assert screen.query_one("#flow").border_title == "" or "cached" not in str(screen.query_one("#flow").border_title)

        await pilot.press("space")  # pause: the replayed clock stops
        await settle(app, pilot)
        feed = screen.feed
        assert isinstance(feed, ReplayFeed) and feed.paused
        shown, clock_text = screen._snapshot, _header(screen, "clock")
        await pilot.pause(0.5)
        screen._refresh_header()
        assert screen._snapshot is shown and _header(screen, "clock") == clock_text
        assert "PAUSED" in _header(screen, "selection")

        for _ in range(2):  # each step replays one cycle: the replayed time moves one interval
            before = screen._snapshot
            assert before is not None
            await pilot.press("full_stop")
            await settle(app, pilot)
            after = screen._snapshot
            assert after is not None and after is not before
            assert after.timestamp - before.timestamp == timedelta(seconds=INTERVAL_S)
            assert after.timestamp.astimezone(IST).strftime("%H:%M:%S") in _header(screen, "clock")
        assert feed.paused  # a step does not resume

        await pilot.press("plus")
        assert feed.speed == 2.0 and "replay 2x" in _header(screen, "selection")
        await pilot.press("minus", "minus")
        assert feed.speed == 1.0

        await pilot.press("j")  # jump: asks HH:MM, lands on that minute
        await pilot.pause()
        assert isinstance(app.screen, JumpPrompt)
        await pilot.press(*"9:16", "enter")
        await settle(app, pilot)
        assert app.screen is screen
        landed = screen._snapshot
        assert landed is not None
        assert landed.timestamp.astimezone(IST).strftime("%H:%M") == "09:16"
        assert "09:16:0" in _header(screen, "clock")
        assert landed.label == "REPLAY"
        store = feed.store
        assert store is not None and "optui-replay-view-" in store.describe()
        await pilot.press("escape")
    assert not (recorded_day / "live.db").exists()  # never into the live history


def _atm_call(snap: Snapshot) -> LegRecord:
    return next(leg for leg in snap.indices["NIFTY"].legs if leg.bucket == "this_week"
                and leg.side == "CALL" and leg.strike_offset == "atm")


@pytest.mark.integration
async def test_a_jump_forward_or_back_shows_the_live_run_oi_change(recorded_day: Path) -> None:
    """After `j` to 09:17 and back to 09:16 the dashboard shows NIFTY's ATM call with the OI
    change (and opening IV) the live run had at that minute, not one measured from the jump."""
    screen = DashboardScreen(_settings(recorded_day), replay=ReplayRequest(START.date(), speed=1.0))
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        feed = screen.feed
        assert isinstance(feed, ReplayFeed)
        await pilot.press("space")
        feed.warmup_cycles = 1  # the opening cycles, then only the cycle before the minute
        for hhmm in ("09:17", "09:16"):
            await pilot.press("j")
            await pilot.pause()
            await pilot.press(*hhmm, "enter")
            await settle(app, pilot)
            shown = screen._snapshot
            assert shown is not None and shown.timestamp.astimezone(IST).strftime("%H:%M:%S") == f"{hhmm}:00"
            assert feed.primed is not None and feed.primed.opening_cycles >= 1
            live = LIVE[recorded_day][shown.timestamp]
            leg, live_leg = _atm_call(shown), _atm_call(live)
            assert leg.strike == live_leg.strike and leg.oi_change != 0.0
            assert (leg.oi_open, leg.oi_change) == (live_leg.oi_open, live_leg.oi_change)
            stats = shown.indices["NIFTY"].overview.buckets["this_week"]
            assert stats.iv_open == live.indices["NIFTY"].overview.buckets["this_week"].iv_open
            cell = screen.query_one(ChainTable).get_cell(f"{leg.strike:g}", "c_oi_chg")
            assert str(cell).strip() and str(cell).strip() != "0", cell
        await pilot.press("escape")


@pytest.mark.unit
def test_speed_steps_and_times() -> None:
    assert next_speed(1.0, 1) == 2.0 and next_speed(60.0, 1) == 120.0
    assert next_speed(SPEEDS[-1], 1) == SPEEDS[-1] and next_speed(SPEEDS[0], -1) == SPEEDS[0]
    assert next_speed(7.0, -1) == 5.0 and next_speed(7.0, 1) == 10.0
    assert parse_hhmm("9:20") == "09:20" and parse_hhmm(" 14:05 ") == "14:05"
    assert parse_hhmm("24:00") is None and parse_hhmm("9.20") is None


@pytest.mark.integration
def test_replay_feed_clock_follows_speed_and_pause(recorded_day: Path) -> None:
    now = [0.0]
    feed = ReplayFeed(_settings(recorded_day), START.date(), speed=10.0, monotonic=lambda: now[0])
    try:
        feed.start()
        first = feed.next_cycle()
        assert first is not None and first.snapshot.timestamp == START
        at = feed.exchange_now()
        assert at is not None
        assert feed.delay_s() == pytest.approx((START + timedelta(seconds=INTERVAL_S) - at).total_seconds() / 10)
        now[0] += 0.2  # 2 replayed seconds at 10x
        assert (feed.exchange_now() - at).total_seconds() == pytest.approx(2.0)
        now[0] += 10.0  # never past the next cycle's moment
        assert feed.exchange_now() == START + timedelta(seconds=INTERVAL_S)
        feed.pause()
        assert math.isinf(feed.delay_s())
        frozen = feed.exchange_now()
        now[0] += 10.0
        assert feed.exchange_now() == frozen
        second = feed.next_cycle()  # a step while paused
        assert second is not None and second.snapshot.timestamp == START + timedelta(seconds=INTERVAL_S)
        feed.jump("09:16")
        third = feed.next_cycle()
        assert third is not None and third.snapshot.timestamp.astimezone(IST).strftime("%H:%M") == "09:16"
        while feed.next_cycle() is not None:
            pass
        assert feed.ended and math.isinf(feed.delay_s())
    finally:
        feed.close()


@pytest.mark.unit
def test_dashboard_replay_refuses_a_day_without_a_recording_before_opening(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data"),
           "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"), "OPTUI_SOURCE_KIND": "sim"}
    optui = str(Path(sys.executable).with_name("optui"))
    done = subprocess.run([optui, "dashboard", "--replay", "2026-11-25"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "no recording of 2026-11-25" in done.stderr and "Traceback" not in done.stderr + done.stdout
    done = subprocess.run([optui, "dashboard", "--replay", "2026-11-25", "--from", "9.20"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2 and "--from '9.20': use HH:MM (IST)" in done.stderr


@pytest.mark.integration
def test_dashboard_replay_refuses_a_start_after_the_recording_before_opening(
        recorded_day: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`optui dashboard --replay DAY --from 15:00` of a morning's recording says what the
    recording holds and exits 2, as `optui replay` does (the app opened on an empty WAITING
    screen with the local clock, and `r` retried the same start)."""
    import typer

    from optui.cli import _replay_request

    with pytest.raises(typer.Exit) as stopped:
        _replay_request(_settings(recorded_day), START.date().isoformat(), 1.0, "15:00")
    assert stopped.value.exit_code == 2
    err = capsys.readouterr().err
    assert "15:00 IST is after the recording of 2026-11-25: its cycles run from 09:15:00" in err, err
    request = _replay_request(_settings(recorded_day), START.date().isoformat(), 1.0, "09:15")
    assert request.start_hhmm == "09:15"


@pytest.mark.integration
async def test_a_jump_past_the_recording_is_refused_before_anything_starts(recorded_day: Path) -> None:
    """`j` to a time after the recording's last cycle says what the recording holds and
    leaves the replay where it was: no "Jumping to" first, no new start."""
    screen = DashboardScreen(_settings(recorded_day), replay=ReplayRequest(START.date(), speed=1.0))
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(app, pilot)
        feed = screen.feed
        assert isinstance(feed, ReplayFeed)
        await pilot.press("space")
        await settle(app, pilot)
        shown, engine = screen._snapshot, feed.engine
        await pilot.press("j")
        await pilot.pause()
        await pilot.press(*"15:00", "enter")
        await settle(app, pilot)
        said = [(n.title, n.message) for n in app._notifications]
        assert ("Replay: no jump to 15:00", "15:00 IST is after the recording of 2026-11-25: "
                "its cycles run from 09:15:00 to 09:17:10 IST") in said, said
        assert not any("Jumping" in message for _, message in said), said
        assert screen._snapshot is shown and feed.engine is engine and not feed.ended
        await pilot.press("escape")


@pytest.mark.integration
def test_a_replay_that_cannot_keep_the_speed_says_its_real_pace(recorded_day: Path) -> None:
    """At 10x a 10 s interval allows 1 s a cycle; cycles taking 2 s more (a full chain) move
    the replayed clock 10 s per 3 real seconds: the header says 3.3x actual, not only 10x."""
    from optui.screens.dashboard_replay import replay_flag

    now = [0.0]
    feed = ReplayFeed(_settings(recorded_day), START.date(), speed=10.0, monotonic=lambda: now[0])
    try:
        feed.start()
        assert feed.engine is not None
        collect = feed.engine.collect_once

        def slow() -> Snapshot:
            now[0] += 2.0  # real seconds a cycle takes
            return collect()

        feed.engine.collect_once = slow  # type: ignore[method-assign]
        for _ in range(6):  # the feed loop: a cycle, then the pause the speed asks
            assert feed.next_cycle() is not None
            now[0] += feed.delay_s()
        actual = feed.actual_speed()
        assert actual == pytest.approx(10.0 / 3.0, rel=0.05)
        assert replay_flag(feed.speed, actual, paused=False, ended=False) == (
            "replay 10x (3.3x actual) playing", "REPLAY 10x (3.3x)")
        feed.set_speed(1.0)  # a new speed is measured afresh
        assert feed.actual_speed() is None
    finally:
        feed.close()


@pytest.mark.integration
def test_a_replay_that_keeps_the_speed_states_only_the_speed(recorded_day: Path) -> None:
    from optui.screens.dashboard_replay import replay_flag

    now = [0.0]
    feed = ReplayFeed(_settings(recorded_day), START.date(), speed=10.0, monotonic=lambda: now[0])
    try:
        feed.start()
        for _ in range(6):
            assert feed.next_cycle() is not None
            now[0] += feed.delay_s()
        actual = feed.actual_speed()
        assert actual == pytest.approx(10.0)
        assert replay_flag(feed.speed, actual, paused=False, ended=False)[0] == "replay 10x playing"
        feed.pause()
        assert feed.actual_speed() is None
        assert replay_flag(feed.speed, None, paused=True, ended=False) == (
            "replay 10x PAUSED (space resumes)", "REPLAY 10x ⏸")
    finally:
        feed.close()
