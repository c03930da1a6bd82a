"""Typed, past-tense messages that thread workers post to screens, which alone own UI state.

Workers never touch widgets: they post one of these and the screen's `@on` handler updates the
panels. Messages that can arrive in floods (`can_replace`) collapse to the newest one, so a slow
terminal never works through a backlog of stale snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from textual.message import Message

from optui.models import Snapshot
from optui.storage.base import Row


class EngineReady(Message):
    """The collection engine was built and is ready for its first cycle.

    `engine` is an optui.collectors.engine.CollectionEngine (or anything with its collect_once,
    store, source_name and close); the screen that receives it owns it from then on.
    """

    def __init__(self, engine: object, store_description: str = "") -> None:
        super().__init__()
        self.engine = engine
        self.store_description = store_description


class EngineFailed(Message):
    """The engine could not be built (bad configuration, unreachable store)."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class SnapshotCollected(Message):
    """One collection cycle finished; `snapshot` is everything it produced.

    `views` optionally carries display rows the worker already formatted (plain data, no
    widgets), keyed by what they show, so switching selection costs no formatting on the loop.
    """

    def __init__(self, snapshot: Snapshot, views: dict | None = None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.views = views or {}

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotCollected)


class CollectionFailed(Message):
    """A collection cycle failed; `error` is one line naming the problem and the fix."""

    def __init__(self, error: str, kind: str = "error") -> None:
        super().__init__()
        self.error = error
        self.kind = kind


class TokenExpired(Message):
    """The Kite access token was rejected: the user must log in again."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


@dataclass(frozen=True, slots=True)
class FlowBar:
    """One timeframe bucket of premium flow for one index, rupees crore."""

    start: datetime
    inflow_cr: float
    outflow_cr: float
    ce_net_cr: float = 0.0
    pe_net_cr: float = 0.0

    @property
    def net_cr(self) -> float:
        return self.inflow_cr - self.outflow_cr


@dataclass(frozen=True, slots=True)
class FlowSeries:
    """The answer to one flow query: bars oldest first."""

    index: str
    timeframe: str
    bars: list[FlowBar] = field(default_factory=list)


def flow_series_from_rows(index: str, timeframe: str, rows: list[Row]) -> FlowSeries:
    """Turn `Store.aggregate` rows of measurement premium_flow into a FlowSeries."""

    def num(row: Row, name: str) -> float:
        value = row.fields.get(name, 0.0)
        return float(value) if isinstance(value, (int, float)) else 0.0

    bars = [
        FlowBar(
            start=row.time,
            inflow_cr=num(row, "inflow_cr"),
            outflow_cr=num(row, "outflow_cr"),
            ce_net_cr=num(row, "ce_inflow_cr") - num(row, "ce_outflow_cr"),
            pe_net_cr=num(row, "pe_inflow_cr") - num(row, "pe_outflow_cr"),
        )
        for row in rows
    ]
    return FlowSeries(index, timeframe, bars)


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


FLOW_FIELDS: tuple[str, ...] = (
    "inflow_cr", "outflow_cr", "ce_inflow_cr", "ce_outflow_cr", "pe_inflow_cr", "pe_outflow_cr",
)
"""Fields of the premium_flow measurement the dashboard reads."""
