"""A cycle handed to the screen before it is stored: the same snapshot, the same stored rows, leg
files and day state as a cycle stored first; stored before the next cycle, on close, and its
store's faults still reach the screen."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from optui.alerts.engine import AlertEngine
from optui.collectors.engine import CollectionEngine
from optui.collectors.sim_source import SimulatedSource
from optui.config import Settings
from optui.errors import StoreError, TokenExpiredError
from optui.feed.local import LocalFeed
from optui.models import WarningKind
from optui.screens.feed_loop import FeedLoop
from optui.storage.base import Store
from optui.storage.records import FLOW, LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST
from optui.ui_messages import SnapshotCollected

START = datetime(2026, 11, 25, 10, 0, tzinfo=IST)  # a Wednesday, mid-session
STEP_S = 5.0


class FakeClock:
    """A monotonic clock the test moves (the simulator's `clock`)."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _settings() -> Settings:
    s = Settings()
    s.source.indices = ["NIFTY", "SENSEX"]
    s.source.interval_s = STEP_S
    s.participants.enabled = False
    s.export.write_json = True
    s.export.write_csv = True
    return s


def _engine(root: Path, clock: FakeClock) -> CollectionEngine:
    settings = _settings()
    store = SQLiteStore(root / "optui.db")
    engine = CollectionEngine(settings, SimulatedSource(seed=7, start=START, clock=clock), store,
                              out_dir=root / "out", state_dir=root / "state")
    engine.alerts = AlertEngine.from_settings(settings, store)
    return engine


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of legs, overview and premium flow, in a comparable order."""
    lo, hi = START - timedelta(days=1), START + timedelta(days=1)
    return {m: sorted((r.time, sorted(r.tags.items()), sorted(r.fields.items()))
                      for r in store.query(m, lo, hi)) for m in (LEGS, OVERVIEW, FLOW)}


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".db"
            and not p.name.startswith("optui.db")}


def shown(snap: Any) -> str:
    """Everything a screen shows of a snapshot (repr: NaN reads as nan on both sides)."""
    return repr((snap.timestamp, snap.indices, snap.warnings, snap.alerts))


def test_shown_first_then_stored_equals_stored_first(tmp_path: Path) -> None:
    clock_a, clock_b = FakeClock(), FakeClock()
    first = _engine(tmp_path / "a", clock_a)  # collect_once: stored, then returned
    later = _engine(tmp_path / "b", clock_b)  # collect_shown, then store_pending
    try:
        for cycle in range(3):
            clock_a.t = clock_b.t = 1000.0 + STEP_S * cycle
            a = first.collect_once()
            b = later.collect_shown()
            assert later.store_is_pending
            # Nothing of the shown cycle is stored yet: no row at its moment.
            assert b.timestamp not in {row[0] for row in dump(later.store)[OVERVIEW]}
            later.store_pending()
            assert not later.store_is_pending
            assert shown(a) == shown(b)
            # From the second cycle on, flow compares with the previous cycle's quotes.
            assert all(idx.overview.flow.measured == (cycle > 0) for idx in b.indices.values())
            assert later.last.rows_written == first.last.rows_written > 0
        assert dump(first.store) == dump(later.store)
        assert len(dump(later.store)[LEGS]) > 0
    finally:
        first.close()
        later.close()
    one, two = files(tmp_path / "a"), files(tmp_path / "b")
    assert one == two
    assert any(name.endswith(".csv") for name in one) and any("state" in n for n in one)


def test_the_next_cycle_and_closing_store_a_pending_cycle(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = _engine(tmp_path, clock)
    one = engine.collect_shown()
    clock.t += STEP_S
    two = engine.collect_shown()  # stores the first before collecting
    stored = {row[0] for row in dump(engine.store)[OVERVIEW]}
    assert one.timestamp in stored and two.timestamp not in stored
    engine.close()  # stores the second: nothing shown is left unstored
    store = SQLiteStore(tmp_path / "optui.db")
    try:
        assert {one.timestamp, two.timestamp} <= {row[0] for row in dump(store)[OVERVIEW]}
    finally:
        store.close()


def _failing_writes(engine: CollectionEngine) -> None:
    def refuse(*_args: object, **_kwargs: object) -> int:
        raise StoreError("database is locked")

    engine.store.write = refuse  # type: ignore[method-assign]
    engine.store.write_columns = refuse  # type: ignore[method-assign]


def test_a_store_fault_after_the_cycle_was_shown_rides_on_the_next_cycle(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = _engine(tmp_path, clock)
    try:
        engine.collect_once()
        _failing_writes(engine)
        clock.t += STEP_S
        shown_first = engine.collect_shown()
        engine.store_pending()
        assert not [w for w in shown_first.warnings if w.kind == WarningKind.STORE]
        clock.t += STEP_S
        following = engine.collect_once()  # stored at once: its own fault too, before alerts'
        faults = [w for w in following.warnings if w.kind == WarningKind.STORE]
        assert len(faults) == 2 and all("database is locked" in w.message for w in faults)
    finally:
        engine.store.close()


def test_the_dashboard_loop_posts_the_cycle_before_storing_it(tmp_path: Path) -> None:
    clock = FakeClock()
    engine = _engine(tmp_path, clock)
    feed = LocalFeed(engine, interval_s=STEP_S)
    seen: list[tuple[Any, bool, set[datetime]]] = []

    def post(message: Any) -> None:
        stored = {row[0] for row in dump(engine.store)[OVERVIEW]}
        seen.append((message, engine.store_is_pending, stored))

    loop = FeedLoop(post, feed=feed, views=lambda cycle: {})
    try:
        loop._start()
        loop._cycle()
        message, pending, stored = seen[-1]
        assert isinstance(message, SnapshotCollected)
        assert pending and message.snapshot.timestamp not in stored
        assert not engine.store_is_pending  # stored once posted, before the loop goes on
        assert message.snapshot.timestamp in {row[0] for row in dump(engine.store)[OVERVIEW]}
    finally:
        feed.close()


def test_a_login_rejected_between_snapshots_stops_the_next_quote_call(tmp_path: Path) -> None:
    from optui.collectors.stream_source import StreamingSource

    clock = FakeClock()
    rest = SimulatedSource(seed=7, start=START, clock=clock)
    source = StreamingSource(rest, "key", "token", "http://127.0.0.1:9", snapshot_s=1.0)
    calls: list[float] = []

    def rejected() -> None:
        calls.append(clock.t)
        raise TokenExpiredError("the access token was rejected")

    rest.probe = rejected  # type: ignore[method-assign]
    source.token_check_s = 30.0
    source._check_login_between()
    source._check_login_between()  # not due again within token_check_s
    assert len(calls) == 1
    with pytest.raises(TokenExpiredError):
        source.quote_batch(["NSE:NIFTY 50"])
    assert source.quote_batch(["NSE:NIFTY 50"])  # raised once; REST answers the next call
