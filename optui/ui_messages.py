"""Typed, past-tense messages that thread workers post to screens, which alone own UI state.

Workers never touch widgets: they post one of these and the screen's `@on` handler updates the
panels. Messages that can arrive in floods (`can_replace`) collapse to the newest one, so a slow
terminal never works through a backlog of stale snapshots.
"""

from __future__ import annotations

from textual.message import Message

from optui.analytics.premium_flow import FlowSeries
from optui.feed.model import Feed, FeedCycle, HealthEvent
from optui.models import Snapshot


class FeedStarted(Message):
    """The feed of cycles is ready: `description` says where the data comes from.

    `feed` is an optui.feed.Feed; the screen that receives it owns it from then on.
    """

    def __init__(self, feed: Feed, description: str = "") -> None:
        super().__init__()
        self.feed = feed
        self.description = description


class IvHistoryLoaded(Message):
    """Stored daily ATM IV closes for the overview: (index, bucket) -> (IV closes, spot closes)."""

    def __init__(self, history: dict[tuple[str, str], tuple[list[float], list[float]]]) -> None:
        super().__init__()
        self.history = history


class CycleAwaited(Message):
    """The collector published a gap (a cycle it could not collect): no new snapshot; `health`
    carries its events that say why (optui.collectors.health.HealthEvent), `cached_age_s` the
    age of the last good snapshot it still serves (None: none)."""

    def __init__(self, health: list[HealthEvent] | None = None, cached_age_s: float | None = None) -> None:
        super().__init__()
        self.health = list(health or [])
        self.cached_age_s = cached_age_s
        """While the collector serves its last good snapshot: its age in exchange seconds."""


class EngineFailed(Message):
    """The feed could not start (bad configuration, unreachable store or Redis)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SnapshotCollected(Message):
    """One collection cycle arrived from the feed; `snapshot` is its market data.

    `views` optionally carries display rows the worker already formatted (plain data, no
    widgets), keyed by what they show, so switching selection costs no formatting on the loop.
    """

    def __init__(self, snapshot: Snapshot, views: dict | None = None, cycle: FeedCycle | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.views = views or {}
        self.cycle = cycle
        """The feed's whole cycle (health events, participants news, host), when known."""
        self.skipped: list[SnapshotCollected] = []
        """Older cycles this one replaced in the screen's queue (oldest first): their market
        data is superseded, their health events and alerts are still to be shown."""

    def can_replace(self, message: Message) -> bool:
        """A newer cycle waiting behind this one supersedes it (latest wins, never a backlog
        of full chains to draw); it takes this one's events and alerts along (`skipped`)."""
        if not isinstance(message, SnapshotCollected):
            return False
        message.skipped = [*self.skipped, self, *message.skipped]
        self.skipped = []
        return True


class CollectionFailed(Message):
    """A collection cycle failed; `error` is one line naming the problem and the fix."""

    def __init__(self, error: str, kind: str = "error") -> None:
        super().__init__()
        self.error = error
        self.kind = kind


class FeedNote(Message):
    """A line about the feed itself for the health log (a replay jumped or reached its end);
    `level` is info, warning or error; `ended` says the feed has no more cycles to give."""

    def __init__(self, level: str, text: str, ended: bool = False) -> None:
        super().__init__()
        self.level = level
        self.text = text
        self.ended = ended


class TokenExpired(Message):
    """The Kite access token was rejected: the user must log in again."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FlowQueried(Message):
    """The store answered a premium-flow query for one index and timeframe."""

    def __init__(self, series: FlowSeries) -> None:
        super().__init__()
        self.series = series

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FlowQueried)


class FlowQueryFailed(Message):
    """The store could not answer a premium-flow query."""

    def __init__(self, index: str, timeframe: str, error: str) -> None:
        super().__init__()
        self.index = index
        self.timeframe = timeframe
        self.error = error

