"""A collector started against a faulty Kite: transient REST faults are retried within the call
and a failed first cycle is retried within seconds, not an interval later.

The real `kiteconnect` client against the simulated Kite API with injected faults (as
`optui simulate --faults "429=0.05,5xx=0.05,timeout=0.02,malformed=0.05,truncated=0.05"`), on
simulated time: one counter drives the exchange, the source's clock, its limiter and the
collector's sleep, so every assertion reads the exchange clock, never the wall's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
from kiteconnect import exceptions as kex

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import FIRST_RETRY_S, Collector, first_retry_at
from optui.collectors.kite_source import (
    TRANSIENT_ATTEMPTS,
    KiteSource,
    map_kite_error,
    transient_fault,
)
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.collectors.simulated_time import SimTime, stop_when
from optui.collectors.source import ExchangeClock
from optui.collectors.supervisor import Outcome
from optui.collectors.token_watch import SecretsWatch
from optui.config import Settings
from optui.errors import BadInputError, NetworkError, RateLimitedError, TokenExpiredError
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.faults import FaultPlan
from optui.simulator.server import RateLimiter as ServerLimiter
from optui.simulator.server import serve
from optui.storage.records import OVERVIEW
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

START = datetime(2026, 11, 25, 9, 20, 0, tzinfo=IST)  # a Wednesday session, on a 30 s slot
FAULTS = "429=0.05,5xx=0.05,timeout=0.02,malformed=0.05,truncated=0.05"



def nifty_kite(tmp_path: Path, root: str, clock: SimTime) -> tuple[Settings, KiteSource]:
    """NIFTY every 30 s, two strikes each side, no files; a KiteSource on the exchange at `root`
    paced by Kite's real rates on `clock`, its client giving up after 0.3 s."""
    settings = Settings()
    settings.source.indices = ["NIFTY"]
    settings.source.interval_s = 30.0
    settings.source.chain_strikes = 2
    settings.export.write_json = settings.export.write_csv = False
    source = KiteSource("sim_key", "sim_token", root=root, cache_dir=tmp_path / "instruments",
                        limiter=RateLimiter(KITE_RATES, clock=clock, sleep=clock.sleep), timeout=0.3)
    return settings, source

def _start_collecting(tmp_path: Path, seed: int, cycles: int, faults: str = FAULTS,
                      heal_after: int = 0) -> tuple[list[tuple[float, Outcome]], FaultPlan, int]:
    """Run `optui collect`'s loop (interval 30 s) from a cold start (no instrument cache) until
    `cycles` attempts (the faults stop after `heal_after` attempts when it is set); returns (exchange seconds since START, outcome) per attempt, the plan and
    the requests the exchange refused for Kite's real rate limits."""
    clock = SimTime()
    plan = FaultPlan.parse(faults, seed=seed)
    plan.timeout_s = 0.4  # the client gives up after 0.3 s: a timeout costs little real time
    refused: list[str] = []
    limiter = ServerLimiter(clock=clock)  # Kite's real limits (1 quote call/s) on the exchange clock
    allow = limiter.allow

    def counted(api_key: str, group: str) -> bool:
        ok = allow(api_key, group)
        if not ok:
            refused.append(group)
        return ok

    limiter.allow = counted  # type: ignore[method-assign]
    server = serve(SimulatedExchange(seed=5, start=START, clock=clock), "127.0.0.1", 0,
                   limiter=limiter, faults=plan)
    settings, source = nifty_kite(tmp_path, server.url, clock)
    source.clock = ExchangeClock(monotonic=clock)
    store = SQLiteStore(":memory:")
    attempts: list[tuple[float, Outcome]] = []
    try:
        engine = CollectionEngine(settings, source, store, state_dir=tmp_path / "state")
        collector = Collector(engine, 30.0, printer=lambda line, style="": None, sleep=clock.sleep)
        collector.supervisor._watch = SecretsWatch(tmp_path / "secrets.toml")

        def done(outcome: Outcome) -> bool:
            attempts.append(((source.now() - START).total_seconds(), outcome))
            if heal_after and len(attempts) == heal_after:
                server.faults = None
            return len(attempts) >= cycles

        stop_when(collector, done)
        assert collector.run() == 0
        stored = len(store.query(OVERVIEW, START - timedelta(days=1), START + timedelta(days=1)))
    finally:
        store.close()
        server.close()
    assert stored == sum(o.stored for _, o in attempts)  # every stored cycle is in the store
    return attempts, plan, len(refused)


@pytest.mark.chaos
@pytest.mark.integration
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_collection_starts_within_seconds_at_the_testers_fault_rates(tmp_path: Path, seed: int) -> None:
    attempts, plan, refused = _start_collecting(tmp_path, seed, cycles=4)
    assert sum(plan.counts.values()) > 0, "no fault was drawn: the run proves nothing"
    first = next(i for i, (_, o) in enumerate(attempts) if o.stored)
    stored_at = attempts[first][1].snapshot.timestamp  # type: ignore[union-attr]
    # The first cycle (two instrument dumps, the quotes) is due at START: it is stored within a
    # few exchange seconds of it, not an interval (30 s) later.
    assert (stored_at - START).total_seconds() <= 10.0, [(t, o.gap) for t, o in attempts]
    assert first <= 1
    # Later cycles keep the 30 s cadence on the exchange clock, each stored or a recorded gap.
    later = [o.snapshot.timestamp for _, o in attempts[first + 1:] if o.snapshot is not None]
    slots = [t.timestamp() // 30 for t in [stored_at, *later]]
    assert slots == sorted(set(slots)) and len(later) >= 1
    assert all("Traceback" not in o.gap and "HTTP 502" not in o.gap for _, o in attempts)
    assert refused == 0  # retries waited their turn: Kite's limits were never exceeded


@pytest.mark.chaos
@pytest.mark.integration
def test_a_failed_first_cycle_is_retried_within_seconds_then_the_cadence_holds(tmp_path: Path) -> None:
    """Every request fails (HTTP 5xx) through the first two attempts: each is a recorded gap
    naming the fault, the retries come 2 s then 4 s after, and once a cycle is stored the next
    attempt is on the 30 s slot."""
    attempts, _, refused = _start_collecting(tmp_path, 1, cycles=4, faults="5xx=1", heal_after=2)
    stored = [o.stored for _, o in attempts]
    assert stored == [False, False, True, True]
    assert all("server error (HTTP 50" in o.gap and "attempt" in o.gap for _, o in attempts[:2])
    t0, t1, t2, t3 = (t for t, _ in attempts)
    # Each failed attempt spends its in-call retries (1.75 s of backoff per call) before the gap.
    assert t1 - t0 == pytest.approx(2.0 + 1.75, abs=1.5)
    assert t2 - t1 == pytest.approx(4.0 + 1.75, abs=1.5)
    assert t2 < 30.0 and attempts[3][1].snapshot.timestamp >= START + timedelta(seconds=30)  # type: ignore[union-attr]
    assert attempts[3][1].snapshot.timestamp < START + timedelta(seconds=60)  # type: ignore[union-attr]
    assert refused == 0


@pytest.mark.unit
@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (kex.NetworkException("Too many requests", code=429), "rate limited (HTTP 429)"),
        (kex.GeneralException("Simulated upstream failure", code=500), "server error (HTTP 500)"),
        (kex.NetworkException("Simulated upstream failure", code=503), "server error (HTTP 503)"),
        (kex.DataException("Couldn't parse the JSON response received from the server: b'{\"s'",
                           code=502), "malformed response (not JSON)"),
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(4 bytes read)"),
         "truncated response (body cut)"),
        (requests.exceptions.ReadTimeout("read timed out"), "timeout (no answer in 7 s)"),
        (requests.exceptions.ConnectionError("refused"), "connection failed (ConnectionError)"),
        (kex.TokenException("Token is invalid or has expired.", code=403), None),
        (kex.InputException("invalid instrument", code=400), None),
        (kex.PermissionException("no permission", code=403), None),
        (ValueError("a bug"), None),
    ],
)
def test_transient_faults_are_named_precisely(exc: Exception, name: str | None) -> None:
    assert transient_fault(exc, 7.0) == name


@pytest.mark.unit
def test_fault_messages_name_the_fault_not_the_body_or_http_502() -> None:
    body_cut = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    assert str(map_kite_error(body_cut, "quote")) == "quote: Kite answered with a truncated response (body cut)"
    garbled = kex.DataException("Couldn't parse the JSON response received from the server: b'SECRET'", code=502)
    err = map_kite_error(garbled, "instrument dump NFO")
    assert isinstance(err, NetworkError) and "malformed response (not JSON)" in str(err)
    assert "502" not in str(err) and "SECRET" not in str(err)
    slow = map_kite_error(requests.exceptions.ReadTimeout("x"), "quote", 7.0)
    assert "timeout (no answer in 7 s)" in str(slow)
    assert isinstance(map_kite_error(kex.NetworkException("Too many requests", code=429), "quote"),
                      RateLimitedError)
    assert isinstance(map_kite_error(kex.TokenException("expired", code=403), "quote"), TokenExpiredError)


@pytest.mark.unit
def test_first_cycle_retries_back_off_within_bounds() -> None:
    waits = [(first_retry_at(START, n) - START).total_seconds() for n in range(1, 8)]
    assert waits == [2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0]
    assert max(FIRST_RETRY_S) < 30.0


@pytest.mark.unit
def test_a_call_retries_transient_faults_with_paced_bounded_backoff() -> None:
    clock = SimTime()
    limiter = RateLimiter(KITE_RATES, clock=clock, sleep=clock.sleep)
    source = KiteSource("key", "token", root="http://127.0.0.1:1", limiter=limiter)
    source.clock = ExchangeClock(monotonic=clock)
    faults: list[Exception] = [kex.NetworkException("Too many requests", code=429),
                               requests.exceptions.ChunkedEncodingError("IncompleteRead")]
    tries: list[float] = []

    def quote() -> dict:
        tries.append(clock.t)
        if faults:
            raise faults.pop(0)
        return {"NSE:NIFTY 50": {}}

    assert source._call("quote", "quote", quote) == {"NSE:NIFTY 50": {}}
    # Backoff 0.25 s then 0.5 s, but never closer than Kite's 1 quote call/s (plus the 429's
    # extra interval): the tries are at 0, 2.1 and 3.15 exchange seconds.
    assert tries == [0.0, pytest.approx(2.1), pytest.approx(3.15)]
    # A fault that is not transient, or one that outlasts the tries, is raised at once, typed.
    with pytest.raises(BadInputError):
        source._call("quote", "quote", lambda: (_ for _ in ()).throw(kex.InputException("bad", code=400)))
    calls: list[int] = []

    def cut() -> dict:
        calls.append(1)
        raise requests.exceptions.ChunkedEncodingError("IncompleteRead")

    with pytest.raises(NetworkError, match=r"quote: Kite answered with a truncated response \(body cut\)"):
        source._call("quote", "quote", cut)
    assert len(calls) == TRANSIENT_ATTEMPTS
