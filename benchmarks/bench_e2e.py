"""End to end at full chain, on the product's path: a tick in at the socket to the number on screen.

Why: traders read the chain as it moves. `optui simulate` runs in its own process (REST and
Kite's WebSocket ticker on one port, as a remote exchange would be); this process runs what
`optui` runs against it:

    KiteSource + StreamingSource (every strike of the two nearest expiries of all five indices,
    full mode, 3 connections) -> CollectionEngine.collect_shown (source.interval_s = 1) with a
    SQLite store and the recorder -> LocalFeed -> the dashboard's feed-loop worker
    (optui.screens.feed_loop: formats the shown chain) -> SnapshotCollected -> DashboardScreen
    (headless, 160x48) -> frame written; the cycle is then published for attached dashboards
    as `optui` publishes it with the default in-process cache (cache.url = memory://): the
    latest-cycle file, ~2 MB of JSON encoded on the publisher thread; the worker stores the
    cycle (CollectionEngine.store_pending: day state, store rows, leg files), before the next one

Figures (goals from the issue):
- tick to screen: from a ticker frame handed over by the socket to the first terminal frame
  written after the cycle holding it was applied, for frames that changed the LTP of a chain
  row on screen (p50/p95; goal p95 <= 100 ms);
- per stage (medians, p95): socket -> book (parse and fold), book -> the cycle's read of the
  book (waiting for the cadence), the cycle up to the snapshot shown, the cycle stored (after
  it is posted, on the worker: off the path but sharing the GIL), its publication (start after
  the frame, wall time and the publisher thread's CPU; how many overlapped a cycle's apply to
  frame), cycle -> UI message (the worker
  formatting the shown chain, the message queue), UI apply (the screen's handler), apply ->
  frame written;
- key to frame while it streams: `t`, `i`, down and up arrows (the chain focused) posted as
  the terminal driver does, until the frame showing the change is written (goal p95 <= 30 ms);
- bytes written to the terminal per second while it streams (goal <= 20 KB/s), counted by
  rendering every frame as a truecolor terminal would receive it.
Baseline in the same run: the same dashboard fed the stream's own snapshots, prebuilt, at 1 Hz
with no stream and no collection, then the keys again with no cycle arriving at all (the UI's
own cost of each key).
Run: `python benchmarks/bench_e2e.py [stream seconds] [--no-publish]` (about a minute and a
half; --no-publish: no latest-cycle file, as before the publication was measured).

Measured on the shared 2-core machine, load average 2.5-4.9 (other work on both cores; runs at
nice -10, the collector stored first alternating with this in the same minutes): tick to screen
p50 176-209 ms, p95 403-491 ms (stored first: p50 292-382, p95 1008-1391); the cycle after its
read of the book 81-114 / 206-242 ms (stored first 175-185 / 370-500), its own CPU 44-57 ms.
On the same machine at load 0.1 (two runs): tick to screen p50 95-102 ms, p95 151-156 ms
(goal missed; the cycle after the book read 51-55 / 60-76 ms, apply to frame 21 / 36 ms); key to
frame p50 6.0-6.7 ms, p95 24.5-27.7 ms (goal met); 12.0-12.3 KB/s to the terminal.
Garbage collection (optui.heap), streamed, five runs at load 1.5-3.7: 5-15 of 48 presses held
up by a collection, the longest 8-90 ms of wall time (before the policy, four runs in the same
minutes: 9-13, 46-206 ms); 6 full collections in 30 s, their CPU 93 ms in all, the longest
25 ms (before, the same benchmark in the same minutes: 253 ms, 56 ms); the young generations'
CPU ~430 ms in 30 s either way (~860 collections).
With the cycle's legs in columns, the ticker thread's lookups kept between cycles, partial
updates drawn line by line (SpanCompositor) and no snapshot left to a full collection, three runs
at load 0.0-0.1: tick to screen p50 70-75 ms, p95 94 / 100 / 108 ms (the goal held in two of
three); the cycle after the book read 37-41 / 48-58 ms (its CPU 35-38 / 43-45 ms); apply to
frame 9-11 / 24-30 ms (UI CPU 12.5-13.5 / 16-19 ms); key to frame p50 4.6-4.7 ms, p95
15.0-24.4 ms (goal met); 11.9-12.1 KB/s; full collections at most 17.6 ms.
With each cycle's and key's frame written by its handler (optui.widgets.frame_now: no relay
of idle messages and 60 Hz timer ticks, each a turn of the event loop that handed the GIL to
another thread; the work meant to follow the frame no longer started before it; scrolls set
by their key's action) against Textual's relay in the same minutes (the latter first), at load
7.6-11.8: apply to frame p50 / p95 35.9 / 84.6 -> 20.0-21.5 / 38.9-52.9 ms streamed, 33.3 /
59.2 -> 17.0-18.5 / 38.5-40.2 ms prebuilt; its UI CPU 11.0 / 16.6 -> 6.7-7.5 / 9.3-10.2 ms
streamed, 10.4 / 14.4 -> 6.4-7.6 / 7.4-9.0 ms prebuilt; key to frame streamed 24.0 / 99.6 ->
11.5-12.4 / 76.9 ms, prebuilt 13.6 / 63.4 -> 6.9-7.3 / 28.7-46.1 ms; `i` UI CPU 11.6 / 16.7 ->
8.3-8.8 / 9.2-13.0 ms; 12.4 -> 12.4-13.1 KB/s. At load 14-19: apply to frame 76.9 / 339.1 ->
22.3 / 104.4 ms streamed (UI CPU 12.3 / 27.1 -> 8.1 / 13.5), 81.1 / 157.3 -> 25.5 / 38.1 ms
prebuilt; key to frame streamed 66.0 / 466 -> 20.4 / 114.6 ms; 12.0 -> 14.3 KB/s. Of ~80
frames of cycles and keys per run, 1-4 were left to Textual's relay (a layout was due).
One run at load 4.9-5.8: apply to frame 15.1 / 33.6 ms streamed (UI CPU 10.7 / 12.9), 16.0 /
21.8 ms prebuilt; key to frame streamed 7.4 / 35.9 ms (down 4.9 / 16.7, i 22.8 / 43.3);
11.7 KB/s.
With the publication (latest-cycle file, memory cache) after each cycle's frame, 10 s streamed,
load 1.1 (so the wall-clock figures wait for a quiet machine): publication 150-156 ms wall /
98-111 ms CPU on its thread, started 8-17 ms (p50) after the frame, none of 14-15 overlapping
a cycle's apply to frame; UI thread CPU apply to frame 12.5 / 13.8-14.6 ms (without
publication, same minutes: 10.4 / 12.5); storing the cycle, which now shares the GIL with the
publication after the frame, 165-167 ms wall (without: 41 ms).
All of the above with the snapshot's legs as columns (optui.leg_rows), three runs in a row at
load 0.2-0.3, publication on: tick to screen p50 53 / 56 / 53 ms, p95 72 / 70 / 68 ms (goal
met in all three); the cycle after the book read 26.7-29.7 / 32.8-36.8 ms (its CPU 22.9-26.7 /
28.9-31.7 ms); apply to frame 5.7-6.5 / 7.3-7.8 ms; publication 93-120 ms wall, 67-98 ms CPU,
started 10-12 ms after the frame, none overlapping a cycle's apply to frame; key to frame p50
3.4-3.5 ms, p95 12.6-18.2 ms (goal met); 11.1-11.4 KB/s.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual import events

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_tui import SIZE, FrameMeter  # noqa: E402
from gc_trace import GcTrace  # noqa: E402
from sim_exchange import bench_settings, collect_engine, free_port, start_simulator  # noqa: E402

from optui.app import OptuiApp  # noqa: E402
from optui.collectors.stream_source import StreamingSource  # noqa: E402
from optui.collectors.ticker_source import TickerSource  # noqa: E402
from optui.config import Settings  # noqa: E402
from optui.feed import local as feed_local  # noqa: E402
from optui.feed.local import LocalFeed  # noqa: E402
from optui.feed.model import Feed, FeedCycle  # noqa: E402
from optui.screens.dashboard import DashboardScreen  # noqa: E402
from optui.ui_messages import SnapshotCollected  # noqa: E402
from optui.widgets import frame_now  # noqa: E402
from optui.widgets.chain_table import ChainTable  # noqa: E402

START = "2026-11-17 11:00"
WARMUP_S = 8.0
STREAM_S = 25.0
PRESSES = 48
KEPT = 8  # snapshots of the stream the baseline shows in turn
KEYS = ("t", "i", "down", "up")
GOAL_TICK_P95_MS = 100.0
GOAL_KEY_P95_MS = 30.0
GOAL_BYTES_PER_S = 20_000.0
PUBLISH = True
"""Publish each cycle to a latest-cycle file, as `optui` does with cache.url = memory://."""


@dataclass
class Frame:
    """One ticker frame: when the socket handed it over, when it was in the book, and the
    instruments whose LTP it changed."""

    socket_at: float
    book_at: float
    changed: set[int]


@dataclass
class Cycle:
    """One collection cycle and the times of each stage, perf_counter seconds."""

    start: float
    start_cpu: float = 0.0  # the collecting thread's CPU seconds at the start
    collect_cpu: float = 0.0  # its CPU seconds to the snapshot shown (waits excluded)
    read: float = 0.0  # the first read of the book (a quote call answered from the ticks)
    end: float = 0.0  # the cycle was collected and published (stored later: `stored`)
    stored: tuple[float, float] = (0.0, 0.0)  # the feed loop storing it after posting it
    views: tuple[float, float] = (0.0, 0.0)  # the worker formatting the shown chain
    posted: float = 0.0
    applied: tuple[float, float] = (0.0, 0.0)
    frame: float = 0.0  # the first terminal frame written after the apply
    cpu: float = 0.0  # the event loop thread's CPU seconds from the apply to the frame
    published: tuple[float, float, float] = (0.0, 0.0, 0.0)  # start, end, publisher CPU s
    frames: list[Frame] = field(default_factory=list)
    shown: set[int] = field(default_factory=set)  # tokens of chain rows on screen after apply


class Probe:
    """Times every stage by wrapping the product's own methods (class-level for the ticker and
    the streaming source, which the engine builds; instance-level for the feed loop and the
    screen). Thread-safe: the ticker thread, the feed-loop worker and the event loop write."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[Frame] = []  # in the book, not yet read by a cycle
        self.cycles: dict[int, Cycle] = {}  # by id(snapshot)
        self.current: Cycle | None = None
        self.done: list[Cycle] = []
        self.last_price: dict[int, float] = {}
        self.measuring = False
        self._socket_at = threading.local()
        self.unpublished: dict[int, Cycle] = {}  # by id(snapshot), until its publication

    def install_publisher(self) -> None:
        """Time each publication on the publisher thread (building and encoding the payload,
        writing the latest-cycle file)."""
        probe = self
        send = feed_local._Publisher._send

        def timed_send(self: Any, cycle: FeedCycle, at: Any = None) -> None:
            began, cpu = time.perf_counter(), time.thread_time()
            send(self, cycle, at)
            if cycle.snapshot is not None:
                with probe.lock:
                    timed = probe.unpublished.pop(id(cycle.snapshot), None)
                    if timed is not None:
                        timed.published = (began, time.perf_counter(), time.thread_time() - cpu)

        feed_local._Publisher._send = timed_send  # type: ignore[method-assign]

    def install_source(self) -> None:
        probe = self
        parse = TickerSource._parse
        on_frame = StreamingSource._on_frame
        answer = StreamingSource._answer

        def timed_parse(self: TickerSource, shard: Any, frame: bytes) -> Any:
            probe._socket_at.value = time.perf_counter()
            return parse(self, shard, frame)

        def timed_on_frame(self: StreamingSource, shard: int, frame: bytes, batch: Any) -> None:
            on_frame(self, shard, frame, batch)
            book_at = time.perf_counter()
            if batch is None or not len(batch):
                return
            changed = set()
            seen = probe.last_price
            for tok, price in zip(batch.instrument_token.tolist(), batch.last_price.tolist(),
                                  strict=True):
                if seen.get(tok) != price:
                    seen[tok] = price
                    changed.add(tok)
            with probe.lock:
                probe.pending.append(Frame(probe._socket_at.value, book_at, changed))

        def timed_answer(self: StreamingSource, keys: Any, streamed: Any, polled: Any) -> Any:
            if streamed:
                with probe.lock:
                    cycle = probe.current
                    if cycle is not None and not cycle.read:
                        cycle.read = time.perf_counter()
                        cycle.frames, probe.pending = probe.pending, []
            return answer(self, keys, streamed, polled)

        TickerSource._parse = timed_parse  # type: ignore[method-assign]
        StreamingSource._on_frame = timed_on_frame  # type: ignore[method-assign]
        StreamingSource._answer = timed_answer  # type: ignore[method-assign]

    def cycle_started(self) -> None:
        with self.lock:
            self.current = Cycle(time.perf_counter(), time.thread_time())

    def cycle_ended(self, feed_cycle: FeedCycle) -> None:
        with self.lock:
            cycle, self.current = self.current, None
            if cycle is not None and feed_cycle.snapshot is not None:
                cycle.end = time.perf_counter()
                self.unpublished[id(feed_cycle.snapshot)] = cycle
                cycle.collect_cpu = time.thread_time() - cycle.start_cpu
                self.cycles[id(feed_cycle.snapshot)] = cycle

    def install_screen(self, app: Any, screen: DashboardScreen) -> None:
        """Wrap the feed loop's formatting and posting, the screen's apply and the display."""
        probe = self
        loop = screen.loop
        assert loop is not None
        views, post = loop._views, loop._post

        def timed_views(c: FeedCycle) -> dict:
            began = time.perf_counter()
            out = views(c) if views is not None else {}
            cycle = probe.cycles.get(id(c.snapshot))
            if cycle is not None:
                cycle.views = (began, time.perf_counter())
            return out

        def timed_post(message: Any) -> Any:
            if isinstance(message, SnapshotCollected):
                cycle = probe.cycles.get(id(message.snapshot))
                if cycle is not None:
                    cycle.posted = time.perf_counter()
            return post(message)

        loop._views, loop._post = timed_views, timed_post
        show = screen.show_snapshot
        applied: list[Cycle] = []

        def timed_show(snapshot: Any, *args: Any, **kwargs: Any) -> None:
            began, cpu = time.perf_counter(), time.thread_time()
            show(snapshot, *args, **kwargs)
            cycle = probe.cycles.pop(id(snapshot), None)
            if cycle is None:
                return
            cycle.applied = (began, time.perf_counter())
            cycle.cpu = cpu
            cycle.shown = shown_tokens(screen, snapshot)
            applied.append(cycle)

        screen.show_snapshot = timed_show  # type: ignore[method-assign]
        display = app._display

        def timed_display(screen_: Any, renderable: Any) -> None:
            display(screen_, renderable)
            if renderable is None or app._batch_count or not applied:
                return
            now, cpu = time.perf_counter(), time.thread_time()
            for cycle in applied:
                cycle.frame = now
                cycle.cpu = cpu - cycle.cpu
                if probe.measuring:
                    probe.done.append(cycle)
            applied.clear()

        app._display = timed_display


def shown_tokens(screen: DashboardScreen, snapshot: Any) -> set[int]:
    """Instrument tokens of the chain rows on screen (the visible part of the strike window)."""
    table = screen.query_one(ChainTable)
    top = int(table.scroll_offset.y)
    visible = set(table.row_keys[top: top + max(0, table.size.height - 1)])
    idx = snapshot.indices.get(screen.index)
    if idx is None:
        return set()
    return {leg.instrument_token for leg in idx.legs
            if leg.bucket == screen.bucket and f"{leg.strike:g}" in visible}


class Host(OptuiApp):
    """The product's app (its CSS, bindings, footer, animations off as configured) showing the
    given dashboard instead of the main menu."""

    CSS_PATH = str(Path(OptuiApp.__module__ and sys.modules[OptuiApp.__module__].__file__ or "")
                   .with_name("app.tcss"))

    def __init__(self, settings: Settings, screen: DashboardScreen) -> None:
        super().__init__(settings)
        self.dash = screen

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # not the main menu: the dashboard under test
        self.push_screen(self.dash)


class TimedFeed(LocalFeed):
    """LocalFeed telling the probe when each cycle starts and ends; once `keep` is set (after
    the measurements: a full chain's snapshots kept alive would swell the heap every garbage
    collection walks, which the product does not), keeps the snapshots for the baseline."""

    def __init__(self, engine: Any, probe: Probe, interval_s: float,
                 latest_file: Path | None = None) -> None:
        super().__init__(engine, interval_s=interval_s, latest_file=latest_file)
        self.probe = probe
        self.keep = False
        self.kept: list[FeedCycle] = []
        self.last: Cycle | None = None

    def next_cycle(self, timeout_s: float | None = None, *, publish: bool = True) -> FeedCycle:
        self.probe.cycle_started()
        cycle = super().next_cycle(timeout_s, publish=publish)
        self.probe.cycle_ended(cycle)
        if self.keep:
            self.kept = [*self.kept[-(KEPT - 1):], cycle]
        self.last = self.probe.cycles.get(id(cycle.snapshot))
        return cycle

    def store_cycle(self) -> None:
        began = time.perf_counter()
        super().store_cycle()
        if self.last is not None:
            self.last.stored = (began, time.perf_counter())


class PrebuiltFeed(Feed):
    """The baseline: cycles already collected, one a second, no stream, no collection."""

    def __init__(self, cycles: list[FeedCycle], probe: Probe) -> None:
        self.cycles = cycles
        self.n = 0
        self.probe = probe
        self.quiet = False
        """No more cycles (the UI's own cost of a key, with nothing else on the event loop)."""

    def start(self) -> str:
        return f"{len(self.cycles)} prebuilt cycles at 1 Hz"

    def start_blocks(self) -> bool:
        return False

    def delay_s(self) -> float:
        return 1.0

    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        if self.quiet:
            return None
        self.probe.cycle_started()
        prebuilt = self.cycles[self.n % len(self.cycles)]
        self.n += 1
        cycle = FeedCycle(prebuilt.snapshot, interval_s=1.0)
        self.probe.cycle_ended(cycle)
        return cycle

    def close(self) -> None:
        pass


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


class GcPauses:
    """Garbage collections (any thread: a collection holds the GIL, so every thread waits) as
    perf_counter (start, end) intervals, while installed."""

    def __init__(self) -> None:
        self.spans: list[tuple[float, float]] = []
        self._began: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        now, thread = time.perf_counter(), threading.get_ident()
        if phase == "start":
            self._began[thread] = now
        elif thread in self._began:
            self.spans.append((self._began.pop(thread), now))

    def within(self, start: float, end: float) -> float:
        """Seconds of collection inside [start, end]."""
        return sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.spans)


async def _keys(app: Any, screen: DashboardScreen, meter: FrameMeter) -> dict[str, list[float]]:
    """Key to frame per key (ms); under "cpu" and "cpu <key>" the event loop thread's CPU time
    over each (what the UI itself spent; the rest of the wait is other threads, processes and
    timers), under "gc" the garbage collections inside each press (ms), under "windows" and
    "wall" each press's perf_counter (start, end) and its key to frame, in press order."""
    loop = asyncio.get_running_loop()
    chain = screen.query_one(ChainTable)
    chain.focus()
    await asyncio.sleep(0.2)
    out: dict[str, list[Any]] = {k: [] for k in (*KEYS, "cpu", "gc", "windows", "wall",
                                                 *(f"cpu {k}" for k in KEYS))}
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    try:
        await _press(app, screen, chain, meter, loop, out)
    finally:
        gc.callbacks.remove(gc_pauses)
    out["gc"] = [gc_pauses.within(a, b) * 1000.0 for a, b in out["windows"]]
    return out


async def _press(app: Any, screen: DashboardScreen, chain: ChainTable, meter: FrameMeter,
                 loop: asyncio.AbstractEventLoop, out: dict[str, list[Any]]) -> None:
    for n in range(PRESSES):
        key = KEYS[n % len(KEYS)]
        before = (screen.timeframe, screen.index, chain.scroll_offset.y)
        seen: list[float] = []

        def changed(before: tuple = before, seen: list[float] = seen) -> bool:
            now = (screen.timeframe, screen.index, chain.scroll_offset.y)
            if now != before:
                seen.append(time.thread_time())
            return now != before

        meter.watch = changed
        meter.hit = loop.create_future()
        start, cpu = time.perf_counter(), time.thread_time()
        app.post_message(events.Key(key, None if len(key) > 1 else key))
        end = await asyncio.wait_for(meter.hit, timeout=5.0)
        out[key].append((end - start) * 1000.0)
        out["cpu"].append((seen[0] - cpu) * 1000.0)
        out[f"cpu {key}"].append((seen[0] - cpu) * 1000.0)
        out["windows"].append((start, end))
        out["wall"].append((end - start) * 1000.0)
        await asyncio.sleep(0.037 + 0.011 * (n % 7))
    meter.watch = None


async def run_dashboard(settings: Settings, feed: Feed, probe: Probe,
                        seconds: float) -> dict[str, Any]:
    screen = DashboardScreen(settings, feed=feed)
    app = Host(settings, screen)
    async with app.run_test(size=SIZE):
        while screen.loop is None:
            await asyncio.sleep(0.01)
        meter = FrameMeter(app)
        probe.install_screen(app, screen)
        await asyncio.sleep(WARMUP_S)
        probe.measuring = True
        b0, f0, t0 = meter.bytes, meter.frames, time.perf_counter()
        drawn0 = dict(frame_now.counts)
        with GcTrace() as collections:
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - t0
            out: dict[str, Any] = {"bytes_per_s": (meter.bytes - b0) / elapsed,
                                   "frames_per_s": (meter.frames - f0) / elapsed}
            out["keys"] = await _keys(app, screen, meter)
        out["collections"] = collections.done
        out["drawn_now"] = {k: frame_now.counts[k] - drawn0[k] for k in drawn0}
        out["measured_s"] = time.perf_counter() - t0
        if isinstance(feed, PrebuiltFeed):  # again with no cycle coming: the UI's own cost
            feed.quiet = True
            await asyncio.sleep(1.5)
            out["quiet_keys"] = await _keys(app, screen, meter)
        probe.measuring = False
        if isinstance(feed, TimedFeed):  # the baseline's snapshots, after the measurements
            feed.keep = True
            for _ in range(int(KEPT * 3 / 0.1)):
                if len(feed.kept) >= KEPT:
                    break
                await asyncio.sleep(0.1)
        out["legs"] = screen._snapshot.leg_count if screen._snapshot else 0
        out["cycles"] = list(probe.done)
    return out


def streamed(tmp: Path, port: int, probe: Probe) -> tuple[dict[str, Any], list[FeedCycle]]:
    probe.install_source()
    probe.install_publisher()
    settings, engine = collect_engine(tmp, port)
    assert settings.cache.url == "memory://" and engine.cache is None  # the default: no Redis
    # Where LocalFeed.from_settings puts it: beside the collector lock of the store and source.
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.feed.lock import lock_path

    url = store_url_for(settings, is_simulated(settings, "kite"), None)
    latest = lock_path(url, "kite", Path(settings.general.data_dir)).with_suffix(".latest.json")
    feed = TimedFeed(engine, probe, settings.source.interval_s, latest if PUBLISH else None)
    try:
        out = asyncio.run(run_dashboard(settings, feed, probe, STREAM_S))
        out["tier"] = engine.last.feed if engine.last is not None else ""
        out["streamed"] = engine.last.streamed if engine.last is not None else 0
    finally:
        feed.close()
    return out, feed.kept


def baseline(tmp: Path, port: int, kept: list[FeedCycle]) -> dict[str, Any]:
    settings = bench_settings(tmp, port)
    probe = Probe()
    return asyncio.run(run_dashboard(settings, PrebuiltFeed(kept, probe), probe, STREAM_S / 2))


def _ms(values: list[float]) -> str:
    if not values:
        return "   —"
    return f"{statistics.median(values) * 1000:6.1f} / {_p(values, 0.95) * 1000:6.1f}"


def stages(cycles: list[Cycle]) -> dict[str, list[float]]:
    """Seconds per stage over the measured cycles."""
    out: dict[str, list[float]] = {k: [] for k in (
        "socket_book", "book_read", "cycle", "read_end", "views", "queue", "apply",
        "frame", "cpu", "tick_screen", "cycle_screen", "stored", "collect_cpu",
        "publish_after_frame", "publish", "publish_cpu", "publish_overlaps")}
    spans = [(c.applied[0], c.frame) for c in cycles if c.applied[0] and c.frame]
    for c in cycles:
        if not (c.applied[0] and c.frame):
            continue
        if c.published[0]:
            began, ended, cpu = c.published
            out["publish_after_frame"].append(began - c.frame)
            out["publish"].append(ended - began)
            out["publish_cpu"].append(cpu)
            out["publish_overlaps"].append(float(any(a < ended and began < b for a, b in spans)))
        out["cycle"].append(c.end - c.start)
        out["collect_cpu"].append(c.collect_cpu)
        if c.read:
            out["read_end"].append(c.end - c.read)
        if c.views[0]:
            out["views"].append(c.views[1] - c.views[0])
            out["queue"].append(c.applied[0] - c.posted)
        out["apply"].append(c.applied[1] - c.applied[0])
        if c.stored[0]:
            out["stored"].append(c.stored[1] - c.stored[0])
        out["frame"].append(c.frame - c.applied[1])
        out["cpu"].append(c.cpu)
        out["cycle_screen"].append(c.frame - c.start)
        for f in c.frames:
            out["socket_book"].append(f.book_at - f.socket_at)
            out["book_read"].append(c.read - f.book_at)
            if f.changed & c.shown:
                out["tick_screen"].append(c.frame - f.socket_at)
    return out


def _ms2(values: list[float]) -> str:
    return f"{_p(values, 0.5):5.1f} / {_p(values, 0.95):5.1f}" if values else "—"


def _behind_cycles(run: dict[str, Any]) -> list[bool]:
    """Per press (in press order), whether a cycle was applied or its frame drawn inside it."""
    spans = [(c.applied[0], c.frame) for c in run["cycles"] if c.applied[0] and c.frame]
    return [any(a < end and b > start for a, b in spans) for start, end in run["keys"]["windows"]]


def report(live: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    s, b = stages(live["cycles"]), stages(base["cycles"])
    pub = s["publish"]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} (wall-clock figures include "
          "waiting for the cores; the UI thread's CPU figures do not)")
    print(f"stream: {live['legs']} legs per snapshot, tier {live['tier']} ({live['streamed']} "
          f"quotes from the ticker in the last cycle); terminal {SIZE[0]}x{SIZE[1]}, "
          f"{live['frames_per_s']:.1f} frames/s; {len(live['cycles'])} cycles measured")
    print("stage (median / p95 ms)                 streamed        prebuilt 1 Hz")
    rows = (("socket -> book (parse, fold)", "socket_book"),
            ("book -> cycle reads it (cadence)", "book_read"),
            ("cycle (to the snapshot shown)", "cycle"),
            ("  of which after the book read", "read_end"),
            ("  its thread's CPU (waits excluded)", "collect_cpu"),
            ("cycle stored, after it is posted", "stored"),
            ("worker formats shown chain", "views"),
            ("UI message queued -> handled", "queue"),
            ("UI apply (show_snapshot)", "apply"),
            ("apply -> frame written", "frame"),
            ("  UI thread CPU, apply to frame", "cpu"),
            ("cycle start -> frame written", "cycle_screen"))
    for label, key in rows:
        print(f"  {label:<36} {_ms(s[key]):>17}   {_ms(b[key]):>17}")
    if pub:
        print(f"publication (latest-cycle file, cache.url = memory://): {len(pub)} cycles, wall "
              f"{_ms(pub)} ms, publisher CPU {_ms(s['publish_cpu'])} ms; started "
              f"{_ms(s['publish_after_frame'])} ms after the cycle's frame; "
              f"{int(sum(s['publish_overlaps']))} overlapped a cycle's apply to frame")
    else:
        print("publication: none (--no-publish, or no cycle published while measured)")
    ticks = s["tick_screen"]
    tick95 = _p(ticks, 0.95) * 1000
    print(f"tick to screen: p50 {_p(ticks, 0.5) * 1000:.0f} ms, p95 {tick95:.0f} ms over "
          f"{len(ticks)} frames that changed an LTP on screen (goal p95 <= "
          f"{GOAL_TICK_P95_MS:.0f} ms: {'met' if tick95 <= GOAL_TICK_P95_MS else 'MISSED'})")
    keys = [v for k in KEYS for v in live["keys"][k]]
    base_keys = [v for k in KEYS for v in base["keys"][k]]
    key95 = _p(keys, 0.95)
    print(f"key to frame while streaming: p50 {statistics.median(keys):.1f} ms, p95 {key95:.1f} "
          f"ms (goal <= {GOAL_KEY_P95_MS:.0f} ms: "
          f"{'met' if key95 <= GOAL_KEY_P95_MS else 'MISSED'}); prebuilt 1 Hz: p50 "
          f"{statistics.median(base_keys):.1f} ms, p95 {_p(base_keys, 0.95):.1f} ms")
    print(f"  UI thread CPU per key to frame: p50 {_p(live['keys']['cpu'], 0.5):.1f} ms, p95 "
          f"{_p(live['keys']['cpu'], 0.95):.1f} ms (prebuilt: p95 {_p(base['keys']['cpu'], 0.95):.1f} "
          "ms); the rest of the wait is other threads and processes holding the cores or the GIL")
    print("  by key (p50 / p95 ms)      streamed: wall     UI CPU    prebuilt 1 Hz: wall     UI CPU")
    quiet = base["quiet_keys"]
    for k in KEYS:
        print(f"    {k:<5} {_ms2(live['keys'][k]):>30} {_ms2(live['keys'][f'cpu {k}']):>13} "
              f"{_ms2(base['keys'][k]):>19} {_ms2(base['keys'][f'cpu {k}']):>13}")
    print("  the same dashboard with no cycle arriving during the presses (the UI's own cost): "
          + ", ".join(f"{k} {_ms2(quiet[k])} ms (UI CPU {_ms2(quiet[f'cpu {k}'])})" for k in KEYS))
    for name, run in (("streamed", live), ("prebuilt", base)):
        behind = _behind_cycles(run)
        waits = [w for w, b in zip(run["keys"]["wall"], behind, strict=True) if b]
        gcs = [g for g in run["keys"]["gc"] if g > 1.0]
        print(f"  {name}: {len(waits)} of {len(behind)} presses overlapped a cycle's apply or "
              f"frame (their p95 {_p(waits, 0.95):.1f} ms); {len(gcs)} held up by garbage "
              f"collection (max {max(gcs, default=0.0):.1f} ms)")
    for name, run in (("streamed", live), ("prebuilt", base)):
        done = run["collections"]
        print(f"  garbage collections, {name} (any thread, {run['measured_s']:.0f} s): " + "; ".join(
            f"gen{g} {sum(c.generation == g for c in done)} (max "
            f"{max((c.ms for c in done if c.generation == g), default=0.0):.1f} ms, CPU "
            f"{sum(c.cpu_ms for c in done if c.generation == g):.0f} ms in all, max "
            f"{max((c.cpu_ms for c in done if c.generation == g), default=0.0):.1f})"
            for g in range(3)))
    for name, run in (("streamed", live), ("prebuilt", base)):
        drawn = run["drawn_now"]
        print(f"  frames of cycles and keys written by their handler, {name}: {drawn['drawn']} "
              f"(left to Textual's relay: {drawn['left']})")
    print(f"terminal bytes while streaming: {live['bytes_per_s'] / 1000:.1f} KB/s (goal <= "
          f"{GOAL_BYTES_PER_S / 1000:.0f} KB/s: "
          f"{'met' if live['bytes_per_s'] <= GOAL_BYTES_PER_S else 'MISSED'}); prebuilt 1 Hz: "
          f"{base['bytes_per_s'] / 1000:.1f} KB/s")
    return {"tick_p95_ms": tick95, "key_p95_ms": key95, "bytes_per_s": live["bytes_per_s"],
            "stages_ms": {k: statistics.median(v) * 1000 for k, v in s.items() if v},
            "published": len(pub),
            "key_cpu_p95_ms": _p(live["keys"]["cpu"], 0.95),
            "baseline_key_p95_ms": _p(base_keys, 0.95), "baseline_bytes_per_s": base["bytes_per_s"],
            "quiet_key_p95_ms": _p([v for k in KEYS for v in quiet[k]], 0.95),
            "gc_held_presses": sum(g > 1.0 for g in live["keys"]["gc"]),
            "gc_max_ms": max(live["keys"]["gc"], default=0.0),
            "full_gc_max_ms": max((c.ms for c in live["collections"] if c.generation == 2),
                                  default=0.0)}


def main() -> dict[str, Any]:
    global STREAM_S, PUBLISH
    args = [a for a in sys.argv[1:] if a != "--no-publish"]
    PUBLISH = len(args) == len(sys.argv) - 1
    if args:
        STREAM_S = float(args[0])
    import logging

    logging.basicConfig(level=logging.ERROR)
    port = free_port()
    server = start_simulator(port, START)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            live, kept = streamed(Path(tmp), port, Probe())
    finally:
        server.terminate()
        server.wait(timeout=10)
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(Path(tmp), port, kept)
    return report(live, base)


if __name__ == "__main__":
    main()
