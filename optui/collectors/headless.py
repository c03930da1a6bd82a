"""`optui collect`: the collection loop for servers, one status line per cycle (at the tick
cadence one summary line per interval), clean shutdown."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from optui.alerts.model import Alert
from optui.collectors.cycle_stats import CLOCK_BACK_NOTE
from optui.collectors.engine import CLOCK_OFFSET_WARN_S, CollectionEngine
from optui.collectors.health import at_ist
from optui.collectors.session import closed_message, in_collection_hours, next_pre_open
from optui.collectors.source import reads_local_clock
from optui.collectors.supervisor import TOKEN_ACTION, CycleSupervisor, Outcome, simulated_fallback
from optui.errors import OptuiError, TokenExpiredError
from optui.heap import DayFreezer
from optui.logs import SHOWN
from optui.models import LOSS_KINDS, Snapshot, SnapshotWarning, WarningKind
from optui.timeutil import fmt_ist

SHOWN_PROBLEMS = 5
"""Problems printed under a status line; the rest are counted (all are in the log file)."""

if TYPE_CHECKING:
    from optui.feed.local import LocalFeed
    from optui.feed.model import FeedCycle

log = logging.getLogger(__name__)

FEED_STREAM_NOTE = "feed: stream ("
"""How a streaming source's note of the switch to the all-ticker tier begins
(optui.collectors.stream_source.StreamingSource.take_feed): the healthy state, not a warning."""


def is_healthy_note(warning: object) -> bool:
    """True for a cycle note that reports a return to health rather than a problem: the feed
    back on (or first reaching) the ticker alone, or the local clock back near the exchange's.
    Shown as a plain line, logged at INFO, and not counted in the status line's `warnings=`."""
    if not isinstance(warning, SnapshotWarning):
        return False
    return ((warning.kind is WarningKind.STREAM and warning.message.startswith(FEED_STREAM_NOTE))
            or (warning.kind is WarningKind.CLOCK_OFFSET and warning.message.startswith(CLOCK_BACK_NOTE)))


def problems(warnings: Iterable[object]) -> list[object]:
    """The warnings that are problems (every one but the healthy notes), in order."""
    return [w for w in warnings if not is_healthy_note(w)]


@dataclass
class Window:
    """The snapshots since the last summary line (tick cadence): how many, their durations
    (seconds) and the rows they stored and spooled; their warnings, each text once."""

    slot: int | None = None
    durations: list[float] = field(default_factory=list)
    stored: int = 0
    spooled: int = 0
    warnings: dict[str, object] = field(default_factory=dict)
    slow: int = 0  # snapshots flagged slow (each against its own cadence)

    last: Snapshot | None = None

    def add(self, snap: Snapshot, engine: CollectionEngine) -> None:
        self.last = snap
        self.durations.append(snap.duration_s)
        self.stored += engine.last.rows_stored
        self.spooled += engine.last.rows_spooled
        for warning in snap.warnings:
            self.warnings.setdefault(str(warning), warning)

    def summary(self) -> str:
        """'snapshots=N cycle_p50=0.12s cycle_p95=0.20s'."""
        import numpy as np

        d = np.array(self.durations) if self.durations else np.zeros(1)
        return (f"snapshots={len(self.durations)} cycle_p50={np.percentile(d, 50):.2f}s "
                f"cycle_p95={np.percentile(d, 95):.2f}s")


def status_line(snap: Snapshot, engine: CollectionEngine, window: Window | None = None) -> str:
    """One line per cycle: IST time, source, indices, legs, flags, duration, rows the database
    acknowledged this cycle (spool replays included), rows put in the spool while it is
    unreachable, and rows in a write still running past its budget (when any). Both counts are
    deltas of counters that only grow: over a run, stored plus what is still spooled at the end
    equals what was written (less refused lines). With a `window` (the tick cadence), the
    line sums the window's snapshots: their count, cycle time p50/p95, rows stored and spooled."""
    stats = engine.last
    stored = window.stored if window is not None else stats.rows_stored
    spooled = window.spooled if window is not None else stats.rows_spooled
    parts = [
        fmt_ist(snap.timestamp),
        f"source={engine.source_label.lower()}",
        f"indices={','.join(snap.indices) or '-'}",
        f"legs={snap.leg_count}",
        f"flagged={snap.flagged_count}",
        f"duration={snap.duration_s:.2f}s" if window is None else window.summary(),
        f"stored={stored}",
        f"spooled={spooled}",
    ]
    if stats.rows_inflight:
        parts.append(f"inflight={stats.rows_inflight}")
    if stats.feed:
        parts.append(f"feed={stats.feed}")
    offset = stats.clock_offset_s
    if offset is not None and abs(offset) > CLOCK_OFFSET_WARN_S:
        parts.append(f"clock_offset={offset:+.0f}s")
    if stats.json_files or stats.csv_rows:
        parts.append(f"files={stats.json_files}json/{stats.csv_rows}csv")
    warned = len(problems(window.warnings.values() if window is not None else snap.warnings))
    if warned:
        parts.append(f"warnings={warned}")
    if snap.alerts:
        parts.append(f"alerts={len(snap.alerts)}")
    return " ".join(parts)


_ALERT_STYLE = {"info": "cyan", "warning": "magenta", "critical": "bold red"}


def alert_line(alert: Alert) -> str:
    """One printed line per alert: IST time, severity, rule and message."""
    return f"  alert {fmt_ist(alert.at)} {alert.severity.upper()} {alert.rule}: {alert.message}"


UNREAD_CLOCK = "exchange clock not read yet (no answer from the source carried its time)"
"""Why nothing is decided while a remote exchange has not answered with its clock."""


def next_cycle_at(after: datetime, interval_s: float) -> datetime:
    """The next multiple of the interval on the exchange clock after `after` (cycles land on
    :00, :05 ... whoever collects), in `after`'s zone."""
    step = max(interval_s, 1e-3)
    return datetime.fromtimestamp((after.timestamp() // step + 1) * step, after.tzinfo)


FIRST_RETRY_S = (2.0, 4.0, 8.0, 15.0)
"""Exchange seconds from a failed attempt to the next while no cycle has been stored yet
(doubling, bounded at 15 s); never later than the interval's own next slot."""


def first_retry_at(after: datetime, failures: int) -> datetime:
    """The exchange time of the quick retry after `failures` (1, 2 ...) failed attempts in a row
    with nothing stored yet: `after` plus FIRST_RETRY_S's entry (its last once past its end)."""
    from datetime import timedelta

    return after + timedelta(seconds=FIRST_RETRY_S[min(max(failures, 1), len(FIRST_RETRY_S)) - 1])


class Collector:
    """Runs cycles every `interval` seconds until stopped; never overlaps cycles."""

    def __init__(self, engine: CollectionEngine, interval: float, out: TextIO = sys.stdout,
                 printer: Callable[[str, str], None] | None = None,
                 sleep: Callable[[float], object] | None = None, slow_share: float = 0.8,
                 feed: LocalFeed | None = None) -> None:
        """`interval` is in exchange seconds; `sleep(real_seconds)` waits (default: until a stop);
        a cycle over `slow_share` of the interval is flagged slow. Cycles come from `feed`
        (default: a LocalFeed over `engine`), which publishes them to attached consumers."""
        from optui.feed.local import LocalFeed

        self.engine = engine
        self.feed = feed or LocalFeed(engine, interval_s=interval)
        self.interval = interval
        self.out = out
        self.stop_event = threading.Event()
        self.cycles = 0  # cycles collected (for --summary-json)
        self.points = 0  # points the store accepted (stored or spooled)
        self._print = printer or self._plain
        self._sleep = sleep or self.stop_event.wait
        # One health log: the feed's (its cycles carry the events to attached consumers).
        self.supervisor = CycleSupervisor(engine, interval, health=self.feed.health, slow_share=slow_share)
        self.feed.slow_share = None  # the supervisor flags slow cycles
        self.feed.writes_health, self.feed.health_file = False, None  # the supervisor writes it
        self._cycle: FeedCycle | None = None
        self.supervisor.collect = self._collect
        settings = getattr(engine, "settings", None)
        if settings is not None and settings.source.simulated_fallback and engine.source_label == "LIVE":
            self.supervisor.fallback = simulated_fallback(engine)  # opted in: display only
        self._slot: datetime | None = None  # the exchange time of the cycle slot last waited for
        self._quick_retries = 0  # failed attempts in a row before the first stored cycle
        self._unread_reads = 0  # clock reads in a row that gave no exchange time (`_clock_unread`)
        self._window = Window()  # at the tick cadence: the snapshots since the last summary
        self._freezer = DayFreezer()  # garbage-collection policy (optui.heap)

    def _collect(self) -> Snapshot:
        """One cycle from the feed, published after the supervisor judged it (see `_publish`)."""
        self._cycle = self.feed.next_cycle(publish=False, wait_ticks=False)
        assert self._cycle.snapshot is not None  # a local feed's cycles always carry one
        return self._cycle.snapshot

    def _publish(self, outcome: Outcome) -> None:
        """Publish the attempt: the collected cycle, or a gap with the events that say why."""
        cycle, self._cycle = self._cycle, None
        try:
            if outcome.snapshot is not None and cycle is not None:
                self.feed.publish(cycle)
            else:
                cached = outcome.cached_age_s if outcome.cached is not None else None
                self.feed.publish_gap(outcome.gap, cached)
        except Exception:  # noqa: BLE001 - publishing never stops collection
            log.exception("publishing the cycle failed")

    def _summarise(self, snap: Snapshot, slow: bool) -> None:
        """At the tick cadence: alerts at once; one summary line (with the window's warnings,
        also to the log) at the first snapshot of each interval of exchange time."""
        for alert in snap.alerts:
            self._print(alert_line(alert), _ALERT_STYLE.get(alert.severity, ""))
        window = self._window
        slot = int(snap.timestamp.timestamp() // self.interval)
        window.add(snap, self.engine)
        window.slow += slow
        if window.slot is not None and slot == window.slot:
            return
        window.slot = slot
        slow = window.slow > 0  # any snapshot of the window: a slow one is not missed
        line = status_line(snap, self.engine, window) + (f" slow={window.slow}" if slow else "")
        found = list(window.warnings.values())
        self._print(line, "green" if not problems(found) and not slow else "yellow")
        self._warnings(found, f"cycles to {fmt_ist(snap.timestamp)}")
        self._window = Window(slot)

    def _warnings(self, warnings: list[object], where: str) -> None:
        """Under a status line: healthy notes as plain lines (logged at INFO), then up to
        SHOWN_PROBLEMS problems as `warning:` lines and how many more there are; every problem
        goes to the log file (not again to stderr: it is on stdout already)."""
        for note in warnings:
            if is_healthy_note(note):
                self._print(f"  {note}", "green")
                log.info("%s: %s", where, note)
        found = problems(warnings)
        for warning in found[:SHOWN_PROBLEMS]:
            self._print(f"  warning: {warning}", "yellow")
        if len(found) > SHOWN_PROBLEMS:
            self._print(f"  ... and {len(found) - SHOWN_PROBLEMS} more warning(s), every one in "
                        f"{self._log_path()}", "yellow")
        for warning in found:
            log.warning("%s: %s", where, warning, extra=SHOWN)

    def _log_path(self) -> str:
        """The log file the warnings go to (as configured), for the operator to read on."""
        settings = getattr(self.engine, "settings", None)
        if settings is None:
            return "the log file"
        from optui.logs import log_file

        return str(log_file(settings))

    def _plain(self, line: str, style: str = "") -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM finish the current cycle (its write included), then stop."""
        def handler(signum: int, _frame: object) -> None:
            self._print(f"received {signal.Signals(signum).name}: stopping after the current cycle", "yellow")
            self.stop_event.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def _exchange_now(self) -> datetime:
        return self.engine.source.now()

    def _local_clock(self) -> bool:
        """Whether times read now are only this machine's (no exchange answer yet): such times
        are shown with "(local clock)", as health shows them."""
        return reads_local_clock(self.engine.source)

    def _when(self) -> str:
        """'HH:MM:SS IST' on the exchange clock now, marked '(local clock)' before its first answer."""
        return at_ist(self._exchange_now(), self._local_clock())

    def _wait_exchange(self, until: datetime, chunk_s: float = 60.0) -> None:
        """Sleep until the exchange clock reads `until` (or a stop), re-reading it every chunk."""
        source = self.engine.source
        while not self.stop_event.is_set():
            left = (until - self._exchange_now()).total_seconds()
            if left <= 0:
                return
            wait = source.real_seconds(left)
            self._sleep(min(wait, chunk_s))
            if wait > chunk_s:  # a long wait (a closed market): re-read a remote clock
                try:
                    source.sync_clock()
                except TokenExpiredError as exc:  # the 06:00 IST expiry during the night
                    if not self.supervisor.paused:  # a paused source's fault is in health already
                        log.warning("clock sync during the wait: %s", exc)

    def _tighten_clock(self, slot: datetime) -> None:
        """Before waiting for `slot`: the timed clock probes a remote source wants (a drifted
        or fresh clock), in the wait, ending half a second before the slot. A failed probe is
        only logged: the next cycle meets the fault."""
        source = self.engine.source
        left = source.real_seconds((slot - self._exchange_now()).total_seconds()) - 0.5
        if left <= 0 or self.stop_event.is_set():
            return
        try:
            source.tighten_clock(left)
        except OptuiError as exc:
            log.debug("clock probe before the next cycle failed: %s", exc)

    def _clock_unread(self) -> bool:
        """True while a remote exchange has not answered with its clock (every request of the
        clock reads so far failed without a `Date` header: timeouts, refused connections).
        Nothing may then be decided on this machine's clock: the session (closed, a wait for the
        next pre-open by the machine's date), the pre-market capture, the cycle's slot. Each
        such pass says so, waits FIRST_RETRY_S's backoff in real seconds (the only clock there
        is) and reads the exchange's clock again; the caller decides again after it."""
        if not self._local_clock():
            self._unread_reads = 0
            return False
        self._unread_reads += 1
        wait_s = FIRST_RETRY_S[min(self._unread_reads, len(FIRST_RETRY_S)) - 1]
        line = f"{self._when()} gap: {UNREAD_CLOCK}; reading it again in {wait_s:g} s"
        log.warning("%s", line, extra=SHOWN)
        self._print(line, "red")
        self._sleep(wait_s)
        if not self.stop_event.is_set():
            try:
                self.engine.source.sync_clock()
            except OptuiError as exc:  # a rejected token reads the clock from the refusal
                log.warning("exchange clock read: %s", exc)
        return True

    def _first_cycle_retry_at(self, now: datetime, stored: bool) -> datetime | None:
        """When nothing has been stored yet and the last attempt was an ordinary gap (not a
        paused source): the quick retry's exchange time, `first_retry_at`; else None (the
        interval's cadence). Each retry is an attempt of its own, counted and recorded as a gap."""
        sup = self.supervisor
        if stored or sup.last_good is not None or sup.paused:
            self._quick_retries = 0
            return None
        self._quick_retries += 1
        return first_retry_at(now, self._quick_retries)

    def _next_cycle_at(self, after: datetime) -> datetime:
        """The next multiple of the interval on the exchange clock (cycles land on :00, :05...)."""
        return next_cycle_at(after, self.interval)

    def _market_closed(self, once: bool) -> bool:
        """Outside the session: say so; without `once`, wait for the next pre-open.

        Returns True when the caller should not collect now (closed and `once`, or stopped)."""
        source = self.engine.source
        now = self._exchange_now()
        if in_collection_hours(now, source.is_trading_day):
            return False
        opens = next_pre_open(now, source.is_trading_day)
        self._print(closed_message(now, opens, source.is_trading_day, self._local_clock())
                    + ("" if once else "; waiting"), "yellow")
        if once:
            return True
        due = getattr(self.engine, "premarket_due", None)
        capture = due(now, opens) if callable(due) else None
        if capture is not None:  # the pre-market capture (08:00 IST) runs before the session
            self._wait_exchange(capture)
            if not self.stop_event.is_set():
                self.engine.tick_premarket(self._exchange_now())
        self._wait_exchange(opens)
        return self.stop_event.is_set()

    def run(self, once: bool = False) -> int:
        """Exit code: 0 on a clean stop, 2 on a configuration or login problem; with `once`, 1
        when the cycle collected nothing or could not persist it (cron must see that).

        Cycles follow the exchange clock: none outside the session (with `once` that is a clean
        exit 0 without writing), and each on the next multiple of the interval.
        """
        try:
            return self._run(once)
        finally:
            self._freezer.thaw()

    def _run(self, once: bool) -> int:
        supervisor = self.supervisor
        while not self.stop_event.is_set():
            was_paused = supervisor.paused
            # A remote exchange's clock is read before deciding anything; a missing or rejected
            # token pauses the source now (with --once it ends the run: nothing to wait for).
            failed = supervisor.sync(pause_on_token=not once)
            if failed is not None:
                log.error("collect stopped: %s", failed.fatal)
                self._print(f"error: {failed.fatal}", "red")
                return failed.code
            if supervisor.paused and not was_paused:
                self._print(f"{self._when()} paused: {supervisor.pause_reason()}; "
                            f"{TOKEN_ACTION}", "red")
                supervisor.fix_shown = True  # later gap lines refer to this one
                supervisor.write_health()  # doctor and attached consumers see it now
                self._publish(Outcome(gap=f"source paused: {supervisor.pause_reason()}"))
            if self._clock_unread():
                if once and self._unread_reads >= len(FIRST_RETRY_S) and self._local_clock():
                    self._print(f"error: {UNREAD_CLOCK}", "red")
                    return 1
                continue
            if self._market_closed(once):
                return 0
            supervisor.record_health = not once  # a cron run's cadence shows in its own rows
            self.feed.drain_captures(self._exchange_now())  # the 08:00 capture's, into the health file
            outcome = supervisor.attempt(pause_on_token=not once)
            self.points += outcome.health_points
            if not outcome.fatal:
                self._publish(outcome)
            if outcome.fatal:
                log.error("collect stopped: %s", outcome.fatal)
                self._print(f"error: {outcome.fatal}", "red")
                return outcome.code
            snap = outcome.snapshot
            if snap is not None and not once:  # what lives all day: out of later collections
                self._freezer.snapshot(snap.timestamp)
            if snap is not None and not once and getattr(self.engine, "snapshot_s", None) is not None:
                self.cycles += 1
                self.points += self.engine.last.rows_written
                self._summarise(snap, outcome.slow)
            elif snap is not None:
                self.cycles += 1
                self.points += self.engine.last.rows_written
                line = status_line(snap, self.engine) + (" slow" if outcome.slow else "")
                self._print(line, "green" if not problems(snap.warnings) and not outcome.slow else "yellow")
                self._warnings(list(snap.warnings), f"cycle {fmt_ist(snap.timestamp)}")
                for alert in snap.alerts:
                    self._print(alert_line(alert), _ALERT_STYLE.get(alert.severity, ""))
                lost = [w for w in snap.warnings if w.kind in LOSS_KINDS]
                if once and (lost or not snap.indices):
                    return 1
            else:
                self._print_gap(outcome)
                if once:
                    return 1
            if once:
                break
            # The tick cadence after a snapshot; after a gap (a failing or paused source, probed
            # once per attempt) the interval schedule, so a fault never becomes a busy loop.
            if snap is not None and self.feed.wait_snapshot(self.stop_event):
                continue  # the next snapshot's ticks are in
            # A fixed period on the exchange clock, whatever the cycle took or however it failed;
            # never the slot just run again (a new clock reading can step back below it).
            now = self._exchange_now()
            slot = self._next_cycle_at(now if self._slot is None else max(now, self._slot))
            soon = self._first_cycle_retry_at(now, snap is not None)
            if soon is not None and soon < slot:
                self._wait_exchange(soon)  # the slot is kept: a success there resumes the cadence
                continue
            self._slot = slot
            self._tighten_clock(slot)
            self._wait_exchange(slot)
        self._flush_window()
        return 0

    def _print_gap(self, outcome: Outcome) -> None:
        """A gap line (also to the log), after the summary of the window's snapshots before it:
        held until the stop, that summary came after the gap lines, its time before theirs."""
        self._flush_window("before the gap")
        gap = outcome.gap_line(self._exchange_now(), self._local_clock())
        log.info("%s", gap)  # every gap in the log; a new fault also at its severity
        self._print(gap, "red")

    def _flush_window(self, where: str = "at the stop") -> None:
        """At a stop or a gap, at the tick cadence: the summary of the snapshots since the last
        summary line, if any, with the window's warnings and what the source noticed after the
        last snapshot (a replay that read on to a cut recording says so)."""
        window = self._window
        self._window = Window()
        if getattr(self.engine, "snapshot_s", None) is None:
            return
        take = getattr(self.engine, "source_notices", None)
        late = list(take()) if callable(take) else []
        found = list({str(w): w for w in [*window.warnings.values(), *late]}.values())
        if window.durations and window.last is not None:
            self._print(status_line(window.last, self.engine, window),
                        "yellow" if problems(found) else "green")
        self._warnings(found, where)


def exit_report(collector: Collector, summary_json: Path | None = None) -> int:
    """After the engine is closed: say how many points are still spooled and where (also to the
    log), and write `{"cycles": N, "points": M, "pending": P}` to `summary_json` when given.

    `points` counts points the store accepted (stored or spooled); `pending` those still in the
    spool. Returns `pending`. Raises OSError when the summary cannot be written.
    """
    store = collector.engine.store
    pending, where = store.pending() if store is not None else (0, "")
    if pending:
        text = (f"{pending} point(s) still spooled in {where}: they are written when the store answers "
                "again (the next optui collect replays them first)")
        log.warning("%s", text, extra=SHOWN)
        collector._print(f"warning: {text}", "yellow")
    if summary_json is not None:
        from optui.storage.legacy_files import write_atomic

        summary = {"cycles": collector.cycles, "points": collector.points, "pending": pending}
        write_atomic(Path(summary_json), json.dumps(summary) + "\n")
    return pending
