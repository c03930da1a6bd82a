"""The dashboard's view state without Textual: selection cycling, data age, market time, alert filter.

Kept apart from the screen so the rules a trader relies on (when data counts as stale, which
clock the session state follows, which alerts a severity filter shows) are plain functions that
tests pin down. Alerts themselves are raised by the core (optui.alerts), never here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from optui.alerts.model import SEVERITIES, Alert, severity_rank
from optui.indices import BUCKETS
from optui.models import Snapshot
from optui.widgets.format import source_badge


def cycle(items: Sequence[str], current: str, step: int) -> str:
    """The item `step` places after `current` (wrapping); the first item when current is absent."""
    if not items:
        return current
    if current not in items:
        return items[0]
    return items[(list(items).index(current) + step) % len(items)]


def buckets_of(snapshot: Snapshot | None, index: str) -> list[str]:
    """Expiry buckets present for an index, in the standard order (monthly-only indices have 2)."""
    if snapshot is None or index not in snapshot.indices:
        return []
    present = snapshot.indices[index].overview.buckets
    names = [b for b in BUCKETS if b in present]
    return names + [b for b in present if b not in names]


def nearest_index(values: Sequence[float], target: float) -> int:
    """Position of the value nearest `target` in ascending `values` (the middle when unknown)."""
    if not values:
        return 0
    if not math.isfinite(target):
        return len(values) // 2
    return min(range(len(values)), key=lambda i: abs(values[i] - target))


@dataclass
class StrikeWindow:
    """Which strikes the chain shows: `each_side` strikes either side of a centre near the ATM.

    The centre follows the ATM with hysteresis: it moves only when the ATM is two or more strikes
    away from it. Spot hovering at the midpoint between two strikes flips the ATM back and forth
    every cycle; the window then stays put instead of adding and dropping a row each time. The
    ATM row itself is still marked wherever it is.
    """

    each_side: int = 10
    _centres: dict[tuple[str, str], float] = field(default_factory=dict)

    def select(self, selection: tuple[str, str], strikes: Sequence[float], atm: float) -> tuple[int, int]:
        """[lo, hi) positions of the shown strikes among ascending `strikes`."""
        if not strikes:
            return 0, 0
        atm_i = nearest_index(strikes, atm)
        centre = self._centres.get(selection)
        centre_i = nearest_index(strikes, centre) if centre is not None else None
        if centre_i is None or strikes[centre_i] != centre or abs(atm_i - centre_i) >= 2:
            centre_i = atm_i
        self._centres[selection] = strikes[centre_i]
        return max(0, centre_i - self.each_side), min(len(strikes), centre_i + self.each_side + 1)


@dataclass
class DataClock:
    """Tracks the newest snapshot's time against a local clock, for the header's age and session.

    Every snapshot carries its source's exchange clock (Kite's quote timestamps, the simulator's
    own clock, which may run at another speed or on another day). The market time advances from
    the snapshot's timestamp by the local time elapsed since it arrived, and the age counts from
    its arrival: local instants are only ever subtracted from local instants, so an offset
    between the machine's clock and the exchange's never shows as stale data or a wrong session.
    """

    source: str = ""
    label: str = ""  # the source's own badge: Kite's API on loopback is the simulator, not LIVE
    snapshot_at: datetime | None = None
    received_at: datetime | None = None

    def received(self, snapshot: Snapshot, now: datetime) -> None:
        self.source = snapshot.source
        self.label = snapshot.label
        self.snapshot_at = snapshot.timestamp
        self.received_at = now

    @property
    def badge(self) -> str:
        if self.label:
            return self.label
        return source_badge(self.source) if self.source else "WAITING"

    @property
    def is_live(self) -> bool:
        return self.badge == "LIVE"

    def age_s(self, now: datetime) -> float | None:
        """Local seconds since the newest snapshot arrived; None before the first."""
        if self.snapshot_at is None or self.received_at is None:
            return None
        return max((now - self.received_at).total_seconds(), 0.0)

    def is_stale(self, now: datetime, interval_s: float) -> bool:
        """Older than two collection intervals: a missed cycle, not just a slow one."""
        age = self.age_s(now)
        return age is not None and age > 2.0 * interval_s

    def market_now(self, now: datetime, fallback: datetime | None = None) -> datetime:
        """The exchange's time: the snapshot's plus the local time since; before the first
        snapshot `fallback` (the source's clock), else `now`."""
        if self.snapshot_at is None or self.received_at is None:
            return fallback or now
        return self.snapshot_at + (now - self.received_at)


ALERT_FILTER_LABELS: dict[str, str] = {
    "info": "all", "warning": "warning and critical", "critical": "critical only",
}
"""What the alerts panel's severity filter shows, by least severity."""


def visible_alerts(alerts: Iterable[Alert], min_severity: str) -> list[Alert]:
    """The alerts at `min_severity` or above, in their order."""
    floor = severity_rank(min_severity)
    return [a for a in alerts if severity_rank(a.severity) >= floor]


def next_alert_filter(current: str) -> str:
    """The severity filter after `current`: all → warning and above → critical only → all."""
    return cycle(SEVERITIES, current, 1)


NOTIFY_SEVERITY = {"info": "information", "warning": "warning", "critical": "error"}
"""Textual notification severity for an alert severity."""

NOTIFY_MAX = 3
"""At most this many toasts per cycle; the rest are summed up in one."""


def notifications(alerts: Sequence[Alert]) -> list[tuple[str, str, str]]:
    """(message, title, Textual severity) toasts for one cycle's alerts, most severe first."""
    ranked = sorted(alerts, key=lambda a: -severity_rank(a.severity))
    out = [(a.message, f"Alert · {a.rule.replace('_', ' ')}", NOTIFY_SEVERITY.get(a.severity, "information"))
           for a in ranked[:NOTIFY_MAX]]
    rest = ranked[NOTIFY_MAX:]
    if rest:
        worst = NOTIFY_SEVERITY.get(rest[0].severity, "information")
        out.append((f"and {len(rest)} more: see the alerts panel", "Alerts", worst))
    return out
