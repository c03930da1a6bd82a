"""The local feed: runs the collector here (engine, exchange-clock schedule, lock) and publishes
each cycle for any attached consumer."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optui.collectors.health import HealthEvent, HealthLog, capture_event, slow_cycle_event
from optui.feed.codec import PAYLOAD_VERSION, health_payload, snapshot_payload
from optui.feed.model import Feed, FeedCycle

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine
    from optui.config import Settings
    from optui.feed.lock import CollectorLock

log = logging.getLogger(__name__)

CYCLE_KEY = "optui:cycle:latest"
"""Cache key of the newest published cycle, so a consumer that attaches shows it at once."""


def cycle_payload(cycle: FeedCycle, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a collector publishes per cycle (Redis channel, latest key, latest file): version,
    host, snapshot (None for a gap), gap, health (HealthEvent.as_dict each, the events since the
    previous publication), open (the faults still open), age_s, interval_s, participants_changed.
    `snapshot`: the snapshot already encoded (the publisher re-offers the last good one)."""
    if snapshot is None and cycle.snapshot is not None:
        snapshot = snapshot_payload(cycle.snapshot)
    return {
        "version": PAYLOAD_VERSION,
        "host": cycle.host,
        "snapshot": snapshot,
        "gap": cycle.gap,
        "health": health_payload(cycle.health),
        "open": health_payload(cycle.open_faults),
        "age_s": cycle.age_s,
        "interval_s": cycle.interval_s,
        "participants_changed": cycle.participants_changed,
        "store": cycle.store_url,
        "cached_age_s": cycle.cached_age_s,
    }


def published_store_url(store: Any) -> str:
    """The store URL an attached consumer may open for history: a SQLite file's absolute path
    (sqlite:///ABSOLUTE/PATH); "" for an in-memory or network store (a network store is
    configured on the consumer's side, with its own credentials)."""
    from optui.storage.sqlite_store import SQLiteStore

    if not isinstance(store, SQLiteStore) or not isinstance(store.path, Path):
        return ""
    return f"sqlite:///{store.path.resolve()}"


class _Publisher:
    """One thread publishing the newest cycle: to the cache (channel and CYCLE_KEY) and the
    latest-cycle file. A cycle still waiting when a newer one arrives is replaced (consumers
    want the newest; every cycle is in the store). Failures go to the log.

    A gap goes to the channel as it is; the latest key and file, which a consumer reads when it
    attaches, then hold the last good snapshot (the cached tier, with its age at the gap) with
    the gap's reason and the faults still open, so an attacher sees the outage at once."""

    def __init__(self, cache: Any, latest_file: Path | None) -> None:
        self.cache = cache
        self.latest_file = latest_file
        self._last: tuple[datetime, dict[str, Any]] | None = None  # the last good snapshot, encoded
        self._next: tuple[FeedCycle, datetime | None] | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="optui-publish", daemon=True)
        self._thread.start()

    def offer(self, cycle: FeedCycle, at: datetime | None = None) -> None:
        """Publish `cycle` soon; `at` is the exchange time of a gap (for the cached tier's age)."""
        with self._cond:
            self._next = (cycle, at)
            self._cond.notify()

    def close(self) -> None:
        """Publish what is waiting, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._next is None and not self._closing:
                    self._cond.wait()
                item, self._next = self._next, None
                if item is None:
                    return
            try:
                self._send(*item)
            except Exception:  # noqa: BLE001 - publishing must never stop the publisher
                log.exception("publishing a cycle failed")

    def _send(self, cycle: FeedCycle, at: datetime | None = None) -> None:
        from optui.errors import StoreError
        from optui.storage.cache import SNAPSHOT_CHANNEL, EncodedJSON, dumps

        payload = cycle_payload(cycle)
        text = dumps(payload)  # encoded once for the channel, the key and the file
        latest = text
        if cycle.snapshot is not None:
            self._last = (cycle.snapshot.timestamp, payload["snapshot"])
        elif self._last is not None:  # a gap: attachers get the cached tier with the open faults
            taken, snapshot = self._last
            age = max(0.0, (at - taken).total_seconds()) if at is not None else 0.0
            # Its alerts were published with it: an attacher must not take them for new ones.
            latest = dumps(cycle_payload(replace(cycle, age_s=age), {**snapshot, "alerts": []}))
        if self.cache is not None:
            try:
                self.cache.set(CYCLE_KEY, EncodedJSON(latest))
                self.cache.publish(SNAPSHOT_CHANNEL, EncodedJSON(text))
            except StoreError as exc:
                what = cycle.snapshot.timestamp.isoformat() if cycle.snapshot is not None else "a gap"
                log.warning("cycle of %s not published: %s", what, exc)
        if self.latest_file is not None:
            from optui.storage.legacy_files import write_atomic

            try:
                write_atomic(self.latest_file, latest)
            except OSError as exc:
                log.warning("cannot write %s: %s", self.latest_file, exc)


class LocalFeed(Feed):
    """Collects here: one `engine.collect_once()` per `next_cycle()`, due on the collector's
    exchange-clock schedule (`delay_s`).

    Give an `engine` (already built), or a `factory` that builds one in `start()` (blocking).
    With `lock` set, `start()` first takes the collector lock of the store and source and raises
    CollectorRunning when another collector holds it. Each cycle is published on the cache's
    channel (and under CYCLE_KEY), and, without a Redis cache, to `latest_file` for a consumer on
    this machine.

    `health` is the collector's health log: pre-market capture events and, with `slow_share`
    set, slow cycles are raised into it here; a supervisor (optui.collectors.supervisor) shares
    it for the faults it meets. Each published cycle carries the events appended since the
    previous publication and the faults still open.

    Without a supervisor (the dashboard collecting in process) the feed writes the collector's
    health file itself (`health_file`, beside the day state as `optui collect` writes it, after
    every cycle, gap or failed cycle), so `optui doctor` sees this collector; a supervisor that
    writes it clears `health_file`.
    """

    def __init__(self, engine: CollectionEngine | None = None, *,
                 factory: Callable[[], CollectionEngine] | None = None,
                 interval_s: float | None = None, lock: CollectorLock | None = None,
                 latest_file: Path | None = None, slow_share: float | None = None) -> None:
        if engine is None and factory is None:
            raise ValueError("LocalFeed needs an engine or a factory")
        self.engine = engine
        self._factory = factory
        self._interval_s = interval_s
        self.lock = lock
        self.latest_file = latest_file
        self.host = socket.gethostname()
        self._capture_events_seen = 0
        self._participants_seen: object | None = None
        self.health = HealthLog()
        self._health_seen = 0
        self.slow_share = slow_share
        """Flag a cycle slower than this share of the interval (None: a supervisor does)."""
        self._publisher: _Publisher | None = None
        self._published_store: str | None = None
        self._closed = False
        self._stop_wait = threading.Event()  # ends a wait for ticks when the feed closes
        self._last_at: datetime | None = None  # the exchange time of the last snapshot
        self.store_later = False
        """Each cycle is handed on before it is stored (`show_before_store`)."""
        self._held: tuple[FeedCycle, datetime | None] | None = None
        """A cycle handed on but not yet offered to the publisher (`store_later`: its
        encoding, tens of ms holding the GIL, waits until the screen showed it)."""
        self.listeners: list[Callable[[FeedCycle], None]] = []
        self.health_file: Path | None = None
        """Where each attempt's health summary is written for `optui doctor` (set by `start()`
        beside the engine's day state; None: nowhere, or a supervisor writes it)."""
        self.writes_health = True
        """False when a supervisor writes the health file (optui.collectors.headless)."""
        self.cycles = 0  # cycles collected, for the health file
        self.gaps = 0  # failed cycles and published gaps, for the health file
        self._down: HealthEvent | None = None  # the failure of the last attempt, None after a cycle
        """Called with each cycle on the collection thread right after it is published; each
        must return at once (the API hands the cycle to its own thread)."""

    @classmethod
    def from_settings(cls, settings: Settings, source_kind: str | None = None,
                      store_url: str | None = None, out_dir: Path | None = None,
                      lock: bool = True) -> LocalFeed:
        """A feed that builds its engine from the settings (see build_engine) and, with `lock`,
        holds the collector lock of the store and source while it runs."""
        from optui.collectors.engine import build_engine, is_simulated, store_url_for
        from optui.feed.lock import CollectorLock, lock_path

        kind = source_kind or settings.source.kind
        url = store_url_for(settings, is_simulated(settings, kind), store_url)
        data_dir = Path(settings.general.data_dir)
        held = CollectorLock(url, kind, data_dir, settings.cache.url, settings.cache.lease_s) if lock else None
        latest = None
        if held is not None and not held.cache_url:
            latest = lock_path(url, kind, data_dir).with_suffix(".latest.json")
        return cls(factory=lambda: build_engine(settings, kind, store_url, out_dir),
                   interval_s=settings.source.interval_s, lock=held, latest_file=latest,
                   slow_share=settings.source.slow_cycle_share)

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> str:
        """Take the lock (CollectorRunning when held), build the engine (ConfigError,
        StoreError); returns 'collecting from sim every 30 s'."""
        if self.lock is not None and self.lock._fd is None:
            self.lock.acquire()
        if self.engine is None:
            assert self._factory is not None
            try:
                self.engine = self._factory()
            except BaseException:
                if self.lock is not None:
                    self.lock.release()
                raise
        state_dir = getattr(self.engine, "state_dir", None)
        if self.writes_health and self.health_file is None and state_dir is not None:
            from optui.collectors.health import HEALTH_FILE

            self.health_file = Path(state_dir) / HEALTH_FILE
        store = self.store
        where = f" into {store.describe()}" if store is not None else ""
        return f"collecting from {self.engine.source_name} every {self.interval_s:g} s{where}"

    def start_blocks(self) -> bool:
        return self.engine is None or (self.lock is not None and self.lock._fd is None)

    def show_before_store(self) -> bool:
        """From now on each cycle is returned before the engine stores it
        (`CollectionEngine.collect_shown`); `store_cycle` then publishes it for attached
        consumers (the latest-cycle file, the cache) and stores it. False (each cycle published
        and stored first, as before) for an engine that only collects whole cycles."""
        engine = self.engine
        self.store_later = (callable(getattr(engine, "collect_shown", None))
                            and callable(getattr(engine, "store_pending", None)))
        return self.store_later

    def store_cycle(self) -> None:
        """Publish the cycle returned unpublished (`release_publication`), then store it
        (`CollectionEngine.store_pending`)."""
        self.release_publication()
        if self.store_later and self.engine is not None:
            self.engine.store_pending()

    def release_publication(self) -> None:
        """Offer the held cycle (`show_before_store`) to the publisher thread; nothing held:
        nothing to do. Its payload is the one it would have had at once (its health events,
        open faults and interval were fixed when it was handed on)."""
        held, self._held = self._held, None
        if held is not None and self._publisher is not None:
            self._publisher.offer(*held)

    @property
    def interval_s(self) -> float:
        if self._interval_s is not None:
            return self._interval_s
        settings = getattr(self.engine, "settings", None)
        return float(settings.source.interval_s) if settings is not None else 30.0

    @property
    def store(self) -> Any:
        return getattr(self.engine, "store", None)

    def close(self) -> None:
        """Close the engine (its store may flush a spool) and release the lock."""
        if self._closed:
            return
        self._closed = True
        self._stop_wait.set()
        self.release_publication()
        if self._publisher is not None:  # the last cycle reaches consumers before the cache closes
            self._publisher.close()
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:  # noqa: BLE001 - closing must never hide the real error
                log.debug("closing the engine failed", exc_info=True)
        if self.lock is not None:
            self.lock.release()

    # ---- cycles --------------------------------------------------------------------------

    def ticking(self) -> bool:
        """Whether cycles follow the ticks now (a streaming source at the tick cadence, its
        ticker started): `wait_snapshot` paces them instead of the interval schedule."""
        source = getattr(self.engine, "source", None)
        cadence = getattr(self.engine, "snapshot_s", None)
        return (cadence is not None and self._last_at is not None
                and callable(getattr(source, "wait_snapshot", None))
                and bool(getattr(source, "ticking", True)))

    def wait_snapshot(self, stop: threading.Event | None = None) -> bool:
        """At the tick cadence, block until the next snapshot is due: the index ticks of a new
        exchange second arrived (or, at most one interval later, the stream stayed silent: a
        cycle with the spots polled). True: collect now; False: not at the tick cadence (or
        stopped), the caller keeps the interval schedule."""
        if not self.ticking():
            return False
        source: Any = self.engine.source  # type: ignore[union-attr]
        stopper = stop if stop is not None else self._stop_wait
        try:
            timeout = float(source.real_seconds(self.interval_s))
        except Exception:  # noqa: BLE001 - a source without a clock: exchange seconds
            timeout = self.interval_s
        due = source.wait_snapshot(self._last_at, timeout, stopper)
        if due is None or stopper.is_set() or self._stop_wait.is_set():
            return False
        self._last_at = due  # a failing cycle still waits for the next second's ticks
        return True

    def next_cycle(self, timeout_s: float | None = None, *, publish: bool = True,
                   wait_ticks: bool = True) -> FeedCycle:
        """Collect one cycle now and (with `publish`) publish it; raises what `collect_once`
        raises. A caller that publishes later (`publish`) lets its own events ride along. At
        the tick cadence, with `wait_ticks`, the cycle first waits for its ticks
        (`wait_snapshot`; the headless collector waits itself). After `show_before_store` the
        cycle is returned unstored: `store_cycle` stores it."""
        engine = self.engine
        if engine is None:
            raise RuntimeError("LocalFeed.next_cycle before start()")
        if wait_ticks:
            self.wait_snapshot()
        try:
            snapshot = engine.collect_shown() if self.store_later else engine.collect_once()
        except Exception as exc:
            self._failed(exc)
            raise
        self._down = None
        self._last_at = snapshot.timestamp
        cycle = FeedCycle(snapshot, [], self._participants_changed(), self.host,
                          store_url=self._store_url())
        if self.lock is not None and self.lock.lost:
            from optui.models import SnapshotWarning, WarningKind

            snapshot.warnings.append(SnapshotWarning(
                WarningKind.STORE, "lock",
                "another collector took this store's lease: two collectors may be writing it"))
        if self.slow_share is not None:
            self._flag_slow(snapshot.duration_s, snapshot.timestamp)
        if publish:
            self.publish(cycle)
        return cycle

    def publish(self, cycle: FeedCycle) -> FeedCycle:
        """Give `cycle` the health events appended since the previous publication and hand it
        to consumers; a gap cycle (snapshot None) goes to the channel and latest file only."""
        snapshot = cycle.snapshot
        at = snapshot.timestamp if snapshot is not None else self.exchange_now()
        cycle.health = self._health(at)
        cycle.open_faults = self.health.open_faults()
        cycle.interval_s = self.interval_s
        self._publish(cycle, at)
        if snapshot is not None:
            self.cycles += 1
        else:
            self.gaps += 1
        self.write_health(at)
        for listener in list(self.listeners):
            try:
                listener(cycle)
            except Exception:  # noqa: BLE001 - a consumer must never stop collection
                log.exception("a cycle listener failed")
        return cycle

    def publish_gap(self, reason: str, cached_age_s: float | None = None) -> FeedCycle:
        """Publish a cycle that collected nothing: `reason` and the health events that say why;
        `cached_age_s` when the last good snapshot is still served (the cached tier), so an
        attached consumer shows its age instead of silently old numbers."""
        return self.publish(FeedCycle(None, host=self.host, gap=reason, store_url=self._store_url(),
                                      cached_age_s=cached_age_s))

    def _failed(self, exc: Exception) -> None:
        """A cycle that raised: counted and kept as the open SOURCE_DOWN fault of the health
        file until a cycle succeeds (the caller shows and logs the error itself)."""
        if self.health_file is None:
            return
        from optui.collectors.health import source_down_event

        at = self.exchange_now()
        if at is None:
            from optui.timeutil import now_utc

            at = now_utc()
        self.gaps += 1
        self._down = source_down_event(str(exc) or type(exc).__name__, None, at)
        self.write_health(at)

    def write_health(self, at: datetime | None = None) -> None:
        """Rewrite the health file (when set) as `optui collect` writes it (see
        optui.collectors.health.health_document): exchange time `at`, the counters, the open
        faults and recent events, the last attempt's failure among them. No secrets: events
        hold messages and fixes only. A failure to write is logged."""
        if self.health_file is None:
            return
        from optui.collectors.health import health_document, write_health_file

        at = at or self.exchange_now()
        if at is None:
            return
        source = getattr(getattr(self.engine, "source", None), "name", "")
        doc = health_document(self.health, at, source, self.cycles, self.gaps, None,
                              local_clock=self.clock_is_local())
        if self._down is not None:
            doc["open"].insert(0, self._down.as_dict())
            doc["recent"].append(self._down.as_dict())
        try:
            write_health_file(self.health_file, doc)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.health_file, exc)

    def _store_url(self) -> str:
        if self._published_store is None:
            self._published_store = published_store_url(self.store)
        return self._published_store

    def _flag_slow(self, duration_s: float, at: datetime) -> None:
        from optui.collectors.health import SlowCycles, cycle_cadence

        source = getattr(self.engine, "source", None)
        cadence_s, cadence = cycle_cadence(self.interval_s, getattr(self.engine, "snapshot_s", None),
                                           getattr(getattr(self.engine, "last", None), "legs_stored", True))
        try:
            budget = float(source.real_seconds(cadence_s)) if source is not None else cadence_s
        except Exception:  # noqa: BLE001 - a source without a clock: exchange seconds
            budget = cadence_s
        share = self.slow_share if self.slow_share is not None else 1.0
        if not getattr(source, "judges_slow_cycles", True):
            budget = float("inf")  # a replay's pace is its own choice (MarketSource.judges_slow_cycles)
        event = slow_cycle_event(duration_s, cadence_s, budget * share, share, at,
                                 getattr(source, "name", ""), cadence)
        slow: SlowCycles | None = getattr(self, "_slow", None)
        if slow is None:
            def raise_logged(event: HealthEvent) -> None:
                if self.health.raise_(event):
                    log.warning("%s", event.log_text())

            slow = self._slow = SlowCycles(self.health, raise_logged)
        slow.judge(event, cadence, at)  # once per slow spell

    def drain_captures(self, at: datetime | None) -> None:
        """Raise the pre-market capture's new events (optui.collectors.premarket) into `health`;
        `at` (exchange time) stands in for an event without its own time."""
        premarket = getattr(self.engine, "premarket", None)
        since = getattr(premarket, "events_since", None)
        if callable(since) and at is not None:
            captured, self._capture_events_seen = since(self._capture_events_seen)
            offline = getattr(premarket, "archive_factory", None) is None  # local files only
            for event in captured:
                self.health.raise_(capture_event(event, at, offline))

    def _health(self, at: datetime | None) -> list[HealthEvent]:
        """The health events since the previous publication, the pre-market capture's included."""
        self.drain_captures(at)
        events, self._health_seen = self.health.since(self._health_seen)
        return events

    def _participants_changed(self) -> bool:
        premarket = getattr(self.engine, "premarket", None)
        result = getattr(premarket, "last_result", None)
        if result is self._participants_seen:
            return False
        self._participants_seen = result
        return True

    def _publish(self, cycle: FeedCycle, at: datetime | None = None) -> None:
        """Hand the cycle to the publisher thread (encoding a full chain costs tens of ms: never
        on the collection path). With `store_later` a cycle with a snapshot is held until
        `release_publication` (the screen's frame first: the encoding holds the GIL); a gap,
        which has no frame to wait for, goes at once, after any cycle still held."""
        cache = getattr(self.engine, "cache", None)
        if cache is None and self.latest_file is None:
            return
        if self._publisher is None:
            self._publisher = _Publisher(cache, self.latest_file)
        self.release_publication()  # never overtaken, never dropped unoffered
        if self.store_later and cycle.snapshot is not None:
            self._held = (cycle, at)
            return
        self._publisher.offer(cycle, at)

    # ---- schedule ------------------------------------------------------------------------

    def exchange_now(self) -> datetime | None:
        source = getattr(self.engine, "source", None)
        try:
            return source.now() if source is not None else None
        except Exception:  # noqa: BLE001 - a clock read must not break a consumer
            return None

    def clock_is_local(self) -> bool:
        from optui.collectors.source import reads_local_clock

        source = getattr(self.engine, "source", None)
        return source is not None and reads_local_clock(source)

    def delay_s(self) -> float:
        """Real seconds to the next multiple of the interval on the exchange clock (the
        collector's schedule, see optui.collectors.headless.next_cycle_at), at least 0.25 s."""
        from optui.collectors.headless import next_cycle_at

        source = getattr(self.engine, "source", None)
        now = self.exchange_now()
        if source is None or now is None:
            return self.interval_s
        if self.ticking():  # until the next snapshot mark; next_cycle then waits for its ticks
            step = float(self.engine.snapshot_s)  # type: ignore[union-attr, arg-type]
            assert self._last_at is not None
            mark = (self._last_at.timestamp() // step + 1) * step
            try:
                left = float(source.real_seconds(max(mark - now.timestamp(), 0.0)))
            except Exception:  # noqa: BLE001 - a source without a clock: exchange seconds
                left = max(mark - now.timestamp(), 0.0)
            return min(left, self.interval_s)
        due = next_cycle_at(now, self.interval_s)
        try:
            left = float(source.real_seconds((due - now).total_seconds()))
        except Exception:  # noqa: BLE001 - a source without a clock: the plain interval
            return self.interval_s
        return max(0.25, min(left, self.interval_s))

    def is_holiday(self, at: datetime) -> bool:
        probe = getattr(getattr(self.engine, "source", None), "is_holiday", None)
        try:
            return bool(probe(at)) if callable(probe) else False
        except Exception:  # noqa: BLE001 - a calendar failure must not break a consumer
            return False


__all__ = ["CYCLE_KEY", "LocalFeed", "cycle_payload", "published_store_url"]
