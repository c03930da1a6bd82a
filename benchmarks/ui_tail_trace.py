"""Where the time from a cycle's apply to its frame goes, cycle by cycle (a diagnosis, no goal).

Why: bench_e2e's "apply -> frame written" has a long tail even fed prebuilt snapshots at 1 Hz
with no stream, while the UI thread's CPU over it is nearly flat: the tail is waiting or a few
frames that draw far more. This runs the product's dashboard at 160x48 (its app, CSS, feed-loop
worker formatting the shown chain) fed hand-built full chains at 1 Hz, and records for every
cycle, from the end of show_snapshot to the frame written:

- every event-loop callback run (asyncio Handle._run): its task, wall and CPU time; the wall
  between callbacks is the loop waiting (select, the GIL, a timer not yet due);
- widgets refreshed and regions marked (Widget.refresh), layouts asked for;
- the screen's update timer: when it was resumed and when it fired (Textual draws on a 60 Hz
  timer: a frame drawn less than 1/60 s before waits for the next tick);
- the compositor: partial or full update, lines and widgets drawn, its time;
- garbage collections and the CPU other threads used in the window.

Then per cycle the split of the wall time, and the slowest cycles in full; then key presses
(t, i, down, up) traced the same way from the key's posting to its frame.
Run: `python benchmarks/ui_tail_trace.py [cycles] [--textual-schedule]` (about a minute);
`--textual-schedule` leaves every frame to Textual's relay (frame_now off), for comparison.

What it showed (load 10-11, 3,388 legs per snapshot): on Textual's relay a cycle's frame took 7
event-loop turns after the apply (each widget's idle, the screen's, the update timer), and the
screen's after-frame work (the chains a key away formatted in a thread, the flow read, the old
snapshot freed) ran on the screen's first idle, before the widgets had reported their refreshes:
in every cycle, before the frame, with another thread taking the GIL from it (other threads'
CPU 5.4 ms in the window, UI CPU 6.1 ms, wall p50 27 / p95 69 ms). Written by the handler
(frame_now): 0 turns, the after-frame work after the frame in every cycle, other threads' CPU
2.4 ms, UI CPU 3.9 ms, wall 19 / 45 ms (the rest is the load: the compositor's ~3 ms of CPU took
up to 20 ms of wall). Scroll keys also waited for the animator's 60 Hz tick with animations off.
Frames: 35 screen lines, ~250 segments per cycle; 40 lines, ~570 segments for `i`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from textual.widget import Widget

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_e2e import KEYS, Host, PrebuiltFeed, Probe, _keys, bench_settings  # noqa: E402
from bench_tui import SIZE, FrameMeter  # noqa: E402
from sample_data import SAMPLE_TIME, sample_snapshot  # noqa: E402

from optui.feed.model import FeedCycle  # noqa: E402
from optui.screens.dashboard import DashboardScreen  # noqa: E402
from optui.widgets.span_compositor import SpanCompositor  # noqa: E402

STRIKES = 60


@dataclass
class Step:
    at: float
    end: float
    cpu: float
    label: str


@dataclass
class Window:
    """One cycle from the end of its apply to its frame."""

    applied: float
    cpu0: float
    proc0: float
    apply_ms: float
    apply_cpu_ms: float
    frame: float = 0.0
    cpu_ms: float = 0.0
    other_cpu_ms: float = 0.0
    steps: list[Step] = field(default_factory=list)
    refreshes: list[tuple[float, str, int, bool]] = field(default_factory=list)
    resumed: list[float] = field(default_factory=list)
    fired: list[tuple[float, float, str]] = field(default_factory=list)
    compose: list[tuple[str, float, int, int, int]] = field(default_factory=list)
    """Per compositor update: kind, ms, dirty regions, screen lines written, segments."""
    gcs: list[tuple[float, float, int]] = field(default_factory=list)
    key: str = ""
    """The key pressed (a key's window starts when it is posted), or '' for a cycle."""
    after_frame_early: float = 0.0
    """When the screen's after-frame callback ran, if before the frame."""


class Tracer:
    def __init__(self) -> None:
        self.window: Window | None = None
        self.done: list[Window] = []
        self.main = threading.get_ident()
        self._gc_start: dict[int, float] = {}
        self.after_frame_at = 0.0
        self.keys: dict[str, list[Any]] = {}
        self.key_done: list[Window] = []
        self.frame: asyncio.Future[None] | None = None

    def install(self, app: Any, screen: DashboardScreen) -> None:
        tracer = self
        run = asyncio.events.Handle._run

        def traced_run(handle: Any) -> Any:
            w = tracer.window
            if w is None:
                return run(handle)
            at, cpu = time.perf_counter(), time.thread_time()
            try:
                return run(handle)
            finally:
                w = tracer.window
                if w is not None:
                    cb = handle._callback
                    owner = getattr(cb, "__self__", None)
                    if isinstance(owner, asyncio.Task):
                        label = owner.get_name()[:48]
                    else:
                        label = getattr(cb, "__qualname__", repr(cb))[:48]
                    w.steps.append(Step(at, time.perf_counter(),
                                        (time.thread_time() - cpu) * 1000, label))

        asyncio.events.Handle._run = traced_run  # type: ignore[method-assign]

        refresh = Widget.refresh

        def traced_refresh(widget: Any, *regions: Any, **kw: Any) -> Any:
            w = tracer.window
            if w is not None:
                w.refreshes.append((time.perf_counter(), widget.id or type(widget).__name__,
                                    len(regions), bool(kw.get("layout"))))
            return refresh(widget, *regions, **kw)

        Widget.refresh = traced_refresh  # type: ignore[method-assign]
        timer = screen._update_timer
        resume = timer.resume

        def traced_resume() -> None:
            w = tracer.window
            if w is not None and not timer._active.is_set():
                w.resumed.append(time.perf_counter())
            resume()

        timer.resume = traced_resume  # type: ignore[method-assign]
        on_timer = timer._callback
        scr = screen

        def traced_timer() -> None:
            w = tracer.window
            if w is None:
                return on_timer()
            at = time.perf_counter()
            kind = ("layout" if scr._layout_required else "scroll" if scr._scroll_required
                    else "repaint" if scr._repaint_required else
                    f"widgets {len(scr._dirty_widgets)}")
            on_timer()
            w.fired.append((at, time.perf_counter(), kind))

        timer._callback = traced_timer
        partial = SpanCompositor.render_partial_update
        full = SpanCompositor.render_full_update

        def traced_partial(comp: Any) -> Any:
            at = time.perf_counter()
            spans = len(comp._dirty_regions)
            out = partial(comp)
            w = tracer.window
            if w is not None:
                lines = getattr(out, "lines", None) or []
                segments = sum(len(strip) for _, pieces in lines for _, strip in pieces)
                w.compose.append(("partial", (time.perf_counter() - at) * 1000, spans,
                                  len({y for y, _ in lines}), segments))
            return out

        def traced_full(comp: Any, *a: Any, **k: Any) -> Any:
            at = time.perf_counter()
            out = full(comp, *a, **k)
            w = tracer.window
            if w is not None:
                w.compose.append(("FULL", (time.perf_counter() - at) * 1000, 0,
                                  comp.size.height, -1))
            return out

        SpanCompositor.render_partial_update = traced_partial  # type: ignore[method-assign]
        SpanCompositor.render_full_update = traced_full  # type: ignore[method-assign]

        def on_gc(phase: str, info: dict[str, int]) -> None:
            now, thread = time.perf_counter(), threading.get_ident()
            if phase == "start":
                tracer._gc_start[thread] = now
            elif thread in tracer._gc_start and tracer.window is not None:
                tracer.window.gcs.append((tracer._gc_start.pop(thread), now,
                                          info["generation"]))

        gc.callbacks.append(on_gc)

        after = screen._after_frame

        def traced_after(*a: Any, **k: Any) -> None:
            w = tracer.window
            if w is not None:
                w.after_frame_early = time.perf_counter()
            tracer.after_frame_at = time.perf_counter()
            after(*a, **k)

        screen._after_frame = traced_after  # type: ignore[method-assign]
        show = screen.show_snapshot

        def timed_show(*args: Any, **kwargs: Any) -> None:
            began, cpu = time.perf_counter(), time.thread_time()
            fresh = tracer.window is None
            if fresh:
                tracer.window = Window(began, cpu, time.process_time(), 0.0, 0.0)
            show(*args, **kwargs)
            now = time.perf_counter()
            w = tracer.window
            if fresh and w is not None:
                w.applied, w.cpu0 = now, time.thread_time()
                w.apply_ms, w.apply_cpu_ms = (now - began) * 1000, (w.cpu0 - cpu) * 1000

        screen.show_snapshot = timed_show  # type: ignore[method-assign]
        display = app._display

        def timed_display(screen_: Any, renderable: Any) -> None:
            display(screen_, renderable)
            w = tracer.window
            if renderable is None or app._batch_count or w is None:
                return
            w.frame = time.perf_counter()
            cpu = time.thread_time()
            w.cpu_ms = (cpu - w.cpu0) * 1000
            w.other_cpu_ms = (time.process_time() - w.proc0) * 1000 - w.cpu_ms
            tracer.window = None
            (tracer.key_done if w.key else tracer.done).append(w)
            if tracer.frame is not None and not tracer.frame.done():
                tracer.frame.set_result(None)

        app._display = timed_display


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def summarize(w: Window) -> dict[str, float]:
    wall = (w.frame - w.applied) * 1000
    busy = sum((s.end - s.at) for s in w.steps if s.at >= w.applied) * 1000
    fired = w.fired[-1][0] if w.fired else w.frame
    resumed = w.resumed[-1] if w.resumed else fired
    after = [st for st in w.steps if st.at >= w.applied]
    return {"hops": len(after), "wall": wall, "cpu": w.cpu_ms, "busy": busy, "idle": wall - busy,
            "timer_wait": (fired - resumed) * 1000, "to_resume": (resumed - w.applied) * 1000,
            "draw": (w.frame - fired) * 1000, "other": w.other_cpu_ms,
            "gc": sum(b - a for a, b, _ in w.gcs) * 1000,
            "apply": w.apply_ms, "lines": float(sum(c[3] for c in w.compose)),
            "segments": float(sum(c[4] for c in w.compose)), "after_frame_early": 1.0 if w.after_frame_early else 0.0}


def detail(w: Window) -> None:
    s = summarize(w)
    print(f"--- wall {s['wall']:.1f} ms (apply itself {w.apply_ms:.1f} ms before it), UI CPU "
          f"{s['cpu']:.1f}, other threads' CPU {s['other']:.1f}, gc {s['gc']:.1f}, "
          f"compositor {w.compose}")
    t0 = w.applied
    for st in w.steps:
        if st.at >= w.applied:
            print(f"   {(st.at - t0) * 1000:7.2f} +{(st.end - st.at) * 1000:6.2f} ms "
                  f"(cpu {st.cpu:5.2f}) {st.label}")
    for at in w.resumed:
        print(f"   {(at - t0) * 1000:7.2f} update timer resumed")
    for at, end, kind in w.fired:
        print(f"   {(at - t0) * 1000:7.2f} update timer fired ({kind}), {(end - at) * 1000:.2f} ms")
    refreshed: dict[str, int] = {}
    for _, wid, n, layout in w.refreshes:
        name = wid + (" LAYOUT" if layout else "")
        refreshed[name] = refreshed.get(name, 0) + max(n, 1)
    print(f"   refreshed: {refreshed}")
    for a, b, g in w.gcs:
        print(f"   {(a - t0) * 1000:7.2f} gc gen{g} {(b - a) * 1000:.2f} ms")


async def trace_keys(app: Any, screen: DashboardScreen, tracer: Tracer) -> None:
    """Each of KEYS pressed in turn, traced from the key's posting to its frame."""
    from textual import events

    from optui.widgets.chain_table import ChainTable

    screen.query_one(ChainTable).focus()
    await asyncio.sleep(0.2)
    for n in range(24):
        key = KEYS[n % len(KEYS)]
        while tracer.window is not None:  # a cycle being drawn: its frame first
            await asyncio.sleep(0.005)
        tracer.frame = asyncio.get_running_loop().create_future()
        now = time.perf_counter()
        tracer.window = Window(now, time.thread_time(), time.process_time(), 0.0, 0.0, key=key)
        app.post_message(events.Key(key, None if len(key) > 1 else key))
        try:
            await asyncio.wait_for(tracer.frame, 2.0)
        except TimeoutError:
            tracer.window = None
        await asyncio.sleep(0.04 + 0.013 * (n % 5))


async def run(cycles: int) -> Tracer:
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    settings = bench_settings(tmp, 1)
    snaps = [replace(sample_snapshot(strikes_each_side=STRIKES, tick=n),
                     timestamp=SAMPLE_TIME + timedelta(seconds=n)) for n in range(8)]
    probe = Probe()
    feed = PrebuiltFeed([FeedCycle(s, interval_s=1.0) for s in snaps], probe)
    screen = DashboardScreen(settings, feed=feed)
    app = Host(settings, screen)
    tracer = Tracer()
    async with app.run_test(size=SIZE):
        while screen.loop is None:
            await asyncio.sleep(0.01)
        meter = FrameMeter(app)
        await asyncio.sleep(3.0)
        tracer.install(app, screen)
        while len(tracer.done) < cycles:
            await asyncio.sleep(0.5)
        tracer.keys = await _keys(app, screen, meter)
        await trace_keys(app, screen, tracer)
    print(f"{snaps[0].leg_count} legs per snapshot")
    return tracer


def main() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 30
    if "--textual-schedule" in sys.argv:  # frames on Textual's relay only (the comparison)
        import optui.screens.dashboard as dashboard
        import optui.widgets.keyed_table as keyed_table

        dashboard.draw_now = lambda screen: False  # type: ignore[assignment]
        keyed_table.draw_now = lambda screen: False  # type: ignore[assignment]
    tracer = asyncio.run(run(cycles))
    rows = [summarize(w) for w in tracer.done]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average {load}; {len(rows)} cycles (median / p95 / max ms)")
    for key in rows[0]:
        vals = [r[key] for r in rows]
        print(f"  {key:<11} {statistics.median(vals):7.2f} {_p(vals, .95):7.2f} {max(vals):7.2f}")
    for w in sorted(tracer.done, key=lambda w: w.frame - w.applied)[-4:]:
        detail(w)
    print("keys, the prebuilt feed cycling at 1 Hz (p50 / p95 ms): " + "; ".join(
        f"{k} {_p(tracer.keys[k], .5):.1f} / {_p(tracer.keys[k], .95):.1f} (UI CPU "
        f"{_p(tracer.keys['cpu ' + k], .5):.1f} / {_p(tracer.keys['cpu ' + k], .95):.1f})"
        for k in KEYS))
    keyed = tracer.key_done
    print(f"keys traced from posting to frame ({len(keyed)}; median / p95 / max ms)")
    for key in ("hops", "wall", "cpu", "idle", "other", "gc", "lines"):
        vals = [summarize(w)[key] for w in keyed]
        print(f"  {key:<11} {statistics.median(vals):7.2f} {_p(vals, .95):7.2f} {max(vals):7.2f}")
    for w in sorted(keyed, key=lambda w: w.frame - w.applied)[-2:]:
        print(f"key {w.key}:")
        detail(w)
    print("a median cycle:")
    detail(sorted(tracer.done, key=lambda w: w.frame - w.applied)[len(tracer.done) // 2])


if __name__ == "__main__":
    main()
