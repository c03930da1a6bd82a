"""The storage unit: an InfluxDB-style point (measurement, tags, fields, time)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Point:
    """One timestamped record of a measurement; `time` is aware (stored as UTC nanoseconds)."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, float | int | str | bool]
    time: datetime

    @property
    def time_ns(self) -> int:
        t = self.time
        if t.tzinfo is None:
            raise ValueError("Point.time must be timezone-aware")
        return (t - _EPOCH) // timedelta(microseconds=1) * 1000
