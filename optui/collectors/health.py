"""The collector's health: typed events (kind, severity, recovery action, status) and their log.

One model drives the app's health panel, the headless status lines, the collector's health file
and `optui doctor`: each fault the collector meets becomes a `HealthEvent` that says what
happened, how bad it is, what fixes it and whether it is still open. Feed cycles carry them
(optui.feed.model.FeedCycle.health), so a dashboard attached to a collector elsewhere sees the
same events. One dict shape (`HealthEvent.as_dict`) serves the feed payload and the health file.
Textual-free; thread-safe.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

from optui.timeutil import IST


class Severity(Enum):
    """How bad an event is: INFO (a recovery), WARNING (degraded), ERROR (data not collected)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @classmethod
    def _missing_(cls, value: object) -> Severity:
        """A severity this build does not know (a newer collector's) reads as a warning."""
        return cls.WARNING


class EventKind(Enum):
    """What kind of fault (or recovery) an event reports."""

    TOKEN_REJECTED = "token_rejected"
    TOKEN_RESTORED = "token_restored"
    SOURCE_DOWN = "source_down"
    SOURCE_BACK = "source_back"
    RATE_LIMITED = "rate_limited"
    STORE_SLOW = "store_slow"
    STORE_DOWN = "store_down"
    SLOW_CYCLE = "slow_cycle"
    CACHED = "cached"
    CONFIG = "config"
    CHECK = "check"
    PARTICIPANTS_CAPTURED = "participants_captured"
    PARTICIPANTS_CAPTURE_FAILED = "participants_capture_failed"
    OTHER = "other"

    @classmethod
    def _missing_(cls, value: object) -> EventKind:
        """A kind this build does not know (a newer collector's) reads as OTHER, never an error."""
        return cls.OTHER


class Status(Enum):
    """OPEN: the fault still holds; RESOLVED: it cleared (the event stays in the log)."""

    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class HealthEvent:
    """One fault or recovery: `at` is the exchange time it was seen (aware), `action` the fix;
    `local_clock` when `at` could only be read from this machine's clock (before the source's
    first answer), so it is shown with "(local clock)"."""

    kind: EventKind
    severity: Severity
    message: str
    action: str = ""
    at: datetime | None = None
    status: Status = Status.OPEN
    source: str = ""
    local_clock: bool = False

    @property
    def level(self) -> str:
        """The severity's name: info, warning or error."""
        return self.severity.value

    def text(self) -> str:
        """'<message> → <action> (resolved)' for a health panel (its time and level shown apart)."""
        text = self.message + (f" → {self.action}" if self.action else "")
        return text + (" (resolved)" if self.status is Status.RESOLVED else "")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: {"kind", "severity", "message", "action", "status", "at" (ISO or None),
        "source"}, and "local_clock": true when it holds; the one shape of the feed payload and
        the health file."""
        out: dict[str, Any] = {
            "kind": self.kind.value, "severity": self.severity.value, "message": self.message,
            "action": self.action, "status": self.status.value,
            "at": self.at.isoformat() if self.at is not None else None, "source": self.source}
        if self.local_clock:
            out["local_clock"] = True
        return out

    def when(self) -> str:
        """'10:15:03 IST', with ' (local clock)' when the time is the machine's; '' without a time."""
        return at_ist(self.at, self.local_clock) if self.at is not None else ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthEvent:
        """The event `as_dict` wrote; unknown kinds read as OTHER, missing fields take their
        defaults. Raises ValueError (bad time) or TypeError/AttributeError (not a dict)."""
        at = data.get("at")
        return cls(EventKind(str(data.get("kind", "other"))), Severity(str(data.get("severity", "warning"))),
                   str(data.get("message", "")), str(data.get("action") or ""),
                   datetime.fromisoformat(at) if at else None,
                   Status.RESOLVED if data.get("status") == "resolved" else Status.OPEN,
                   str(data.get("source") or ""), data.get("local_clock") is True)

    def line(self) -> str:
        """'ERROR token_rejected: <message> -> <action>' for status lines."""
        return f"{self.severity.value.upper()} {self.log_text()}"

    def log_text(self) -> str:
        """'token_rejected: <message> -> <action>' for a log record (which carries the level)."""
        text = f"{self.kind.value}: {self.message}"
        if self.action:
            text += f" -> {self.action}"
        if self.status is Status.RESOLVED:
            text += " (resolved)"
        return text


# Which open fault a recovery event closes.
_RESOLVES: dict[EventKind, tuple[EventKind, ...]] = {
    EventKind.TOKEN_RESTORED: (EventKind.TOKEN_REJECTED,),
    EventKind.SOURCE_BACK: (EventKind.SOURCE_DOWN, EventKind.RATE_LIMITED, EventKind.CACHED),
    EventKind.PARTICIPANTS_CAPTURED: (EventKind.PARTICIPANTS_CAPTURE_FAILED,),
}


@dataclass
class HealthLog:
    """The recent events (newest last, at most `keep`) and the faults still open, by kind."""

    keep: int = 200
    events: deque[HealthEvent] = field(default_factory=deque)
    _open: dict[EventKind, HealthEvent] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    appended: int = 0
    """Events appended so far (a cursor for `since`)."""

    def raise_(self, event: HealthEvent) -> bool:
        """Record `event`; a recovery resolves the faults it closes. Returns False when the same
        kind was already open with the same message (a repeat is not logged twice)."""
        with self._lock:
            for kind in _RESOLVES.get(event.kind, ()):
                old = self._open.pop(kind, None)
                if old is not None:
                    self._append(replace(old, status=Status.RESOLVED, at=event.at))
            if event.severity is Severity.INFO:
                self._append(event)
                return True
            old = self._open.get(event.kind)
            self._open[event.kind] = event
            if old is not None and old.message == event.message:
                return False
            self._append(event)
            return True

    def resolve(self, kind: EventKind, at: datetime | None = None) -> HealthEvent | None:
        """Close the open fault of `kind` (if any) and return it, marked RESOLVED."""
        with self._lock:
            old = self._open.pop(kind, None)
            if old is None:
                return None
            done = replace(old, status=Status.RESOLVED, at=at or old.at)
            self._append(done)
            return done

    def _append(self, event: HealthEvent) -> None:
        self.events.append(event)
        self.appended += 1
        while len(self.events) > self.keep:
            self.events.popleft()

    def since(self, cursor: int) -> tuple[list[HealthEvent], int]:
        """Events appended after `cursor` (an earlier `appended`), oldest first, and the new
        cursor; events that fell out of the bounded log meanwhile are not returned."""
        with self._lock:
            new = min(self.appended - cursor, len(self.events))
            return (list(self.events)[len(self.events) - new:] if new > 0 else []), self.appended

    def open_faults(self) -> list[HealthEvent]:
        """Faults still open, worst first."""
        order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
        with self._lock:
            return sorted(self._open.values(), key=lambda e: order[e.severity])

    def is_open(self, kind: EventKind) -> bool:
        """Whether a fault of `kind` is open."""
        with self._lock:
            return kind in self._open

    def recent(self, n: int = 20) -> list[HealthEvent]:
        """The last `n` events, oldest first."""
        with self._lock:
            return list(self.events)[-n:]

    @property
    def worst(self) -> Severity | None:
        """The worst open severity, None when nothing is open."""
        faults = self.open_faults()
        return faults[0].severity if faults else None


HEALTH_FILE = "collector_health.json"
"""Written beside the day state (data_dir/state/) after every attempt; `optui doctor` reads it."""


def at_ist(at: datetime, local_clock: bool = False, fmt: str = "%H:%M:%S") -> str:
    """`at` in IST as `fmt` plus ' IST', and ' (local clock)' when it is the machine's time."""
    return f"{at.astimezone(IST).strftime(fmt)} IST" + (" (local clock)" if local_clock else "")


def health_document(health: HealthLog, at: datetime, source: str, cycles: int, gaps: int,
                    cached_age_s: float | None, local_clock: bool = False) -> dict:
    """A JSON-ready summary: when (exchange time, UTC ISO; "local_clock": true when it is only
    the machine's), counters, open faults, recent events."""

    return {
        "at": at.isoformat(), "local_clock": local_clock, "source": source, "cycles": cycles, "gaps": gaps,
        "cached_age_s": cached_age_s,
        "open": [e.as_dict() for e in health.open_faults()],
        "recent": [e.as_dict() for e in health.recent(20)],
    }


def write_health_file(path: Path, document: dict) -> None:
    """Replace `path` atomically (temp file and rename) with `document` as JSON, mode 0600:
    its event messages quote the source's errors, which are for this user's eyes only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an older file of another mode is rewritten 0600
        out.write(json.dumps(document, indent=1))
    os.replace(tmp, path)


def read_health_file(path: Path) -> dict | None:
    """The last document a collector wrote, or None when there is none or it is unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def source_down_event(error: str, cached_age_s: float | None, at: datetime) -> HealthEvent:
    """A failed cycle as a SOURCE_DOWN event; with a last good snapshot, its age (cached tier)."""
    message = error
    if cached_age_s is not None:
        message += f"; showing the last good snapshot, {cached_age_s:.0f}s old (cached)"
    return HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, message,
                       "retrying every interval; the panels keep the cached data meanwhile", at=at)


SNAPSHOT_CADENCE = "snapshot cadence"
INTERVAL = "interval"


def slow_cycle_event(duration_s: float, interval_s: float, budget_s: float, share: float,
                     at: datetime, source: str = "", cadence: str = INTERVAL) -> HealthEvent | None:
    """SLOW_CYCLE when a cycle took longer than `budget_s` real seconds (`share` of the
    `interval_s` exchange seconds it must fit in, converted to real time by the source), else
    None. `cadence` names those seconds: INTERVAL (`source.interval_s`, a polled cycle or a
    snapshot that stores the legs) or SNAPSHOT_CADENCE (`source.snapshot_s`, the tick
    cadence's other snapshots)."""
    if interval_s <= 0 or duration_s <= budget_s:
        return None
    action = ("raise source.snapshot_s or quote fewer strikes (source.chain_strikes)"
              if cadence == SNAPSHOT_CADENCE else
              "quote fewer strikes (source.chain_strikes) or raise source.interval_s")
    return HealthEvent(EventKind.SLOW_CYCLE, Severity.WARNING,
                       f"cycle took {duration_s:.1f}s, over {share:.0%} of the {interval_s:g}s {cadence}",
                       action, at=at, source=source)


def cycle_cadence(interval_s: float, snapshot_s: float | None, legs_stored: bool) -> tuple[float, str]:
    """The exchange seconds a cycle must fit in, and their name (see `slow_cycle_event`): at the
    tick cadence (`snapshot_s` set) a snapshot that did not store the legs must fit in
    `snapshot_s`, else the next second's snapshot is late; one that stored them (the first of
    each `interval_s` slot, or every cycle while the stream is down and cycles run at the
    interval) in `interval_s`, as a polled cycle."""
    if snapshot_s is None or snapshot_s <= 0 or legs_stored:
        return interval_s, INTERVAL
    return snapshot_s, SNAPSHOT_CADENCE


class SlowCycles:
    """Raises SLOW_CYCLE once per slow spell (through `raise_`, default `health.raise_`) and
    resolves it when a cycle of the same cadence (see `cycle_cadence`) fits again: at the tick
    cadence a slow leg-storing snapshot is not resolved by the quick snapshots between it and
    the next one, so a persistent fault is one event, not one per interval."""

    def __init__(self, health: HealthLog,
                 raise_: Callable[[HealthEvent], object] | None = None) -> None:
        self.health = health
        self._raise = raise_ or health.raise_
        self._open: str | None = None  # the cadence of the open SLOW_CYCLE event

    def judge(self, event: HealthEvent | None, cadence: str, at: datetime) -> bool:
        """Record one cycle judged against `cadence` (`event`: its `slow_cycle_event`, None
        when it fitted); True when it was slow."""
        open_ = self.health.is_open(EventKind.SLOW_CYCLE)
        if event is not None:
            if not open_:
                self._raise(event)
                self._open = cadence
            return True
        if open_ and self._open in (None, cadence):
            self.health.resolve(EventKind.SLOW_CYCLE, at)
            self._open = None
        return False


def capture_event(event: Any, at: datetime, offline: bool = False) -> HealthEvent:
    """A pre-market capture event (optui.collectors.premarket CaptureStored / CaptureFailed) as
    a health event: stored is INFO, a failed attempt WARNING while retries remain, ERROR once
    final; `offline` (local files only, a simulated market) keeps a final failure a WARNING."""
    kind = EventKind(str(getattr(event, "kind", "other")))
    if kind is EventKind.PARTICIPANTS_CAPTURED:
        severity, action = Severity.INFO, ""
    elif getattr(event, "final", False) and offline:
        severity, action = Severity.WARNING, "import NSE's files: optui participants import PATH"
    elif getattr(event, "final", False):
        closes_only = set(getattr(event, "missing", ())) == {"closes"}
        severity = Severity.ERROR
        action = "" if closes_only else "import NSE's files: optui participants import PATH"
    else:
        severity, action = Severity.WARNING, "retried before the open"
    return HealthEvent(kind, severity, event.message(), action, at=getattr(event, "at", None) or at)
