"""Ticker frames packed for recordings (format 3): per field, what changed since the same
instrument's previous tick, as a bitmask of the fields that moved and the moves themselves.

A Kite ticker frame (optui.tick_packets) carries each subscribed instrument about once a second;
from one packet to the next most fields hold still, and the rest move by a few ticks. Each run of
equal-length packets in a frame is split into 32-bit big-endian words (every layout is a whole
number of words), a column is added (the packet's quantity unit), and every column becomes a
residual against a prediction:

- the instrument token: its slot (the order in which the Zstandard frame first met the token
  in packets of this length), as the step from the previous packet's slot less one, so a frame
  listing instruments in the order of the frames before it gives zeros; a token met for the
  first time is also written in full;
- the unit: the greatest common divisor of the packet's whole-lot quantities (last trade
  quantity, volume, OI and its day high and low, depth quantities; 1 when all are 0), which
  those quantities are divided by (exactly) before they are predicted: an option's lot size,
  so a change of three lots is 3;
- ``exchange_timestamp`` and ``last_trade_time``: the change from the packet before it in the run
  (the first packet: from that instrument's previous tick), as one frame's packets share a second;
- depth prices: the change since the previous tick of the level's distance from the level above
  it (the best bid from the last price, the best offer from the best bid), so a book that moves
  with the last price without reshaping gives zeros;
- depth order counts (a ``u16`` and two bytes of padding): the word turned by 16 bits, so the
  count is in the low bits, then as every other column:
- every other column: the change since the same instrument's previous tick of that length
  (an instrument not met yet in the Zstandard frame: against zeros).

Differences wrap modulo 2**32 and are zigzag-coded, so packing is exact for any bytes a well-formed
frame holds: unpacking gives the frame's bytes back.

Payload: ``u16`` the frame's packet count, ``u16`` runs, per run ``u16`` packet length and
``u16`` packets, then per run: ``u16`` tokens new to the Zstandard frame and their ``u32`` values
(big-endian); per packet the bitmask of its non-zero residuals (one bit per column in the
layout's write order, numpy's packbits order, whole bytes per packet: rows change in patterns,
a trade moves volume, last quantity and average price together); then the non-zero residuals
column by column in that order, as little-endian ``u32`` split into four byte planes (all low
bytes, then the next ...). A packed frame refers to the frames before it, so it is read in order
from the start of its Zstandard frame (`TickColumnsState` per frame). A frame that is not a
well-formed run of known layouts is not packed: the recorder keeps it as it came.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from optui.tick_packets import PACKET_DTYPES, FrameError, _packet_runs

_HEAD = struct.Struct(">HH")
_RUN = struct.Struct(">HH")
_NEW = struct.Struct(">H")
_BE32 = np.dtype(">u4")
_ROW_FIELDS = frozenset({"exchange_timestamp", "last_trade_time"})
_QTY_FIELDS = frozenset({"last_quantity", "volume", "oi", "oi_day_high", "oi_day_low"})
"""Quantities that are whole lots (with the depth quantities): written in the packet's unit."""


@dataclass(frozen=True)
class _Layout:
    """How each column of one packet length is predicted (see the module docstring): the
    packet's words, then its quantity unit."""

    width: int  # words in a packet; the columns are these and the unit
    base: np.ndarray  # per column: the column whose change is subtracted too, -1 for none
    chained: tuple[int, ...]  # columns with a base, in an order where each base comes first
    row: np.ndarray  # bool per column: predicted from the packet before it in the run
    turn: np.ndarray  # bool per word: turned by 16 bits first (u16 order counts)
    qty: np.ndarray  # bool per word: a quantity, written in the packet's unit
    order: np.ndarray  # the columns in the order their masks and residuals are written


def _layout(length: int) -> _Layout:
    words: list[str] = []
    for name in PACKET_DTYPES[length].names or ():
        if name == "depth":
            words.extend(f"{side}{level}{part}" for side in "bs" for level in range(5)
                         for part in "qpo")
        else:
            words.append(name)
    depth = [len(w) == 3 and w[0] in "bs" and w[1].isdigit() for w in words]
    columns = [*words, "unit"]
    at = {name: i for i, name in enumerate(columns)}
    base = np.full(len(columns), -1)
    for i, name in enumerate(words):
        if depth[i] and name[2] == "p":
            side, level = name[0], int(name[1])
            above = (f"{side}{level - 1}p" if level else "last_price" if side == "b" else "b0p")
            base[i] = at[above]
    chained = tuple(int(i) for i in np.flatnonzero(base >= 0))  # bases sit before their words
    assert all(base[i] < i for i in chained)
    # The unit beside the token; depth words of one kind side by side: a book that moves
    # changes all its levels at once, so their bits in the bitmask move together.
    kind = [("qop".index(w[2]) + 1 if d else 0) for w, d in zip(words, depth, strict=True)]
    order = np.array([0, len(words), *sorted(range(1, len(words)), key=lambda i: (kind[i], i))])
    qty = np.array([w in _QTY_FIELDS or (d and w[2] == "q") for w, d in zip(words, depth,
                                                                           strict=True)])
    return _Layout(len(words), base, chained, np.array([c in _ROW_FIELDS for c in columns]),
                   np.array([d and w[2] == "o" for w, d in zip(words, depth, strict=True)]),
                   qty, order)


_LAYOUTS = {length: _layout(length) for length in PACKET_DTYPES}


class TickColumnsError(ValueError):
    """A packed frame that does not unpack (corrupt, cut short, or its reference missing)."""


class TickColumnsState:
    """Within one Zstandard frame, per packet length: the tokens met so far by slot (the order
    they were first met in) and each slot's last packet as columns (order counts turned,
    quantities in the unit, the unit last)."""

    def __init__(self) -> None:
        self._tokens: dict[int, np.ndarray] = {}  # per length: token by slot
        self._sorted: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # tokens sorted, their slots
        self._last: dict[int, np.ndarray] = {}  # per length: last columns by slot (zeros: none)

    def clear(self) -> None:
        """Forget everything (a new frame begins)."""
        self._tokens.clear()
        self._sorted.clear()
        self._last.clear()

    def slot_count(self, length: int) -> int:
        """Tokens of this packet length met so far."""
        held = self._tokens.get(length)
        return 0 if held is None else int(held.size)

    def slots_of(self, length: int, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(slot per token, the new tokens in slot order): tokens not met yet get the next slots
        in the order they first appear."""
        slots = np.full(tokens.size, -1, dtype=np.int64)
        known = self._sorted.get(length)
        if known is not None:
            pos = np.minimum(np.searchsorted(known[0], tokens), known[0].size - 1)
            hit = known[0][pos] == tokens
            slots[hit] = known[1][pos[hit]]
        missing = slots < 0
        if not missing.any():
            return slots, tokens[:0]
        uniq, first = np.unique(tokens[missing], return_index=True)
        new = uniq[np.argsort(first, kind="stable")]
        self.add_slots(length, new)
        ordered = self._sorted[length]
        slots[missing] = ordered[1][np.searchsorted(ordered[0], tokens[missing])]
        return slots, new

    def add_slots(self, length: int, new: np.ndarray) -> None:
        """Give `new` (tokens not met yet) the next slots, in order."""
        held = self._tokens.get(length, np.zeros(0, dtype=np.int64))
        held = np.concatenate((held, new.astype(np.int64)))
        self._tokens[length] = held
        order = np.argsort(held, kind="stable")
        self._sorted[length] = (held[order], order.astype(np.int64))
        last = self._last.get(length)
        if last is None or last.shape[0] < held.size:
            grown = np.zeros((max(2 * held.size, 64), _LAYOUTS[length].width + 1), np.uint32)
            if last is not None:
                grown[:last.shape[0]] = last
            self._last[length] = grown

    def token_of(self, length: int, slots: np.ndarray) -> np.ndarray:
        """The tokens at these slots (each below `slot_count`)."""
        return self._tokens[length][slots]

    def reference(self, length: int, slots: np.ndarray) -> np.ndarray:
        """The last columns of each slot's packet (zeros for one not seen yet)."""
        return self._last[length][slots]

    def update(self, length: int, slots: np.ndarray, columns: np.ndarray) -> None:
        """Remember these packets (a slot's later packet in the list wins)."""
        if slots.size > 1 and not (np.diff(slots) > 0).all():
            order = np.argsort(slots, kind="stable")
            ranked = slots[order]
            last = order[np.r_[ranked[1:] != ranked[:-1], True]]
            slots, columns = slots[last], columns[last]
        self._last[length][slots] = columns


def _zigzag(d: np.ndarray) -> np.ndarray:
    s = d.view(np.int32)
    return ((s << np.int32(1)) ^ (s >> np.int32(31))).view(np.uint32)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    return (z >> np.uint32(1)) ^ (np.uint32(0) - (z & np.uint32(1)))


def _turn(words: np.ndarray, turn: np.ndarray) -> None:
    """Rotate the marked columns by 16 bits in place (its own inverse)."""
    cols = words[:, turn]
    words[:, turn] = (cols >> np.uint32(16)) | (cols << np.uint32(16))


def pack_frame_columns(frame: bytes, state: TickColumnsState) -> bytes | None:
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
    out = [_HEAD.pack(int(buf[0]) << 8 | int(buf[1]), len(runs))]
    out.extend(_RUN.pack(length, n) for _, length, n in runs)
    for offset, length, n in runs:
        lay = _LAYOUTS[length]
        packets = buf[offset:offset + n * (length + 2)].reshape(n, length + 2)[:, 2:]
        words = np.ascontiguousarray(packets).view(_BE32).astype(np.uint32)
        _turn(words, lay.turn)
        unit = np.gcd.reduce(words[:, lay.qty], axis=1) if lay.qty.any() else \
            np.zeros(n, dtype=np.uint32)
        unit[unit == 0] = 1
        words[:, lay.qty] //= unit[:, None]
        words = np.concatenate((words, unit[:, None].astype(np.uint32)), axis=1)
        slots, new = state.slots_of(length, words[:, 0].astype(np.int64))
        ref = state.reference(length, slots)
        state.update(length, slots, words)
        with np.errstate(over="ignore"):
            r = words - ref
            for j in reversed(lay.chained):  # each base still holds its own change
                r[:, j] -= r[:, lay.base[j]]
            rows = words[:, lay.row]
            rows[1:] -= words[:-1, lay.row]
            rows[0] -= ref[0, lay.row]
            r[:, lay.row] = rows
        r[:, 0] = (np.diff(slots, prepend=-1) - 1).astype(np.int32).view(np.uint32)
        z = _zigzag(r)[:, lay.order]
        nonzero = z != 0
        values = z.T[nonzero.T]
        out.append(_NEW.pack(new.size) + new.astype(_BE32).tobytes())
        out.append(np.packbits(nonzero, axis=1).tobytes())
        out.append(np.ascontiguousarray(values.view(np.uint8).reshape(-1, 4).T).tobytes())
    return b"".join(out)


def unpack_frame_columns(payload: bytes, state: TickColumnsState) -> bytes:
    """The frame a `pack_frame_columns` payload holds, against and then into `state`. Raises
    TickColumnsError when it does not unpack."""
    try:
        return _unpack(payload, state)
    except (ValueError, IndexError, struct.error) as exc:
        if isinstance(exc, TickColumnsError):
            raise
        raise TickColumnsError(f"packed tick frame does not unpack: {exc}") from None


def _unpack(payload: bytes, state: TickColumnsState) -> bytes:
    try:
        count, nruns = _HEAD.unpack_from(payload, 0)
        pos = _HEAD.size
        runs = []
        for _ in range(nruns):
            runs.append(_RUN.unpack_from(payload, pos))
            pos += _RUN.size
    except struct.error:
        raise TickColumnsError("packed tick frame header cut short") from None
    out = [struct.pack(">H", count)]
    data = np.frombuffer(payload, dtype=np.uint8)
    for length, n in runs:
        if length not in PACKET_DTYPES or n == 0:
            raise TickColumnsError(f"packed tick frame holds a run of {n} packets of {length} "
                                   "bytes")
        lay = _LAYOUTS[length]
        try:
            (fresh,) = _NEW.unpack_from(payload, pos)
        except struct.error:
            raise TickColumnsError("packed tick frame cut short") from None
        pos += _NEW.size
        cols = lay.width + 1
        mask_bytes = (cols + 7) // 8 * n
        if pos + 4 * fresh + mask_bytes > data.size:
            raise TickColumnsError("packed tick frame cut short")
        new = data[pos:pos + 4 * fresh].view(_BE32).astype(np.int64)
        pos += 4 * fresh
        nonzero = np.unpackbits(data[pos:pos + mask_bytes].reshape(n, -1), axis=1,
                                count=cols).view(bool).T
        pos += mask_bytes
        count_nz = int(np.count_nonzero(nonzero))
        if pos + 4 * count_nz > data.size:
            raise TickColumnsError("packed tick frame cut short")
        values = np.ascontiguousarray(data[pos:pos + 4 * count_nz].reshape(4, count_nz).T)
        pos += 4 * count_nz
        zt = np.zeros((cols, n), dtype=np.uint32)
        zt[nonzero] = values.view("<u4").reshape(count_nz)
        r = np.empty((cols, n), dtype=np.uint32)  # column by column, in word order
        r[lay.order] = _unzigzag(zt)
        start = state.slot_count(length)
        slots = np.cumsum(r[0].view(np.int32).astype(np.int64) + 1) - 1
        if slots.min() < 0 or slots.max() >= start + fresh:
            raise TickColumnsError("packed tick frame refers to a token not in this frame")
        if fresh:
            state.add_slots(length, new)
        tokens = state.token_of(length, slots)
        ref = state.reference(length, slots)
        with np.errstate(over="ignore"):
            for j in lay.chained:
                r[j] += r[lay.base[j]]
            rows = r[lay.row]
            rows[:, 0] += ref[0, lay.row]
            r[lay.row] = np.cumsum(rows, axis=1, dtype=np.uint32)
            ref[:, lay.row] = 0
            words = r.T + ref
        words[:, 0] = tokens.astype(np.uint32)
        state.update(length, slots, words)
        with np.errstate(over="ignore"):
            words = words[:, :-1] * np.where(lay.qty, words[:, -1:], np.uint32(1))
        _turn(words, lay.turn)
        framed = np.empty((n, length + 2), dtype=np.uint8)
        framed[:, 0] = length >> 8
        framed[:, 1] = length & 0xFF
        framed[:, 2:] = words.astype(_BE32).view(np.uint8).reshape(n, length)
        out.append(framed.tobytes())
    if pos != data.size:
        raise TickColumnsError("packed tick frame has bytes after its packets")
    return b"".join(out)
