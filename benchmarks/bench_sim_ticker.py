"""The simulated exchange streaming 9,000 instruments in full mode at a 1 s cadence.

Why: the end-to-end figures at full chain (issue: tick in at the socket to the number on screen)
need an exchange that keeps its one-frame-a-second cadence for three connections of 3,000
instruments without eating the machine the collector and dashboard run on (2 cores here).
The exchange runs in its own process (as a real one is remote) and its CPU is read from the OS;
three `TickerSource` connections of 3,000 full-mode instruments each subscribe (the simulator
lists about 6,300 instruments a day, so the three lists overlap), and the client counts the ticks
it receives. Baseline in the same run: the same server building each frame from GET /quote's
per-instrument dicts, the route the array-based quote state replaced.

Goal: the exchange's CPU <= 15 % of a core while streaming 9,000 full-mode ticks a second, and
every connection gets its frame every second. Run: `python benchmarks/bench_sim_ticker.py`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from optui.collectors.ticker_source import TickerSource
from optui.simulator.exchange import SimulatedExchange
from optui.timeutil import IST

HERE = Path(__file__).resolve().parent
START = "2026-11-17 11:00"
PER_CONNECTION = 3000
CONNECTIONS = 3
WARMUP_S = 4.0
MEASURE_S = 10.0
GOAL_CPU_SHARE = 0.15


class Exchange:
    """The simulator in a child process (benchmarks/sim_exchange.py)."""

    def __init__(self, route: str, start: str = START, speed: float = 1.0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "sim_exchange.py"), start, str(speed), route],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.port = int(line.split()[1])

    @property
    def root(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def cpu(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def subscriptions() -> dict[int, str]:
    """9,000 (token, full) over what the simulator lists on START's day, in listing order;
    the lists of the three connections overlap where the listing runs out."""
    exchange = SimulatedExchange(seed=7, start=datetime.fromisoformat(START).replace(tzinfo=IST))
    return {r.instrument_token: "full" for r in exchange.instruments()}


async def stream(root: str, tokens: list[int]) -> dict[str, float]:
    """Stream from `root` over three connections; ticks received and frames per connection."""
    counts = [0] * CONNECTIONS
    frames = [0] * CONNECTIONS
    measuring = [False]

    def on_ticks(shard: int, batch) -> None:  # noqa: ANN001 - TickBatch
        if measuring[0]:
            counts[shard] += len(batch)
            frames[shard] += 1

    # One source per connection, so that the three lists may share instruments.
    sources = []
    for i in range(CONNECTIONS):
        picked = [tokens[(i * PER_CONNECTION + k) % len(tokens)] for k in range(PER_CONNECTION)]
        modes = dict.fromkeys(picked, "full")
        source = TickerSource("sim_key", "sim_token", modes, lambda _s, b, i=i: on_ticks(i, b),
                              root=root)
        for k, shard in enumerate(source.shards):  # all on one connection
            shard.set_modes(modes if k == 0 else {})
        sources.append(source)
    tasks = [asyncio.create_task(s.run()) for s in sources]
    await asyncio.sleep(WARMUP_S)
    measuring[0] = True
    await asyncio.sleep(MEASURE_S)
    measuring[0] = False
    for s in sources:
        await s.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"ticks_per_s": sum(counts) / MEASURE_S,
            "frames_per_s": min(frames) / MEASURE_S}


def measure(route: str, tokens: list[int]) -> dict[str, float]:
    exchange = Exchange(route)
    try:
        out: dict[str, float] = {}

        async def run() -> None:
            task = asyncio.create_task(stream(exchange.root, tokens))
            await asyncio.sleep(WARMUP_S)
            c0, t0 = exchange.cpu(), time.perf_counter()
            await asyncio.sleep(MEASURE_S)
            out["cpu_share"] = (exchange.cpu() - c0) / (time.perf_counter() - t0)
            out.update(await task)

        asyncio.run(run())
        return out
    finally:
        exchange.close()


def main() -> dict:
    tokens = list(subscriptions())
    print(f"{CONNECTIONS} connections x {PER_CONNECTION} instruments in full mode "
          f"({len(tokens)} listed), {MEASURE_S:.0f} s measured")
    arrays = measure("arrays", tokens)
    quotes = measure("quotes", tokens)
    for name, res in (("array quote state", arrays), ("per-quote dicts", quotes)):
        print(f"{name:>18}: exchange CPU {res['cpu_share'] * 100:.1f} % of a core; "
              f"{res['ticks_per_s']:,.0f} ticks/s received, "
              f"{res['frames_per_s']:.2f} frames/s on the slowest connection")
    ratio = quotes["cpu_share"] / arrays["cpu_share"]
    ok = arrays["cpu_share"] <= GOAL_CPU_SHARE and arrays["frames_per_s"] >= 0.9
    print(f"exchange CPU {arrays['cpu_share'] * 100:.1f} % of a core (goal <= "
          f"{GOAL_CPU_SHARE * 100:.0f} %, a frame a second: {'met' if ok else 'MISSED'}); "
          f"per-quote / arrays = {ratio:.1f}x")
    return {"arrays": arrays, "quotes": quotes, "ratio": ratio}


if __name__ == "__main__":
    main()
