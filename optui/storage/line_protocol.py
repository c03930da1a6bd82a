"""Bulk formatting of points into InfluxDB line protocol (nanosecond precision).

Formatting, not the network, is the bottleneck of an InfluxDB write (about 2.5 s per million
lines done naively in Python), so each distinct tag set, measurement and field key is escaped once
per batch and reused; values are dispatched on their exact type. Values InfluxDB cannot hold (NaN,
infinities, None) are omitted; a point left with no fields, or whose tags cannot be represented,
is dropped and counted rather than failing the batch.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from optui.storage.points import Point

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_INF = math.inf
_MEASUREMENT_ESC = str.maketrans({",": "\\,", " ": "\\ "})
_KEY_ESC = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESC = str.maketrans({"\\": "\\\\", '"': '\\"'})
_SPECIAL = (",", "=", " ")


class UnrepresentableError(ValueError):
    """A name or tag value that line protocol cannot carry unchanged."""


def escape_measurement(name: str) -> str:
    """Escape commas and spaces in a measurement name."""
    _check_name(name, "measurement")
    if name.startswith("#"):
        raise UnrepresentableError(f"measurement {name!r} starts with '#' (a comment line)")
    return name.translate(_MEASUREMENT_ESC)


def escape_key(text: str, what: str = "tag") -> str:
    """Escape commas, equals signs and spaces in a tag key, tag value or field key."""
    _check_name(text, what)
    return text.translate(_KEY_ESC)


def escape_string_field(text: str) -> str:
    """A string field value, quoted, with backslashes and double quotes escaped."""
    return '"' + text.translate(_STRING_ESC) + '"'


def _check_name(text: str, what: str) -> None:
    # InfluxDB keeps a backslash literally unless it precedes a special character, so a backslash
    # at the end or before ",= " cannot round-trip; newlines end the line.
    if not text:
        raise UnrepresentableError(f"empty {what}")
    if "\n" in text or "\r" in text:
        raise UnrepresentableError(f"{what} {text!r} contains a newline")
    if "\\" in text and (text.endswith("\\") or any("\\" + c in text for c in _SPECIAL)):
        raise UnrepresentableError(f"{what} {text!r} has a backslash InfluxDB would misread")


def format_value(value: Any) -> str | None:
    """One field value in line protocol, or None when InfluxDB cannot store it."""
    t = type(value)
    if t is float:
        if value != value or value == _INF or value == -_INF:
            return None
        return float.__repr__(value)
    if t is int:
        return f"{value}i"
    if t is str:
        return escape_string_field(value)
    if t is bool:
        return "true" if value else "false"
    if value is None:
        return None
    # numpy scalars and other numeric types: numpy's repr would leak "np.float64(...)".
    if isinstance(value, bool) or t.__name__ in ("bool_", "bool"):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return f"{int(value)}i"
    if isinstance(value, numbers.Real):
        return format_value(float(value))
    return escape_string_field(str(value))


def time_ns(at: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime."""
    if at.tzinfo is None:
        raise UnrepresentableError("naive point time (use an aware datetime)")
    return (at - _EPOCH) // _US * 1000


@dataclass
class LineBatch:
    """Formatted lines plus what was dropped and why (first few reasons, for the log)."""

    lines: list[str] = field(default_factory=list)
    dropped: int = 0
    reasons: list[str] = field(default_factory=list)

    def drop(self, reason: str) -> None:
        self.dropped += 1
        if len(self.reasons) < 5:
            self.reasons.append(reason)

    def body(self) -> bytes:
        """The lines as one request body (newline-terminated)."""
        return ("\n".join(self.lines) + "\n").encode("utf-8") if self.lines else b""


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
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = escape_key(name, "field key") + "="
        return key

    def _template(self, names: tuple[str, ...], types: tuple[type, ...]) -> str | None:
        """A %-format string for a point of only float and int fields, else None."""
        if not names or any(t is not float and t is not int for t in types):
            return None
        return ",".join(
            self.field_key(n).replace("%", "%%") + ("%r" if t is float else "%di")
            for n, t in zip(names, types, strict=True)
        )

    def format_points(self, points: Iterable[Point]) -> LineBatch:
        """Lines for points, in the given order."""
        self._trim()
        batch = LineBatch()
        lines = batch.lines
        append = lines.append
        times: dict[datetime, int] = {}
        # Unsorted tag items as cache key: sorting happens once per distinct series, on a miss.
        prefixes: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        field_sets: dict[tuple[str, ...], tuple[str, ...]] = {}
        templates: dict[tuple[tuple[str, ...], tuple[type, ...]], str | None] = {}
        for p in points:
            try:
                m = p.measurement
                tkey = (m, tuple(p.tags.items()))
                prefix = prefixes.get(tkey)
                if prefix is None:
                    prefix = prefixes[tkey] = self.series_key(m, p.tags)
                t = p.time
                ts = times.get(t)
                if ts is None:
                    ts = times[t] = time_ns(t)
                fields = p.fields
                values: tuple[Any, ...] = tuple(fields.values())
                # Fast path: all-numeric points become one C-level `template % values`.
                shape = (tuple(fields), tuple(map(type, values)))
                template = templates.get(shape, "")
                if template == "":
                    template = templates[shape] = self._template(*shape)
                if template is not None:
                    total = sum(values)
                    if total - total == 0:  # no NaN or infinity among them
                        append(f"{prefix} {template % values} {ts}")
                        continue
                names = shape[0]
                keys = field_sets.get(names)
                if keys is None:
                    keys = field_sets[names] = tuple(self.field_key(k) for k in names)
                parts = []
                v: Any
                for key, v in zip(keys, fields.values()):  # noqa: B905 - same dict, same length
                    tv = type(v)
                    if tv is float:
                        if v - v == 0.0:  # finite: NaN and +-inf give NaN here
                            parts.append(f"{key}{v!r}")
                    elif tv is int:
                        parts.append(f"{key}{v}i")
                    else:
                        s = format_value(v)
                        if s is not None:
                            parts.append(key + s)
            except UnrepresentableError as exc:
                batch.drop(f"{p.measurement}: {exc}")
                continue
            if not parts:
                batch.drop(f"{p.measurement}: no storable fields")
                continue
            append(f"{prefix} {','.join(parts)} {ts}")
        return batch

    def format_columns(
        self,
        measurement: str,
        tags_list: Sequence[Mapping[str, str]],
        times_ns: Sequence[int],
        fields_columns: Mapping[str, Sequence[Any]],
    ) -> LineBatch:
        """Lines for one measurement given in columns (row i = tags_list[i], times_ns[i], ...)."""
        n = len(times_ns)
        if len(tags_list) != n or any(len(c) != n for c in fields_columns.values()):
            raise ValueError("format_columns: tags_list, times_ns and every column must match")
        self._trim()
        batch = LineBatch()
        # tolist() turns numpy columns into Python scalars in C; zip(*) yields rows in C.
        names = tuple(fields_columns)
        try:
            keys = [self.field_key(name) for name in names]
        except UnrepresentableError as exc:
            raise ValueError(f"format_columns: {exc}") from None
        columns = [c.tolist() if hasattr(c, "tolist") else list(c) for c in fields_columns.values()]
        times = times_ns.tolist() if hasattr(times_ns, "tolist") else list(times_ns)
        prefixes: dict[int, str | None] = {}
        templates: dict[tuple[type, ...], str | None] = {}
        append = batch.lines.append
        rows = zip(*columns, strict=True) if columns else iter([()] * n)
        for i, values in enumerate(rows):
            tags = tags_list[i]
            prefix = prefixes.get(id(tags), "")
            if prefix == "":
                try:
                    prefix = self.series_key(measurement, tags)
                except UnrepresentableError as exc:
                    if len(batch.reasons) < 5:
                        batch.reasons.append(f"{measurement}: {exc}")
                    prefix = None
                prefixes[id(tags)] = prefix
            if prefix is None:
                batch.dropped += 1
                continue
            types = tuple(map(type, values))
            template = templates.get(types, "")
            if template == "":
                template = templates[types] = self._template(names, types)
            if template is not None:
                total = sum(values)
                if total - total == 0:
                    append(f"{prefix} {template % values} {int(times[i])}")
                    continue
            parts = []
            for key, v in zip(keys, values, strict=True):
                text = format_value(v)
                if text is not None:
                    parts.append(key + text)
            if not parts:
                batch.drop(f"{measurement}: no storable fields")
                continue
            append(f"{prefix} {','.join(parts)} {int(times[i])}")
        return batch


def format_points(points: Iterable[Point]) -> LineBatch:
    """Lines for points with a fresh formatter (see LineFormatter for repeated use)."""
    return LineFormatter().format_points(points)


def log_dropped(batch: LineBatch, where: str) -> None:
    """Warn once per batch about dropped points, naming the first reasons."""
    if batch.dropped:
        log.warning(
            "%s: %d point(s) not written (%s)", where, batch.dropped, "; ".join(batch.reasons)
        )
