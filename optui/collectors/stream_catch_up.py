"""Waiting for a StreamingSource's ticker to catch up with a stepped simulated clock.

Tests and benchmarks that set the simulator's clock and then collect need the ticks of the new
moment to have arrived before the cycle reads the book; the collector itself never waits so
(it runs on `StreamingSource.wait_snapshot`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from optui.collectors.stream_source import StreamingSource


def _caught_up(source: StreamingSource, at_s: float) -> bool:
    ticker = source.ticker
    if ticker is None or not source._streamed:
        return False
    shards = [s for s in ticker.shards if s.modes]
    if not all(s.ws is not None and (s.last_exchange_time or 0) >= at_s for s in shards):
        return False
    tokens = sorted(source._streamed)
    return bool(source.book.is_live(np.array(tokens, dtype=np.int64),
                                    source._mode_codes(tokens)).all())


def wait_caught_up(source: StreamingSource, at: datetime, timeout_s: float = 10.0) -> bool:
    """Block until every instrument `source` subscribed has ticked, every connection's newest
    tick is stamped at or after `at`'s whole second and each connection has sent one message
    more (True), or `timeout_s` real seconds pass (False). For tests and tools that step a
    simulated clock."""
    at_s = float(int(at.timestamp()))
    end = time.monotonic() + timeout_s
    seen: list[int] | None = None
    while time.monotonic() < end:
        if source._loop is not None:
            if seen is None:
                if source._on_loop(_caught_up, source, at_s):
                    seen = source._on_loop(_messages, source)
            # A frame stamped `at` may hold only instruments just subscribed (sent at once,
            # apart from the connection's regular frame): the connection's next message was
            # built after it, so by then that second's regular frame has been received.
            elif all(now > before for now, before in zip(source._on_loop(_messages, source), seen,
                                                         strict=True)):
                return True
        time.sleep(0.01)
    return False


def _messages(source: StreamingSource) -> list[int]:
    """Frames and heartbeats received so far on each connection that carries instruments."""
    ticker = source.ticker
    shards = [s for s in ticker.shards if s.modes] if ticker is not None else []
    return [s.stats.frames + s.stats.heartbeats for s in shards]


__all__ = ["wait_caught_up"]
