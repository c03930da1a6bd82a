"""The headless collector's exit codes: cron and systemd must see a cycle that lost data."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from optui.collectors.engine import CycleStats
from optui.collectors.headless import Collector
from optui.collectors.source import MarketSource
from optui.errors import RateLimitedError, TokenExpiredError
from optui.models import IndexSnapshot, OverviewRecord, Snapshot, SnapshotWarning, WarningKind

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)


class StubSource(MarketSource):
    """A source whose exchange clock reads a fixed instant (a Wednesday 11:00 IST session)."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def instruments(self) -> list:
        return []

    def quote_batch(self, keys: object) -> dict:
        return {}

    def now(self) -> datetime:
        return self.at


class StubEngine:
    """Stands in for the engine: returns a prepared snapshot or raises a prepared error."""

    source_label = "SIMULATED"
    indices = ["NIFTY"]

    def __init__(self, result: Snapshot | Exception, source: MarketSource | None = None) -> None:
        self.result = result
        self.source = source or StubSource()
        self.cycles = 0
        self.last = CycleStats()

    def collect_once(self) -> Snapshot:
        self.cycles += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result



def snapshot(warnings: list[SnapshotWarning]) -> Snapshot:
    ov = OverviewRecord(NOW, "NIFTY", 26000, 26010, 26000, 26050, 25950, 25990, 20, 0.08, 10, 0.04, 100, 0.38)
    return Snapshot(NOW, "sim", {"NIFTY": IndexSnapshot("NIFTY", ov)}, warnings=warnings)


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (snapshot([]), 0),
        (snapshot([SnapshotWarning(WarningKind.MISSING_QUOTES, "NIFTY this_week", "2 strikes without a quote")]), 0),
        (snapshot([SnapshotWarning(WarningKind.STORE, "store", "database or disk is full")]), 1),
        (snapshot([SnapshotWarning(WarningKind.FILES, "files", "cannot write under /x")]), 1),
        (RateLimitedError("quote: Kite rate limit hit"), 1),
        (TokenExpiredError("quote: log in again"), 2),
    ],
)
def test_once_exit_codes(result: Snapshot | Exception, code: int) -> None:
    out = io.StringIO()
    assert Collector(StubEngine(result), 30, out=out).run(once=True) == code  # type: ignore[arg-type]
    assert "Traceback" not in out.getvalue()


@pytest.mark.integration
def test_a_long_run_with_the_database_down_says_stored_and_spooled_and_what_waits_where(tmp_path) -> None:  # noqa: ANN001
    """Not --once: each status line says stored=0 and how many rows were spooled; on exit the
    points still spooled are counted with their directory, and the summary JSON agrees."""
    import json

    from optui.collectors.engine import CollectionEngine
    from optui.collectors.headless import exit_report
    from optui.collectors.sim_source import SimulatedSource
    from optui.config import Settings
    from optui.storage.influx_store import InfluxStore

    class Tick:
        t = 0.0

        def __call__(self) -> float:
            return self.t

        def sleep(self, seconds: float) -> None:
            self.t += max(seconds, 0.0)

    clock = Tick()
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.export.write_json = settings.export.write_csv = False
    store = InfluxStore("http://127.0.0.1:9", spool_dir=tmp_path / "spool", timeout_s=0.5)  # nothing listens
    source = SimulatedSource(seed=3, start=NOW, clock=clock)
    engine = CollectionEngine(settings, source, store, state_dir=tmp_path / "state")
    out = io.StringIO()
    collector = Collector(engine, 5.0, out=out, sleep=clock.sleep)
    inner = collector.supervisor.attempt

    def attempt(pause_on_token: bool = True):  # noqa: ANN202 - Outcome
        outcome = inner(pause_on_token)
        if collector.supervisor.cycles == 3:
            collector.stop_event.set()
        return outcome

    collector.supervisor.attempt = attempt  # type: ignore[method-assign]
    assert collector.run() == 0
    collector.feed.close()
    summary = tmp_path / "summary.json"
    pending = exit_report(collector, summary)
    lines = out.getvalue().splitlines()
    status = [ln for ln in lines if " source=simulated " in ln]
    assert len(status) == 3
    spooled = [int(ln.split(" spooled=")[1].split()[0]) for ln in status]
    assert all(" stored=0 " in ln for ln in status) and all(n > 0 for n in spooled)
    # Every point the store accepted waits in the spool: the cycles' rows and the health points.
    assert pending == collector.points == sum(spooled) + 3
    assert f"warning: {pending} point(s) still spooled in {tmp_path / 'spool'}" in lines[-1]
    assert json.loads(summary.read_text()) == {"cycles": 3, "points": pending, "pending": pending}


def test_a_healthy_feed_note_is_no_warning_and_printed_warnings_stay_off_stderr(tmp_path, capsys) -> None:  # noqa: ANN001
    """The switch to the all-ticker feed is printed as a plain note, not counted in warnings=;
    a status line's warning is printed once on stdout and goes to the log file, not to stderr,
    while a warning printed nowhere else still reaches stderr."""
    import logging

    from optui.config import Settings
    from optui.logs import setup_logging

    settings = Settings()
    settings.general.log_dir = str(tmp_path)
    settings.general.log_level = "INFO"
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    healthy = SnapshotWarning(WarningKind.STREAM, "", "feed: stream (all 1396 quotes from the ticker)")
    mixed = SnapshotWarning(WarningKind.STREAM, "", "feed: stream+rest (734 quotes from the ticker, 662 polled over REST)")
    missing = SnapshotWarning(WarningKind.MISSING_QUOTES, "NIFTY this_week", "2 strikes without a quote")
    try:
        path = setup_logging(settings, to_stderr=True)
        assert path is not None
        out = io.StringIO()
        assert Collector(StubEngine(snapshot([healthy, missing])), 30, out=out).run(once=True) == 0  # type: ignore[arg-type]
        assert Collector(StubEngine(snapshot([mixed])), 30, out=out).run(once=True) == 0  # type: ignore[arg-type]
        logging.getLogger("optui.storage.spool").warning("spool record quarantined")
        for handler in root.handlers:
            handler.flush()
        logged = path.read_text(encoding="utf-8")
    finally:
        for handler in list(root.handlers):
            if handler not in saved[1]:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(saved[0])
    lines = out.getvalue().splitlines()
    assert " warnings=1" in lines[0] and lines[0].startswith("11:00:00 IST ")
    assert lines[1:3] == ["  feed: stream (all 1396 quotes from the ticker)",
                          "  warning: NIFTY this_week: 2 strikes without a quote"]
    assert " warnings=1" in lines[3] and lines[4].startswith("  warning: feed: stream+rest (734 quotes")
    err = capsys.readouterr().err
    assert "2 strikes" not in err and "feed:" not in err
    assert "WARNING optui.storage.spool: spool record quarantined" in err
    assert "INFO optui.collectors.headless: cycle 11:00:00 IST: feed: stream (all 1396" in logged
    assert "WARNING optui.collectors.headless: cycle 11:00:00 IST: NIFTY this_week: 2 strikes" in logged
    assert "WARNING optui.collectors.headless: cycle 11:00:00 IST: feed: stream+rest" in logged


def test_warnings_beyond_those_printed_are_counted_and_named_where_they_are(tmp_path) -> None:  # noqa: ANN001
    """A ticker stall on three connections gives nine warnings in one window: the three
    "no ticks ..." gap reports come after the five printed, so the line under them says how
    many more there are and which file holds every one (they were dropped from the screen)."""
    from optui.config import Settings
    from optui.logs import log_file

    settings = Settings()
    settings.general.log_dir = str(tmp_path / "logs")
    stream = [SnapshotWarning(WarningKind.STREAM, "", text) for text in [
        *(f"ticker connection {n} stalled: no data or heartbeat for 10 s; reconnecting" for n in (1, 2, 3)),
        *(f"ticker connection {n} lost (stalled: nothing for 10 s): reconnecting in 0.6 s" for n in (1, 2, 3)),
        *(f"ticker connection {n}: no ticks 10:21:06-10:21:31 IST for 323 instruments" for n in (1, 2, 3)),
    ]]
    engine = StubEngine(snapshot(stream))
    engine.settings = settings  # type: ignore[attr-defined]
    out = io.StringIO()
    assert Collector(engine, 30, out=out).run(once=True) == 0  # type: ignore[arg-type]
    lines = out.getvalue().splitlines()
    assert " warnings=9" in lines[0]
    assert [line for line in lines if line.startswith("  warning: ")] == \
        [f"  warning: {w}" for w in stream[:5]]
    assert lines[6] == f"  ... and 4 more warning(s), every one in {log_file(settings)}"


def test_at_the_tick_cadence_a_gap_follows_the_summary_of_the_snapshots_before_it() -> None:
    """The source went down at 09:15:24 IST, mid-window: the summary of 09:15:21-24 was held
    until the stop and printed after the gap lines of 09:15:37-09:16:00, its time before
    theirs. It is printed before the first gap line now, and the next window starts afresh."""
    from datetime import timedelta

    from optui.collectors.supervisor import Outcome

    engine = StubEngine(snapshot([]))
    engine.snapshot_s = 1.0  # type: ignore[attr-defined]
    out = io.StringIO()
    collector = Collector(engine, 30, out=out)  # type: ignore[arg-type]
    base = datetime(2026, 12, 1, 3, 45, 20, tzinfo=UTC)  # 09:15:20 IST
    for s in range(5):  # 09:15:20 opens the window and is summarised; 21-24 wait in it
        snap = snapshot([])
        snap.timestamp = base + timedelta(seconds=s)
        collector._summarise(snap, False)
    engine.source = StubSource(base + timedelta(seconds=13))
    collector._print_gap(Outcome(gap="quote: cannot reach Kite (ConnectionError)"))
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("  ")]
    assert [line[:8] for line in lines] == ["09:15:20", "09:15:24", "09:15:33"], lines
    assert "snapshots=1 " in lines[0] and "snapshots=4 " in lines[1] and " gap: " in lines[2], lines
