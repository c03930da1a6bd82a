"""`optui replay`: a recorded day through the very collection engine and writers of `optui collect`.

A replay writes to its own store and files by default (``data/replay`` for live recordings,
``data/sim/replay`` for simulated ones), never over the live history, and starts from a fresh
day state in a temporary directory, so what it stores depends on the recording alone. A replay
from a later moment is primed from the recording first (optui.collectors.replay_seed), so from
that moment on it stores what the live run stored.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from optui.collectors.engine import CollectionEngine, is_simulated
from optui.collectors.headless import Collector
from optui.collectors.recording import day_path, recorded_days, recordings_dir
from optui.collectors.replay_seed import Primed, prime, window_cycles
from optui.collectors.replay_source import ReplaySource, last_call_at, replay_start
from optui.config import Settings, StoreSettings
from optui.errors import ConfigError
from optui.timeutil import IST

POLLED_SEEK_BACK_S = 300.0
"""A polled day's replay from a later moment reads from this far back (at least three
intervals): every key list a cycle asks has its newest recorded answer in that span."""


@dataclass
class ReplayPlan:
    """Where a replay reads and writes."""

    recording: Path
    store_url: str
    out_dir: Path


def plan_replay(settings: Settings, day: date, source_kind: str | None = None,
                store_url: str | None = None, out_dir: Path | None = None) -> ReplayPlan:
    """The recording of `day` for the source kind (sim or kite; default source.kind) and the
    store and files the replay writes. Raises ConfigError naming the recorded days when the
    day has no recording."""
    simulated = is_simulated(settings, source_kind)
    data_dir = Path(settings.general.data_dir)
    directory = recordings_dir(data_dir, simulated, settings.record.dir)
    path = day_path(directory, day)
    if not path.exists():
        days = recorded_days(directory)
        have = ", ".join(d.isoformat() for d in days[-5:]) or "none yet"
        raise ConfigError(f"no recording of {day.isoformat()} in {directory} (recorded days: {have})")
    root = data_dir / "sim" / "replay" if simulated else data_dir / "replay"
    if store_url is None:
        store_url = (f"sqlite:///{root / 'optui.db'}" if settings.store.url == StoreSettings().url
                     or simulated else settings.store.url)
    return ReplayPlan(path, store_url, out_dir if out_dir is not None else root)


def replay_source(settings: Settings, recording: Path, speed: float | None,
                  start: datetime | None) -> ReplaySource:
    """The recording as a market source whose clock starts at `start` (None: the first record);
    the look-ahead follows the collection interval. Raises ConfigError (missing or empty file)."""
    interval = settings.source.interval_s
    return ReplaySource(recording, speed=speed, start=start,
                        lookahead_s=max(min(0.9 * interval, 60.0), 1.0),
                        polled_seek_back_s=max(3.0 * interval, POLLED_SEEK_BACK_S))


def replay_engine(settings: Settings, source: ReplaySource, store: Any, out_dir: Path | None,
                  state_dir: Path) -> CollectionEngine:
    """`optui collect`'s engine over a replaying source: the same analytics, alert rules, store
    and file writers, without the live cache, the pre-market capture and alert webhooks (the
    alerts are stored and shown as the live run's, never posted again). `store` is an
    optui.storage.base.Store or None; `state_dir` holds a fresh day state."""
    engine = CollectionEngine(settings, source, store, out_dir=out_dir, state_dir=state_dir)
    engine.alerts = quiet_alerts(settings, store)
    return engine


def quiet_alerts(settings: Settings, store: Any) -> Any:
    """The alert rules of `settings` writing to `store`, never posting to a webhook."""
    from optui.alerts import AlertEngine

    quiet = copy.deepcopy(settings)
    quiet.alerts.webhook_url = ""
    return AlertEngine.from_settings(quiet, store)


def primed_engine(settings: Settings, recording: Path, start: datetime | None, store: Any,
                  out_dir: Path | None, state_dir: Path, *,
                  warmup_cycles: int | None = None) -> tuple[CollectionEngine, Primed]:
    """A replay engine whose source's clock stands at `start` (None: the day's first record),
    primed from the recording before it (optui.collectors.replay_seed) so its first cycle there
    has the live run's day references. The source replays as fast as it is advanced
    (`engine.source.run_at` sets a speed). Raises ConfigError (missing or empty file); the
    engine is closed when priming fails."""
    source = replay_source(settings, recording, None, None)
    if start is not None:
        try:
            last = last_call_at(recording)
        except OSError as exc:
            source.close()
            raise ConfigError(f"cannot read the recording {recording}: {exc}") from None
        if last is not None and start > last:
            source.close()
            raise ConfigError(
                f"{start.astimezone(IST):%H:%M} IST is after the recording of "
                f"{start.astimezone(IST):%Y-%m-%d}: its cycles run from "
                f"{source.now().astimezone(IST):%H:%M:%S} to {last.astimezone(IST):%H:%M:%S} IST")
    try:
        engine = replay_engine(settings, source, store, out_dir, state_dir)
    except BaseException:
        source.close()
        raise
    try:
        primed = prime(engine, start,
                       lambda at: replay_source(settings, recording, None, at),
                       warmup_cycles=warmup_cycles, alerts=lambda s: quiet_alerts(settings, s))
    except BaseException:
        engine.close()
        raise
    return engine, primed


def replay_collector(settings: Settings, plan: ReplayPlan, day: date, speed: float | None,
                     start_hhmm: str | None = None,
                     printer: Callable[[str, str], None] | None = None, *,
                     warmup_cycles: int | None = None) -> tuple[Collector, tempfile.TemporaryDirectory]:
    """A Collector over a ReplaySource of the plan's recording, stopping when the recording ends.

    The engine is `optui collect`'s (same analytics, alert rules, store and file writers),
    without the live cache, the pre-market capture and alert webhooks; a start later than the
    first record is primed from the morning (see primed_engine) with an alert window of warm-up
    cycles unless `warmup_cycles` says otherwise. The caller closes the engine and the returned
    temporary state directory.
    """
    from optui.storage.base import open_store

    store = open_store(plan.store_url, settings)
    state = tempfile.TemporaryDirectory(prefix="optui-replay-")
    start = replay_start(day, start_hhmm)
    if warmup_cycles is None:  # the alert rules' window: the same rows on any machine
        warmup_cycles = window_cycles(settings)
    try:
        engine, primed = primed_engine(settings, plan.recording, start, store, plan.out_dir,
                                       Path(state.name), warmup_cycles=warmup_cycles)
    except BaseException:
        store.close()
        state.cleanup()
        raise
    if printer is not None and start is not None and primed.opening_cycles:
        printer(f"replay from {start_hhmm} IST: {primed.describe()}, nothing of it stored "
                "(the day's references as the live run had them)", "")
    source: ReplaySource = engine.source  # type: ignore[assignment]
    source.run_at(speed)
    if hasattr(store, "write_budget_s"):  # as the engine sets it for a source of this speed
        store.write_budget_s = max(0.25, 0.5 * source.real_seconds(settings.source.interval_s))
    holder: list[Collector] = []

    def sleep(real_seconds: float) -> None:
        collector = holder[0]
        if speed is None:
            source.advance(real_seconds)
        else:
            collector.stop_event.wait(real_seconds)
        if source.finished:
            collector.stop_event.set()

    collector = Collector(engine, settings.source.interval_s, printer=printer, sleep=sleep)
    holder.append(collector)
    return collector, state
