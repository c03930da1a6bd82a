"""Format 3's packed tick frames: exact round trips over real packets, format 2 files still
replaying, and a recorder killed with SIGKILL losing at most its last second."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import struct
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optui.collectors.record_format import FrameCodecs
from optui.collectors.recording import (
    FORMAT_VERSION,
    META,
    QUOTE_PACKED,
    STREAM_CALL,
    STREAM_QUOTES,
    TICK_COLUMNS,
    TICK_PACKED,
    TICKS,
    ReadHealth,
    Recorder,
    _decode_frame,
    _parse_records,
    day_path,
    frame_offsets,
    read_day,
)
from optui.collectors.replay_source import ReplaySource
from optui.collectors.tick_columns import (
    TickColumnsError,
    TickColumnsState,
    pack_frame_columns,
    unpack_frame_columns,
)
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.ticker import ChangedTicks, exchange_frame
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, pack_frame, parse_frame
from optui.timeutil import IST

FIXTURES = Path(__file__).parent / "fixtures"
START = datetime(2026, 11, 17, 11, 0, tzinfo=IST)


def _packet(name: str) -> bytes:
    return base64.b64decode((FIXTURES / "kite" / f"ticker_{name}.packet").read_bytes())


def _frame(packets: list[bytes]) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(
        struct.pack(">H", len(p)) + p for p in packets)


def _index_packet(length: int) -> bytes:
    """An index packet (segment 9) of `length` bytes built from the full packet's prices."""
    batch = parse_frame(_frame([_packet("full")]))
    batch.instrument_token[:] = 256265
    batch.tradable[:] = False
    batch.mode[:] = {8: MODE_LTP, 28: MODE_QUOTE, 32: MODE_FULL}[length]
    frame = pack_frame(batch)
    return frame[4:]


REAL = {184: _packet("full"), 44: _packet("quote"), 8: _packet("full")[:8],
        28: _index_packet(28), 32: _index_packet(32)}
"""Zerodha's mock ticker packets (full and quote mode), their ltp form, and index packets."""

_change = st.tuples(st.integers(0, 45), st.integers(0, 2**32 - 1))
_packet_st = st.tuples(st.sampled_from(sorted(REAL)), st.integers(0, 5),
                       st.lists(_change, max_size=4), st.booleans())


def _variant(length: int, token_pick: int, changes: list[tuple[int, int]], small: bool) -> bytes:
    """A real packet with its token one of six and some words moved a little or set at will
    (any bytes: padding, order counts, wrap-around)."""
    words = np.frombuffer(REAL[length], dtype=">u4").astype(np.uint32)
    words[0] = (words[0] & 0xFF) | (0x3A0100 + token_pick) << 8  # keeps the segment byte
    width = length // 4
    for at, value in changes:
        j = 1 + at % (width - 1) if width > 1 else 0
        if small:
            words[j] = np.uint32((int(words[j]) + value % 41 - 20) % 2**32)
        else:
            words[j] = value
    return words.astype(">u4").tobytes()


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(_packet_st, max_size=8), min_size=1, max_size=6), st.integers(0, 6))
def test_packed_frames_give_back_each_frame_exactly(frames: list[list], reset: int) -> None:
    """Frames of real packets of every layout (tokens repeated within and across frames, words
    moved a little or set to anything) pack and unpack to the same bytes, so to the same
    parsed ticks; a new Zstandard frame (state cleared on both sides) starts over."""
    state, back = TickColumnsState(), TickColumnsState()
    for k, spec in enumerate(frames):
        if k == reset:
            state.clear()
            back.clear()
        frame = _frame([_variant(*p) for p in spec])
        packed = pack_frame_columns(frame, state)
        assert packed is not None
        got = unpack_frame_columns(packed, back)
        assert got == frame
        spoilt = bytearray(packed)  # a byte changed: some frame, or refused; no other error
        spoilt[(k * 7919) % len(spoilt)] ^= 0x5A
        try:
            assert isinstance(unpack_frame_columns(bytes(spoilt), TickColumnsState()), bytes)
        except TickColumnsError:
            pass
        if spec:
            one, two = parse_frame(got), parse_frame(frame)
            assert np.array_equal(one.depth_price, two.depth_price)
            assert np.array_equal(one.last_price, two.last_price)


@pytest.mark.unit
def test_simulated_full_chain_frames_round_trip_and_shrink() -> None:
    """The simulator's frames over ten seconds (changed instruments only, every mode): exact,
    and about a tenth of format 2's packed size before compression."""
    clock = type("Clock", (), {"t": 0.0, "__call__": lambda self: self.t})()
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    rows = exchange.instruments()
    near = min(r.expiry for r in rows if r.index_key == "NIFTY" and r.instrument_type == "CE")
    picked = [r.instrument_token for r in rows if r.is_index or (
        r.index_key == "NIFTY" and r.expiry == near)]
    modes = {t: (MODE_FULL, MODE_FULL, MODE_QUOTE, MODE_LTP)[i % 4] for i, t in enumerate(picked)}
    changes = ChangedTicks()
    codecs, back = FrameCodecs(), TickColumnsState()
    packed_bytes = raw_bytes = 0
    for second in range(10):
        clock.t = float(second)
        frame = exchange_frame(exchange, modes, changes)
        kind, payload = codecs.pack(TICKS, frame)
        assert kind == TICK_COLUMNS
        assert unpack_frame_columns(payload, back) == frame
        packed_bytes += len(payload) if second else 0
        raw_bytes += len(frame) if second else 0
    assert packed_bytes < raw_bytes / 4


@pytest.mark.unit
def test_a_packed_frame_cut_or_out_of_its_frame_is_refused() -> None:
    state = TickColumnsState()
    first = pack_frame_columns(_frame([REAL[184], REAL[44]]), state)
    second = pack_frame_columns(_frame([REAL[184]]), state)
    assert first is not None and second is not None
    with pytest.raises(TickColumnsError):
        unpack_frame_columns(first[:-3], TickColumnsState())
    with pytest.raises(TickColumnsError):  # its token's slot belongs to the frame before it
        unpack_frame_columns(second, TickColumnsState())
    assert pack_frame_columns(b"\x00\x01\x00\x05abcde", TickColumnsState()) is None


@pytest.mark.integration
def test_a_format_2_recording_still_replays(tmp_path: Path) -> None:
    """A day written by format 2 (packed quotes, format 2's packed tick frames, a streamed
    answer) reads back frame for frame and answer for answer, and replays."""
    path = tmp_path / "2026-11-17.optrec.zst"
    for name in ("2026-11-17.optrec.zst", "2026-11-17.optrec.idx"):
        shutil.copy(FIXTURES / "recording" / name, tmp_path / name)
    expected = json.loads((FIXTURES / "recording" / "2026-11-17.expected.json").read_text())
    with open(path, "rb") as fh:
        data, complete, _ = _decode_frame(fh, 0, None)
    kinds = {r.kind for r in _parse_records(data, unpack=False)[0]}
    assert complete and {TICK_PACKED, QUOTE_PACKED, STREAM_QUOTES} <= kinds
    health = ReadHealth()
    records = list(read_day(path, None, health))
    assert health.bad_frames == 0 and health.unknown == 0 and not health.cut
    assert records[0].kind == META and records[0].json()["format"] == 2
    frames = [hashlib.sha256(r.payload).hexdigest() for r in records if r.kind == TICKS]
    assert frames == expected["frames"]
    answers = [r.quotes() for r in records if r.kind == QUOTE_PACKED]
    assert [{"keys": k, "data": d} for k, d in answers] == expected["quotes"]
    source = ReplaySource(path, speed=None)
    keys = expected["quotes"][0]["keys"]
    assert source.quote_batch(keys) == expected["quotes"][0]["data"]
    assert FORMAT_VERSION == 6


@pytest.mark.integration
def test_a_format_3_recording_still_replays(tmp_path: Path) -> None:
    """A day written by format 3 at the tick cadence (packed quotes, TICK_COLUMNS frames, a
    frame kept as received, streamed answers repeating their key lists every second) reads
    back frame for frame and answer for answer, and replays its streamed calls."""
    path = tmp_path / "2026-11-18.optrec.zst"
    for name in ("2026-11-18.optrec.zst", "2026-11-18.optrec.idx"):
        shutil.copy(FIXTURES / "recording" / name, tmp_path / name)
    expected = json.loads((FIXTURES / "recording" / "2026-11-18.expected.json").read_text())
    health = ReadHealth()
    records = list(read_day(path, None, health))
    assert health.bad_frames == 0 and health.unknown == 0 and not health.cut
    assert records[0].kind == META and records[0].json()["format"] == 3
    assert records[0].json()["snapshot_s"] == 1.0
    frames = [hashlib.sha256(r.payload).hexdigest() for r in records if r.kind == TICKS]
    assert frames == expected["frames"]
    answers = [r.quotes() for r in records if r.kind == QUOTE_PACKED]
    assert [{"keys": k, "data": d} for k, d in answers] == expected["quotes"]
    calls = []
    for rec in (r for r in records if r.kind == STREAM_QUOTES):
        body, (keys, polled) = rec.json(), rec.quotes()
        calls.append({"keys": keys, "stream": body["stream"], "tokens": body["tokens"],
                      "polled": polled})
    assert calls == expected["stream"]
    source = ReplaySource(path, speed=None)
    assert source.snapshot_s == 1.0 and source.streamed is False  # its first call was polled
    legs = expected["stream"][1]
    got = source.quote_batch(legs["keys"])
    polled_key = legs["keys"][0]
    assert got[polled_key] == legs["polled"][polled_key]
    assert [got[k]["instrument_token"] for k in legs["stream"]] == legs["tokens"]


_CHILD = textwrap.dedent("""
    import sys, time
    from datetime import datetime, timedelta
    from pathlib import Path
    from optui.collectors.recording import FLUSH_S, Recorder
    from optui.timeutil import IST
    frames = [bytes.fromhex(line) for line in Path(sys.argv[2]).read_text().split()]
    start = datetime(2026, 11, 17, 11, 0, tzinfo=IST)
    recorder = Recorder(Path(sys.argv[1]), "sim", "SIMULATED")  # its flusher thread on
    for k, frame in enumerate(frames[:-1]):
        recorder.record_ticks(start + timedelta(seconds=k // 2), frame)
        if k % 2:  # each second's streamed call: the same keys, written as references
            recorder.record_stream_answer(start + timedelta(seconds=k // 2), ["NSE:NIFTY 50"],
                                          ["NSE:NIFTY 50"], [256265], {})
    time.sleep(3 * FLUSH_S)  # more than a second after the last record
    print("written", flush=True)
    recorder.record_ticks(start + timedelta(seconds=60), frames[-1])  # may be lost
    time.sleep(600)
""")


@pytest.mark.integration
def test_a_recorder_killed_with_sigkill_keeps_all_but_its_last_second(tmp_path: Path) -> None:
    """A recording process killed with SIGKILL: every frame and streamed call (written as
    references to the first) recorded more than a second before the kill reads back exactly; the next session repairs the cut tail and appends after it."""
    clock = type("Clock", (), {"t": 0.0, "__call__": lambda self: self.t})()
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    rows = exchange.instruments()
    picked = [r.instrument_token for r in rows if r.index_key == "NIFTY"][:120]
    frames = []
    for second in range(6):
        clock.t = float(second)
        frames += [exchange_frame(exchange, dict.fromkeys(picked[k::2], MODE_FULL))
                   for k in range(2)]
    listing = tmp_path / "frames.txt"
    listing.write_text("\n".join(f.hex() for f in frames))
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path / "rec"), str(listing)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "written"
    proc.kill()
    proc.wait(timeout=30)
    path = day_path(tmp_path / "rec", START.date())
    health = ReadHealth()
    records = list(read_day(path, None, health))
    got = [r.payload for r in records if r.kind == TICKS]
    assert health.cut and health.bad_frames == 0
    assert got[: len(frames) - 1] == frames[:-1]
    calls = [r.json() for r in records if r.kind == STREAM_QUOTES]
    assert len(calls) == (len(frames) - 1) // 2
    assert all(c["keys"] == ["NSE:NIFTY 50"] and c["tokens"] == [256265] for c in calls)
    assert STREAM_CALL in {r.kind for r in read_day(path, None, ReadHealth(), unpack=False)}
    # The next session on the day: the cut frame is closed, the new records follow it.
    recorder = Recorder(tmp_path / "rec", "sim", "SIMULATED", flusher=False)
    recorder.record_ticks(START + timedelta(seconds=120), frames[0])
    notes = recorder.take_notices()
    recorder.close()
    assert any("cut mid-write" in n.message for n in notes)
    health = ReadHealth()
    again = [r.payload for r in read_day(path, None, health) if r.kind == TICKS]
    assert again[: len(frames) - 1] == frames[:-1] and again[-1] == frames[0]
    assert not health.cut and health.bad_frames == 0 and len(frame_offsets(path)) == 2


@pytest.mark.unit
def test_a_packed_tick_record_that_does_not_unpack_is_skipped_and_counted(tmp_path: Path) -> None:
    """A damaged packed frame inside a whole Zstandard frame: skipped and counted as bad, the
    records around it read as they were."""
    from optui.collectors.record_writer import DayWriter

    state = TickColumnsState()
    good = _frame([REAL[184]])
    packed = pack_frame_columns(good, state)
    assert packed is not None
    path = day_path(tmp_path, START.date())
    writer = DayWriter(path)
    at = int(START.timestamp() * 1e6)
    writer.write(TICKS, at, good)  # packed by the writer
    writer.write(TICK_COLUMNS, at + 1, lambda _quotes: packed[:-2])  # cut: does not unpack
    writer.write(TICKS, at + 2, b"\x00")  # a heartbeat, kept as it came
    writer.close()
    health = ReadHealth()
    got = [(r.kind, r.payload) for r in read_day(path, None, health)]
    assert got == [(TICKS, good), (TICKS, b"\x00")]
    assert health.bad_frames == 1 and not health.cut
