"""A replay's jump into the afternoon of a full-chain day, against replaying the whole morning.

A simulated full chain (every strike of the two nearest expiries of all five indices, legs for
all) is recorded at the default 30 s interval over the opening (09:15-09:20) and the hour and
more before 14:00 (the stretch a jump reads). The figures:

- a dashboard jump to 14:00 and to 13:30 (ReplayFeed.jump: priming from the opening cycles and
  the warm-up before the minute, then the first cycle there), in real seconds and in full-chain
  cycles measured in the same run (goal: at most JUMP_GOAL_CYCLES: a few opening cycles, the
  warm-up, reading the minutes before; the machine's load moves seconds, not the ratio);
- against replaying the whole morning (09:15 to 14:00): its cycles times one cycle;
- a full-chain day streamed at the tick cadence (`snapshot_s` 1: every connection's frames and
  each second's streamed calls, recorded as StreamingSource records them, over 09:20-09:25 and
  12:58-14:01): the same jump to 14:00, reading from the last tick-book checkpoint before the
  warm-up (format 4), against the same file with the index's seek points removed (read as a
  format-3 day: the hour of ticks before it); and the ReplaySource alone opened at 14:00 and
  answering the first snapshot's calls (the book rebuilt), both ways. Measured on the shared
  2-core machine (2,867 instruments in full mode, five-minute frames): the source 1.5 s with
  the checkpoints against 81 s (37 s of CPU) reading the hour; the dashboard's jump and its
  first snapshot 8.3 s (of which 11 warm-up snapshots, as the budget allows) against 71 s.

Run: `python benchmarks/bench_replay_jump.py [--streamed-only]`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from bench_recording import (
    START as STREAM_START,
)
from bench_recording import (
    Clock,
    frame_seconds,
    full_chain_settings,
    snapshot_calls,
)

from optui.collectors.engine import CollectionEngine
from optui.collectors.recording import Recorder, RecordingSource, recordings_dir
from optui.collectors.sim_source import SimulatedSource
from optui.feed.replay import ReplayFeed
from optui.timeutil import IST

START = datetime(2026, 11, 25, 9, 15, tzinfo=IST)
JUMP_GOAL_CYCLES = 8.0


def record(root: Path) -> float:
    """Record the opening and 12:55-14:05 at full chain; the mean cycle time (real seconds)."""
    settings = full_chain_settings()
    clock = Clock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = Recorder(recordings_dir(root, simulated=True), sim.name, sim.label, flusher=False)
    engine = CollectionEngine(settings, RecordingSource(sim, recorder), None, state_dir=root / "state")
    took: list[float] = []

    def run(cycles: int) -> None:
        for _ in range(cycles):
            began = time.perf_counter()
            engine.collect_once()
            took.append(time.perf_counter() - began)
            clock.t += settings.source.interval_s

    run(11)
    clock.t = (datetime(2026, 11, 25, 12, 55, tzinfo=IST) - START).total_seconds()
    run(140)
    engine.close()
    return sum(took) / len(took)


STREAM_WINDOWS = ((0, 300), (int((datetime(2026, 11, 25, 12, 58, tzinfo=IST) - STREAM_START)
                                  .total_seconds()), 3780))
"""Seconds after bench_recording.START (09:20 IST) recorded: the opening, then 12:58-14:01."""


def record_streamed(root: Path) -> Path:
    """A full-chain day streamed at the tick cadence, as StreamingSource records it (see the
    module docstring); returns the day file."""
    from optui.collectors.recording import day_path
    from optui.tick_packets import MODE_FULL

    dump, calls, spots = snapshot_calls(root)
    token = {**{i.key: i.instrument_token for i in dump}, **spots}
    subscribed = list(dict.fromkeys(token[k] for keys in calls for k in keys))
    plans = [(keys, [token[k] for k in keys]) for keys in calls]
    directory = recordings_dir(root, simulated=True)
    recorder = Recorder(directory, "sim", "SIMULATED", flusher=False)
    recorder.meta["snapshot_s"] = 1.0
    recorder.record_instruments(STREAM_START, dump, [])
    seconds = [s for first, n in STREAM_WINDOWS for s in range(first, first + n)]
    for second, frames in zip(seconds, frame_seconds(MODE_FULL, subscribed, seconds),
                              strict=True):
        at = STREAM_START + timedelta(seconds=second)
        for frame in frames:
            if frame:
                recorder.record_ticks(at, frame)
        asked = at + timedelta(milliseconds=50)
        for keys, tokens in plans:
            recorder.record_stream_answer(asked, keys, keys, tokens, {})
        recorder.flush()
    recorder.close()
    return day_path(directory, STREAM_START.date())


def streamed_jumps(root: Path) -> None:
    """The jump to 14:00 on the streamed day, with and without the index's seek points."""
    from optui.collectors.record_index import read_index, write_index
    from optui.collectors.replay_source import ReplaySource

    began = time.perf_counter()
    path = record_streamed(root)
    print(f"streamed full-chain day recorded ({sum(n for _, n in STREAM_WINDOWS)} s of ticks "
          f"in {time.perf_counter() - began:.0f} s): {path.stat().st_size / 1e6:.0f} MB")
    frames = read_index(path)
    index = path.with_name(path.name.replace(".zst", ".idx"))
    marked = index.read_bytes()
    settings = full_chain_settings()
    settings.source.kind = "sim"
    settings.participants.enabled = False
    settings.general.data_dir = str(root)
    at = datetime(2026, 11, 25, 14, 0, tzinfo=IST)
    _, calls, _ = snapshot_calls(root / "calls")
    for label, points in (("with tick-book checkpoints", True),
                          ("without (read as format 3: the hour before)", False)):
        if points:
            index.write_bytes(marked)
        else:
            write_index(path, [(o, t) for o, t, _ in frames])
        t0, c0 = time.perf_counter(), time.process_time()
        source = ReplaySource(path, speed=None, start=at, polled_seek_back_s=300.0)
        for keys in calls:
            source.quote_batch(keys)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        source.close()
        print(f"  {label}: the replay source at 14:00 answering a snapshot's {len(calls)} "
              f"calls: {wall:.2f} s ({cpu:.2f} s of CPU)")
        feed = ReplayFeed(settings, STREAM_START.date(), speed=1.0)
        try:
            feed.start()
            feed.next_cycle()
            t0 = time.perf_counter()
            line = feed.jump("14:00")
            shown = feed.next_cycle()
            took = time.perf_counter() - t0
            ok = shown is not None and shown.snapshot is not None
            print(f"  {label}: jump to 14:00 and its first snapshot: {took:.2f} s"
                  f"{'' if ok else ' (NO SNAPSHOT)'}; {line}")
        finally:
            feed.close()
    index.write_bytes(marked)
    shutil.rmtree(root / "calls", ignore_errors=True)


def main() -> None:
    if "--streamed-only" in sys.argv:
        with tempfile.TemporaryDirectory(prefix="optui-bench-jump-") as tmp:
            streamed_jumps(Path(tmp))
        return
    with tempfile.TemporaryDirectory(prefix="optui-bench-jump-") as tmp:
        root = Path(tmp)
        cycle_s = record(root)
        settings = full_chain_settings()
        settings.source.kind = "sim"
        settings.participants.enabled = False
        settings.general.data_dir = str(root)
        feed = ReplayFeed(settings, START.date(), speed=1.0)
        try:
            feed.start()
            feed.next_cycle()
            for hhmm in ("14:00", "13:30"):
                began = time.perf_counter()
                line = feed.jump(hhmm)
                shown = feed.next_cycle()
                took = time.perf_counter() - began
                assert shown is not None and shown.snapshot is not None
                ratio = took / cycle_s
                ok = "ok" if ratio <= JUMP_GOAL_CYCLES else "OVER GOAL"
                print(f"jump to {hhmm} and its first cycle: {took:.2f} s = {ratio:.1f} full-chain "
                      f"cycles (goal <= {JUMP_GOAL_CYCLES:g}) {ok}; {line}")
        finally:
            feed.close()
        morning = (datetime(2026, 11, 25, 14, 0, tzinfo=IST) - START).total_seconds()
        cycles = int(morning / settings.source.interval_s)
        print(f"one full-chain cycle {cycle_s:.2f} s: replaying the morning's {cycles} cycles "
              f"instead would take about {cycles * cycle_s:.0f} s")
    with tempfile.TemporaryDirectory(prefix="optui-bench-jump-") as tmp:
        streamed_jumps(Path(tmp))


if __name__ == "__main__":
    main()
