"""What the live streaming source said about its stream (a stall, the drop, the reconnect, the gap
with its span, a bad frame skipped) is recorded as NOTICE records and said again by the replay,
in the same words, through the same status lines."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from optui.collectors import record_writer
from optui.collectors.recording import (
    FORMAT_VERSION,
    META,
    NOTICE,
    DayWriter,
    Recorder,
    _us,
    day_path,
    encode_json,
    read_day,
    recordings_dir,
)
from optui.collectors.replay_source import ReplaySource
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_source import StreamingSource
from optui.models import Snapshot, SnapshotWarning, WarningKind
from optui.simulator.server import serve
from tests.replay_support import (
    MEASUREMENTS,
    START,
    FakeClock,
    live_engine,
    replay_day,
    replay_settings,
    run_cycles,
    stored_rows,
)

STALL_S = 25.0  # exchange seconds the simulator's ticker sends nothing


def record_stalled_run(directory: Path, root: Path,
                       cycles: int) -> tuple[list[Snapshot], list[str]]:
    """`optui collect` over the simulator's ticker, recording on, 5 s cycles on a stepped clock;
    after the second cycle every connection goes silent without closing (no ticks, no
    heartbeats) while the exchange's clock moves on STALL_S seconds: the source sees the stall,
    reconnects and names the gap. Returns the snapshots and the printed status lines."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 0.05
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    source = StreamingSource(sim, "sim_key", "sim_token", server.url.replace("http", "ws", 1),
                             recorder=recorder, server=server, stall_after_s=1.5,
                             backoff_base_s=0.05, backoff_max_s=0.1)
    engine = live_engine(replay_settings(5.0, chain_strikes=4), source, root)
    lines: list[str] = []
    taken: list[Snapshot] = []

    def sleep(seconds: float) -> None:
        if len(taken) == 2:
            ticker = source.ticker
            assert ticker is not None
            before = [(st.stalls, st.connects) for st in ticker.stats]
            for session in server.sessions():
                session.paused.set()
            clock.advance(STALL_S)
            for _ in range(500):  # each connection stalled, up again, and ticking (gap named)
                if all(st.stalls > s0 and st.connects > c0 and shard.down_since is None
                       for st, (s0, c0), shard in zip(ticker.stats, before, ticker.shards,
                                                      strict=True)):
                    break
                time.sleep(0.02)
        clock.advance(seconds)
        assert wait_caught_up(source, sim.now()), "the stream did not catch up"

    run_cycles(engine, 5.0, cycles, lines=lines, sleep=sleep, snaps=taken)
    return taken, lines


def _ticker_lines(lines: list[str]) -> list[str]:
    return [line.strip() for line in lines if "warning: ticker connection" in line]


def _ticker_notes(warnings: list[str]) -> list[str]:
    return [w for w in warnings if w.startswith("ticker connection")]


@pytest.mark.integration
@pytest.mark.chaos
def test_a_recorded_stall_replays_with_the_live_gap_lines(tmp_path: Path) -> None:
    directory = recordings_dir(tmp_path / "live", simulated=True)
    snaps, live_lines = record_stalled_run(directory, tmp_path / "live", cycles=4)
    said = _ticker_notes([w for snap in snaps for w in snap.warnings])
    # The live run last ticked at 09:15:05, then nothing until the exchange's 09:15:30.
    gap = [line for line in said if "no ticks 09:15:05-09:15:30 IST" in line]
    assert gap and all("(the gap stays a gap in the recording)" in line for line in gap), said
    assert any("stalled: no data or heartbeat for 1.5 s; reconnecting" in line for line in said)
    assert any(" reconnected: " in line for line in said), said
    path = day_path(directory, START.date())
    records = list(read_day(path))
    assert records[0].kind == META and records[0].json()["format"] == FORMAT_VERSION == 6
    notices = [r for r in records if r.kind == NOTICE]
    assert any("no ticks 09:15:05-09:15:30 IST" in r.json()["message"] for r in notices)

    notes: list[SnapshotWarning] = []

    def keep_notes(collector: Any) -> None:
        take = collector.engine.source.take_notices

        def kept() -> list[SnapshotWarning]:
            fresh = take()
            notes.extend(fresh)
            return fresh

        collector.engine.source.take_notices = kept

    replay = replay_day(path, tmp_path / "replay.db", replay_settings(5.0, chain_strikes=4),
                        files=tmp_path / "files", prepare=keep_notes)
    # The same lines (the gap with the same span) in the same order, with their kind, said by
    # the replay; the status lines print the same of them.
    assert _ticker_notes(notes) == said
    assert all(w.kind == WarningKind.STREAM for w in _ticker_notes(notes))
    assert _ticker_lines(live_lines) and _ticker_lines(replay.lines) == _ticker_lines(live_lines)
    assert any("no ticks 09:15:05-09:15:30 IST" in w for w in _ticker_notes(notes))
    one = stored_rows(tmp_path / "live" / "live.db")
    for measurement in MEASUREMENTS:
        assert replay.rows[measurement] == one[measurement], measurement


@pytest.mark.unit
def test_notices_are_said_once_when_the_replayed_clock_passes_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a day recorded by format 5 (the event records alone) a notice is said by the first
    call at or after its moment, once, with its recorded kind and words; one recorded before
    a `--from` start is not said."""
    monkeypatch.setattr(record_writer, "FORMAT_VERSION", 5)
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    spots = ["NSE:NIFTY 50"]
    answer = {spots[0]: {"instrument_token": 256265, "last_price": 26000.0}}
    early = SnapshotWarning(WarningKind.STREAM, "", "ticker connection 1: no ticks before")
    late = SnapshotWarning(WarningKind.STREAM, "", "ticker connection 1: no ticks "
                           "09:15:05-09:15:35 IST for 20 instruments (down 0.4 s)")
    recorder.record_quotes(START, spots, answer)
    recorder.record_notice(START + timedelta(seconds=2), early)
    recorder.record_quotes(START + timedelta(seconds=5), spots, answer)
    recorder.record_notice(START + timedelta(seconds=30), late)
    recorder.record_quotes(START + timedelta(seconds=35), spots, answer)
    recorder.close()
    path = day_path(tmp_path, START.date())
    assert next(read_day(path)).json()["format"] == 5

    source = ReplaySource(path)
    try:
        source.quote_batch(spots)
        assert source.take_notices() == []
        source.advance(5.0)
        source.quote_batch(spots)
        assert source.take_notices() == [early]
        source.advance(30.0)
        source.quote_batch(spots)
        assert source.take_notices() == [late]
        assert source.take_notices() == []
    finally:
        source.close()
    source = ReplaySource(path, start=START + timedelta(seconds=5))
    try:
        source.quote_batch(spots)
        source.advance(30.0)
        source.quote_batch(spots)
        assert source.take_notices() == [late]
    finally:
        source.close()


@pytest.mark.unit
def test_a_format_4_day_counts_its_malformed_frames_itself(tmp_path: Path) -> None:
    """A day recorded before format 5 holds no notices: the replay counts the malformed tick
    frames it skips; from format 5 the live run's own line says each one instead."""
    for fmt, counted in ((4, True), (5, False)):
        folder = tmp_path / str(fmt)
        writer = DayWriter(day_path(folder, START.date()))
        writer.write(META, _us(START), encode_json({"format": fmt, "source": "sim",
                                                     "label": "SIMULATED"}))
        writer.write(4, _us(START), b"\x00\x02\x00\xb8\x00")  # TICKS: two packets, one cut short
        body = encode_json({"keys": ["NSE:NIFTY 50"], "data": {"NSE:NIFTY 50": {
            "instrument_token": 256265, "last_price": 26000.0}}})
        writer.write(3, _us(START) + 1, body)  # QUOTES
        writer.close()
        source = ReplaySource(day_path(folder, START.date()))
        try:
            source.quote_batch(["NSE:NIFTY 50"])
            said = [w.message for w in source.take_notices()]
        finally:
            source.close()
        assert any("1 malformed tick frame(s) skipped" in m for m in said) is counted, said
