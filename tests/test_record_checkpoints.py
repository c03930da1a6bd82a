"""Format 4: repeated streamed calls written as references to the frame's first call of their
keys, and a tick-book checkpoint opening every frame, so a seek into a streamed day reads the
checkpoint and at most one frame span of ticks and rebuilds the book the whole day's ticks
build."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from optui.collectors import record_writer
from optui.collectors.record_writer import DayWriter
from optui.collectors.recording import (
    STREAM_CALL,
    STREAM_QUOTES,
    TICK_BOOK,
    TICK_BOOK_COLUMNS,
    TICKS,
    ReadHealth,
    Recorder,
    _us,
    book_point,
    day_path,
    read_day,
    read_index,
)
from optui.collectors.replay_source import ReplaySource
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.tick_book import TickBook
from optui.collectors.tick_checkpoint import LastPackets
from optui.simulator.exchange import SimulatedExchange
from optui.simulator.ticker import ChangedTicks, exchange_frame
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, parse_frame
from optui.timeutil import IST

START = datetime(2026, 11, 19, 11, 0, tzinfo=IST)
SPAN_S = 10.0
SECONDS = 36


def _record(directory: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """SECONDS of two connections' frames (full, quote and ltp mode; one leg moves from full to
    ltp mode halfway) and each second's streamed calls (the spots; legs with one polled every
    fifth second), recorded with SPAN_S-second frames."""
    monkeypatch.setattr(record_writer, "FRAME_SPAN_S", SPAN_S)
    clock = type("Clock", (), {"t": 0.0, "__call__": lambda self: self.t})()
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    rows = exchange.instruments()
    near = min(r.expiry for r in rows if r.index_key == "NIFTY" and r.instrument_type == "CE")
    spots = [r for r in rows if r.is_index and r.index_key in ("NIFTY", "BANKNIFTY")]
    legs = [r for r in rows if r.index_key == "NIFTY" and r.expiry == near][:20]
    modes = [{r.instrument_token: (MODE_FULL, MODE_QUOTE, MODE_LTP)[i % 3]
              for i, r in enumerate(spots + legs[::2])},
             {r.instrument_token: MODE_FULL for r in legs[1::2]}]
    changes = [ChangedTicks(), ChangedTicks()]
    recorder = Recorder(directory, "sim", "SIMULATED", flusher=False)
    recorder.meta["snapshot_s"] = 1.0
    picked = {r.instrument_token for r in spots + legs}
    listed = SimulatedSource(seed=5, start=START, clock=clock).instruments()
    recorder.record_instruments(START, [i for i in listed if i.instrument_token in picked], [])
    spot_keys = [r.key for r in spots]
    spot_tokens = [r.instrument_token for r in spots]
    leg_keys = [r.key for r in legs]
    calls = []
    for second in range(SECONDS):
        clock.t = float(second)
        at = START + timedelta(seconds=second)
        if second == SECONDS // 2:
            modes[1][legs[1].instrument_token] = MODE_LTP
        for k in range(2):
            frame = exchange_frame(exchange, modes[k], changes[k])
            if frame:
                recorder.record_ticks(at, frame)
        asked = at + timedelta(milliseconds=40)
        polled = {leg_keys[0]: {"instrument_token": legs[0].instrument_token,
                                "last_price": 100.0 + second}} if second % 5 == 0 else {}
        stream = leg_keys[1:] if polled else leg_keys
        for keys, streamed, tokens, answer in (
                (spot_keys, spot_keys, spot_tokens, {}),
                (leg_keys, stream, [exchange_token(legs, k) for k in stream], polled)):
            recorder.record_stream_answer(asked, keys, streamed, tokens, answer)
            calls.append({"keys": keys, "stream": streamed, "tokens": tokens, "polled": answer})
    recorder.close()
    tokens = [r.instrument_token for r in spots + legs]
    return {"path": day_path(directory, START.date()), "calls": calls, "tokens": tokens,
            "spot_keys": spot_keys, "leg_keys": leg_keys}


def exchange_token(legs: list, key: str) -> int:
    return next(r.instrument_token for r in legs if r.key == key)


def _quotes(book: TickBook, tokens: list[int]) -> list:
    return [book.quote(t) for t in tokens]


@pytest.mark.unit
def test_repeated_streamed_calls_are_written_as_references_and_read_back_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    day = _record(tmp_path, monkeypatch)
    stored = [r.kind for r in read_day(day["path"], None, ReadHealth(), unpack=False)]
    frames = len(read_index(day["path"]))
    # Per frame only the first call of each shape (the spots; the legs all streamed; the legs
    # with one polled) is written whole; every other call refers to one of them.
    assert frames == 4 and stored.count(STREAM_QUOTES) <= 3 * frames
    assert stored.count(STREAM_CALL) == len(day["calls"]) - stored.count(STREAM_QUOTES)
    health = ReadHealth()
    got = []
    for rec in read_day(day["path"], None, health):
        if rec.kind == STREAM_QUOTES:
            body = rec.json()
            keys, polled = rec.quotes()
            got.append({"keys": keys, "stream": body["stream"], "tokens": body["tokens"],
                        "polled": polled})
    assert health.bad_frames == 0 and not health.cut
    assert got == day["calls"]


@pytest.mark.unit
def test_a_seek_reads_one_frame_of_ticks_and_rebuilds_the_whole_days_book(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame is a seek point in the index and opens with the tick book (after the first);
    the book built from the last checkpoint before a moment and the ticks after it equals the
    book built from every tick of the day, quote for quote (the leg that went to ltp mode
    included); a replay started there reads no frame before the checkpoint."""
    day = _record(tmp_path, monkeypatch)
    path = day["path"]
    index = read_index(path)
    assert all(book for _, _, book in index)
    starts = [next(iter(read_day(path, datetime.fromtimestamp(t / 1e6, IST), ReadHealth(),
                                 unpack=False))).kind for _, t, _ in index]
    assert starts[1:] == [TICK_BOOK_COLUMNS] * (len(index) - 1)
    at = START + timedelta(seconds=SECONDS - 3)
    whole = TickBook()
    for rec in read_day(path, None, ReadHealth()):
        if rec.kind == TICKS and rec.at <= at:
            whole.add(parse_frame(rec.payload))
    point = book_point(path, _us(at))
    assert point == index[-1][1] and point > _us(at) - SPAN_S * 1e6
    seek = TickBook()
    kinds = []
    for rec in read_day(path, datetime.fromtimestamp(point / 1e6, IST), ReadHealth()):
        if rec.kind in (TICKS, TICK_BOOK) and rec.at <= at:
            kinds.append(rec.kind)
            seek.add(parse_frame(rec.payload))
    assert kinds[0] == TICK_BOOK and kinds.count(TICK_BOOK) == 1
    assert _quotes(seek, day["tokens"]) == _quotes(whole, day["tokens"])
    assert all(q is not None for q in _quotes(seek, day["tokens"]))

    # The replay of the streamed day from that moment answers as the replay from the start.
    later = ReplaySource(path, speed=None, start=at)
    first = ReplaySource(path, speed=None)
    first.advance((at - first.now()).total_seconds())
    for keys in (day["spot_keys"], day["leg_keys"]):
        assert later.quote_batch(keys) == first.quote_batch(keys)
    assert later.health.bad_frames == 0


@pytest.mark.unit
def test_last_packets_keep_the_newest_packet_of_each_mode_in_order() -> None:
    clock = type("Clock", (), {"t": 0.0, "__call__": lambda self: self.t})()
    exchange = SimulatedExchange(seed=5, start=START, clock=clock)
    rows = exchange.instruments()
    tokens = [r.instrument_token for r in rows if r.index_key == "NIFTY"][:30]
    last, book = LastPackets(), TickBook()
    assert last.frames() == []
    for second in range(6):
        clock.t = float(second)
        mode = (MODE_FULL, MODE_LTP, MODE_QUOTE)[second % 3]
        frame = exchange_frame(exchange, {t: mode for t in tokens[second:]})
        last.add(frame)
        book.add(parse_frame(frame))
    last.add(b"\x00")  # a heartbeat: nothing to keep
    again = TickBook()
    for frame in last.frames():
        again.add(parse_frame(frame))
    assert _quotes(again, tokens) == _quotes(book, tokens)
    assert np.array_equal(again.mode[:len(again)], book.mode[again.slots(book._tokens)])


@pytest.mark.unit
def test_a_streamed_call_referring_to_no_call_is_skipped_and_counted(tmp_path: Path) -> None:
    path = day_path(tmp_path, START.date())
    writer = DayWriter(path)
    at = _us(START)
    writer.write(STREAM_CALL, at, struct.pack("<I", 5))
    writer.close()
    health = ReadHealth()
    assert list(read_day(path, None, health)) == []
    assert health.bad_frames == 1


@pytest.mark.unit
def test_a_cut_tail_repaired_keeps_the_seek_points(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    day = _record(tmp_path, monkeypatch)
    path = day["path"]
    before = read_index(path)
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size - 40)
    recorder = Recorder(tmp_path, "sim", "SIMULATED", flusher=False)
    recorder.record_ticks(START + timedelta(seconds=SECONDS + 60), b"\x00")
    notes = recorder.take_notices()
    recorder.close()
    assert any("cut mid-write" in n.message for n in notes)
    after = read_index(path)  # the cut frame (one block: nothing of it decodes) is replaced
    assert after[:len(before) - 1] == before[:-1] and all(book for _, _, book in after)
