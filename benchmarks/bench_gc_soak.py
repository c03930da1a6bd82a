"""Garbage-collection pauses and memory of `optui collect` streaming a full chain for minutes,
the simulated exchange's clock accelerated.

Why: the collection policy (optui.heap: long-lived state frozen after the first cycles, the
collector's thresholds left at CPython's defaults) must keep pauses short without letting
memory grow over a trading day. `optui simulate --speed SPEED` runs in its own process (REST
and the ticker on one port); this process runs `optui collect`'s loop (Collector over a
LocalFeed: KiteSource + StreamingSource, every strike of the two nearest expiries of all five
indices, SQLite store, recorder on) for MINUTES real minutes, and reports
- RSS (VmRSS) sampled every 10 s without forcing a collection: after the first minute, at the
  end, the peak, and the growth between (goal < 5 %, bench_soak's);
- every collection (gc.callbacks): count and pause per generation (p50, p99, max);
- the cycles collected and the exchange time covered.
`--no-freeze` runs the same without freezing (the policy's baseline, in the same conditions).

Run: `python benchmarks/bench_gc_soak.py [MINUTES] [SPEED] [--no-freeze]` (default 10, 5).

Measured, 10 min at 5x (49 exchange minutes, 597-599 cycles each), load 1.6-2.9 on the shared
2-core machine, frozen (DayFreezer) / not frozen, one after the other: RSS every minute
186 190 198 198 208 208 209 209 210 215 MiB / 185 190 196 196 206 206 207 207 209 214 MiB
(the same steps either way: the growth is not the collection policy's; from minute 3 to 10
+8.7 % / +9.6 %); full collections after minute 3: 32 / 32, pause p50 17 / 100 ms, p99 55 /
139 ms, max 70 / 161 ms; young ones alike (gen1 p50 5.5-6.5 ms wall at that load). An earlier
build (before the cycle's per-leg steps went to columns), load 2-6: 225 -> 233 / 222 -> 229
MiB from minute 3, full collections p50 21 / 163 ms. A whole day through bench_soak.py (30 s
cycles): RSS +6.1 % from 09:45 to the close with or without the freeze (the tracked objects
that grow are the SQLite store's frame layouts, not the collector's).
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_soak import rss_kib  # noqa: E402
from gc_trace import GcTrace  # noqa: E402
from sim_exchange import HeadlessCollect  # noqa: E402

GOAL_PCT = 5.0
WARM_S = 180.0  # the stream at 5x takes minutes to tick every leg; RSS grows meanwhile
SAMPLE_S = 10.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def main(minutes: float, speed: float, freeze: bool) -> dict[str, float]:
    from optui.collectors import headless

    if not freeze:
        headless.DayFreezer.snapshot = lambda self, at: False  # type: ignore[method-assign]
    samples: list[tuple[float, int]] = []
    with HeadlessCollect("2026-11-17 09:20", speed) as run:
        collector, engine = run.collector, run.engine
        with GcTrace() as trace:
            began = time.perf_counter()
            run.start()
            first = None
            while time.perf_counter() - began < minutes * 60.0:
                time.sleep(SAMPLE_S)
                samples.append((time.perf_counter() - began, rss_kib()))
                if first is None and collector.engine.last is not None:
                    first = engine.source.now()
            run.stop(60)
            elapsed = time.perf_counter() - began
        last = engine.source.now()
    warm = next(kib for at, kib in samples if at >= WARM_S)
    final, peak = samples[-1][1], max(kib for _, kib in samples)
    growth = (final - warm) / warm * 100.0
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    covered = (last - first).total_seconds() / 60.0 if first is not None else 0.0
    print(f"optui collect, full chain streamed, simulator at {speed:g}x, {elapsed / 60:.1f} min "
          f"({covered:.0f} exchange minutes), {collector.cycles} cycles; heap frozen after the "
          f"first cycles: {'yes' if freeze else 'NO'}; load average {load}")
    print(f"RSS after {WARM_S:.0f} s {warm / 1024:7.1f} MiB, at the end {final / 1024:7.1f} MiB, "
          f"peak {peak / 1024:7.1f} MiB: growth {growth:+.2f} % (goal < {GOAL_PCT:g} %: "
          f"{'met' if growth < GOAL_PCT else 'MISSED'})")
    print("  RSS MiB every minute: " + " ".join(
        f"{kib / 1024:.0f}" for at, kib in samples if int(at) % 60 < SAMPLE_S))
    out = {"growth_pct": growth, "rss_warm_kib": warm, "rss_final_kib": final,
           "cycles": collector.cycles}
    warm_at = began + WARM_S
    print(f"  collections after the first {WARM_S:.0f} s (the start's freezes before):")
    for gen in range(3):
        ms = [c.ms for c in trace.done if c.generation == gen and c.start >= warm_at]
        print(f"  gen{gen}: {len(ms):6d} collections ({len(ms) / (elapsed - WARM_S):5.2f}/s), pause p50 "
              f"{_p(ms, 0.5):6.2f} ms, p99 {_p(ms, 0.99):6.2f} ms, max {max(ms, default=0):6.1f} ms, "
              f"collected {sum(c.collected for c in trace.done if c.generation == gen and c.start >= warm_at)}")
        out[f"gen{gen}_max_ms"] = max(ms, default=0.0)
        out[f"gen{gen}_n"] = len(ms)
    print(f"  objects frozen at the end: {gc.get_freeze_count()}")
    return out


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(float(args[0]) if args else 10.0, float(args[1]) if len(args) > 1 else 5.0,
         "--no-freeze" not in sys.argv)
