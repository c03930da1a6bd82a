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
