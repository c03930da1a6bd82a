"""Run every benchmark (benchmarks/bench_*.py) and print their figures: `python benchmarks/run.py [name ...]`."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(names: list[str]) -> int:
    files = sorted(HERE.glob("bench_*.py"))
    if names:
        files = [f for f in files if any(n in f.stem for n in names)]
    failed = 0
    for path in files:
        print(f"\n=== {path.stem} ===", flush=True)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses in a benchmark look their module up here
        started = time.perf_counter()
        try:
            spec.loader.exec_module(module)
            module.main()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next benchmark
            failed += 1
            print(f"FAILED: {exc.__class__.__name__}: {exc}")
        print(f"({time.perf_counter() - started:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
