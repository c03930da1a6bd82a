"""One collection cycle at full chain, streamed: quotes from the tick book to rows in SQLite.

Why: the streaming collector snapshots every second, so a cycle over the whole chains of all
five indices (every listed strike of every expiry bucket quoted for the aggregates, ~3,100
instruments; a leg recorded for every strike of the two nearest expiries, ~2,400) must take a
small fraction of a second on a 2-core machine. Goal: a 60 ms p50 cycle.

Setup: the in-process simulated exchange (seed 7) serves REST and Kite's WebSocket ticker on a
loopback port; a StreamingSource answers the engine's quote calls from its TickBook; the engine
(`CollectionEngine.collect_once`) runs the analytics, builds the snapshot and writes it to a
SQLite file (legacy JSON/CSV files off, as a server runs at a 1 s cadence). The simulated clock
is stepped 1 s between cycles and each cycle starts once the stream has caught up, so every
run collects the same market moments and the stored rows can be compared run to run.

Printed per phase (timers around the engine's own functions) and for the whole cycle: wall ms
p50 and p95, and the CPU ms (p50) of the cycle's own thread. On a shared machine the wall time
follows the load (the simulator's server threads, the ticker thread and other processes
compete for the cores and the GIL); the thread's CPU is the steadier figure. The book's answer
runs on the ticker's thread: "quotes" is mostly waiting for it. Baseline in the same run: the
same cycles with each quote call answered as Kite /quote dicts turned into Quote objects (the
path every streamed quote took before the book answered in columns), timed under "spots".

`--digest FILE`: also add digests of this run to FILE under its run options: every stored row
(measurement, time, tags, fields with exact float values), every snapshot shown after the
warm-up (all its fields but the cycle's duration: indices, legs, flow by strike, warnings and,
with `--alerts`, the alerts; floats exact, dicts in their order) and, with `--files`, the leg
files' bytes. `--check FILE` compares with the captures of the same options; by default
benchmarks/bench_cycle_digests.json, captures of the code before the cycle's per-leg steps
went to columns (commit ea74751) made on this machine (numpy's vectorised exp and log may
round differently on another CPU) for `bench_cycle.py 10 --alerts`, `6 --alerts --start
"2026-11-25 09:15"`, `6 --alerts --chain-strikes 8 --full-chain-expiries 0`, `6 --files` and
`10`. The snapshots-shown captures were taken again when the buckets gained the whole chain's
gamma exposure (`BucketStats.gex_cr`): the earlier snapshots equal the new ones with that field
removed (checked on `6 --alerts`). All were captured again when the simulator's option volume
by days to expiry was calibrated to the real market's premium turnover (the later expiries trade
less, so their legs' volumes and flows changed); the cycle's code was the same, and before that
change the captures held (bench_cycle.py 10 and 10 --alerts identical).
`--rows F` / `--shown F`: every stored row / snapshot shown, one line each, to F (to
find what differs).
`--profile`: cProfile (CPU of the cycle's thread) of the measured cycles, top functions.
`--alerts`: with the alert rules (AlertEngine, as `optui collect` runs them), timed apart.
`--files`: with the legacy JSON/CSV files (on by default in the settings), timed apart.
`--no-baseline`: the book-built run only.
Run: python benchmarks/bench_cycle.py [cycles] [--digest F | --check F] [--profile]

Measured on the shared 2-core machine, the cycle's own work (CollectionEngine.collect_shown with
the alert rules over 40 recorded full-chain cycles replayed single-threaded, 2,408 legs; counted
with valgrind's cachegrind, which the machine's load does not move): 185.8 M instructions a
cycle before the per-leg steps went to columns, 139.0 M after (-25 %); all five digests above
identical. The work the cycle asks of the ticker's thread (the book's answer, cProfile): 23 ->
10 ms a cycle; its thread CPU (no profiler, 15 cycles, load 4): 10.4 ms -> 4.4 ms once each
batch's per-key lookups (tokens, modes, subscribed, connection, book row) are kept between
cycles and the answer gathers the rows without a missing-row pass, -> 2.8 ms once each call's
per-trade flow stays in columns to the engine (a FlowTable, no dict per leg).
The ticker's frames of one exchange second (parse, known-instrument filter, book and flow
folds; two connections, ~3,100 instruments; cachegrind over 3 recorded seconds): 14.4 M ->
11.2 M instructions, about 6 ms of thread CPU a second. The store after the post
(`store_pending`: day state, leg and overview rows, strike and index flow bars; thread CPU,
load 4): ~17-22 ms a cycle, spread over the state file (~3 ms; its previous quotes packed
11.75 M -> 9.8 M instructions), SQLite writes of the legs (~2.8 ms) and of the other points
(~3 ms), the legs' columns (~1 ms) and building the flow bars' and overview points.
With a snapshot's legs held as columns (optui.leg_rows: a LegRecord built only for a row read;
benchmarks/cycle_replay.py, 20 recorded cycles replayed single-threaded, heap frozen after the
warm-up, cachegrind): collect_shown with the alert rules 239.2 M -> 116.0 M instructions a
cycle (-52 %); with the dashboard's formatting of the shown chain (the tick-to-screen path)
257.0 M -> 127.7 M; with the feed's JSON payload and the store too 947.2 M -> 697.6 M; tracked objects a snapshot holds 2,456 -> ~110; young
collections per 30 cycles of collect_shown and the shown chain 148 gen0 / 13 gen1 -> 8 / 0 (of
all four steps 331 / 30 -> 184 / 16, the rest being the payload's dict per leg and the store's
rows); all five digests above identical. What remains of the cycle is numpy over the legs'
columns and per bucket, not a Python step or object per leg.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import json
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from optui.collectors.engine import CollectionEngine
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.source import MarketSource
from optui.collectors.stream_catch_up import wait_caught_up
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.leg_rows import LegRows
from optui.models import Snapshot
from optui.simulator.server import serve
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

START = datetime(2026, 11, 25, 11, 0, tzinfo=IST)  # a Wednesday, mid-session
OPTIONS: dict[str, Any] = {"start": START, "chain_strikes": 0, "full_chain_expiries": 2}
GOAL_P50_MS = 60.0
DIGESTS = Path(__file__).resolve().parent / "bench_cycle_digests.json"
WARMUP = 2


class FakeClock:
    """The simulator's monotonic clock, stepped by the benchmark."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class PhaseTimer:
    """Wall time spent inside chosen functions, per cycle (outermost call only)."""

    def __init__(self) -> None:
        self.cycle: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.history: dict[str, list[float]] = defaultdict(list)
        self.cpu_history: dict[str, list[float]] = defaultdict(list)
        self._depth: dict[str, int] = defaultdict(int)
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:  # another version of the engine: not timed
            return
        timer = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            timer._depth[name] += 1
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                timer._depth[name] -= 1
                if not timer._depth[name]:
                    timer.cycle[name] += time.perf_counter() - began
                    timer.cpu[name] += time.thread_time() - cpu

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, original))

    def end_cycle(self, keep: bool) -> None:
        if keep:
            for name, took in self.cycle.items():
                self.history[name].append(took)
                self.cpu_history[name].append(self.cpu[name])
        self.cycle = defaultdict(float)
        self.cpu = defaultdict(float)

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()


def _phases(timer: PhaseTimer) -> None:
    """Timers around the engine's steps: each is the function's module attribute the engine calls."""
    import optui.collectors.cycle_store as cycle_store
    import optui.collectors.engine as engine_mod
    import optui.storage.records as records
    from optui.collectors.day_state import DayState

    timer.wrap(StreamingSource, "quotes", "spots")
    timer.wrap(engine_mod, "plan_index", "plan")
    timer.wrap(StreamingSource, "follow_plan", "subscribe")
    timer.wrap(engine_mod.CollectionEngine, "_quote_legs", "quotes")
    timer.wrap(engine_mod, "analyse_bucket", "analytics")
    timer.wrap(engine_mod, "analyse_buckets", "analytics")
    timer.wrap(engine_mod, "strike_flow", "strike flow")
    timer.wrap(engine_mod.CollectionEngine, "_index_snapshot", "snapshot")
    timer.wrap(records, "leg_columns", "leg columns")
    timer.wrap(cycle_store, "persist", "persist")
    timer.wrap(DayState, "save", "state save")
    from optui.alerts import AlertEngine

    timer.wrap(AlertEngine, "on_snapshot", "alerts")
    import optui.storage.legacy_files as legacy_files

    timer.wrap(legacy_files, "write_legacy_files", "JSON/CSV files")


def settings(root: Path) -> Settings:
    s = Settings()
    s.general.data_dir = str(root / "data")
    s.participants.enabled = False
    s.record.enabled = False
    s.export.write_json = s.export.write_csv = bool(OPTIONS.get("files"))
    s.source.interval_s = 1.0
    s.source.full_chain_expiries = OPTIONS["full_chain_expiries"]
    s.source.chain_strikes = OPTIONS["chain_strikes"]
    return s


@contextmanager
def streamed_engine(root: Path) -> Iterator[tuple[CollectionEngine, StreamingSource, FakeClock]]:
    """The engine over a StreamingSource on the simulator's ticker (loopback, this process)."""
    clock = FakeClock()
    sim = SimulatedSource(seed=7, start=OPTIONS["start"], clock=clock)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 0.2
    ws = server.url.replace("http://", "ws://", 1)
    source = StreamingSource(sim, "sim_key", "sim_token", ws, server=server)
    store = SQLiteStore(root / "cycle.db")
    engine = CollectionEngine(settings(root), source, store, state_dir=root / "state",
                              out_dir=root / "files")
    if OPTIONS.get("alerts"):  # the alert rules as build_engine sets them
        from optui.alerts import AlertEngine

        engine.alerts = AlertEngine.from_settings(engine.settings, store)
    try:
        yield engine, source, clock
    finally:
        engine.close()


def run(root: Path, cycles: int, rest_built: bool, profile: cProfile.Profile | None = None
        ) -> tuple[list[float], dict[str, list[float]], str, int]:
    """Collect `cycles` measured cycles (after WARMUP): wall seconds, phase seconds, the stored
    rows' digest and the legs of the last cycle. The digests of every snapshot shown and of
    the leg files written go to OPTIONS["shown"] and OPTIONS["files_digest"]."""
    timer = PhaseTimer()
    shown: list[Snapshot] = []
    walls: list[float] = []
    cpus: list[float] = []
    legs = 0
    with streamed_engine(root) as (engine, source, clock):
        if rest_built:  # each quote call answered as Kite /quote dicts, then Quote objects
            source.quote_tables = functools.partial(MarketSource.quote_tables, source)  # type: ignore[method-assign]
        _phases(timer)
        try:
            for n in range(WARMUP + cycles):
                if n:
                    clock.t += 1.0
                    if not wait_caught_up(source, source.now(), timeout_s=30):
                        raise RuntimeError("the stream did not catch up")
                measured = n >= WARMUP
                if measured and profile is not None:
                    profile.enable()
                began, cpu = time.perf_counter(), time.thread_time()
                snap = engine.collect_once()
                took = time.perf_counter() - began
                cpu = time.thread_time() - cpu
                if measured:  # the warm-up's feed tier (ticked or polled yet) is timing's
                    shown.append(snap)
                if measured and profile is not None:
                    profile.disable()
                timer.end_cycle(measured)
                if measured:
                    walls.append(took)
                    cpus.append(cpu)
                    legs = snap.leg_count
                    if engine.last.feed != "stream":
                        raise RuntimeError(f"cycle {n} was not streamed: {engine.last.feed}")
        finally:
            timer.restore()
        digest = stored_digest(engine.store)
        OPTIONS["shown"] = snapshot_digest(shown)
        if OPTIONS.get("shown_file"):
            Path(OPTIONS["shown_file"]).write_text(
                "".join(json.dumps(_shown(snap)) + "\n" for snap in shown))
            OPTIONS["shown_file"] = None
        OPTIONS["files_digest"] = files_digest(root / "files") if OPTIONS.get("files") else None
        timer.history["cycle"] = walls
        timer.cpu_history["cycle"] = cpus
        if OPTIONS.get("rows"):
            Path(OPTIONS["rows"]).write_text("\n".join(stored_rows(engine.store)) + "\n")
            OPTIONS["rows"] = None
    return walls, (timer.history, timer.cpu_history), digest, legs


def _canon(value: Any) -> Any:
    """A value as JSON-able data, floats as exact hex, dicts and lists in their own order."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value):
        return [type(value).__name__] + [[f.name, _canon(getattr(value, f.name))]
                                         for f in fields(value)]
    if isinstance(value, dict):
        return [[_canon(k), _canon(v)] for k, v in value.items()]
    if isinstance(value, list | tuple | LegRows):  # legs held as columns: as their LegRecords
        return [_canon(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _canon(value.tolist())
    return repr(value)


def snapshot_digest(snaps: list[Snapshot]) -> str:
    """A digest of the snapshots shown (every field but the cycle's duration, with its legs,
    flow by strike, warnings and alerts, floats exact, dicts in their order)."""
    h = hashlib.sha256()
    for snap in snaps:
        h.update(json.dumps(_shown(snap)).encode())
    return h.hexdigest()


def _shown(snap: Snapshot) -> list[Any]:
    return [f for f in _canon(snap) if not (isinstance(f, list) and f and f[0] == "duration_s")]


def files_digest(root: Path) -> str:
    """A digest of the leg files written under `root` (names and bytes)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def stored_rows(store: SQLiteStore) -> list[str]:
    """Every stored row as one canonical line (floats as exact hex)."""
    lo, hi = OPTIONS["start"] - timedelta(days=2), OPTIONS["start"] + timedelta(days=2)
    lines = []
    for m in store.measurements():
        for r in store.query(m, lo, hi):
            fields = {k: (v.hex() if isinstance(v, float) else v) for k, v in r.fields.items()}
            lines.append(json.dumps([m, r.time.isoformat(), sorted(r.tags.items()),
                                     sorted(fields.items())]))
    return sorted(lines)


def stored_digest(store: SQLiteStore) -> str:
    h = hashlib.sha256()
    for line in stored_rows(store):
        h.update(line.encode())
    return h.hexdigest()


def _ms(values: list[float], q: float = 0.5) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000.0 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(title: str, walls: list[float], phases: tuple[dict[str, list[float]], ...],
           legs: int) -> None:
    wall, cpu = phases
    print(f"{title}: {len(walls)} cycles, {legs} legs recorded per cycle")
    print(f"    {'':<12} {'wall p50':>9} {'wall p95':>9} {'CPU p50':>9}   (ms; CPU of the cycle's thread)")
    for name, values in wall.items():
        print(f"    {name:<12} {_ms(values):9.1f} {_ms(values, 0.95):9.1f} {_ms(cpu[name]):9.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("cycles", nargs="?", type=int, default=10)
    parser.add_argument("--digest")
    parser.add_argument("--check", default=str(DIGESTS) if DIGESTS.exists() else None)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--start", help="simulated start, YYYY-MM-DD HH:MM IST")
    parser.add_argument("--chain-strikes", type=int, default=0)
    parser.add_argument("--full-chain-expiries", type=int, default=2)
    parser.add_argument("--rows", help="write every stored row, one line each, to this file")
    parser.add_argument("--shown", help="write every snapshot shown, one line each, to this file")
    parser.add_argument("--alerts", action="store_true", help="run the alert rules each cycle")
    parser.add_argument("--files", action="store_true", help="write the legacy JSON/CSV files")
    args = parser.parse_args([] if argv is None else argv)
    if args.start:
        OPTIONS["start"] = datetime.fromisoformat(args.start).replace(tzinfo=IST)
    OPTIONS["chain_strikes"] = args.chain_strikes
    OPTIONS["full_chain_expiries"] = args.full_chain_expiries
    OPTIONS["alerts"] = args.alerts
    OPTIONS["files"] = args.files
    OPTIONS["rows"] = args.rows
    OPTIONS["shown_file"] = args.shown
    profile = cProfile.Profile(time.thread_time) if args.profile else None  # CPU of this thread
    with tempfile.TemporaryDirectory() as tmp:
        walls, phases, digest, legs = run(Path(tmp) / "book", args.cycles, False, profile)
        report("book-built quotes", walls, phases, legs)
        if not args.no_baseline:
            b_walls, b_phases, b_digest, _ = run(Path(tmp) / "rest", args.cycles, True)
            report("baseline, quotes built per instrument as /quote dicts", b_walls, b_phases, legs)
            print("stored rows equal between the two: " + ("yes" if b_digest == digest else "NO"))
    print(f"goal: cycle p50 <= {GOAL_P50_MS:.0f} ms: "
          + ("met" if _ms(walls) <= GOAL_P50_MS else "MISSED"))
    run_key = (f"cycles={args.cycles} start={OPTIONS['start'].isoformat()} "
               f"chain_strikes={args.chain_strikes} full_chain_expiries={args.full_chain_expiries}")
    extras = "".join(f" {flag}" for flag in ("alerts", "files") if OPTIONS.get(flag))
    # Stored rows under the run key (as captured before the snapshots were); the snapshots
    # shown (with their alerts when on) and the leg files under their own keys.
    digests = {run_key: digest, f"{run_key} shown{extras}": OPTIONS["shown"]}
    if OPTIONS.get("files_digest"):
        digests[f"{run_key} files"] = OPTIONS["files_digest"]
    if args.digest:  # add this run's digests to the file (one entry per set of run options)
        path = Path(args.digest)
        known = json.loads(path.read_text()) if path.exists() else {}
        known.update(digests)
        path.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
    if args.check:
        captured = json.loads(Path(args.check).read_text())
        for key, value in digests.items():
            want = captured.get(key)
            what = ("stored rows" if key == run_key else "snapshots shown" if " shown" in key
                    else "leg files")
            if want is None:
                print(f"--check: {args.check} holds no capture of {what} ({key})")
            else:
                print(f"{what} identical to the capture ({key}): "
                      + ("yes" if want == value else "NO"))
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main(sys.argv[1:])
