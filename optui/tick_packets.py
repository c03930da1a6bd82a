"""Kite Connect WebSocket ticker packets: the binary wire format, packed and parsed with numpy.

Format (Kite Connect v3 "WebSocket streaming" docs; field order as in pykiteconnect's
`KiteTicker._parse_binary`): a binary frame is a big-endian uint16 packet count, then for each
packet a big-endian uint16 length and the packet. A one-byte frame is a heartbeat. Packets:

- tradable instruments: 8 bytes (ltp mode), 44 (quote), 184 (full: quote + last trade time, OI,
  OI day high/low, exchange timestamp and five levels of depth, buy then sell, each level
  quantity uint32, price uint32, orders uint16 and two bytes of padding);
- indices (segment 9): 8 (ltp), 28 (quote: ltp, high, low, open, close, change), 32 (full: + the
  exchange timestamp).

Prices are integers in paise (divided by 100; 1e7 for currency derivatives, 1e4 for BSE currency
and NCO), the segment being the low byte of the instrument token. Times are Unix seconds.

Parsing is vectorised: each run of equal-length packets in a frame is one zero-copy numpy record
view (the length prefix is part of the record), so Python work grows with the number of runs of
equal-length packets (a handful per frame: the exchange groups packets by mode), not with ticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MODE_LTP = 0
MODE_QUOTE = 1
MODE_FULL = 2
MODE_NAMES: tuple[str, ...] = ("ltp", "quote", "full")
"""Mode codes (index) to Kite's mode names."""

SEGMENT_INDICES = 9
DEPTH_LEVELS = 5

# Kite's segment codes whose prices are not in paise.
_DIVISORS: dict[int, float] = {3: 1e7, 6: 1e4, 12: 1e4}

_QUOTE_FIELDS = [
    ("instrument_token", ">u4"), ("last_price", ">u4"), ("last_quantity", ">u4"),
    ("average_price", ">u4"), ("volume", ">u4"), ("buy_quantity", ">u4"),
    ("sell_quantity", ">u4"), ("open", ">u4"), ("high", ">u4"), ("low", ">u4"), ("close", ">u4"),
]
_LEVEL = np.dtype([("quantity", ">u4"), ("price", ">u4"), ("orders", ">u2"), ("pad", ">u2")])
PACKET_DTYPES: dict[int, np.dtype] = {
    8: np.dtype([("instrument_token", ">u4"), ("last_price", ">u4")]),
    28: np.dtype([("instrument_token", ">u4"), ("last_price", ">u4"), ("high", ">u4"),
                  ("low", ">u4"), ("open", ">u4"), ("close", ">u4"), ("change", ">i4")]),
    32: np.dtype([("instrument_token", ">u4"), ("last_price", ">u4"), ("high", ">u4"),
                  ("low", ">u4"), ("open", ">u4"), ("close", ">u4"), ("change", ">i4"),
                  ("exchange_timestamp", ">u4")]),
    44: np.dtype(_QUOTE_FIELDS),
    184: np.dtype([*_QUOTE_FIELDS, ("last_trade_time", ">u4"), ("oi", ">u4"),
                   ("oi_day_high", ">u4"), ("oi_day_low", ">u4"), ("exchange_timestamp", ">u4"),
                   ("depth", _LEVEL, (2, DEPTH_LEVELS))]),
}
"""Packet layout by packet length (bytes), big-endian."""

PACKET_LENGTHS = frozenset(PACKET_DTYPES)


def _framed(length: int) -> np.dtype:
    """A packet's record with its uint16 length prefix, as it sits in a frame."""
    return np.dtype([("length", ">u2"), ("packet", PACKET_DTYPES[length])])


_FRAMED: dict[int, np.dtype] = {n: _framed(n) for n in PACKET_DTYPES}
_U16 = np.dtype(">u2")


class FrameError(ValueError):
    """A binary frame that is not a valid ticker frame (truncated, bad length or count)."""


_FLOAT_FIELDS = ("last_price", "average_price", "open", "high", "low", "close")
_INT_FIELDS = ("last_quantity", "volume", "buy_quantity", "sell_quantity", "oi", "oi_day_high",
               "oi_day_low", "last_trade_time", "exchange_timestamp")


@dataclass(slots=True)
class TickBatch:
    """Ticks as parallel arrays (length n), in frame order.

    `mode` holds MODE_LTP/MODE_QUOTE/MODE_FULL; `tradable` is False for indices. Prices are
    rupees (float64); quantities, volume and OI are int64; `last_trade_time` and
    `exchange_timestamp` are Unix seconds (0 when the mode does not carry them). Fields a mode
    does not carry are 0. Depth arrays are (n, 2, 5): side 0 buy, 1 sell; levels best first.
    """

    instrument_token: np.ndarray
    mode: np.ndarray
    tradable: np.ndarray
    last_price: np.ndarray
    last_quantity: np.ndarray
    average_price: np.ndarray
    volume: np.ndarray
    buy_quantity: np.ndarray
    sell_quantity: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    oi: np.ndarray
    oi_day_high: np.ndarray
    oi_day_low: np.ndarray
    last_trade_time: np.ndarray
    exchange_timestamp: np.ndarray
    depth_price: np.ndarray
    depth_quantity: np.ndarray
    depth_orders: np.ndarray
    skipped_packets: int = field(default=0)

    def __len__(self) -> int:
        return int(self.instrument_token.size)

    @classmethod
    def empty(cls, n: int = 0) -> TickBatch:
        """A batch of n zeroed ticks."""
        f = np.zeros(n)
        i = np.zeros(n, dtype=np.int64)
        d = np.zeros((n, 2, DEPTH_LEVELS))
        return cls(i.copy(), np.zeros(n, np.int8), np.ones(n, bool), f.copy(), i.copy(), f.copy(),
                   i.copy(), i.copy(), i.copy(), f.copy(), f.copy(), f.copy(), f.copy(),
                   i.copy(), i.copy(), i.copy(), i.copy(), i.copy(), d.copy(),
                   np.zeros((n, 2, DEPTH_LEVELS), np.int64), np.zeros((n, 2, DEPTH_LEVELS), np.int64))

    @property
    def bid(self) -> np.ndarray:
        """Best bid price (0 when there is none or the mode carries no depth)."""
        return self.depth_price[:, 0, 0]

    @property
    def ask(self) -> np.ndarray:
        """Best ask price (0 when there is none or the mode carries no depth)."""
        return self.depth_price[:, 1, 0]

    @classmethod
    def concat(cls, batches: Sequence[TickBatch]) -> TickBatch:
        """Join batches end to end (frame order kept)."""
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        names = [f for f in cls.__slots__ if f != "skipped_packets"]  # type: ignore[attr-defined]
        out = cls(*(np.concatenate([getattr(b, n) for b in batches]) for n in names))  # type: ignore[arg-type]
        out.skipped_packets = sum(b.skipped_packets for b in batches)
        return out


def divisor(instrument_token: np.ndarray) -> np.ndarray:
    """Price divisor per token from its segment (low byte): paise for all index derivatives."""
    seg = np.asarray(instrument_token, dtype=np.int64) & 0xFF
    out = np.full(seg.shape, 100.0)
    for code, div in _DIVISORS.items():
        out[seg == code] = div
    return out


def _packet_runs(buf: np.ndarray) -> list[tuple[int, int, int]]:
    """(offset of first length prefix, packet length, packet count) for each run of packets.

    Raises FrameError when the count, a length prefix or the frame size is inconsistent.
    """
    size = buf.size
    if size < 2:
        raise FrameError(f"frame of {size} byte(s) is shorter than its packet count")
    count = int(buf[0]) << 8 | int(buf[1])
    runs: list[tuple[int, int, int]] = []
    pos, done, window = 2, 0, count
    while done < count:
        if pos + 2 > size:
            raise FrameError(f"frame truncated after {done} of {count} packets")
        length = int(buf[pos]) << 8 | int(buf[pos + 1])
        stride = length + 2
        if length == 0 or pos + stride > size:
            raise FrameError(f"packet {done + 1} of {count} claims {length} bytes; "
                             f"{size - pos - 2} remain")
        # How many packets from here share this length: check the prefixes such a run would
        # have, first for everything left (frames are grouped by layout), then in windows sized
        # by the last run, so alternating layouts cost about one check per packet.
        n = 1
        while done + n < count:
            want = min(window, count - done - n, (size - pos) // stride - n)
            if want <= 0:
                break
            starts = pos + stride * np.arange(n, n + want)
            same = ((buf[starts].astype(np.int32) << 8) | buf[starts + 1]) == length
            run = want if same.all() else int(np.argmin(same))
            n += run
            if run < want:
                break
            window *= 4
        window = max(16, 4 * n)
        runs.append((pos, length, n))
        pos += stride * n
        done += n
    return runs


def parse_frame(frame: bytes | bytearray | memoryview) -> TickBatch:
    """Parse one binary ticker frame into a TickBatch.

    A heartbeat (one byte) or an empty frame gives an empty batch. Packets of a length that is
    not a Kite layout are skipped and counted in `skipped_packets`. Raises FrameError when the
    frame's framing is broken (truncated, or lengths that overrun it): nothing of it is used.
    """
    buf = np.frombuffer(frame, dtype=np.uint8)
    if buf.size <= 1:
        return TickBatch.empty()
    runs = _packet_runs(buf)
    total = sum(n for _, length, n in runs if length in _FRAMED)
    out = TickBatch.empty(total)
    k = 0
    for offset, length, n in runs:
        framed = _FRAMED.get(length)
        if framed is None:
            out.skipped_packets += n
            continue
        recs = np.ndarray((n,), dtype=framed, buffer=buf, offset=offset)["packet"]
        _fill(out, slice(k, k + n), recs, length)
        k += n
    return out


def _fill(out: TickBatch, rows: slice, recs: np.ndarray, length: int) -> None:
    """Decode records of one packet layout into rows of `out`."""
    token = recs["instrument_token"].astype(np.int64)
    out.instrument_token[rows] = token
    out.tradable[rows] = (token & 0xFF) != SEGMENT_INDICES
    div = divisor(token)
    out.mode[rows] = {8: MODE_LTP, 28: MODE_QUOTE, 44: MODE_QUOTE}.get(length, MODE_FULL)
    names = recs.dtype.names or ()
    for name in _FLOAT_FIELDS:
        if name in names:
            np.divide(recs[name], div, out=getattr(out, name)[rows])
    for name in _INT_FIELDS:
        if name in names:
            getattr(out, name)[rows] = recs[name]
    if "depth" in names:
        depth = recs["depth"]
        np.divide(depth["price"], div[:, None, None], out=out.depth_price[rows])
        out.depth_quantity[rows] = depth["quantity"]
        out.depth_orders[rows] = depth["orders"]


def _paise(values: np.ndarray, div: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(values, dtype=float) * div).astype(np.int64)


def pack_packets(batch: TickBatch) -> list[bytes]:
    """Encode each tick of `batch` as one packet in its mode's layout (index or tradable)."""
    records = _records(batch)
    out: list[bytes] = [b""] * len(batch)
    for rows, recs in records:
        size = recs.dtype.itemsize
        raw = recs.tobytes()
        for k, r in enumerate(rows):
            out[int(r)] = raw[k * size:(k + 1) * size]
    return out


def _records(batch: TickBatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """(row indices, packet records) per layout present in the batch, layouts in a fixed order."""
    token = np.asarray(batch.instrument_token, dtype=np.int64)
    index = (token & 0xFF) == SEGMENT_INDICES
    div = divisor(token)
    out = []
    for length in (8, 28, 32, 44, 184):
        if length == 8:
            sel = batch.mode == MODE_LTP
        elif length in (28, 32):
            sel = index & (batch.mode == (MODE_QUOTE if length == 28 else MODE_FULL))
        else:
            sel = ~index & (batch.mode == (MODE_QUOTE if length == 44 else MODE_FULL))
        rows = np.flatnonzero(sel)
        if rows.size == 0:
            continue
        dtype = PACKET_DTYPES[length]
        recs = np.zeros(rows.size, dtype=dtype)
        d = div[rows]
        for name in dtype.names or ():
            if name == "instrument_token":
                recs[name] = token[rows]
            elif name in _FLOAT_FIELDS:
                recs[name] = _paise(getattr(batch, name)[rows], d)
            elif name in _INT_FIELDS:
                recs[name] = np.asarray(getattr(batch, name))[rows]
            elif name == "change":
                recs[name] = _paise(batch.last_price[rows] - batch.close[rows], d)
            elif name == "depth":
                recs["depth"]["price"] = _paise(batch.depth_price[rows], d[:, None, None])
                recs["depth"]["quantity"] = batch.depth_quantity[rows]
                recs["depth"]["orders"] = batch.depth_orders[rows]
        out.append((rows, recs))
    return out


def pack_frame(batch: TickBatch) -> bytes:
    """Encode a batch as one binary frame (count, then length-prefixed packets, grouped by layout).

    Raises ValueError above 65,535 packets (the count is a uint16).
    """
    n = len(batch)
    if n > 0xFFFF:
        raise ValueError(f"{n} packets do not fit one frame (at most 65535)")
    chunks = [np.array([n], dtype=_U16).tobytes()]
    for _, recs in _records(batch):
        framed = np.zeros(recs.size, dtype=_FRAMED[recs.dtype.itemsize])
        framed["length"] = recs.dtype.itemsize
        framed["packet"] = recs
        chunks.append(framed.tobytes())
    return b"".join(chunks)


HEARTBEAT = b"\x00"
"""The one-byte frame Kite sends when there is nothing else to send."""
