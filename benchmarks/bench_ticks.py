"""Ticker ticks parsed and aggregated per second, against kiteconnect's own per-packet parser.

Why: at full chain (9,000 instruments over three connections, about a tick a second each, more
in busy seconds) and in replay at 60x, every tick goes through the parser and the aggregator, so
both must be vectorised: goal >= 1,000,000 ticks/s on one core and >= 20x kiteconnect's
`KiteTicker._parse_binary` (which only parses, into one dict per tick) in the same run.

Frames are the simulator's own: 3,000 NIFTY and BANKNIFTY options of one connection, a third in
full mode (184-byte packets with depth) and the rest in quote mode (44 bytes), one frame per
simulated second. Run: python benchmarks/bench_ticks.py
"""

from __future__ import annotations

import os
import time
from datetime import datetime

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from kiteconnect import KiteTicker  # noqa: E402

from optui.collectors.tick_aggregator import TickAggregator  # noqa: E402
from optui.simulator.exchange import SimulatedExchange  # noqa: E402
from optui.simulator.ticker import exchange_frame  # noqa: E402
from optui.tick_packets import MODE_FULL, MODE_QUOTE, parse_frame  # noqa: E402
from optui.timeutil import IST  # noqa: E402

INSTRUMENTS = 3000
FRAMES = 8
GOAL_TICKS_PER_S = 1_000_000
GOAL_RATIO = 20.0


class _Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def make_frames() -> tuple[list[bytes], list[int]]:
    """FRAMES one-second frames of INSTRUMENTS options from the simulator."""
    clock = _Clock()
    exchange = SimulatedExchange(seed=7, start=datetime(2026, 11, 17, 11, 0, tzinfo=IST),
                                 clock=clock)
    rows = [r for r in exchange.instruments() if r.instrument_type in ("CE", "PE")
            and r.index_key in ("NIFTY", "BANKNIFTY")]
    tokens = [r.instrument_token for r in rows[:INSTRUMENTS]]
    modes = {t: (MODE_FULL if i % 3 == 0 else MODE_QUOTE) for i, t in enumerate(tokens)}
    frames = []
    for k in range(FRAMES):
        clock.t = float(k)
        frames.append(exchange_frame(exchange, modes))
    return frames, tokens


def _best_rates(fns: dict[str, object], frames: list[bytes], ticks: int,
                rounds: int = 3, min_s: float = 0.4) -> dict[str, float]:
    """Ticks/s of each function, best of `rounds` interleaved rounds (the machine is shared)."""
    best = dict.fromkeys(fns, 0.0)
    for _ in range(rounds):
        for name, fn in fns.items():
            passes, started = 0, time.perf_counter()
            while True:
                for frame in frames:
                    fn(frame)  # type: ignore[operator]
                passes += 1
                elapsed = time.perf_counter() - started
                if elapsed >= min_s:
                    break
            best[name] = max(best[name], passes * ticks / elapsed)
    return best


def main() -> None:
    frames, tokens = make_frames()
    ticks = sum(len(parse_frame(f)) for f in frames)
    mb = sum(len(f) for f in frames) / 1e6
    print(f"{len(frames)} frames, {ticks} ticks ({mb:.1f} MB), {INSTRUMENTS} instruments")

    agg = TickAggregator(tokens)
    reference = KiteTicker("key", "token")  # its parser only; it never connects
    rates = _best_rates({"ours": lambda f: agg.add(parse_frame(f)), "parse": parse_frame,
                         "kite": reference._parse_binary}, frames, ticks)
    ours, parse_only, kite = rates["ours"], rates["parse"], rates["kite"]
    ratio = ours / kite
    print(f"parse + aggregate: {ours:,.0f} ticks/s (goal >= {GOAL_TICKS_PER_S:,})"
          f" {'OK' if ours >= GOAL_TICKS_PER_S else 'MISSED'}")
    print(f"parse only:        {parse_only:,.0f} ticks/s")
    print(f"kiteconnect parse: {kite:,.0f} ticks/s")
    print(f"ratio:             {ratio:.1f}x (goal >= {GOAL_RATIO:.0f}x)"
          f" {'OK' if ratio >= GOAL_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
