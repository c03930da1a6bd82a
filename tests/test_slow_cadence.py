"""Slow-cycle flags judged against the cadence each cycle must keep: the tick cadence's
snapshots against `snapshot_s`, the snapshots that store the legs (and polled cycles) against
`interval_s`; once per slow spell in health, and on the headless summary line."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.health import (
    INTERVAL,
    SNAPSHOT_CADENCE,
    EventKind,
    HealthLog,
    SlowCycles,
    cycle_cadence,
    slow_cycle_event,
)
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.simulated_time import SimTime
from optui.collectors.supervisor import CycleSupervisor
from optui.config import Settings
from optui.models import Snapshot
from optui.timeutil import IST

START = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


@pytest.mark.unit
def test_cadence_of_each_kind_of_cycle() -> None:
    assert cycle_cadence(30.0, None, True) == (30.0, INTERVAL)  # polled
    assert cycle_cadence(30.0, 1.0, True) == (30.0, INTERVAL)  # a snapshot that stores legs
    assert cycle_cadence(30.0, 1.0, False) == (1.0, SNAPSHOT_CADENCE)
    event = slow_cycle_event(0.9, 1.0, 0.8, 0.8, START, "sim", SNAPSHOT_CADENCE)
    assert event is not None and "over 80% of the 1s snapshot cadence" in event.message
    assert "source.snapshot_s" in event.action
    assert slow_cycle_event(0.9, 30.0, 24.0, 0.8, START, "sim", INTERVAL) is None


@pytest.mark.unit
def test_a_slow_leg_snapshot_is_one_spell_across_the_quick_ones_between() -> None:
    health = HealthLog()
    slow = SlowCycles(health)
    leg = slow_cycle_event(30.0, 30.0, 24.0, 0.8, START, "sim", INTERVAL)
    assert slow.judge(leg, INTERVAL, START)
    for _ in range(3):  # quick snapshots at the tick cadence: not the slow kind, still open
        assert not slow.judge(None, SNAPSHOT_CADENCE, START)
    assert slow.judge(leg, INTERVAL, START)  # the next interval's: the same spell
    assert sum(e.kind is EventKind.SLOW_CYCLE for e in health.events) == 1
    assert not slow.judge(None, INTERVAL, START)  # a leg snapshot that fits ends it
    assert not health.is_open(EventKind.SLOW_CYCLE)


@pytest.mark.integration
def test_tick_cadence_snapshots_are_judged_against_snapshot_s(tmp_path: Path) -> None:
    """A simulated source at a 1 s snapshot cadence, legs every 4 s: each snapshot takes 0.9 s
    (real seconds at speed 1). The leg-storing ones fit in 80 % of the 4 s interval; the others
    overrun 80 % of the 1 s cadence and are flagged, once for the spell."""
    clock = SimTime(100.0)
    source = SimulatedSource(seed=7, start=START, clock=clock)
    source.snapshot_s = 1.0  # type: ignore[attr-defined]  # as a streaming source's cadence
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.source.interval_s = 4.0
    settings.participants.enabled = False
    settings.record.enabled = False
    engine = CollectionEngine(settings, source, None, state_dir=tmp_path / "state")
    supervisor = CycleSupervisor(engine, 4.0, slow_share=0.8)
    collect = engine.collect_once

    def timed() -> Snapshot:
        snap = collect()
        snap.duration_s = 0.9
        return snap

    supervisor.collect = timed
    kinds: list[tuple[bool, bool]] = []
    try:
        for _ in range(6):
            outcome = supervisor.attempt()
            kinds.append((engine.last.legs_stored, outcome.slow))
            clock.sleep(1.0)
    finally:
        engine.close()
    # 10:00:00 and 10:00:04 store the legs (fit in 3.2 s); the rest overrun 0.8 s.
    assert kinds == [(True, False), (False, True), (False, True), (False, True), (True, False),
                     (False, True)], kinds
    raised = [e for e in supervisor.health.events if e.kind is EventKind.SLOW_CYCLE]
    assert "of the 1s snapshot cadence" in raised[0].message
    # A leg snapshot is not the slow kind: it leaves the spell open (one event, not one per slot).
    assert len([e for e in raised if e.status.name == "OPEN"]) == 1
