"""Backup of a large SQLite store while a collector writes: no cycle missed.

Builds a store of OPTUI_BENCH_BACKUP_MB megabytes (default 1024, the goal's 1 GB: about 50 s in
all on a 2-core machine; set it lower on a slow disk) of random leg frames, starts a writer in another process
(benchmarks/backup_writer.py: one cycle of 1,000 legs plus overviews every
OPTUI_BENCH_BACKUP_CADENCE_S seconds, default 1 s, thirty times the collector's default cadence),
measures its cycles for a quiet window, then runs `optui.storage.backup.backup` while it keeps
writing. Figures: copy rate (the online copy, the checksums and the quick_check of the copy), the
writer's cycles during the backup, how many missed their slot (finished after the next cycle was
due), its worst write time with and without the backup, and the time a 1 GB store would take at
the measured rate (a linear extrapolation when the store is not 1 GB: the copy is sequential I/O
and hashing). The store was just written, so it is read from the page cache: a cold read from
disk adds the disk's sequential read time (about 1 GB / its MB/s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from optui.config import Settings
from optui.storage.backup import backup
from optui.storage.base import FrozenTags, time_to_ns
from optui.storage.sqlite_store import SQLiteStore

HERE = Path(__file__).resolve().parent
SIZE_MB = float(os.environ.get("OPTUI_BENCH_BACKUP_MB", "1024"))
CADENCE_S = float(os.environ.get("OPTUI_BENCH_BACKUP_CADENCE_S", "1.0"))
LEGS = 1000  # one frame per moment: 5 indices x 4 buckets x 2 sides x 25 strikes
FIELDS = 26
QUIET_S = 8.0


def build(path: Path, size_mb: float) -> int:
    """Fill a store with about `size_mb` MB of random leg frames; the number of frames."""
    rng = np.random.default_rng(5)
    tags = [FrozenTags({"index": f"I{i // 200}", "bucket": f"b{(i // 50) % 4}",
                        "side": "CALL" if i % 2 else "PUT", "strike_offset": str(i % 25)})
            for i in range(LEGS)]
    names = [f"f{j}" for j in range(FIELDS)]
    frame_bytes = LEGS * FIELDS * 8
    frames = max(1, int(size_mb * 1e6 / frame_bytes))
    t0 = datetime(2026, 1, 1, 3, 45, tzinfo=UTC)
    per_batch = 5
    with SQLiteStore(path) as store:
        for first in range(0, frames, per_batch):
            n = min(per_batch, frames - first)
            times = [time_to_ns(t0 + timedelta(seconds=30 * (first + k)))
                     for k in range(n) for _ in range(LEGS)]
            values = rng.random((FIELDS, n * LEGS))
            store.write_columns("atm_options", tags * n, times,
                                {name: values[j] for j, name in enumerate(names)})
    return frames


def _cycles(path: Path) -> list[tuple[float, float, float]]:
    return [tuple(c) for c in json.loads(path.read_text())]  # type: ignore[misc]


def _window(cycles: list[tuple[float, float, float]], start: float, end: float) -> dict[str, float]:
    inside = [c for c in cycles if start <= c[0] < end]
    missed = sum(1 for due, _b, done in inside if done > due + CADENCE_S)
    worst = max((done - began for _d, began, done in inside), default=float("nan"))
    return {"cycles": float(len(inside)), "missed": float(missed), "worst_write_s": worst}


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="optui-bench-backup-") as tmp:
        base = Path(tmp)
        db = base / "data" / "optui.db"
        t = time.perf_counter()
        frames = build(db, SIZE_MB)
        build_s = time.perf_counter() - t
        size = db.stat().st_size
        stop, out = base / "stop", base / "cycles.json"
        writer = subprocess.Popen(
            [sys.executable, str(HERE / "backup_writer.py"), str(db), str(CADENCE_S), str(stop),
             str(out)], stdin=subprocess.DEVNULL,
        )
        try:
            quiet_start = time.time()
            time.sleep(QUIET_S)
            quiet_end = backup_start = time.time()
            settings = Settings()
            settings.general.data_dir = str(base / "data")
            report = backup(settings, base / "bk", f"sqlite:///{db}")
            backup_end = time.time()
            time.sleep(2 * CADENCE_S)
        finally:
            stop.touch()
            writer.wait(timeout=120)
        cycles = _cycles(out)
        quiet = _window(cycles, quiet_start, quiet_end)
        during = _window(cycles, backup_start, backup_end)
        copied = report.files[f"store/{db.name}"]
    backup_s = backup_end - backup_start
    rate = copied / backup_s
    results = {
        "store_mb": size / 1e6, "frames": float(frames), "build_s": build_s,
        "backup_s": backup_s, "store_copy_s": report.store_seconds, "mb_per_s": rate / 1e6,
        "gb_extrapolated_s": 1e9 / rate, "cycles_during": during["cycles"],
        "missed_during": during["missed"], "worst_write_during_s": during["worst_write_s"],
        "cycles_quiet": quiet["cycles"], "missed_quiet": quiet["missed"],
        "worst_write_quiet_s": quiet["worst_write_s"],
    }
    print(f"store                      {size / 1e6:10,.0f} MB ({frames:,} frames of {LEGS:,} legs; "
          f"built in {build_s:.1f} s; OPTUI_BENCH_BACKUP_MB={SIZE_MB:g})")
    print(f"backup (copy + checks + SHA-256) {backup_s:6.1f} s  ({rate / 1e6:,.0f} MB/s; store copy "
          f"and quick_check {report.store_seconds:.1f} s)")
    if abs(size - 1e9) > 0.1e9:
        print(f"1 GB at this rate          {1e9 / rate:10.1f} s  (linear extrapolation, not measured)")
    print("  (the store was just written: read from the page cache, not cold from disk)")
    print(f"writer, one cycle per {CADENCE_S:g} s in another process:")
    print(f"  during the backup        {during['cycles']:4.0f} cycles, {during['missed']:.0f} missed, "
          f"worst write {during['worst_write_s'] * 1000:,.0f} ms")
    print(f"  quiet, before it         {quiet['cycles']:4.0f} cycles, {quiet['missed']:.0f} missed, "
          f"worst write {quiet['worst_write_s'] * 1000:,.0f} ms")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    verdict = "no cycle missed" if during["missed"] == 0 else f"{during['missed']:.0f} cycle(s) MISSED"
    print(f"goal: backup while collecting, no cycle missed: {verdict}")
    return results


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
