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


def store_in_use(settings: Settings, kind: str | None = None) -> str:
    """The store URL collection from the configured source (or `kind`) writes: store.url, or
    the simulator's own store when store.url is left at its default (see store_url_for)."""
    return store_url_for(settings, is_simulated(settings, kind))


def with_stream(settings: Settings, source: MarketSource, simulated: bool) -> MarketSource:
    """The collection source: `source` streamed (StreamingSource) when `source.stream` is on
    and the source is Kite or the simulator, recorded when `record.enabled`; otherwise the
    polling source alone (recorded as before)."""
    from optui.collectors.recording import make_recorder, with_recording
    from optui.collectors.stream_plan import ticker_root
    from optui.collectors.stream_source import MAX_TICK_AGE_S, StreamingSource

    if not settings.source.stream or source.name not in ("kite", "sim"):
        return with_recording(settings, source, simulated)
    recorder = make_recorder(settings, source, simulated)
    src = settings.source
    common = {"recorder": recorder, "capacity": src.stream_instruments,
              "stall_after_s": src.stream_stall_s,
              "snapshot_s": float(src.snapshot_s) if src.snapshot_s else None}
    if source.name == "sim":
        from optui.simulator.server import serve

        exchange = source.exchange  # type: ignore[attr-defined]
        from optui.simulator.ticker import TICK_INTERVAL_S

        server = serve(exchange, "127.0.0.1", 0)
        # Ticks about every simulated second, from five frames a real second to one.
        server.tick_interval = min(max(TICK_INTERVAL_S / exchange.speed, 0.2), TICK_INTERVAL_S)
        age = max(MAX_TICK_AGE_S, 5.0 * exchange.speed * server.tick_interval)
        root = server.url.replace("http://", "ws://", 1)
        return StreamingSource(source, exchange.api_key, exchange.access_token, root,
                               server=server, max_age_s=age, **common)  # type: ignore[arg-type]
    kite = source._kite  # type: ignore[attr-defined]
    return StreamingSource(source, kite.api_key, kite.access_token or "",
                           ticker_root(source.root), **common)  # type: ignore[attr-defined, arg-type]
