"""A collection cycle over Kite's API polled, against the same cycle streamed from the ticker.

Why: Kite serves one quote call a second of at most 500 instruments, so a cycle of the whole
chains of all five indices polls for several seconds and its last quotes are that old; streamed,
the legs come from the latest ticks and only the index spots stay one call.

`optui simulate` runs in its own process on a loopback port (REST and ticker on one port); the
engine reads it through the official kiteconnect client (rate limited as against Kite) and, for
the streamed run, the WebSocket ticker. Printed per cycle: the feed tier, instruments quoted and
streamed, cycle duration, and the age of the newest tick of each connection at the end of the
cycle (exchange seconds). Run: python benchmarks/bench_stream_cycle.py [cycles]
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time

from optui.collectors.engine import CollectionEngine
from optui.collectors.kite_source import KiteSource
from optui.collectors.stream_source import StreamingSource
from optui.config import Settings

START = "2026-11-25 11:00"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(root: str, stream: bool, cycles: int) -> None:
    settings = Settings()
    settings.participants.enabled = False
    settings.record.enabled = False
    settings.source.interval_s = 5.0
    rest = KiteSource("sim_key", "sim_token", root=root)
    source = (StreamingSource(rest, "sim_key", "sim_token", root.replace("http", "ws", 1))
              if stream else rest)
    engine = CollectionEngine(settings, source, None)
    try:
        for n in range(cycles):
            began = time.perf_counter()
            snap = engine.collect_once()
            took = time.perf_counter() - began
            ages = ""
            if isinstance(source, StreamingSource) and source.ticker is not None:
                now = source.now().timestamp()
                ages = " tick_age=" + "/".join(
                    f"{now - s.last_exchange_time:.1f}s" for s in source.ticker.shards
                    if s.last_exchange_time is not None)
            stats = engine.last
            print(f"{'stream' if stream else 'rest  '} cycle {n}: feed={stats.feed or 'rest'} "
                  f"instruments={stats.instruments} streamed={stats.streamed} "
                  f"legs={snap.leg_count} duration={took:.2f}s{ages}", flush=True)
            time.sleep(2.0)
    finally:
        engine.close()


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    logging.basicConfig(level=logging.ERROR)
    port = _port()
    server = subprocess.Popen([sys.executable, "-m", "optui.cli", "simulate", "--port", str(port),
                               "--start", START], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        root = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        _run(root, stream=False, cycles=min(cycles, 2))
        _run(root, stream=True, cycles=cycles)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
