"""The latest tick of every streamed instrument, answered as Kite /quote dicts.

A TickBook folds TickBatches (optui.tick_packets) into one row per instrument token, vectorised
per batch: the last price follows every tick; the quote fields (volume, average price, buy and
sell quantities, ohlc) the last quote or full tick; OI, last trade and exchange times and the
five-level depth the last full tick, exactly as applying the ticks one by one in frame order
would leave them. Rows grow with the instruments seen (new tokens arrive only when
subscriptions change), so memory is bounded by the instruments subscribed in a day.

`quote(token)` gives the instrument's state in the shape of one entry of Kite's GET /quote `data`
(as `kiteconnect.KiteConnect.quote` returns it: times as naive IST datetimes), so the engine's
quote conversion (optui.collectors.source.quote_from_kite) and everything after it read a
streamed quote exactly as a polled one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from numpy.typing import ArrayLike

from optui.collectors.quote_table import QuoteTable, ist_day_ordinal
from optui.tick_packets import DEPTH_LEVELS, MODE_FULL, MODE_LTP, TickBatch
from optui.timeutil import IST

_QUOTE_FIELDS = ("last_quantity", "average_price", "volume", "buy_quantity", "sell_quantity",
                 "open", "high", "low", "close")
_FULL_FIELDS = ("oi", "oi_day_high", "oi_day_low", "last_trade_time", "exchange_timestamp")
_DEPTH_FIELDS = ("depth_price", "depth_quantity", "depth_orders")
_BOOK_FIELDS = tuple(f for f in TickBatch.__slots__ if f != "skipped_packets")  # type: ignore[attr-defined]
_RECENT_FRAMES = 8  # token sequences whose rows `TickBook.add` keeps (3 connections, a few each)


def _last_rows(slot: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each distinct value of `slot` (frame order kept)."""
    if slot.size <= 1:
        return np.arange(slot.size)
    rev = slot[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    return np.sort(slot.size - 1 - first_in_rev)


class TickBook:
    """Latest streamed state per instrument token; not thread-safe (one owner thread)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._state = TickBatch.empty(capacity)
        self._state.tradable[:] = True
        self.mode = np.full(capacity, -1, dtype=np.int8)  # best mode seen (-1: no tick yet)
        self.ticks = np.zeros(capacity, dtype=np.int64)
        # Best mode ticked since the last mark_stale (-1: not live). A (re)subscription ticks in
        # `quote` mode until its `full` mode applies (Kite's default mode), and a quote packet
        # carries no depth, OI or exchange time: a `full` leg answers once a full tick came.
        self.live_mode = np.full(capacity, -1, dtype=np.int8)
        self._tokens: list[int] = []
        self._slot_of: dict[int, int] = {}
        self._sorted = np.zeros(0, dtype=np.int64)
        self._sorted_slot = np.zeros(0, dtype=np.int64)
        self.exchange_time = 0.0  # newest exchange timestamp applied, Unix seconds
        self._recent: list[tuple[np.ndarray, np.ndarray, bool]] = []  # see `_frame_slots`

    def __len__(self) -> int:
        return len(self._tokens)

    def _grow(self, need: int) -> None:
        size = self.mode.size
        if need <= size:
            return
        new = max(need, 2 * size)
        bigger = TickBatch.empty(new)
        bigger.tradable[:] = True
        for name in TickBatch.__slots__:  # type: ignore[attr-defined]
            if name == "skipped_packets":
                continue
            getattr(bigger, name)[:size] = getattr(self._state, name)
        self._state = bigger
        self.mode = np.concatenate([self.mode, np.full(new - size, -1, dtype=np.int8)])
        self.ticks = np.concatenate([self.ticks, np.zeros(new - size, dtype=np.int64)])
        self.live_mode = np.concatenate([self.live_mode, np.full(new - size, -1, dtype=np.int8)])

    def slots(self, tokens: ArrayLike, add: bool = False) -> np.ndarray:
        """Row of each token (-1 when not in the book); with `add`, unknown tokens get rows."""
        tok = np.asarray(tokens, dtype=np.int64)
        if self._sorted.size:
            pos = np.minimum(np.searchsorted(self._sorted, tok), self._sorted.size - 1)
            found = np.where(self._sorted[pos] == tok, self._sorted_slot[pos], -1)
        else:
            found = np.full(tok.shape, -1, dtype=np.int64)
        if add and (found < 0).any():
            for t in dict.fromkeys(tok[found < 0].tolist()):
                self._slot_of[int(t)] = len(self._tokens)
                self._tokens.append(int(t))
            self._grow(len(self._tokens))
            keys = np.fromiter(self._slot_of, dtype=np.int64, count=len(self._slot_of))
            order = np.argsort(keys)
            self._sorted = keys[order]
            self._sorted_slot = np.fromiter(self._slot_of.values(), dtype=np.int64,
                                            count=len(self._slot_of))[order]
            return self.slots(tok)
        return found

    def add(self, batch: TickBatch) -> None:
        """Apply a batch of ticks (any tokens; several ticks of one token apply in frame order)."""
        n = len(batch)
        if n == 0:
            return
        slot, once = self._frame_slots(batch.instrument_token)
        s = self._state
        mode = batch.mode.astype(np.int8)
        if once:  # each instrument ticks once in the frame (as Kite sends): plain assignment
            s.last_price[slot] = batch.last_price
            s.instrument_token[slot] = batch.instrument_token
            s.tradable[slot] = batch.tradable
            self.mode[slot] = np.maximum(self.mode[slot], mode)
            self.ticks[slot] += 1
            self.live_mode[slot] = np.maximum(self.live_mode[slot], mode)
        else:
            rows = _last_rows(slot)
            s.last_price[slot[rows]] = batch.last_price[rows]
            s.instrument_token[slot[rows]] = batch.instrument_token[rows]
            s.tradable[slot[rows]] = batch.tradable[rows]
            np.maximum.at(self.mode, slot, mode)
            np.add.at(self.ticks, slot, 1)
            np.maximum.at(self.live_mode, slot, mode)
        quoted = np.flatnonzero(mode != MODE_LTP)
        if quoted.size:
            q = quoted if once else quoted[_last_rows(slot[quoted])]
            for name in _QUOTE_FIELDS:
                getattr(s, name)[slot[q]] = getattr(batch, name)[q]
        full = np.flatnonzero(mode == MODE_FULL)
        if full.size:
            f = full if once else full[_last_rows(slot[full])]
            for name in _FULL_FIELDS + _DEPTH_FIELDS:
                getattr(s, name)[slot[f]] = getattr(batch, name)[f]
        stamps = batch.exchange_timestamp
        if stamps.size and stamps.max() > self.exchange_time:
            self.exchange_time = float(stamps.max())

    def _frame_slots(self, tokens: np.ndarray) -> tuple[np.ndarray, bool]:
        """(row of each token, adding rows for new ones; whether no token repeats). A
        connection sends its instruments in the same order frame after frame: the answers for
        the last few token sequences are kept (a token's row never changes once given)."""
        tok = np.asarray(tokens, dtype=np.int64)
        for seen, slot, once in self._recent:
            if seen.size == tok.size and np.array_equal(seen, tok):
                return slot, once
        slot = self.slots(tok, add=True)
        once = bool(slot.size == np.unique(slot).size)
        self._recent = [(tok.copy(), slot, once), *self._recent[:_RECENT_FRAMES - 1]]
        return slot, once

    def mark_stale(self, tokens: ArrayLike | None = None) -> None:
        """Take `tokens` (all when None) off the live set until their next tick (a connection
        dropped or stalled: what it last said is no longer the market)."""
        if tokens is None:
            self.live_mode[:] = -1
            return
        found = self.slots(tokens)
        self.live_mode[found[found >= 0]] = -1

    def is_live(self, tokens: ArrayLike, mode: ArrayLike = MODE_LTP) -> np.ndarray:
        """Whether each token has ticked in at least `mode` (a MODE_* code, one for all or one
        per token) since it was last marked stale: a `full` leg's quote is whole (depth, OI,
        exchange time) and its flow reference current only after a full tick."""
        found = self.slots(tokens)
        return (found >= 0) & (self.live_mode[np.maximum(found, 0)] >= np.asarray(mode))

    def has_tick(self, token: int) -> bool:
        """Whether the book holds any tick of `token`."""
        slot = self._slot_of.get(int(token))
        return slot is not None and self.mode[slot] >= 0

    def frozen(self, tokens: ArrayLike) -> TickBook:
        """A book of `tokens`' rows as they stand now (those with a tick, each once), kept as
        they are while this book moves on: it answers `quote` and `quote_table` for them as
        this book answers now (a replay keeps what a recorded call was answered with)."""
        found = self.slots(tokens)
        rows = np.unique(found[found >= 0])
        rows = rows[self.mode[rows] >= 0]
        out = TickBook.__new__(TickBook)
        out._state = TickBatch(*(getattr(self._state, name)[rows] for name in _BOOK_FIELDS))
        out.mode, out.ticks, out.live_mode = self.mode[rows], self.ticks[rows], self.live_mode[rows]
        tokens_of = out._state.instrument_token  # each row's token (set with its first tick)
        out._tokens = tokens_of.tolist()
        out._slot_of = dict(zip(out._tokens, range(rows.size), strict=True))
        order = np.argsort(tokens_of, kind="stable")
        out._sorted, out._sorted_slot = tokens_of[order], order.astype(np.int64)
        out.exchange_time = self.exchange_time
        out._recent = []
        return out

    def quote_table(self, keys: Sequence[str], tokens: ArrayLike) -> QuoteTable:
        """The latest state of `tokens` (the instruments of `keys`) as a QuoteTable, without a
        dict per instrument: each row equals `quote_from_kite(self.quote(token))` field for
        field, and a token without a tick has no quote."""
        tok = np.asarray(tokens, dtype=np.int64)
        table = QuoteTable.empty(keys)
        slot = self.slots(tok)
        ticked = slot >= 0
        ticked[ticked] = self.mode[slot[ticked]] >= 0
        at = np.flatnonzero(ticked)
        if not at.size:
            return table
        rows = slot[at]
        s = self._state
        table.has[at] = True
        table.instrument_token[at] = s.instrument_token[rows]
        for name in ("last_price", "average_price"):
            getattr(table, name)[at] = getattr(s, name)[rows]
        table.volume[at] = s.volume[rows]
        table.oi[at] = s.oi[rows]
        for name in ("open", "high", "low", "close"):  # Kite's 0: no trade yet / no close
            price = getattr(s, name)[rows]
            getattr(table, name)[at] = np.where(price > 0, price, np.nan)
        bid, ask = s.depth_price[rows, 0, 0], s.depth_price[rows, 1, 0]
        table.bid[at] = np.where(bid == 0, 0.0, bid)  # -0.0 reads as 0.0, as `price or 0.0` does
        table.ask[at] = np.where(ask == 0, 0.0, ask)
        stamp = s.exchange_timestamp[rows]
        # An index packet has no last trade time: an index's value is as of its timestamp.
        traded = np.where(s.tradable[rows], s.last_trade_time[rows], stamp)
        table.age_s[at] = np.where((stamp > 0) & (traded > 0), (stamp - traded).astype(float),
                                   np.nan)
        table.last_trade_day[at] = np.where(traded > 0, ist_day_ordinal(traded), np.nan)
        return table

    def quote_table_at(self, keys: Sequence[str], slots: np.ndarray) -> QuoteTable:
        """`quote_table` for instruments known to have ticked, by their rows (`slots`, each a
        row of a token with a tick): the same columns, gathered without a missing-row pass."""
        s = self._state
        rows = np.asarray(slots, dtype=np.intp)
        n = rows.size
        ohlc = {}
        for name in ("open", "high", "low", "close"):  # Kite's 0: no trade yet / no close
            price = getattr(s, name)[rows]
            price[price <= 0] = np.nan
            ohlc[name] = price
        depth = s.depth_price[rows, :, 0]
        bid = depth[:, 0] + 0.0  # -0.0 reads as 0.0, as `price or 0.0` does
        ask = depth[:, 1] + 0.0
        stamp = s.exchange_timestamp[rows]
        # An index packet has no last trade time: an index's value is as of its timestamp.
        traded = np.where(s.tradable[rows], s.last_trade_time[rows], stamp)
        age = (stamp - traded).astype(float)
        age[(stamp <= 0) | (traded <= 0)] = np.nan
        day = ist_day_ordinal(traded)
        day[traded <= 0] = np.nan
        return QuoteTable(list(keys), np.ones(n, dtype=bool),
                          s.instrument_token[rows].astype(np.int64, copy=False),
                          last_price=s.last_price[rows].astype(float, copy=False),
                          bid=bid, ask=ask, volume=s.volume[rows].astype(float),
                          average_price=s.average_price[rows].astype(float, copy=False),
                          oi=s.oi[rows].astype(float), age_s=age, last_trade_day=day, **ohlc)

    def quote(self, token: int) -> dict | None:
        """The token's latest state as one Kite /quote entry, or None without a tick."""
        slot = self._slot_of.get(int(token))
        if slot is None or self.mode[slot] < 0:
            return None
        s = self._state
        last = float(s.last_price[slot])
        close = float(s.close[slot])

        def stamp(seconds: int) -> datetime | None:
            if seconds <= 0:
                return None
            return datetime.fromtimestamp(int(seconds), IST).replace(tzinfo=None)

        depth = {
            side: [{"price": float(s.depth_price[slot, k, j]),
                    "quantity": int(s.depth_quantity[slot, k, j]),
                    "orders": int(s.depth_orders[slot, k, j])} for j in range(DEPTH_LEVELS)]
            for k, side in enumerate(("buy", "sell"))
        }
        at = int(s.exchange_timestamp[slot])
        # An index packet has no last trade time: an index's value is as of its timestamp.
        traded = int(s.last_trade_time[slot]) if s.tradable[slot] else at
        return {
            "instrument_token": int(s.instrument_token[slot]),
            "timestamp": stamp(at),
            "last_trade_time": stamp(traded),
            "last_price": last,
            "last_quantity": int(s.last_quantity[slot]),
            "buy_quantity": int(s.buy_quantity[slot]),
            "sell_quantity": int(s.sell_quantity[slot]),
            "volume": int(s.volume[slot]),
            "average_price": float(s.average_price[slot]),
            "oi": int(s.oi[slot]),
            "oi_day_high": int(s.oi_day_high[slot]),
            "oi_day_low": int(s.oi_day_low[slot]),
            "net_change": round(last - close, 2) if close > 0 else 0.0,
            "ohlc": {"open": float(s.open[slot]), "high": float(s.high[slot]),
                     "low": float(s.low[slot]), "close": close},
            "depth": depth,
        }
