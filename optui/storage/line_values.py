"""InfluxDB line protocol, one value at a time: escaping names and tag values, field values, times.

The rules are InfluxDB's (docs.influxdata.com, "Line protocol", Special characters): measurements
escape commas and spaces; tag keys, tag values and field keys also escape equals signs; string field
values are double-quoted with backslashes and double quotes escaped. Integers carry an `i` suffix.
Names InfluxDB would read back altered raise UnrepresentableError instead of being written.
"""

from __future__ import annotations

import math
import numbers
from datetime import UTC, datetime, timedelta
from typing import Any

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
    """One field value in line protocol, or None when InfluxDB cannot store it (NaN, +-inf, None)."""
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
    """Nanoseconds since the epoch of an aware datetime (microsecond precision)."""
    if at.tzinfo is None:
        raise UnrepresentableError("naive point time (use an aware datetime)")
    return (at - _EPOCH) // _US * 1000
