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
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from optui.collectors.engine import CollectionEngine, is_simulated
from optui.collectors.headless import Collector
from optui.collectors.record_sessions import RecordedSession, day_sessions
from optui.collectors.recording import day_path, recorded_days, recordings_dir
from optui.collectors.replay_seed import Primed, prime, window_cycles
from optui.collectors.replay_source import ReplaySource, replay_start
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
                  start: datetime | None,
                  span: tuple[int, int | None] | None = None) -> ReplaySource:
    """The recording (with `span`, one of its sessions) as a market source whose clock starts
    at `start` (None: the first record); the look-ahead follows the collection interval.
    Raises ConfigError (missing or empty file)."""
    interval = settings.source.interval_s
    return ReplaySource(recording, speed=speed, start=start,
                        lookahead_s=max(min(0.9 * interval, 60.0), 1.0),
                        polled_seek_back_s=max(3.0 * interval, POLLED_SEEK_BACK_S), span=span)


def replay_engine(settings: Settings, source: ReplaySource, store: Any, out_dir: Path | None,
                  state_dir: Path) -> CollectionEngine:
    """`optui collect`'s engine over a replaying source: the same analytics, alert rules, store
    and file writers, without the live cache, the pre-market capture and alert webhooks (the
    alerts are stored and shown as the live run's, never posted again), collecting the indices
    the recorded session collected. `store` is an
    optui.storage.base.Store or None; `state_dir` holds a fresh day state."""
    engine = CollectionEngine(settings, source, store, out_dir=out_dir, state_dir=state_dir)
    # The recorded session's indices, whatever this configuration lists: an index it did not
    # collect has no quote to replay (each cycle would say "no spot quote"), and one it did but
    # the configuration leaves out would be missing from what the live run stored.
    engine.indices = source.recorded_indices() or engine.indices
    engine.alerts = quiet_alerts(settings, store)
    return engine


def quiet_alerts(settings: Settings, store: Any) -> Any:
    """The alert rules of `settings` writing to `store`, never posting to a webhook."""
    from optui.alerts import AlertEngine

    quiet = copy.deepcopy(settings)
    quiet.alerts.webhook_url = ""
    return AlertEngine.from_settings(quiet, store)


def recorded_sessions(recording: Path) -> list[RecordedSession]:
    """The collector sessions of a day file in recorded order (those that asked for quotes).
    Raises ConfigError when the file cannot be read or holds no quote call."""
    try:
        sessions = day_sessions(recording)
    except OSError as exc:
        raise ConfigError(f"cannot read the recording {recording}: {exc}") from None
    if not sessions:
        raise ConfigError(f"recording {recording.name} holds no quotes to replay")
    return sessions


def plan_parts(sessions: list[RecordedSession], start: datetime | None, *,
               first_holding: bool = False) -> list[SessionPart]:
    """What a replay from `start` (None: the whole day) plays of each session, in recorded
    order: every session's cycles at or after `start`, each session primed from its own
    beginning (and the day state the sessions before it left), a session that ends before
    `start` primed through silently (its day state only). So the store holds, from `start` on,
    what the live sessions left there: the last session to store a moment wins, as live.

    With `first_holding` (a dashboard jump) play begins in the first session holding `start`
    (between its first and last quote call; else the first in recorded order to begin after
    it): the sessions recorded before that one are primed through silently even where they
    hold later moments. For sessions recorded in time order (any real trading day) both
    plans are the same: the session holding `start` (or the next), then those after it.

    Raises ConfigError when no session holds or follows `start`, naming what the recording
    holds."""
    if start is None:
        return [SessionPart(s, None, True) for s in sessions]
    later = [s for s in sessions if s.last_call is not None and s.last_call >= start]
    if not later:
        raise ConfigError(f"{start.astimezone(IST):%H:%M} IST is after the recording of "
                          f"{start.astimezone(IST):%Y-%m-%d}: {recording_span(sessions)}")
    begin = 0
    if first_holding:
        held = [s for s in sessions if s.holds(start)]
        if held:
            begin = sessions.index(held[0])
        else:  # in no session's span: the first recorded after it (as one session would start)
            begin = next(i for i, s in enumerate(sessions)
                         if s.first_call is not None and s.first_call > start)
    parts = []
    for i, session in enumerate(sessions):
        assert session.first_call is not None and session.last_call is not None
        if i < begin or session.last_call < start:
            parts.append(SessionPart(session, session.last_call + timedelta(microseconds=1), False))
        else:
            parts.append(SessionPart(session, start if session.first_call < start else None, True))
    return parts


def recording_span(sessions: list[RecordedSession]) -> str:
    """'its cycles run from 09:15:00 to 09:16:05 IST', with each session's span when the day
    was collected by more than one."""
    firsts = [s.first_call for s in sessions if s.first_call is not None]
    lasts = [s.last_call for s in sessions if s.last_call is not None]
    if not firsts or not lasts:
        return "it holds no quote call"
    text = (f"its cycles run from {min(firsts).astimezone(IST):%H:%M:%S} to "
            f"{max(lasts).astimezone(IST):%H:%M:%S} IST")
    if len(sessions) > 1:
        text += (f" ({len(sessions)} sessions: "
                 + ", ".join(s.describe().split("(", 1)[1].rstrip(")") for s in sessions) + ")")
    return text


@dataclass
class SessionPart:
    """One session of a replay: played from `start` (None: its first call; primed up to it
    from the recording) when `shown`, else primed through to `start` silently."""

    session: RecordedSession
    start: datetime | None
    shown: bool


def primed_engine(settings: Settings, recording: Path, start: datetime | None, store: Any,
                  out_dir: Path | None, state_dir: Path, *,
                  warmup_cycles: int | None = None,
                  span: tuple[int, int | None] | None = None) -> tuple[CollectionEngine, Primed]:
    """A replay engine whose source's clock stands at `start` (None: the first record of the
    recording, or of its session `span`), primed from the recording before it
    (optui.collectors.replay_seed) so its first cycle there has the live run's day references.
    The source replays as fast as it is advanced (`engine.source.run_at` sets a speed). Raises
    ConfigError (missing or empty file); the engine is closed when priming fails."""
    source = replay_source(settings, recording, None, None, span)
    try:
        engine = replay_engine(settings, source, store, out_dir, state_dir)
    except BaseException:
        source.close()
        raise
    try:
        primed = prime(engine, start,
                       lambda at: replay_source(settings, recording, None, at, span),
                       warmup_cycles=warmup_cycles, alerts=lambda s: quiet_alerts(settings, s))
    except BaseException:
        engine.close()
        raise
    return engine, primed


class DayReplay:
    """`optui replay`'s run: each session of the plan in recorded order, each as the live
    collector process that recorded it ran (a Collector over an engine of its own on the same
    store, files and day state: a restart), so restarts, gaps and sessions recorded over the
    same minutes store what the live sessions stored. Used as a Collector: `run()`, `engine`
    (the current session's; the caller closes the last one), `cycles`, `points`."""

    def __init__(self, settings: Settings, plan: ReplayPlan, parts: list[SessionPart],
                 speed: float | None, state_dir: Path,
                 printer: Callable[[str, str], None] | None, warmup_cycles: int | None) -> None:
        self.settings = settings
        self.plan = plan
        self.parts = parts
        self.speed = speed
        self.state_dir = state_dir
        self.printer = printer
        self.warmup_cycles = warmup_cycles
        self.cycles = 0
        self.points = 0
        self.stopped = False
        self.collector: Collector | None = None
        self._at = self._prime_silent(0)
        self.engine = self._engine(self.parts[self._at])[0]

    def _prime_silent(self, at: int) -> int:
        """Prime the silent parts from `at` on (their day state only, nothing stored); the
        position of the next shown part (len(parts) when none is left)."""
        while at < len(self.parts) and not self.parts[at].shown:
            part = self.parts[at]
            engine, primed = self._engine(part)
            engine.close()
            self._say(f"replay: {part.session.describe()} read for its day state, nothing of it "
                      f"stored (it ends before the start): {primed.describe()}")
            at += 1
        return at

    def _say(self, line: str) -> None:
        if self.printer is not None:
            self.printer(line, "")

    def _engine(self, part: SessionPart) -> tuple[CollectionEngine, Primed]:
        """The engine of one session part, on a store of its own opening (a restart), primed."""
        from optui.storage.base import open_store

        store = open_store(self.plan.store_url, self.settings)
        try:
            engine, primed = primed_engine(self.settings, self.plan.recording, part.start, store,
                                           self.plan.out_dir, self.state_dir,
                                           warmup_cycles=self.warmup_cycles,
                                           span=part.session.span)
        except BaseException:
            store.close()
            raise
        if part.shown and part.start is not None and primed.opening_cycles:
            self._say(f"replay from {part.start.astimezone(IST):%H:%M} IST: {primed.describe()}, "
                      "nothing of it stored (the day's references as the live run had them)")
        return engine, primed

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM finish the current cycle, then stop (no later session begins)."""
        import signal

        def handler(signum: int, _frame: object) -> None:
            self._say(f"received {signal.Signals(signum).name}: stopping after the current cycle")
            self.stop()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def stop(self) -> None:
        """Stop after the current cycle; no later session is played."""
        self.stopped = True
        if self.collector is not None:
            self.collector.stop_event.set()

    def run(self) -> int:
        """Play the sessions; the exit code of the first that did not end cleanly, else 0."""
        while True:
            part = self.parts[self._at]
            if len(self.parts) > 1:
                self._say(f"replay: {part.session.describe()} of {len(self.parts)} recorded "
                          "that day")
            code = self._run_one()
            if code != 0 or self.stopped:
                return code
            if not any(p.shown for p in self.parts[self._at + 1 :]):
                return 0  # a silent session after the last shown one changes nothing stored
            self.engine.close()
            self._at = self._prime_silent(self._at + 1)
            self.engine = self._engine(self.parts[self._at])[0]

    def _run_one(self) -> int:
        engine = self.engine
        source: ReplaySource = engine.source  # type: ignore[assignment]
        source.run_at(self.speed)
        store = engine.store
        if hasattr(store, "write_budget_s"):  # as the engine sets it for a source of this speed
            store.write_budget_s = max(0.25, 0.5 * source.real_seconds(self.settings.source.interval_s))
        holder: list[Collector] = []
        speed = self.speed

        def sleep(real_seconds: float) -> None:
            collector = holder[0]
            if speed is None:
                source.advance(real_seconds)
            else:
                collector.stop_event.wait(real_seconds)
            if source.finished:
                collector.stop_event.set()

        collector = Collector(engine, self.settings.source.interval_s, printer=self.printer,
                              sleep=sleep)
        holder.append(collector)
        self.collector = collector
        if self.stopped:
            return 0
        try:
            return collector.run()
        finally:
            self.cycles += collector.cycles
            self.points += collector.points


def replay_collector(settings: Settings, plan: ReplayPlan, day: date, speed: float | None,
                     start_hhmm: str | None = None,
                     printer: Callable[[str, str], None] | None = None, *,
                     warmup_cycles: int | None = None) -> tuple[DayReplay, tempfile.TemporaryDirectory]:
    """The plan's recording played session by session (DayReplay), each over a ReplaySource
    of its frames through `optui collect`'s Collector, stopping when the recording ends.

    The engine is `optui collect`'s (same analytics, alert rules, store and file writers),
    without the live cache, the pre-market capture and alert webhooks; a start later than a
    session's first record is primed from that session's beginning (see primed_engine) with
    an alert window of warm-up cycles unless `warmup_cycles` says otherwise. Raises
    ConfigError for a missing or empty recording, or a start after its last cycle. The caller
    closes the returned run's `engine` and the temporary state directory.
    """
    start = replay_start(day, start_hhmm)
    parts = plan_parts(recorded_sessions(plan.recording), start)
    state = tempfile.TemporaryDirectory(prefix="optui-replay-")
    if warmup_cycles is None:  # the alert rules' window: the same rows on any machine
        warmup_cycles = window_cycles(settings)
    try:
        run = DayReplay(settings, plan, parts, speed, Path(state.name), printer, warmup_cycles)
    except BaseException:
        state.cleanup()
        raise
    return run, state
