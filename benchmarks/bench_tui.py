"""Dashboard responsiveness and terminal traffic while a full chain is collected every second.

Two figures, each against a naive baseline measured in the same run:

- key-to-frame latency: p50/p95 from posting `t` or `i` until the first frame that shows the
  change is rendered (goal p95 <= 50 ms), while the seeded simulator is collected at 1 Hz with a
  full chain, so collection threads compete with the event loop as they do in use;
- bytes written to the terminal per second at 1 Hz updates (goal <= 20 KB/s, what an SSH link
  over a phone tether carries), counted by rendering every frame the app would write.

The naive baseline clears and refills every table on each tick and key press, as a dashboard
without keyed updates would. A third run feeds hand-built full chains with no collection thread,
separating the UI's own cost from time spent waiting for the GIL held by collection.
Run: `python benchmarks/bench_tui.py` (about 50 s).
"""

from __future__ import annotations

import asyncio
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from textual import events
from textual._compositor import CompositorUpdate
from textual.app import App

from optui.config import Settings
from optui.screens.dashboard import DashboardScreen
from optui.timeutil import now_utc
from optui.widgets.chain_table import ChainTable
from optui.widgets.overview_table import OverviewTable
from optui.widgets.positions_table import PositionsTable

# The hand-built sample snapshot is a test fixture (tests/sample_data.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_exchange import local_settings  # noqa: E402

SIZE = (160, 48)
PRESSES = 40
TRAFFIC_SECONDS = 8.0
GOAL_P95_MS = 50.0
GOAL_BYTES_PER_S = 20_000.0


class NaiveDashboard(DashboardScreen):
    """Baseline: rebuilds every table from scratch on each update."""

    def _render_all(self, tables: bool = True, flow: bool = True) -> None:
        for table in (OverviewTable, ChainTable, PositionsTable):
            self.query_one(table).clear_rows()
        super()._render_all()


class FrameMeter:
    """Wraps App._display: renders each frame as the terminal would receive it and counts it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.bytes = 0
        self.frames = 0
        self.watch: Callable[[], bool] | None = None
        self.hit: asyncio.Future[float] | None = None
        original = app._display
        # What a truecolor terminal (the common case over SSH today) would be sent.
        console = Console(
            file=io.StringIO(), force_terminal=True, color_system="truecolor",
            width=SIZE[0], height=SIZE[1], legacy_windows=False,
        )

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None or app._batch_count:
                return
            if isinstance(renderable, CompositorUpdate):
                text = renderable.render_segments(console)
            else:
                text = console._render_buffer(console.render(renderable))
            self.bytes += len(text.encode("utf-8"))
            self.frames += 1
            if self.hit is not None and not self.hit.done() and self.watch and self.watch():
                self.hit.set_result(time.perf_counter())

        app._display = display  # type: ignore[method-assign]


class Host(App[None]):
    """A bare app hosting the dashboard (the product's CSS comes with the screen)."""

    def __init__(self, screen: DashboardScreen) -> None:
        super().__init__()
        self.dash = screen

    def on_mount(self) -> None:
        self.push_screen(self.dash)


def bench_settings(tmp: Path) -> Settings:
    s = local_settings(tmp)
    s.source.kind = "sim"
    s.source.full_chain_expiries = 1  # every listed strike of the nearest expiry
    return s


class SampleEngine:
    """Hand-built full chains at 1 Hz: the UI-only run, and a stand-in without the engine."""

    source_name = "sim"
    store = None

    def __init__(self) -> None:
        self.tick = 0

    def collect_once(self) -> Any:
        from sample_data import SAMPLE_TIME, sample_snapshot

        self.tick += 1
        time.sleep(0.05)  # a cycle's work off the event loop
        snap = sample_snapshot(strikes_each_side=60, tick=self.tick)
        return replace(snap, timestamp=SAMPLE_TIME + timedelta(seconds=self.tick))

    def close(self) -> None:
        pass


def engine_factory() -> tuple[Callable[[Settings], Any], str]:
    try:
        from optui.collectors.engine import build_engine

        return build_engine, "seeded simulator (engine.collect_once, full chain)"
    except ImportError as exc:
        return (lambda _s: SampleEngine()), f"hand-built chains (engine unavailable: {exc})"


async def _wait_snapshots(screen: DashboardScreen, count: int, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    seen = screen._snapshot
    got = 0
    while got < count:
        if time.perf_counter() > deadline:
            raise RuntimeError("no snapshot from the engine: is the simulator working?")
        await asyncio.sleep(0.02)
        if screen._snapshot is not seen:
            seen = screen._snapshot
            got += 1


async def measure(screen_type: type[DashboardScreen], factory: Callable[[Settings], Any]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        screen = screen_type(bench_settings(Path(tmp)), engine_factory=factory, clock=now_utc)
        app = Host(screen)
        async with app.run_test(size=SIZE):
            meter = FrameMeter(app)
            await _wait_snapshots(screen, 2)
            legs = screen._snapshot.leg_count if screen._snapshot else 0
            # Traffic: no keys, just the 1 Hz collection and the header clock.
            b0, f0, t0 = meter.bytes, meter.frames, time.perf_counter()
            await asyncio.sleep(TRAFFIC_SECONDS)
            elapsed = time.perf_counter() - t0
            bytes_per_s = (meter.bytes - b0) / elapsed
            frames_per_s = (meter.frames - f0) / elapsed
            # Latency: alternate t and i at irregular gaps so presses land at every cycle phase.
            t_lat: list[float] = []
            i_lat: list[float] = []
            loop = asyncio.get_running_loop()
            for n in range(PRESSES):
                key = "t" if n % 2 == 0 else "i"
                before = (screen.timeframe, screen.index)
                meter.watch = lambda before=before: (screen.timeframe, screen.index) != before
                meter.hit = loop.create_future()
                # Posted to the app exactly as the terminal driver does on a keystroke.
                start = time.perf_counter()
                app.post_message(events.Key(key, key))
                end = await asyncio.wait_for(meter.hit, timeout=5.0)
                (t_lat if key == "t" else i_lat).append((end - start) * 1000.0)
                await asyncio.sleep(0.037 + 0.011 * (n % 7))
            meter.watch = None
        latencies = sorted(t_lat + i_lat)
        return {
            "p50_ms": statistics.median(latencies),
            "p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
            "p95_t_ms": sorted(t_lat)[int(0.95 * (len(t_lat) - 1))],
            "p95_i_ms": sorted(i_lat)[int(0.95 * (len(i_lat) - 1))],
            "bytes_per_s": bytes_per_s,
            "frames_per_s": frames_per_s,
            "legs": legs,
        }


def main() -> dict:
    factory, what = engine_factory()
    print(f"data: {what}; terminal {SIZE[0]}x{SIZE[1]}; {PRESSES} key presses; "
          f"{TRAFFIC_SECONDS:.0f} s of traffic per variant")
    keyed = asyncio.run(measure(DashboardScreen, factory))
    naive = asyncio.run(measure(NaiveDashboard, factory))
    # The UI's own cost: hand-built full chains, no collection thread competing for the GIL.
    ui_only = asyncio.run(measure(DashboardScreen, lambda _s: SampleEngine()))
    print(f"legs per snapshot: {keyed['legs']} (hand-built: {ui_only['legs']})")
    for name, res in (("keyed", keyed), ("naive rebuild", naive), ("keyed, UI only", ui_only)):
        print(f"{name:>14}: key-to-frame p50 {res['p50_ms']:.1f} ms, p95 {res['p95_ms']:.1f} ms; "
              f"(t {res['p95_t_ms']:.1f}, i {res['p95_i_ms']:.1f}); "
              f"{res['bytes_per_s'] / 1000:.1f} KB/s, {res['frames_per_s']:.1f} frames/s")
    p95_ratio = naive["p95_ms"] / keyed["p95_ms"] if keyed["p95_ms"] else float("nan")
    bytes_ratio = naive["bytes_per_s"] / keyed["bytes_per_s"] if keyed["bytes_per_s"] else float("nan")
    print(f"key-to-frame p95: {keyed['p95_ms']:.1f} ms (goal <= {GOAL_P95_MS:.0f} ms, "
          f"{'met' if keyed['p95_ms'] <= GOAL_P95_MS else 'MISSED'}); naive/keyed = {p95_ratio:.2f}x")
    print(f"terminal bytes: {keyed['bytes_per_s'] / 1000:.1f} KB/s (goal <= "
          f"{GOAL_BYTES_PER_S / 1000:.0f} KB/s, "
          f"{'met' if keyed['bytes_per_s'] <= GOAL_BYTES_PER_S else 'MISSED'}); "
          f"naive/keyed = {bytes_ratio:.2f}x")
    return {
        "data": what,
        "keyed": keyed,
        "naive": naive,
        "ui_only": ui_only,
        "p95_ratio_naive_over_keyed": p95_ratio,
        "bytes_ratio_naive_over_keyed": bytes_ratio,
    }


if __name__ == "__main__":
    main()
