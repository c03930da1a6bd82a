"""A consumer that attaches while a fault is open sees it at once: the latest-cycle key (Redis) and
file carry the faults still open and the last good snapshot with its age (the cached tier).

Real parts: the simulated Kite API through the official `kiteconnect` client, the real collector
loop on a simulated clock, a real redis-server, the real latest-cycle file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from test_faults import _kite, _server, _settings

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.health import EventKind, Status
from optui.collectors.simulated_time import SimTime, stop_when
from optui.collectors.supervisor import Outcome
from optui.config import secrets_path, write_private
from optui.feed.attached import FileFeed, RedisFeed
from optui.feed.local import LocalFeed
from optui.feed.model import Feed, FeedCycle
from optui.simulator.faults import FaultPlan
from optui.storage.cache import RedisCache
from optui.storage.sqlite_store import SQLiteStore

INTERVAL = 5.0


def _collect_into_a_rejected_token(tmp_path: Path, cache: RedisCache | None, latest: Path | None) -> list[str]:
    """Collect until the token is rotated away, then four paused gaps; returns the printed lines.
    The feed is closed, so everything it published has reached Redis and the file."""
    sim_time = SimTime()
    server = _server(sim_time, FaultPlan({}, rotate_after=12))
    store = SQLiteStore(tmp_path / "x.db")
    write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
    engine = CollectionEngine(_settings(INTERVAL), _kite(server, sim_time, tmp_path), store,
                              state_dir=tmp_path / "state", cache=cache)
    feed = LocalFeed(engine, interval_s=INTERVAL, latest_file=latest)
    out = io.StringIO()
    collector = Collector(engine, INTERVAL, out=out, sleep=sim_time.sleep, feed=feed)
    gaps = 0

    def four_gaps(outcome: Outcome) -> bool:
        nonlocal gaps
        gaps += not outcome.stored
        return gaps == 4

    stop_when(collector, four_gaps)
    try:
        assert collector.run() == 0
    finally:
        feed.close()
        store.close()
        server.close()
    return out.getvalue().splitlines()


def _first_and_repeat(feed: Feed) -> tuple[FeedCycle, FeedCycle | None]:
    feed.start()
    try:
        first = feed.next_cycle(timeout_s=5.0)
        assert first is not None
        again = feed.next_cycle(timeout_s=0.3)
    finally:
        feed.close()
    return first, again


def _assert_shows_the_open_fault(first: FeedCycle, lines: list[str]) -> None:
    stored = [ln for ln in lines if " IST source=" in ln]
    assert stored and sum(" gap: " in ln for ln in lines) == 4, lines
    fault = [e for e in first.health if e.kind is EventKind.TOKEN_REJECTED]
    assert fault and fault[0].status is Status.OPEN and "optui login" in fault[0].action
    assert [e.kind for e in first.open_faults] == [EventKind.TOKEN_REJECTED]
    assert "token" in first.gap
    # The last good snapshot, as the cached tier: four 5 s intervals old at the last gap,
    # its alerts not offered again as new ones.
    assert first.snapshot is not None and first.snapshot.alerts == []
    assert first.age_s == pytest.approx(4 * INTERVAL, abs=INTERVAL)


@pytest.mark.chaos
@pytest.mark.integration
def test_a_dashboard_attaching_over_redis_mid_outage_gets_the_open_fault_at_once(
        tmp_path: Path, redis_server: str) -> None:
    import redis

    url = redis_server.rsplit("/", 1)[0] + "/7"  # a database of its own: the server is shared
    cache = RedisCache(url)
    try:
        lines = _collect_into_a_rejected_token(tmp_path, cache, None)
        first, again = _first_and_repeat(RedisFeed(url))
    finally:
        cache.close()
        redis.Redis.from_url(url).flushdb()
    _assert_shows_the_open_fault(first, lines)
    assert again is None  # nothing newer was published


@pytest.mark.chaos
@pytest.mark.integration
def test_a_dashboard_attaching_through_the_latest_file_mid_outage_gets_the_open_fault_once(
        tmp_path: Path) -> None:
    latest = tmp_path / "collector.latest.json"
    lines = _collect_into_a_rejected_token(tmp_path, None, latest)
    feed = FileFeed(latest, host="server1", poll_s=0.05)
    feed.start()
    try:
        first = feed.next_cycle(timeout_s=5.0)
        assert first is not None
        _assert_shows_the_open_fault(first, lines)
        # The collector's next gap rewrites the file with the same snapshot and fault: shown as
        # a gap (nothing old as new data), and the fault not logged a second time.
        latest.write_bytes(latest.read_bytes())
        again = feed.next_cycle(timeout_s=5.0)
    finally:
        feed.close()
    assert again is not None and again.snapshot is None and "token" in again.gap
    assert again.health == []


@pytest.mark.chaos
@pytest.mark.integration
async def test_a_dashboard_attaching_mid_outage_shows_the_fault_and_the_cached_data_as_stale(
        tmp_path: Path) -> None:
    """Its own settings say 30 s; the collector runs every 5 s: four missed intervals are stale."""
    from dashboard_pilot import Host

    from optui.config import Settings
    from optui.screens.dashboard import DashboardScreen
    from optui.widgets.health_log import HealthLog
    from optui.widgets.status_header import StatusHeader

    latest = tmp_path / "collector.latest.json"
    _collect_into_a_rejected_token(tmp_path, None, latest)
    laptop = Settings()
    laptop.general.data_dir = str(tmp_path / "laptop")
    laptop.general.log_dir = str(tmp_path / "laptop-logs")
    screen = DashboardScreen(laptop, feed=FileFeed(latest, host="server1", poll_s=0.05))
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(200):
            if screen._snapshot is not None:
                break
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        entries = list(screen.query_one(HealthLog).entries)
        age = str(screen.query_one(StatusHeader).query_one("#age").render())
        await pilot.press("escape")
    assert any(level == "error" and "optui login" in text for level, text in entries), entries
    assert age.startswith("stale ") and screen._data_clock.age_s(screen._clock()) >= 3 * INTERVAL


@pytest.mark.chaos
@pytest.mark.integration
def test_a_rejected_token_says_what_happened_once_and_never_to_set_the_token_in_the_environment(
        tmp_path: Path) -> None:
    latest = tmp_path / "collector.latest.json"
    lines = _collect_into_a_rejected_token(tmp_path, None, latest)
    feed = FileFeed(latest)
    feed.start()
    try:
        cycle = feed.next_cycle(timeout_s=5.0)
    finally:
        feed.close()
    assert cycle is not None
    fault = cycle.open_faults[0]
    assert fault.message == ("quote: Kite access token is invalid or expired "
                             "(tokens expire every morning at about 06:00 IST)")
    assert "optui login" in fault.action and "resumes on its own" in fault.action
    text = "\n".join(lines) + fault.text()
    assert "OPTUI_KITE_ACCESS_TOKEN" not in text
