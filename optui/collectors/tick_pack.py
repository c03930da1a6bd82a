"""Ticker frames packed as recording format 2 did (read, no longer written: format 3 packs them
with `optui.collectors.tick_columns`): each packet's fields as changes against the same
instrument's previous packet, in byte planes, so a second of ticks compresses to its news.

A Kite ticker frame (optui.tick_packets) repeats every instrument every second with most fields
moved a little or not at all. Packing splits each run of equal-length packets into 32-bit
big-endian words (every layout is a whole number of words), keeps the instrument token and the
quantity words (book and trade quantities, order counts: redrawn every tick, cheaper as they are)
and replaces every other word by its difference from the same word of that instrument's last
packet of the same length (zigzag-coded), then writes the words' bytes plane by plane. Packing
is exact: unpacking gives the frame's bytes back. A frame that is not a well-formed run of known
layouts (a truncated or foreign frame) is not packed: the recorder keeps it as it came.

Payload: ``u16`` packet count, ``u16`` runs, per run ``u16`` packet length and ``u16`` packets,
then per run its planes (4 x words x packets bytes). A packed frame refers to the frames before it,
so it is read in order from the start of its Zstandard frame (`TickState` per frame).
"""

from __future__ import annotations

import struct

import numpy as np

from optui.tick_packets import PACKET_DTYPES, FrameError, _packet_runs

_HEAD = struct.Struct(">HH")
_RUN = struct.Struct(">HH")
_BE32 = np.dtype(">u4")


def _raw_words(length: int) -> np.ndarray:
    """Words of a layout kept as they are: the token and the quantities."""
    names: list[str] = []
    for name in PACKET_DTYPES[length].names or ():
        names.extend(["quantity", "price", "orders"] * 10 if name == "depth" else [name])
    keep = {"instrument_token", "quantity", "orders", "last_quantity", "buy_quantity",
            "sell_quantity"}
    return np.array([n in keep for n in names])


_RAW = {length: _raw_words(length) for length in PACKET_DTYPES}


class TickPackError(ValueError):
    """A packed frame that does not unpack (corrupt, or cut short)."""


class TickState:
    """Each instrument's last packet (as words) per packet length, within one frame."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def clear(self) -> None:
        """Forget everything (a new frame begins)."""
        self._last.clear()

    def reference(self, length: int, tokens: np.ndarray) -> np.ndarray:
        """The last words of each token's packet of `length` (zeros for one not seen)."""
        width = length // 4
        known = self._last.get(length)
        if known is None:
            return np.zeros((tokens.size, width), dtype=np.uint32)
        seen, words = known
        pos = np.minimum(np.searchsorted(seen, tokens), seen.size - 1)
        hit = seen[pos] == tokens
        return np.where(hit[:, None], words[pos], np.uint32(0)).astype(np.uint32)

    def update(self, length: int, tokens: np.ndarray, words: np.ndarray) -> None:
        """Remember these packets (a token's later packet in the list wins)."""
        known = self._last.get(length)
        if known is not None:
            tokens = np.concatenate((known[0], tokens))
            words = np.concatenate((known[1], words))
        order = np.argsort(tokens, kind="stable")
        tokens, words = tokens[order], words[order]
        last = np.r_[tokens[1:] != tokens[:-1], True]
        self._last[length] = (tokens[last], words[last])


def _zigzag(d: np.ndarray) -> np.ndarray:
    s = d.view(np.int32)
    return ((s << np.int32(1)) ^ (s >> np.int32(31))).view(np.uint32)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    return (z >> np.uint32(1)) ^ (np.uint32(0) - (z & np.uint32(1)))


def pack_ticks(frame: bytes, state: TickState) -> bytes | None:
    """The packed form of one binary ticker frame against and then into `state`; None when the
    frame is not a well-formed run of known layouts (record it as it is)."""
    buf = np.frombuffer(frame, dtype=np.uint8)
    if buf.size < 2:
        return None
    try:
        runs = _packet_runs(buf)
    except FrameError:
        return None
    end = runs[-1][0] + runs[-1][2] * (runs[-1][1] + 2) if runs else 2
    if end != buf.size or any(length not in PACKET_DTYPES for _, length, _ in runs) \
            or len(runs) > 0xFFFF:
        return None
    head = [_HEAD.pack(int(buf[0]) << 8 | int(buf[1]), len(runs))]
    planes = []
    for offset, length, n in runs:
        head.append(_RUN.pack(length, n))
        packets = buf[offset:offset + n * (length + 2)].reshape(n, length + 2)[:, 2:]
        words = np.ascontiguousarray(packets).view(_BE32).astype(np.uint32)
        tokens = words[:, 0].astype(np.int64)
        raw = _RAW[length]
        with np.errstate(over="ignore"):
            z = _zigzag(words - state.reference(length, tokens))
        z[:, raw] = words[:, raw]
        state.update(length, tokens, words)
        planes.append(np.ascontiguousarray(
            z.astype("<u4").view(np.uint8).reshape(n, length // 4, 4).transpose(1, 2, 0)).tobytes())
    return b"".join(head) + b"".join(planes)


def unpack_ticks(payload: bytes, state: TickState) -> bytes:
    """The frame a `pack_ticks` payload holds, against and then into `state`. Raises
    TickPackError when it does not unpack."""
    try:
        count, nruns = _HEAD.unpack_from(payload, 0)
        pos = _HEAD.size
        runs = []
        for _ in range(nruns):
            runs.append(_RUN.unpack_from(payload, pos))
            pos += _RUN.size
    except struct.error:
        raise TickPackError("packed tick frame header cut short") from None
    out = [np.array([count], dtype=">u2").tobytes()]
    data = np.frombuffer(payload, dtype=np.uint8)
    for length, n in runs:
        if length not in PACKET_DTYPES:
            raise TickPackError(f"packed tick frame holds packets of {length} bytes")
        width = length // 4
        size = 4 * width * n
        if pos + size > data.size:
            raise TickPackError("packed tick frame cut short")
        z = np.ascontiguousarray(data[pos:pos + size].reshape(width, 4, n).transpose(2, 0, 1))
        pos += size
        z = z.view("<u4").reshape(n, width).astype(np.uint32)
        raw = _RAW[length]
        tokens = z[:, 0].astype(np.int64)
        with np.errstate(over="ignore"):
            words = _unzigzag(z) + state.reference(length, tokens)
        words[:, raw] = z[:, raw]
        state.update(length, tokens, words)
        framed = np.empty((n, length + 2), dtype=np.uint8)
        framed[:, 0] = length >> 8
        framed[:, 1] = length & 0xFF
        framed[:, 2:] = words.astype(_BE32).view(np.uint8).reshape(n, length)
        out.append(framed.tobytes())
    if pos != data.size:
        raise TickPackError("packed tick frame has bytes after its packets")
    return b"".join(out)
