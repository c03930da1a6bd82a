"""An index's option legs in one snapshot as columns, read as LegRecords only where a row is read.

Why: at a full chain a snapshot holds ~2,400 legs. A LegRecord per leg (35 fields, most of them
new float objects, and an object the cyclic garbage collector tracks) cost ~3.5 ms a cycle to
build and drove the young collections, yet most readers read either a few rows (the chain
rows on screen, the largest OI changes, the ATM legs) or one field of every leg (the alert
rules, the store, the feed's payload, the leg files). `LegRows` holds the analytics' own
columns (optui.collectors.bucket_analytics: one per LegRecord field, a numpy array or a list)
and builds a LegRecord the first time its row is read (then kept: a row read twice is the same
object). A row's values are those the LegRecord built from the columns' `tolist()` holds: Python
floats, ints and strings, never numpy scalars.

The LegRecords read from a LegRows are not to be modified: the columns are what column readers
see. `leg_column`, `leg_array` and `legs_where` read any sequence of LegRecords (a LegRows by
its columns, a list leg by leg), so a reader takes both.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from itertools import chain, repeat
from operator import eq
from typing import Any, overload

import numpy as np

from optui.models import LegRecord

LEG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(LegRecord))
"""LegRecord's fields in constructor order: the columns of a LegRows."""


def _pick(column: Any, rows: Sequence[int]) -> Any:
    """The values of `column` (an array or a list) at `rows`, as the same kind."""
    if isinstance(column, np.ndarray):
        return column[np.asarray(rows, dtype=np.intp)]
    return list(map(column.__getitem__, rows))


def _plain(column: Any) -> list[Any]:
    """A column's values as a list of Python values (an array's `tolist()`)."""
    return column.tolist() if isinstance(column, np.ndarray) else column  # type: ignore[no-any-return]


class LegRows(Sequence[LegRecord]):
    """Legs as columns (`columns`: every LegRecord field, arrays or lists of one length), a
    read-only sequence of LegRecords in row order.

    `legs[i]` builds (once) the LegRecord of row i; iterating builds every row's not yet built
    in one pass; `legs[a:b]` is a view of those rows (nothing copied until its `columns` are
    asked for, then array columns are sliced as views; a row read through either is the same
    object) and `take(rows)` a LegRows of the rows given; `column(name)` is one field of every
    leg without building a record. Equal to any sequence of equal LegRecords (as a list of them
    would be). Pickles, copies and deep-copies as its columns. Raises ValueError when a field
    is missing or the columns' lengths differ.
    """

    __slots__ = ("_columns", "_n", "_ordered", "_root", "_rows", "_start")

    def __init__(self, columns: Mapping[str, Any]) -> None:
        missing = [name for name in LEG_FIELDS if name not in columns]
        if missing:
            raise ValueError(f"leg columns missing: {', '.join(missing)}")
        own = {name: columns[name] for name in LEG_FIELDS}
        lengths = {len(col) for col in own.values()}
        if len(lengths) > 1:
            raise ValueError(f"leg columns of different lengths: {sorted(lengths)}")
        self._columns: dict[str, Any] = own  # a view's: the slices asked for so far
        self._ordered: dict[str, Any] | None = own  # every column, in field order
        self._n = lengths.pop()
        self._root = self  # the LegRows holding the columns and the rows built (a view's base)
        self._start = 0  # where this view starts in its root
        self._rows: list[LegRecord | None] | None = None  # the root's rows built so far

    def _view(self, start: int, n: int) -> LegRows:
        """Rows [start, start + n) of this one's root, as a view (nothing copied)."""
        root = self._root
        if start == 0 and n == root._n:
            return root
        out = LegRows.__new__(LegRows)
        out._columns = {}  # sliced from the root's as asked for
        out._ordered = None
        out._n = n
        out._root = root
        out._start = start
        out._rows = None
        return out

    @classmethod
    def of(cls, legs: Iterable[LegRecord]) -> LegRows:
        """The LegRows of some LegRecords (columns of their values; the records themselves
        are its rows)."""
        records = list(legs)
        if records:
            columns = dict(zip(LEG_FIELDS, map(list, zip(*(
                [getattr(leg, name) for name in LEG_FIELDS] for leg in records), strict=True)),
                strict=True))
        else:
            columns = {name: [] for name in LEG_FIELDS}
        out = cls(columns)
        out._rows = list(records)
        return out

    @classmethod
    def concat(cls, legs: Sequence[Sequence[LegRecord]]) -> LegRows:
        """The rows of each of `legs` (LegRows or other sequences of LegRecords) one after
        another. Adjacent views of one LegRows (each bucket's legs of an index) give a view of
        it, without copying the columns."""
        parts = [p if isinstance(p, LegRows) else LegRows.of(p) for p in legs]
        if not parts:
            return cls({name: [] for name in LEG_FIELDS})
        if len(parts) == 1:
            return parts[0]
        root = parts[0]._root
        at = parts[0]._start
        for part in parts:
            if part._root is not root or part._start != at:
                break
            at += part._n
        else:
            return root._view(parts[0]._start, at - parts[0]._start)
        columns: dict[str, Any] = {}
        for name in LEG_FIELDS:
            cols = [part.column(name) for part in parts]
            if all(isinstance(col, np.ndarray) for col in cols):
                columns[name] = np.concatenate(cols)
            else:
                columns[name] = list(chain.from_iterable(map(_plain, cols)))
        return cls(columns)

    @property
    def columns(self) -> dict[str, Any]:
        """Every field's column by LegRecord field name, in field order (do not modify)."""
        ordered = self._ordered
        if ordered is None:  # a view: its slices of the root's columns, in field order
            ordered = self._ordered = {name: self.column(name) for name in LEG_FIELDS}
        return ordered

    def column(self, name: str) -> Any:
        """One field of every leg, in row order: the column itself, a numpy array or a list
        (do not modify). Raises KeyError for a name that is not a LegRecord field."""
        own = self._columns
        col = own.get(name)
        if col is None:  # a view: its slice of the root's column, made once
            start = self._start
            col = own[name] = self._root._columns[name][start:start + self._n]
        return col

    def take(self, rows: Sequence[int] | np.ndarray) -> LegRows:
        """A LegRows of the rows at `rows` (positions, in the order given); rows already
        built are kept."""
        n = self._n
        positions = np.asarray(rows, dtype=np.intp).reshape(-1)
        if positions.size and (positions.min() < -n or positions.max() >= n):
            raise IndexError("leg row out of range")
        at = (np.where(positions < 0, positions + n, positions) + self._start).tolist()
        root = self._root
        out = LegRows({name: _pick(col, at) for name, col in root._columns.items()})
        if root._rows is not None:
            out._rows = [root._rows[i] for i in at]
        return out

    def where(self, **equal: Any) -> LegRows:
        """The legs whose fields equal the values given (e.g. `bucket="this_week"`), in row
        order."""
        n = self._n
        hit = np.ones(n, dtype=bool)
        for name, value in equal.items():
            col = self.column(name)
            if isinstance(col, np.ndarray) and col.dtype != object:
                hit &= col == value
            else:
                hit &= np.fromiter(map(eq, col, repeat(value, n)), dtype=bool, count=n)
        if hit.all():
            return self
        return self.take(np.flatnonzero(hit))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> LegRecord: ...

    @overload
    def __getitem__(self, i: slice) -> LegRows: ...

    def __getitem__(self, i: int | slice) -> LegRecord | LegRows:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            if step != 1:
                return self.take(range(start, stop, step))
            return self._view(self._start + start, max(0, stop - start))
        n = self._n
        at = i.__index__()
        if at < 0:
            at += n
        if not 0 <= at < n:
            raise IndexError("leg row out of range")
        root = self._root
        at += self._start
        rows = root._rows
        if rows is None:
            rows = root._rows = [None] * root._n
        leg = rows[at]
        if leg is None:
            leg = rows[at] = LegRecord(*[col.item(at) if isinstance(col, np.ndarray) else col[at]
                                         for col in root._columns.values()])
        return leg

    def _all(self) -> list[LegRecord]:
        """Every row's LegRecord, those not built yet built in one pass."""
        root, start, stop = self._root, self._start, self._start + self._n
        rows = root._rows
        if rows is not None:
            mine = rows[start:stop]
            if None not in mine:
                return mine  # type: ignore[return-value]
        built = list(map(LegRecord, *map(_plain, self.columns.values()))) if self._n else []
        if rows is None:
            rows = root._rows = [None] * root._n
        else:  # a row read before stays the object it was
            built = [old if old is not None else new
                     for old, new in zip(rows[start:stop], built, strict=True)]
        rows[start:stop] = built
        return built

    def __iter__(self) -> Iterator[LegRecord]:
        return iter(self._all())

    def __reversed__(self) -> Iterator[LegRecord]:
        return reversed(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == self._n and self._all() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (LegRows, (self.columns,))

    def __repr__(self) -> str:
        return f"LegRows({self._n} legs)"


def leg_column(legs: Sequence[LegRecord], name: str) -> Sequence[Any]:
    """One field of every leg, in leg order: a LegRows' column itself (a numpy array or a
    list; do not modify), else a list of the legs' values."""
    if isinstance(legs, LegRows):
        return legs.column(name)  # type: ignore[no-any-return]
    return [getattr(leg, name) for leg in legs]


def leg_values(legs: Sequence[LegRecord], name: str) -> list[Any]:
    """One field of every leg as a list of Python values (a new list)."""
    col = leg_column(legs, name)
    return col.tolist() if isinstance(col, np.ndarray) else list(col)


def leg_array(legs: Sequence[LegRecord], name: str, dtype: Any = float) -> np.ndarray:
    """One numeric field of every leg as an array of `dtype`."""
    return np.asarray(leg_column(legs, name), dtype=dtype)


def legs_where(legs: Sequence[LegRecord], **equal: Any) -> Sequence[LegRecord]:
    """The legs whose fields equal the values given, in leg order (a LegRows of those rows
    for a LegRows, else a list)."""
    if isinstance(legs, LegRows):
        return legs.where(**equal)
    items = list(equal.items())
    return [leg for leg in legs if all(getattr(leg, name) == value for name, value in items)]


__all__ = ["LEG_FIELDS", "LegRows", "leg_array", "leg_column", "leg_values", "legs_where"]
