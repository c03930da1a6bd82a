"""What the API serves from: the newest collection cycle, recent alerts and health events, the
store for history, and how the data is reached (collecting here, attached, or no collector).

`ApiState.offer(cycle)` is called by the feed's thread (the collector's own LocalFeed, or the
thread following an attached feed) and never blocks: cycles go to one hub thread, which keeps
the newest, precomputes its overview and hands updates to WebSocket clients (optui.api.hub).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from optui.alerts.model import Alert
from optui.feed.model import FeedCycle, HealthEvent
from optui.models import Snapshot, source_badge

if TYPE_CHECKING:
    from optui.api.hub import Hub
    from optui.config import Settings

log = logging.getLogger("optui.api")

ALERTS_KEPT = 1000
HEALTH_KEPT = 200
CYCLES_QUEUED = 8
"""Cycles waiting for the hub thread; beyond this the oldest is dropped (never the feed's wait)."""


@dataclass(slots=True)
class Latest:
    """The newest cycle and what was precomputed from it; `received` is local monotonic time."""

    cycle: FeedCycle
    snapshot: Snapshot
    received: float
    summary: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Collector:
    """How this server reaches collection cycles: mode "local" (inside `optui collect`),
    "attached" (following a running collector) or "none" (store history only)."""

    mode: str = "none"
    host: str = ""
    description: str = ""


class ApiState:
    """Everything the routes read; safe to read from any thread (whole-object swaps)."""

    def __init__(self, settings: Settings, store: Any = None, interval_s: float | None = None) -> None:
        self.settings = settings
        self.store = store
        self.interval_s = float(interval_s if interval_s is not None else settings.source.interval_s)
        self.collector = Collector()
        self.latest: Latest | None = None
        self.alerts: deque[Alert] = deque(maxlen=ALERTS_KEPT)
        self.health: deque[HealthEvent] = deque(maxlen=HEALTH_KEPT)
        self.cycles_seen = 0
        self.gap: tuple[str, datetime | None] | None = None
        """The newest gap (a cycle the collector could not collect): its reason and exchange
        time; None once a cycle arrives after it."""
        self.started = time.monotonic()
        self.hub: Hub | None = None
        self._calendar: Any = None
        self._queue: deque[FeedCycle] = deque(maxlen=CYCLES_QUEUED)
        self._cond = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None

    # ---- the feed side -------------------------------------------------------------------

    def start(self) -> None:
        """Start the hub thread that takes offered cycles."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="optui-api-hub", daemon=True)
            self._thread.start()

    def offer(self, cycle: FeedCycle) -> None:
        """Hand a cycle over; returns at once (called on the collection path)."""
        with self._cond:
            self._queue.append(cycle)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                cycle = self._queue.popleft()
            try:
                self.accept(cycle)
            except Exception:  # noqa: BLE001 - one bad cycle must not stop the API
                log.exception("the API could not take a cycle")

    def accept(self, cycle: FeedCycle, received: float | None = None) -> None:
        """Make `cycle` the newest (precomputing the overview), keep its alerts and health
        events, and pass it to the WebSocket hub."""
        from optui.api.serialise import index_summary, ordered_indices

        self.health.extend(cycle.health)
        snap = cycle.snapshot
        if snap is None:  # a gap: the newest snapshot stays (and ages); health says why
            at = max((e.at for e in cycle.health if e.at is not None), default=None)
            self.gap = (cycle.gap or "the collector could not collect this cycle", at)
            return
        summary = [index_summary(k, snap.indices[k]) for k in ordered_indices(snap)]
        self.latest = Latest(cycle, snap, time.monotonic() if received is None else received, summary)
        self.gap = None
        self.cycles_seen += 1
        self.alerts.extend(snap.alerts)
        hub = self.hub
        if hub is not None:
            hub.publish(cycle, snap, self)

    # ---- the route side ------------------------------------------------------------------

    def age_s(self) -> float | None:
        """Local seconds since the newest cycle arrived (as the dashboard counts data age)."""
        latest = self.latest
        return None if latest is None else max(0.0, time.monotonic() - latest.received)

    def is_stale(self) -> bool:
        """Older than two collection intervals: a missed cycle, not just a slow one."""
        age = self.age_s()
        return age is not None and age > 2.0 * self.interval_s

    def badge(self) -> str:
        latest = self.latest
        if latest is None:
            return "WAITING"
        snap = latest.snapshot
        return snap.label or source_badge(snap.source)

    def header(self) -> dict[str, Any]:
        """What every market response starts with: the cycle's exchange time, its source and
        badge, the data age (seconds) and whether it is stale."""
        from optui.api.serialise import iso, num

        latest = self.latest
        if latest is None:
            return {"as_of": None, "source": None, "source_badge": "WAITING", "data_age_s": None,
                    "stale": True, "timezone": "IST (+05:30)"}
        snap = latest.snapshot
        age = self.age_s()
        return {
            "as_of": iso(snap.timestamp),
            "source": snap.source,
            "source_badge": snap.label or source_badge(snap.source),
            "data_age_s": num(round(age, 3)) if age is not None else None,
            "stale": self.is_stale(),
            "timezone": "IST (+05:30)",
        }

    def calendar(self) -> Any:
        """The exchange trading calendar (holidays from the settings), built once."""
        if self._calendar is None:
            from optui.analytics.trading_calendar import TradingCalendar

            self._calendar = TradingCalendar.from_settings(self.settings)
        return self._calendar

    def market_now(self) -> datetime | None:
        """The exchange time of the newest cycle, or None before the first."""
        latest = self.latest
        return None if latest is None else latest.snapshot.timestamp


__all__ = ["ApiState", "Collector", "Latest"]
