"""Points per second into a real influxd: the store's public write API against raw POSTs.

The figure that matters is `write_vs_raw_ratio`: `InfluxStore.write(points)` (formatting,
batching and sending) over the rate of POSTing the same lines, already formatted and encoded,
in 5000-line bodies to the same server in the same run (the most a client could reach). Goal:
at least 0.8. Also: the bulk formatter against naive per-point formatting, and one POST per point.
Each rate is the best of `REPEATS` runs into a fresh database. Needs influxd (apt-get install -y influxdb).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from servers import InfluxServer  # noqa: E402

from optui.storage.influx_store import InfluxStore  # noqa: E402
from optui.storage.line_protocol import LineFormatter  # noqa: E402
from optui.storage.points import Point  # noqa: E402
from optui.timeutil import IST  # noqa: E402

N_POINTS = 200_000
N_NAIVE_POSTS = 200
RAW_BATCH = 5000
REPEATS = 3
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


def main() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="optui-bench-influx-"))
    server = InfluxServer(workdir / "influxd")
    server.start()
    results: dict[str, Any] = {}
    try:
        pts = leg_points(N_POINTS)

        t = time.perf_counter()
        lines = LineFormatter().format_points(pts).lines
        bulk_fmt = N_POINTS / (time.perf_counter() - t)
        t = time.perf_counter()
        naive_lines = [naive_line(p) for p in pts]
        naive_fmt = N_POINTS / (time.perf_counter() - t)
        assert len(lines) == len(naive_lines) == N_POINTS

        bodies = [("\n".join(lines[i:i + RAW_BATCH]) + "\n").encode() for i in range(0, N_POINTS, RAW_BATCH)]
        raw_write = bulk_write = 0.0
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for run in range(REPEATS):
                # Alternate which goes first so a server warming up favours neither.
                for which in (("raw", "store") if run % 2 == 0 else ("store", "raw")):
                    db = f"bench_{which}_{run}"
                    client.post("/query", data={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()
                    if which == "raw":
                        t = time.perf_counter()
                        for body in bodies:
                            client.post("/write", params={"db": db, "precision": "ns"},
                                        content=body).raise_for_status()
                        raw_write = max(raw_write, N_POINTS / (time.perf_counter() - t))
                    else:
                        store = InfluxStore(server.url, database=db, batch_size=5000, spool_dir=None)
                        store.version()
                        t = time.perf_counter()
                        written = store.write(pts)
                        bulk_write = max(bulk_write, written / (time.perf_counter() - t))
                        store.close()
                    client.post("/query", data={"q": f'DROP DATABASE "{db}"'})
        store = InfluxStore(server.url, database="bench", batch_size=5000, spool_dir=None)
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
            "points": N_POINTS,
            "format_bulk_points_per_s": round(bulk_fmt),
            "format_naive_points_per_s": round(naive_fmt),
            "format_speedup": round(bulk_fmt / naive_fmt, 2),
            "write_bulk_points_per_s": round(bulk_write),
            "write_raw_post_points_per_s": round(raw_write),
            "write_vs_raw_ratio": round(bulk_write / raw_write, 2),
            "write_naive_per_point_post_points_per_s": round(naive_write),
            "write_speedup": round(bulk_write / naive_write, 1),
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
