"""Collection at the tick cadence over Kite's ticker, against a cycle polled over REST.

Why: Kite serves one quote call a second of at most 500 instruments, so a cycle of the whole
chains of all five indices polls for several seconds and its last quotes are that old. Streamed
at the tick cadence (`source.snapshot_s = 1`), a snapshot is taken when the index ticks of each
new exchange second arrive, spots and legs come from the ticks and no REST call is made per
snapshot, so the one quote call a second stays free for the fallback tier.

`optui simulate` runs in its own process on a loopback port (REST and ticker on one port); the
engine reads it through the official kiteconnect client (rate limited as against Kite) and the
WebSocket ticker, driven as `optui collect` drives it (LocalFeed.wait_snapshot between cycles).
Printed: one polled reference cycle, then for the streamed run the snapshots per second
achieved, the cycle time p50/p95/max, the REST quote calls per minute after the first cycles
(should be ~0 while the stream is up), instruments streamed and legs per snapshot.
Run: python benchmarks/bench_stream_cycle.py [seconds] [indices]   (defaults: 60, all five)

Measured on the shared 2-core machine (load about 2): all five indices, every listed strike
(2,862 instruments streamed): 1.00 snapshots/s held (34 of 34 exchange seconds), cycle p50
44 ms, p95 53 ms, 0 REST quote calls/min; the polled reference cycle: 8 quote calls, 7.6 s.
(Before the columnar cycle: p50 387 ms, p95 714 ms, still 1.00/s.)
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np

from optui.collectors.engine import CollectionEngine
from optui.collectors.kite_source import KiteSource
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.feed.local import LocalFeed
from optui.indices import INDEX_KEYS

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_exchange import free_port, start_simulator  # noqa: E402

START = "2026-11-25 11:00"
WARMUP_CYCLES = 5  # the first cycles subscribe the plan and poll what has not ticked yet


def _settings(indices: list[str]) -> Settings:
    settings = Settings()
    settings.participants.enabled = False
    settings.record.enabled = False
    settings.source.indices = indices
    settings.source.interval_s = 30.0
    settings.source.snapshot_s = 1.0
    return settings


def _polled(root: str, indices: list[str]) -> None:
    rest = KiteSource("sim_key", "sim_token", root=root)
    engine = CollectionEngine(_settings(indices), rest, None)
    try:
        began = time.perf_counter()
        snap = engine.collect_once()
        took = time.perf_counter() - began
        stats = engine.last
        print(f"rest   one cycle: quote_calls={stats.quote_calls} instruments={stats.instruments} "
              f"legs={snap.leg_count} duration={took:.2f}s", flush=True)
    finally:
        engine.close()


def _streamed(root: str, indices: list[str], seconds: float) -> None:
    rest = KiteSource("sim_key", "sim_token", root=root)
    source = StreamingSource(rest, "sim_key", "sim_token", root.replace("http", "ws", 1),
                             snapshot_s=1.0)
    engine = CollectionEngine(_settings(indices), source, None)
    feed = LocalFeed(engine, interval_s=30.0)
    durations: list[float] = []
    stamps = []
    try:
        cycles = 0
        calls0 = t0 = None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            cycle = feed.next_cycle(publish=False)  # waits for the snapshot's ticks
            snap = cycle.snapshot
            assert snap is not None
            took = snap.duration_s
            cycles += 1
            if cycles == WARMUP_CYCLES:
                calls0, t0 = source.rest_calls, time.monotonic()
            elif cycles > WARMUP_CYCLES:
                durations.append(took)
                stamps.append(snap.timestamp.timestamp())
        stats = engine.last
        span = time.monotonic() - t0 if t0 is not None else 0.0
        d = np.array(durations) if durations else np.zeros(1)
        per_min = (source.rest_calls - (calls0 or 0)) / span * 60 if span else float("nan")
        distinct = len(set(stamps))
        exchange_span = (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        print(f"stream snapshot_s=1: {len(durations)} snapshots in {span:.1f} s real "
              f"({len(durations) / span if span else 0:.2f}/s; {distinct} distinct exchange "
              f"seconds over {exchange_span:.0f}) cycle p50={np.percentile(d, 50) * 1e3:.0f} ms "
              f"p95={np.percentile(d, 95) * 1e3:.0f} ms max={d.max() * 1e3:.0f} ms "
              f"rest_calls/min={per_min:.1f} streamed={stats.streamed} "
              f"left_to_rest={source.left_to_rest} legs={snap.leg_count} feed={stats.feed}",
              flush=True)
    finally:
        feed.close()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    indices = sys.argv[2].split(",") if len(sys.argv) > 2 else list(INDEX_KEYS)
    logging.basicConfig(level=logging.ERROR)
    port = free_port()
    server = start_simulator(port, START)
    try:
        root = f"http://127.0.0.1:{port}"
        _polled(root, indices)
        _streamed(root, indices, seconds)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
