"""A full-chain collection cycle replayed single-threaded from recorded source answers: the figure
to count instructions (valgrind's cachegrind) and garbage (tracked objects, young collections)
of, which the load of a shared machine does not move.

Why: bench_cycle's streamed cycle shares the GIL with the ticker's thread and the simulator's
server, so its wall and even CPU times follow the machine's load. Here the engine's own work
runs alone: `record` runs bench_cycle's streamed engine (seed 7, full chain of the two nearest
expiries of all five indices, simulated clock stepped 1 s a cycle) and saves what the source
answered each cycle (instrument dump, spot quotes, the legs' QuoteTables, feed tier, per-trade
flow, notices); `run` replays those answers through a fresh CollectionEngine, as `optui`
runs a cycle on the tick-to-screen path:

    collect_shown (with the alert rules) -> the dashboard's cycle_views of the shown chain
    (NIFTY, this_week) -> the feed's payload (snapshot_payload, JSON text) -> store_pending
    (SQLite store, day state; `--files`: the legacy JSON/CSV leg files)

Printed per step: thread CPU ms (p50), Python objects tracked by the collector that a snapshot
holds (reachable from it, not shared with the engine), net tracked allocations per cycle
(gc.get_count's young-generation growth with collection off) and, with collection on, young
collections (gen0, gen1) per cycle and extrapolated to 30 cycles (30 s at the 1 s cadence) and
the full ones. The heap is frozen after the two warm-up cycles, as a collector freezes it
(optui.heap), so a full collection walks only what arrived since.

Instruction counts: run `run` twice under cachegrind with different cycle counts; the
difference over the difference of cycles is a cycle's instructions (start-up cancels):

    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        python benchmarks/cycle_replay.py run FILE --cycles 5
    (again with --cycles 25; (I25 - I5) / 20)

`--steps collect,views,payload,store` picks the steps (default all).

Measured (20 recorded cycles of seed 7 from 11:00, 2,408 legs; instructions a cycle, before /
after the legs went to columns, optui.leg_rows): collect 239.2 M / 116.0 M; collect and views
257.0 M / 127.7 M; all four steps 947.2 M / 697.6 M (the payload's JSON text is most of the
rest: ~40 ms of CPU a cycle at 2 MB, json's own float formatting). Young collections per 30
cycles (collection on): collect 116 gen0 / 10 gen1 -> 4 / 0; collect and views 148 / 13 ->
8 / 0; all four 331 / 30 -> 184 / 16. Tracked objects a snapshot holds: 2,456 -> 113.
Run: python benchmarks/cycle_replay.py record FILE [--cycles 40]
     python benchmarks/cycle_replay.py run FILE [--cycles N] [--steps ...] [--files]
"""

from __future__ import annotations

import argparse
import gc
import pickle
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from optui.collectors.engine import CollectionEngine  # noqa: E402
from optui.collectors.source import MarketSource  # noqa: E402
from optui.models import Instrument, Quote  # noqa: E402

RECORDED = ("quotes", "quote_tables", "take_feed", "take_tick_flow", "take_notices", "now")
STEPS = ("collect", "views", "payload", "store")


def record(path: Path, cycles: int) -> None:
    """Run bench_cycle's streamed engine for `cycles` cycles and save the source's answers."""
    import bench_cycle

    from optui.collectors.stream_catch_up import wait_caught_up

    bench_cycle.OPTIONS["alerts"] = True
    answers: dict[str, list[Any]] = {name: [] for name in RECORDED}
    with tempfile.TemporaryDirectory() as tmp, \
            bench_cycle.streamed_engine(Path(tmp)) as (engine, source, clock):
        for name in RECORDED:
            original = getattr(source, name)

            def kept(*args: Any, _original: Any = original, _name: str = name) -> Any:
                out = _original(*args)
                if recording:
                    answers[_name].append(out)
                return out

            setattr(source, name, kept)
        recording = False
        instruments = source.instruments()
        for n in range(bench_cycle.WARMUP + cycles):
            if n:
                clock.t += 1.0
                if not wait_caught_up(source, source.now(), timeout_s=30):
                    raise RuntimeError("the stream did not catch up")
            recording = n >= bench_cycle.WARMUP
            engine.collect_once()
            if recording and engine.last.feed != "stream":
                raise RuntimeError(f"cycle {n} was not streamed: {engine.last.feed}")
        info = {"name": source.name, "label": source.label, "snapshot_s": source.snapshot_s}
    with path.open("wb") as fh:
        pickle.dump({"instruments": instruments, "answers": answers, "info": info,
                     "options": {k: bench_cycle.OPTIONS[k] for k in
                                 ("start", "chain_strikes", "full_chain_expiries")}}, fh)
    print(f"recorded {cycles} cycles to {path}")


class RecordedSource(MarketSource):
    """Answers each call with the next recorded answer of that method."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._instruments = data["instruments"]
        self._answers = {name: list(values) for name, values in data["answers"].items()}
        self._at = {name: 0 for name in self._answers}
        self.name = data["info"]["name"]
        self.label = data["info"]["label"]
        self.snapshot_s = data["info"]["snapshot_s"]

    def _next(self, name: str) -> Any:
        values = self._answers[name]
        i = self._at[name]
        self._at[name] = i + 1
        return values[i % len(values)]

    def instruments(self) -> list[Instrument]:
        return self._instruments

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        raise NotImplementedError("a recorded source answers quotes and quote_tables only")

    def quotes(self, keys: Sequence[str]) -> dict[str, Quote]:
        return self._next("quotes")  # type: ignore[no-any-return]

    def quote_tables(self, batches: Sequence[Sequence[str]]) -> list[Any]:
        return self._next("quote_tables")  # type: ignore[no-any-return]

    def take_feed(self) -> Any:
        return self._next("take_feed")

    def take_tick_flow(self) -> Any:
        return self._next("take_tick_flow")

    def take_notices(self) -> Any:
        return self._next("take_notices")

    def now(self) -> Any:
        return self._next("now")

    def follow_plan(self, plans: Any, spots: Any) -> None:
        """Nothing to subscribe: the answers are recorded."""


def tracked_in(root: Any, shared: set[int]) -> int:
    """Objects tracked by the cyclic collector reachable from `root`, not in `shared`."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        key = id(obj)
        if key in seen or key in shared or not gc.is_tracked(obj):
            continue
        seen.add(key)
        todo.extend(gc.get_referents(obj))
    return len(seen)


def run(path: Path, cycles: int, steps: set[str], files: bool, gc_off: bool) -> None:
    import bench_cycle

    from optui.alerts import AlertEngine
    from optui.feed.local import cycle_payload
    from optui.feed.model import FeedCycle
    from optui.screens.dashboard_reads import cycle_views
    from optui.storage.cache import dumps as cache_dumps

    with path.open("rb") as fh:
        data = pickle.load(fh)
    bench_cycle.OPTIONS.update(data["options"])
    bench_cycle.OPTIONS["files"] = files
    cpu: dict[str, list[float]] = {s: [] for s in STEPS}
    net: list[int] = []
    held: list[int] = []
    young: list[tuple[int, int, int]] = []
    encode_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        from optui.storage.sqlite_store import SQLiteStore

        settings = bench_cycle.settings(root)
        store = SQLiteStore(root / "cycle.db") if "store" in steps else None
        engine = CollectionEngine(settings, RecordedSource(data), store, state_dir=root / "state",
                                  out_dir=root / "files")
        engine.alerts = AlertEngine.from_settings(settings, store)
        shared: set[int] = set()
        alive: list[Any] = []
        for n in range(2 + cycles):
            if n == 2:  # after the warm-up: what the engine keeps is not the snapshot's
                gc.collect()
                alive = gc.get_objects()  # kept: a new object cannot take one of their ids
                shared = {id(o) for o in alive}
                gc.freeze()  # as a collector freezes its heap after its first cycles (optui.heap)
                if gc_off:
                    gc.disable()
            measured = n >= 2
            before = gc.get_count()[0] if gc_off else 0
            stats0 = [s["collections"] for s in gc.get_stats()]
            t = time.thread_time()
            snap = engine.collect_shown()
            t1 = time.thread_time()
            if "views" in steps:
                cycle = FeedCycle(snapshot=snap)
                cycle_views(settings, cycle, ("NIFTY", "this_week"))
            t2 = time.thread_time()
            if "payload" in steps:  # what the publisher sends (cache channel, latest file)
                payload = cycle_payload(FeedCycle(snapshot=snap))
                te = time.thread_time()
                cache_dumps(payload)
                encode_cpu.append(te - t2)
                del payload
            t3 = time.thread_time()
            if measured:
                held.append(tracked_in(snap, shared))
            t3b = time.thread_time()
            if "store" in steps:
                engine.store_pending(late=False)
            else:
                engine._pending = None
            t4 = time.thread_time()
            if measured:
                cpu["collect"].append(t1 - t)
                cpu["views"].append(t2 - t1)
                cpu["payload"].append(t3 - t2)
                cpu["store"].append(t4 - t3b)
                if gc_off:
                    net.append(gc.get_count()[0] - before)
                else:
                    stats1 = [s["collections"] for s in gc.get_stats()]
                    young.append((stats1[0] - stats0[0], stats1[1] - stats0[1],
                                  stats1[2] - stats0[2]))
            del snap
            if gc_off and measured:
                gc.collect()  # the next cycle's young count starts from nothing
        engine.close()
        del alive
    gc.unfreeze()
    gc.enable()
    ms = {s: sorted(v)[len(v) // 2] * 1000 for s, v in cpu.items() if v}
    print(f"{cycles} cycles replayed; steps {','.join(s for s in STEPS if s in steps)}")
    print("thread CPU p50 ms: " + ", ".join(f"{s} {ms[s]:.1f}" for s in STEPS if s in steps))
    if encode_cpu:
        print(f"  of the payload, encoding the snapshot: p50 "
              f"{sorted(encode_cpu)[len(encode_cpu) // 2] * 1000:.1f} ms")
    print(f"tracked objects a snapshot holds: {sorted(held)[len(held) // 2]}")
    if gc_off:
        print(f"net tracked allocations per cycle (collection off): p50 "
              f"{sorted(net)[len(net) // 2]}")
    else:
        g0 = sum(y[0] for y in young) / len(young)
        g1 = sum(y[1] for y in young) / len(young)
        g2 = sum(y[2] for y in young)
        print(f"young collections per cycle: gen0 {g0:.1f}, gen1 {g1:.2f} "
              f"(per 30 cycles: {30 * g0:.0f} / {30 * g1:.0f}); full collections: {g2}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("record", "run"))
    parser.add_argument("file")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--files", action="store_true")
    parser.add_argument("--gc-off", action="store_true",
                        help="count net tracked allocations with the collector off")
    args = parser.parse_args(argv)
    if args.mode == "record":
        record(Path(args.file), args.cycles)
    else:
        run(Path(args.file), args.cycles, set(args.steps.split(",")), args.files, args.gc_off)


if __name__ == "__main__":
    main(sys.argv[1:])
