"""The health model, the secrets-file watch and `optui doctor`'s reading of a collector's health."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optui.collectors.health import (
    HEALTH_FILE,
    EventKind,
    HealthEvent,
    HealthLog,
    Severity,
    Status,
    health_document,
    read_health_file,
    write_health_file,
)
from optui.collectors.token_watch import SecretsWatch
from optui.config import Settings, write_private
from optui.ops.doctor import collector_checks
from optui.timeutil import now_utc

pytestmark = pytest.mark.unit

AT = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)


def test_repeats_are_logged_once_and_a_recovery_resolves_its_faults() -> None:
    health = HealthLog()
    down = HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, "quote: cannot reach Kite", "retry", at=AT)
    assert health.raise_(down) is True
    assert health.raise_(down) is False  # the same fault again: no second line
    health.raise_(HealthEvent(EventKind.SLOW_CYCLE, Severity.WARNING, "slow", at=AT))
    assert health.worst is Severity.ERROR
    assert [e.kind for e in health.open_faults()] == [EventKind.SOURCE_DOWN, EventKind.SLOW_CYCLE]
    health.raise_(HealthEvent(EventKind.SOURCE_BACK, Severity.INFO, "back", at=AT + timedelta(seconds=5)))
    assert [e.kind for e in health.open_faults()] == [EventKind.SLOW_CYCLE]
    resolved = [e for e in health.recent() if e.status is Status.RESOLVED]
    assert [e.kind for e in resolved] == [EventKind.SOURCE_DOWN]
    assert resolved[0].line() == "ERROR source_down: quote: cannot reach Kite -> retry (resolved)"
    assert health.resolve(EventKind.SLOW_CYCLE) is not None and health.worst is None


def test_log_is_bounded() -> None:
    health = HealthLog(keep=5)
    for n in range(20):
        health.raise_(HealthEvent(EventKind.CHECK, Severity.INFO, f"n{n}"))
    assert [e.message for e in health.recent(10)] == [f"n{n}" for n in range(15, 20)]


def test_secrets_watch_sees_a_new_token_not_a_rewrite_of_the_same(tmp_path: Path) -> None:
    file = tmp_path / "secrets.toml"
    write_private(file, 'kite_access_token = "old"\n')
    watch = SecretsWatch(file)
    write_private(file, 'kite_access_token = "old"\n')  # same bytes, new mtime
    assert watch.changed() is False
    write_private(file, 'kite_access_token = "new"\n')
    assert watch.changed() is True and watch.token() == "new"
    assert watch.changed() is False
    file.write_bytes(b"\xff\xfe not toml")
    assert watch.changed() is True and watch.token() == ""
    assert "new" not in repr(watch)


def test_doctor_reads_open_faults_with_their_fix(tmp_path: Path) -> None:
    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    settings.source.interval_s = 30.0
    health = HealthLog()
    health.raise_(HealthEvent(EventKind.TOKEN_REJECTED, Severity.ERROR, "quote: token rejected",
                              "log in again", at=AT))
    path = tmp_path / "state" / "sim" / HEALTH_FILE
    write_health_file(path, health_document(health, AT, "sim", 12, 3, 45.0))
    assert read_health_file(path)["gaps"] == 3  # type: ignore[index]
    rows = collector_checks(settings, AT + timedelta(seconds=20))
    assert rows[0].ok is False and "12 attempts, 3 gaps" in rows[0].detail
    assert "cached data 45s old" in rows[0].detail and "09:30:00 IST" in rows[0].detail
    assert rows[1].ok is False and rows[1].fix == "log in again" and "token_rejected" in rows[1].name
    stale = collector_checks(settings, AT + timedelta(minutes=10))
    assert "not running?" in stale[0].detail and "systemctl status" in stale[0].fix
    path.unlink()
    assert "has not run here" in collector_checks(settings, AT)[0].detail


def test_doctor_counts_spooled_points_without_creating_a_spool(tmp_path: Path) -> None:
    from optui.ops.doctor import spool_checks
    from optui.storage.influx_store import InfluxStore

    settings = Settings()
    settings.store.url = "influxdb://127.0.0.1:9"
    settings.store.spool_dir = str(tmp_path / "spool")
    assert [c.ok for c in spool_checks(settings)] == [True]
    assert not (tmp_path / "spool").exists()
    store = InfluxStore.from_url(settings.store.url, settings)
    assert store.spool is not None
    store.spool.append(b"m f=1 1\nm f=2 2\n", 2)
    rows = spool_checks(settings)
    assert rows[0].ok is None and rows[0].detail.startswith("2 point(s) waiting in ")


def test_one_event_shape_for_the_feed_the_health_file_and_doctor() -> None:
    from optui.feed.codec import health_from_payload, health_payload

    event = HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, "quote: cannot reach Kite", "retrying",
                        at=AT, source="kite")
    wire = health_payload([event, replace(event, status=Status.RESOLVED, at=None)])
    assert wire[0] == event.as_dict() == {"kind": "source_down", "severity": "error",
                                          "message": "quote: cannot reach Kite", "action": "retrying",
                                          "status": "open", "at": "2026-11-25T04:00:00+00:00", "source": "kite"}
    back = health_from_payload(wire)
    assert back[0] == event and back[1].status is Status.RESOLVED and back[1].at is None
    assert back[1].text() == "quote: cannot reach Kite → retrying (resolved)" and back[0].level == "error"
    # A newer collector's kind or severity still decodes: the event is shown, never dropped.
    newer = health_from_payload([{"kind": "disk_full", "severity": "fatal", "message": "m"}])[0]
    assert newer.kind is EventKind.OTHER and newer.severity is Severity.WARNING and newer.message == "m"
    with pytest.raises(TypeError):
        health_from_payload({"kind": "x"})


def test_events_since_a_cursor_are_each_handed_on_once() -> None:
    health = HealthLog(keep=3)
    assert health.since(0) == ([], 0)
    health.raise_(HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, "down", at=AT))
    health.raise_(HealthEvent(EventKind.SOURCE_DOWN, Severity.ERROR, "down", at=AT))  # a repeat
    first, cursor = health.since(0)
    assert [e.message for e in first] == ["down"] and health.since(cursor) == ([], cursor)
    for n in range(5):  # more than the log keeps: only what is still there
        health.raise_(HealthEvent(EventKind.CHECK, Severity.INFO, f"n{n}"))
    later, _ = health.since(cursor)
    assert [e.message for e in later] == ["n2", "n3", "n4"]


def test_a_capture_event_becomes_a_health_event_and_a_success_resolves_the_failure() -> None:
    from datetime import date

    from optui.collectors.health import capture_event
    from optui.collectors.premarket import CaptureFailed, CaptureStored

    failed = CaptureFailed(date(2026, 11, 24), date(2026, 11, 25), AT, 3, ("oi",), ("oi: 404",), None, True)
    event = capture_event(failed, AT)
    assert event.kind is EventKind.PARTICIPANTS_CAPTURE_FAILED and event.severity is Severity.ERROR
    assert "optui participants import" in event.action
    assert capture_event(failed, AT, offline=True).severity is Severity.WARNING  # a simulated market
    health = HealthLog()
    health.raise_(event)
    stored = CaptureStored(date(2026, 11, 24), date(2026, 11, 25), AT, ("oi",), True)
    health.raise_(capture_event(stored, AT))
    assert health.open_faults() == []


def test_a_collecting_dashboards_feed_flags_slow_cycles_in_its_health(tmp_path: Path) -> None:
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.sim_source import SimulatedSource
    from optui.feed.local import LocalFeed

    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.export.write_json = settings.export.write_csv = False
    start = datetime(2026, 11, 25, 4, 0, tzinfo=UTC)
    engine = CollectionEngine(settings, SimulatedSource(seed=1, start=start), None, state_dir=tmp_path)
    feed = LocalFeed(engine, interval_s=5.0, slow_share=1e-9)  # any cycle is over this share
    cycle = feed.next_cycle()
    (slow,) = [e for e in cycle.health if e.kind is EventKind.SLOW_CYCLE]
    assert slow.severity is Severity.WARNING and "interval" in slow.message and slow.action
    assert feed.next_cycle().health == []  # still slow: not repeated
    feed.slow_share = 1e9
    feed.next_cycle()
    assert not feed.health.is_open(EventKind.SLOW_CYCLE)


def test_doctor_age_is_on_one_clock_and_never_negative(tmp_path: Path) -> None:
    from optui.ops.doctor import format_age

    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    settings.source.interval_s = 30.0
    path = tmp_path / "state" / "sim" / HEALTH_FILE
    ahead = now_utc() + timedelta(seconds=13128)  # a simulator clock hours ahead of this machine's
    write_health_file(path, health_document(HealthLog(), ahead, "sim", 1, 0, None))
    detail = collector_checks(settings, None)[0].detail  # no Kite answer: the machine's clock alone
    assert "-" not in detail.split("(")[1] and "s ago)" in detail and "h " not in detail.split("(")[1]
    assert "(3m 20s ago)" in collector_checks(settings, ahead + timedelta(seconds=200))[0].detail
    assert format_age(-13128) == "0s ago" and format_age(200) == "3m 20s ago" and format_age(3900) == "1h 05m ago"


@pytest.mark.integration
def test_times_before_kites_first_answer_say_local_clock(tmp_path: Path) -> None:
    """A Kite source reads this machine's clock until Kite's first answer carries its `Date`:
    health events and the health file stamped before then (Kite unreachable at the start) say
    "(local clock)" in doctor; once the simulated Kite answers, its 11:00 IST shows unmarked."""
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.kite_source import KiteSource
    from optui.collectors.source import reads_local_clock
    from optui.collectors.supervisor import CycleSupervisor
    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.server import serve
    from optui.storage.sqlite_store import SQLiteStore
    from optui.timeutil import IST

    settings = Settings()
    settings.general.data_dir = str(tmp_path)
    settings.source.kind, settings.source.indices = "kite", ["NIFTY"]
    settings.source.chain_strikes, settings.source.offsets = 1, [0]
    settings.export.write_json = settings.export.write_csv = False
    path = tmp_path / "state" / "kite" / HEALTH_FILE
    server = serve(SimulatedExchange(seed=5, start=datetime(2026, 11, 25, 11, 0, tzinfo=IST)), "127.0.0.1", 0)
    store = SQLiteStore(tmp_path / "x.db")
    try:
        for root in ("http://127.0.0.1:9", server.url):  # nothing listens on port 9
            source = KiteSource("sim_key", "sim_token", root=root, cache_dir=tmp_path / "instruments",
                                timeout=2.0)
            assert reads_local_clock(source)
            supervisor = CycleSupervisor(CollectionEngine(settings, source, store), 30.0)
            supervisor.health_file = path
            outcome = supervisor.attempt()
            rows = collector_checks(settings, None)
            if root != server.url:  # no answer at all: only the machine's clock
                assert not outcome.stored and reads_local_clock(source)
                fault = supervisor.health.open_faults()[0]
                assert fault.local_clock and fault.when().endswith(" IST (local clock)")
                assert read_health_file(path)["local_clock"] is True  # type: ignore[index]
                assert " IST (local clock) (" in rows[0].detail and "IST (local clock))" in rows[1].detail
            else:
                assert outcome.stored and not reads_local_clock(source)
                assert "last attempt 2026-11-25 11:00:" in rows[0].detail
                assert "local clock" not in rows[0].detail
    finally:
        store.close()
        server.close()
