"""Snapshots as JSON and back, so a collector's cycle reaches another process whole.

The encoding is the dataclasses' own fields (optui.models, optui.alerts.model): datetimes and
dates in ISO 8601, NaN and ±Inf as null (JSON has neither) and back to NaN for float fields.
Decoding follows the field types, so a payload from a newer collector with extra fields still
decodes (unknown keys are dropped) and a missing field takes its default.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from datetime import date, datetime
from functools import cache
from typing import Any, TypeVar

from optui.alerts.model import Alert
from optui.models import Snapshot

T = TypeVar("T")

PAYLOAD_VERSION = 1
"""Bumped when a field changes meaning; a reader refuses payloads of another version."""


def encode(value: Any) -> Any:
    """A dataclass tree as JSON-ready values (ISO times, NaN/Inf as None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return encode(value.item())
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    import optui.alerts.model as alert_model
    import optui.models as models

    namespace = {**vars(models), **vars(alert_model)}
    return typing.get_type_hints(cls, globalns=namespace)


def decode(kind: Any, value: Any) -> Any:
    """`value` (from `encode`) as an instance of the type `kind`; raises ValueError or TypeError
    when the value does not fit the type."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value is None:
            return float("nan") if float in args else None
        return decode(args[0], value)
    if kind is float:
        return float("nan") if value is None else float(value)
    if kind is int:
        return int(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return bool(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is date:
        return date.fromisoformat(value)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [decode(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind)
        return {k: decode(item, v) for k, v in value.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        names = {f.name for f in dataclasses.fields(kind) if f.init}
        return kind(**{k: decode(hints[k], v) for k, v in value.items() if k in names})
    if kind is Any or kind is object:
        return value
    raise TypeError(f"cannot decode a {kind!r}")


def snapshot_payload(snapshot: Snapshot) -> dict[str, Any]:
    """The whole snapshot (legs, buckets, flow, warnings, alerts) as JSON-ready values."""
    return encode(snapshot)


def snapshot_from_payload(payload: dict[str, Any]) -> Snapshot:
    """The Snapshot that `snapshot_payload` encoded; raises ValueError/TypeError/KeyError when
    the payload is not one."""
    snap = decode(Snapshot, payload)
    if not isinstance(snap, Snapshot):  # pragma: no cover - decode returns the kind it is given
        raise TypeError("not a snapshot")
    return snap


__all__ = ["PAYLOAD_VERSION", "Alert", "decode", "encode", "snapshot_from_payload", "snapshot_payload"]
