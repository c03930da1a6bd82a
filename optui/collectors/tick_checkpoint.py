"""The tick book of a recorded session as ticker frames: a checkpoint a replay can start from.

A replay rebuilds the live run's tick book (optui.collectors.tick_book) by applying every recorded
frame in order. A `LastPackets` kept beside the recorder holds, for every instrument token and
packet length (mode) recorded so far in the session, the last packet of that length; its
`frames()` are well-formed Kite ticker frames holding each of those packets once (an instrument's
packets of several modes side by side, oldest first; instruments in the order the session first
met them, the connections' own order, so the ticks after a checkpoint pack as small steps
against it), so applying them to an empty TickBook leaves it as applying every frame would (the last price
follows the newest packet of any mode, the quote fields the newest quote or full packet, OI and
depth the newest full packet; only the per-instrument tick counts differ). The recorder writes
them at the start of each Zstandard frame of the day file (optui.collectors.record_format), so a
seek reads the checkpoint and at most one frame span of ticks instead of an hour of them.

Memory: one packet per instrument and mode of the session (a full chain: about 3,000 x 184
bytes). Updating costs one vectorised pass per recorded frame.
"""

from __future__ import annotations

import struct

import numpy as np

from optui.tick_packets import PACKET_DTYPES, FrameError, _packet_runs

MAX_PACKETS = 0xFFFF
"""A ticker frame counts its packets in a u16: a larger book is several frames."""
_BE32 = np.dtype(">u4")


class LastPackets:
    """The last packet per (instrument token, packet length) of the frames given to `add`."""

    def __init__(self) -> None:
        self._tokens: dict[int, np.ndarray] = {}  # per length: tokens, sorted
        self._packets: dict[int, np.ndarray] = {}  # per length: packet bytes, by token order
        self._seen: dict[int, np.ndarray] = {}  # per length: when each was last given (ordinal)
        self._first: dict[int, np.ndarray] = {}  # per length: the order each was first met in
        self._count = 0  # frames given so far
        self._met = 0  # (token, length) entries met so far

    def __len__(self) -> int:
        return sum(t.size for t in self._tokens.values())

    def add(self, frame: bytes) -> None:
        """Remember the packets of one well-formed ticker frame (anything else is ignored: a
        replay skips it too)."""
        buf = np.frombuffer(frame, dtype=np.uint8)
        if buf.size < 2:
            return
        try:
            runs = _packet_runs(buf)
        except FrameError:
            return
        self._count += 1
        for offset, length, n in runs:
            if length not in PACKET_DTYPES or n == 0:
                continue
            packets = buf[offset:offset + n * (length + 2)].reshape(n, length + 2)[:, 2:]
            tokens = packets[:, :4].copy().view(_BE32)[:, 0].astype(np.int64)
            # Several packets of one token in a frame: the last one wins, as in the book.
            rev_tokens, rev_first = np.unique(tokens[::-1], return_index=True)
            last = n - 1 - rev_first
            self._put(length, rev_tokens, packets[last], last)

    def _put(self, length: int, tokens: np.ndarray, packets: np.ndarray,
             position: np.ndarray) -> None:
        """Store packets (tokens sorted, `position` in the frame of each)."""
        held = self._tokens.get(length)
        if held is None:
            held = np.zeros(0, dtype=np.int64)
            self._packets[length] = np.zeros((0, length), dtype=np.uint8)
            self._seen[length] = np.zeros(0, dtype=np.int64)
            self._first[length] = np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(held, tokens), max(held.size - 1, 0))
        hit = held[pos] == tokens if held.size else np.zeros(tokens.size, dtype=bool)
        self._packets[length][pos[hit]] = packets[hit]
        self._seen[length][pos[hit]] = self._count
        if not hit.all():
            tokens_all = np.concatenate((held, tokens[~hit]))
            order = np.argsort(tokens_all, kind="stable")
            self._tokens[length] = tokens_all[order]
            self._packets[length] = np.concatenate((self._packets[length], packets[~hit]))[order]
            fresh = int((~hit).sum())
            seen = np.full(fresh, self._count, dtype=np.int64)
            self._seen[length] = np.concatenate((self._seen[length], seen))[order]
            met = self._met + np.argsort(np.argsort(position[~hit], kind="stable"))
            self._met += fresh
            self._first[length] = np.concatenate((self._first[length], met))[order]
        else:
            self._tokens[length] = held

    def frames(self) -> list[bytes]:
        """The book as ticker frames: every remembered packet once, instruments in the order
        first met, each one's packets of several modes oldest given first; several frames past
        MAX_PACKETS packets; none when nothing was given."""
        lengths_held = [length for length, seen in self._seen.items() if seen.size]
        if not lengths_held:
            return []
        seen = np.concatenate([self._seen[n] for n in lengths_held])
        first = np.concatenate([self._first[n] for n in lengths_held])
        tokens = np.concatenate([self._tokens[n] for n in lengths_held])
        lengths = np.concatenate([np.full(self._seen[n].size, n) for n in lengths_held])
        rows = np.concatenate([np.arange(self._seen[n].size) for n in lengths_held])
        # An instrument's packets sit together, at the first time it was met in any mode.
        uniq, inverse = np.unique(tokens, return_inverse=True)
        met = np.full(uniq.size, np.iinfo(np.int64).max)
        np.minimum.at(met, inverse, first)
        order = np.lexsort((seen, met[inverse]))
        out: list[bytes] = []
        for start in range(0, order.size, MAX_PACKETS):
            part = order[start:start + MAX_PACKETS]
            chunks = [struct.pack(">H", part.size)]
            for i in part.tolist():
                length = int(lengths[i])
                chunks.append(struct.pack(">H", length))
                chunks.append(self._packets[length][rows[i]].tobytes())
            out.append(b"".join(chunks))
        return out
