"""Points per second into a real influxd: the store's public write API against raw POSTs.

The figure that matters is `write_vs_raw_ratio` (goal: at least 0.8): `InfluxStore.write(points)`
(formatting, chunking and sending) over the rate of POSTing the very same lines, already formatted
and encoded, in bodies of the same `BATCH` lines, over one reused connection to the same server
(the most a sequential client could reach). The machine is shared and busy, so the two are
measured in `ROUNDS` alternating pairs (raw then store, store then raw, ...) after a warm-up pair,
each side into a fresh database; the ratio is the median of the per-pair ratios, so load that
comes and goes hits both sides of a pair alike. `write_columns` (the collector's leg path) is
measured the same way. Also: raw POSTs of gzip bodies (does compression help on loopback?), the
bulk formatters against naive per-point formatting (points per CPU second), and one POST per point.
Needs influxd (apt-get install -y influxdb).
"""

from __future__ import annotations

import gzip
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from servers import InfluxServer  # noqa: E402

from optui.storage.influx_store import InfluxStore  # noqa: E402
from optui.storage.line_protocol import LineFormatter  # noqa: E402
from optui.storage.points import Point  # noqa: E402
from optui.timeutil import IST  # noqa: E402

N_POINTS = 50_000  # per round and side
BATCH = 5000  # lines per POST, both sides (the store's batch_size)
ROUNDS = 11
N_NAIVE_POSTS = 200
T0 = datetime(2026, 8, 17, 9, 15, tzinfo=IST)
LEG_FIELDS = ("strike", "last_price", "average_price", "volume", "oi", "oi_change", "iv",
              "ohlc_open", "ohlc_high", "ohlc_low", "ohlc_close", "days_to_expiry")


def leg_points(n: int) -> list[Point]:
    """atm_options-shaped points: 5 indices x 4 buckets x 2 sides x 5 offsets per timestamp."""
    keys = [
        {"index": i, "bucket": b, "side": s, "expiry": "2026-08-18", "strike_offset": o}
        for i in ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX")
        for b in ("this_week", "next_week", "this_month", "next_month")
        for s in ("CALL", "PUT")
        for o in ("atm_m2", "atm_m1", "atm", "atm_p1", "atm_p2")
    ]
    pts = []
    for k in range(n):
        tags = dict(keys[k % len(keys)])
        at = T0 + timedelta(seconds=30 * (k // len(keys)))
        values = [24800.0 + k % 7, 101.25 + k % 13, 100.5, 12000 + k, 450000 + k, 1500, 0.1423,
                  99.0, 120.5, 95.25, 100.0, 1.2345]
        pts.append(Point("atm_options", tags, dict(zip(LEG_FIELDS, values, strict=True)), at))
    return pts


def as_columns(pts: list[Point]) -> tuple[list[dict[str, str]], np.ndarray, dict[str, np.ndarray]]:
    """The same points as `write_columns` arguments (numpy columns, as the collector's legs)."""
    times = np.array([p.time_ns for p in pts], dtype=np.int64)
    columns = {name: np.array([p.fields[name] for p in pts]) for name in LEG_FIELDS}
    return [p.tags for p in pts], times, columns


def naive_line(p: Point) -> str:
    """Per-point formatting as a first version would write it (escaping on every call)."""
    def esc(s: str) -> str:
        return s.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")

    tags = ",".join(f"{esc(k)}={esc(v)}" for k, v in sorted(p.tags.items()))
    fields = []
    for k, v in p.fields.items():
        if isinstance(v, bool):
            fields.append(f"{esc(k)}={'true' if v else 'false'}")
        elif isinstance(v, int):
            fields.append(f"{esc(k)}={v}i")
        elif isinstance(v, float):
            fields.append(f"{esc(k)}={v!r}")
        else:
            fields.append(f'{esc(k)}="{v}"')
    return f"{esc(p.measurement)},{tags} {','.join(fields)} {p.time_ns}"


class Rates:
    """Runs the sides of one comparison into fresh databases of one server and keeps their rates."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client = client
        self.url = url
        self.serial = 0

    def _fresh_db(self) -> str:
        self.serial += 1
        db = f"bench_{self.serial}"
        self.client.post("/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
        return db

    def _drop(self, db: str) -> None:
        self.client.post("/query", data={"q": f'DROP DATABASE "{db}"'}).raise_for_status()

    def raw(self, bodies: list[bytes], points: int, headers: dict[str, str] | None = None) -> float:
        db = self._fresh_db()
        started = time.perf_counter()
        for body in bodies:
            self.client.post("/write", params={"db": db, "precision": "ns"}, content=body,
                             headers=headers).raise_for_status()
        rate = points / (time.perf_counter() - started)
        self._drop(db)
        return rate

    def store(self, write: Callable[[InfluxStore], int]) -> float:
        db = self._fresh_db()
        store = InfluxStore(self.url, database=db, batch_size=BATCH, spool_dir=None)
        store.version()  # the /ping a long-running store did once, long ago
        started = time.perf_counter()
        written = write(store)
        rate = written / (time.perf_counter() - started)
        store.close()
        self._drop(db)
        return rate


def paired(rates: Rates, raw: Callable[[], float], store: Callable[[], float]) -> dict[str, float]:
    """Median raw and store rates and the median per-pair ratio over ROUNDS alternating pairs
    (after one warm-up pair that is not counted)."""
    raw(), store()
    raws, stores, ratios = [], [], []
    for run in range(ROUNDS):
        if run % 2 == 0:
            r, s = raw(), store()
        else:
            s, r = store(), raw()
        raws.append(r)
        stores.append(s)
        ratios.append(s / r)
    return {"raw": statistics.median(raws), "store": statistics.median(stores),
            "ratio": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="optui-bench-influx-"))
    server = InfluxServer(workdir / "influxd")
    server.start()
    results: dict[str, Any] = {}
    try:
        pts = leg_points(N_POINTS)
        tags_list, times_ns, columns = as_columns(pts)

        # Formatting is timed in CPU seconds of this process: other processes' load cannot
        # inflate it, and CPU is what a writer takes from a server on the same machine.
        fmt_times, col_times, naive_times = [], [], []
        for _ in range(3):
            t = time.process_time()
            lines = LineFormatter().format_points(pts).lines
            fmt_times.append(time.process_time() - t)
            t = time.process_time()
            col_lines = LineFormatter().format_columns("atm_options", tags_list, times_ns, columns).lines
            col_times.append(time.process_time() - t)
            t = time.process_time()
            naive_lines = [naive_line(p) for p in pts]
            naive_times.append(time.process_time() - t)
        assert lines == naive_lines == col_lines, "the bulk formatters and the naive one disagree"
        bulk_fmt, naive_fmt = N_POINTS / min(fmt_times), N_POINTS / min(naive_times)
        col_fmt = N_POINTS / min(col_times)

        bodies = [("\n".join(lines[i:i + BATCH]) + "\n").encode() for i in range(0, N_POINTS, BATCH)]
        gz_bodies = [gzip.compress(b, compresslevel=1) for b in bodies]
        with httpx.Client(base_url=server.url, timeout=60) as client:
            rates = Rates(client, server.url)
            by_points = paired(rates, lambda: rates.raw(bodies, N_POINTS),
                               lambda: rates.store(lambda s: s.write(pts)))
            by_columns = paired(rates, lambda: rates.raw(bodies, N_POINTS), lambda: rates.store(
                lambda s: s.write_columns("atm_options", tags_list, times_ns, columns)))
            raw_gzip = statistics.median(
                rates.raw(gz_bodies, N_POINTS, {"Content-Encoding": "gzip"}) for _ in range(3))

        store = InfluxStore(server.url, database="bench", batch_size=BATCH, spool_dir=None)
        store.init_database()
        store.write(pts)
        store.close()
        with httpx.Client(base_url=server.url) as client:
            t = time.perf_counter()
            for p in pts[:N_NAIVE_POSTS]:
                client.post("/write", params={"db": "bench", "precision": "ns"},
                            content=naive_line(p).encode())
            naive_write = N_NAIVE_POSTS / (time.perf_counter() - t)
            count = client.get("/query", params={
                "db": "bench", "q": "SELECT count(oi) FROM atm_options"}).json()
        stored = count["results"][0]["series"][0]["values"][0][1]

        results = {
            "points_per_round": N_POINTS,
            "rounds": ROUNDS,
            "format_bulk_points_per_cpu_s": round(bulk_fmt),
            "format_columns_points_per_cpu_s": round(col_fmt),
            "format_naive_points_per_cpu_s": round(naive_fmt),
            "format_speedup": round(bulk_fmt / naive_fmt, 2),
            "write_raw_post_points_per_s": round(by_points["raw"]),
            "write_bulk_points_per_s": round(by_points["store"]),
            "write_vs_raw_ratio": round(by_points["ratio"], 2),
            "write_vs_raw_ratio_range": f"{by_points['ratio_min']:.2f}-{by_points['ratio_max']:.2f}",
            "write_columns_points_per_s": round(by_columns["store"]),
            "write_columns_vs_raw_ratio": round(by_columns["ratio"], 2),
            "write_columns_vs_raw_ratio_range":
                f"{by_columns['ratio_min']:.2f}-{by_columns['ratio_max']:.2f}",
            "raw_gzip_post_points_per_s": round(raw_gzip),
            "write_naive_per_point_post_points_per_s": round(naive_write),
            "write_speedup": round(by_points["store"] / naive_write, 1),
            "points_stored": stored,
        }
        for name, value in results.items():
            print(f"{name:42s} {value}")
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
