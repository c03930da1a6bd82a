"""The real kiteconnect client, through our Kite source, against the simulated exchange on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.kite_source import KiteSource
from optui.collectors.rate_limit import RateLimiter
from optui.config import Settings
from optui.errors import NetworkError, RateLimitedError, TokenExpiredError
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import SimulatorServer, serve
from optui.storage.base import open_store
from optui.timeutil import IST

pytestmark = [pytest.mark.integration, pytest.mark.mock]


@pytest.fixture
def sim_server() -> Iterator[SimulatorServer]:
    exchange = SimulatedExchange(seed=11, speed=300.0, start=datetime(2026, 11, 25, 10, 30, tzinfo=IST))
    server = serve(exchange, "127.0.0.1", 0)
    yield server
    server.close()


def test_instruments_through_official_client_cached_per_day(sim_server: SimulatorServer, tmp_path: Path) -> None:
    src = KiteSource("sim_key", "sim_token", root=sim_server.url, cache_dir=tmp_path)
    instruments = src.instruments()
    exchanges = {i.exchange for i in instruments}
    assert exchanges == {"NFO", "BFO"}
    symbols = {i.tradingsymbol for i in instruments}
    assert any(s.startswith("NIFTY26D01") and s.endswith("CE") for s in symbols)  # weekly form
    assert any(s.startswith("BANKNIFTY26DEC") for s in symbols)  # monthly form
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == 2 and all(n.startswith("instruments_") for n in cached)
    # The same API host on the same day is served from the cache, with no request made ...
    again = KiteSource("sim_key", "sim_token", root=sim_server.url, cache_dir=tmp_path)
    again.sync_clock()  # the dump's day is the exchange's (its Date header), not the machine's
    sim_server.close()
    assert len(again.instruments()) == len(instruments)
    # ... but another host (Zerodha's, say) never gets the simulator's dump.
    other = KiteSource("sim_key", "sim_token", root="http://127.0.0.1:9", cache_dir=tmp_path)
    with pytest.raises(NetworkError):
        other.instruments()


def test_engine_over_kite_source(sim_server: SimulatorServer, tmp_path: Path) -> None:
    settings = Settings()
    settings.source.indices = ["NIFTY", "SENSEX"]
    settings.source.chain_strikes = 20
    src = KiteSource("sim_key", "sim_token", root=sim_server.url)
    store = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    engine = CollectionEngine(settings, src, store)
    try:
        snap = engine.collect_once()
    finally:
        engine.close()
    assert snap.source == "kite" and snap.label == "SIMULATED" and engine.source_label == "SIMULATED"
    assert set(snap.indices) == {"NIFTY", "SENSEX"}
    assert snap.indices["NIFTY"].overview.buckets["this_week"].atm_iv > 1.0
    assert snap.leg_count == (4 + len(snap.indices["SENSEX"].overview.buckets)) * 10
    # Spot and chain quotes were spaced by the client limiter: no 429 surfaced.
    assert not any("rate limit" in w for w in snap.warnings)


def test_wrong_token_is_token_expired(sim_server: SimulatorServer) -> None:
    src = KiteSource("sim_key", "stale_token", root=sim_server.url)
    with pytest.raises(TokenExpiredError, match="06:00 IST"):
        src.quotes(["NSE:NIFTY 50"])


def test_server_rate_limit_surfaces_as_rate_limited(sim_server: SimulatorServer) -> None:
    unlimited = RateLimiter({"quote": 1e9, "default": 1e9})
    src = KiteSource("sim_key", "sim_token", root=sim_server.url, limiter=unlimited)
    # The server's window is held still, so both calls fall in one second however slow the machine.
    clock, frozen = sim_server.limiter.clock, time.monotonic()
    sim_server.limiter.clock = lambda: frozen
    try:
        src.quotes(["NSE:NIFTY 50"])
        with pytest.raises(RateLimitedError):
            src.quotes(["NSE:NIFTY BANK"])
    finally:
        sim_server.limiter.clock = clock


def test_a_429_from_arrival_jitter_is_retried_after_an_interval(
    sim_server: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Two clients of one API key: the second's first call lands inside the first's 1 s window,
    # as calls spaced to the limit do when their arrival times jitter.
    first = KiteSource("sim_key", "sim_token", root=sim_server.url)
    second = KiteSource("sim_key", "sim_token", root=sim_server.url)
    first.quotes(["NSE:NIFTY 50"])
    with caplog.at_level("INFO", logger="optui.collectors.kite_source"):
        quotes = second.quotes(["NSE:NIFTY BANK"])
    assert quotes["NSE:NIFTY BANK"].last_price > 0
    assert any("rate limited (HTTP 429); retrying" in r.getMessage() for r in caplog.records)


def _cache_files(tmp_path: Path) -> dict[str, Path]:
    return {ex: p for p in tmp_path.glob("instruments_*.csv") for ex in ("NFO", "BFO") if f"_{ex}_" in p.name}


@pytest.mark.parametrize("damage", ["truncated", "not_utf8"])
def test_damaged_instrument_cache_is_fetched_again(sim_server: SimulatorServer, tmp_path: Path, damage: str) -> None:
    settings = Settings()
    settings.source.chain_strikes = 10
    first = KiteSource("sim_key", "sim_token", root=sim_server.url, cache_dir=tmp_path)
    listed = first.instruments()
    nfo = _cache_files(tmp_path)["NFO"]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed into place
    data = nfo.read_bytes()
    if damage == "truncated":
        # Cut after NIFTY's rows: BANKNIFTY, FINNIFTY and MIDCPNIFTY would have "no options listed".
        cut = data.index(b",BANKNIFTY,")
        nfo.write_bytes(data[: data.rindex(b"\n", 0, cut) + 1])
    else:
        nfo.write_bytes(data[:200] + b"\xff\xfe" + data[200:])
    src = KiteSource("sim_key", "sim_token", root=sim_server.url, cache_dir=tmp_path)
    store = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    engine = CollectionEngine(settings, src, store)
    try:
        snap = engine.collect_once()
    finally:
        engine.close()
    assert len(src.instruments()) == len(listed)
    assert set(snap.indices) == {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX"}
    assert not any("no options listed" in w for w in snap.warnings)
    # 4 buckets of the four weekly/monthly NSE indices and SENSEX, 5 offsets, 2 sides each.
    assert snap.leg_count == sum(len(s.overview.buckets) for s in snap.indices.values()) * 10
    assert snap.leg_count >= 140
    assert nfo.read_bytes() == data  # the cache was rewritten whole


def test_instrument_cache_check_names_the_problem(tmp_path: Path) -> None:
    from optui.collectors.instrument_cache import read_instrument_cache, write_instrument_cache
    from optui.models import Instrument

    rows = [Instrument(i, i, f"NIFTY26D01{20000 + i}{t}", "NIFTY", 0.0, datetime(2026, 12, 1).date(),
                       20000.0 + i, 0.05, 65, t, "NFO-OPT", "NFO") for i in range(3) for t in ("CE", "PE")]
    path = tmp_path / "c.csv"
    write_instrument_cache(path, rows)
    assert read_instrument_cache(path, ["NIFTY"])[0] == rows
    got, why = read_instrument_cache(path, ["NIFTY", "BANKNIFTY"])
    assert got is None and "BANKNIFTY" in why
    path.write_text(path.read_text().replace("rows=6", "rows=7"))
    got, why = read_instrument_cache(path, ["NIFTY"])
    assert got is None and "6 readable rows of 7" in why
