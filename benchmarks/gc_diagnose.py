"""Diagnosis run of bench_e2e's streamed phase: which collections run, what fills gen2, what
garbage forms cycles. `python benchmarks/gc_diagnose.py trace|saveall [seconds]`."""

from __future__ import annotations

import collections
import gc
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_e2e  # noqa: E402
from gc_trace import GcTrace  # noqa: E402
from sim_exchange import HeadlessCollect, free_port, start_simulator  # noqa: E402


def where(obj: Any) -> str:
    if isinstance(obj, types.FrameType):
        return f"frame {obj.f_code.co_filename.split('site-packages/')[-1]}:{obj.f_code.co_name}"
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__module__}.{obj.__qualname__}"
    if isinstance(obj, types.CellType):
        return "cell"
    if isinstance(obj, types.MethodType):
        return f"method {type(obj.__self__).__name__}.{obj.__func__.__name__}"
    if isinstance(obj, BaseException):
        return f"exception {type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(obj, types.TracebackType):
        return "traceback"
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def tally(objs: list[Any], top: int = 40) -> list[str]:
    c = collections.Counter(where(o) for o in objs)
    return [f"  {n:8d} {k}" for k, n in c.most_common(top)]


def headless(mode: str, seconds: float) -> None:
    """`optui collect`'s loop (Collector over a LocalFeed) at full chain, streamed."""
    with HeadlessCollect(bench_e2e.START) as run:
        run.start()
        time.sleep(bench_e2e.WARMUP_S)
        if mode == "saveall":
            gc.collect()
            gc.garbage.clear()
            gc.set_debug(gc.DEBUG_SAVEALL)
            time.sleep(seconds)
            gc.set_debug(0)
            garbage = list(gc.garbage)
            gc.garbage.clear()
            print(f"garbage in cycles over {seconds:.1f} s: {len(garbage)} objects")
            print("\n".join(tally(garbage, 40)))
        else:
            with GcTrace(sizes=mode == "sizes") as trace:
                time.sleep(seconds)
            gen2 = gc.get_objects(2)
            print(f"{len(trace.done)} collections; {run.collector.cycles} cycles; frozen "
                  f"{gc.get_freeze_count()}, gen2 now {len(gen2)}")
            print("\n".join(trace.summary(seconds)))
            print("\n".join(tally(gen2, 30)))
            del gen2
        run.stop(30)


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "trace"
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2][0].isdigit() else 20.0
    bench_e2e.STREAM_S = seconds
    inner = bench_e2e.run_dashboard
    out: dict[str, Any] = {}

    async def run(settings: Any, feed: Any, probe: Any, secs: float) -> dict[str, Any]:
        import asyncio

        async def watch() -> None:
            await asyncio.sleep(bench_e2e.WARMUP_S)
            if mode == "saveall":
                gc.collect()
                gc.garbage.clear()
                gc.set_debug(gc.DEBUG_SAVEALL)
                out["t0"] = time.perf_counter()
                await asyncio.sleep(secs)
                gc.set_debug(0)
                out["garbage"] = list(gc.garbage)
                gc.garbage.clear()
                out["secs"] = time.perf_counter() - out["t0"]
            else:
                trace = GcTrace(sizes=mode == "sizes")
                with trace:
                    t0 = time.perf_counter()
                    await asyncio.sleep(secs)
                out["trace"] = trace
                out["secs"] = time.perf_counter() - t0
                gen2 = gc.get_objects(2)
                out["gen2"] = tally(gen2, 50)
                out["gen2_n"] = len(gen2)
                out["frozen"] = gc.get_freeze_count()
                out["threshold"] = gc.get_threshold()
                del gen2

        task = asyncio.ensure_future(watch())
        result = await inner(settings, feed, probe, secs)
        await task
        return result

    if "--headless" in sys.argv:
        headless(mode, seconds)
        return
    bench_e2e.run_dashboard = run
    if "--nokeep" in sys.argv:
        next_cycle = bench_e2e.TimedFeed.next_cycle

        def unkept(self: Any, *a: Any, **k: Any) -> Any:
            c = next_cycle(self, *a, **k)
            self.kept = []
            return c

        bench_e2e.TimedFeed.next_cycle = unkept
    port = free_port()
    server = start_simulator(port, bench_e2e.START)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench_e2e.streamed(Path(tmp), port, bench_e2e.Probe())
    finally:
        server.terminate()
        server.wait(timeout=10)
    if mode == "saveall":
        garbage = out["garbage"]
        print(f"garbage in cycles over {out['secs']:.1f} s: {len(garbage)} objects")
        print("\n".join(tally(garbage, 60)))
        ids = {id(o): o for o in garbage}
        back: dict[int, list[Any]] = collections.defaultdict(list)
        for o in garbage:
            for r in gc.get_referents(o):
                if id(r) in ids:
                    back[id(r)].append(o)
        seen_kinds: set[str] = set()
        for o in garbage:
            kind = where(o)
            if kind in seen_kinds or kind in ("builtins.tuple", "builtins.list", "cell"):
                continue
            seen_kinds.add(kind)
            chain, cur = [kind], o
            for _ in range(8):
                refs = back.get(id(cur), [])
                if not refs:
                    break
                cur = refs[0]
                chain.append(where(cur))
            print("  <- ".join(chain))
    else:
        trace = out["trace"]
        print(f"over {out['secs']:.1f} s: {len(trace.done)} collections; threshold "
              f"{out['threshold']}, frozen {out['frozen']}, gen2 now {out['gen2_n']}")
        print("\n".join(trace.summary(out["secs"])))
        print("gen2 contents at the end:")
        print("\n".join(out["gen2"]))


if __name__ == "__main__":
    main()
