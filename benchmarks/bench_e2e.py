"""End to end at full chain: a tick in at the socket to the number on the dashboard.

Why: traders read the chain as it moves. The simulated exchange (its own process, as a real one
is remote) streams every strike of the two nearest expiries of all five indices, with the
indices and futures, in full mode over Kite's WebSocket protocol; the dashboard runs headless
at 160x48 in this process. Path measured, through what the code base has:

    TickerSource (3 connections, packets parsed) -> TickAggregator -> per-instrument snapshot
    -> a Feed cycle (optui.feed.model.Feed, the dashboard's source of cycles) -> the
    dashboard's worker formats the shown chain -> SnapshotCollected -> widgets -> frame written

Figures (goals from the issue):
- tick to screen: from the moment a frame's bytes are handed over by the socket until the
  first terminal frame written after a snapshot holding its ticks is shown: p50/p95 (goal p95
  <= 100 ms);
- key to frame while it streams: `t` / `i` posted as the terminal driver does, until the frame
  showing the change is written (goal p95 <= 30 ms);
- bytes written to the terminal per second while it streams (goal <= 20 KB/s), counted by
  rendering every frame as a truecolor terminal would receive it.
Baseline in the same run: the same dashboard fed hand-built full chains at 1 Hz with no stream
(the UI's own cost). Run: `python benchmarks/bench_e2e.py` (about a minute).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from textual import events

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sim_ticker import Exchange  # noqa: E402
from bench_tui import SIZE, FrameMeter, Host, SampleEngine, bench_settings  # noqa: E402

from optui.collectors.tick_aggregator import TickAggregator, TickSnapshot  # noqa: E402
from optui.collectors.ticker_source import TickerSource  # noqa: E402
from optui.feed.model import Feed, FeedCycle  # noqa: E402
from optui.indices import offset_label  # noqa: E402
from optui.models import (  # noqa: E402
    BucketStats,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
)
from optui.screens.dashboard import DashboardScreen  # noqa: E402
from optui.simulator.exchange import SimulatedExchange  # noqa: E402
from optui.simulator.instruments import Listing  # noqa: E402
from optui.tick_packets import TickBatch  # noqa: E402
from optui.timeutil import IST  # noqa: E402

START = "2026-11-17 11:00"
WARMUP_S = 6.0
STREAM_S = 20.0
PRESSES = 40
GOAL_TICK_P95_MS = 100.0
GOAL_KEY_P95_MS = 30.0
GOAL_BYTES_PER_S = 20_000.0
_WEEKLY = ("NIFTY", "SENSEX")


def full_chain() -> tuple[list[Listing], dict[tuple[str, date], str]]:
    """The listed indices, futures and every option of the two nearest expiries of each index,
    and the dashboard bucket of each (index, expiry)."""
    exchange = SimulatedExchange(seed=7, start=datetime.fromisoformat(START).replace(tzinfo=IST))
    rows = exchange.instruments()
    expiries: dict[str, set[date]] = {}
    for r in rows:
        if r.expiry is not None and r.instrument_type in ("CE", "PE"):
            expiries.setdefault(r.index_key, set()).add(r.expiry)
    buckets: dict[tuple[str, date], str] = {}
    for key, days in expiries.items():
        names = ("this_week", "next_week") if key in _WEEKLY else ("this_month", "next_month")
        for name, day in zip(names, sorted(days)[:2], strict=False):
            buckets[(key, day)] = name
    picked = [r for r in rows if r.is_index or (r.index_key, r.expiry) in buckets]
    return picked, buckets


class TickFeed(Feed):
    """Cycles from the ticker: each waits for new ticks and is the aggregator's state then.

    Stand-in for the streaming feed being built (to be replaced by it once the engine's
    streaming source is on main): snapshots carry prices, volume and OI from
    the ticks (analytics such as IV are left empty). `frames` maps each snapshot (by id) to the
    (socket time, frame number) of the frames whose ticks it holds first.
    """

    def __init__(self, root: str, rows: list[Listing], buckets: dict[tuple[str, date], str]) -> None:
        self.root = root
        self.rows = rows
        self.buckets = buckets
        self.tokens = np.array([r.instrument_token for r in rows], dtype=np.int64)
        self.agg = TickAggregator(self.tokens)
        self.slot = {int(t): i for i, t in enumerate(self.agg.tokens)}
        self._lock = threading.Lock()
        self._fresh = threading.Condition(self._lock)
        self._arrived: list[tuple[float, int]] = []
        self.frames: dict[int, list[tuple[float, int]]] = {}
        self.received = 0
        self.stages: list[tuple[float, float]] = []  # (socket to cycle start, snapshot build) s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._source: TickerSource | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        feed = self

        class Timed(TickerSource):
            def _parse(self, shard: Any, frame: bytes) -> TickBatch | None:
                feed._socket_at = time.perf_counter()
                return super()._parse(shard, frame)

        def on_ticks(_shard: int, batch: TickBatch) -> None:
            with self._lock:
                self.agg.add(batch)
                self.received += 1
                self._arrived.append((self._socket_at, self.received))
                self._fresh.notify_all()

        self._socket_at = 0.0
        self._source = Timed("sim_key", "sim_token", dict.fromkeys(self.tokens.tolist(), "full"),
                             on_ticks, root=self.root)
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            ready.set()
            assert self._source is not None
            self._loop.run_until_complete(self._source.run())

        self._thread = threading.Thread(target=run, name="bench-ticker", daemon=True)
        self._thread.start()
        ready.wait()
        return f"ticker at {self.root}: {len(self.tokens)} instruments in full mode"

    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        with self._lock:
            if not self._arrived and not self._fresh.wait(timeout_s):
                return None
            arrived, self._arrived = self._arrived, []
            state = self.agg.snapshot()
        built = time.perf_counter()
        snapshot = self.snapshot(state)
        done = time.perf_counter()
        self.stages.append((built - arrived[0][0], done - built))
        self.frames[id(snapshot)] = arrived
        return FeedCycle(snapshot)

    def snapshot(self, s: TickSnapshot) -> Snapshot:
        """A dashboard snapshot of the tick state (prices, volume, OI by strike)."""
        at = s.at
        out = Snapshot(timestamp=at, source="sim", label="SIMULATED")
        spot: dict[str, float] = {}
        for r in self.rows:
            if r.is_index:
                spot[r.index_key] = float(s.last_price[self.slot[r.instrument_token]])
        legs: dict[str, list[LegRecord]] = {k: [] for k in spot}
        stats: dict[str, dict[str, BucketStats]] = {k: {} for k in spot}
        chains: dict[tuple[str, date], list[Listing]] = {}
        for r in self.rows:
            if r.instrument_type in ("CE", "PE") and r.expiry is not None:
                chains.setdefault((r.index_key, r.expiry), []).append(r)
        nan = float("nan")
        for (key, expiry), members in chains.items():
            bucket = self.buckets[(key, expiry)]
            strikes = sorted({r.strike for r in members})
            atm = min(strikes, key=lambda k: abs(k - spot[key]))
            step = strikes[1] - strikes[0] if len(strikes) > 1 else 1.0
            dte = (expiry - at.astimezone(IST).date()).days
            stats[key][bucket] = BucketStats(bucket, expiry, float(dte), nan, atm, nan, nan, nan,
                                             nan, nan, nan, nan, nan, nan, nan, nan, len(strikes))
            for r in members:
                i = self.slot[r.instrument_token]
                last = float(s.last_price[i])
                close = float(s.close[i])
                legs[key].append(LegRecord(
                    timestamp=at, index=key, bucket=bucket,
                    side="CALL" if r.instrument_type == "CE" else "PUT", expiry=expiry,
                    atm_strike=atm, strike=r.strike,
                    strike_offset=offset_label(round((r.strike - atm) / step)),
                    last_price=last, average_price=float(s.average_price[i]),
                    volume=int(s.volume[i]), oi=float(s.oi[i]),
                    oi_open=float(s.oi[i] - s.oi_change[i]), oi_change=float(s.oi_change[i]),
                    iv=nan, days_to_expiry=float(dte), ohlc_open=nan, ohlc_high=nan, ohlc_low=nan,
                    ohlc_close=close, net_change=round(last - close, 2),
                    net_change_percent=nan, day_change=nan, day_change_percent=nan,
                    tradingsymbol=r.tradingsymbol, instrument_token=r.instrument_token,
                    bid=float(s.bid[i]), ask=float(s.ask[i])))
        for key, price in spot.items():
            atm = next(iter(stats[key].values())).atm_strike if stats[key] else nan
            overview = OverviewRecord(at, key, atm, price, nan, nan, nan, nan, nan, nan, nan, nan,
                                      nan, nan, buckets=stats[key])
            out.indices[key] = IndexSnapshot(key, overview, legs[key])
        return out

    def exchange_now(self) -> datetime | None:
        with self._lock:
            t = self.agg.exchange_time
        return datetime.fromtimestamp(t, UTC) if t else None

    def close(self) -> None:
        if self._loop is not None and self._source is not None:
            asyncio.run_coroutine_threadsafe(self._source.stop(), self._loop)
        if self._thread is not None:
            self._thread.join(timeout=10)


class ScreenMeter(FrameMeter):
    """FrameMeter that also times each tick frame from the socket to the first terminal frame
    written after the snapshot holding it was shown."""

    def __init__(self, app: Any, screen: DashboardScreen, feed: TickFeed) -> None:
        super().__init__(app)
        self.tick_ms: list[float] = []
        self.paint_ms: list[float] = []  # from show_snapshot to the frame written
        self.shown_at = 0.0
        self._shown: list[tuple[float, int]] = []
        self.measuring = False
        show = screen.show_snapshot
        display = app._display

        def shown(snapshot: Snapshot, *args: Any, **kwargs: Any) -> None:
            self.shown_at = time.perf_counter()
            show(snapshot, *args, **kwargs)
            self._shown.extend(feed.frames.pop(id(snapshot), []))

        def displayed(screen_: Any, renderable: Any) -> None:
            display(screen_, renderable)
            if renderable is None or app._batch_count or not self._shown:
                return
            now = time.perf_counter()
            if self.measuring:
                self.tick_ms.extend((now - at) * 1000.0 for at, _ in self._shown)
                self.paint_ms.append((now - self.shown_at) * 1000.0)
            self._shown = []

        screen.show_snapshot = shown  # type: ignore[method-assign]
        app._display = displayed


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


async def _keys(app: Any, screen: DashboardScreen, meter: FrameMeter) -> list[float]:
    loop = asyncio.get_running_loop()
    out: list[float] = []
    for n in range(PRESSES):
        key = "t" if n % 2 == 0 else "i"
        before = (screen.timeframe, screen.index)
        meter.watch = lambda before=before: (screen.timeframe, screen.index) != before
        meter.hit = loop.create_future()
        start = time.perf_counter()
        app.post_message(events.Key(key, key))
        end = await asyncio.wait_for(meter.hit, timeout=5.0)
        out.append((end - start) * 1000.0)
        await asyncio.sleep(0.037 + 0.011 * (n % 7))
    meter.watch = None
    return out


async def streamed(root: str, tmp: Path) -> dict[str, Any]:
    rows, buckets = full_chain()
    feed = TickFeed(root, rows, buckets)
    settings = bench_settings(tmp)
    screen = DashboardScreen(settings, feed=feed)
    app = Host(screen)
    async with app.run_test(size=SIZE):
        meter = ScreenMeter(app, screen, feed)
        await asyncio.sleep(WARMUP_S)
        meter.measuring = True
        b0, f0, r0, t0 = meter.bytes, meter.frames, feed.received, time.perf_counter()
        await asyncio.sleep(STREAM_S)
        elapsed = time.perf_counter() - t0
        out = {"bytes_per_s": (meter.bytes - b0) / elapsed,
               "frames_per_s": (meter.frames - f0) / elapsed,
               "tick_frames_per_s": (feed.received - r0) / elapsed,
               "tick_ms": list(meter.tick_ms), "paint_ms": list(meter.paint_ms),
               "wait_ms": [a * 1000 for a, _ in feed.stages[-20:]],
               "build_ms": [b * 1000 for _, b in feed.stages[-20:]]}
        out["key_ms"] = await _keys(app, screen, meter)
        out["legs"] = screen._snapshot.leg_count if screen._snapshot else 0
    feed.close()
    return out


async def hand_built(tmp: Path) -> dict[str, Any]:
    """Baseline: the same dashboard fed hand-built full chains at 1 Hz, no stream."""
    settings = bench_settings(tmp)
    screen = DashboardScreen(settings, engine_factory=lambda _s: SampleEngine())
    app = Host(screen)
    async with app.run_test(size=SIZE):
        meter = FrameMeter(app)
        await asyncio.sleep(WARMUP_S / 2)
        b0, t0 = meter.bytes, time.perf_counter()
        await asyncio.sleep(STREAM_S / 2)
        out = {"bytes_per_s": (meter.bytes - b0) / (time.perf_counter() - t0)}
        out["key_ms"] = await _keys(app, screen, meter)
    return out


def main() -> dict[str, Any]:
    import tempfile

    exchange = Exchange("arrays", START)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            live = asyncio.run(streamed(exchange.root, Path(tmp)))
    finally:
        exchange.close()
    with tempfile.TemporaryDirectory() as tmp:
        base = asyncio.run(hand_built(Path(tmp)))
    ticks, keys = live["tick_ms"], live["key_ms"]
    print(f"stream: {live['legs']} legs on the dashboard, {live['tick_frames_per_s']:.1f} tick "
          f"frames/s received; terminal {SIZE[0]}x{SIZE[1]}, {live['frames_per_s']:.1f} frames/s")
    tick95, key95 = _p(ticks, 0.95), _p(keys, 0.95)
    print("  medians: socket to the dashboard asking for the cycle "
          f"{statistics.median(live['wait_ms']):.0f} ms, snapshot of the tick state "
          f"{statistics.median(live['build_ms']):.0f} ms, show_snapshot to frame written "
          f"{statistics.median(live['paint_ms']):.0f} ms (the rest: formatting the shown chain "
          "in the dashboard's worker)")
    print(f"tick to screen: p50 {_p(ticks, 0.5):.0f} ms, p95 {tick95:.0f} ms over {len(ticks)} "
          f"tick frames (goal p95 <= {GOAL_TICK_P95_MS:.0f} ms: "
          f"{'met' if tick95 <= GOAL_TICK_P95_MS else 'MISSED'})")
    print(f"key to frame while streaming: p50 {statistics.median(keys):.1f} ms, p95 {key95:.1f} ms "
          f"(goal <= {GOAL_KEY_P95_MS:.0f} ms: {'met' if key95 <= GOAL_KEY_P95_MS else 'MISSED'}); "
          f"hand-built 1 Hz chains: p95 {_p(base['key_ms'], 0.95):.1f} ms")
    print(f"terminal bytes while streaming: {live['bytes_per_s'] / 1000:.1f} KB/s (goal <= "
          f"{GOAL_BYTES_PER_S / 1000:.0f} KB/s: "
          f"{'met' if live['bytes_per_s'] <= GOAL_BYTES_PER_S else 'MISSED'}); hand-built 1 Hz "
          f"chains: {base['bytes_per_s'] / 1000:.1f} KB/s")
    return {"stream": live, "hand_built": base}


if __name__ == "__main__":
    main()
