"""The exchange clock from `Date` headers: bounded by send and receive times, never ahead of the
exchange, and the collector's cycles on the exchange's interval marks against `optui simulate`."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.kite_source import KiteSource
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.collectors.simulated_time import SimTime, stop_when
from optui.collectors.source import ExchangeClock
from optui.config import Settings
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter as ServerLimits
from optui.simulator.server import serve
from optui.timeutil import IST

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=IST)  # a Wednesday in session


def _read(clock: ExchangeClock, exchange_at: float, mono: float, trip: float,
          stamp_share: float) -> None:
    """One request sent at `mono` taking `trip` seconds, stamped `stamp_share` of the way in,
    by a server whose clock read `exchange_at` when the request left."""
    stamp = exchange_at + trip * stamp_share
    clock.observe(datetime.fromtimestamp(int(stamp), UTC), sent=mono, received=mono + trip)


@pytest.mark.unit
def test_bounds_never_read_ahead_and_probes_narrow_them_to_the_round_trip() -> None:
    rng = random.Random(5)
    for case in range(50):
        mono = [100.0 + case]
        true_offset = 1_800_000_000.0 + rng.random() * 5  # exchange minus monotonic
        clock = ExchangeClock(monotonic=lambda mono=mono: mono[0], drift_ppm=0.0)
        trip = 0.005 + 0.03 * rng.random()
        _read(clock, mono[0] + true_offset, mono[0], trip, rng.random())
        mono[0] += trip
        assert clock.error_s == pytest.approx(1.0 + trip, abs=1e-6)
        probes = 0
        while (due := clock.probe_at()) is not None:
            probes += 1
            assert probes <= 12 and due >= mono[0]
            mono[0] = due
            this = trip * (0.5 + rng.random())  # trips vary around the last one
            _read(clock, mono[0] + true_offset, mono[0], this, rng.random())
            mono[0] += this
            ahead = clock.now().timestamp() - (mono[0] + true_offset)
            assert ahead <= 1e-6, (case, ahead)
        ahead = clock.now().timestamp() - (mono[0] + true_offset)
        assert -clock.error_s - 1e-6 <= ahead <= 1e-6  # behind by at most the bound it states
        assert clock.error_s <= 0.02 + 3 * trip, (case, clock.error_s, trip)


@pytest.mark.unit
def test_old_readings_widen_with_drift_and_a_stepped_server_starts_afresh() -> None:
    mono = [0.0]
    clock = ExchangeClock(monotonic=lambda: mono[0], drift_ppm=50.0)
    # 1_800_000_000 still at 0.999, 1_800_000_001 at 1.0: the second changed in between.
    clock.observe(datetime.fromtimestamp(1_800_000_000, UTC), sent=0.999, received=0.999)
    clock.observe(datetime.fromtimestamp(1_800_000_001, UTC), sent=1.0, received=1.0)
    assert clock.error_s == pytest.approx(0.001, abs=1e-6)
    mono[0] = 1000.0  # a thousand seconds on: each side loosens by 50 ms
    assert clock.error_s == pytest.approx(0.1, abs=2e-3)
    assert clock.now().timestamp() == pytest.approx(1_800_001_000.0 - 0.05, abs=2e-3)
    # Another server 0.2 s behind: the bounds cover both, never ahead of the slower one.
    mono[0] = 1000.2
    clock.observe(datetime.fromtimestamp(1_800_000_999, UTC), sent=1000.2, received=1000.2)
    assert clock.now().timestamp() == pytest.approx(1_800_001_000.0, abs=1e-6)
    assert clock.error_s == pytest.approx(0.25, abs=2e-3)
    # The server's clock stepped back 3 s: its readings contradict the bounds, which restart.
    clock.observe(datetime.fromtimestamp(1_800_000_997, UTC), sent=1000.2, received=1000.2)
    assert clock.now().timestamp() == pytest.approx(1_800_000_997.0, abs=1e-6)
    assert clock.error_s == pytest.approx(1.0)


@pytest.mark.integration
@pytest.mark.parametrize("phase", [0.3, 0.8])
def test_polled_cycles_land_on_the_exchange_interval_marks(phase: float, tmp_path: Path) -> None:
    """Against `optui simulate` started `phase` of a second past noon, the official client
    collecting every 5 s stamps its cycles 12:00:00, 12:00:05, 12:00:10 (the exchange's marks),
    never a second early as a clock read at the middle of the `Date` second did (12:00:04,
    12:00:09 when the header came early in its second)."""
    t = SimTime(1000.0)
    exchange = SimulatedExchange(seed=7, start=NOON + timedelta(seconds=phase), clock=t)
    server = serve(exchange, "127.0.0.1", 0, limiter=ServerLimits(clock=t))
    kite = KiteSource("sim_key", "sim_token", root=server.url, cache_dir=tmp_path / "dumps",
                      limiter=RateLimiter(KITE_RATES, clock=t, sleep=t.sleep))
    kite.clock = ExchangeClock(monotonic=t, sleep=t.sleep)
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.source.interval_s = 5.0
    settings.participants.enabled = False
    settings.record.enabled = False
    engine = CollectionEngine(settings, kite, None, state_dir=tmp_path / "state")
    lines: list[str] = []
    collector = Collector(engine, 5.0, printer=lambda line, style="": lines.append(line),
                          sleep=t.sleep)
    behind: list[float] = []
    bounds: list[float] = []
    stamps: list[datetime] = []

    def done(outcome: object) -> bool:
        snap = getattr(outcome, "snapshot", None)
        assert snap is not None, lines
        stamps.append(snap.timestamp)
        behind.append((exchange.now() - kite.now()).total_seconds())
        bounds.append(kite.clock.error_s or 0.0)
        return len(stamps) == 3

    stop_when(collector, done)
    try:
        assert collector.run() == 0
    finally:
        engine.close()
        server.close()
    # The first cycle at the start, the next on the marks.
    assert stamps == [NOON + timedelta(seconds=5 * k) for k in range(3)], stamps
    # Never ahead of the exchange, behind by at most the bound it states: at first the header's
    # second, then narrowed by the probes sent in the waits.
    assert all(0.0 <= b <= e + 1e-6 for b, e in zip(behind, bounds, strict=True)), (behind, bounds)
    assert bounds[0] <= 1.05 and bounds[2] <= 0.05, bounds


def _kite_collector(tmp_path: Path, root: str, t: SimTime, wall: Callable[[], float],
                    token: str = "sim_token") -> tuple[Collector, list[str], CollectionEngine]:
    kite = KiteSource("sim_key", token, root=root, cache_dir=tmp_path / "dumps",
                      limiter=RateLimiter(KITE_RATES, clock=t, sleep=t.sleep))
    kite.clock = ExchangeClock(wall=wall, monotonic=t, sleep=t.sleep)
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.source.interval_s = 5.0
    settings.participants.enabled = False
    settings.record.enabled = False
    engine = CollectionEngine(settings, kite, None, state_dir=tmp_path / "state")
    lines: list[str] = []
    collector = Collector(engine, 5.0, printer=lambda line, style="": lines.append(line),
                          sleep=t.sleep)
    return collector, lines, engine


@pytest.mark.integration
def test_local_clock_offset_is_said_once_per_episode_and_when_it_ends(tmp_path: Path) -> None:
    """The machine's clock 10 s ahead for two cycles, then right: one warning line when the
    episode starts (not one per cycle), one plain line when it ends; the offset itself stays
    on the status lines while it lasts."""
    t = SimTime(1000.0)
    exchange = SimulatedExchange(seed=7, start=NOON, clock=t)
    server = serve(exchange, "127.0.0.1", 0, limiter=ServerLimits(clock=t))
    shift = [10.0]
    collector, lines, engine = _kite_collector(
        tmp_path, server.url, t, lambda: exchange.now().timestamp() + shift[0])
    cycles: list[int] = []

    def done(outcome: object) -> bool:
        cycles.append(1)
        if len(cycles) == 2:
            shift[0] = 0.0
        return len(cycles) == 4

    stop_when(collector, done)
    try:
        assert collector.run() == 0
    finally:
        engine.close()
        server.close()
    status = [line for line in lines if " source=simulated " in line]
    assert len(status) == 4, lines
    said = [line for line in lines if "local clock 10 s ahead" in line]
    assert said == ["  warning: local clock 10 s ahead of the exchange's: times shown and stored "
                    "follow the exchange"], lines
    assert [line for line in lines if "local clock back within" in line] == [
        "  local clock back within 5 s of the exchange's"], lines
    assert "clock_offset=+10s" in status[1] and "warnings=" not in status[1]
    assert "clock_offset" not in status[3] and "warnings=" not in status[2] + status[3]


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.integration
def test_times_before_the_first_answer_are_marked_local_clock(tmp_path: Path) -> None:
    """Kite unreachable from the start: the clock is only this machine's, so nothing is decided
    on it (no session judged, no cycle slot): each failed read of the exchange clock is a gap
    line marked local clock, as the paused line is and as health does, and a one-shot gives up
    after the quick reads (exit 1)."""
    t = SimTime(0.0)
    root = _closed_port()
    in_session = (NOON + timedelta(minutes=30)).timestamp()
    collector, lines, engine = _kite_collector(tmp_path, root, t, lambda: in_session)
    try:
        assert collector.run(once=True) == 1
    finally:
        engine.close()
    gaps = [line for line in lines if " gap: " in line]
    assert len(gaps) == 4 and all(g.startswith("12:30:00 IST (local clock) gap: exchange clock not "
                                               "read yet") for g in gaps), lines
    assert [g.rsplit(" ", 2)[-2] for g in gaps] == ["2", "4", "8", "15"]  # seconds to the next read
    assert lines[-1].startswith("error: exchange clock not read yet"), lines

    collector, lines, engine = _kite_collector(tmp_path, root, t, lambda: in_session, token="")
    printed = collector._print

    def stop_at_unread(line: str, style: str = "") -> None:
        printed(line, style)
        if "exchange clock not read" in line:
            collector.stop_event.set()

    collector._print = stop_at_unread  # type: ignore[method-assign]
    try:
        assert collector.run() == 0
    finally:
        engine.close()
    assert lines[0].startswith("12:30:00 IST (local clock) paused: no Kite access token"), lines
    assert lines[1].startswith("12:30:00 IST (local clock) gap: exchange clock not read yet"), lines

    # A Saturday on this machine: the session is not judged on its clock (it said "market
    # closed ... (local clock) (weekend)" and waited for the machine's next pre-open).
    saturday = datetime(2026, 11, 28, 11, 0, tzinfo=IST).timestamp()
    collector, lines, engine = _kite_collector(tmp_path, root, t, lambda: saturday)
    try:
        assert collector.run(once=True) == 1
    finally:
        engine.close()
    assert not any("market closed" in line for line in lines), lines
    assert lines[0].startswith("11:00:00 IST (local clock) gap: exchange clock not read yet"), lines
