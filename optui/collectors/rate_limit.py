"""A thread-safe minimum-interval limiter per endpoint class (Kite: quote 1/s, others 10/s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Spaces calls of each class at least `1/rate` seconds apart; blocks the calling thread."""

    def __init__(
        self,
        rates: dict[str, float],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = {k: 1.0 / v for k, v in rates.items()}
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self, kind: str) -> float:
        """Wait until a call of `kind` is allowed; return the seconds waited."""
        interval = self._interval.get(kind, self._interval.get("default", 0.1))
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(kind, now))
            self._next[kind] = start + interval
        wait = start - now
        if wait > 0:
            self._sleep(wait)
        return wait

    def penalise(self, kind: str) -> None:
        """After the server refused a call of `kind` for its rate (HTTP 429): the next call of
        that kind waits one whole interval from now, on top of the usual spacing."""
        interval = self._interval.get(kind, self._interval.get("default", 0.1))
        with self._lock:
            now = self._clock()
            self._next[kind] = max(self._next.get(kind, now), now) + interval


# A 5 % margin under the published limits: the exchange measures arrival times, which jitter.
KITE_RATES = {"quote": 1.0 / 1.05, "historical": 3.0 / 1.05, "default": 10.0 / 1.05}
