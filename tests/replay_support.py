"""What the record-and-replay tests share: the simulated day they record (seed 7 from the
Wednesday open), `optui collect`'s Collector run for a set number of cycles, a replay of a
recorded day into an empty SQLite store, the dashboard's replay played to its end, and the
stored rows they compare value for value."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from optui.alerts import AlertEngine
from optui.alerts.engine import MEASUREMENT as ALERTS
from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.recording import Recorder, recordings_dir
from optui.collectors.replay import ReplayPlan, replay_collector
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings
from optui.feed.replay import ReplayFeed
from optui.models import Snapshot
from optui.simulator.server import serve
from optui.storage.base import Store
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.tick_packets import TickBatch, pack_frame
from optui.timeutil import IST

START = datetime(2026, 11, 25, 9, 15, tzinfo=IST)  # a Wednesday open
INDICES = ["NIFTY", "SENSEX"]  # an NFO and a BFO chain
MEASUREMENTS = (LEGS, OVERVIEW, FLOW, ALERTS)  # what a replay must store as the live run did


class FakeClock:
    """A monotonic clock the collector's waits move (the simulator's `clock`)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of legs, overview, premium flow and alerts, in a comparable order."""
    lo, hi = START - timedelta(days=3), START + timedelta(days=3)
    return {
        m: sorted((r.time, sorted(r.tags.items()), sorted(r.fields.items())) for r in store.query(m, lo, hi))
        for m in MEASUREMENTS
    }


def stored_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """`dump` of the SQLite store file `db`, closed again."""
    store = SQLiteStore(db)
    try:
        return dump(store)
    finally:
        store.close()


def replay_settings(interval_s: float = 5.0, chain_strikes: int = 0) -> Settings:
    """NIFTY and SENSEX every `interval_s`, their whole chains (or `chain_strikes` each side of
    the ATM), no participant capture."""
    s = Settings()
    s.source.indices = list(INDICES)
    s.source.interval_s = interval_s
    s.source.chain_strikes = chain_strikes
    s.participants.enabled = False
    return s


def live_engine(settings: Settings, source: Any, root: Path) -> CollectionEngine:
    """The engine `optui collect` runs over `source` (alert rules as build_engine sets them),
    storing into `root`/live.db, leg files under `root`/files, the day's state in `root`/state."""
    store = SQLiteStore(root / "live.db")
    engine = CollectionEngine(settings, source, store, out_dir=root / "files",
                              state_dir=root / "state")
    engine.alerts = AlertEngine.from_settings(settings, store)
    return engine


def run_cycles(engine: CollectionEngine, interval_s: float, cycles: int, *,
               lines: list[str] | None = None, sleep: Callable[[float], object] | None = None,
               before: Callable[[list[Snapshot]], None] | None = None,
               after: Callable[[list[Snapshot]], None] | None = None,
               snaps: list[Snapshot] | None = None) -> list[Snapshot]:
    """`optui collect`'s Collector over `engine` until it has collected `cycles` snapshots,
    then the engine closed; returns the snapshots (appended to `snaps` when given, so `sleep`
    can see them). Status lines go to `lines`; `sleep` is the collector's wait (its own when
    None); `before` and `after` get the snapshots so far around each cycle."""
    taken: list[Snapshot] = [] if snaps is None else snaps
    printed: list[str] = [] if lines is None else lines
    collect = engine.collect_once

    def counted() -> Snapshot:
        if before is not None:
            before(taken)
        taken.append(collect())
        if len(taken) >= cycles:
            collector.stop_event.set()
        if after is not None:
            after(taken)
        return taken[-1]

    engine.collect_once = counted  # type: ignore[method-assign]
    collector = Collector(engine, interval_s, printer=lambda line, style="": printed.append(line),
                          sleep=sleep)
    assert collector.run() == 0
    engine.close()
    return taken


@dataclass
class Replayed:
    """A replay's stored rows (`dump`), its status lines and its cycle count."""

    rows: dict[str, list[tuple[Any, ...]]]
    lines: list[str]
    cycles: int


def replay_day(path: Path, db: Path, settings: Settings | None = None, *,
               files: Path | None = None, prepare: Callable[[Any], None] | None = None,
               **options: Any) -> Replayed:
    """`optui replay` of the recorded day file `path` (START's date) into the empty SQLite
    store `db`, leg files under `files` (default: beside `db`), as fast as it reads; `options`
    (start_hhmm, warmup_cycles) go to replay_collector and `prepare(collector)` runs first."""
    plan = ReplayPlan(path, f"sqlite:///{db}",
                      files if files is not None else db.parent / f"{db.stem}-files")
    lines: list[str] = []
    collector, state = replay_collector(settings or replay_settings(), plan, START.date(),
                                        speed=None,
                                        printer=lambda line, style="": lines.append(line),
                                        **options)
    if prepare is not None:
        prepare(collector)
    try:
        assert collector.run() == 0
    finally:
        collector.engine.close()
        state.cleanup()
    return Replayed(stored_rows(db), lines, collector.cycles)


def play(feed: ReplayFeed) -> list[Snapshot]:
    """The dashboard replay's cycles to its end (or the next jump), each with a snapshot."""
    seen = []
    while (cycle := feed.next_cycle()) is not None:
        assert cycle.snapshot is not None
        seen.append(cycle.snapshot)
    return seen


def replay_process_env(tmp_path: Path, day_file: Path,
                       chain_strikes: int = 0) -> tuple[dict[str, str], Path]:
    """Environment for an `optui replay` process on a copy of the recorded `day_file` in a
    data folder under `tmp_path` (the simulator's recordings, settings as `replay_settings`),
    and that data folder."""
    data = tmp_path / "data"
    target = recordings_dir(data, simulated=True)
    target.mkdir(parents=True)
    (target / day_file.name).write_bytes(day_file.read_bytes())
    config = tmp_path / "optui.toml"
    config.write_text(f'[general]\ndata_dir = "{data}"\nlog_dir = "{tmp_path / "logs"}"\n'
                      '[source]\nkind = "sim"\nindices = ["NIFTY", "SENSEX"]\ninterval_s = 5.0\n'
                      f'chain_strikes = {chain_strikes}\n[participants]\nenabled = false\n')
    return {**os.environ, "OPTUI_CONFIG_FILE": str(config)}, data


CADENCE_SPEED = 5.0  # simulated seconds per real second: a frame per simulated second, 5 a real second
CADENCE_INTERVAL_S = 5.0


def cadence_settings() -> Settings:
    """NIFTY every CADENCE_INTERVAL_S over a window of 4 strikes each side, no participants."""
    s = Settings()
    s.source.indices = ["NIFTY"]
    s.source.interval_s = CADENCE_INTERVAL_S
    s.source.chain_strikes = 4
    s.participants.enabled = False
    return s


def record_cadence_run(directory: Path, root: Path, snapshots: int,
                       start: datetime = START, stray_at: int | None = None,
                       ) -> tuple[list[Snapshot], list[str], StreamingSource]:
    """`optui collect`'s Collector over the simulator's ticker at the 1 s tick cadence, on a
    simulated clock running CADENCE_SPEED times real time from `start`, recording on. Mid-run
    one leg's ticks are taken off the live set, so one snapshot polls it over REST before it
    streams again. With `stray_at`, after that many snapshots the exchange sends a frame of
    an instrument never subscribed (the source ignores and counts it)."""
    sim = SimulatedSource(seed=7, speed=CADENCE_SPEED, start=start)
    server = serve(sim.exchange, "127.0.0.1", 0)
    server.tick_interval = 1.0 / CADENCE_SPEED
    recorder = Recorder(directory, sim.name, sim.label, flusher=False)
    source = StreamingSource(sim, "sim_key", "sim_token", server.url.replace("http", "ws", 1),
                             recorder=recorder, server=server, max_age_s=5.0, snapshot_s=1.0)
    engine = live_engine(cadence_settings(), source, root)
    lines: list[str] = []

    def one_leg_polled(snaps: list[Snapshot]) -> None:
        if len(snaps) == 6:  # a streamed leg goes to REST for one snapshot, then streams again
            leg = snaps[-1].indices["NIFTY"].legs[0].instrument_token
            source._on_loop(source.book.mark_stale, [leg])
        if len(snaps) == stray_at:
            stray = TickBatch.empty(1)
            stray.instrument_token[0], stray.last_price[0] = 77 * 256 + 2, 5.0
            server.sessions()[0].send_raw(pack_frame(stray))

    snaps = run_cycles(engine, CADENCE_INTERVAL_S, snapshots, lines=lines, before=one_leg_polled)
    return snaps, lines, source
