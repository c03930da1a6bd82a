"""Recorded ticker frames are packed on disk and read back as the exact frames received."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from optui.collectors.recording import (
    FRAME_SPAN_S,
    TICK_COLUMNS,
    TICKS,
    ReadHealth,
    Recorder,
    _decode_frame,
    _parse_records,
    day_path,
    frame_offsets,
    read_day,
)
from optui.collectors.tick_pack import TickPackError, TickState, pack_ticks, unpack_ticks
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.ticker import exchange_frame
from optui.tick_packets import HEARTBEAT, MODE_FULL, MODE_LTP, MODE_QUOTE
from optui.timeutil import IST

START = datetime(2026, 11, 17, 11, 0, tzinfo=IST)


class _Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


@cache
def _frames(seconds: int) -> tuple[bytes, ...]:
    """Two connections' frames a second: options in every mode, indices, a future."""
    clock = _Clock()
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    rows = exchange.instruments()
    near = min(r.expiry for r in rows if r.index_key == "NIFTY" and r.instrument_type == "CE")
    picked = [r.instrument_token for r in rows if r.is_index or (
        r.index_key == "NIFTY" and r.expiry == near)]
    shards = [{t: (MODE_FULL, MODE_QUOTE, MODE_LTP)[i % 3] for i, t in enumerate(picked[k::2])}
              for k in range(2)]
    out = []
    for s in range(seconds):
        clock.t = float(s)
        out.extend(exchange_frame(exchange, modes) for modes in shards)
    return tuple(out)


@pytest.mark.unit
def test_recorded_frames_read_back_byte_for_byte(tmp_path: Path) -> None:
    frames = list(_frames(4))
    odd = [HEARTBEAT, b"\x00\x02\x00\x08short", b"\x00\x00"]  # heartbeat, truncated, empty
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    sent = []
    for n, frame in enumerate(frames):
        at = START + timedelta(seconds=n // 2)
        recorder.record_ticks(at, frame)
        sent.append(frame)
        if n == 3:
            for extra in odd:
                recorder.record_ticks(at, extra)
                sent.append(extra)
    # A new Zstandard frame: its first ticks are packed against nothing.
    later = START + timedelta(seconds=FRAME_SPAN_S + 1)
    recorder.record_ticks(later, frames[0])
    sent.append(frames[0])
    recorder.close()
    path = day_path(tmp_path, START.date())
    health = ReadHealth()
    got = [r.payload for r in read_day(path, None, health) if r.kind == TICKS]
    assert got == sent and health.bad_frames == 0
    # On disk the well-formed frames (the empty one too) are packed, the others kept as they came.
    on_disk = []
    with open(path, "rb") as fh:
        for offset, _ in frame_offsets(path):
            data, _, _ = _decode_frame(fh, offset, None)
            on_disk += [r.kind for r in _parse_records(data, unpack=False)[0] if r.kind != 1]
    assert on_disk.count(TICK_COLUMNS) == len(frames) + 2 and on_disk.count(TICKS) == 2
    # Seeking into the second Zstandard frame reads its packed ticks without the first frame.
    tail = [r.payload for r in read_day(path, later) if r.kind == TICKS]
    assert tail == [frames[0]]


@pytest.mark.unit
def test_packed_frames_are_smaller_and_refuse_a_missing_reference() -> None:
    frames = list(_frames(4))
    state = TickState()
    packed = [pack_ticks(f, state) for f in frames]
    assert all(p is not None for p in packed)
    back = TickState()
    assert [unpack_ticks(p, back) for p in packed] == frames  # type: ignore[arg-type]
    with pytest.raises(TickPackError):
        unpack_ticks(packed[0][:-3], TickState())  # type: ignore[index]
    assert pack_ticks(b"\x00\x01\x00\x05abcde", TickState()) is None  # a layout Kite lacks
