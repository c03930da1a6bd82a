"""Session recording and replay at full chain on the simulated exchange.

Figures (the issue's goals):
- recording's CPU per cycle, as a share of one core at the collection interval (goal <= 5 %);
- bytes of a recorded day, extrapolated from the recorded cycles to a 09:15-15:30 session
  (goal <= 200 MB), at the default 30 s interval and at Kite's fastest REST cadence (one
  500-instrument call a second), each recorded at its own pace (the fast one over more than a
  five-minute frame of the day file, as packed quotes refer back within a frame);
- a day of ticks at full chain (three connections, a frame a second each, as Kite streams) in
  full mode and in quote mode: bytes and CPU of packed frames (format 3), against format 2's
  packing and the frames recorded as received, each recorded over `STREAM_SECONDS` of exchange
  time (two five-minute frames of the day file) and extrapolated linearly to the 22,500 s of a
  09:15-15:30 session (a day file is a run of such frames, each starting over);
- a whole full-chain day at the tick cadence (`snapshot_s` 1) as the product records it: the
  instrument dump, every connection's frames and each snapshot's streamed calls (the index spots
  and the leg batches, written as StreamingSource writes them), the index beside; recorded over
  `STREAM_SECONDS` and extrapolated linearly to a session (the dump once), with the bytes of each
  record kind (decompressed; and compressed when recorded alone). Measured on the shared 2-core
  machine, 2,867 instruments in full mode, 8 calls a snapshot, the two formats run one after
  the other: format 3 wrote 190 MB a day (ticks alone 179 MB; the calls' key lists 4 GB a day
  decompressed, 3 MB alone compressed, and 8 MB more by crowding the ticks out of the
  compressor's window) at 1.0 % of a core; format 4 (repeated calls as references: 0.02 GB
  decompressed, 1.9 MB compressed; a tick-book checkpoint opening each frame: about 1 MB) 182 MB
  at 0.9 % (the load of the shared machine moves these by a few tenths);
- the frame span N (each frame opens with a checkpoint, so a seek reads at most N of ticks),
  over `SPAN_SECONDS`: 1 min 213 MB a day and a seek of 0.7 s of CPU at most, 2 min 190 MB and
  1.7 s, 5 min 176 MB and 3.4 s, 10 min 171 MB and 5.6 s: five minutes (`FRAME_SPAN_S`) keeps
  the day inside 200 MB and a jump within a few seconds (an hour of ticks, read before format
  4, is about 37 s of CPU);
- replay at 60x: the replayed engine's cycle (same analytics, SQLite store, JSON/CSV files) must
  take less than interval / 60 of real time to keep up; on a streamed day the cycle's thread
  also reads, unpacks, parses and books the interval's recorded ticks (measured on the full-mode
  tick day: read_day, parse_frame, TickBook.add, as ReplaySource does).

Full chain: every listed strike of the two nearest expiries of all five indices (legs for all),
every expiry quoted for the chain aggregates. Run: `python benchmarks/bench_recording.py`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from optui.collectors.engine import CollectionEngine
from optui.collectors.recording import (
    TICK_PACKED,
    TICKS,
    ReadHealth,
    Recorder,
    RecordingSource,
    day_path,
    read_day,
)
from optui.collectors.replay_source import ReplaySource
from optui.collectors.sim_source import SimulatedSource
from optui.config import Settings
from optui.indices import INDEX_KEYS
from optui.storage.sqlite_store import SQLiteStore
from optui.timeutil import IST

START = datetime(2026, 11, 25, 9, 20, tzinfo=IST)
SESSION_S = 6 * 3600 + 15 * 60  # 09:15 to 15:30
CYCLES = 8
STREAM_SECONDS = 600
FAST_CYCLES = 40
INTERVAL_S = 30.0
CPU_GOAL = 0.05
BYTES_GOAL = 200e6
SPEED = 60.0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class TimedRecorder(Recorder):
    """A Recorder that adds up the CPU time (this thread) its calls take."""

    cpu_s = 0.0

    def record_quotes(self, at, keys, data) -> None:  # noqa: ANN001 - as Recorder's
        t0 = time.thread_time()
        super().record_quotes(at, keys, data)
        self.cpu_s += time.thread_time() - t0

    def record_instruments(self, at, instruments, warnings) -> None:  # noqa: ANN001
        t0 = time.thread_time()
        super().record_instruments(at, instruments, warnings)
        self.cpu_s += time.thread_time() - t0

    def record_ticks(self, at, payload) -> None:  # noqa: ANN001
        t0 = time.thread_time()
        super().record_ticks(at, payload)
        self.cpu_s += time.thread_time() - t0

    def record_stream_answer(self, at, keys, stream, tokens, polled) -> None:  # noqa: ANN001
        t0 = time.thread_time()
        super().record_stream_answer(at, keys, stream, tokens, polled)
        self.cpu_s += time.thread_time() - t0

    def flush(self) -> None:
        t0 = time.thread_time()
        super().flush()
        self.cpu_s += time.thread_time() - t0


def full_chain_settings() -> Settings:
    s = Settings()
    s.source.indices = list(INDEX_KEYS)
    s.source.interval_s = INTERVAL_S
    s.source.chain_strikes = 0
    s.source.full_chain_expiries = 2
    s.participants.enabled = False
    return s


def record(root: Path, settings: Settings, interval: float, cycles: int) -> dict:
    """Collect `cycles` cycles `interval` seconds apart (exchange time) with recording on."""
    clock = Clock()
    sim = SimulatedSource(seed=7, start=START, clock=clock)
    recorder = TimedRecorder(root / "rec", sim.name, sim.label, flusher=False)
    engine = CollectionEngine(settings, RecordingSource(sim, recorder), None, state_dir=root / "s")
    path = day_path(root / "rec", START.date())
    cycle_s, per_cycle_cpu, first_size = [], [], 0
    for _ in range(cycles):
        before = recorder.cpu_s
        t0 = time.perf_counter()
        engine.collect_once()
        recorder.flush()  # the flusher thread's work, once per cycle
        cycle_s.append(time.perf_counter() - t0)
        per_cycle_cpu.append(recorder.cpu_s - before)
        first_size = first_size or path.stat().st_size
        clock.t += interval
    recorder.close()
    size = path.stat().st_size
    # The first cycle carries the day's instrument dump; later ones are what a day repeats.
    per_cycle = (size - first_size) / (cycles - 1)
    return {"path": path, "instruments": engine.last.instruments, "calls": engine.last.quote_calls,
            "cycle_s": statistics.median(cycle_s), "first_cpu": per_cycle_cpu[0],
            "cpu": statistics.median(per_cycle_cpu[1:]), "size": size, "per_cycle": per_cycle,
            "day": first_size + per_cycle * (SESSION_S / interval - 1)}


def frame_seconds(mode: int, tokens: list[int] | None = None,
                  seconds: Iterable[int] = ()) -> Iterator[list[bytes]]:
    """Per simulated second (seconds after START), the simulator's ticker frames for the full
    chain (indices, futures and every option of the two nearest expiries of the five indices;
    or the instrument `tokens` given) over three connections, one each (b"" for a connection's
    second when none of its instruments changed)."""
    from optui.collectors.ticker_source import plan_shards
    from optui.simulator.exchange import SimulatedExchange
    from optui.simulator.ticker import ChangedTicks, exchange_frame
    from optui.tick_packets import MODE_NAMES

    clock = Clock()
    exchange = SimulatedExchange(seed=7, start=START, clock=clock)
    rows = exchange.instruments()
    expiries: dict[str, set] = {}
    for r in rows:
        if r.expiry is not None and r.instrument_type in ("CE", "PE"):
            expiries.setdefault(r.index_key, set()).add(r.expiry)
    near = {k: sorted(v)[:2] for k, v in expiries.items()}
    if tokens is None:
        tokens = [r.instrument_token for r in rows if r.is_index or (
            r.expiry is not None and r.expiry in near.get(r.index_key, ()))]
    shards = [s for s in plan_shards(dict.fromkeys(tokens, MODE_NAMES[mode])) if s]
    sent = [ChangedTicks() for _ in shards]  # each connection sends only what changed
    for second in seconds:
        clock.t = float(second)
        yield [exchange_frame(exchange, {t: mode for t in shard}, changes)
               for shard, changes in zip(shards, sent, strict=True)]


def stream_frames(mode: int, seconds: int,
                  tokens: list[int] | None = None) -> tuple[list[bytes], int]:
    """`frame_seconds` over the first `seconds`, as one list (three frames a second), and the
    instruments streamed."""
    frames = [f for each in frame_seconds(mode, tokens, range(seconds)) for f in each]
    if tokens is None:
        from optui.simulator.exchange import SimulatedExchange

        rows = SimulatedExchange(seed=7, start=START, clock=Clock()).instruments()
        expiries: dict[str, set] = {}
        for r in rows:
            if r.expiry is not None and r.instrument_type in ("CE", "PE"):
                expiries.setdefault(r.index_key, set()).add(r.expiry)
        near = {k: sorted(v)[:2] for k, v in expiries.items()}
        return frames, sum(1 for r in rows if r.is_index or (
            r.expiry is not None and r.expiry in near.get(r.index_key, ())))
    return frames, len(tokens)


def record_stream(root: Path) -> dict[int, Path]:
    """A day of ticks at full chain: recorded as packed frames (format 3), against format 2's
    packing and the frames as they come (format 1) in the same run. Returns the format-3 day
    file of each mode."""
    from optui.collectors.tick_pack import pack_ticks
    from optui.tick_packets import MODE_FULL, MODE_QUOTE

    paths = {}
    for mode, what in ((MODE_FULL, "full mode (depth)"), (MODE_QUOTE, "quote mode")):
        frames, instruments = stream_frames(mode, STREAM_SECONDS)
        per = len(frames) // STREAM_SECONDS
        sizes, cpus = {}, {}
        for name in ("packed", "format 2", "as received"):
            folder = root / f"ticks-{mode}-{name}"
            recorder = TimedRecorder(folder, "sim", "SIMULATED", flusher=False)
            for k, frame in enumerate(frames):
                at = START + timedelta(seconds=k // per)
                t0 = time.thread_time()
                if not frame:  # nothing changed on that connection: only a heartbeat came
                    pass
                elif name == "packed":
                    recorder.record_ticks(at, frame)
                elif name == "format 2":  # packed against the frame's format-2 tick state
                    recorder._write(TICK_PACKED, at, lambda _q, frame=frame, r=recorder:
                                    pack_ticks(frame, r._writer.codecs.ticks_v2))  # type: ignore[union-attr]
                else:  # format 1: every frame kept whole
                    recorder._write(TICKS, at, lambda _state, frame=frame: frame)
                recorder.cpu_s += time.thread_time() - t0
                if (k + 1) % per == 0:
                    recorder.flush()  # the flusher thread's work, once a second
            recorder.close()
            path = day_path(folder, START.date())
            sizes[name] = path.stat().st_size / STREAM_SECONDS * SESSION_S
            cpus[name] = recorder.cpu_s / STREAM_SECONDS
            if name == "packed":
                paths[mode] = path
        raw = sum(len(f) for f in frames) / STREAM_SECONDS
        print(f"ticks, {instruments} instruments in {what}, {raw / 1e3:.0f} KB/s received, "
              f"{STREAM_SECONDS} s recorded: packed {sizes['packed'] / 1e6:.0f} MB a day at "
              f"{cpus['packed'] * 100:.2f} % of a core (goals <= {BYTES_GOAL / 1e6:.0f} MB: "
              f"{'ok' if sizes['packed'] <= BYTES_GOAL else 'MISSED'}, <= {CPU_GOAL * 100:.0f} %: "
              f"{'ok' if cpus['packed'] <= CPU_GOAL else 'MISSED'}); format 2 "
              f"{sizes['format 2'] / 1e6:.0f} MB at {cpus['format 2'] * 100:.2f} %; frames as "
              f"received {sizes['as received'] / 1e6:.0f} MB at {cpus['as received'] * 100:.2f} %")
    return paths


class CallSpy(SimulatedSource):
    """The simulator, keeping the key list of every quote call the engine makes."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[list[str]] = []

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        self.calls.append(list(keys))
        return super().quote_batch(keys)


def snapshot_calls(root: Path) -> tuple[list, list[list[str]], dict[str, int]]:
    """The instrument dump, the key lists of one full-chain snapshot's quote calls (the index
    spots, then the leg batches) as the engine makes them, and the spots' tokens."""
    sim = CallSpy(seed=7, start=START, clock=Clock())
    engine = CollectionEngine(full_chain_settings(), sim, None, state_dir=root / "calls")
    engine.collect_once()
    engine.close()
    dump, calls = sim.instruments(), list(sim.calls)
    spots = {k: q["instrument_token"] for k, q in sim.quote_batch(calls[0]).items()}
    return dump, calls, spots


KIND_GROUPS = {"tick frames": ("tick columns", "ticks", "packed ticks"),
               "tick-book checkpoints": ("tick book", "tick book columns"),
               "streamed calls": ("stream quotes", "stream call"),
               "dump and meta": ("instruments", "meta")}


def record_tick_day(root: Path, frames: list[bytes], per: int, dump: list,
                    calls: list[list[str]], token: dict[str, int], parts: tuple[str, ...] = ("dump", "ticks", "calls"),
                    seconds: int = STREAM_SECONDS) -> dict:
    """A streamed full-chain session at the tick cadence, recorded as StreamingSource records
    it: the instrument dump, then each exchange second the connections' frames (`per` a
    second, as received) and the snapshot's streamed calls (index spots, then each leg batch,
    all answered from the ticks, 50 ms after the second's frames), the recorder flushed once a
    second (its flusher thread's work). `parts` leaves some out (to size one kind alone).
    Returns the day file, its one-off bytes (meta and dump), size, index size and CPU."""
    from optui.collectors.recording import index_path

    folder = root / ("tickday-" + "-".join(parts))
    recorder = TimedRecorder(folder, "sim", "SIMULATED", flusher=False)
    recorder.meta["snapshot_s"] = 1.0
    path = day_path(folder, START.date())
    one_off = 0
    if "dump" in parts:
        recorder.record_instruments(START, dump, [])
        recorder.flush()
        one_off = path.stat().st_size
        recorder.cpu_s = 0.0
    plans = [(keys, [token[k] for k in keys]) for keys in calls]
    for second in range(seconds):
        at = START + timedelta(seconds=second)
        if "ticks" in parts:
            for frame in frames[second * per:(second + 1) * per]:
                if frame:  # b"": nothing changed on that connection, only a heartbeat came
                    recorder.record_ticks(at, frame)
        if "calls" in parts:
            asked = at + timedelta(milliseconds=50)
            for keys, tokens in plans:
                recorder.record_stream_answer(asked, keys, keys, tokens, {})
        recorder.flush()
    recorder.close()
    size = path.stat().st_size
    return {"path": path, "one_off": one_off, "size": size, "cpu": recorder.cpu_s / seconds,
            "index": index_path(path).stat().st_size, "seconds": seconds,
            "day": one_off + (size - one_off) * SESSION_S / seconds,
            "index_day": index_path(path).stat().st_size * SESSION_S / seconds}


def stored_by_kind(path: Path) -> dict[str, int]:
    """Bytes each record kind takes in the decompressed day file (headers included)."""
    from optui.collectors.recording import HEADER, KIND_NAMES

    out: dict[str, int] = {}
    for rec in read_day(path, None, ReadHealth(), unpack=False):
        name = KIND_NAMES.get(rec.kind, str(rec.kind))
        out[name] = out.get(name, 0) + HEADER.size + len(rec.payload)
    return out


def tick_cadence_day(root: Path) -> Path:
    """A whole full-chain day as the product records it at the tick cadence (`snapshot_s` 1):
    ticks, streamed calls, dump, index. Recorded over STREAM_SECONDS (two five-minute frames)
    and extrapolated linearly to the 22,500 s of a 09:15-15:30 session (the dump once; the
    simulated market ticks at one steady pace all day, a real one faster at the open and close).
    Each part is also recorded alone to size it compressed. Returns the whole day file."""
    from optui.tick_packets import MODE_FULL

    dump, calls, spots = snapshot_calls(root)
    token = {**{i.key: i.instrument_token for i in dump}, **spots}
    subscribed = list(dict.fromkeys(token[k] for keys in calls for k in keys))
    frames, instruments = stream_frames(MODE_FULL, STREAM_SECONDS, subscribed)
    per = len(frames) // STREAM_SECONDS
    whole = record_tick_day(root, frames, per, dump, calls, token)
    kinds = stored_by_kind(whole["path"])
    scale = SESSION_S / STREAM_SECONDS
    print(f"a full-chain day at the tick cadence as recorded: {instruments} instruments "
          f"streamed in full mode, {len(calls)} streamed calls a snapshot (index spots and "
          f"{len(calls) - 1} leg batches), {STREAM_SECONDS} s recorded: "
          f"{whole['day'] / 1e6:.0f} MB a day + index {whole['index_day'] / 1e3:.0f} KB "
          f"(goal <= {BYTES_GOAL / 1e6:.0f} MB: {'ok' if whole['day'] <= BYTES_GOAL else 'MISSED'})"
          f" at {whole['cpu'] * 100:.2f} % of a core (goal <= {CPU_GOAL * 100:.0f} %: "
          f"{'ok' if whole['cpu'] <= CPU_GOAL else 'MISSED'})")
    alone = {"tick frames": ("ticks",), "streamed calls": ("calls",)}
    for group, names in KIND_GROUPS.items():
        stored = sum(v for k, v in kinds.items() if k in names)
        if not stored:
            continue
        once = group == "dump and meta"
        line = (f"  {group}: {stored / 1e6 if once else stored * scale / 1e9:.2f} "
                f"{'MB once' if once else 'GB a day'} decompressed")
        if group in alone:
            part = record_tick_day(root, frames, per, dump, calls, token, alone[group])
            line += (f", alone compressed {part['day'] / 1e6:.1f} MB a day at "
                     f"{part['cpu'] * 100:.2f} % of a core")
        elif once:
            line += f", compressed {whole['one_off'] / 1e6:.2f} MB"
        print(line)
    return whole["path"]


SPANS_S = (60, 120, 300, 600)
SPAN_SECONDS = 1200


def seek_cost(path: Path) -> tuple[float, int]:
    """CPU seconds (this thread) and tick records of the costliest seek into a recorded tick
    day: from the last whole frame's checkpoint through all of its ticks (a seek to the end of
    a frame), read, unpacked, parsed and booked as ReplaySource does."""
    from optui.collectors.recording import TICK_BOOK, read_index
    from optui.collectors.tick_book import TickBook
    from optui.tick_packets import parse_frame

    index = read_index(path)
    since, until = index[-2][1], index[-1][1]
    book, read = TickBook(), 0
    t0 = time.thread_time()
    for rec in read_day(path, datetime.fromtimestamp(since / 1e6, IST), ReadHealth()):
        if rec.at_us >= until:
            break
        if rec.kind in (TICKS, TICK_BOOK):
            book.add(parse_frame(rec.payload))
            read += 1
    return time.thread_time() - t0, read


def checkpoint_spans(root: Path) -> None:
    """The frame span N (a tick-book checkpoint opens each frame): a whole tick-cadence day's
    size against the costliest seek (a checkpoint and N of ticks), each N recorded over
    SPAN_SECONDS and extrapolated as `tick_cadence_day` does."""
    from optui.collectors import record_writer
    from optui.tick_packets import MODE_FULL

    dump, calls, spots = snapshot_calls(root)
    token = {**{i.key: i.instrument_token for i in dump}, **spots}
    subscribed = list(dict.fromkeys(token[k] for keys in calls for k in keys))
    frames, _ = stream_frames(MODE_FULL, SPAN_SECONDS, subscribed)
    per = len(frames) // SPAN_SECONDS
    kept = record_writer.FRAME_SPAN_S
    try:
        for span in SPANS_S:
            record_writer.FRAME_SPAN_S = float(span)
            day = record_tick_day(root / f"span-{span}", frames, per, dump, calls, token,
                                  seconds=SPAN_SECONDS)
            cpu, read = seek_cost(day["path"])
            print(f"  frames of {span // 60:g} min: {day['day'] / 1e6:.0f} MB a day at "
                  f"{day['cpu'] * 100:.2f} % of a core; a seek reads at most the checkpoint "
                  f"and {read - 1} tick frames: {cpu * 1000:.0f} ms of CPU")
    finally:
        record_writer.FRAME_SPAN_S = kept


def replay_ticks(path: Path) -> float:
    """CPU seconds (this thread) per recorded second to read, unpack, parse and book a recorded
    tick day, as ReplaySource applies TICKS records."""
    from optui.collectors.tick_book import TickBook
    from optui.tick_packets import parse_frame

    book = TickBook()
    health = ReadHealth()
    t0 = time.thread_time()
    for rec in read_day(path, None, health):
        if rec.kind == TICKS:
            book.add(parse_frame(rec.payload))
    spent = time.thread_time() - t0
    assert health.bad_frames == 0 and not health.cut
    return spent / STREAM_SECONDS


def main() -> None:
    settings = full_chain_settings()
    with tempfile.TemporaryDirectory(prefix="optui-bench-rec-") as tmp:
        root = Path(tmp)
        slow = record(root / "default", settings, INTERVAL_S, CYCLES)
        calls = slow["calls"]
        # At Kite's fastest REST cadence (one call a second, `calls` calls a cycle), long enough
        # to span a whole frame of the day file.
        fast = record(root / "fast", settings, float(calls), FAST_CYCLES)
        print(f"full chain: {slow['instruments']} instruments in {calls} quote calls per cycle; "
              f"collection cycle {slow['cycle_s'] * 1000:.0f} ms (median, with recording)")
        print(f"recording CPU per cycle: {slow['cpu'] * 1000:.1f} ms (first cycle with the "
              f"instrument dump {slow['first_cpu'] * 1000:.0f} ms)")
        for interval, what, res in ((INTERVAL_S, "default interval", slow),
                                    (float(calls), "Kite's fastest REST cadence", fast)):
            share = res["cpu"] / interval
            day = res["day"]
            n = FAST_CYCLES if res is fast else CYCLES
            print(f"  every {interval:g} s ({what}, {n} "
                  f"cycles recorded): {share * 100:.2f} % of a core "
                  f"(goal <= {CPU_GOAL * 100:.0f} %: {'ok' if share <= CPU_GOAL else 'MISSED'}); "
                  f"a day {day / 1e6:.0f} MB (goal <= {BYTES_GOAL / 1e6:.0f} MB: "
                  f"{'ok' if day <= BYTES_GOAL else 'MISSED'}); {res['per_cycle'] / 1e3:.0f} KB a cycle")
        path = slow["path"]
        tick_days = record_stream(root)
        from optui.tick_packets import MODE_FULL

        tick_s = replay_ticks(tick_days[MODE_FULL])
        print(f"replaying the full-mode tick day: {tick_s * 1000:.1f} ms of CPU per recorded "
              f"second to read, unpack, parse and book its ticks ({tick_s * SPEED * 100:.0f} % "
              f"of a core at {SPEED:g}x)")
        tick_cadence_day(root / "cadence")
        print("tick-book checkpoints (one opens each frame of the day file): frame span "
              "against day size and seek")
        checkpoint_spans(root / "spans")

        # Replay at 60x through the same engine: the replay source's own work, then whole cycles
        # (analytics, SQLite store, and the JSON/CSV files too). The replayed clock moves one
        # interval a cycle; a cycle must take under interval / 60 of real time to keep up. Leg
        # files are written by two threads beside the cycle's own, so a cycle keeps up on this
        # 2-core machine when its own thread's CPU is within the budget and the process's CPU
        # within two cores' worth (wall times here depend on what else the machine runs).
        budget = INTERVAL_S / SPEED
        for label, legs, files in (("full-chain legs, store", 2, False),
                                   ("full-chain legs, store + JSON/CSV", 2, True),
                                   ("default legs, store + JSON/CSV", 0, True)):
            replay = ReplaySource(path, speed=None)
            own = [0.0]
            batch = replay.quote_batch

            def timed(keys, batch=batch, own=own):  # noqa: ANN001, ANN202
                t0 = time.thread_time()
                out = batch(keys)
                own[0] += time.thread_time() - t0
                return out

            replay.quote_batch = timed  # type: ignore[method-assign]
            settings.export.write_json = settings.export.write_csv = files
            settings.source.full_chain_expiries = legs
            store = SQLiteStore(root / f"replay-{label}.db")
            engine2 = CollectionEngine(settings, replay, store, out_dir=root / f"files-{label}",
                                       state_dir=root / f"s-{label}")
            wall, cpu, proc, source_s = [], [], [], []
            for _ in range(CYCLES):
                own[0] = 0.0
                t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
                engine2.collect_once()
                wall.append(time.perf_counter() - t0)
                cpu.append(time.thread_time() - c0)
                proc.append(time.process_time() - p0)
                source_s.append(own[0])
                replay.advance(INTERVAL_S)
            engine2.close()
            need, total = statistics.median(cpu[1:]), statistics.median(proc[1:])
            ok = need <= budget and total <= 2 * budget
            print(f"replay at {SPEED:g}x ({label}): cycle CPU {need * 1000:.0f} ms median, "
                  f"{total * 1000:.0f} ms with the file writers (wall "
                  f"{statistics.median(wall[1:]) * 1000:.0f} ms on this shared machine), "
                  f"of which reading the recording {statistics.median(source_s[1:]) * 1000:.0f} ms; "
                  f"budget {budget * 1000:.0f} ms: {'keeps up' if ok else 'FALLS BEHIND'}")
            # A streamed day: the cycle's thread also books the interval's recorded ticks.
            streamed = need + tick_s * INTERVAL_S
            print(f"  on a full-chain full-mode streamed day: cycle thread {streamed * 1000:.0f} ms "
                  f"(+ {tick_s * INTERVAL_S * 1000:.0f} ms of ticks) against {budget * 1000:.0f} "
                  f"ms: {'keeps up' if streamed <= budget else 'FALLS BEHIND'}")

if __name__ == "__main__":
    main()
