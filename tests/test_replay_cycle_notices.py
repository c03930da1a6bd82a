"""Every health line of the stream a live cycle said (the feed tier's changes, ticks of an
instrument never subscribed, the ticker's events) is recorded with that cycle (format 6) and
said again by the replay with the replayed cycle that made the same calls: the same lines at
the same snapshots and under the same status lines as the live run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optui.collectors.recording import (
    FORMAT_VERSION,
    META,
    NOTICE,
    Recorder,
    day_path,
    is_cycle_notice,
    read_day,
    recordings_dir,
)
from optui.collectors.replay_source import ReplaySource
from optui.models import Snapshot, SnapshotWarning, WarningKind
from tests.replay_support import (
    MEASUREMENTS,
    START,
    cadence_settings,
    record_cadence_run,
    replay_day,
    stored_rows,
)

UNKNOWN = "ticker: 1 tick(s) of instruments not subscribed on their connection ignored"


def _stream_notes(snap: Snapshot) -> list[str]:
    return [w.message for w in snap.warnings if w.kind == WarningKind.STREAM]


def _said(lines: list[str]) -> list[str]:
    """The status lines reduced to what the stream said and where: each summary line's
    exchange time, and every line about the feed or the ticker, in printed order."""
    out = []
    for line in lines:
        if "snapshots=" in line:
            out.append(line.split()[0])
        elif "feed: " in line or "ticker" in line:
            out.append(line.strip())
    return out


@pytest.mark.integration
def test_feed_tier_and_unknown_instrument_lines_replay_at_the_same_snapshots(
        tmp_path: Path) -> None:
    directory = recordings_dir(tmp_path / "live", simulated=True)
    snaps, live_lines, _ = record_cadence_run(directory, tmp_path / "live", snapshots=16,
                                              stray_at=3)
    live = [(s.timestamp, _stream_notes(s)) for s in snaps]
    notes = [n for _, said in live for n in said]
    # The leg taken off the live set mid-run polls over REST for a snapshot, then streams.
    assert any(n.startswith("feed: stream+rest (") for n in notes), notes
    assert any(n.startswith("feed: stream (all ") for n in notes), notes
    assert UNKNOWN in notes
    path = day_path(directory, START.date())
    records = list(read_day(path))
    assert records[0].kind == META and records[0].json()["format"] == FORMAT_VERSION == 6
    recorded = [r.json() for r in records if r.kind == NOTICE and is_cycle_notice(r.json())]
    assert [body["message"] for body in recorded][: len(notes)] == notes  # then any at the stop

    replayed: list[tuple[datetime, list[str]]] = []

    def keep_snapshots(collector: Any) -> None:
        collect = collector.engine.collect_once

        def kept() -> Snapshot:
            snap = collect()
            replayed.append((snap.timestamp, _stream_notes(snap)))
            return snap

        collector.engine.collect_once = kept

    replay = replay_day(path, tmp_path / "replay.db", cadence_settings(),
                        files=tmp_path / "files", prepare=keep_snapshots)
    assert replayed == live  # each line with the snapshot that said it live
    assert _said(replay.lines) == _said(live_lines)
    assert any(UNKNOWN in line for line in replay.lines)
    one = stored_rows(tmp_path / "live" / "live.db")
    for measurement in MEASUREMENTS:
        assert replay.rows[measurement] == one[measurement], measurement


SPOTS = ["NSE:NIFTY 50"]
LEGS = ["NFO:NIFTY25D0226000CE"]
ANSWER = {SPOTS[0]: {"instrument_token": 256265, "last_price": 26000.0},
          LEGS[0]: {"instrument_token": 9001, "last_price": 120.0}}


def _cycle(recorder: Recorder, at: datetime, said: list[SnapshotWarning]) -> None:
    """One recorded cycle as a streamed collector records it: the spot call, the leg call a
    second later, then the lines the cycle said (a moment after its calls)."""
    recorder.record_quotes(at, SPOTS, {SPOTS[0]: ANSWER[SPOTS[0]]})
    recorder.record_quotes(at + timedelta(seconds=1), LEGS, {LEGS[0]: ANSWER[LEGS[0]]})
    recorder.record_said(at + timedelta(seconds=1, milliseconds=40), said)


@pytest.mark.unit
def test_a_cycle_notice_is_said_with_the_cycle_that_made_its_calls(tmp_path: Path) -> None:
    """A line the live cycle said after its calls is said by the replayed cycle that makes
    the same calls, though the replayed clock stands at the last call; the event record of a
    line (recorded as it happened) is not said again by itself; lines of the recording's own
    health are not recorded; a `--from` start says nothing of the cycles before it."""
    stall = SnapshotWarning(WarningKind.STREAM, "", "ticker connection 1 stalled: no data or "
                            "heartbeat for 10 s; reconnecting")
    tier = SnapshotWarning(WarningKind.STREAM, "", "feed: stream+rest (1 quotes from the "
                           "ticker, 1 polled over REST)")
    own = SnapshotWarning(WarningKind.RECORDING, "", "recording: a cut tail repaired")
    unknown = SnapshotWarning(WarningKind.STREAM, "", UNKNOWN)
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    _cycle(recorder, START, [tier])
    recorder.record_notice(START + timedelta(seconds=3), stall)  # the event, as it happened
    _cycle(recorder, START + timedelta(seconds=5), [stall, own])
    _cycle(recorder, START + timedelta(seconds=10), [unknown])
    recorder.close()
    path = day_path(tmp_path, START.date())

    def cycles(source: ReplaySource, n: int) -> list[list[SnapshotWarning]]:
        said = []
        for _ in range(n):
            source.quote_batch(SPOTS)
            source.quote_batch(LEGS)
            said.append(source.take_notices())
            source.advance(5.0 - 1.0)  # the clock moved 1 s to the leg call
        return said

    source = ReplaySource(path)
    try:
        assert cycles(source, 3) == [[tier], [stall], [unknown]]
        assert source.take_notices() == []
    finally:
        source.close()
    source = ReplaySource(path, start=START + timedelta(seconds=5))
    try:
        assert cycles(source, 2) == [[stall], [unknown]]
    finally:
        source.close()
