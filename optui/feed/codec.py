"""Snapshots as JSON and back, so a collector's cycle reaches another process whole.

The encoding is the dataclasses' own fields (optui.models, optui.alerts.model): datetimes and
dates in ISO 8601, typed warnings as {"kind", "subject", "message"}, health events as
optui.collectors.health.HealthEvent.as_dict (the health file's shape too), NaN and ±Inf as null (JSON has neither) and back to NaN for float fields,
tuples as lists, and a dict whose keys are not strings as a list of [key, value] pairs.
Decoding follows the field types, so a payload from a newer collector with extra fields still
decodes (unknown keys are dropped) and a missing field takes its default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

import numpy as np

from optui.alerts.model import Alert
from optui.collectors.health import HealthEvent
from optui.leg_rows import LEG_FIELDS, LegRows
from optui.models import Snapshot, SnapshotWarning

T = TypeVar("T")

PAYLOAD_VERSION = 2
"""Bumped when a field changes meaning; a reader refuses payloads of another version."""


@cache
def _field_names(cls: Any) -> tuple[str, ...] | None:
    """The fields of a dataclass type, or None for any other type."""
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return None


def encode(value: Any) -> Any:
    """A dataclass tree as JSON-ready values (ISO times, NaN/Inf as None)."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is SnapshotWarning or kind is HealthEvent:
        return value.as_dict()
    if kind is LegRows:
        return _encode_legs(value)
    names = _field_names(kind)  # type: ignore[arg-type]
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        if all(type(k) is str for k in value):
            return {k: encode(v) for k, v in value.items()}
        return [[encode(k), encode(v)] for k, v in value.items()]  # tuple or number keys: pairs
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return encode(value.item())
    return value


_PLAIN = frozenset({str, int, bool, type(None)})  # encoded as they are


def _encoded_column(column: Any) -> list[Any]:
    """`[encode(v) for v in column]` of a LegRows column, a float array's in a few numpy calls
    (NaN and ±Inf as None) and each distinct time or date object's ISO text made once."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        out = column.tolist()
        for i in np.flatnonzero(~np.isfinite(column)).tolist():
            out[i] = None
        return out  # type: ignore[no-any-return]
    values = column.tolist() if isinstance(column, np.ndarray) else column
    if set(map(type, values)) <= _PLAIN:
        return list(values)
    made: dict[int, Any] = {}
    return [made[key] if (key := id(v)) in made else made.setdefault(key, encode(v))
            for v in values]


def _encode_legs(legs: LegRows) -> list[dict[str, Any]]:
    """`[encode(leg) for leg in legs]` read from the columns: the same dicts (field order,
    values), without building a LegRecord per leg."""
    columns = [_encoded_column(col) for col in legs.columns.values()]
    return [dict(zip(LEG_FIELDS, row, strict=True)) for row in zip(*columns, strict=True)]


@cache
def _hints(cls: type) -> dict[str, Any]:
    import optui.alerts.model as alert_model
    import optui.models as models

    namespace = {**vars(models), **vars(alert_model)}
    return typing.get_type_hints(cls, globalns=namespace)


def _float(value: Any) -> float:
    return float("nan") if value is None else float(value)


@cache
def _converter(kind: Any) -> Callable[[Any], Any]:
    """A function turning an encoded value into `kind`, built once per type."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        inner = _converter(args[0])
        if float in args:
            return _float
        return lambda v: None if v is None else inner(v)
    if kind is float:
        return _float
    if kind in (int, str, bool):
        return kind  # type: ignore[no-any-return]
    if kind is SnapshotWarning:
        return SnapshotWarning.from_dict
    if kind is HealthEvent:
        return HealthEvent.from_dict
    if kind is datetime:
        return datetime.fromisoformat
    if kind is date:
        return date.fromisoformat
    if origin is list or origin is Sequence:  # a sequence decodes as a list
        item = _converter(typing.get_args(kind)[0])
        return lambda v: [item(x) for x in v]
    if origin is dict:
        key_of, item = (_converter(a) for a in typing.get_args(kind))
        return lambda v: (
            {k: item(x) for k, x in v.items()} if isinstance(v, dict)
            else {key_of(k): item(x) for k, x in v}
        )
    if origin is tuple:
        members = typing.get_args(kind)
        if len(members) == 2 and members[1] is Ellipsis:
            each = _converter(members[0])
            return lambda v: tuple(each(x) for x in v)
        parts = [_converter(a) for a in members]
        return lambda v: tuple(c(x) for c, x in zip(parts, v, strict=True))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        fields = {f.name: _converter(hints[f.name]) for f in dataclasses.fields(kind) if f.init}
        cls = kind

        def build(v: dict[str, Any]) -> Any:
            return cls(**{k: fields[k](x) for k, x in v.items() if k in fields})

        return build
    if kind is Any or kind is object:
        return lambda v: v
    raise TypeError(f"cannot decode a {kind!r}")


def decode(kind: Any, value: Any) -> Any:
    """`value` (from `encode`) as an instance of the type `kind`; raises ValueError, TypeError or
    AttributeError when the value does not fit the type."""
    return _converter(kind)(value)


def health_payload(events: list[HealthEvent]) -> list[dict[str, Any]]:
    """Health events as JSON-ready dicts (HealthEvent.as_dict)."""
    return [encode(e) for e in events]


def health_from_payload(payload: Any) -> list[HealthEvent]:
    """The events `health_payload` encoded; raises ValueError/TypeError when it is not a list of
    events (an unknown kind or severity from a newer collector still decodes)."""
    if not isinstance(payload, list):
        raise TypeError("health is not a list")
    try:
        return list(decode(list[HealthEvent], payload))
    except AttributeError as exc:  # a list or number where an event belongs
        raise TypeError(str(exc)) from None


def snapshot_payload(snapshot: Snapshot) -> dict[str, Any]:
    """The whole snapshot (legs, buckets, flow, warnings, alerts) as JSON-ready values."""
    return encode(snapshot)


def snapshot_from_payload(payload: dict[str, Any]) -> Snapshot:
    """The Snapshot that `snapshot_payload` encoded; raises ValueError/TypeError/KeyError when
    the payload is not one."""
    try:
        snap = decode(Snapshot, payload)
    except AttributeError as exc:  # a list or number where an object belongs
        raise TypeError(str(exc)) from None
    if not isinstance(snap, Snapshot):  # pragma: no cover - decode returns the kind it is given
        raise TypeError("not a snapshot")
    return snap


__all__ = ["PAYLOAD_VERSION", "Alert", "decode", "encode", "health_from_payload", "health_payload",
           "snapshot_from_payload", "snapshot_payload"]
