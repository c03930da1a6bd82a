"""A collector whose first reads of the exchange clock fail decides nothing on this machine's clock.

Every "now" that decides anything comes from the exchange (Kite's `Date` header). Before the
first answer carrying one, `ExchangeClock.now()` can only read the machine's clock; a collector
that judged the session on it (a machine clock in the evening, the simulated exchange at 09:20)
said "market closed", waited for the next pre-open by the machine's date, and once the exchange
answered waited the exchange clock on to that date: 517,230 exchange seconds (09:20 on a
Wednesday to 09:00:30 the next Tuesday) before its first stored cycle. The real `kiteconnect`
client against the simulated Kite API; the machine's wall clock is given, never read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from optui.collectors.engine import CollectionEngine
from optui.collectors.headless import Collector
from optui.collectors.kite_source import KiteSource
from optui.collectors.rate_limit import KITE_RATES, RateLimiter
from optui.collectors.simulated_time import SimTime, stop_when
from optui.collectors.source import ExchangeClock
from optui.collectors.supervisor import Outcome
from optui.collectors.token_watch import SecretsWatch
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.faults import FaultPlan
from optui.simulator.server import RateLimiter as ServerLimiter
from optui.simulator.server import serve
from optui.timeutil import IST
from tests.test_fault_start import nifty_kite

START = datetime(2026, 11, 25, 9, 20, 0, tzinfo=IST)  # the exchange: a Wednesday session
MACHINE = datetime(2026, 11, 30, 17, 7, 0, tzinfo=IST)  # the machine: Monday, after the close


class FirstRequestsFail(FaultPlan):
    """The first `n` requests meet `kind` (then none): the source unreachable at start."""

    def __init__(self, n: int, kind: str = "timeout") -> None:
        super().__init__({kind: 0.0})
        self.left, self.kind = n, kind
        self.timeout_s = 0.4  # the client gives up after 0.3 s

    def pick(self) -> str | None:
        with self._lock:
            if self.left <= 0:
                return None
            self.left -= 1
            self.counts[self.kind] += 1
            return self.kind


def _collect(tmp_path: Path, plan: FaultPlan, attempts_wanted: int = 2, once: bool = False,
             ) -> tuple[list[tuple[float, Outcome]], list[str], int]:
    """`optui collect`'s loop (NIFTY, 30 s interval) on simulated time from a cold start; the
    machine's wall clock reads MACHINE (plus the simulated seconds). Returns (exchange seconds
    since START, outcome) per attempt, the printed lines and the exit code."""
    clock = SimTime()
    server = serve(SimulatedExchange(seed=5, start=START, clock=clock), "127.0.0.1", 0,
                   limiter=ServerLimiter(clock=clock), faults=plan)
    settings, source = nifty_kite(tmp_path, server.url, clock)
    wall: Callable[[], float] = lambda: MACHINE.timestamp() + clock.t  # noqa: E731
    source.clock = ExchangeClock(wall=wall, monotonic=clock)
    from optui.storage.sqlite_store import SQLiteStore

    store = SQLiteStore(":memory:")
    attempts: list[tuple[float, Outcome]] = []
    lines: list[str] = []
    try:
        engine = CollectionEngine(settings, source, store, state_dir=tmp_path / "state")
        collector = Collector(engine, 30.0, printer=lambda line, style="": lines.append(line),
                              sleep=clock.sleep)
        collector.supervisor._watch = SecretsWatch(tmp_path / "secrets.toml")

        def done(outcome: Outcome) -> bool:
            attempts.append(((source.now() - START).total_seconds(), outcome))
            # A wait past a day is the fault itself: stop rather than run the simulated week.
            return len(attempts) >= attempts_wanted or attempts[-1][0] > 86_400

        stop_when(collector, done)
        code = collector.run(once=once)
    finally:
        store.close()
        server.close()
    return attempts, lines, code


@pytest.mark.chaos
@pytest.mark.integration
@pytest.mark.parametrize("kind", ["timeout", "truncated"])
def test_a_failed_first_clock_read_does_not_judge_the_session_on_the_machines_clock(
        tmp_path: Path, kind: str) -> None:
    # The first clock read's four tries all fail (a timeout carries no Date header; a cut body
    # does, and the clock is read from it): the first cycle is still stored at 09:20 of the exchange,
    # within the first-cycle retries (seconds), not at 09:00:30 six days later (517,230 s).
    plan = FirstRequestsFail(4, kind)
    attempts, lines, code = _collect(tmp_path, plan)
    assert code == 0 and plan.counts[kind] == 4
    first = next(o for _, o in attempts if o.stored)
    assert first.snapshot is not None
    waited = (first.snapshot.timestamp - START).total_seconds()
    assert 0.0 <= waited <= 30.0, (waited, lines)
    assert not any("market closed" in line.lower() for line in lines), lines


@pytest.mark.chaos
@pytest.mark.integration
def test_an_unreachable_exchange_at_start_is_retried_within_seconds_then_collected(tmp_path: Path) -> None:
    # Every request of the first 12 (three clock reads of four tries) times out: each failed
    # read is a line naming it, retried 2 s, then 4 s later on this machine's clock (nothing
    # is scheduled on it), and the first cycle is stored on the exchange's 09:20 slot.
    plan = FirstRequestsFail(12)
    attempts, lines, code = _collect(tmp_path, plan)
    assert code == 0
    unread = [line for line in lines if "exchange clock not read" in line]
    assert len(unread) >= 2 and all("(local clock)" in line for line in unread), lines
    first = next(o for _, o in attempts if o.stored)
    assert first.snapshot is not None
    assert 0.0 <= (first.snapshot.timestamp - START).total_seconds() <= 30.0, lines


@pytest.mark.chaos
@pytest.mark.integration
def test_a_one_shot_reads_the_clock_again_before_judging_the_session(tmp_path: Path) -> None:
    # `optui collect --once` on the machine's evening: the clock read fails, is read again 2 s
    # later, and the cycle is attempted at the exchange's 09:20 (on the old code: "market
    # closed at Mon 30 Nov 17:07 IST (local clock)" and exit 0 without collecting). Its outcome
    # is left open: a cold first quote can outlast the 0.3 s client timeout on a loaded machine.
    attempts, lines, code = _collect(tmp_path, FirstRequestsFail(4), attempts_wanted=1, once=True)
    assert len(attempts) == 1 and 0.0 <= attempts[0][0] <= 30.0, lines
    assert code == (0 if attempts[0][1].stored else 1)
    assert not any("market closed" in line.lower() for line in lines), lines
    assert "exchange clock not read yet" in lines[0] and "(local clock)" in lines[0]


@pytest.mark.unit
def test_the_instrument_dump_is_not_dated_by_the_machines_clock(tmp_path: Path) -> None:
    # No answer at all (nothing listens): the dump's day cannot be known, so nothing is read from
    # or written to a cache file named by this machine's date; the cycle fails, naming why.
    from optui.errors import NetworkError

    clock = SimTime()
    source = KiteSource("key", "token", root="http://127.0.0.1:1", cache_dir=tmp_path / "instruments",
                        limiter=RateLimiter(KITE_RATES, clock=clock, sleep=clock.sleep), timeout=0.3)
    source.clock = ExchangeClock(wall=lambda: MACHINE.timestamp(), monotonic=clock)
    with pytest.raises(NetworkError, match="exchange clock is not read yet"):
        source.instruments()
    assert not (tmp_path / "instruments").exists() or not any((tmp_path / "instruments").iterdir())
