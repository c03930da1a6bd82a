"""Bulk formatting of points into InfluxDB line protocol (nanosecond precision), column by column.

Formatting is the client's whole cost of an InfluxDB write, and on a shared machine every
microsecond of it is taken from the server ingesting the lines: built point by point and field by
field in Python it costs a third of what influxd spends per line. Here a batch is cut into runs of
points with the same measurement and field names, each field becomes a column (`itemgetter` over
the field dicts, in C), and each column is formatted in one pass: `key=value` texts come from
C-level `map`s, a value repeated across the batch (a strike, an expiry's days to expiry, a session's
OHLC) is formatted once, and so is each series' escaped `measurement,tags` prefix and each distinct
timestamp. Rows are joined with `str.join` over `zip` of the columns. Nothing but strings is kept
per point, so the garbage collector has no per-point containers to walk. Values InfluxDB cannot
hold (NaN, infinities, None) are omitted; a point left with no fields, or whose names cannot be
represented, is dropped and counted rather than failing the batch. The value rules themselves are
in `line_values`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from itertools import groupby
from operator import attrgetter, itemgetter, methodcaller
from typing import Any

from optui.storage.line_values import (
    UnrepresentableError,
    escape_key,
    escape_measurement,
    escape_string_field,
    format_value,
    time_ns,
)
from optui.storage.points import Point

__all__ = [
    "LineBatch", "LineFormatter", "UnrepresentableError", "escape_key", "escape_measurement",
    "escape_string_field", "field_texts", "format_points", "format_value", "log_dropped", "time_ns",
]

log = logging.getLogger(__name__)

_MEASUREMENT = attrgetter("measurement")
_TAGS = attrgetter("tags")
_FIELDS = attrgetter("fields")
_TIME = attrgetter("time")
_ITEMS = methodcaller("items")
_VALUES = methodcaller("values")
_PRESENT = partial(filter, None)  # a row's texts without the None of values not stored


@dataclass
class LineBatch:
    """Formatted lines plus what was dropped and why (first few reasons, for the log)."""

    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count `count` points not written for `reason` (the first five reasons are kept)."""
        self.dropped += count
        if len(self.reasons) < 5:
            self.reasons.append(reason)

    def body(self) -> bytes:
        """The lines as one request body (newline-terminated)."""
        return ("\n".join(self.lines) + "\n").encode("utf-8") if self.lines else b""


def field_texts(key: str, column: Sequence[Any]) -> tuple[list[str | None], bool]:
    """`key` (an escaped field key with its `=`) plus each value of one field column in line
    protocol, None where the value cannot be stored; and whether any value is None.

    A column of one exact type (float, int, str, bool: the usual case) is formatted by C-level
    maps; floats repeated across the column are formatted once. Mixed or other types (numpy
    scalars, None) go value by value through `format_value`.
    """
    kinds = set(map(type, column))
    kind = kinds.pop() if len(kinds) == 1 else None
    # A column whose first values are mostly distinct (prices, OI) is not worth a memo.
    sample = column[:64]
    repeats = kind is str or kind is bool or len(set(sample)) * 2 <= len(sample)
    if repeats and (kind is float or kind is int or kind is str or kind is bool):
        memo: dict[Any, str | None] = dict.fromkeys(column)
        # 0.0 and -0.0 are equal and share a slot: a float column holding a zero goes value by value.
        if kind is str or kind is bool or len(memo) * 4 <= len(column) and 0.0 not in memo:
            for value in memo:
                text = format_value(value)
                memo[value] = None if text is None else key + text
            return list(map(memo.__getitem__, column)), None in memo.values()
    if kind is float:
        total = sum(column)
        if total - total == 0.0:  # every value finite (NaN or +-inf makes the sum NaN or inf)
            return list(map(key.__add__, map(float.__repr__, column))), False
        texts: list[str | None] = [key + float.__repr__(v) if v - v == 0.0 else None for v in column]
        return texts, True
    if kind is int:
        return list(map((key.replace("%", "%%") + "%di").__mod__, column)), False
    texts = []
    for value in column:
        text = format_value(value)
        texts.append(None if text is None else key + text)
    return texts, None in texts


class LineFormatter:
    """Caches escaped measurements, tag sets and field keys across calls (bounded)."""

    _MAX_CACHE = 100_000

    def __init__(self) -> None:
        self._measurements: dict[str, str] = {}
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._keys: dict[str, str] = {}

    def _trim(self) -> None:
        if len(self._series) > self._MAX_CACHE:
            self._series.clear()
        if len(self._keys) > self._MAX_CACHE:
            self._keys.clear()

    def series_key(self, measurement: str, tags: Mapping[str, str]) -> str:
        """`measurement,k=v,...` with tag keys sorted and empty tag values left out."""
        items = tuple(sorted(tags.items()))
        cache_key = (measurement, items)
        prefix = self._series.get(cache_key)
        if prefix is None:
            m = self._measurements.get(measurement)
            if m is None:
                m = self._measurements[measurement] = escape_measurement(measurement)
            parts = [m]
            for k, v in items:
                if v is None or v == "":
                    continue  # InfluxDB rejects empty tag values; absent is the same query-wise
                parts.append(f"{escape_key(k, 'tag key')}={escape_key(str(v), 'tag value')}")
            prefix = self._series[cache_key] = ",".join(parts)
        return prefix

    def field_key(self, name: str) -> str:
        """`name=` with the field key escaped (UnrepresentableError when it cannot be)."""
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = escape_key(name, "field key") + "="
        return key

    def format_points(self, points: Iterable[Point]) -> LineBatch:
        """Lines for points, in the given order."""
        self._trim()
        pts = points if isinstance(points, list) else list(points)
        batch = LineBatch()
        if not pts:
            return batch
        # Nothing is kept per point but strings: containers kept per point (a tuple of values,
        # of tag items) would make each garbage collection walk all of them again.
        measurements = list(map(_MEASUREMENT, pts))
        field_dicts = list(map(_FIELDS, pts))
        times = list(map(_TIME, pts))
        stamp_of: dict[datetime, str | None] = dict.fromkeys(times)
        for at in stamp_of:
            try:
                stamp_of[at] = str(time_ns(at))
            except UnrepresentableError as exc:
                if len(batch.reasons) < 5:
                    batch.reasons.append(str(exc))
                stamp_of[at] = None
        single = len(set(measurements)) == 1
        rows = self._one_run(measurements[0], field_dicts, batch) if single else None
        if rows is None:
            rows = []
            start = 0
            for (measurement, names), run in groupby(zip(measurements, map(tuple, field_dicts), strict=True)):
                end = start + sum(1 for _ in run)
                rows.extend(self._rows(measurement, names, field_dicts[start:end], batch))
                start = end
        prefixes = self._prefixes(measurements, list(map(_TAGS, pts)), single, batch)
        self._assemble(batch, measurements, prefixes, rows, list(map(stamp_of.__getitem__, times)))
        return batch

    def _one_run(self, measurement: str, dicts: list[dict[str, Any]], batch: LineBatch) -> list[str] | None:
        """`_rows` of points that all have the same field names (in any order), else None."""
        if len(set(map(len, dicts))) != 1:
            return None
        try:  # as many fields as the first, and each of its names: the same names
            return self._rows(measurement, tuple(dicts[0]), dicts, batch)
        except KeyError:
            return None

    def _prefixes(self, measurements: list[str], tag_sets: list[Mapping[str, str]], single: bool,
                  batch: LineBatch) -> list[str | None]:
        """Each point's `measurement,tags` prefix (None when it cannot be represented), made once
        per distinct measurement and tag set. Hashable tag sets (FrozenTags) are looked up as
        they are; plain dicts with the same keys in the same order (one measurement) by their
        values; others by their items (a tag set in another key order is another key with the
        same, sorted, prefix)."""
        try:
            prefix_of: dict[Any, str | None] = dict.fromkeys(zip(measurements, tag_sets, strict=True))
        except TypeError:
            pass
        else:
            for measurement, tags in prefix_of:
                prefix_of[measurement, tags] = self._prefix(measurement, tags, batch)
            return list(map(prefix_of.__getitem__, zip(measurements, tag_sets, strict=True)))
        if single:
            layouts = set(map(tuple, tag_sets))
            if len(layouts) == 1:
                names = layouts.pop()
                values = list(map(tuple, map(_VALUES, tag_sets)))
                prefix_of = dict.fromkeys(values)
                for key in prefix_of:
                    prefix_of[key] = self._prefix(measurements[0], dict(zip(names, key, strict=True)), batch)
                return list(map(prefix_of.__getitem__, values))

        def items() -> Iterable[tuple[str, tuple[tuple[str, str], ...]]]:
            return zip(measurements, map(tuple, map(_ITEMS, tag_sets)), strict=True)

        prefix_of = dict.fromkeys(items())
        for key in prefix_of:
            prefix_of[key] = self._prefix(key[0], dict(key[1]), batch)
        return list(map(prefix_of.__getitem__, items()))

    def format_columns(
        self,
        measurement: str,
        tags_list: Sequence[Mapping[str, str]],
        times_ns: Sequence[int],
        fields_columns: Mapping[str, Sequence[Any]],
    ) -> LineBatch:
        """Lines for one measurement given in columns (row i = tags_list[i], times_ns[i], ...).

        Columns may be lists or 1-D numpy arrays (NaN or None = absent); raises ValueError when
        the lengths differ or a field key cannot be represented.
        """
        n = len(times_ns)
        if len(tags_list) != n or any(len(c) != n for c in fields_columns.values()):
            raise ValueError("format_columns: tags_list, times_ns and every column must match")
        self._trim()
        batch = LineBatch()
        if n == 0:
            return batch
        try:
            keys = [self.field_key(name) for name in fields_columns]
        except UnrepresentableError as exc:
            raise ValueError(f"format_columns: {exc}") from None
        # tolist() turns numpy columns into Python scalars in C.
        columns = [c.tolist() if hasattr(c, "tolist") else list(c) for c in fields_columns.values()]
        times = times_ns.tolist() if hasattr(times_ns, "tolist") else list(times_ns)
        measurements = [measurement] * n
        prefixes = self._prefixes(measurements, list(tags_list), True, batch)
        stamp_of: dict[int, str] = {t: str(int(t)) for t in dict.fromkeys(times)}
        self._assemble(batch, measurements, prefixes, self._texts_to_rows(keys, columns, n),
                       list(map(stamp_of.__getitem__, times)))
        return batch

    def _prefix(self, measurement: str, tags: Mapping[str, str], batch: LineBatch) -> str | None:
        try:
            return self.series_key(measurement, tags)
        except UnrepresentableError as exc:
            if len(batch.reasons) < 5:
                batch.reasons.append(f"{measurement}: {exc}")
            return None

    def _rows(self, measurement: str, names: tuple[str, ...], dicts: list[dict[str, Any]],
              batch: LineBatch) -> list[str]:
        """The field part of each of a run of field dicts with the same names in the same order
        ("" when a row has nothing storable or a field key cannot be represented)."""
        try:
            keys = [self.field_key(name) for name in names]
        except UnrepresentableError as exc:
            if len(batch.reasons) < 5:
                batch.reasons.append(f"{measurement}: {exc}")
            return [""] * len(dicts)
        columns = [list(map(itemgetter(name), dicts)) for name in names]
        return self._texts_to_rows(keys, columns, len(dicts))

    @staticmethod
    def _texts_to_rows(keys: list[str], columns: Sequence[Sequence[Any]], n: int) -> list[str]:
        if not keys:
            return [""] * n
        texts = []
        missing = False
        for key, column in zip(keys, columns, strict=True):
            column_texts, column_missing = field_texts(key, column)
            texts.append(column_texts)
            missing = missing or column_missing
        if not missing:
            return list(map(",".join, zip(*texts, strict=True)))
        return list(map(",".join, map(_PRESENT, zip(*texts, strict=True))))

    @staticmethod
    def _assemble(batch: LineBatch, measurements: Sequence[str], prefixes: list[str | None],
                  rows: list[str], stamps: list[str | None]) -> None:
        """`prefix fields time` lines into `batch`; rows without a prefix, a time or any field
        are dropped and counted."""
        if None not in prefixes and None not in stamps and "" not in rows:
            batch.lines = list(map(" ".join, zip(prefixes, rows, stamps, strict=True)))  # type: ignore[arg-type]
            return
        unnamed = 0
        for measurement, prefix, row, stamp in zip(measurements, prefixes, rows, stamps, strict=True):
            if prefix is None or stamp is None:
                unnamed += 1  # the reason was noted once, where the prefix or time was made
            elif not row:
                batch.drop(f"{measurement}: no storable fields")
            else:
                batch.lines.append(f"{prefix} {row} {stamp}")
        batch.dropped += unnamed


def format_points(points: Iterable[Point]) -> LineBatch:
    """Lines for points with a fresh formatter (see LineFormatter for repeated use)."""
    return LineFormatter().format_points(points)


def log_dropped(batch: LineBatch, where: str) -> None:
    """Warn once per batch about dropped points, naming the first reasons."""
    if batch.dropped:
        log.warning(
            "%s: %d point(s) not written (%s)", where, batch.dropped, "; ".join(batch.reasons)
        )
