"""Garbage-collection policy of the running product (the dashboard and `optui collect`).

Why: CPython's cyclic garbage collector holds the GIL while it runs, so a collection in any
thread (the collector's, the ticker's asyncio loop, the UI's) stalls them all: a key press or a
tick waits for it. A young collection walks only recent objects (well under a millisecond); a
full one walks every tracked object not frozen, so its pause grows with what lives in the
oldest generation. At a full chain a snapshot once was ~16,000 tracked objects (a record per
leg and what hung off it); its legs are now columns (optui.leg_rows: ~110 tracked objects a
snapshot, a LegRecord only for the rows read). A snapshot lives a second or two: long enough
to reach the oldest generation, so the policy is

1. Objects are freed by reference counting, never left to the collector: nothing that lives
   per cycle may sit in a reference cycle. A Textual worker is one (Worker -> its asyncio Task
   -> the Task's context -> the `active_worker` variable -> Worker), so a worker's callable
   must not keep the cycle's data alive after it ran (`run_once`); without that each cycle's
   snapshot waited, whole, for the next full collection (~16,000 objects per second to walk).
2. What lives for the whole run (modules, the app's widgets and styles, the instrument dump,
   the plan, the day state) is moved to the permanent generation once it is built
   (`freeze_heap`; a headless collector each exchange day, `DayFreezer`): later full
   collections walk only what arrived since.
3. The collector's thresholds stay CPython's defaults. A young generation's count is net
   allocations (an object freed by reference counting takes itself off); larger thresholds
   would spare the objects that die within milliseconds, but a snapshot lives a second, so
   its objects are walked in the young generations whatever the thresholds, and larger ones
   only make fewer, longer pauses that a key press may meet. What is left per full
   collection (the shown snapshot and per-leg state: ~6,000 objects headless, 12,000-14,000
   with the dashboard's) is walked every few seconds in 8-37 ms of wall time at load 1.5-3.5
   on a shared 2-core machine (90-200 ms before); memory stays bounded
   (benchmarks/bench_gc_soak.py, bench_soak.py).

`gc.freeze` leaves frozen objects to reference counting only: a reference cycle among them is
never collected until `thaw_heap`. Freezing is therefore done only after a full collection
(nothing in a cycle survives it unless reachable), and only of objects meant to live as long
as the process, the screen or the exchange day.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from optui.timeutil import IST

T = TypeVar("T")


def run_once(work: Callable[[], T]) -> Callable[[], T]:
    """`work` wrapped to be called once: the wrapper lets go of `work` (and all its closure
    holds) when the call starts, so a Textual worker left in its reference cycle keeps nothing
    of the cycle's data alive. Raises RuntimeError on a second call."""
    box = [work]

    def run() -> T:
        if not box:
            raise RuntimeError("run_once: already run")
        return box.pop()()

    return run


FREEZE_AFTER_CYCLES = 2
"""The snapshot of each exchange day after which a collector freezes its heap (`DayFreezer`):
by then the modules are imported, the instrument dump, the plan and the stream's state are
built, and the first cycle's store state (tags, day state, the alert rules' per-leg history)."""


class DayFreezer:
    """A headless collector's freezes: after the FREEZE_AFTER_CYCLES-th snapshot of each
    exchange day (IST). From the second day on, the previous freeze is undone first, so
    yesterday's frozen objects that died in reference cycles are collected: memory stays
    bounded over days. `thaw` at the end of the run hands everything back."""

    def __init__(self) -> None:
        self.day: date | None = None
        self.cycles = 0  # snapshots of `day` so far
        self.frozen = False

    def snapshot(self, at: datetime) -> bool:
        """Count a snapshot of exchange time `at`; True when it froze the heap."""
        day = at.astimezone(IST).date()
        if day != self.day:
            self.day, self.cycles = day, 0
        self.cycles += 1
        if self.cycles != FREEZE_AFTER_CYCLES:
            return False
        if self.frozen:
            gc.unfreeze()
        freeze_heap()
        self.frozen = True
        return True

    def thaw(self) -> None:
        """Hand frozen objects back to the collector (the run ended)."""
        if self.frozen:
            self.frozen = False
            thaw_heap()


def freeze_heap() -> None:
    """Collect garbage once, then leave every object alive now out of later collections.

    A full collection walks every tracked object, the app's own (modules, widgets, styles) with
    the market data: ~0.1 s at a full chain, every few seconds as snapshots come and go, and a
    key press waits for it. The objects alive at the start live as long as the process (or the
    screen), so they are moved to the permanent generation (gc.freeze): later collections walk
    only what arrived since. Frozen objects are still freed when no longer referenced;
    `thaw_heap` hands them back to the collector.
    """
    gc.collect()
    gc.freeze()


def thaw_heap() -> None:
    """Return frozen objects to the collector (a screen that froze them is leaving: its widgets
    may form cycles that only a collection frees)."""
    gc.unfreeze()


__all__ = ["FREEZE_AFTER_CYCLES", "DayFreezer", "freeze_heap", "run_once", "thaw_heap"]
