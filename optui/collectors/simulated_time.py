"""Simulated time for running the real collector loop faster than the wall clock.

One counter stands in for the monotonic clock wherever a part takes one: the simulated exchange
(`SimulatedExchange(clock=...)`), a source's clock (`SimulatedSource(clock=...)`,
`ExchangeClock(monotonic=...)`) and the collector's sleep (`Collector(sleep=...)`). Sleeping
advances the counter, so a day of 30-second cycles runs in minutes and every schedule is exact.
The soak benchmark and the fault tests drive the collector this way; `optui collect` never does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optui.collectors.headless import Collector
    from optui.collectors.supervisor import Outcome


class SimTime:
    """A monotonic clock in seconds that moves only when something sleeps on it."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start
        """Seconds since the clock's origin."""

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        """Advance the clock by `seconds` (negative counts as zero) and return at once."""
        self.t += max(float(seconds), 0.0)


def stop_when(collector: Collector, done: Callable[[Outcome], bool]) -> None:
    """After each of the collector's attempts, call `done(outcome)`; once it returns True the run
    loop stops after that attempt (as SIGTERM would), so `collector.run()` returns."""
    supervisor = collector.supervisor
    inner = supervisor.attempt

    def attempt(pause_on_token: bool = True) -> Outcome:
        outcome = inner(pause_on_token)
        if done(outcome):
            collector.stop_event.set()
        return outcome

    supervisor.attempt = attempt  # type: ignore[method-assign]
