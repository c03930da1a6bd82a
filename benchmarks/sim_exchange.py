"""The simulated exchange in its own process, for benchmarks that stream from it.

Parent side (imports nothing beyond the standard library at import time, and no Textual at
all, so a headless benchmark that measures its own heap, bench_gc_soak.py, can use it):
- `free_port()`, `start_simulator(port, start, speed)`: `optui simulate` on a loopback port
  (REST and the WebSocket ticker on one port, as a remote exchange would be);
- `bench_settings(tmp, port)` and `collect_engine(tmp, port)`: `optui collect`'s settings and
  engine against it (every strike of the two nearest expiries of all five indices, SQLite store
  and recorder under `tmp`, the simulator's login);
- `HeadlessCollect`: both together, `optui collect`'s loop (Collector over a LocalFeed) on a
  thread against the simulator in its own process (bench_gc_soak.py, gc_diagnose.py).

Child side: `python benchmarks/sim_exchange.py START SPEED ROUTE`: serves REST and the ticker
on a free loopback port, prints `PORT <n>` then serves until stdin closes; on `cpu` from stdin
it answers `CPU <seconds>` (this process's user + system CPU so far). ROUTE `arrays` is the
simulator's own frame building; `quotes` builds each frame from GET /quote's dicts (the
per-quote route it replaced), the baseline measured in the same run (bench_sim_ticker.py).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine
    from optui.collectors.headless import Collector
    from optui.config import Settings


def free_port() -> int:
    """A loopback TCP port free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_simulator(port: int, start: str, speed: float | None = None) -> subprocess.Popen:
    """`optui simulate --port PORT --start START [--speed SPEED]` in its own process (output
    discarded); returns once its port answers. Raises RuntimeError when it does not within
    60 s. The caller terminates it."""
    args = [sys.executable, "-m", "optui.cli", "simulate", "--port", str(port), "--start", start]
    if speed is not None:
        args += ["--speed", f"{speed:g}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("optui simulate did not start")


def local_settings(tmp: Path) -> Settings:
    """Settings with everything written under `tmp` (SQLite store, data, logs, instruments
    cache), a 1 s interval, the legacy JSON/CSV files off and a chain panel of 100 strikes a
    side (the worst case to draw)."""
    from optui.config import Settings

    s = Settings()
    s.source.interval_s = 1.0
    s.ui.chain_strikes = 100
    s.store.url = f"sqlite:///{tmp / 'bench.db'}"
    s.export.write_json = False
    s.export.write_csv = False
    s.general.data_dir = str(tmp / "data")
    s.general.log_dir = str(tmp / "logs")
    s.source.instruments_cache_dir = str(tmp / "instruments")
    return s


def bench_settings(tmp: Path, port: int) -> Settings:
    """`local_settings` for Kite at the simulator on `port`, every listed strike of the two
    nearest expiries, the participants' download off."""
    s = local_settings(tmp)
    s.source.kind = "kite"
    s.kite.root = f"http://127.0.0.1:{port}"
    s.kite.api_key = "sim_key"
    s.source.full_chain_expiries = 2
    s.participants.enabled = False
    s.store.spool_dir = str(tmp / "spool")
    return s


def collect_engine(tmp: Path, port: int) -> tuple[Settings, CollectionEngine]:
    """`bench_settings` and the engine `optui collect` builds from them (KiteSource +
    StreamingSource), logged in with the simulator's token (secrets file under `tmp`)."""
    from optui.collectors.engine import build_engine

    settings = bench_settings(tmp, port)
    os.environ["OPTUI_KITE_ACCESS_TOKEN"] = "sim_token"
    os.environ["OPTUI_SECRETS_FILE"] = str(tmp / "secrets.toml")
    return settings, build_engine(settings, "kite")


class HeadlessCollect:
    """`with HeadlessCollect(start, speed) as run:` starts `optui simulate` (`start_simulator`)
    and builds `optui collect`'s Collector against it in a temporary directory
    (`collect_engine`; its lines discarded); `run.start()` starts the collection loop on a
    thread named "collect", `run.stop(join_s)` stops it; leaving the block stops it, closes the
    feed and the simulator and removes the directory."""

    def __init__(self, start: str, speed: float | None = None) -> None:
        self.start_at, self.speed = start, speed

    def __enter__(self) -> HeadlessCollect:
        from optui.collectors.headless import Collector

        port = free_port()
        self.server = start_simulator(port, self.start_at, self.speed)
        self._tmp = tempfile.TemporaryDirectory()
        try:
            settings, self.engine = collect_engine(Path(self._tmp.name), port)
            self.collector: Collector = Collector(self.engine, settings.source.interval_s,
                                                  printer=lambda *a: None)
        except BaseException:
            self._close_outside()
            raise
        self.thread = threading.Thread(target=self.collector.run, name="collect")
        return self

    def start(self) -> None:
        """Start the collection loop."""
        self.thread.start()

    def stop(self, join_s: float = 60.0) -> None:
        """Stop the collection loop and wait up to `join_s` seconds for it."""
        self.collector.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(join_s)

    def _close_outside(self) -> None:
        try:
            self._tmp.cleanup()
        finally:
            self.server.terminate()
            self.server.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
            self.collector.feed.close()
        finally:
            self._close_outside()


def main(start: str, speed: float, route: str) -> None:
    """The child: the simulated exchange (seed 7) served until stdin closes."""
    from optui.simulator import ticker
    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.server import RateLimiter, parse_start, serve
    from optui.tick_packets import pack_frame

    def quote_route(exchange: SimulatedExchange, modes: dict[int, int],
                    changes: object = None) -> bytes:
        # every subscribed instrument each frame: the per-quote route kept no memory of
        # what a connection was sent (`changes` is the array route's)
        return pack_frame(ticker.quotes_to_batch(exchange.stream_quotes(modes), modes))

    if route == "quotes":
        ticker.exchange_frame = quote_route  # type: ignore[assignment]
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
