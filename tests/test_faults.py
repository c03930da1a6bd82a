"""Faults a trading day brings, injected into real parts: the simulated Kite API through the official
`kiteconnect` client, a real influxd stopped and hung, a real redis-server stopped.

Time is simulated: one counter drives the simulated exchange, the Kite source's clock and the
collector's sleep, so hundreds of 5-second cycles run in seconds and every schedule is exact.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.health import HEALTH_FILE, EventKind, Severity, Status, read_health_file
from optui.collectors.kite_source import TRANSIENT_ATTEMPTS, TRANSIENT_BACKOFF_S, KiteSource
from optui.collectors.rate_limit import RateLimiter
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.simulated_time import SimTime, stop_when
from optui.collectors.source import ExchangeClock
from optui.collectors.supervisor import HEALTH_MEASUREMENT, CycleSupervisor, Outcome
from optui.collectors.token_watch import SecretsWatch
from optui.config import Settings, secrets_path, write_private
from optui.errors import ConfigError
from optui.feed.attached import cycle_from_payload
from optui.feed.local import LocalFeed, cycle_payload
from optui.feed.model import FeedCycle
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.faults import FAULT_KINDS, FaultPlan
from optui.simulator.server import RateLimiter as ServerLimiter
from optui.simulator.server import SimulatorServer, serve
from optui.storage.influx_store import InfluxStore
from optui.storage.records import LEGS, OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST
from tests.servers import InfluxServer

OPTUI = str(Path(sys.executable).with_name("optui"))
START = datetime(2026, 11, 25, 9, 20, tzinfo=IST)  # a Wednesday session
EARLY = datetime(2020, 1, 1, tzinfo=IST)
LATE = datetime(2030, 1, 1, tzinfo=IST)
UNLIMITED = {"quote": 1e6, "quote/ltp": 1e6, "quote/ohlc": 1e6, "other": 1e6}


def _settings(interval_s: float = 5.0, small: bool = False, index: str = "NIFTY") -> Settings:
    s = Settings()
    s.source.indices = [index]
    s.source.interval_s = interval_s
    s.source.chain_strikes = 1 if small else 4
    if small:  # the fewest quotes a cycle can take: the ATM strike of each expiry
        s.source.offsets = [0]
    s.export.write_json = s.export.write_csv = False
    return s


def _kite(server: SimulatorServer, clock: SimTime, tmp_path: Path, timeout: float = 5.0) -> KiteSource:
    source = KiteSource("sim_key", "sim_token", root=server.url, cache_dir=tmp_path / "instruments",
                        limiter=RateLimiter({"quote": 1e6, "default": 1e6}), timeout=timeout)
    source.clock = ExchangeClock(monotonic=clock)
    return source


@pytest.fixture
def sim_time() -> SimTime:
    return SimTime()


def _server(clock: SimTime, plan: FaultPlan | None) -> SimulatorServer:
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    return serve(exchange, "127.0.0.1", 0, limiter=ServerLimiter(UNLIMITED), faults=plan)


def _run(collector: Collector, attempts: int) -> None:
    """Run the real loop until `attempts` attempts were made."""
    stop_when(collector, lambda _: collector.supervisor.cycles >= attempts)
    assert collector.run() == 0


def _count(store: SQLiteStore | InfluxStore, measurement: str, **tags: str) -> int:
    return len(store.query(measurement, EARLY, LATE, tags=tags or None))


# -- the plan itself --------------------------------------------------------------------------------


@pytest.mark.unit
def test_fault_plan_parses_rates_and_rejects_bad_specs() -> None:
    plan = FaultPlan.parse("429=0.05,5xx=0.05,timeout=0.02,token=0.01,malformed=0.02,slow=0.05,"
                           "truncated=0.02,slow_s=2,rotate=500")
    assert plan.rates["5xx"] == 0.05 and plan.slow_s == 2.0 and plan.rotate_after == 500
    drawn = [plan.pick() for _ in range(20_000)]
    share = sum(d is not None for d in drawn) / len(drawn)
    assert share == pytest.approx(0.22, abs=0.02)
    assert set(drawn) - {None} == set(FAULT_KINDS)
    for bad, words in [("fast=0.1", "unknown fault kind"), ("429=2", "between 0 and 1"),
                       ("429=0.6,5xx=0.6", "add up"), ("429", "KIND=RATE")]:
        with pytest.raises(ConfigError, match=words):
            FaultPlan.parse(bad)


# -- Kite faults at 20 % over four hundred cycles -------------------------------------------------


CYCLES = 400


@pytest.mark.chaos
@pytest.mark.integration
def test_kite_faults_at_20_percent_over_400_cycles(sim_time: SimTime, tmp_path: Path) -> None:
    """Every fault kind at its rate (1 % to 4 % of requests, 20 % together) over 400 cycles of
    about two requests each: the rarest kind, timeouts, is drawn about eight times."""
    plan = FaultPlan({"429": 0.03, "5xx": 0.03, "timeout": 0.01, "token": 0.03, "malformed": 0.04,
                      "slow": 0.03, "truncated": 0.03}, seed=11, slow_s=0.01, timeout_s=0.4)
    server = _server(sim_time, None)
    # In memory: what is under test is the collector's survival and its count of cycles; the file
    # store's durability under kills and outages is proven by the tests below.
    store = SQLiteStore(":memory:")
    lines: list[str] = []
    try:
        assert _kite(server, sim_time, tmp_path).instruments()  # today's dump cached, as at 09:15
        server.faults = plan
        # BANKNIFTY lists monthly expiries only: two buckets a cycle where NIFTY's weeklies make four.
        engine = CollectionEngine(_settings(small=True, index="BANKNIFTY"),
                                  _kite(server, sim_time, tmp_path, timeout=0.3),
                                  store, state_dir=tmp_path / "state")
        collector = Collector(engine, 5.0, printer=lambda line, style="": lines.append(line),
                              sleep=sim_time.sleep)
        collector.supervisor._watch = SecretsWatch(tmp_path / "secrets.toml")
        _run(collector, CYCLES)
        sup = collector.supervisor
        stored = _count(store, OVERVIEW, index="BANKNIFTY")
        health = store.query(HEALTH_MEASUREMENT, EARLY, LATE)
    finally:
        store.close()
        server.close()
    # Every fault kind happened, nothing crashed, and every cycle is stored or a recorded gap.
    assert set(plan.counts) == set(FAULT_KINDS), plan.counts
    assert sup.cycles == CYCLES and sup.gaps > CYCLES // 20
    assert stored + sup.gaps == CYCLES
    assert sum(int(r.fields["gap"]) for r in health) == sup.gaps
    assert sum(int(r.fields["stored"]) for r in health) == stored
    assert len(lines) >= CYCLES and not [ln for ln in lines if "Traceback" in ln]
    # A fixed period: the attempts span exactly CYCLES - 1 intervals of exchange time.
    assert sim_time.t == pytest.approx((CYCLES - 1) * 5.0, abs=5.0)
    kinds = {e.kind for e in sup.health.recent(200)}
    # Transient faults (429, 5xx, timeouts, malformed or truncated bodies) are retried within the
    # call; what remains a gap is mostly the rejected token, which pauses and resumes.
    assert {EventKind.TOKEN_REJECTED, EventKind.TOKEN_RESTORED} <= kinds
    assert stored > CYCLES * 0.85


# -- a token rotated mid-run: pause, raise, watch, resume ------------------------------------------


@pytest.mark.chaos
@pytest.mark.integration
def test_token_rotated_mid_run_resumes_within_one_interval(sim_time: SimTime, tmp_path: Path) -> None:
    plan = FaultPlan({}, rotate_after=25)
    server = _server(sim_time, plan)
    store = SQLiteStore(tmp_path / "x.db")
    write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
    try:
        engine = CollectionEngine(_settings(), _kite(server, sim_time, tmp_path), store,
                                  state_dir=tmp_path / "state")
        sup = CycleSupervisor(engine, 5.0)
        outcomes = []
        stored_at = -1
        for _ in range(30):
            outcomes.append(sup.attempt())
            sim_time.sleep(5.0)
            if len(outcomes) == stored_at + 1:
                open_after_resume = [e.kind for e in sup.health.open_faults()]
            if sup.paused and len([o for o in outcomes if not o.stored]) == 3:
                # A re-login stores the rotated token; the collector was never restarted.
                write_private(secrets_path(), 'kite_access_token = "sim_token_r1"\n')
                stored_at = len(outcomes)
    finally:
        store.close()
        server.close()
    first_gap = next(i for i, o in enumerate(outcomes) if not o.stored)
    assert first_gap > 0 and all(o.stored for o in outcomes[:first_gap])
    assert "token rejected" in outcomes[first_gap].gap and "log in again" in outcomes[first_gap].gap
    # The fix once, when the fault opens; afterwards a short reference to it.
    later = outcomes[first_gap + 1].gap
    assert "(see above)" in later and "optui login" not in later and len(later) < 100
    # Paused: gaps (no exit, no exception) carrying the cached tier's age, until the new token.
    assert [o.stored for o in outcomes[first_gap:stored_at]] == [False] * 3
    assert outcomes[first_gap + 1].cached is not None and outcomes[first_gap + 1].cached_age_s == pytest.approx(10.0, abs=1.0)
    # The very next attempt after the token was stored collects: within one interval.
    assert all(o.stored for o in outcomes[stored_at:stored_at + 5])
    assert plan.rotations >= 1
    events = [(e.kind, e.status) for e in sup.health.recent(50)]
    assert (EventKind.TOKEN_REJECTED, Status.OPEN) in events
    assert (EventKind.TOKEN_REJECTED, Status.RESOLVED) in events and (EventKind.TOKEN_RESTORED, Status.OPEN) in events
    assert open_after_resume == []
    rejected = next(e for e in sup.health.recent(50) if e.kind is EventKind.TOKEN_REJECTED)
    assert "resumes on its own" in rejected.action
    assert "sim_token" not in rejected.message


@pytest.mark.chaos
@pytest.mark.integration
def test_collector_started_without_a_token_waits_and_collects_on_the_interval_after_a_login(
        sim_time: SimTime, tmp_path: Path) -> None:
    """No token in the environment or the secrets file: no exit, the fault with its fix in
    health (as an attached consumer decodes it), and the first interval after a login collects."""
    server = _server(sim_time, None)
    store = SQLiteStore(tmp_path / "x.db")
    secrets_path().unlink(missing_ok=True)
    source = KiteSource("sim_key", "", root=server.url, cache_dir=tmp_path / "instruments",
                        limiter=RateLimiter({"quote": 1e6, "default": 1e6}), timeout=5.0)
    source.clock = ExchangeClock(monotonic=sim_time)
    engine = CollectionEngine(_settings(), source, store, state_dir=tmp_path / "state")
    feed = LocalFeed(engine, interval_s=5.0)
    published: list[FeedCycle] = []  # each publication, through JSON, as an attached feed reads it
    feed._publish = lambda cycle, at=None: published.append(  # type: ignore[method-assign]
        cycle_from_payload(json.loads(json.dumps(cycle_payload(cycle)))))
    out = io.StringIO()
    collector = Collector(engine, 5.0, out=out, sleep=sim_time.sleep, feed=feed)
    collector.supervisor.health_file = tmp_path / "state" / HEALTH_FILE
    outcomes: list[tuple[float, bool, str]] = []
    logged_in_at = -1.0

    def after(outcome: Outcome) -> bool:
        nonlocal logged_in_at
        outcomes.append((sim_time.t, outcome.stored, outcome.gap))
        if len(outcomes) == 3:  # a login stores a token; the collector is not restarted
            write_private(secrets_path(), 'kite_access_token = "sim_token"\n')
            logged_in_at = sim_time.t
        return len(outcomes) == 6

    stop_when(collector, after)
    try:
        code = collector.run()
        health = read_health_file(tmp_path / "state" / HEALTH_FILE)
    finally:
        store.close()
        server.close()
    assert code == 0
    lines = out.getvalue().splitlines()
    assert "paused: no Kite access token is stored" in lines[0] and "optui login" in lines[0]
    assert "waiting for a Kite login (see above)" in lines[1] and "optui login" not in lines[1]
    assert [stored for _, stored, _ in outcomes] == [False, False, False, True, True, True]
    assert "source paused: no Kite access token is stored" in outcomes[0][2]
    first_stored = outcomes[3][0]
    # Within one interval of the login: the slot after it, reached on the exchange clock (which
    # reads at most its stated error behind the exchange, never ahead).
    assert 0 < first_stored - logged_in_at <= 5.0 + (source.clock.error_s or 0.0)
    assert sum(" IST source=simulated" in line for line in lines) == 3
    # An attached consumer saw the fault, with its fix, while it held; then its resolution.
    gaps = [c for c in published if c.snapshot is None]
    assert gaps and all("no Kite access token is stored" in c.gap for c in gaps)
    fault = next(e for c in published for e in c.health if e.kind is EventKind.TOKEN_REJECTED)
    assert fault.severity is Severity.ERROR and fault.status is Status.OPEN
    assert "optui login" in fault.action and fault.at is not None and fault.at.tzinfo is not None
    assert published.index(next(c for c in published if fault in c.health)) == 0
    after = [e for c in published if c.snapshot is not None for e in c.health]
    assert (EventKind.TOKEN_RESTORED, Status.OPEN) in [(e.kind, e.status) for e in after]
    assert (EventKind.TOKEN_REJECTED, Status.RESOLVED) in [(e.kind, e.status) for e in after]
    assert health is not None and health["open"] == []
    assert [e["kind"] for e in health["recent"]][:1] == ["token_rejected"]


@pytest.mark.integration
def test_source_down_then_back_is_collected_on_the_next_interval(sim_time: SimTime, tmp_path: Path) -> None:
    """Down for many intervals (probed cheaply), back: the very next attempt is a full cycle."""
    server = _server(sim_time, None)
    store = SQLiteStore(tmp_path / "x.db")
    try:
        engine = CollectionEngine(_settings(), _kite(server, sim_time, tmp_path), store,
                                  state_dir=tmp_path / "state")
        sup = CycleSupervisor(engine, 5.0)
        assert sup.attempt().stored
        server.faults = FaultPlan({"5xx": 1.0})  # the exchange answers 5xx to everything
        down = []
        for _ in range(12):
            sim_time.sleep(5.0)
            down.append(sup.attempt())
        requests_while_down = sum(server.faults.counts.values())
        server.faults = None
        sim_time.sleep(5.0)
        back = sup.attempt()
    finally:
        store.close()
        server.close()
    assert not any(o.stored for o in down)
    assert back.stored and back.snapshot is not None
    # After two failures (each call tried TRANSIENT_ATTEMPTS times with 1.75 s of backoff) each
    # attempt is one cheap probe, tried once, not a full cycle of quote calls.
    assert requests_while_down == 2 * TRANSIENT_ATTEMPTS + 10
    assert down[-1].cached_age_s == pytest.approx(60.0 + 2 * sum(TRANSIENT_BACKOFF_S), abs=1.0) and "cached tier" in down[-1].gap_line(START)


# -- a store that hangs ---------------------------------------------------------------------------


@pytest.fixture
def influx(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influxd")
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()


@pytest.mark.chaos
@pytest.mark.integration
def test_influxdb_hung_then_stopped_then_back_loses_nothing(influx: InfluxServer, sim_time: SimTime,
                                                          tmp_path: Path) -> None:
    store = InfluxStore(influx.url, spool_dir=tmp_path / "spool", timeout_s=1.0, retry_after_s=0.5)
    source = SimulatedSource(seed=7, start=START, clock=sim_time)
    settings = _settings()
    engine = CollectionEngine(settings, source, store, state_dir=tmp_path / "state")
    sup = CycleSupervisor(engine, 5.0)
    sup.record_health = False
    assert store.write_budget_s == pytest.approx(2.5)
    store.write_budget_s = 0.2  # a short budget keeps the test quick; the policy is the same
    legs = []
    warnings = []

    def send(sig: signal.Signals) -> None:
        assert influx.proc is not None
        influx.proc.send_signal(sig)

    try:
        for cycle in range(40):
            if cycle == 10:
                send(signal.SIGSTOP)  # hung: connections open, no answers
            if cycle == 20:
                send(signal.SIGCONT)
            if cycle == 25:
                influx.stop()  # down: connections refused
            if cycle == 32:
                influx.start()
            outcome = sup.attempt()
            assert outcome.snapshot is not None
            legs.append(outcome.snapshot.leg_count)
            warnings += [w for w in outcome.snapshot.warnings if w.startswith("store")]
            sim_time.sleep(5.0)
        over_budget = store.over_budget
    finally:
        store.close()  # waits for the write in flight, then replays the spool
    reader = InfluxStore(influx.url, spool_dir=None)
    try:
        overviews = _count(reader, OVERVIEW)
        stored_legs = _count(reader, LEGS)
    finally:
        reader.close()
    assert warnings == [] and over_budget >= 1  # the hang was met, and never waited out
    assert overviews == 40
    assert stored_legs == sum(legs) and legs[0] > 0


# -- Redis stopped --------------------------------------------------------------------------------


@pytest.mark.chaos
@pytest.mark.integration
def test_redis_stopped_mid_run_no_crash_no_loss(tmp_path: Path, sim_time: SimTime) -> None:
    from optui.storage.cache import open_cache
    from tests.servers import RedisServer

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    store = SQLiteStore(tmp_path / "x.db")
    try:
        cache = open_cache(f"redis://127.0.0.1:{redis.port}/0")
        engine = CollectionEngine(_settings(), SimulatedSource(seed=7, start=START, clock=sim_time),
                                  store, state_dir=tmp_path / "state", cache=cache)
        sup = CycleSupervisor(engine, 5.0)
        outcomes = []
        for cycle in range(12):
            if cycle == 4:
                redis.stop()
            if cycle == 8:
                redis.start()
            outcomes.append(sup.attempt())
            sim_time.sleep(5.0)
        stored = _count(store, OVERVIEW)
    finally:
        store.close()
        redis.stop()
    assert all(o.stored for o in outcomes) and stored == 12
    cache_warnings = [i for i, o in enumerate(outcomes) if o.snapshot and any(
        w.startswith("cache:") for w in o.snapshot.warnings)]
    assert cache_warnings and set(cache_warnings) <= set(range(4, 8))
    assert not any(w.startswith("cache:") for w in outcomes[-1].snapshot.warnings)  # type: ignore[union-attr]


# -- slow cycles ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_slow_cycle_is_flagged_in_health(sim_time: SimTime, tmp_path: Path) -> None:
    server = _server(sim_time, FaultPlan({"slow": 1.0}, slow_s=0.2))
    try:
        engine = CollectionEngine(_settings(interval_s=1.0), _kite(server, sim_time, tmp_path, timeout=5.0),
                                  None, state_dir=tmp_path / "state")
        sup = CycleSupervisor(engine, 1.0, slow_share=0.1)
        outcome = sup.attempt()
    finally:
        server.close()
    assert outcome.stored and outcome.slow
    slow = [e for e in sup.health.open_faults() if e.kind is EventKind.SLOW_CYCLE]
    assert slow and "10% of the 1s interval" in slow[0].message


@pytest.mark.unit
def test_cached_age_follows_the_exchange_clock(sim_time: SimTime, tmp_path: Path) -> None:
    source = SimulatedSource(seed=7, start=START, clock=sim_time)
    engine = CollectionEngine(_settings(), source, None, state_dir=tmp_path / "state")
    sup = CycleSupervisor(engine, 5.0)
    assert sup.cached_age_s() is None
    assert sup.attempt().stored
    age = sup.cached_age_s()
    assert age is not None
    sim_time.sleep(42.0)
    assert sup.cached_age_s() == pytest.approx(age + 42.0)


# -- SIGTERM and SIGKILL mid-run -------------------------------------------------------------------


# Four strikes each side of the ATM (the stored legs are the same) on a market at 10x: the 1 s
# cycles come quickly, so the signals land mid-run within a second or two.
FAST_SIM = {"OPTUI_SOURCE_CHAIN_STRIKES": "4", "OPTUI_SIMULATOR_SPEED": "10"}


def _collect_proc(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OPTUI_SIMULATOR_START": "2026-11-25 11:00", "PYTHONUNBUFFERED": "1", **FAST_SIM}
    return subprocess.Popen(
        [OPTUI, "collect", "--source", "sim", "--indices", "NIFTY,BANKNIFTY", "--interval", "1",
         "--store", f"sqlite:///{tmp_path / 'x.db'}", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)


def _stored_lines(proc: subprocess.Popen[str], n: int) -> list[str]:
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        if " IST source=simulated" in line:
            lines.append(line)
            if len(lines) == n:
                return lines
    raise AssertionError(f"the collector stopped after {len(lines)} cycles")


@pytest.mark.chaos
@pytest.mark.integration
def test_sigterm_mid_run_leaves_store_and_files_in_agreement(tmp_path: Path) -> None:
    proc = _collect_proc(tmp_path)
    try:
        lines = _stored_lines(proc, 4)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    cycles = len(lines) + rest.count(" IST source=simulated")
    store = SQLiteStore(tmp_path / "x.db")
    try:
        overview = store.query(OVERVIEW, EARLY, LATE)
        legs = _count(store, LEGS)
    finally:
        store.close()
    assert len(overview) == 2 * cycles  # two indices a cycle, every printed cycle stored
    csv_rows = sum(len(p.read_text().splitlines()) - 1 for p in (tmp_path / "out").rglob("*.csv"))
    assert csv_rows == legs and legs > 0


@pytest.mark.chaos
@pytest.mark.integration
def test_sigkill_mid_run_leaves_a_consistent_store_that_a_restart_continues(tmp_path: Path) -> None:
    proc = _collect_proc(tmp_path)
    try:
        lines = _stored_lines(proc, 3)
        proc.kill()  # SIGKILL: no handler runs; the next cycle may be mid-write
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    import sqlite3

    with sqlite3.connect(tmp_path / "x.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = SQLiteStore(tmp_path / "x.db")
    try:
        times = [r.time for r in store.query(OVERVIEW, EARLY, LATE, tags={"index": "NIFTY"})]
    finally:
        store.close()
    assert len(times) in (len(lines), len(lines) + 1) and len(set(times)) == len(times)
    again = subprocess.run(
        [OPTUI, "collect", "--once", "--source", "sim", "--indices", "NIFTY,BANKNIFTY",
         "--store", f"sqlite:///{tmp_path / 'x.db'}", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "OPTUI_SIMULATOR_START": "2026-11-25 11:30", **FAST_SIM})
    assert again.returncode == 0, again.stderr
    store = SQLiteStore(tmp_path / "x.db")
    try:
        after = _count(store, OVERVIEW, index="NIFTY")
    finally:
        store.close()
    assert after == len(times) + 1


@pytest.mark.integration
def test_simulated_fallback_only_when_enabled_badged_and_never_stored(sim_time: SimTime, tmp_path: Path) -> None:
    from optui.collectors.supervisor import FALLBACK_LABEL, simulated_fallback

    server = _server(sim_time, None)
    store = SQLiteStore(tmp_path / "x.db")
    try:
        settings = _settings()
        engine = CollectionEngine(settings, _kite(server, sim_time, tmp_path), store, state_dir=tmp_path / "state")
        engine.source.label = "LIVE"  # as against Zerodha: the badge decides nothing else here
        assert Collector(engine, 5.0).supervisor.fallback is None  # off by default
        settings.source.simulated_fallback = True
        sup = Collector(engine, 5.0).supervisor
        assert sup.fallback is not None
        assert sup.attempt().stored
        server.faults = FaultPlan({"5xx": 1.0})
        sim_time.sleep(5.0)
        gap = sup.attempt()
        assert simulated_fallback(engine).store is None
    finally:
        server.close()
    try:
        overviews = _count(store, OVERVIEW)
    finally:
        store.close()
    assert not gap.stored and gap.fallback is not None and gap.fallback.label == FALLBACK_LABEL
    assert gap.fallback.indices and "SIMULATED FALLBACK" in gap.gap_line(START)
    assert overviews == 1  # the live cycle only: the fallback never reaches the history
