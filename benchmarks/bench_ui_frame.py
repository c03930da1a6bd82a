"""The UI thread's own cost of a cycle and of the `i` key at a full chain, against Textual's own
drawing in the same run.

Why: bench_e2e times the whole path from the socket with the collector sharing the cores; this
isolates what the event loop itself spends, deterministically (no stream, no worker threads):
the dashboard at 160x48 shows hand-built full chains (every strike of every bucket within 60
strikes of the ATM, prices and OI moved every cycle), formatted as the feed loop formats them.

Figures (p50 / p95 of the UI thread's CPU time, ms):
- a cycle: from show_snapshot until its frame is written (rendered as a truecolor terminal
  receives it), written by the handler as the screen's cycle handler does (frame_now);
- `i`: from the key's action until its frame is written, the next index's chain formatted
  ahead as the screen's prefetch does;
- bytes per cycle's frame.
Each is measured with the product's drawing (SpanCompositor, keyed tables finishing their own
lines) and with Textual's (its Compositor, every line finished through Textual), in alternating
rounds so both see the same machine load.
Run: `python benchmarks/bench_ui_frame.py [cycles per round]` (about 40 s).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual._compositor import Compositor

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the hand-built snapshots are a test fixture

from bench_tui import SIZE, FrameMeter, Host  # noqa: E402
from sample_data import SAMPLE_TIME, sample_snapshot  # noqa: E402

from optui.config import Settings  # noqa: E402
from optui.feed.model import FeedCycle  # noqa: E402
from optui.screens.dashboard import DashboardScreen  # noqa: E402
from optui.screens.dashboard_reads import cycle_views, neighbour_selections  # noqa: E402
from optui.widgets.chain_table import ChainTable, all_chain_rows  # noqa: E402
from optui.widgets.frame_now import draw_now  # noqa: E402
from optui.widgets.keyed_table import KeyedTable  # noqa: E402
from optui.widgets.positions_table import top_oi_changes  # noqa: E402

CYCLES = 40
ROUNDS = 2
STRIKES = 60
WARMUP = 3


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))]


async def run(snapshots: list[Any], textual_drawing: bool) -> dict[str, list[float]]:
    settings = Settings()
    settings.ui.chain_strikes = 100  # the whole chain in the panel: the worst case to draw
    screen = DashboardScreen(settings, collect=False)
    if textual_drawing:
        screen._compositor = Compositor()
    app = Host(screen)
    saved = KeyedTable._learn_frame
    if textual_drawing:
        KeyedTable._learn_frame = lambda self, y: None  # type: ignore[method-assign]
    try:
        async with app.run_test(size=SIZE) as pilot:
            meter = FrameMeter(app)
            state: dict[str, Any] = {"future": None, "cpu": 0.0}
            display = app._display

            def timed(screen_: Any, renderable: Any) -> None:
                display(screen_, renderable)
                future = state["future"]
                if renderable is not None and not app._batch_count and future is not None \
                        and not future.done():
                    state["cpu"] = time.thread_time()
                    future.set_result(None)

            app._display = timed

            async def frame_cpu(action: Any) -> float:
                state["future"] = asyncio.get_running_loop().create_future()
                began = time.thread_time()
                action()
                await asyncio.wait_for(state["future"], 5.0)
                return (state["cpu"] - began) * 1000.0

            gc.collect()
            gc.freeze()  # as the dashboard does once started (see freeze_heap)
            screen.query_one(ChainTable).focus()
            await pilot.pause(0.2)
            out: dict[str, list[float]] = {"cycle": [], "i": [], "bytes": []}
            for n, snap in enumerate(snapshots):
                views = cycle_views(settings, FeedCycle(snap, interval_s=1.0),
                                    (screen.index, screen.bucket))
                await pilot.pause(0.05)
                sent = meter.bytes
                cpu = await frame_cpu(lambda s=snap, v=views: (screen.show_snapshot(
                    s, v["chain_rows"], v["positions"]), draw_now(screen)))
                if n >= WARMUP:
                    out["cycle"].append(cpu)
                    out["bytes"].append(meter.bytes - sent)
                # the chains a key away, formatted ahead as the screen's prefetch does
                rows = all_chain_rows(snap)
                for selection in neighbour_selections(snap, screen._index_keys(), screen.index,
                                                      screen.bucket):
                    screen._chain_rows.setdefault(selection, rows[selection])
                for key, idx in snap.indices.items():
                    screen._positions.setdefault(key, top_oi_changes(idx.legs,
                                                                     settings.positions.top_n))
                del rows
                await pilot.pause(0.05)
                cpu = await frame_cpu(lambda: screen.action_cycle_index(1))
                if n >= WARMUP:
                    out["i"].append(cpu)
            gc.unfreeze()
    finally:
        KeyedTable._learn_frame = saved  # type: ignore[method-assign]
    return out


def main() -> dict[str, Any]:
    import logging

    logging.basicConfig(level=logging.ERROR)  # the health log's lines are not this figure
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else CYCLES
    snapshots = [replace(sample_snapshot(strikes_each_side=STRIKES, tick=n),
                         timestamp=SAMPLE_TIME + timedelta(seconds=n)) for n in range(8)]
    snapshots = [snapshots[n % len(snapshots)] for n in range(cycles + WARMUP)]
    legs = snapshots[0].leg_count
    results: dict[bool, dict[str, list[float]]] = {True: {}, False: {}}
    for _ in range(ROUNDS):
        for textual_drawing in (True, False):
            got = asyncio.run(run(snapshots, textual_drawing))
            for key, values in got.items():
                results[textual_drawing].setdefault(key, []).extend(values)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load}; {legs} legs per snapshot, "
          f"terminal {SIZE[0]}x{SIZE[1]}, {cycles} cycles x {ROUNDS} rounds")
    print("UI thread CPU (p50 / p95 ms)          product drawing    Textual's drawing")
    for key, label in (("cycle", "cycle: show_snapshot -> frame"), ("i", "i: action -> frame")):
        ours, theirs = results[False][key], results[True][key]
        print(f"  {label:<34} {_p(ours, .5):6.2f} / {_p(ours, .95):6.2f}"
              f"     {_p(theirs, .5):6.2f} / {_p(theirs, .95):6.2f}")
    print(f"  bytes per cycle's frame            {statistics.median(results[False]['bytes']):8.0f}"
          f"          {statistics.median(results[True]['bytes']):8.0f}")
    return {"cycle_p95_ms": _p(results[False]["cycle"], .95),
            "i_p95_ms": _p(results[False]["i"], .95),
            "textual_cycle_p95_ms": _p(results[True]["cycle"], .95),
            "textual_i_p95_ms": _p(results[True]["i"], .95)}


if __name__ == "__main__":
    main()
