"""The replay feed: a recorded day through `optui collect`'s engine, cycle by cycle, under the
viewer's control (pause, step, speed, jump to a time).

The replayed clock (optui.collectors.replay_source.ReplaySource, run without a speed of its own)
moves only when this feed moves it: each cycle advances it to the next multiple of the interval,
as `optui replay` does, and the real time between cycles is the interval divided by the speed.
Between cycles `exchange_now()` runs the replayed clock on at the speed, never past the next
cycle. Cycles go to a store of the replay's own (a temporary SQLite file, new at every jump so
no moment is stored twice) and to no files, cache or channel: never into the live history.
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optui.feed.model import Feed, FeedCycle, HealthEvent

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.replay import SessionPart
    from optui.collectors.replay_source import ReplaySource
    from optui.config import Settings

log = logging.getLogger(__name__)

SPEEDS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Replayed seconds per real second offered by the speed keys."""


PACE_WINDOW_S = 5.0
"""Real seconds over which `ReplayFeed.actual_speed` measures the replayed clock's pace."""
PACE_MIN_S = 2.0
"""Real seconds of steady play before a pace is measured at all."""


class ReplayRequest:
    """A recorded day to replay on the dashboard: `day`, `speed` (replayed seconds per real
    second) and the start `start_hhmm` ('HH:MM' IST, None: the first record)."""

    def __init__(self, day: date, speed: float = 1.0, start_hhmm: str | None = None) -> None:
        self.day = day
        self.speed = speed
        self.start_hhmm = start_hhmm


def next_speed(speed: float, step: int) -> float:
    """The speed `step` places up (+1) or down (-1) SPEEDS from `speed`, clamped at the ends;
    a speed between two steps moves to the neighbouring one."""
    if step > 0:
        return next((s for s in SPEEDS if s > speed), SPEEDS[-1])
    return next((s for s in reversed(SPEEDS) if s < speed), SPEEDS[0])


class ReplayFeed(Feed):
    """Replays the recording of `day` (the configured source kind's, or `source_kind`'s).

    `speed` is replayed seconds per real second (above 0); `start_hhmm` ('HH:MM' IST) starts
    there instead of at the first record. `start()` raises ConfigError naming the recorded days
    when `day` has none, or for a bad time or speed. Control methods (`pause`, `resume`,
    `set_speed`) are safe from any thread; `jump` and `next_cycle` block and belong to the
    thread that runs the feed.
    """

    replay = True

    def __init__(self, settings: Settings, day: date, *, speed: float = 1.0,
                 start_hhmm: str | None = None, source_kind: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 warmup_cycles: int | None = None) -> None:
        from optui.errors import ConfigError

        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ConfigError(f"--speed {speed}: must be above 0")
        self.settings = settings
        self.day = day
        self.speed = float(speed)
        self.start_hhmm = start_hhmm
        self.source_kind = source_kind
        self.paused = False
        self.ended = False
        self._mono = monotonic
        self._lock = threading.Lock()
        self._recording: Path | None = None
        self.engine: CollectionEngine | None = None
        self._source: ReplaySource | None = None
        self._state: tempfile.TemporaryDirectory | None = None
        self._parts: list[SessionPart] = []  # the sessions of the day as planned from the start
        self._part = 0  # the one playing
        self._first = True
        self._anchor: datetime | None = None  # the replayed clock at `_anchor_mono`
        self._anchor_mono = 0.0
        self._notes: list[HealthEvent] = []
        self._pace: deque[tuple[float, datetime]] = deque()  # (real, replayed) at each cycle
        self.warmup_cycles = warmup_cycles
        """Warm-up cycles before a later start (None: as many as the time budget allows)."""
        self.primed: Any = None  # optui.collectors.replay_seed.Primed of the last start or jump
        self.history_note = ""  # what the flow panel lacks before a later start, for the log

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> str:
        """Find the recording and build the engine at the start time; 'replaying ...'."""
        from optui.collectors.replay import plan_replay

        plan = plan_replay(self.settings, self.day, self.source_kind)
        self._recording = plan.recording
        self._build(self.start_hhmm)
        sessions = (f"; {len(self._parts)} collector sessions recorded that day, played in "
                    "recorded order" if len(self._parts) > 1 else "")
        return (f"replaying {self._recording.name} at {self.speed:g}x from "
                f"{self._clock_text()} IST into a store of its own (not the live history)"
                f"{sessions}{self.history_note}")

    def _build(self, hhmm: str | None) -> None:
        """A fresh day state and store, the sessions of the day planned from `hhmm` (None: the
        first record; else the first session holding it, see plan_parts), and the engine of the
        first session shown, primed up to `hhmm`. Raises ConfigError (a time after the
        recording, naming what it holds) before anything is read."""
        from optui.collectors.replay import plan_parts, recorded_sessions
        from optui.collectors.replay_source import replay_start

        assert self._recording is not None
        start = replay_start(self.day, hhmm)
        parts = plan_parts(recorded_sessions(self._recording), start, first_holding=True)
        state = tempfile.TemporaryDirectory(prefix="optui-replay-view-")
        try:
            at = self._prime_silent(parts, 0, Path(state.name))
            engine, self.primed = self._part_engine(parts[at], Path(state.name))
        except BaseException:
            state.cleanup()
            raise
        source: ReplaySource = engine.source  # type: ignore[assignment]
        # A start before the recording (or between its sessions) plays from its next moment:
        # the flow before that moment is what the panel lacks, not the flow before `hhmm`.
        self.history_note = (self._copy_flow_history(engine.store, max(start, source.now()))
                             if start is not None else "")
        self._copy_iv_history(engine.store)
        self._close_engine()
        with self._lock:
            self._pace.clear()
            self.engine, self._source, self._state = engine, source, state
            self._parts, self._part = parts, at
            self._first = True
            self.ended = False
            self._anchor = source.now()
            self._anchor_mono = self._mono()

    def _part_engine(self, part: SessionPart, root: Path) -> tuple[CollectionEngine, Any]:
        """The engine of one session of the plan on the view's store under `root` (a store
        opened anew, as a restarted collector opens it), primed up to the part's start."""
        from optui.collectors.replay import primed_engine
        from optui.storage.base import open_store

        store = open_store(f"sqlite:///{root / 'replay.db'}", self.settings)
        try:
            return primed_engine(self.settings, self._recording, part.start, store, None,  # type: ignore[arg-type]
                                 root / "state", warmup_cycles=self.warmup_cycles,
                                 span=part.session.span)
        except BaseException:
            store.close()
            raise

    def _prime_silent(self, parts: list[SessionPart], at: int, root: Path) -> int:
        """Read the sessions from `at` on that are not shown for the day state they leave;
        the position of the next shown one (len(parts) when none is left)."""
        while at < len(parts) and not parts[at].shown:
            engine, _ = self._part_engine(parts[at], root)
            engine.close()
            at += 1
        return at

    def _next_session(self) -> bool:
        """At the end of a session: go on with the next shown one (the collector's restart
        that recorded it), on the same store and day state; False when none is left."""
        if self._state is None or not any(p.shown for p in self._parts[self._part + 1 :]):
            return False
        root = Path(self._state.name)
        if self.engine is not None:
            self.engine.close()
        at = self._prime_silent(self._parts, self._part + 1, root)
        engine, self.primed = self._part_engine(self._parts[at], root)
        source: ReplaySource = engine.source  # type: ignore[assignment]
        session = self._parts[at].session
        source.health.notes.append(
            f"replay: {session.describe()} of {len(self._parts)} recorded that day begins "
            "(a restart of the collector); the clock goes to its moments")
        with self._lock:
            self.engine, self._source, self._part = engine, source, at
            self._first = True
            self._anchor = source.now()
            self._anchor_mono = self._mono()
        return True

    def _copy_flow_history(self, store: Any, start: datetime) -> str:
        """The live store's premium-flow minute bars of the replayed day before `start` into the
        replay's `store`, so the flow panel's longer timeframes (15m to 1d) count the day as the
        live dashboard did at that minute; the minutes from `start` on are the replay's own.
        Returns a line for the health log when they could not be read ("" when copied)."""
        from optui.collectors.engine import is_simulated, store_url_for
        from optui.errors import OptuiError
        from optui.storage.base import open_store
        from optui.storage.points import Point
        from optui.storage.records import FLOW
        from optui.timeutil import IST

        hhmm = start.astimezone(IST).strftime("%H:%M")
        url = store_url_for(self.settings, is_simulated(self.settings, self.source_kind))
        missing = (f"; the flow panel's 15m to 1d count from {hhmm} (the live store holds no "
                   f"premium flow of {self.day.isoformat()} before it)")
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).expanduser().exists():
            return missing
        day_start = datetime.combine(self.day, datetime.min.time(), IST)
        try:
            live = open_store(url, self.settings)
            try:
                rows = live.query(FLOW, day_start, start)
            finally:
                live.close()
            if rows:
                store.write([Point(FLOW, dict(r.tags), dict(r.fields), r.time) for r in rows])
        except OptuiError as exc:
            log.warning("the day's premium flow before %s not copied: %s", hhmm, exc)
            return f"; the flow panel's 15m to 1d count from {hhmm} (cannot read the live store: {exc})"
        return "" if rows else missing

    def _copy_iv_history(self, store: Any) -> None:
        """The live store's daily ATM IV closes (`iv_daily`) of the year before the replayed day
        into the replay's `store`, so the overview and the charts show IV rank, IV percentile
        and RV20 as the live dashboard did that day (the replay's own store starts empty), and
        the previous close's chain the smile chart overlays (optui.storage.close_chain: each
        expiry's leg rows and the overview at that close, not the rest of that day). A store
        that cannot be read leaves them out (logged): the IVs show without them."""
        from optui.collectors.engine import is_simulated, store_url_for
        from optui.errors import OptuiError
        from optui.storage.base import open_store
        from optui.storage.close_chain import close_chain_points
        from optui.storage.iv_history import IV_DAILY, day_time
        from optui.storage.points import Point

        url = store_url_for(self.settings, is_simulated(self.settings, self.source_kind))
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).expanduser().exists():
            return
        try:
            live = open_store(url, self.settings)
            try:
                rows = live.query(IV_DAILY, day_time(self.day - timedelta(days=400)),
                                  day_time(self.day))
                chains = close_chain_points(live, self.day) if rows else []
            finally:
                live.close()
            if rows:
                store.write([Point(IV_DAILY, dict(r.tags), dict(r.fields), r.time) for r in rows])
            if chains:
                store.write(chains)
        except OptuiError as exc:
            log.warning("the daily IV closes before %s not copied: %s", self.day, exc)

    def _close_engine(self) -> None:
        engine, state = self.engine, self._state
        self.engine, self._source, self._state = None, None, None
        if engine is not None:
            try:
                engine.close()
            except Exception:  # noqa: BLE001 - closing must never hide the real error
                log.debug("closing the replay engine failed", exc_info=True)
        if state is not None:
            state.cleanup()

    def close(self) -> None:
        self._close_engine()

    @property
    def store(self) -> Any:
        return getattr(self.engine, "store", None)

    @property
    def interval_s(self) -> float:
        return float(self.settings.source.interval_s)

    # ---- the replayed clock --------------------------------------------------------------

    def _due(self) -> datetime | None:
        """The replayed moment of the next cycle."""
        source = self._source
        if source is None:
            return None
        if self._first:
            return source.now()
        snapshot = source.next_snapshot_at()  # a day recorded at the tick cadence: its snapshots
        if snapshot is not None:
            return max(snapshot, source.now())
        from optui.collectors.headless import next_cycle_at

        return next_cycle_at(source.now(), self.interval_s)

    def exchange_now(self) -> datetime | None:
        """The replayed clock: it runs at the speed since the last cycle (frozen while paused),
        never past the next cycle's moment."""
        with self._lock:
            anchor = self._anchor
            if anchor is None:
                return None
            if self.paused or self.ended:
                return anchor
            now = anchor + timedelta(seconds=(self._mono() - self._anchor_mono) * self.speed)
            due = self._due()
            return min(now, due) if due is not None and due > anchor else now

    def actual_speed(self) -> float | None:
        """The pace the replay really keeps: replayed seconds per real second over the last
        PACE_WINDOW_S real seconds of steady play (from the replayed clock at the cycles and
        now, against `monotonic`). Below `speed` when cycles take longer than the speed allows
        (a full chain at 10x). None while paused or ended, and until PACE_MIN_S real seconds
        have been played since the last start, jump, pause or change of speed."""
        if self.paused or self.ended:
            return None
        now_replayed = self.exchange_now()
        with self._lock:
            mono = self._mono()
            # The newest cycle at least PACE_WINDOW_S ago (older ones are dropped), else the first.
            first, last = (self._pace[0], self._pace[-1]) if self._pace else (None, None)
        if first is None or last is None or now_replayed is None:
            return None
        real = mono - first[0]
        if real < PACE_MIN_S:
            return None
        # Cycle to cycle; and to now, which falls while a cycle is overdue (the clock stops at
        # its moment). The smaller: between cycles the clock runs on at the asked speed.
        paces = [max(0.0, (now_replayed - first[1]).total_seconds()) / real]
        if last[0] > first[0]:
            paces.append((last[1] - first[1]).total_seconds() / (last[0] - first[0]))
        return min(paces)

    def _pace_restart(self) -> None:
        """Forget the measured pace: the speed or the position changed."""
        with self._lock:
            self._pace.clear()

    def _reanchor(self) -> None:
        now = self.exchange_now()
        with self._lock:
            self._anchor = now
            self._anchor_mono = self._mono()

    def delay_s(self) -> float:
        """Real seconds until the next cycle at the speed; infinite while paused or ended."""
        if self.paused or self.ended:
            return math.inf
        due, now = self._due(), self.exchange_now()
        if due is None or now is None:
            return 0.0
        return max(0.0, (due - now).total_seconds() / self.speed)

    def is_holiday(self, at: datetime) -> bool:
        return False  # a recorded day was a trading day

    # ---- control -------------------------------------------------------------------------

    def pause(self) -> None:
        """Freeze the replayed clock; cycles come only by `next_cycle` (a step)."""
        self._reanchor()
        self.paused = True
        self._pace_restart()

    def resume(self) -> None:
        with self._lock:
            self._anchor_mono = self._mono()
            self.paused = False
            self._pace.clear()

    def set_speed(self, speed: float) -> None:
        """Replayed seconds per real second from now on (above 0)."""
        if not speed > 0:
            raise ValueError(f"speed {speed}: must be above 0")
        self._reanchor()
        self.speed = float(speed)
        self._pace_restart()

    def jump_refusal(self, hhmm: str) -> str | None:
        """Why a jump to `hhmm` (IST) cannot be made (a malformed time, or one after the
        recording's last cycle, with the span the recording holds), or None when it can. Reads
        only the sessions known from the last start (again from the file when they refuse it:
        a day still being recorded grows)."""
        from optui.collectors.replay import plan_parts, recorded_sessions
        from optui.collectors.replay_source import replay_start
        from optui.errors import ConfigError

        try:
            start = replay_start(self.day, hhmm)
            sessions = [p.session for p in self._parts]
            try:
                plan_parts(sessions, start, first_holding=True)
            except ConfigError:
                if self._recording is None:
                    raise
                plan_parts(recorded_sessions(self._recording), start, first_holding=True)
        except ConfigError as exc:
            return str(exc)
        return None

    def jump(self, hhmm: str) -> str:
        """Start over at `hhmm` (IST) on the replayed day, forward or back: a new source, day
        state and store, so nothing is stored twice, primed from the recording before `hhmm`
        so the day's references (OI and IV change, flow) are the live run's. A day collected by
        several sessions goes to the first session holding `hhmm` (see plan_parts) and on to
        the sessions recorded after it. Raises ConfigError for a malformed time or one after
        the recording (`jump_refusal` says so without reading). Returns a line to log."""
        self._build(hhmm)
        primed = f" ({self.primed.describe()})" if self.primed is not None else ""
        return f"replay jumped to {self._clock_text()} IST{primed}{self.history_note}"

    def _clock_text(self) -> str:
        from optui.timeutil import IST

        now = self.exchange_now()
        return now.astimezone(IST).strftime("%H:%M:%S") if now is not None else "—"

    # ---- cycles --------------------------------------------------------------------------

    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        """Move the replayed clock to the next cycle's moment and collect it; None when the
        recording has ended (then `ended` is set and a health event says so)."""
        engine, source = self.engine, self._source
        if engine is None or source is None:
            raise RuntimeError("ReplayFeed.next_cycle before start()")
        if self.ended:
            return None
        due = self._due()
        if due is not None:
            source.advance((due - source.now()).total_seconds())
        if source.finished:
            if not self._next_session():
                self.ended = True
                self._reanchor()
                return None
            engine, source = self.engine, self._source
            assert engine is not None and source is not None
        snapshot = engine.collect_once()
        with self._lock:
            self._first = False
            self._anchor = source.now()
            self._anchor_mono = self._mono()
            if not self.paused:
                self._pace.append((self._anchor_mono, self._anchor))
                while len(self._pace) > 2 and self._anchor_mono - self._pace[1][0] > PACE_WINDOW_S:
                    self._pace.popleft()
        events, self._notes = self._notes, []
        return FeedCycle(snapshot, events, host="")


__all__ = ["SPEEDS", "ReplayFeed", "ReplayRequest", "next_speed"]
