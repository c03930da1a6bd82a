"""Garbage-collection trace: every collection's generation, duration, thread, objects collected
and uncollectable, and the generation counts when it started (gc.callbacks).

Why: in CPython a collection holds the GIL, so a pause in any thread (the collector, the
ticker's asyncio loop, the UI) stalls them all. `GcTrace` records them while installed;
`summary()` groups them by generation and thread. With `sizes=True` it also counts the tracked
objects of each generation at the start of every full collection (costly: diagnosis only).
"""

from __future__ import annotations

import gc
import statistics
import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Collection:
    """One collection: perf_counter start and end, generation, thread name, objects collected
    and uncollectable, gc.get_count() at its start, and (full collections, with sizes) the
    tracked objects per generation at its start."""

    start: float
    end: float
    generation: int
    thread: str
    collected: int
    uncollectable: int
    counts: tuple[int, int, int]
    sizes: tuple[int, int, int] | None = None
    cpu_ms: float = 0.0  # the collecting thread's CPU time (wall time less waiting for a core)

    @property
    def ms(self) -> float:
        return (self.end - self.start) * 1000.0


class GcTrace:
    """Records collections while installed (`with GcTrace() as trace:`)."""

    def __init__(self, sizes: bool = False) -> None:
        self.sizes = sizes
        self.done: list[Collection] = []
        self._open: dict[int, tuple[float, tuple[int, int, int], tuple[int, int, int] | None,
                                    float]] = {}

    def __enter__(self) -> GcTrace:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            counts = gc.get_count()
            sizes = None
            if self.sizes and info["generation"] == 2:
                sizes = tuple(len(gc.get_objects(g)) for g in range(3))  # type: ignore[assignment]
            self._open[ident] = (time.perf_counter(), counts, sizes, time.thread_time())
            return
        began = self._open.pop(ident, None)
        if began is None:
            return
        self.done.append(Collection(began[0], time.perf_counter(), info["generation"],
                                    threading.current_thread().name, info["collected"],
                                    info["uncollectable"], began[1], began[2],
                                    (time.thread_time() - began[3]) * 1000.0))

    def summary(self, seconds: float | None = None) -> list[str]:
        """Lines: per generation and thread, how many, total/median/max ms, objects collected."""
        lines = []
        keys = sorted({(c.generation, c.thread) for c in self.done})
        for gen, thread in keys:
            got = [c for c in self.done if c.generation == gen and c.thread == thread]
            ms = [c.ms for c in got]
            rate = f" ({len(got) / seconds:.1f}/s)" if seconds else ""
            lines.append(f"gen{gen} {thread[:24]:<24} {len(got):5d}{rate} total {sum(ms):7.1f} ms "
                         f"median {statistics.median(ms):5.2f} max {max(ms):6.1f} ms; collected "
                         f"{sum(c.collected for c in got)} uncollectable "
                         f"{sum(c.uncollectable for c in got)}")
        full = [c for c in self.done if c.generation == 2]
        for c in full[:20]:
            lines.append(f"  full at +{c.start - self.done[0].start:6.2f}s {c.ms:6.1f} ms "
                         f"{c.thread[:20]} collected {c.collected} counts {c.counts} sizes {c.sizes}")
        return lines
