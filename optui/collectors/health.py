"""The collector's health: typed events (kind, severity, recovery action, status) and their log.

One model drives the app's health panel, the headless status lines and `optui doctor`: each fault
the collector meets becomes a `HealthEvent` that says what happened, how bad it is, what fixes it
and whether it is still open. Textual-free; thread-safe.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from pathlib import Path


class Severity(Enum):
    """How bad an event is: INFO (a recovery), WARNING (degraded), ERROR (data not collected)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


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


class Status(Enum):
    """OPEN: the fault still holds; RESOLVED: it cleared (the event stays in the log)."""

    OPEN = "open"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class HealthEvent:
    """One fault or recovery: `at` is the exchange time it was seen (aware), `action` the fix."""

    kind: EventKind
    severity: Severity
    message: str
    action: str = ""
    at: datetime | None = None
    status: Status = Status.OPEN
    source: str = ""

    def line(self) -> str:
        """'ERROR token_rejected: <message> -> <action>' for logs and status lines."""
        text = f"{self.severity.value.upper()} {self.kind.value}: {self.message}"
        if self.action:
            text += f" -> {self.action}"
        if self.status is Status.RESOLVED:
            text += " (resolved)"
        return text


# Which open fault a recovery event closes.
_RESOLVES: dict[EventKind, tuple[EventKind, ...]] = {
    EventKind.TOKEN_RESTORED: (EventKind.TOKEN_REJECTED,),
    EventKind.SOURCE_BACK: (EventKind.SOURCE_DOWN, EventKind.RATE_LIMITED, EventKind.CACHED),
}


@dataclass
class HealthLog:
    """The recent events (newest last, at most `keep`) and the faults still open, by kind."""

    keep: int = 200
    events: deque[HealthEvent] = field(default_factory=deque)
    _open: dict[EventKind, HealthEvent] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
        while len(self.events) > self.keep:
            self.events.popleft()

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


def health_document(health: HealthLog, at: datetime, source: str, cycles: int, gaps: int,
                    cached_age_s: float | None) -> dict:
    """A JSON-ready summary: when (exchange time, UTC ISO), counters, open faults, recent events."""

    def event(e: HealthEvent) -> dict:
        return {"kind": e.kind.value, "severity": e.severity.value, "message": e.message,
                "action": e.action, "status": e.status.value,
                "at": e.at.isoformat() if e.at is not None else None}

    return {
        "at": at.isoformat(), "source": source, "cycles": cycles, "gaps": gaps,
        "cached_age_s": cached_age_s,
        "open": [event(e) for e in health.open_faults()],
        "recent": [event(e) for e in health.recent(20)],
    }


def write_health_file(path: Path, document: dict) -> None:
    """Replace `path` atomically (temp file and rename) with `document` as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
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
