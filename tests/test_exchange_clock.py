"""The exchange's clock decides: stored moments, rewrites, expiry and sessions follow it.

Two collector runs over the same simulated minutes leave every store exactly as one run does;
the official Kite client against `optui simulate` gives the in-process simulator's snapshot; the
collector writes nothing outside the session and waits for the next pre-open.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from replay_support import FakeClock

from optui.analytics.implied_vol import solve_black76
from optui.analytics.premium_flow import FLOW_BARS, flow_window
from optui.collectors.engine import CollectionEngine, build_engine
from optui.collectors.headless import Collector
from optui.collectors.kite_source import KiteSource
from optui.collectors.session import in_collection_hours, next_pre_open
from optui.collectors.sim_source import SimulatedSource, resume_start
from optui.collectors.source import ExchangeClock
from optui.config import Settings
from optui.indices import INDEX_KEYS
from optui.models import FlowSummary, Snapshot, WarningKind
from optui.simulator.chain import fair_prices, years_left
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.market import RATE, session_point
from optui.simulator.server import serve
from optui.storage.base import Store
from optui.storage.records import FLOW, LEGS, OVERVIEW, FlowBarAccumulator
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST, UTC

START = datetime(2026, 11, 25, 9, 15, tzinfo=IST)  # a Wednesday open
RECIPE = datetime(2026, 11, 23, 10, 0, tzinfo=IST)  # the README's `optui simulate --start`




def _settings(interval_s: float = 5.0) -> Settings:
    s = Settings()
    s.source.indices = ["NIFTY"]
    s.source.interval_s = interval_s
    return s


def collect_run(store: Store | None, state_dir: Path, cycles: int, start: datetime = START,
                interval_s: float = 5.0, out_dir: Path | None = None,
                premarket: Any = None) -> tuple[list[Snapshot], list[str]]:
    """`optui collect` over the in-process simulator on a hand-moved clock, for `cycles` cycles."""
    clock = FakeClock()
    source = SimulatedSource(seed=7, start=start, clock=clock)
    engine = CollectionEngine(_settings(interval_s), source, store, out_dir=out_dir, state_dir=state_dir)
    engine.premarket = premarket
    snaps: list[Snapshot] = []
    lines: list[str] = []
    collect = engine.collect_once

    def counted() -> Snapshot:
        snaps.append(collect())
        if len(snaps) >= cycles:
            collector.stop_event.set()
        return snaps[-1]

    engine.collect_once = counted  # type: ignore[method-assign]
    collector = Collector(engine, interval_s, printer=lambda line, style="": lines.append(line),
                          sleep=clock.advance)
    assert collector.run() == 0
    source.close()
    return snaps, lines


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of the three measurements, in a comparable order."""
    lo, hi = START - timedelta(days=3), START + timedelta(days=3)
    return {
        m: sorted((r.time, sorted(r.tags.items()), sorted(r.fields.items())) for r in store.query(m, lo, hi))
        for m in (LEGS, OVERVIEW, FLOW)
    }


_db = itertools.count()


@pytest.fixture(params=["sqlite", "influxdb1"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    opened: list[Store] = []

    def make() -> Store:
        if request.param == "sqlite":
            store: Store = SQLiteStore(tmp_path / f"store{next(_db)}.db")
        else:
            from optui.storage.influx_store import InfluxStore

            influx = InfluxStore(request.getfixturevalue("influx_server"),
                                 database=f"optui_rerun_{next(_db)}", spool_dir=tmp_path / f"spool{next(_db)}")
            influx.init_database()
            store = influx
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.mark.integration
def test_two_identical_runs_store_what_one_run_stores(make_store: Callable[[], Store], tmp_path: Path) -> None:
    once, twice = make_store(), make_store()
    cycles, every = 7, 10  # 09:15:00 to 09:16:00 every 10 s: two minute bars
    first, lines = collect_run(once, tmp_path / "state_once", cycles, interval_s=every)
    collect_run(twice, tmp_path / "state_twice", cycles, interval_s=every)
    collect_run(twice, tmp_path / "state_twice", cycles, interval_s=every)
    # Cycles land on the exchange clock's 10 s marks, stamped with the quotes' time.
    assert [s.timestamp for s in first] == [START + timedelta(seconds=every * i) for i in range(cycles)]
    assert lines[0].startswith("09:15:00 IST")
    one, two = dump(once), dump(twice)
    assert len(one[LEGS]) == cycles * 40 and len(one[OVERVIEW]) == cycles and len(one[FLOW]) == 2
    for measurement in (LEGS, OVERVIEW, FLOW):
        assert two[measurement] == one[measurement], measurement
    bar = dict(one[FLOW][0][2])
    assert one[FLOW][0][0] == START.astimezone(UTC)
    # The 09:15 bar is the sum of that minute's cycles, once.
    minute = [s.indices["NIFTY"].overview.flow for s in first[:6]]
    assert bar["inflow_cr"] > 0
    assert bar["inflow_cr"] == pytest.approx(math.fsum(f.inflow_cr for f in minute if f.measured))


@pytest.mark.integration
def test_two_runs_leave_the_legacy_files_of_one(tmp_path: Path) -> None:
    def files(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}

    collect_run(None, tmp_path / "s1", 4, out_dir=tmp_path / "once")
    collect_run(None, tmp_path / "s2", 4, out_dir=tmp_path / "twice")
    collect_run(None, tmp_path / "s2", 3, out_dir=tmp_path / "twice")  # a shorter rerun
    once, twice = files(tmp_path / "once"), files(tmp_path / "twice")
    assert twice == once
    (csv_name,) = [n for n in once if n.endswith(".csv")]
    assert len(once[csv_name].splitlines()) == 1 + 4 * 40  # header, then each leg and moment once


@pytest.mark.integration
def test_restart_mid_minute_keeps_and_replaces_cycles(tmp_path: Path) -> None:
    whole = SQLiteStore(tmp_path / "whole.db")
    split = SQLiteStore(tmp_path / "split.db")
    try:
        collect_run(whole, tmp_path / "s1", 6, interval_s=10)
        collect_run(split, tmp_path / "s2", 3, interval_s=10)  # stopped at 09:15:20 ...
        collect_run(split, tmp_path / "s2", 6, interval_s=10)  # ... and run again over the minute
        assert dump(split)[FLOW] == dump(whole)[FLOW]
    finally:
        whole.close()
        split.close()


@pytest.mark.integration
def test_rerun_on_another_grid_leaves_one_runs_flow(tmp_path: Path) -> None:
    mixed = SQLiteStore(tmp_path / "mixed.db")
    alone = SQLiteStore(tmp_path / "alone.db")
    try:
        collect_run(mixed, tmp_path / "s1", 12, interval_s=5)  # 09:15:00 to 09:15:55
        collect_run(mixed, tmp_path / "s1", 7, interval_s=10)  # the same minute every 10 s
        collect_run(alone, tmp_path / "s2", 7, interval_s=10)
        # Every 5 s cycle overlapped by a 10 s one is replaced: no rupee counted twice.
        assert dump(mixed)[FLOW] == dump(alone)[FLOW]
    finally:
        mixed.close()
        alone.close()


@pytest.mark.unit
def test_flow_bar_is_the_sum_of_its_cycles_and_a_rewrite_replaces() -> None:
    acc = FlowBarAccumulator()
    at = START.astimezone(UTC)
    acc.add("NIFTY", at + timedelta(seconds=5), FlowSummary(inflow_cr=1.0, outflow_cr=2.0, since=at))
    bar = acc.add("NIFTY", at + timedelta(seconds=10),
                  FlowSummary(inflow_cr=3.0, since=at + timedelta(seconds=5)))
    assert bar.fields["inflow_cr"] == 4.0 and bar.fields["outflow_cr"] == 2.0
    again = acc.add("NIFTY", at + timedelta(seconds=10),
                    FlowSummary(inflow_cr=3.0, since=at + timedelta(seconds=5)))
    assert again.fields == bar.fields  # the same moment twice: replaced, not added
    unknown = acc.add("NIFTY", at + timedelta(seconds=5), FlowSummary(measured=False))
    assert unknown.fields == bar.fields  # an unmeasured rewrite keeps what was measured
    # One cycle over the same ten seconds replaces both shorter ones.
    wide = acc.add("NIFTY", at + timedelta(seconds=10), FlowSummary(inflow_cr=5.0, since=at))
    assert wide.fields["inflow_cr"] == 5.0 and wide.fields["outflow_cr"] == 0.0


@pytest.mark.integration
def test_simulator_resumes_after_stored_history(tmp_path: Path) -> None:
    s = _settings()
    s.general.data_dir = str(tmp_path / "data")
    s.store.url = f"sqlite:///{tmp_path / 'sim.db'}"
    s.simulator.start = "2035-09-05 15:29"  # a Wednesday after any machine date here
    eng = build_engine(s)
    try:
        last = eng.collect_once()
    finally:
        eng.close()
    s.simulator.start = ""  # the next launch: no start given
    eng = build_engine(s)
    try:
        resumed = eng.collect_once()
    finally:
        eng.close()
    assert resumed.timestamp > last.timestamp
    # The stored day ends at 15:29:xx: the clock goes on from there, not back to 09:15.
    assert resumed.timestamp.astimezone(IST).date() == date(2035, 9, 5)


@pytest.mark.unit
def test_resume_start_never_runs_back_and_starts_new_days() -> None:
    now = datetime(2026, 11, 25, 8, 0, tzinfo=IST)
    open_wed = datetime(2026, 11, 25, 9, 15, tzinfo=IST)
    assert resume_start(None, now) == open_wed
    assert resume_start(datetime(2026, 11, 25, 10, 0, 7, tzinfo=IST), now) == datetime(
        2026, 11, 25, 10, 0, 8, tzinfo=IST)
    # History up to the close continues with the next session (Thursday), not the same 09:15.
    assert resume_start(datetime(2026, 11, 25, 15, 30, tzinfo=IST), now) == datetime(
        2026, 11, 26, 9, 15, tzinfo=IST)
    # Monday's close, Tuesday 24 Nov a holiday: Wednesday.
    assert resume_start(datetime(2026, 11, 23, 15, 30, tzinfo=IST), datetime(2026, 11, 20, 8, 0, tzinfo=IST)) == open_wed
    # Older history than the demo start: the demo start wins (the clock still only moves on).
    assert resume_start(datetime(2026, 11, 2, 10, 0, tzinfo=IST), now) == open_wed


def _same(a: Any, b: Any, path: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), path
    else:
        assert a == b, (path, a, b)


@pytest.mark.integration
def test_readme_recipe_kite_client_gives_the_in_process_snapshot(tmp_path: Path) -> None:
    exchange = SimulatedExchange(seed=7, start=RECIPE, clock=lambda: 0.0)
    server = serve(exchange, "127.0.0.1", 0)
    try:
        kite = KiteSource("sim_key", "sim_token", root=server.url, cache_dir=tmp_path / "instruments")
        every = _settings()
        every.source.indices = list(INDEX_KEYS)
        over_http = CollectionEngine(every, kite, None, state_dir=tmp_path / "kite").collect_once()
        assert kite.now().astimezone(IST).date() == RECIPE.date()  # the server's Date header
    finally:
        server.close()
    local_source = SimulatedSource(seed=7, start=RECIPE, clock=lambda: 0.0)
    local = CollectionEngine(every, local_source, None, state_dir=tmp_path / "sim").collect_once()

    assert over_http.timestamp == RECIPE
    nifty = over_http.indices["NIFTY"]
    week = nifty.overview.buckets["this_week"]
    # Tuesday 24 Nov 2026 is a holiday: the weekly expiry moved to Monday 23 Nov, today.
    assert week.expiry == date(2026, 11, 23)
    assert week.days_to_expiry == pytest.approx(5.5 / 24, abs=1e-6)  # 10:00 to 15:30 IST
    assert {leg.expiry for leg in nifty.legs if leg.bucket == "this_week"} == {date(2026, 11, 23)}
    assert all(leg.timestamp == RECIPE for leg in nifty.legs)
    # ATM IV agrees with the simulator's own model at that moment.
    day, second = session_point(RECIPE)
    market = exchange.market
    spot = market.spot("NIFTY", day, second)
    t = float(years_left(week.expiry, float(second), day))
    k = np.array([week.atm_strike])
    price = fair_prices(market, "NIFTY", day, k, np.array([True]), np.array([False]), spot, np.array([t]),
                        float(second))
    model_iv, _ = solve_black76(price, market.forward(spot, t), k, t, RATE, np.array([True]))
    assert week.atm_iv == pytest.approx(float(model_iv[0]) * 100.0, abs=0.5)

    # Field by field, the official client over HTTP and the in-process source agree.
    assert over_http.label == local.label == "SIMULATED"
    assert list(over_http.indices) == list(local.indices) == list(INDEX_KEYS)
    for key, idx in over_http.indices.items():
        _same(asdict(idx.overview), asdict(local.indices[key].overview), key)
        _same([asdict(leg) for leg in idx.legs], [asdict(leg) for leg in local.indices[key].legs], key)
    # Kite-only warnings: the local clock offset and the 1 quote call/s pace of a whole-chain cycle.
    kite_only = (WarningKind.CLOCK_OFFSET, WarningKind.QUOTE_PACE)
    assert [w for w in over_http.warnings if w.kind not in kite_only] == local.warnings


@pytest.mark.integration
def test_readme_recipe_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from optui.cli import app

    exchange = SimulatedExchange(seed=7, start=RECIPE, clock=lambda: 0.0)
    server = serve(exchange, "127.0.0.1", 0)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPTUI_KITE_ROOT", server.url)
    monkeypatch.setenv("OPTUI_KITE_API_KEY", "sim_key")
    monkeypatch.setenv("OPTUI_KITE_ACCESS_TOKEN", "sim_token")
    try:
        result = CliRunner().invoke(app, ["collect", "--source", "kite", "--once", "--indices", "NIFTY",
                                          "--store", f"sqlite:///{tmp_path / 'x.db'}"])
    finally:
        server.close()
    assert result.exit_code == 0, result.output
    assert "10:00:00 IST source=simulated indices=NIFTY legs=40" in result.output
    # The machine's clock is days away from this exchange's: measured and shown, never used.
    assert "clock_offset=" in result.output and "local clock" in result.output
    store = SQLiteStore(tmp_path / "x.db")
    try:
        row = store.latest(OVERVIEW, {"index": "NIFTY"})
    finally:
        store.close()
    assert row is not None and row.time == RECIPE
    assert row.fields["this_week_days_to_expiry"] == pytest.approx(0.229, abs=5e-4)


@pytest.mark.unit
@pytest.mark.parametrize(("at", "open_", "next_open"), [
    ("2026-11-25 08:59:59", False, "2026-11-25 09:00"),
    ("2026-11-25 09:00:00", True, "2026-11-26 09:00"),
    ("2026-11-25 15:30:00", True, "2026-11-26 09:00"),
    ("2026-11-25 15:30:01", False, "2026-11-26 09:00"),
    ("2026-11-27 16:00:00", False, "2026-11-30 09:00"),  # Friday evening: Monday
    ("2026-11-28 10:00:00", False, "2026-11-30 09:00"),  # Saturday
    ("2026-11-23 20:00:00", False, "2026-11-25 09:00"),  # Tuesday 24 Nov is a holiday
    ("2026-11-24 10:00:00", False, "2026-11-25 09:00"),
])
def test_session_hours_by_the_exchange_calendar(at: str, open_: bool, next_open: str) -> None:
    source = SimulatedSource(start=START)
    when = datetime.fromisoformat(at).replace(tzinfo=IST)
    assert in_collection_hours(when, source.is_trading_day) is open_
    assert next_pre_open(when, source.is_trading_day) == datetime.fromisoformat(next_open).replace(tzinfo=IST)


@pytest.mark.integration
@pytest.mark.parametrize(("closed_at", "why"), [
    (datetime(2026, 11, 27, 15, 45, tzinfo=IST), "outside 09:00-15:30 IST"),  # after the close
    (datetime(2026, 11, 28, 11, 0, tzinfo=IST), "weekend"),
    (datetime(2026, 11, 24, 20, 0, tzinfo=IST), "exchange holiday"),  # NSE holiday, evening
])
def test_once_outside_the_session_writes_nothing(closed_at: datetime, why: str, tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    try:
        source = SimulatedSource(seed=7, start=closed_at, clock=lambda: 0.0)
        engine = CollectionEngine(_settings(), source, store, state_dir=tmp_path / "state")
        lines: list[str] = []
        code = Collector(engine, 5.0, printer=lambda line, style="": lines.append(line)).run(once=True)
        assert code == 0
        assert store.measurements() == []
    finally:
        store.close()
    opens = next_pre_open(closed_at, source.is_trading_day)
    assert len(lines) == 1 and lines[0].startswith("market closed")
    assert f"({why})" in lines[0]
    assert f"next pre-open {opens:%a %d %b %Y} 09:00 IST" in lines[0]


@pytest.mark.integration
def test_collector_waits_for_the_next_pre_open(tmp_path: Path) -> None:
    friday_evening = datetime(2026, 11, 27, 16, 0, tzinfo=IST)
    snaps, lines = collect_run(None, tmp_path / "state", 2, start=friday_evening)
    assert lines[0].startswith("market closed at Fri 27 Nov 2026 16:00:00 IST")
    assert "next pre-open Mon 30 Nov 2026 09:00 IST; waiting" in lines[0]
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=IST)
    assert [s.timestamp for s in snaps] == [monday, monday + timedelta(seconds=5)]


@pytest.mark.integration
def test_closed_market_wait_wakes_for_the_premarket_capture(tmp_path: Path) -> None:
    class Capture:
        capture_at = time(8, 0)

        def __init__(self) -> None:
            self.ticks: list[datetime] = []

        def tick(self, at: datetime) -> None:
            self.ticks.append(at)

    capture = Capture()
    snaps, _ = collect_run(None, tmp_path / "state", 1, start=datetime(2026, 11, 27, 16, 0, tzinfo=IST),
                           premarket=capture)
    monday = datetime(2026, 11, 30, tzinfo=IST)
    assert capture.ticks[0] == monday.replace(hour=8)  # woken at 08:00 IST, before the pre-open
    assert snaps[0].timestamp == monday.replace(hour=9)


@pytest.mark.unit
def test_exchange_clock_follows_observations_not_the_wall() -> None:
    wall = [1_800_000_000.0]
    mono = [50.0]
    clock = ExchangeClock(wall=lambda: wall[0], monotonic=lambda: mono[0])
    assert clock.offset_s is None
    assert clock.now() == datetime.fromtimestamp(wall[0], UTC)
    exchange_at = datetime.fromtimestamp(wall[0] - 120, UTC)  # the machine runs 2 min ahead
    clock.observe(exchange_at)
    assert clock.offset_s == pytest.approx(120.0)  # the start of the header's second: never ahead
    mono[0] += 10
    wall[0] += 3600  # the wall clock jumps: the exchange clock does not
    assert clock.now().timestamp() == pytest.approx((exchange_at + timedelta(seconds=10)).timestamp(), abs=1e-3)


@pytest.mark.unit
def test_flow_window_ends_at_the_moment_shown() -> None:
    # After a restart the store may hold later bars; the panel at 09:15:04 must not show 09:20.
    anchor = datetime(2026, 11, 25, 9, 15, 4, tzinfo=IST)
    start, end = flow_window(anchor, "5m", 30)
    assert start < datetime(2026, 11, 25, 9, 15, tzinfo=IST) <= anchor < end
    assert end <= anchor + timedelta(seconds=1)


@pytest.mark.integration
def test_flow_panel_after_restart_shows_the_current_bar(tmp_path: Path) -> None:
    from optui.storage.flow_queries import flow_series_from_rows
    from optui.widgets.flow_panel import flow_lines

    store = SQLiteStore(tmp_path / "x.db")
    try:
        collect_run(store, tmp_path / "state", 12, interval_s=30)  # 09:15:00 to 09:20:30 stored
        anchor = datetime(2026, 11, 25, 9, 15, 4, tzinfo=IST)
        start, end = flow_window(anchor, "5m", 30)
        rows = store.aggregate(FLOW, ["inflow_cr", "outflow_cr"], start, end, every="5m",
                               tags={"index": "NIFTY"})
    finally:
        store.close()
    series = flow_series_from_rows("NIFTY", "5m", rows)
    assert 0 < len(series.bars) <= FLOW_BARS
    assert "bar from 09:15 IST" in flow_lines(series).plain


@pytest.mark.unit
def test_data_clock_is_one_exchange_clock_for_every_source() -> None:
    from dataclasses import replace

    from sample_data import SAMPLE_TIME, sample_snapshot

    from optui.widgets.dashboard_model import DataClock

    local = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)  # the machine's clock, days away
    exchange_now = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
    for source in ("kite", "sim"):
        clock = DataClock()
        # Before the first snapshot the header and the health log read the source's clock.
        assert clock.market_now(local, exchange_now) == exchange_now
        clock.received(replace(sample_snapshot(), source=source), local)
        later = local + timedelta(seconds=7)
        assert clock.market_now(later, exchange_now) == SAMPLE_TIME + timedelta(seconds=7)
        assert clock.age_s(later) == pytest.approx(7.0)  # never the machine's offset


@pytest.mark.unit
def test_configured_calendar_decides_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from optui.collectors.engine import make_source

    s = Settings()
    s.kite.api_key = "key"
    s.participants.special_sessions = ["2026-11-28"]  # a Saturday session
    s.participants.holidays = ["2026-11-27"]  # and a Friday closed by circular
    monkeypatch.setenv("OPTUI_KITE_ACCESS_TOKEN", "token")
    kite = make_source(s, "kite")
    try:
        assert in_collection_hours(datetime(2026, 11, 28, 10, 0, tzinfo=IST), kite.is_trading_day)
        assert not in_collection_hours(datetime(2026, 11, 27, 10, 0, tzinfo=IST), kite.is_trading_day)
        assert kite.is_holiday(datetime(2026, 11, 27, 10, 0, tzinfo=IST))
        assert next_pre_open(datetime(2026, 11, 26, 16, 0, tzinfo=IST), kite.is_trading_day) == datetime(
            2026, 11, 28, 9, 0, tzinfo=IST)
    finally:
        kite.close()
