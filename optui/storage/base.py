"""The storage interface every backend implements, and the URL factory that picks one.

Collectors, the UI and exports talk only to `Store`, so SQLite (embedded, default) and InfluxDB
(production) are interchangeable; backends are imported lazily so a SQLite user never needs the
InfluxDB client to be importable.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from optui.errors import ConfigError
from optui.storage.points import Point

FieldValue = float | int | str | bool

AGGREGATE_FNS: tuple[str, ...] = ("sum", "mean", "last", "max", "min")
"""Functions `Store.aggregate` accepts."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Row:
    """One stored point as read back: `time` is aware UTC; NaN fields were never stored."""

    time: datetime
    tags: dict[str, str]
    fields: dict[str, FieldValue]


class FrozenTags(dict[str, str]):
    """An immutable, hashable tag dict: stores key a series by the object, skipping re-hashing.

    Records reuse one instance per series across cycles, so the write path looks a series up
    in one hash probe instead of building and hashing a tuple of its items for every point.
    """

    __slots__ = ("_hash",)

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:
            self._hash: int = hash(tuple(sorted(self.items())))
            return self._hash

    def __reduce__(self) -> tuple[type[FrozenTags], tuple[dict[str, str]]]:
        return (FrozenTags, (dict(self),))  # pickle/copy rebuild without item assignment

    def __copy__(self) -> FrozenTags:
        return self

    def __deepcopy__(self, memo: object) -> FrozenTags:
        return self

    def _frozen(self, *args: object, **kwargs: object) -> None:
        raise TypeError("FrozenTags cannot change: build a new one")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _frozen  # type: ignore[assignment]
    __ior__ = _frozen  # type: ignore[assignment]


def time_to_ns(at: datetime) -> int:
    """Nanoseconds since the epoch for an aware datetime (microsecond precision)."""
    if at.tzinfo is None:
        raise ValueError("store times must be timezone-aware (use optui.timeutil.UTC or IST)")
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def ns_to_time(ns: int) -> datetime:
    """The aware UTC datetime for nanoseconds since the epoch (sub-microsecond part dropped)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _as_list(column: Any) -> list[Any]:
    tolist = getattr(column, "tolist", None)
    return tolist() if callable(tolist) else list(column)


def clean_fields(fields: Mapping[str, Any]) -> dict[str, FieldValue]:
    """Drop None, NaN and +-inf: InfluxDB cannot store them, so no backend does (absent = unknown)."""
    out: dict[str, FieldValue] = {}
    for name, value in fields.items():
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            continue
        out[name] = value
    return out


def check_aggregate(every: str, fn: str) -> int:
    """Seconds in `every`, after checking `every` (a timeframe) and `fn` (in AGGREGATE_FNS)."""
    from optui.analytics.timeframes import TIMEFRAMES, timeframe_seconds

    if every not in TIMEFRAMES:
        raise ValueError(f"aggregate every={every!r}: choose from {', '.join(TIMEFRAMES)}")
    if fn not in AGGREGATE_FNS:
        raise ValueError(f"aggregate fn={fn!r}: choose from {', '.join(AGGREGATE_FNS)}")
    return timeframe_seconds(every)


class Store(ABC):
    """A time-series store of `Point`s with InfluxDB semantics.

    Identity is (measurement, tags, time): writing the same identity again replaces its fields,
    so a one-minute flow bar can be rewritten with its running total. Times are stored as UTC
    nanoseconds; ranges are half-open `[start, end)`. NaN/None field values are not stored.
    """

    @abstractmethod
    def write(self, points: Sequence[Point]) -> int:
        """Write points in batches; return how many were written. Raises StoreError."""

    def write_columns(
        self,
        measurement: str,
        tags_list: Sequence[dict[str, str]],
        times_ns: Sequence[int],
        fields_columns: Mapping[str, Sequence[Any]],
    ) -> int:
        """Bulk write of one measurement in columns (row i = tags_list[i], times_ns[i], column[i]).

        The fast path for many points at once; columns may be lists or 1-D numpy arrays (NaN or
        None = absent). Returns how many were written; raises ValueError for unequal lengths.
        """
        n = len(times_ns)
        if len(tags_list) != n or any(len(col) != n for col in fields_columns.values()):
            raise ValueError("write_columns: tags_list, times_ns and every field column must match")
        if n == 0:
            return 0
        return self._write_columns(measurement, tags_list, times_ns, fields_columns)

    def _write_columns(self, measurement: str, tags_list: Sequence[dict[str, str]],
                       times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        """`write_columns` of checked, non-empty columns; this default builds `Point`s for
        `write`, backends with a faster path override it."""
        n = len(times_ns)
        names = list(fields_columns)
        # numpy columns become Python scalars (np.int64 is not an int to most writers).
        cols = [_as_list(fields_columns[name]) for name in names]
        times_ns = _as_list(times_ns)
        points = [
            Point(
                measurement,
                tags_list[i],
                clean_fields({name: col[i] for name, col in zip(names, cols, strict=True)}),
                ns_to_time(int(times_ns[i])),
            )
            for i in range(n)
        ]
        return self.write(points)

    def query(
        self,
        measurement: str,
        start: datetime,
        end: datetime,
        tags: Mapping[str, str] | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        """Rows with start <= time < end whose tags include `tags`, oldest first.

        `fields` restricts the returned fields (rows carrying none of them are omitted);
        `limit` keeps the first N rows.
        """
        rows = self._query(measurement, start, end, tags, fields, limit)
        return rows if limit is None else rows[: max(0, limit)]

    @abstractmethod
    def _query(self, measurement: str, start: datetime, end: datetime,
               tags: Mapping[str, str] | None, fields: Sequence[str] | None,
               limit: int | None) -> list[Row]:
        """The backend's `query`: may stop early once it has `limit` rows, need not cut to it."""

    def aggregate(
        self,
        measurement: str,
        fields: Sequence[str],
        start: datetime,
        end: datetime,
        every: str,
        tags: Mapping[str, str] | None = None,
        fn: str = "sum",
    ) -> list[Row]:
        """Roll rows up into `every` buckets (a key of optui.analytics.timeframes.TIMEFRAMES).

        Buckets start where `bucket_start_ns` says (IST wall clock: 1d at IST midnight, 1w on
        Monday IST); a row's time is its bucket's start (UTC). All series whose tags include
        `tags` are combined. `fn` is one of AGGREGATE_FNS; empty buckets are omitted; a field
        absent from a whole bucket is absent from its row. Row.tags is `tags` (or {}).
        """
        check_aggregate(every, fn)
        names = list(dict.fromkeys(fields))
        if not names:
            return []
        return self._aggregate(measurement, names, start, end, every, tags, fn)

    @abstractmethod
    def _aggregate(self, measurement: str, names: list[str], start: datetime, end: datetime,
                   every: str, tags: Mapping[str, str] | None, fn: str) -> list[Row]:
        """The backend's `aggregate`, with `every` and `fn` checked and `names` distinct."""

    @abstractmethod
    def latest(self, measurement: str, tags: Mapping[str, str] | None = None) -> Row | None:
        """The newest row whose tags include `tags`, or None when there is none."""

    @abstractmethod
    def tag_values(self, measurement: str, tag: str) -> list[str]:
        """Distinct values of one tag in a measurement, sorted."""

    stored_total: int | None = None
    """Points the database acknowledged since this store was opened (fresh writes and spool
    replays alike); None for a store that counts no acknowledgements (a write there is stored
    when it returns)."""

    inflight_points: int = 0
    """Points handed to a write whose outcome is not known yet (still running past its budget)."""

    spooled_total: int = 0
    """Points this store accepted into an on-disk spool (not yet in the database) since it was
    opened; stores without a spool leave it 0."""

    def pending(self) -> tuple[int, str]:
        """Points waiting in the spool now and where they are kept; (0, "") without a spool."""
        return 0, ""

    def take_notices(self) -> list[str]:
        """Problems found since the last call that lost nothing but need the user (refused lines
        set aside, file damage found by a check), one line each; empty by default."""
        return []

    @abstractmethod
    def close(self) -> None:
        """Flush and release connections; safe to call twice."""

    @abstractmethod
    def ping(self) -> bool:
        """True when the store answers now; never raises."""

    @abstractmethod
    def describe(self) -> str:
        """One line for the UI naming the backend and where it is; never contains secrets."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str, settings: Any = None) -> Store:
    """Open the store a URL names: `sqlite:///PATH` or `influxdb://HOST:PORT` (`influxdbs://`).

    `sqlite:///data/optui.db` is relative to the working directory, `sqlite:////abs/path.db` is
    absolute; parent directories are created. `settings` (optui.config.Settings) supplies the
    InfluxDB org, bucket and token source.
    """
    from optui.config import canonical_store_url

    text = canonical_store_url(url or "")
    if text.startswith("sqlite:///"):
        from optui.storage.sqlite_store import SQLiteStore

        raw = text[len("sqlite:///"):]
        if not raw:
            raise ConfigError("store.url 'sqlite:///' has no path: use sqlite:///data/optui.db")
        batch = int(getattr(getattr(settings, "store", None), "batch_size", 5000) or 5000)
        if raw == ":memory:":
            return SQLiteStore(":memory:", batch_size=batch)
        return SQLiteStore(Path(raw).expanduser(), batch_size=batch)
    if text.startswith(("influxdb://", "influxdbs://")):
        from optui.storage.influx_store import InfluxStore

        return InfluxStore.from_url(text, settings)
    raise ConfigError(
        f"store.url {text!r} is not supported: use sqlite:///PATH (e.g. sqlite:///data/optui.db) "
        "or influxdb://HOST:PORT[?version=1|2] (influxdbs:// for TLS; influxdb1:// and "
        "influxdb2:// are accepted as aliases)"
    )
