"""The vectorised ticker packet parser and packer against kiteconnect's own parser."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kiteconnect import KiteTicker

from optui.tick_packets import (
    HEARTBEAT,
    MODE_NAMES,
    FrameError,
    TickBatch,
    pack_frame,
    pack_packets,
    parse_frame,
)

pytestmark = [pytest.mark.unit]

KITE = Path(__file__).parent / "fixtures" / "kite"
REFERENCE = KiteTicker("key", "token")  # only its parser is used; it never connects


def _packet(name: str) -> bytes:
    return base64.b64decode((KITE / f"ticker_{name}.packet").read_bytes())


def _frame(*packets: bytes) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(
        struct.pack(">H", len(p)) + p for p in packets)


def assert_same_as_kiteconnect(frame: bytes) -> None:
    """Every field kiteconnect reports equals ours, tick by tick, in frame order."""
    ours = parse_frame(frame)
    ref = REFERENCE._parse_binary(frame)
    assert len(ours) == len(ref)
    for j, r in enumerate(ref):
        assert int(ours.instrument_token[j]) == r["instrument_token"]
        assert MODE_NAMES[ours.mode[j]] == r["mode"]
        assert bool(ours.tradable[j]) == r["tradable"]
        assert ours.last_price[j] == r["last_price"]
        if "ohlc" in r:
            for k in ("open", "high", "low", "close"):
                assert getattr(ours, k)[j] == r["ohlc"][k], k
        if "volume_traded" in r:
            assert ours.volume[j] == r["volume_traded"]
            assert ours.average_price[j] == r["average_traded_price"]
            assert ours.last_quantity[j] == r["last_traded_quantity"]
            assert ours.buy_quantity[j] == r["total_buy_quantity"]
            assert ours.sell_quantity[j] == r["total_sell_quantity"]
        if "oi" in r:
            assert (ours.oi[j], ours.oi_day_high[j], ours.oi_day_low[j]) == (
                r["oi"], r["oi_day_high"], r["oi_day_low"])
        if "depth" in r:
            for s, side in enumerate(("buy", "sell")):
                for k, level in enumerate(r["depth"][side]):
                    assert ours.depth_price[j, s, k] == level["price"]
                    assert ours.depth_quantity[j, s, k] == level["quantity"]
                    assert ours.depth_orders[j, s, k] == level["orders"]


def test_zerodha_mock_packets_parse_like_kiteconnect() -> None:
    quote, full = _packet("quote"), _packet("full")
    assert (len(quote), len(full)) == (44, 184)
    frame = _frame(quote, full, quote)
    assert_same_as_kiteconnect(frame)
    batch = parse_frame(frame)
    assert batch.instrument_token.tolist() == [408065] * 3
    assert batch.last_price.tolist() == [1573.15, 1573.7, 1573.15]
    assert batch.bid[1] == 1573.4 and batch.ask[1] == 1573.7
    assert batch.last_trade_time[1] == 0x60E2947F


def test_packing_reproduces_zerodha_mock_packets_byte_for_byte() -> None:
    quote, full = _packet("quote"), _packet("full")
    assert pack_packets(parse_frame(_frame(quote, full))) == [quote, full]
    assert pack_frame(parse_frame(_frame(full))) == _frame(full)


def test_heartbeat_and_empty_frame_are_no_ticks() -> None:
    assert len(parse_frame(HEARTBEAT)) == 0
    assert len(parse_frame(b"\x00\x00")) == 0


@pytest.mark.parametrize("cut", [1, 3, 10, 100, 185])
def test_truncated_frame_is_refused(cut: int) -> None:
    frame = _frame(_packet("full"), _packet("quote"))
    with pytest.raises(FrameError):
        parse_frame(frame[:-cut])


def test_unknown_packet_length_is_skipped_and_counted() -> None:
    frame = _frame(_packet("quote"), b"\x01" * 12, _packet("quote"))
    batch = parse_frame(frame)
    assert len(batch) == 2 and batch.skipped_packets == 1


def test_alternating_lengths_parse_in_order() -> None:
    q, f = _packet("quote"), _packet("full")
    frame = _frame(*([q, f, f, q, q, q, f] * 40))
    assert_same_as_kiteconnect(frame)


# Token segments: NSE 1, NFO 2, CDS 3 (1e7 divisor), BFO 5, BCD 6 (1e4), indices 9.
_segments = st.sampled_from([1, 2, 3, 5, 6, 9])
_u32 = st.integers(0, 2**32 - 1)
_u16 = st.integers(0, 2**16 - 1)


@st.composite
def _packets(draw: st.DrawFn) -> bytes:
    token = draw(st.integers(1, 2**24 - 1)) * 256 + draw(_segments)
    index = token & 0xFF == 9
    length = draw(st.sampled_from([8, 28, 32] if index else [8, 44, 184]))
    words = [draw(_u32) for _ in range((length - 4) // 4)]
    body = struct.pack(f">I{len(words)}I", token, *words)
    if length in (28, 32):  # Kite's index change field is last price minus close, in paise
        ltp, close = draw(st.integers(0, 2**31 - 1)), draw(st.integers(0, 2**31 - 1))
        body = body[:4] + struct.pack(">I", ltp) + body[8:20] + struct.pack(">Ii", close,
                                                                            ltp - close) + body[28:]
    if length == 184:  # depth levels: quantity, price, orders (uint16), two bytes of padding
        depth = b"".join(struct.pack(">IIHH", draw(_u32), draw(_u32), draw(_u16), 0)
                         for _ in range(10))
        body = body[:64] + depth
    return body


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(st.lists(_packets(), min_size=0, max_size=40))
def test_random_packets_parse_identically(packets: list[bytes]) -> None:
    frame = _frame(*packets)
    assert_same_as_kiteconnect(frame)
    batch = parse_frame(frame)
    assert pack_packets(batch) == packets


def test_concat_keeps_order() -> None:
    a = parse_frame(_frame(_packet("quote")))
    b = parse_frame(_frame(_packet("full")))
    both = TickBatch.concat([a, b])
    assert both.mode.tolist() == [1, 2]
    assert np.array_equal(both.depth_price[0], np.zeros((2, 5)))
