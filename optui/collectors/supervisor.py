"""One collection attempt with the faults a trading day brings handled, for any loop that runs cycles.

`CycleSupervisor.attempt()` runs one engine cycle and turns every ordinary fault into an outcome
and a health event instead of an exit:

- a rejected access token pauses the source, raises TOKEN_REJECTED with the fix, and watches the
  secrets file; the first attempt after a new token is stored resumes with it (no restart);
- a source that is down or rate limited makes the cycle a recorded gap; after two failures in a
  row each attempt first sends one cheap probe, so the full cycle resumes on the first interval
  after the source answers again (no exponential sleep);
- while the source fails, the last good snapshot is the cached tier: its age on the exchange clock
  goes with every gap;
- a cycle slower than `slow_share` of the interval is flagged (SLOW_CYCLE).

Only a configuration error (or a rejected token with `pause_on_token=False`, the `--once` case) is
fatal. Textual-free: the headless collector and the app's feed wrap the same object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from optui.collectors.health import (
    EventKind,
    HealthEvent,
    HealthLog,
    Severity,
    SlowCycles,
    cycle_cadence,
    slow_cycle_event,
)
from optui.collectors.source import reads_local_clock
from optui.collectors.token_watch import SecretsWatch
from optui.errors import ConfigError, OptuiError, RateLimitedError, SourceError, TokenExpiredError
from optui.models import Snapshot

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine

log = logging.getLogger(__name__)

TOKEN_ACTION = (
    "log in again (`optui login`, or in the app optui → 3 Production → 2 Kite Connect "
    "authentication): the collector resumes on its own once the new token is stored"
)
HEALTH_MEASUREMENT = "collector_health"
FALLBACK_LABEL = "SIMULATED FALLBACK"
PROBE_AFTER_FAILURES = 2
"""Failures in a row after which each attempt starts with a cheap probe of the source."""


@dataclass
class Outcome:
    """One attempt's result: a stored snapshot, a recorded gap, or a fatal error (exit `code`)."""

    snapshot: Snapshot | None = None
    gap: str = ""
    fatal: str = ""
    code: int = 0
    cached: Snapshot | None = None
    cached_age_s: float | None = None
    slow: bool = False
    health_points: int = 0
    """collector_health points the store accepted for this attempt (stored or spooled)."""
    fallback: Snapshot | None = None
    """With source.simulated_fallback on, a gap's simulated stand-in (label SIMULATED FALLBACK):
    for display only, never stored, written to files or published."""

    @property
    def stored(self) -> bool:
        return self.snapshot is not None

    def gap_line(self, at: datetime, local_clock: bool = False) -> str:
        """'HH:MM:SS IST gap: <reason>; cached tier, cached 2m 10s (last good snapshot HH:MM:SS
        IST)' for a status line; `at` marked '(local clock)' when it is the machine's time (the
        source has not answered yet)."""
        from optui.collectors.health import at_ist
        from optui.timeutil import cached_label, fmt_ist

        text = f"{at_ist(at, local_clock)} gap: {self.gap}"
        if self.cached is not None and self.cached_age_s is not None:
            text += (f"; cached tier, {cached_label(self.cached_age_s)} "
                     f"(last good snapshot {fmt_ist(self.cached.timestamp)})")
        if self.fallback is not None:
            text += "; showing SIMULATED FALLBACK data (not stored)"
        return text


def simulated_fallback(engine: CollectionEngine) -> CollectionEngine:
    """A simulated stand-in for `engine`'s source from its exchange time on: same settings, no
    store, files or cache, its own day state, so nothing simulated reaches the live history."""
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.sim_source import SimulatedSource

    settings = engine.settings
    source = SimulatedSource(seed=settings.simulator.seed, start=engine.source.now())
    state = engine.state_dir.parent / "sim-fallback" if engine.state_dir is not None else None
    return CollectionEngine(settings, source, None, out_dir=None, state_dir=state)


class CycleSupervisor:
    """Runs `engine.collect_once()` under the fault policy above; counts cycles and gaps."""

    def __init__(self, engine: CollectionEngine, interval_s: float, health: HealthLog | None = None,
                 watch: SecretsWatch | None = None, slow_share: float = 0.8) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.health = health or HealthLog()
        self._watch = watch
        self.slow_share = slow_share
        self.failures = 0
        self.cycles = 0
        self.gaps = 0
        self.paused = False
        self.fix_shown = False
        """Whether a gap line of the current pause already carried the login fix."""
        self.last_good: Snapshot | None = None
        self.record_health = True
        self.fallback: CollectionEngine | None = None
        """A simulated engine with no store, files or cache (source.simulated_fallback)."""
        self.health_file: Path | None = None
        """Where each attempt's health summary is written for `optui doctor` (None: nowhere)."""
        self._synced = False
        self.collect: Callable[[], Snapshot] = engine.collect_once
        self._slow = SlowCycles(self.health, self._raise)
        """Runs one cycle: the engine's, or a feed's that also publishes it (optui.feed)."""

    @property
    def source(self):  # noqa: ANN201 - MarketSource
        return self.engine.source

    def _now(self) -> datetime:
        return self.source.now()

    def _event(self, kind: EventKind, severity: Severity, message: str, action: str = "") -> None:
        self._raise(HealthEvent(kind, severity, message, action, at=self._now(), source=self.source.name))

    def _raise(self, event: HealthEvent) -> None:
        """Record `event`; a new one goes to the log at its severity (a repeat does not). Its
        time is marked as the local clock's while the source has not given the exchange's."""
        if event.at is not None and not event.local_clock and reads_local_clock(self.source):
            event = replace(event, local_clock=True)
        severity = event.severity
        if self.health.raise_(event):
            level = {Severity.INFO: logging.INFO, Severity.WARNING: logging.WARNING,
                     Severity.ERROR: logging.ERROR}[severity]
            log.log(level, "%s", event.log_text())

    def watch(self) -> SecretsWatch:
        """The secrets-file watch (created on first use, so tests can point it anywhere)."""
        if self._watch is None:
            self._watch = SecretsWatch()
        return self._watch

    def cached_age_s(self) -> float | None:
        """Exchange seconds since the last good snapshot's market moment, None before one."""
        if self.last_good is None:
            return None
        return max(0.0, (self._now() - self.last_good.timestamp).total_seconds())

    def _gap(self, reason: str) -> Outcome:
        self.gaps += 1
        out = Outcome(gap=reason, cached=self.last_good, cached_age_s=self.cached_age_s())
        fallback = self.fallback
        if fallback is not None:
            try:
                snap = fallback.collect_once()
            except OptuiError as exc:
                log.warning("simulated fallback failed: %s", exc)
            else:
                snap.label = FALLBACK_LABEL
                out.fallback = snap
        return out

    def _pause(self, exc: TokenExpiredError) -> None:
        if not self.paused:
            self.watch().mark()
            self.fix_shown = False
        self.paused = True
        pending = not getattr(self.source, "has_token", True)
        from optui.collectors.kite_source import RELOGIN

        # The event's action says how to log in: its message says only what happened.
        reason = str(exc).replace(f": {RELOGIN}", "")
        self._event(EventKind.TOKEN_REJECTED, Severity.ERROR,
                    self.pause_reason() if pending else reason, TOKEN_ACTION)

    def _try_resume(self) -> bool:
        """While paused: take a new token from the secrets file when one was stored, else probe
        whether the current one is accepted again (a rejection that was not an expiry)."""
        watch = self.watch()
        pending = not getattr(self.source, "has_token", True)  # never had one: any stored token
        token = watch.token() if watch.changed() or pending else ""
        if pending and not token:
            return False
        if token:
            self.source.set_access_token(token)
            message = "a new access token was stored: collection resumes"
        else:
            try:
                self.source.probe()
            except SourceError:
                return False
            message = "the access token is accepted again: collection resumes"
        self.paused = False
        self._event(EventKind.TOKEN_RESTORED, Severity.INFO, message)
        return True

    def _paused_gap(self) -> str:
        """A paused attempt's gap reason: the login fix the first time in a pause, then a short
        reference to it (the health event keeps the full action throughout)."""
        if self.fix_shown:
            return f"source paused: {self.pause_reason()}: waiting for a Kite login (see above)"
        self.fix_shown = True
        return f"source paused: {self.pause_reason()}; {TOKEN_ACTION}"

    def pause_reason(self) -> str:
        """Why the source is paused, for a gap line: no token stored, or the token rejected."""
        if not getattr(self.source, "has_token", True):
            return "no Kite access token is stored"
        return "the Kite access token was rejected"

    def sync(self, pause_on_token: bool = True) -> Outcome | None:
        """Read a remote exchange's clock once (before the first session decision). A rejected
        or missing token pauses the source at once (the fault is raised now, not at the first
        cycle of the session); without `pause_on_token` it is a fatal outcome (exit 2). Other
        failures are left for the next attempt to report. Returns the fatal outcome or None."""
        if self._synced:
            return None
        if not pause_on_token and not getattr(self.source, "has_token", True):
            from optui.collectors.kite_source import LOGIN_FIX

            return Outcome(fatal=f"{self.pause_reason()}: {LOGIN_FIX}", code=2)  # nothing to wait for
        try:
            self.source.sync_clock()
            self._synced = True
        except TokenExpiredError as exc:
            if not pause_on_token or not self.source.accepts_token:
                return Outcome(fatal=str(exc), code=2)
            self._pause(exc)
        except OptuiError as exc:
            log.warning("exchange clock not read yet: %s", exc)
        return None

    def attempt(self, pause_on_token: bool = True) -> Outcome:
        """One cycle (or, paused or backing off, the cheap check that decides whether to run one);
        each attempt also stores a `collector_health` point (see `record`)."""
        outcome = self._attempt(pause_on_token)
        if not outcome.fatal:
            self.record(outcome)
        return outcome

    def write_health(self, cached_age_s: float | None = None) -> None:
        """Rewrite the health file (when set) with the log as it stands; a failure is logged."""
        if self.health_file is None:
            return
        from optui.collectors.health import health_document, write_health_file

        doc = health_document(self.health, self._now(), self.source.name, self.cycles,
                              self.gaps, cached_age_s, local_clock=reads_local_clock(self.source))
        try:
            write_health_file(self.health_file, doc)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.health_file, exc)

    def record(self, outcome: Outcome) -> None:
        """Store one `collector_health` point (tag `source`; fields `stored`, `gap` 0/1,
        `duration_s`, `open_faults`, `cached_age_s`) at the exchange time: the Grafana collector
        health dashboard reads it. A store failure is logged, never raised."""
        self.write_health(outcome.cached_age_s)
        store = getattr(self.engine, "store", None)
        if store is None or not self.record_health:
            return
        from optui.storage.base import clean_fields
        from optui.storage.points import Point

        snap = outcome.snapshot
        fields = {
            "stored": int(snap is not None), "gap": int(snap is None),
            "duration_s": snap.duration_s if snap is not None else float("nan"),
            "open_faults": len(self.health.open_faults()),
            "cached_age_s": outcome.cached_age_s if outcome.cached_age_s is not None else float("nan"),
        }
        at = snap.timestamp if snap is not None else self._now()
        try:
            outcome.health_points = store.write(
                [Point(HEALTH_MEASUREMENT, {"source": self.source.name}, clean_fields(fields), at)])
        except OptuiError as exc:
            log.warning("collector health point not stored: %s", exc)

    def _attempt(self, pause_on_token: bool) -> Outcome:
        self.cycles += 1
        try:
            if self.paused and not self._try_resume():
                return self._gap(self._paused_gap())
            if not self._synced:  # a remote exchange's clock is read before deciding anything
                self.source.sync_clock()
                self._synced = True
            if self.failures >= PROBE_AFTER_FAILURES:
                self.source.probe()
            snap = self.collect()
        except TokenExpiredError as exc:
            self.failures = 0
            if not pause_on_token or not self.source.accepts_token:
                return Outcome(fatal=str(exc), code=2)
            self._pause(exc)
            self.fix_shown = True  # the rejection's message carries the fix
            return self._gap(f"token rejected: {exc}")
        except ConfigError as exc:
            return Outcome(fatal=str(exc), code=2)
        except RateLimitedError as exc:
            self._event(EventKind.RATE_LIMITED, Severity.WARNING, str(exc), "the next cycle retries")
            return self._gap(str(exc))
        except SourceError as exc:
            self.failures += 1
            self._event(EventKind.SOURCE_DOWN, Severity.ERROR, str(exc),
                        "retrying every interval with a cheap probe first")
            if self.last_good is not None:
                self._event(EventKind.CACHED, Severity.WARNING,
                            "showing the last good snapshot (cached tier)", "wait for the source")
            return self._gap(f"{exc} (attempt {self.failures})")
        except OptuiError as exc:
            self._event(EventKind.CHECK, Severity.ERROR, str(exc))
            return self._gap(str(exc))
        if self.failures or self.health.is_open(EventKind.RATE_LIMITED):
            self._event(EventKind.SOURCE_BACK, Severity.INFO, "the source answers again")
        self.failures = 0
        self.last_good = snap
        out = Outcome(snapshot=snap)
        # The tick cadence's snapshots fit in snapshot_s; polled cycles and the snapshots that
        # store the legs in the interval. Raised once per slow spell, not per cycle.
        stats = getattr(self.engine, "last", None)
        cadence_s, cadence = cycle_cadence(self.interval_s, getattr(self.engine, "snapshot_s", None),
                                           getattr(stats, "legs_stored", True))
        budget = (self.source.real_seconds(cadence_s) * self.slow_share
                  if getattr(self.source, "judges_slow_cycles", True) else float("inf"))
        slow = slow_cycle_event(snap.duration_s, cadence_s, budget, self.slow_share,
                                self._now(), self.source.name, cadence)
        out.slow = self._slow.judge(slow, cadence, snap.timestamp)
        return out
