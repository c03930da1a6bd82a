"""One feed of collection cycles for every consumer (`optui collect`, the dashboard).

`LocalFeed` runs the collector here; `RedisFeed` and `FileFeed` follow a collector that runs
elsewhere; `ReplayFeed` (optui.feed.replay) plays a recorded day through the collector's engine
into a store of its own. `open_feed` picks one from the settings: a collector already running on
the configured store is attached to, never doubled.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from optui.feed.model import Feed, FeedCycle, HealthEvent

if TYPE_CHECKING:
    from optui.config import Settings


def open_feed(settings: Settings, attach: str | None = None, *, factory_settings: Settings | None = None) -> Feed:
    """The dashboard's feed: `attach` (redis://HOST:PORT/DB) follows that channel only (premium-flow
    history from the configured store when it is InfluxDB, else from the SQLite file the
    collector publishes when this machine can read it); else a
    collector running on the configured store and source is followed (over the Redis cache when
    one is configured, else through its latest-cycle file); else a LocalFeed collects here,
    holding the lock. `factory_settings` are the settings the local engine is built from
    (the dashboard widens the recorded strikes). Nothing blocks here but a lock-file read and,
    with a Redis cache, one GET of the lease."""
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.feed.attached import FileFeed, RedisFeed
    from optui.feed.local import LocalFeed
    from optui.feed.lock import lock_path, running_collector

    if attach:
        # A SQLite file here is not the remote collector's store; a network store may be.
        history = settings.store.url if not settings.store.url.startswith("sqlite:") else None
        return RedisFeed(attach, history, settings)
    kind = settings.source.kind
    url = store_url_for(settings, is_simulated(settings, kind))
    data_dir = Path(settings.general.data_dir)
    holder = running_collector(url, kind, data_dir, settings.cache.url)
    if holder is not None and not holder.is_this_process():
        if settings.cache.url.startswith(("redis://", "rediss://")):
            return RedisFeed(settings.cache.url, url, settings, host=holder.host)
        latest = lock_path(url, kind, data_dir).with_suffix(".latest.json")
        return FileFeed(latest, url, settings, host=holder.host)
    return LocalFeed.from_settings(factory_settings or settings)


__all__ = ["Feed", "FeedCycle", "HealthEvent", "open_feed"]
