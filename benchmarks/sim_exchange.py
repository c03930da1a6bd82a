"""The simulated exchange in its own process, for benchmarks that stream from it.

`python benchmarks/sim_exchange.py START SPEED ROUTE`: serves REST and the WebSocket ticker on a
free loopback port, prints `PORT <n>` then serves until stdin closes; on `cpu` from stdin it
answers `CPU <seconds>` (this process's user + system CPU so far). ROUTE `arrays` is the
simulator's own frame building; `quotes` builds each frame from GET /quote's dicts (the
per-quote route it replaced), the baseline measured in the same run.
"""

from __future__ import annotations

import os
import sys

from optui.simulator import ticker
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.server import RateLimiter, parse_start, serve
from optui.tick_packets import pack_frame


def _quote_route(exchange: SimulatedExchange, modes: dict[int, int]) -> bytes:
    return pack_frame(ticker.quotes_to_batch(exchange.stream_quotes(modes), modes))


def main(start: str, speed: float, route: str) -> None:
    if route == "quotes":
        ticker.exchange_frame = _quote_route  # type: ignore[assignment]
    exchange = SimulatedExchange(seed=7, start=parse_start(start), speed=speed)
    server = serve(exchange, "127.0.0.1", 0, limiter=RateLimiter(limits={"other": 10**6}))
    print(f"PORT {server.port}", flush=True)
    for line in sys.stdin:
        if line.strip() == "cpu":
            t = os.times()
            print(f"CPU {t.user + t.system}", flush=True)
    server.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3])
