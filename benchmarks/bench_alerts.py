"""Alert evaluation per collection cycle over full chains from the seeded simulator, and the cost
of handing an alert to the webhook queue (a server that never answers, so nothing is delivered).

Goal: every rule over the first two expiries' whole chains of all five indices in <= 50 ms a
cycle, and queueing an alert in microseconds whatever the webhook does, so alerts never slow
collection. Run: `python benchmarks/bench_alerts.py`.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from optui.alerts import AlertEngine, Thresholds
from optui.alerts.model import Alert
from optui.alerts.webhooks import WebhookDispatcher, WebhookTarget
from optui.collectors.engine import build_engine
from optui.config import Settings

GOAL_MS = 50.0
CYCLES = 12


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        s = Settings()
        s.general.data_dir = tmp
        s.source.full_chain_expiries = 2
        s.simulator.start, s.simulator.speed = "2026-11-25 11:00", 60.0
        s.export.write_json = s.export.write_csv = False
        engine = build_engine(s, store_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        if engine.alerts is not None:
            engine.alerts.close()
        engine.alerts = None  # time the rules alone, on the snapshots the collector made
        snaps = [engine.collect_once() for _ in range(CYCLES)]
        engine.close()
    legs = snaps[-1].leg_count
    median, worst, raised = _evaluate(snaps, Thresholds(window_min=1.0))
    storm_median, _, storm_raised = _evaluate(snaps, Thresholds(oi_change_pct=1.0, single_flow_cr=0.001, window_min=1.0))

    logging.getLogger("optui.alerts").setLevel(logging.CRITICAL)
    hooks = WebhookDispatcher([WebhookTarget("http://127.0.0.1:9/hook", "json")], retries=0,
                              timeout_s=0.5, max_queue=100_000)
    one = Alert(datetime.now(UTC), "premium_flow", "warning", "NIFTY bought", "benchmark")
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        hooks.submit(one)
    submit_us = (time.perf_counter() - t0) / n * 1e6
    hooks.close(timeout=1.0)

    print(f"legs per cycle             {legs:,}")
    print(f"alert rules per cycle      {median:8.2f} ms median, {worst:.2f} ms worst "
          f"(goal <= {GOAL_MS:g} ms; default thresholds, {raised} alerts over {CYCLES} cycles)")
    print(f"  an alert storm           {storm_median:8.2f} ms median "
          f"(OI change at 1 %, any premium flow, no cooldown: {storm_raised} alerts over {CYCLES} cycles)")
    print(f"webhook submit             {submit_us:8.2f} µs per alert (server unreachable)")
    if median > GOAL_MS:
        print(f"ABOVE GOAL: {median:.1f} ms > {GOAL_MS:g} ms")
    return {"legs": float(legs), "median_ms": median, "worst_ms": worst, "storm_median_ms": storm_median,
            "submit_us": submit_us}


def _evaluate(snaps: list, thresholds: Thresholds) -> tuple[float, float, int]:
    """(median ms after the first cycle, worst ms, alerts raised) of the rules over the snapshots."""
    alerts = AlertEngine(thresholds, cooldown_s=0.0)
    times, raised = [], 0
    for snap in snaps:
        t0 = time.perf_counter()
        raised += len(alerts.on_snapshot(snap))
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times[1:]), max(times), raised


if __name__ == "__main__":
    main()
