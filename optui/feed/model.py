"""What a feed yields each cycle, and the one interface every feed implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from optui.alerts.model import Alert
from optui.analytics.premium_flow import FlowSeries
from optui.collectors.health import HealthEvent
from optui.models import Snapshot, SnapshotWarning

__all__ = ["Feed", "FeedCycle", "HealthEvent"]


@dataclass(slots=True)
class FeedCycle:
    """One collection cycle as every consumer receives it.

    `snapshot` carries the market data, its `warnings` and the `alerts` the collector's alerts
    engine raised (raised once, by the collector that owns the engine; consumers only read them);
    it is None for a gap, a cycle the collector could not collect (`gap` says why, `health` the
    fault and its fix). `health` are the collector's own events (optui.collectors.health) since
    the previous cycle it published; `participants_changed` says new end-of-day participant data
    was stored; `host` names the machine that collected it. `open_faults` are the collector's
    faults still open when it published (so a consumer that attaches mid-outage shows them at
    once); `age_s` is how old the snapshot was then, in exchange seconds (0 for a fresh cycle;
    the cached tier's age when the latest-cycle key or file re-offers the last good snapshot);
    `interval_s` is the collector's interval in exchange seconds (0 when not known), so a
    consumer with other settings judges staleness by the collector's cadence.
    """

    snapshot: Snapshot | None
    health: list[HealthEvent] = field(default_factory=list)
    participants_changed: bool = False
    host: str = ""
    gap: str = ""
    store_url: str = ""
    """Where the collector stores its history, when a consumer elsewhere may read it: a SQLite
    file as sqlite:///ABSOLUTE/PATH; "" when not published."""
    cached_age_s: float | None = None
    """With a gap: the collector still serves its last good snapshot (the cached tier), this
    many exchange seconds after that snapshot's market moment; None otherwise."""
    open_faults: list[HealthEvent] = field(default_factory=list)
    age_s: float = 0.0
    interval_s: float = 0.0

    @property
    def warnings(self) -> list[SnapshotWarning]:
        return self.snapshot.warnings if self.snapshot is not None else []

    @property
    def alerts(self) -> list[Alert]:
        return self.snapshot.alerts if self.snapshot is not None else []


class Feed(ABC):
    """A stream of collection cycles: run here (LocalFeed) or followed from a collector that runs
    elsewhere (RedisFeed, FileFeed).

    Lifecycle: `start()` once (blocking: builds the engine or connects; raises OptuiError with a
    one-line fix), then `next_cycle()` repeatedly, `close()` at the end. Every method blocks, so
    a screen calls them from a thread worker.
    """

    attached_to: str = ""
    """The host of the collector this feed follows; "" when it collects itself."""

    replay: bool = False
    """True for a recorded day played back: its `exchange_now()` is the replayed clock."""

    ended: bool = False
    """True once the feed has no more cycles to give (a replay past its recording's end)."""

    @abstractmethod
    def start(self) -> str:
        """Get ready for the first cycle; returns one line describing where the data comes from."""

    @abstractmethod
    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        """The next cycle: a local feed collects one now, an attached feed waits for the
        collector's next one (None when none arrived within `timeout_s`; a gap cycle, snapshot
        None, when the collector could not collect and says why in `health`). Raises SourceError
        subclasses (TokenExpiredError, RateLimitedError), StoreError or ConfigError."""

    def start_blocks(self) -> bool:
        """False when `start()` returns at once (nothing to build or connect), so a screen may
        call it on its event loop."""
        return True

    def delay_s(self) -> float:
        """Real seconds until the next cycle is due; 0 for a feed that waits on its own."""
        return 0.0

    def show_before_store(self) -> bool:
        """Ask the feed to hand each cycle on before storing it, so a screen shows it sooner;
        True when it will (a local feed), and then `store_cycle()` must follow each
        `next_cycle()` (the next cycle otherwise stores it first). False for a feed that stores
        nothing itself (attached, replayed)."""
        return False

    def store_cycle(self) -> None:
        """Store the cycle `next_cycle()` handed on unstored (store rows, leg files, the day's
        state, in the collector's order; their failures ride on the next cycle as warnings);
        nothing to do otherwise. Raises only what an unexpected fault raises."""
        return None

    @property
    def store(self) -> Any:
        """The store holding this feed's history (optui.storage.base.Store), or None."""
        return None

    def flow_series(self, index: str, timeframe: str, start: datetime, end: datetime) -> FlowSeries:
        """Premium flow of `index` summed into `timeframe` bars over [start, end) from the
        feed's store; an empty series when the feed has no store. Raises StoreError."""
        store = self.store
        if store is None:
            return FlowSeries(index, timeframe, [])
        from optui.storage.flow_queries import query_flow_series

        return query_flow_series(store, index, timeframe, start, end)

    def exchange_now(self) -> datetime | None:
        """The exchange clock when the feed knows it without a cycle, else None."""
        return None

    def clock_is_local(self) -> bool:
        """True while `exchange_now()` is only this machine's clock (the source has not answered
        yet), so times read from it are shown with "(local clock)"."""
        return False

    def is_holiday(self, at: datetime) -> bool:
        """True when `at` falls on an exchange holiday, as far as the feed knows."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Release everything (engine, lock, subscription); safe to call twice."""
