"""A replay's jump into the afternoon of a full-chain day, against replaying the whole morning.

A simulated full chain (every strike of the two nearest expiries of all five indices, legs for
all) is recorded at the default 30 s interval over the opening (09:15-09:20) and the hour and
more before 14:00 (the stretch a jump reads). The figures:

- a dashboard jump to 14:00 and to 13:30 (ReplayFeed.jump: priming from the opening cycles and
  the warm-up before the minute, then the first cycle there), in real seconds and in full-chain
  cycles measured in the same run (goal: at most JUMP_GOAL_CYCLES: a few opening cycles, the
  warm-up, reading the minutes before; the machine's load moves seconds, not the ratio);
- against replaying the whole morning (09:15 to 14:00): its cycles times one cycle.

Run: `python benchmarks/bench_replay_jump.py`.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

from bench_recording import Clock, full_chain_settings

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


def main() -> None:
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


if __name__ == "__main__":
    main()
