"""The garbage-collection policy (optui.heap): a worker's data freed by reference counting, the
collector's long-lived state frozen after its first cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest
from textual.app import App

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.simulated_time import SimTime, stop_when
from optui.config import Settings
from optui.heap import FREEZE_AFTER_CYCLES, DayFreezer, run_once
from optui.timeutil import IST


class Payload:
    """Stands in for a cycle's snapshot (weak-referenceable)."""


@contextmanager
def no_collection() -> Iterator[None]:
    """Automatic collections off: whatever is freed meanwhile was freed by reference counting."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def test_run_once_lets_go_of_the_work_when_called() -> None:
    payload = Payload()
    gone = weakref.ref(payload)

    def work(held: Payload = payload) -> int:
        return 7

    wrapped = run_once(work)
    del payload, work
    with no_collection():
        assert gone() is not None  # held by the wrapper until it runs
        assert wrapped() == 7
        assert gone() is None
    with pytest.raises(RuntimeError, match="already run"):
        wrapped()


async def _run_worker(wrap: Callable[[Callable[[], None]], Callable[[], None]]) -> weakref.ref:
    """A thread worker (as the dashboard's chain prefetch runs) over a closure holding a
    payload; returns a weak reference to the payload once the worker finished."""
    app: App = App()
    async with app.run_test():
        payload = Payload()
        gone = weakref.ref(payload)

        def work(held: Payload = payload) -> None:
            assert isinstance(held, Payload)

        worker = app.run_worker(wrap(work), thread=True)
        del payload, work
        await worker.wait()
        await app.workers.wait_for_complete()
        del worker
        return gone


async def test_a_finished_thread_worker_keeps_its_work_alive_only_without_run_once() -> None:
    """Textual keeps a finished worker in a reference cycle (Worker -> Task -> context ->
    active_worker): a payload its callable closes over waits for a collection, unless the
    callable is run_once's."""
    with no_collection():
        kept = await _run_worker(lambda work: work)
        assert kept() is not None  # why run_once exists
        freed = await _run_worker(run_once)
        assert freed() is None
    gc.collect()
    assert kept() is None


def test_the_collector_freezes_its_heap_once_a_day_and_hands_it_back_at_the_end(
        tmp_path: Path) -> None:
    """`optui collect` moves what it built in its first cycles to the permanent generation
    (later full collections do not walk it), freezes no more that day, and hands the frozen
    objects back when it stops."""
    start = datetime(2026, 11, 25, 10, 0, tzinfo=IST)
    clock = SimTime()
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.source.interval_s = 30.0
    settings.export.write_json = False
    settings.participants.enabled = False
    settings.record.enabled = False
    source = SimulatedSource(seed=3, start=start, clock=clock)
    engine = CollectionEngine(settings, source, None, out_dir=tmp_path / "files",
                              state_dir=tmp_path / "state")
    collector = Collector(engine, 30.0, printer=lambda line, style="": None, sleep=clock.sleep)
    frozen: list[int] = []  # before each attempt's freeze

    def done(_outcome: object) -> bool:
        frozen.append(gc.get_freeze_count())
        return len(frozen) == 4

    gc.unfreeze()
    stop_when(collector, done)
    try:
        assert collector.run() == 0
    finally:
        engine.close()
    assert FREEZE_AFTER_CYCLES == 2
    assert frozen[:2] == [0, 0]  # nothing frozen before the second snapshot was in
    assert frozen[2] > 0  # frozen after it
    assert frozen[3] <= frozen[2]  # no more: frozen objects only die off
    assert gc.get_freeze_count() == 0  # handed back at the stop


class Linked:
    """Half of a reference cycle."""

    other: Linked | None = None


def test_a_new_exchange_day_frees_the_cycles_that_died_among_frozen_objects() -> None:
    """Yesterday's frozen objects that died in a reference cycle are collected at the new day's
    freeze: a collector running for days keeps its memory bounded."""
    freezer = DayFreezer()
    day1 = datetime(2026, 11, 25, 9, 15, tzinfo=IST)
    day2 = datetime(2026, 11, 26, 9, 15, tzinfo=IST)
    gc.unfreeze()
    try:
        assert not freezer.snapshot(day1)
        a, b = Linked(), Linked()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        assert freezer.snapshot(day1.replace(second=1))  # the second snapshot of the day
        assert not freezer.snapshot(day1.replace(second=2))
        del a, b
        gc.collect()
        assert gone() is not None  # frozen: a collection does not look at it
        assert not freezer.snapshot(day2)
        assert freezer.snapshot(day2.replace(second=1))
        assert gone() is None
    finally:
        freezer.thaw()
    assert gc.get_freeze_count() == 0
