"""Quotes of many instruments as columns: what the chain analytics read, one array per field.

Why: a full-chain cycle quotes thousands of legs. Turning each into a Kite /quote dict, then a
`Quote`, then gathering every field back into arrays cost most of a cycle; a streamed quote now
goes from the tick book's arrays into a `QuoteTable` in a few numpy calls
(`optui.collectors.tick_book.TickBook.quote_table`), and a polled one from its `Quote`
(`QuoteTable.from_quotes`). Both give the same values as `optui.collectors.source.quote_from_kite`
would, field for field: prices as floats, ohlc 0 (no trade yet) as NaN, an empty book side as
a bid or ask of 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from optui.models import Quote
from optui.timeutil import IST

NAN = float("nan")

FLOAT_COLUMNS: tuple[str, ...] = (
    "last_price", "bid", "ask", "volume", "average_price", "oi", "open", "high", "low", "close",
    "age_s", "last_trade_day",
)
"""The float64 columns of a QuoteTable (see the class docstring for their units)."""

_MISSING = {"bid": 0.0, "ask": 0.0}  # an instrument without a quote has an empty book


@dataclass(slots=True)
class QuoteTable:
    """One row per instrument key, in `keys` order; `has` is False where no quote came.

    Columns (float64 unless said): `instrument_token` (int64, 0 without a quote), `last_price`,
    `bid`, `ask` (best bid and offer, 0 when that side is empty or there is no quote), `volume`,
    `average_price`, `oi`, `open`, `high`, `low`, `close` (ohlc NaN before the day's first trade,
    close NaN without a previous close), `age_s` (quote time minus last trade time, seconds;
    NaN when either is unknown) and `last_trade_day` (the IST date of the last trade as a
    proleptic ordinal, NaN when unknown). Every float column is NaN on a row without a quote,
    except bid and ask (0).
    """

    keys: list[str]
    has: np.ndarray
    instrument_token: np.ndarray
    last_price: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    volume: np.ndarray
    average_price: np.ndarray
    oi: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    age_s: np.ndarray
    last_trade_day: np.ndarray
    _row_of: dict[str, int] | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def empty(cls, keys: Sequence[str]) -> QuoteTable:
        """A table of `keys` without any quote."""
        n = len(keys)
        cols = {name: np.full(n, _MISSING.get(name, NAN)) for name in FLOAT_COLUMNS}
        return cls(list(keys), np.zeros(n, dtype=bool), np.zeros(n, dtype=np.int64), **cols)

    @classmethod
    def from_quotes(cls, keys: Sequence[str], quotes: Mapping[str, Quote | None]) -> QuoteTable:
        """The table of `keys` from typed quotes (a key absent from `quotes`, or None: no quote)."""
        allq = [quotes.get(k) for k in keys]
        table = cls.empty(keys)
        rows = [i for i, q in enumerate(allq) if q is not None]
        if not rows:
            return table
        got = [allq[i] for i in rows]
        at = np.asarray(rows, dtype=np.intp)
        table.has[at] = True
        table.instrument_token[at] = [q.instrument_token for q in got]  # type: ignore[union-attr]
        for name in FLOAT_COLUMNS[:10]:
            getattr(table, name)[at] = np.array([getattr(q, name) for q in got], dtype=float)
        table.age_s[at] = [
            (q.timestamp - q.last_trade_time).total_seconds()  # type: ignore[union-attr]
            if q.timestamp and q.last_trade_time else NAN  # type: ignore[union-attr]
            for q in got
        ]
        table.last_trade_day[at] = [
            q.last_trade_time.astimezone(IST).date().toordinal()  # type: ignore[union-attr]
            if q.last_trade_time is not None else NAN  # type: ignore[union-attr]
            for q in got
        ]
        return table

    @classmethod
    def concat(cls, tables: Sequence[QuoteTable]) -> QuoteTable:
        """The tables end to end (their keys must not repeat)."""
        if len(tables) == 1:
            return tables[0]
        if not tables:
            return cls.empty([])
        keys = [k for t in tables for k in t.keys]
        cols = {name: np.concatenate([getattr(t, name) for t in tables]) for name in FLOAT_COLUMNS}
        return cls(keys, np.concatenate([t.has for t in tables]),
                   np.concatenate([t.instrument_token for t in tables]), **cols)

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """The row of each key (-1 where the table has no such key). A cycle asks for the same
        keys of a table keyed as the cycle before's: those rows are reused."""
        global _LAST_ROWS
        last = _LAST_ROWS
        if last is not None and last[0] == self.keys and last[1] == keys:
            return last[2].copy()
        found = self._rows(keys)
        _LAST_ROWS = (list(self.keys), list(keys), found.copy())
        return found

    def _rows(self, keys: Sequence[str]) -> np.ndarray:
        row_of = self._row_of
        if row_of is None:
            row_of = self._row_of = {k: i for i, k in enumerate(self.keys)}
        return np.fromiter(map(row_of.get, keys, [-1] * len(keys)), dtype=np.intp, count=len(keys))

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The columns at `rows` (from `rows`: -1 gives a row without a quote), by name, with
        `has` and `instrument_token`."""
        if not self.keys:
            return _empty_columns(rows.size)
        missing = rows < 0
        any_missing = bool(missing.any())
        safe = np.where(missing, 0, rows) if any_missing else rows
        out = {"has": self.has[safe], "instrument_token": self.instrument_token[safe]}
        out.update((name, getattr(self, name)[safe]) for name in FLOAT_COLUMNS)
        if any_missing:  # fancy indexing copied: the table itself is untouched
            out["has"][missing] = False
            out["instrument_token"][missing] = 0
            for name in FLOAT_COLUMNS:
                out[name][missing] = _MISSING.get(name, NAN)
        return out


_LAST_ROWS: tuple[list[str], list[str], np.ndarray] | None = None
"""The keys of the last table `QuoteTable.rows` read, the keys asked and their rows."""


def _empty_columns(n: int) -> dict[str, np.ndarray]:
    table = QuoteTable.empty([""] * n)
    out = {name: getattr(table, name) for name in FLOAT_COLUMNS}
    out["has"] = table.has
    out["instrument_token"] = table.instrument_token
    return out


def ist_day_ordinal(epoch_s: np.ndarray) -> np.ndarray:
    """The IST calendar date of Unix seconds (integers) as proleptic ordinals (float64)."""
    return ((np.asarray(epoch_s, dtype=np.int64) + 19_800) // 86_400 + 719_163).astype(float)
