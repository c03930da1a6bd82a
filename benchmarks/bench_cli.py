"""`optui --help` start-up time vs a CLI that imports its heavy libraries eagerly (same run)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 7
HEAVY = "import numpy, scipy.special, textual.app, kiteconnect, influxdb_client, redis, httpx"


def _time(cmd: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> dict[str, float]:
    optui = shutil.which("optui") or str(Path(sys.executable).with_name("optui"))
    ours = _time([optui, "--help"])
    naive = _time([sys.executable, "-c", f"{HEAVY}; import optui.cli as c; c.app(['--help'], standalone_mode=False)"])
    print(f"optui --help median of {RUNS}: {ours * 1000:.0f} ms (goal <= 300 ms)")
    print(f"eager-import baseline:        {naive * 1000:.0f} ms  -> {naive / ours:.1f}x slower than optui")
    return {"help_s": ours, "eager_s": naive, "ratio": naive / ours}


if __name__ == "__main__":
    main()
