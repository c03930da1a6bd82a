"""A collector stand-in for bench_backup: another process writing one snapshot per cadence.

`python benchmarks/backup_writer.py DB CADENCE_S STOP_FILE OUT_JSON`: every CADENCE_S seconds (on a
fixed grid) writes one cycle of five indices x 200 legs plus overviews into the SQLite store DB, as
the live collector does, until STOP_FILE exists; then writes to OUT_JSON a list of cycles
[scheduled_at, write_started, write_finished] (epoch seconds). A cycle is missed when its write
finishes after the next cycle was due.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sqlite_ingest import make_snapshot  # noqa: E402

from optui.storage.records import write_snapshot  # noqa: E402
from optui.storage.sqlite_store import SQLiteStore  # noqa: E402


def main(db: str, cadence_s: float, stop_file: str, out_json: str) -> None:
    rng = random.Random(11)
    at = datetime(2027, 1, 4, 3, 45, tzinfo=UTC)  # after everything the benchmark preloads
    snaps = [make_snapshot(at + timedelta(seconds=30 * i), rng) for i in range(40)]
    cycles: list[tuple[float, float, float]] = []
    store = SQLiteStore(db)
    start = time.time()
    k = 0
    try:
        while not Path(stop_file).exists():
            due = start + k * cadence_s
            time.sleep(max(0.0, due - time.time()))
            began = time.time()
            snap = snaps[k % len(snaps)]
            # A new moment each cycle (the prepared snapshots repeat with their times moved on).
            snap.timestamp = at + timedelta(seconds=30 * k)
            for index in snap.indices.values():
                index.overview.timestamp = snap.timestamp
                for leg in index.legs:
                    leg.timestamp = snap.timestamp
            write_snapshot(store, snap)
            cycles.append((due, began, time.time()))
            k += 1
    finally:
        store.close()
        Path(out_json).write_text(json.dumps(cycles), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4])
