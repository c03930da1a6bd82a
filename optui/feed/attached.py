"""Feeds that follow a collector running elsewhere: over Redis pub/sub, or through the latest-cycle
file a collector on this machine writes when no Redis cache is configured."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from optui.collectors.health import Status
from optui.errors import ConfigError, StoreError
from optui.feed.codec import PAYLOAD_VERSION, health_from_payload, snapshot_from_payload
from optui.feed.local import CYCLE_KEY
from optui.feed.model import Feed, FeedCycle

log = logging.getLogger(__name__)


def cycle_from_payload(payload: Any) -> FeedCycle:
    """A FeedCycle from what `cycle_payload` published; raises ValueError naming what is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("not a collector cycle")
    version = payload.get("version")
    if version != PAYLOAD_VERSION:
        raise ValueError(f"payload version {version!r}, this optui reads {PAYLOAD_VERSION}: "
                         "run the same optui version on both sides")
    try:
        raw = payload["snapshot"]
        snapshot = snapshot_from_payload(raw) if raw is not None else None
        health = health_from_payload(payload.get("health", []))
        open_faults = health_from_payload(payload.get("open", []))
        age_s = float(payload.get("age_s") or 0.0)
        interval_s = float(payload.get("interval_s") or 0.0)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed collector cycle: {exc}") from None
    gap = str(payload.get("gap") or "")
    if snapshot is None and not gap:
        raise ValueError("malformed collector cycle: neither a snapshot nor a gap")
    age = payload.get("cached_age_s")
    return FeedCycle(snapshot, health, bool(payload.get("participants_changed")),
                     str(payload.get("host", "")), gap, str(payload.get("store") or ""),
                     float(age) if isinstance(age, (int, float)) else None,
                     open_faults=open_faults, age_s=age_s if age_s > 0 else 0.0,
                     interval_s=interval_s if interval_s > 0 else 0.0)


class _AttachedFeed(Feed):
    """Shared by the attached feeds: an optional store for history, read-only."""

    def __init__(self, store_url: str | None = None, settings: Any = None) -> None:
        self._store_url = store_url
        self._settings = settings
        self._store: Any = None
        self._unreadable = ""
        self._shown: set[tuple[str, str]] = set()  # open faults this consumer was given
        self._seen_at: datetime | None = None  # the newest snapshot time returned

    @property
    def store(self) -> Any:
        return self._store

    def _open_store(self) -> str:
        if self._store is not None:  # adopted from the first published cycle already
            return f"history from {self._store.describe()}"
        if not self._store_url:
            return "premium-flow history from the collector's store once it names one"
        import copy

        from optui.config import Settings
        from optui.storage.base import open_store

        # Read-only: the collector owns its spool; this copy never replays or writes it.
        settings = copy.deepcopy(self._settings) if self._settings is not None else Settings()
        settings.store.spool_dir = None
        try:
            self._store = open_store(self._store_url, settings)
        except (ConfigError, StoreError) as exc:
            log.warning("attached feed without history: %s", exc)
            return f"history unavailable ({exc})"
        return f"history from {self._store.describe()}"

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001
                log.debug("closing the store failed", exc_info=True)
            self._store = None

    def _accept(self, payload: Any) -> FeedCycle | None:
        try:
            cycle = cycle_from_payload(payload)
        except ValueError as exc:
            log.warning("ignored a published cycle: %s", exc)
            return None
        if cycle.host:
            self.attached_to = cycle.host
        if self._store is None and not self._store_url and cycle.store_url:
            self._adopt_store(cycle)
        return self._with_open_faults(cycle)

    def _adopt_store(self, cycle: FeedCycle) -> None:
        """History from the store the collector published when none is configured here: a
        SQLite file this machine can read (the collector's own machine, or a shared disk)."""
        url = cycle.store_url
        path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else None
        if path is None or not path.is_file():
            if url != self._unreadable:
                self._unreadable = url
                log.info("the collector's store %s is not readable here: no premium-flow history", url)
            return
        self._store_url = url
        log.info("attached feed: %s", self._open_store())

    def _with_open_faults(self, cycle: FeedCycle) -> FeedCycle:
        """Put the collector's open faults this consumer has not been given yet (it attached
        while they were open, or missed the cycle that raised them) before the cycle's events."""
        for event in cycle.health:
            key = (event.kind.value, event.message)
            if event.status is Status.OPEN:
                self._shown.add(key)
            else:
                self._shown.discard(key)
        missed = [e for e in cycle.open_faults if (e.kind.value, e.message) not in self._shown]
        self._shown &= {(e.kind.value, e.message) for e in cycle.open_faults}
        self._shown |= {(e.kind.value, e.message) for e in missed}
        if missed:
            cycle.health = missed + cycle.health
        return cycle

    def _repeat(self, cycle: FeedCycle) -> FeedCycle | None:
        """`cycle` unless its snapshot was already returned: then, for a gap that re-offers the
        last good snapshot, the gap and its events without the snapshot, so nothing old shows
        as new; else None (the same publication read twice: the latest key, then the channel)."""
        snapshot = cycle.snapshot
        if snapshot is None:
            return cycle
        if self._seen_at is None or snapshot.timestamp > self._seen_at:
            self._seen_at = snapshot.timestamp
            return cycle
        if not cycle.gap:
            return None
        return replace(cycle, snapshot=None)


ATTACH_ADVICE = ("check that the collector's redis-server runs and this machine can reach it "
                 "(over SSH: ssh -L 6379:127.0.0.1:6379 HOST, then --attach redis://127.0.0.1:6379/0)")
"""What to do when the Redis given to --attach does not answer (cache.url plays no part there)."""


class RedisFeed(_AttachedFeed):
    """Follows a collector's Redis channel (optui.storage.cache.SNAPSHOT_CHANNEL).

    `start()` subscribes and takes the newest published cycle (CYCLE_KEY) as the first one, so
    the screen fills at once; `next_cycle` then waits for the next publication. History (premium
    flow bars) comes from `store_url` when given. Nothing is collected, computed or stored here:
    alerts arrive as the collector raised them.
    """

    def __init__(self, cache_url: str, store_url: str | None = None, settings: Any = None,
                 host: str = "") -> None:
        super().__init__(store_url, settings)
        if not cache_url.startswith(("redis://", "rediss://")):
            raise ConfigError(f"--attach {cache_url!r}: give redis://HOST:PORT/DB")
        self.cache_url = cache_url
        self.attached_to = host
        self._cache: Any = None
        self._sub: Any = None
        self._first: FeedCycle | None = None
        self._retry_s = 0.0
        self.retry_after_s = 5.0
        """After Redis failed, the next attempt comes this many real seconds later."""

    def _connect(self) -> None:
        """Subscribe, then take the newest published cycle as the next one (a cycle published
        while disconnected is not lost from view). Raises StoreError when Redis does not answer."""
        from optui.storage.cache import SNAPSHOT_CHANNEL, RedisCache, unreachable

        cache = RedisCache(self.cache_url, advice=ATTACH_ADVICE)
        if not cache.ping():
            cache.close()
            raise unreachable(cache.where, "no answer to PING", ATTACH_ADVICE)
        try:
            self._sub = cache.subscribe(SNAPSHOT_CHANNEL)
            latest = cache.get(CYCLE_KEY)
        except BaseException:
            cache.close()
            raise
        self._cache = cache
        self._first = self._accept(latest) if latest is not None else None

    def _disconnect(self) -> None:
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    def start(self) -> str:
        """Connect and subscribe; raises StoreError when Redis does not answer."""
        self._connect()
        history = self._open_store()
        host = self.attached_to or "a collector"
        return f"attached to {host} over {self._cache.describe()}; {history}"

    def delay_s(self) -> float:
        """0 while Redis answers; `retry_after_s` after it failed."""
        retry, self._retry_s = self._retry_s, 0.0
        return retry

    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        """The newest published cycle not yet returned; None after `timeout_s` without one.
        Raises StoreError when Redis goes away (the next call reconnects)."""
        from optui.errors import StoreError

        try:
            if self._sub is None:
                self._connect()
            cycle = self._receive(timeout_s)
        except StoreError:
            self._disconnect()
            self._retry_s = self.retry_after_s
            raise
        # The latest key re-read after a reconnect: its snapshot was already shown.
        return self._repeat(cycle) if cycle is not None else None

    def _receive(self, timeout_s: float | None) -> FeedCycle | None:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            payload = self._sub.get(timeout=left)
            if payload is None:
                return None
            cycle = self._accept(payload)
            if cycle is not None:
                return cycle
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        self._disconnect()
        self._close_store()


class FileFeed(_AttachedFeed):
    """Follows the latest-cycle file a collector on this machine rewrites every cycle (written
    atomically, so a read never sees half a cycle); polls its modification time."""

    def __init__(self, path: Path, store_url: str | None = None, settings: Any = None,
                 host: str = "", poll_s: float = 0.25) -> None:
        super().__init__(store_url, settings)
        self.path = path
        self.attached_to = host
        self.poll_s = poll_s
        self._seen: int | None = None

    def start(self) -> str:
        history = self._open_store()
        return f"attached to {self.attached_to or 'a collector'} through {self.path}; {history}"

    def next_cycle(self, timeout_s: float | None = None) -> FeedCycle | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:
                stamp = self.path.stat().st_mtime_ns
                if stamp != self._seen:
                    self._seen = stamp
                    cycle = self._accept(json.loads(self.path.read_text(encoding="utf-8")))
                    if cycle is not None:
                        cycle = self._repeat(cycle)  # a gap re-offers the last good snapshot
                    if cycle is not None:
                        return cycle
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as exc:
                log.warning("cannot read %s: %s", self.path, exc)
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(self.poll_s)

    def close(self) -> None:
        self._close_store()
