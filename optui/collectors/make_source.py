"""The market source and store a collection uses, from the settings: the simulator or Kite,
and the store a simulated source writes to (kept apart from a live history)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from optui.collectors.source import MarketSource
from optui.config import Settings, StoreSettings
from optui.errors import ConfigError
from optui.timeutil import parse_ist_minute


def make_source(settings: Settings, kind: str | None = None,
                stored_until: datetime | None = None) -> MarketSource:
    """The configured source: the in-process simulator, or Kite (secrets from env / 0600 file).

    `stored_until` is the newest market moment the simulator's store holds: without a
    configured `simulator.start` the simulated clock continues after it, never back over it.
    """
    kind = kind or settings.source.kind
    if kind == "sim":
        from optui.collectors.sim_source import SimulatedSource, resume_start

        start = None
        if settings.simulator.start:
            try:
                start = parse_ist_minute(settings.simulator.start)
            except ValueError as exc:
                raise ConfigError(f"simulator.start = {exc}") from None
        else:
            start = resume_start(stored_until)
        return SimulatedSource(seed=settings.simulator.seed, speed=settings.simulator.speed, start=start)
    if kind == "kite":
        from optui.analytics.trading_calendar import TradingCalendar
        from optui.collectors.kite_source import KiteSource
        from optui.config import load_secrets

        secrets = load_secrets()
        kite = KiteSource(
            settings.kite.api_key, secrets.get("kite_access_token", ""), root=settings.kite.root,
            cache_dir=Path(settings.source.instruments_cache_dir), indices=settings.source.indices,
        )
        kite.calendar = TradingCalendar.from_settings(settings)  # configured holidays count
        return kite
    raise ConfigError(f"source {kind!r} is not known: use sim or kite")


def is_simulated(settings: Settings, kind: str | None = None) -> bool:
    """The built-in simulator, or Kite's API served by `optui simulate` on loopback."""
    from optui.collectors.kite_source import is_loopback

    kind = kind or settings.source.kind
    return kind == "sim" or (kind == "kite" and is_loopback(settings.kite.root))


def store_url_for(settings: Settings, simulated: bool, store_url: str | None = None) -> str:
    """The store a source writes to: simulated points never mix into a live history.

    An explicit URL wins; left at its default, the simulator's store is data/sim/optui.db.
    """
    if store_url:
        return store_url
    if simulated and settings.store.url == StoreSettings().url:
        return f"sqlite:///{Path(settings.general.data_dir) / 'sim' / 'optui.db'}"
    return settings.store.url
