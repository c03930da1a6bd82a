"""One feed for `optui collect` and the dashboard, one collector per store: real `optui collect`
processes, a real redis-server, the dashboard under Textual's pilot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from dashboard_pilot import Host, assert_tables_match, sim_settings
from dashboard_wait import settle
from textual.message import Message

from optui.alerts import MEASUREMENT
from optui.collectors.engine import build_engine
from optui.collectors.headless import Collector
from optui.config import Settings
from optui.feed import open_feed
from optui.feed.attached import FileFeed, RedisFeed, cycle_from_payload
from optui.feed.codec import PAYLOAD_VERSION, encode, snapshot_payload
from optui.feed.local import LocalFeed, cycle_payload
from optui.feed.lock import LEASE_PREFIX, CollectorLock, CollectorRunning, store_key
from optui.feed.model import FeedCycle
from optui.models import SnapshotWarning, WarningKind
from optui.screens.dashboard import DashboardScreen
from optui.storage.base import open_store
from optui.storage.cache import dumps
from optui.storage.flow_queries import query_flow_series
from optui.ui_messages import SnapshotCollected
from optui.widgets.health_log import HealthLog
from optui.widgets.status_header import StatusHeader

OPTUI = str(Path(sys.executable).with_name("optui"))
HOST = socket.gethostname()
START = "2026-11-25 11:00"  # a Wednesday session: the simulator trades at once


FEED_REDIS_DB = 5
"""The Redis database these tests use (and flush): the session's redis-server is shared, and
other modules (tests/test_cache.py among them) keep their keys in database 0."""


@pytest.fixture(scope="module")
def feed_redis(redis_server: str) -> str:
    """redis://127.0.0.1:PORT/5: the session's redis-server, this module's own database."""
    return redis_server.rsplit("/", 1)[0] + f"/{FEED_REDIS_DB}"


def test_the_feed_tests_flush_only_their_own_redis_database(redis_server: str, feed_redis: str) -> None:
    other = redis.Redis.from_url(redis_server)
    try:
        other.set("optui-test:another-module", "kept")
        redis.Redis.from_url(feed_redis).flushdb()
        assert other.get("optui-test:another-module") == b"kept"
    finally:
        other.delete("optui-test:another-module")
        other.close()


def collect_env(tmp_path: Path, cache_url: str = "memory://", **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OPTUI_SIMULATOR_START": START, "OPTUI_SIMULATOR_SEED": "7", "OPTUI_SIMULATOR_SPEED": "60",
        "OPTUI_GENERAL_LOG_DIR": str(tmp_path / "logs"), "OPTUI_GENERAL_DATA_DIR": str(tmp_path / "data"),
        "OPTUI_EXPORT_WRITE_JSON": "false", "OPTUI_EXPORT_WRITE_CSV": "false",
        "OPTUI_CACHE_URL": cache_url, "OPTUI_PARTICIPANTS_ENABLED": "false",
        **extra,
    }


class Collect:
    """A running `optui collect` whose stdout lines are gathered by a thread."""

    def __init__(self, tmp_path: Path, db: Path, cache_url: str = "memory://", *args: str,
                 interval: str = "1", **env: str) -> None:
        self.proc = subprocess.Popen(
            [OPTUI, "collect", "--source", "sim", "--indices", "NIFTY", "--interval", interval,
             "--store", f"sqlite:///{db}", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=collect_env(tmp_path, cache_url, **env), cwd=tmp_path,
        )
        self.lines: list[str] = []
        self.cycled = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if " IST source=" in line:
                self.cycled.set()

    def wait_cycle(self) -> None:
        assert self.cycled.wait(120), "\n".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(60)
        self._reader.join(10)
        return code


def holding(tmp_path: Path, db: Path, cache_url: str = "memory://", **env: str) -> Collect:
    """A collector that takes one cycle and then waits (an hour of market, a minute of real
    time): it holds the lock and lease without taking the machine from the runs beside it."""
    return Collect(tmp_path, db, cache_url, interval="3600", OPTUI_SOURCE_SNAPSHOT_S="0", **env)


def run_collect(tmp_path: Path, db: Path, cache_url: str = "memory://", *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [OPTUI, "collect", "--source", "sim", "--indices", "NIFTY", "--interval", "1",
         "--store", f"sqlite:///{db}", *args],
        capture_output=True, text=True, env=collect_env(tmp_path, cache_url), cwd=tmp_path, timeout=120,
    )


# ---------------------------------------------------------------- codec and lock, in process


@pytest.mark.integration
def test_a_published_cycle_decodes_to_the_collected_snapshot(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    settings.simulator.start = START
    settings.simulator.speed = 60.0  # back-to-back cycles a market minute apart: every one trades
    settings.alerts.single_flow_cr = 0.01
    engine = build_engine(settings)
    try:
        feed = LocalFeed(engine)
        feed.start()
        cycle = feed.next_cycle()
        for _ in range(4):  # a cycle after the first has premium flow, so alerts
            cycle = feed.next_cycle()
            if cycle.snapshot.alerts:
                break
    finally:
        engine.close()
    snap = cycle.snapshot
    assert snap.alerts and snap.leg_count > 0
    snap.warnings.append(SnapshotWarning(WarningKind.CACHE, "cache", "Redis at redis://h:1/0 is not reachable"))
    wire = json.loads(dumps(cycle_payload(cycle)))
    back = cycle_from_payload(wire)
    assert encode(back.snapshot) == json.loads(dumps(snapshot_payload(snap)))
    assert back.snapshot.indices["NIFTY"].overview.last_price == snap.indices["NIFTY"].overview.last_price
    assert back.snapshot.timestamp == snap.timestamp and back.snapshot.timestamp.tzinfo is not None
    assert [a.message for a in back.alerts] == [a.message for a in snap.alerts]
    leg = back.snapshot.indices["NIFTY"].legs[0]
    assert isinstance(leg.expiry, type(snap.indices["NIFTY"].legs[0].expiry))
    assert back.host == HOST
    assert back.warnings[-1].kind is WarningKind.CACHE and back.warnings == snap.warnings
    assert any(back.snapshot.indices["NIFTY"].strike_flow)  # keyed by (expiry, strike)
    assert back.snapshot.indices["NIFTY"].strike_flow == snap.indices["NIFTY"].strike_flow


@pytest.mark.unit
def test_a_payload_of_another_version_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="same optui version"):
        cycle_from_payload({"version": 99, "snapshot": {}})
    with pytest.raises(ValueError, match="malformed"):
        cycle_from_payload({"version": PAYLOAD_VERSION})


@pytest.mark.unit
def test_lock_file_refuses_a_second_holder_and_frees_on_release(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    first = CollectorLock(url, "sim", tmp_path).acquire()
    with pytest.raises(CollectorRunning) as refused:
        CollectorLock(url, "sim", tmp_path, self_wait_s=0.0).acquire()
    assert f"pid {os.getpid()} on {HOST}" in str(refused.value) and " IST" in str(refused.value)
    CollectorLock(url, "kite", tmp_path).acquire().release()  # another source: its own lock
    first.release()
    CollectorLock(url, "sim", tmp_path).acquire().release()


@pytest.mark.unit
def test_a_new_feed_waits_for_this_process_previous_one_to_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    closing = CollectorLock(url, "sim", tmp_path).acquire()
    threading.Timer(0.3, closing.release).start()  # a dashboard's old feed, closing in a thread
    CollectorLock(url, "sim", tmp_path).acquire().release()


@pytest.mark.unit
def test_collect_and_the_dashboard_read_the_same_feed_type(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path)
    engine = build_engine(settings)
    try:
        assert type(Collector(engine, 1.0).feed) is LocalFeed
    finally:
        engine.close()
    assert type(open_feed(settings)) is LocalFeed  # no collector runs on this store


# ---------------------------------------------------------------- real collectors


@pytest.mark.integration
def test_a_second_collector_on_the_same_store_is_refused_naming_the_holder(tmp_path: Path) -> None:
    db = tmp_path / "optui.db"
    first = holding(tmp_path, db)
    try:
        first.wait_cycle()
        second = run_collect(tmp_path, db, "memory://", "--once")
        other_store = run_collect(tmp_path, tmp_path / "other.db", "memory://", "--once")
    finally:
        assert first.stop() == 0
    assert second.returncode == 2, second.stdout + second.stderr
    message = second.stderr + second.stdout
    assert f"pid {first.proc.pid} on {HOST}, since 20" in message and " IST" in message
    assert "Traceback" not in message
    assert other_store.returncode == 0, other_store.stderr  # another store: not refused
    after = run_collect(tmp_path, db, "memory://", "--once")  # the holder stopped: the lock is free
    assert after.returncode == 0, after.stderr


@pytest.mark.integration
def test_the_lease_of_a_killed_collector_expires_and_lets_the_next_one_in(tmp_path: Path, feed_redis: str) -> None:
    db = tmp_path / "optui.db"
    client = redis.Redis.from_url(feed_redis)
    key = LEASE_PREFIX + store_key(f"sqlite:///{db}", "sim")
    first = holding(tmp_path, db, feed_redis, OPTUI_CACHE_LEASE_S="4")
    try:
        first.wait_cycle()
        assert json.loads(client.get(key))["pid"] == first.proc.pid
    finally:
        first.stop(signal.SIGKILL)
    # The kernel freed the lock file; the lease in Redis (renewed every 1.3 s) still names the
    # dead holder, so the next collector is refused.
    with pytest.raises(CollectorRunning) as refused:
        CollectorLock(f"sqlite:///{db}", "sim", tmp_path / "data", feed_redis, 4.0).acquire()
    assert f"pid {first.proc.pid} on {HOST}" in str(refused.value) and "redis lease" in str(refused.value)
    while client.exists(key):  # until the lease expires (4 s after the last renewal)
        time.sleep(0.2)
    admitted = run_collect(tmp_path, db, feed_redis, "--once")
    assert admitted.returncode == 0, admitted.stdout + admitted.stderr
    assert not client.exists(key)  # released on a clean exit
    client.close()


def _stored_price(db: Path, at: datetime) -> float:
    with open_store(f"sqlite:///{db}") as store:
        rows = store.query("index_overview", at, at, tags={"index": "NIFTY"})
        if not rows:
            rows = [r for r in store.query("index_overview", datetime(2026, 11, 24, tzinfo=UTC),
                                           datetime(2026, 11, 27, tzinfo=UTC)) if r.time == at]
    assert rows, f"no stored overview at {at}"
    return float(rows[0].fields["last_price"])


async def _attached_dashboard(screen: DashboardScreen, feed_type: type = RedisFeed, want: int = 2) -> list[SnapshotCollected]:
    messages: list[Message] = []
    app = Host(screen)
    async with app.run_test(size=(160, 48), message_hook=messages.append) as pilot:
        for _ in range(600):
            got = [m for m in messages if isinstance(m, SnapshotCollected)]
            if len(got) >= want:
                break
            await pilot.pause(0.1)
        await pilot.pause(0.2)
        got = [m for m in messages if isinstance(m, SnapshotCollected)]
        assert len(got) >= want, [n.message for n in app._notifications]
        snap = screen._snapshot
        assert snap is not None
        assert_tables_match(screen, snap)
        header = str(screen.query_one(StatusHeader).query_one("#selection").render())
        assert f"attached to {HOST}" in header
        assert isinstance(screen.feed, feed_type)
        await pilot.press("escape")
    return got


@pytest.mark.integration
async def test_without_a_cache_the_dashboard_follows_the_collector_on_this_machine(tmp_path: Path) -> None:
    db = tmp_path / "optui.db"
    proc = Collect(tmp_path, db)
    try:
        proc.wait_cycle()
        settings = sim_settings(tmp_path)
        settings.store.url = f"sqlite:///{db}"
        screen = DashboardScreen(settings)
        got = await _attached_dashboard(screen, FileFeed)
    finally:
        assert proc.stop() == 0
    for message in got:
        snap = message.snapshot
        assert snap.indices["NIFTY"].overview.last_price == _stored_price(db, snap.timestamp)


@pytest.mark.integration
async def test_a_dashboard_that_collects_holds_the_store_against_optui_collect(tmp_path: Path) -> None:
    settings = sim_settings(tmp_path, interval_s=3600.0)
    settings.source.snapshot_s = 0  # one cycle: no tick cadence
    settings.simulator.start = START
    screen = DashboardScreen(settings)
    messages: list[Message] = []
    app = Host(screen)
    async with app.run_test(size=(160, 48), message_hook=messages.append) as pilot:
        for _ in range(3):  # feed start, first cycle, flow query
            await settle(app, pilot)
            await pilot.pause()
        assert any(isinstance(m, SnapshotCollected) for m in messages)
        assert type(screen.feed) is LocalFeed
        refused = run_collect(tmp_path, tmp_path / "x.db", "memory://", "--once")
        await pilot.press("escape")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"pid {os.getpid()} on {HOST}" in refused.stderr


@pytest.mark.unit
def test_dashboard_attach_takes_only_a_redis_url(tmp_path: Path) -> None:
    done = subprocess.run([OPTUI, "dashboard", "--attach", "http://10.0.0.5:6379/0"], capture_output=True,
                          text=True, env=collect_env(tmp_path), cwd=tmp_path, timeout=60)
    assert done.returncode == 2
    assert "redis://HOST:PORT/DB" in done.stderr and "Traceback" not in done.stderr + done.stdout


@pytest.mark.integration
async def test_an_attached_dashboard_shows_the_collectors_gap_and_fault_with_its_fix(tmp_path: Path) -> None:
    """A collector that cannot collect publishes a gap cycle: the attached dashboard's health
    panel shows the same typed event (severity, message, fix) the collector raised."""
    from optui.collectors.health import EventKind, HealthEvent, Severity
    from optui.collectors.supervisor import TOKEN_ACTION
    from optui.feed.model import FeedCycle
    from optui.storage.legacy_files import write_atomic
    from optui.widgets.health_log import HealthLog

    fault = HealthEvent(EventKind.TOKEN_REJECTED, Severity.ERROR, "no Kite access token is stored", TOKEN_ACTION,
                        at=datetime(2026, 11, 25, 3, 50, tzinfo=UTC), source="kite")
    latest = tmp_path / "collector.latest.json"
    gap = FeedCycle(None, [fault], host="server1", gap="source paused: no Kite access token is stored")
    write_atomic(latest, dumps(cycle_payload(gap)))
    screen = DashboardScreen(sim_settings(tmp_path), feed=FileFeed(latest, host="server1", poll_s=0.05))
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(100):
            entries = screen.query_one(HealthLog).entries
            if any("no Kite access token" in text for _, text in entries):
                break
            await pilot.pause(0.05)
        entries = list(screen.query_one(HealthLog).entries)
        history = list(screen.query_one(HealthLog).history)
        await pilot.press("escape")
    assert ("error", fault.text()) in entries
    assert (fault.at, "error", fault.text()) in history  # at the collector's time, not on arrival
    assert "optui login" in fault.text() and screen._snapshot is None  # a gap shows no data as new


# ------------------------------------------- one collector on Redis, read by the tests below


@pytest.fixture(scope="module")
def collector_on_redis(tmp_path_factory: pytest.TempPathFactory,
                       feed_redis: str) -> Iterator[tuple[Collect, Path]]:
    """One `optui collect` publishing to Redis for every test below (each only reads it);
    these tests close the module, so it collects beside no other test."""
    redis.Redis.from_url(feed_redis).flushdb()
    root = tmp_path_factory.mktemp("collector-on-redis")
    db = root / "optui.db"
    proc = Collect(root, db, feed_redis, OPTUI_ALERTS_SINGLE_FLOW_CR="0.01")
    try:
        proc.wait_cycle()
        yield proc, db
    finally:
        assert proc.stop() == 0, "\n".join(proc.lines)


@pytest.mark.integration
async def test_the_dashboard_attaches_to_a_running_collector_and_shows_its_values(
    tmp_path: Path, feed_redis: str, collector_on_redis: tuple[Collect, Path]
) -> None:
    proc, db = collector_on_redis
    settings = sim_settings(tmp_path)
    settings.store.url = f"sqlite:///{db}"
    settings.cache.url = feed_redis
    screen = DashboardScreen(settings)
    got = await _attached_dashboard(screen)
    for message in got:
        snap = message.snapshot
        assert snap.source == "sim"
        assert snap.indices["NIFTY"].overview.last_price == _stored_price(db, snap.timestamp)
    # the app did not collect: every cycle the store holds was printed by the one collector
    with open_store(f"sqlite:///{db}") as store:
        times = {r.time for r in store.query("index_overview", datetime(2026, 11, 24, tzinfo=UTC),
                                             datetime(2026, 11, 27, tzinfo=UTC))}
    printed = [ln for ln in proc.lines if " IST source=" in ln]
    assert len(times) <= len(printed) + 1


@pytest.mark.integration
async def test_dashboard_attach_url_follows_only_the_remote_channel(
    tmp_path: Path, feed_redis: str, collector_on_redis: tuple[Collect, Path]
) -> None:
    _, db = collector_on_redis
    elsewhere = Settings()  # a laptop: its own (empty) settings, no store of the collector's
    elsewhere.general.data_dir = str(tmp_path / "laptop")
    elsewhere.general.log_dir = str(tmp_path / "laptop-logs")
    screen = DashboardScreen(elsewhere, attach=feed_redis)
    got = await _attached_dashboard(screen)
    for message in got:
        snap = message.snapshot
        assert snap.indices["NIFTY"].overview.last_price == _stored_price(db, snap.timestamp)
    assert not (tmp_path / "laptop" / "sim").exists()  # nothing was collected or stored here


@pytest.mark.integration
async def test_dashboard_attach_reads_premium_flow_from_the_collectors_sqlite_store(
    tmp_path: Path, feed_redis: str, collector_on_redis: tuple[Collect, Path]
) -> None:
    _, db = collector_on_redis
    elsewhere = Settings()  # its own settings: a SQLite store of its own, not the collector's
    elsewhere.general.data_dir = str(tmp_path / "laptop")
    elsewhere.general.log_dir = str(tmp_path / "laptop-logs")
    screen = DashboardScreen(elsewhere, attach=feed_redis)
    app = Host(screen)
    async with app.run_test(size=(160, 48)) as pilot:
        for _ in range(600):
            series = screen._series
            if series is not None and series.bars:
                break
            await pilot.pause(0.1)
        feed = screen.feed
        assert isinstance(feed, RedisFeed) and feed.store is not None
        assert str(db.resolve()) in feed.store.describe()  # the path the collector published
        series = screen._series
        assert series is not None and series.bars, "no premium-flow bars from the collector's store"
        assert screen.flow_queries >= 1
        with open_store(f"sqlite:///{db}") as store:
            stored = query_flow_series(store, series.index, series.timeframe,
                                       series.bars[0].start, series.bars[-1].start + timedelta(minutes=5))
        first = {b.start: b.inflow_cr for b in stored.bars}
        for bar in series.bars[:-1]:  # the newest bar may have grown since it was read
            assert first[bar.start] == pytest.approx(bar.inflow_cr)
        body = str(screen.query_one("#flow-body").render())
        assert "₹" in body
        logged = [text for _, text in screen.query_one(HealthLog).entries]
        assert any("history from SQLite" in t for t in logged), logged
        await pilot.press("escape")
    assert not (tmp_path / "laptop" / "optui.db").exists()  # its own store was never opened


@pytest.mark.integration
def test_alerts_are_raised_once_and_every_consumer_reads_the_same(
    feed_redis: str, collector_on_redis: tuple[Collect, Path]
) -> None:
    proc, db = collector_on_redis
    feeds = [RedisFeed(feed_redis), RedisFeed(feed_redis)]
    seen: list[dict[datetime, list[str]]] = [{}, {}]
    try:
        for feed in feeds:
            feed.start()
        for _ in range(400):
            for feed, got in zip(feeds, seen, strict=True):
                cycle: FeedCycle | None = feed.next_cycle(timeout_s=0.05)
                if cycle is not None:
                    got[cycle.snapshot.timestamp] = sorted(a.message for a in cycle.alerts)
            common = set(seen[0]) & set(seen[1])
            if sum(1 for t in common if seen[0][t]) >= 2:
                break
    finally:
        for feed in feeds:
            feed.close()
    common = sorted(set(seen[0]) & set(seen[1]))
    with_alerts = [t for t in common if seen[0][t]]
    assert len(with_alerts) >= 2, seen
    for at in common:
        assert seen[0][at] == seen[1][at]
    with open_store(f"sqlite:///{db}") as store:
        rows = store.query(MEASUREMENT, datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
    for at in with_alerts:
        stored = [r for r in rows if r.time == at]
        assert len(stored) == len(seen[0][at]), (at, stored, seen[0][at])
