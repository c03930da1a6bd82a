"""The recorder's start: converting the instrument dump into an INSTRUMENTS record.

Figures, in the same run: the rows as `dataclasses.asdict` made them (the earlier conversion)
against `instrument_rows` (one attribute getter per row), and the whole `record_instruments`
(rows, JSON, compression), for the simulator's dump and for a Kite-sized dump of about
100,000 rows (the simulator's rows repeated). Run: `python benchmarks/bench_record_instruments.py`.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from optui.collectors.record_format import instrument_rows
from optui.collectors.recording import Recorder
from optui.collectors.sim_source import SimulatedSource


def _best(run, repeat: int = 3) -> float:  # noqa: ANN001 - a callable
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def _record(instruments: list) -> None:  # noqa: ANN001
    with tempfile.TemporaryDirectory() as tmp:
        recorder = Recorder(Path(tmp), "sim", "SIMULATED", flusher=False)
        recorder.record_instruments(datetime(2026, 11, 25, 3, 0, tzinfo=UTC), instruments, [])
        recorder.close()


def main() -> None:
    dump = SimulatedSource(seed=7).instruments()
    for label, rows in (("simulator", dump), ("Kite-sized", dump * 16)):
        before = _best(lambda rows=rows: [asdict(i) for i in rows])
        after = _best(lambda rows=rows: instrument_rows(rows))
        whole = _best(lambda rows=rows: _record(rows))
        print(f"{label} dump, {len(rows):,} rows: asdict {before:.3f} s, instrument_rows {after:.3f} s "
              f"({before / after:.0f}x); record_instruments in all {whole:.3f} s")


if __name__ == "__main__":
    main()
