"""Record and replay: a recorded simulated day replays into an empty store value for value;
cut and corrupt recordings are read as far as they go and say so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from optui.collectors.engine import CollectionEngine
from optui.collectors.quote_columns import decode_quotes, encode_quotes
from optui.collectors.quote_pack import PackError, PackState, pack_quotes, unpack_columns
from optui.collectors.recording import (
    FRAME_SPAN_S,
    META,
    QUOTE_COLUMNS,
    QUOTE_PACKED,
    QUOTES,
    STREAM_QUOTES,
    TICKS,
    DayWriter,
    ReadHealth,
    Recorder,
    RecordingSource,
    day_path,
    encode_json,
    frame_offsets,
    index_path,
    read_day,
    recordings_dir,
    with_recording,
)
from optui.collectors.replay import ReplayPlan, plan_replay, replay_collector
from optui.collectors.replay_source import ReplaySource
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.models import Snapshot, WarningKind
from optui.simulator.server import serve
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC
from tests.replay_support import (
    INDICES,
    MEASUREMENTS,
    START,
    FakeClock,
    dump,
    live_engine,
    replay_day,
    replay_process_env,
    replay_settings,
    run_cycles,
    stored_rows,
)


def record_run(root: Path, cycles: int,
               interval_s: float = 5.0) -> tuple[list[Snapshot], list[str], Recorder]:
    """`optui collect`'s Collector on the simulator (seed 7, fixed start) with recording on,
    into the simulator's recordings under `root` (store, files and day state as live_engine)."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = Recorder(recordings_dir(root, simulated=True), sim.name, sim.label, flusher=False)
    engine = live_engine(replay_settings(interval_s), RecordingSource(sim, recorder), root)
    lines: list[str] = []
    snaps = run_cycles(engine, interval_s, cycles, lines=lines, sleep=clock.advance)
    return snaps, lines, recorder


def _strip(line: str) -> str:
    """A status line without the parts that differ between runs (duration, source, and the
    `slow` mark, which follows the machine's load)."""
    return " ".join(p for p in line.split()
                    if not p.startswith(("duration=", "source=")) and p != "slow")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("recorded")
    directory = recordings_dir(root, simulated=True)
    snaps, lines, recorder = record_run(root, cycles=14)
    return {"root": root, "dir": directory, "snaps": snaps, "lines": lines,
            "path": day_path(directory, START.date()), "records": recorder.records}


@pytest.mark.integration
def test_replay_into_an_empty_store_reproduces_the_live_run(recorded: dict[str, Any],
                                                             tmp_path: Path) -> None:
    path = recorded["path"]
    assert path.exists() and index_path(path).exists()
    replay = replay_day(path, tmp_path / "replay.db", files=tmp_path / "files")
    one, two = stored_rows(recorded["root"] / "live.db"), replay.rows
    cycles = len(recorded["snaps"])
    assert len(one[OVERVIEW]) == cycles * len(INDICES)
    assert len(one[FLOW]) == 2 * len(INDICES)  # the 09:15 and 09:16 bars
    for measurement in MEASUREMENTS:
        assert two[measurement] == one[measurement], measurement
    # The same status lines, cycle for cycle, with REPLAY as the source.
    assert replay.cycles == cycles
    status = [line for line in replay.lines if "legs=" in line]
    assert [_strip(line) for line in status] == [_strip(line) for line in recorded["lines"]
                                                 if "legs=" in line]
    assert all(" source=replay " in line for line in status)
    assert recorded["lines"][0].split()[2] == "source=simulated"
    # The same JSON-per-leg files and CSV sidecar.
    assert _files(tmp_path / "files") == _files(recorded["root"] / "files")


@pytest.mark.integration
def test_a_replay_collects_the_indices_the_recording_holds(recorded: dict[str, Any],
                                                          tmp_path: Path) -> None:
    """The day was collected for NIFTY and SENSEX; a configuration listing NIFTY and BANKNIFTY
    replays NIFTY and SENSEX (what the live run stored), with no "no spot quote for NSE:NIFTY
    BANK" warning each cycle for an index never recorded."""
    settings = replay_settings()
    settings.source.indices = ["NIFTY", "BANKNIFTY"]
    plan = ReplayPlan(recorded["path"], f"sqlite:///{tmp_path / 'replay.db'}", tmp_path / "files")
    lines: list[str] = []
    collector, state = replay_collector(settings, plan, START.date(), speed=None,
                                        printer=lambda line, style="": lines.append(line))
    try:
        assert collector.run() == 0
    finally:
        collector.engine.close()
        state.cleanup()
    assert not [line for line in lines if "no spot quote" in line or "warnings=" in line]
    status = [line for line in lines if "legs=" in line]
    assert len(status) == len(recorded["snaps"])
    assert all(" indices=NIFTY,SENSEX " in line for line in status)
    live, replayed = SQLiteStore(recorded["root"] / "live.db"), SQLiteStore(tmp_path / "replay.db")
    try:
        one, two = dump(live), dump(replayed)
    finally:
        live.close()
        replayed.close()
    for measurement in (LEGS, OVERVIEW, FLOW):
        assert two[measurement] == one[measurement], measurement


@pytest.mark.unit
def test_the_recorded_indices_come_from_the_first_call_of_spots_only(tmp_path: Path) -> None:
    """A session that captured closing OI before the open asked for options first: its indices
    are read from its first call of index spots only, in that call's order."""
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    recorder.record_quotes(START - timedelta(minutes=20), ["NFO:NIFTY25DEC26000CE"],
                           {"NFO:NIFTY25DEC26000CE": {"instrument_token": 7, "oi": 100}})
    spots = ["BSE:SENSEX", "NSE:NIFTY 50"]
    recorder.record_quotes(START, spots, {k: {"instrument_token": n, "last_price": 1.0}
                                          for n, k in enumerate(spots)})
    recorder.close()
    source = ReplaySource(day_path(tmp_path, START.date()))
    try:
        assert source.recorded_indices() == ["SENSEX", "NIFTY"]
    finally:
        source.close()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def record_streamed_run(directory: Path, root: Path, cycles: int,
                        interval_s: float = 5.0) -> tuple[list[Snapshot], list[str]]:
    """`optui collect`'s Collector over the ticker: the simulator served on loopback, quotes
    streamed by a StreamingSource (REST for what has not ticked yet), recording on. Between
    cycles the simulated clock moves on and the collector waits for the ticks of that moment;
    after the second cycle the exchange sends one truncated frame."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 0.25
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    source = StreamingSource(sim, "sim_key", "sim_token", server.url.replace("http", "ws", 1),
                             recorder=recorder, server=server)
    engine = live_engine(replay_settings(interval_s), source, root)
    lines: list[str] = []

    def truncated_frame(snaps: list[Snapshot]) -> None:
        if len(snaps) == 2:
            server.sessions()[0].send_raw(b"\x00\x02\x00\xb8\x00")

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        assert wait_caught_up(source, sim.now()), "the stream did not catch up"

    snaps = run_cycles(engine, interval_s, cycles, lines=lines, sleep=sleep, after=truncated_frame)
    return snaps, lines


@pytest.mark.integration
def test_a_streamed_day_replays_through_the_same_parser_into_the_same_store(
        tmp_path: Path) -> None:
    """The ticker's frames recorded as received and replayed through the same packet parser
    and tick book: the replay stores the live run's legs, overview and flow value for value,
    prints the same status lines (feed tier included), and names the bad frame as live did."""
    directory = recordings_dir(tmp_path / "live", simulated=True)
    snaps, live_lines = record_streamed_run(directory, tmp_path / "live", cycles=6)
    assert snaps[-1].leg_count > 0
    path = day_path(directory, START.date())
    kinds = [r.kind for r in read_day(path)]
    assert kinds.count(STREAM_QUOTES) >= 6 and kinds.count(TICKS) > 6
    notes: list[str] = []

    def keep_notes(collector: Any) -> None:
        take = collector.engine.source.take_notices
        collector.engine.source.take_notices = lambda: take_and_keep(notes, take)

    replay = replay_day(path, tmp_path / "replay.db", files=tmp_path / "files",
                        prepare=keep_notes)
    one, two, lines = stored_rows(tmp_path / "live" / "live.db"), replay.rows, replay.lines
    assert len({row[0] for row in one[OVERVIEW]}) == 6
    for measurement in MEASUREMENTS:
        assert two[measurement] == one[measurement], measurement

    def plain(line: str) -> str:
        return " ".join(p for p in _strip(line).split()  # timing and ticker notices differ
                        if not p.startswith("warnings=") and p != "slow")

    status = [plain(line) for line in lines if "legs=" in line]
    assert status == [plain(line) for line in live_lines if "legs=" in line]
    assert all(" feed=stream" in line for line in status[1:]), status
    # The bad frame is named in the live run's words (recorded), and not counted again.
    skipped = "bad binary frame skipped (packet 1 of 2 claims 184 bytes; 1 remain)"
    assert any(skipped in line for line in live_lines), live_lines
    assert sum(skipped in n for n in notes) == 1, notes
    assert not any("malformed tick frame(s) skipped" in n for n in notes), notes


def take_and_keep(kept: list[str], take: Any) -> list:
    """The replay source's notices, also kept for the test to read."""
    fresh = take()
    kept.extend(fresh)
    return fresh


@pytest.mark.integration
def test_optui_replay_command_reproduces_the_live_store(recorded: dict[str, Any],
                                                        tmp_path: Path) -> None:
    env, data = replay_process_env(tmp_path, recorded["path"])
    target = recordings_dir(data, simulated=True)
    run = subprocess.run(
        [sys.executable, "-m", "optui.cli", "replay", "--date", START.date().isoformat(),
         "--from", "09:15:30", "--source", "sim"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 2 and "--from '09:15:30': use HH:MM (IST)" in run.stderr
    run = subprocess.run(
        [sys.executable, "-m", "optui.cli", "replay", "--date", START.date().isoformat(),
         "--source", "sim"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    status = [line for line in run.stdout.splitlines() if "legs=" in line]
    assert len(status) == len(recorded["snaps"])
    assert status[0].startswith("09:15:00 IST source=replay indices=NIFTY,SENSEX")
    one, two = stored_rows(recorded["root"] / "live.db"), stored_rows(data / "sim" / "replay" / "optui.db")
    for measurement in (LEGS, OVERVIEW, FLOW):
        assert two[measurement] == one[measurement], measurement
    # At a set speed the replay runs on the real clock, here 60 times faster than the market.
    run = subprocess.run(
        [sys.executable, "-m", "optui.cli", "replay", "--date", START.date().isoformat(),
         "--source", "sim", "--speed", "60", "--store", f"sqlite:///{tmp_path / 'speed.db'}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "speed=60x" in run.stdout.splitlines()[0]
    assert any(line.startswith("09:15:00 IST source=replay") for line in run.stdout.splitlines())
    fast_times = {row[0] for row in stored_rows(tmp_path / "speed.db")[OVERVIEW]}
    assert fast_times and fast_times <= {row[0] for row in one[OVERVIEW]}
    # A day never recorded is named with the days that are.
    run = subprocess.run(
        [sys.executable, "-m", "optui.cli", "replay", "--date", "2026-11-26", "--source", "sim"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 2
    assert f"no recording of 2026-11-26 in {target} (recorded days: 2026-11-25)" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.integration
@pytest.mark.parametrize("warmup", [1, None])
def test_replay_from_a_time_stores_what_the_live_run_stored_from_then_on(
        recorded: dict[str, Any], tmp_path: Path, warmup: int | None) -> None:
    """A replay from 09:16 is primed from the recording (the opening cycles, then `warmup`
    cycles before 09:16; None: as many as its time budget allows), so every row from 09:16 on,
    OI change and IV change included, is the live run's value for value."""
    replay = replay_day(recorded["path"], tmp_path / "r.db", start_hhmm="09:16",
                        warmup_cycles=warmup)
    status = [line for line in replay.lines if "legs=" in line]
    assert [line.split()[0] for line in status] == ["09:16:00", "09:16:05"]
    one, two = stored_rows(recorded["root"] / "live.db"), replay.rows
    since = START.astimezone(UTC) + timedelta(minutes=1)
    for measurement in MEASUREMENTS:
        later = [row for row in one[measurement] if row[0] >= since]
        assert two[measurement] == later, measurement
    assert len(two[LEGS]) == 2 * 80
    if warmup is None:
        return  # the whole day's replay is compared once
    # The same rows as a replay of the whole day from its first record, from 09:16 on.
    everything = replay_day(recorded["path"], tmp_path / "whole.db").rows
    assert all(two[m] == [r for r in everything[m] if r[0] >= since] for m in (LEGS, OVERVIEW, FLOW))
    # The fault this guards against: OI change measured from the first replayed cycle (0 there)
    # and IV change from its ATM IV. NIFTY's ATM call at 09:16: OI 2,684,825 against the
    # 2,680,795 of 09:15, the live run's first sight of it.
    def first(rows: list, index: str, **want: str) -> dict[str, Any]:
        return next(dict(f) for t, tags, f in rows if t == since and dict(tags)["index"] == index
                    and all(dict(tags).get(k) == v for k, v in want.items()))

    leg = first(two[LEGS], "NIFTY", bucket="this_week", side="CALL", strike_offset="atm")
    assert (leg["oi_open"], leg["oi_change"]) == (2680795.0, 4030.0)
    overview, live_overview = first(two[OVERVIEW], "NIFTY"), first(one[OVERVIEW], "NIFTY")
    assert overview["this_week_iv_open"] == live_overview["this_week_iv_open"]
    assert overview["this_week_iv_day_change"] != 0.0


@pytest.mark.integration
def test_a_windowed_chain_replayed_from_the_afternoon_keeps_each_strikes_first_oi(
        tmp_path: Path) -> None:
    """With a window of strikes around the ATM, strikes that enter it later in the day have
    the OI of their first quote as reference (no previous close stored), and the chain's OI
    coverage counts the last OI of strikes that left it. A live run at 09:15,
    12:45 and 13:00 replayed from 13:00 (the opening cycles, the recorded answers in between
    read for first OIs, one warm-up cycle) stores the live run's 13:00 rows value for value."""
    settings = replay_settings()
    settings.source.chain_strikes = 1  # the offsets' reach: ATM +-2 strikes
    directory = recordings_dir(tmp_path / "live", simulated=True)
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    store = SQLiteStore(tmp_path / "live.db")
    engine = CollectionEngine(settings, RecordingSource(sim, recorder), store, state_dir=tmp_path / "state")
    seen: dict[str, set[float]] = {}
    # 12:59:51 and 12:59:58: two live cycles between the 5 s schedule's slots (a slow one).
    for at in ("09:15:00", "09:15:05", "09:15:10", "12:45:00", "12:45:05", "12:59:51",
               "12:59:58", "13:00:00", "13:00:05"):
        moment = datetime.combine(START.date(), datetime.strptime(at, "%H:%M:%S").time(), IST)
        clock.t = 1000.0 + (moment - START).total_seconds()
        snap = engine.collect_once()
        seen[at] = {leg.strike for leg in snap.indices["NIFTY"].legs if leg.bucket == "this_week"}
    engine.close()
    path = day_path(directory, START.date())
    later = seen["13:00:00"] - seen["09:15:00"] - seen["09:15:05"] - seen["09:15:10"]
    assert later & (seen["12:45:00"] | seen["12:45:05"]), seen  # strikes first quoted at 12:45

    replay = replay_day(path, tmp_path / "from.db", settings, start_hhmm="13:00", warmup_cycles=1)
    lines = replay.lines
    assert lines[0].startswith("replay from 13:00 IST: primed from ") and "first OIs read" in lines[0]
    assert [line.split()[0] for line in lines if "legs=" in line] == ["13:00:00", "13:00:05"]
    assert not any(" gap: " in line for line in lines), lines  # the recording's end is no gap
    one, two = stored_rows(tmp_path / "live.db"), replay.rows
    since = datetime.combine(START.date(), datetime.strptime("13:00", "%H:%M").time(), IST)
    for measurement in (LEGS, OVERVIEW, FLOW):  # alerts: the morning's history is not read
        assert two[measurement] == [r for r in one[measurement] if r[0] >= since], measurement
    firsts = [dict(f) for t, tags, f in two[LEGS] if dict(tags)["index"] == "NIFTY"
              and dict(tags)["bucket"] == "this_week" and dict(f).get("strike") in later]
    assert firsts and all(f["oi_change"] != 0.0 for f in firsts)


@pytest.mark.integration
def test_a_replay_feed_from_before_the_recording_names_the_moment_it_plays_from(
        recorded: dict[str, Any], tmp_path: Path) -> None:
    """The dashboard's replay asked for 09:10 of a day recorded from 09:15 plays from 09:15:00;
    with no live flow stored, the health line says the flow panel counts from 09:15 (it said
    "from 09:10", a minute the replay never shows)."""
    from optui.feed.replay import ReplayFeed

    settings = replay_settings()
    settings.general.data_dir = str(recorded["root"])
    settings.store.url = f"sqlite:///{tmp_path / 'empty.db'}"
    feed = ReplayFeed(settings, START.date(), speed=1.0, start_hhmm="09:10", source_kind="sim",
                      warmup_cycles=1)
    try:
        line = feed.start()
    finally:
        feed.close()
    assert "from 09:15:00 IST" in line, line
    assert "the flow panel's 15m to 1d count from 09:15 (" in feed.history_note, feed.history_note


@pytest.mark.integration
def test_a_replay_feed_shows_the_days_iv_standing_from_the_live_closes(
        recorded: dict[str, Any], tmp_path: Path) -> None:
    """The dashboard's replay plays into a store of its own, which held no daily IV close: the
    overview's IV rank, percentile and RV20 were blank on a replayed day. The live store's
    closes before that day are copied in (none of that day or later)."""
    from datetime import date

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.feed.replay import ReplayFeed
    from optui.storage.iv_history import iv_history, iv_point

    settings = replay_settings()
    settings.general.data_dir = str(recorded["root"])
    settings.store.url = f"sqlite:///{tmp_path / 'live.db'}"
    days = TradingCalendar().last_n(date(2026, 11, 24), 25)
    live = SQLiteStore(tmp_path / "live.db")
    try:
        live.write([iv_point("NIFTY", "this_week", d, {"atm_iv": 9.0 + n / 10, "spot": 26000.0 + n,
                                                       "origin": "collect"})
                    for n, d in enumerate([*days, START.date()])])
    finally:
        live.close()
    feed = ReplayFeed(settings, START.date(), speed=1.0, source_kind="sim")
    try:
        feed.start()
        closes = iv_history(feed.store, "NIFTY", "this_week", START.date())
        later = iv_history(feed.store, "NIFTY", "this_week", START.date() + timedelta(days=1))
    finally:
        feed.close()
    assert [c.day for c in closes] == days
    assert [c.atm_iv for c in closes] == pytest.approx([9.0 + n / 10 for n in range(25)])
    assert len(later) == 25  # the replayed day's own close is the replay's to store


@pytest.mark.integration
def test_a_replay_feed_from_a_later_minute_counts_the_days_flow_as_the_live_run(
        recorded: dict[str, Any]) -> None:
    """The dashboard's replay from 09:16 holds the live store's premium-flow bars of the
    morning before it and its own from 09:16 on: the day's flow (the panel's 1d) is the live
    run's, bar for bar."""
    from optui.feed.replay import ReplayFeed

    settings = replay_settings()
    settings.general.data_dir = str(recorded["root"])
    settings.store.url = f"sqlite:///{recorded['root'] / 'live.db'}"
    feed = ReplayFeed(settings, START.date(), speed=1.0, start_hhmm="09:16", source_kind="sim",
                      warmup_cycles=1)
    try:
        assert "from 09:16:00 IST" in feed.start() and feed.history_note == ""
        while feed.next_cycle() is not None:
            pass
        shown = dump(feed.store)[FLOW]
    finally:
        feed.close()
    assert shown == stored_rows(recorded["root"] / "live.db")[FLOW] and len(shown) == 2 * len(INDICES)


@pytest.mark.integration
def test_a_replay_from_after_the_recordings_end_is_refused_with_its_span(
        recorded: dict[str, Any], tmp_path: Path) -> None:
    from optui.errors import ConfigError

    plan = ReplayPlan(recorded["path"], f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "files")
    with pytest.raises(ConfigError, match=r"15:00 IST is after the recording of 2026-11-25: "
                                          r"its cycles run from 09:15:00 to 09:16:0\d IST"):
        replay_collector(replay_settings(), plan, START.date(), speed=None, start_hhmm="15:00")


def _copy(src: Path, dst_dir: Path) -> Path:
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / src.name
    dst.write_bytes(src.read_bytes())
    index_path(dst).write_bytes(index_path(src).read_bytes())
    return dst


@pytest.mark.unit
def test_a_recording_cut_mid_write_is_read_up_to_the_cut(recorded: dict[str, Any],
                                                         tmp_path: Path) -> None:
    full = list(read_day(recorded["path"]))
    assert len(full) == recorded["records"] + 1  # and the session's meta record
    path = _copy(recorded["path"], tmp_path)
    size = path.stat().st_size
    last_frame = frame_offsets(path)[-1][0]
    with open(path, "r+b") as fh:  # a killed recorder: the last frame stops mid-block
        fh.truncate(last_frame + (size - last_frame) // 2)
    health = ReadHealth()
    cut = list(read_day(path, None, health))
    assert health.cut and health.bad_frames == 0
    assert 0 < len(cut) < len(full)
    assert [r.payload for r in cut] == [r.payload for r in full[: len(cut)]]
    source = ReplaySource(path)
    source._fill(2**62)
    notes = source.take_notices()
    assert len(notes) == 1 and "file cut mid-write" in notes[0] and "read up to the cut" in notes[0]
    assert notes[0].kind is WarningKind.REPLAY
    assert source.take_notices() == []  # said once
    # The next session of the same day keeps what the cut frame held and appends after it.
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    recorder.record_ticks(START.replace(hour=15), b"\x00\x01")
    recorder.close()
    health = ReadHealth()
    whole = list(read_day(path, None, health))
    assert not health.cut and health.bad_frames == 0
    assert [r.payload for r in whole[: len(cut)]] == [r.payload for r in cut]
    assert whole[-1].kind == TICKS and whole[-1].payload == b"\x00\x01"
    assert any("cut mid-write" in n for n in recorder.take_notices())


@pytest.mark.unit
def test_corrupt_frames_and_unknown_records_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "2026-11-25.optrec.zst"
    writer = DayWriter(path)
    base = int(START.timestamp() * 1e6)
    span = int(FRAME_SPAN_S * 1e6)
    for frame in range(3):  # three frames
        writer.write(QUOTES, base + frame * span, b'{"keys":[],"data":{}}')
        writer.write(99, base + frame * span + 1, b"from a later version")
    writer.close()
    frames = frame_offsets(path)
    assert len(frames) == 3
    data = bytearray(path.read_bytes())
    middle = frames[1][0]
    data[middle + 8 : middle + 14] = b"\xff" * 6  # the second frame's block is garbage
    path.write_bytes(bytes(data))
    health = ReadHealth()
    records = list(read_day(path, None, health))
    assert [r.at_us for r in records] == [base, base + 2 * span]
    assert health.bad_frames == 1 and health.unknown == 2 and not health.cut
    lines = health.messages(path)
    assert "1 corrupt frame(s) skipped" in lines[0] and "2 record(s) of an unknown kind" in lines[1]
    # Seeking by time starts at the frame holding that moment.
    later = list(read_day(path, START + timedelta(seconds=2 * FRAME_SPAN_S + 5)))
    assert [r.at_us for r in later] == [base + 2 * span]


@pytest.mark.unit
def test_recording_is_on_by_default_and_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    sim = SimulatedSource(seed=7, start=START, clock=FakeClock())
    wrapped = with_recording(settings, sim, simulated=True)
    assert isinstance(wrapped, RecordingSource) and wrapped.label == "SIMULATED"
    wrapped.quote_batch(["NSE:NIFTY 50"])
    wrapped.close()
    recorded = list(read_day(day_path(tmp_path / "sim" / "recordings", START.date())))
    assert [r.kind for r in recorded] == [META, QUOTE_PACKED]
    assert recorded[1].quotes()[0] == ["NSE:NIFTY 50"]
    settings.record.enabled = False
    assert with_recording(settings, sim, simulated=True) is sim


@pytest.mark.unit
def test_recordings_are_kept_apart_by_source(tmp_path: Path) -> None:
    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    assert recordings_dir(tmp_path, simulated=True) == tmp_path / "sim" / "recordings"
    assert recordings_dir(tmp_path, simulated=False) == tmp_path / "recordings"
    sim_dir = recordings_dir(tmp_path, simulated=True)
    sim_dir.mkdir(parents=True)
    day_path(sim_dir, START.date()).write_bytes(b"")
    plan = plan_replay(settings, START.date(), "sim")
    assert plan.store_url == f"sqlite:///{tmp_path / 'sim' / 'replay' / 'optui.db'}"
    assert plan.out_dir == tmp_path / "sim" / "replay"
    with pytest.raises(Exception, match="no recording of 2026-11-25 in .*recordings"):
        plan_replay(settings, START.date(), "kite")
    assert START.astimezone(IST).date() == START.date()


def _quote(ts: str, price: float) -> dict:
    return {"instrument_token": 1, "timestamp": ts, "last_price": price}


@pytest.mark.unit
def test_a_replayed_call_gets_the_answer_the_live_run_got(tmp_path: Path) -> None:
    """Kite answers one call a second: a live cycle's chain call is asked after its spot call;
    the replay's cycle asks at the cycle's moment and still gets that cycle's chain."""
    recorder = Recorder(tmp_path, "kite", "LIVE", flusher=False)
    spot, chain = ["NSE:NIFTY 50"], ["NFO:A", "NFO:B"]
    for cycle in range(3):
        at = START + timedelta(seconds=30 * cycle)
        recorder.record_quotes(at + timedelta(seconds=0.2), spot,
                               {spot[0]: _quote(f"{at:%Y-%m-%d %H:%M:%S}", 100.0 + cycle)})
        recorder.record_quotes(at + timedelta(seconds=1.3), chain,
                               {k: _quote(f"{at:%Y-%m-%d %H:%M:%S}", 10.0 + cycle) for k in chain})
    recorder.close()
    source = ReplaySource(day_path(tmp_path, START.date()), lookahead_s=27.0)
    assert source.name == "kite" and source.label == "REPLAY"
    assert source.now() == START.astimezone(UTC) + timedelta(seconds=0.2)
    source.advance(-0.2)  # a collector's cycle lands on the whole 30 s mark
    for cycle in range(3):
        assert source.quote_batch(spot)[spot[0]]["last_price"] == 100.0 + cycle
        assert source.quote_batch(chain)["NFO:B"]["last_price"] == 10.0 + cycle
        assert not source.finished
        source.advance(30.0)
    assert source.finished
    # At a set speed the replayed clock runs that many times real time.
    ticks = iter([0.0, 0.0, 2.0])
    fast = ReplaySource(day_path(tmp_path, START.date()), speed=60.0, monotonic=lambda: next(ticks))
    assert fast.now() == START.astimezone(UTC) + timedelta(seconds=0.2)
    assert fast.now() == START.astimezone(UTC) + timedelta(seconds=120.2)
    assert fast.real_seconds(60.0) == 1.0


@pytest.mark.unit
def test_ticks_recorded_after_the_last_cycle_end_the_replay_without_a_gap(tmp_path: Path) -> None:
    """A streamed collector stopped between cycles records ticker frames after its last quote
    call (up to the stop, here past the next cycle's mark): the replay ends after that last
    cycle instead of running one more that the recording cannot answer (a gap and a
    `source_down` error the live run never had)."""
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    spot = ["NSE:NIFTY 50"]
    for cycle in range(2):
        at = START + timedelta(seconds=30 * cycle)
        recorder.record_quotes(at + timedelta(seconds=0.2), spot,
                               {spot[0]: _quote(f"{at:%Y-%m-%d %H:%M:%S}", 100.0 + cycle)})
        recorder.record_ticks(at + timedelta(seconds=1), b"\x00")
    for late in (40.0, 61.0):  # the ticker kept recording until the collector stopped
        recorder.record_ticks(START + timedelta(seconds=late), b"\x00")
    recorder.close()
    source = ReplaySource(day_path(tmp_path, START.date()), lookahead_s=27.0)
    source.advance(-0.2)
    for cycle in range(2):
        assert not source.finished
        assert source.quote_batch(spot)[spot[0]]["last_price"] == 100.0 + cycle
        source.advance(30.0)
    assert source.finished


@pytest.mark.unit
def test_a_second_process_on_the_same_day_is_not_recorded_over_the_first(tmp_path: Path) -> None:
    first = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    first.record_ticks(START, b"one")
    first.flush()
    second = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    second.record_ticks(START, b"two")
    assert second.failed
    notes = second.take_notices()
    assert [n.kind for n in notes] == [WarningKind.RECORDING]
    assert notes == ["recording 2026-11-25.optrec.zst: another optui process is "
                                     "recording this day; this session is not recorded"]
    first.record_ticks(START, b"three")
    first.close()
    second.close()
    assert [r.payload for r in read_day(day_path(tmp_path, START.date())) if r.kind == TICKS] == \
        [b"one", b"three"]


_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                    st.floats(allow_nan=False), st.text(max_size=5))
_key = st.text(alphabet="abcdefgh_/#", min_size=1, max_size=4)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=3)


_value = st.recursive(_scalar, _nested, max_leaves=12)


@pytest.mark.property
@given(st.dictionaries(st.text(max_size=6), st.dictionaries(_key, _value, max_size=5), max_size=5))
def test_the_columnar_quote_form_gives_back_the_answer_exactly(data: dict) -> None:
    back = decode_quotes(json.loads(encode_json(encode_quotes(data))))
    assert back == data
    assert json.dumps(back) == json.dumps(data)  # key order and int/float kinds too


_number = st.one_of(st.integers(-10**15, 10**15), st.floats(allow_nan=True),
                    st.sampled_from([0.0, -0.0, 0.05, 26107.05, 1e300, 123.456]),
                    st.integers(-10**30, 10**30))


@pytest.mark.property
@given(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]),
                                st.fixed_dictionaries({"p": _number, "q": _number,
                                                       "o": st.fixed_dictionaries({"x": _scalar})}),
                                max_size=4), min_size=1, max_size=4))
def test_packed_quote_answers_give_back_each_answer_exactly(answers: list[dict]) -> None:
    """A run of answers for the same and for other instruments, each packed against the ones
    before it (ints and floats kept apart, -0.0, NaN, huge ints, mixed columns)."""
    state, back_state = PackState(), PackState()
    for data in answers:
        payload = pack_quotes(list(data), data, state)
        back = decode_quotes(unpack_columns(payload, back_state))
        assert json.dumps(back) == json.dumps(data)  # key order, int/float kinds, -0.0, NaN


@pytest.mark.unit
def test_a_packed_answer_read_without_the_one_before_it_is_refused() -> None:
    data = {"NFO:X": {"last_price": 10.05, "volume": 75}}
    state = PackState()
    pack_quotes(["NFO:X"], data, state)
    second = pack_quotes(["NFO:X"], {"NFO:X": {"last_price": 10.1, "volume": 150}}, state)
    with pytest.raises(PackError):
        unpack_columns(second, PackState())


@pytest.mark.unit
def test_format_1_recordings_stay_readable(tmp_path: Path) -> None:
    """A day recorded before quotes were packed (columnar JSON) replays as before."""
    path = tmp_path / f"{START.date().isoformat()}.optrec.zst"
    writer = DayWriter(path)
    data = {"NSE:NIFTY 50": {"instrument_token": 256265, "last_price": 26107.05,
                             "ohlc": {"open": 26082.01, "close": 26087.66}}}
    at = int(START.timestamp() * 1e6)
    writer.write(META, at, encode_json({"format": 1, "source": "sim", "label": "SIMULATED"}))
    writer.write(QUOTE_COLUMNS, at, encode_json({"keys": list(data), **encode_quotes(data)}))
    writer.close()
    source = ReplaySource(path, speed=None)
    assert source.name == "sim"
    assert source.quote_batch(list(data)) == data


@pytest.mark.integration
def test_a_killed_collector_leaves_a_recording_that_replays_to_its_store(tmp_path: Path) -> None:
    """`optui collect` on the simulator, killed with SIGKILL mid-session: the day file reads up to
    the kill, and `optui replay` stores what the collector stored for every recorded cycle."""
    data = tmp_path / "data"
    config = tmp_path / "optui.toml"
    config.write_text(
        f'[general]\ndata_dir = "{data}"\nlog_dir = "{tmp_path / "logs"}"\n'
        '[source]\nkind = "sim"\nindices = ["NIFTY"]\ninterval_s = 2.0\n'
        '[simulator]\nspeed = 5.0\nstart = "2026-11-25 09:15"\n'
        '[export]\nwrite_json = false\nwrite_csv = false\n[participants]\nenabled = false\n')
    env = {**os.environ, "OPTUI_CONFIG_FILE": str(config)}
    proc = subprocess.Popen([sys.executable, "-m", "optui.cli", "collect"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    assert proc.stdout is not None
    status = []
    for line in proc.stdout:
        if "legs=" in line:
            status.append(line)
        if len(status) >= 6:
            break
    proc.kill()
    proc.wait(timeout=30)
    assert all(" source=simulated " in line for line in status)
    path = day_path(recordings_dir(data, simulated=True), START.date())
    health = ReadHealth()
    records = list(read_day(path, None, health))
    assert health.cut and health.bad_frames == 0 and health.unknown == 0  # the frame was open
    # Spots and chain, 5+ cycles, streamed (source.stream is on by default) from the second on.
    assert sum(r.kind in (QUOTE_PACKED, STREAM_QUOTES) for r in records) >= 2 * 5
    assert any(r.kind == TICKS for r in records)
    assert any(" feed=stream" in line for line in status), status
    run = subprocess.run(
        [sys.executable, "-m", "optui.cli", "replay", "--date", START.date().isoformat()],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    replayed_lines = [line for line in run.stdout.splitlines() if "legs=" in line]
    assert len(replayed_lines) >= 5
    assert "file cut mid-write (a recorder was stopped hard): read up to the cut" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    one, two = stored_rows(data / "sim" / "optui.db"), stored_rows(data / "sim" / "replay" / "optui.db")
    # Every cycle the recording holds was stored by the live run with the same values. Streamed
    # at the tick cadence (the default), a status line sums an interval's snapshots.
    times = {row[0] for row in two[OVERVIEW]}
    assert len(times) == sum(int(line.split("snapshots=")[1].split()[0]) for line in replayed_lines)
    for measurement in (LEGS, OVERVIEW):
        assert two[measurement] == [row for row in one[measurement] if row[0] in times], measurement
    # A killed recorder loses at most its last second (FLUSH_S): at the tick cadence on this 5x
    # market, up to five snapshots, and the one being written.
    assert len(times) >= len({row[0] for row in one[OVERVIEW]}) - (5 + 1)


@pytest.mark.integration
def test_a_replay_judges_no_cycle_slow_whatever_its_pace(recorded: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """A replay chooses its own pace (as fast as it reads here), so its cycle times say nothing
    of the market's: cycles taking 30 s each raise no slow-cycle warning and the open faults stored
    with each cycle's health equal the live run's."""
    def slow(replay: Any) -> None:  # one recorded session: one engine
        collect = replay.engine.collect_once

        def timed() -> Any:
            snap = collect()
            snap.duration_s = 30.0
            return snap

        replay.engine.collect_once = timed

    replay = replay_day(recorded["path"], tmp_path / "replay.db", prepare=slow)
    assert replay.cycles == len(recorded["snaps"])
    assert not [line for line in replay.lines if "slow" in line.lower()], replay.lines
    faults = [_open_faults(recorded["root"] / "live.db"), _open_faults(tmp_path / "replay.db")]
    assert faults[0] and faults[1] == faults[0]  # no slow-cycle fault added by the replay


def _open_faults(db: Path) -> list[tuple[Any, float]]:
    """(time, open_faults) of each collector_health point in the SQLite store `db`."""
    store = SQLiteStore(db)
    try:
        rows = store.query("collector_health", START - timedelta(days=1), START + timedelta(days=1))
        return sorted((r.time, r.fields["open_faults"]) for r in rows)
    finally:
        store.close()
