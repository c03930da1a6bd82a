"""InfluxDB 2.x access for InfluxStore: influxdb-client's write API, Flux reads, bucket setup.

Kept apart from the 1.x InfluxQL path so each reads on its own; the client is imported lazily so
1.x and SQLite users never load it. Flux windows are offset so buckets start on the IST clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from optui.errors import StoreError
from optui.storage.base import Row, time_to_ns

_META = {"result", "table", "_start", "_stop", "_measurement", "_time"}


def flux_string(text: str) -> str:
    """A Flux string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${") + '"'


def flux_time(at: datetime) -> str:
    """A Flux time literal with nanosecond precision."""
    seconds, frac = divmod(time_to_ns(at), 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def flux_filter(measurement: str, tags: Mapping[str, str] | None, fields: Sequence[str] = ()) -> str:
    terms = [f"r._measurement == {flux_string(measurement)}"]
    terms += [f"r[{flux_string(k)}] == {flux_string(str(v))}" for k, v in sorted((tags or {}).items())]
    if fields:
        terms.append("(" + " or ".join(f"r._field == {flux_string(f)}" for f in fields) + ")")
    return " and ".join(terms)


def query_flux(bucket: str, measurement: str, start: datetime, end: datetime,
               tags: Mapping[str, str] | None, limit: int | None) -> str:
    """Raw rows, one table per series, fields pivoted into columns."""
    text = (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(end)})\n"
        f"  |> filter(fn: (r) => {flux_filter(measurement, tags)})\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    )
    if limit is not None:
        text += f"  |> limit(n: {int(limit)})\n"
    return text


def aggregate_flux(bucket: str, measurement: str, fields: Sequence[str], start: datetime,
                   end: datetime, every_s: int, offset_s: int, tags: Mapping[str, str] | None,
                   fn: str) -> str:
    """All matching series combined per field, then windowed on the IST clock."""
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(end)})\n"
        f"  |> filter(fn: (r) => {flux_filter(measurement, tags, fields)})\n"
        '  |> group(columns: ["_field"])\n'
        '  |> sort(columns: ["_time"])\n'
        f"  |> aggregateWindow(every: {every_s}s, offset: {offset_s}s, fn: {fn}, "
        'createEmpty: false, timeSrc: "_start")\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    )


def latest_flux(bucket: str, measurement: str, tags: Mapping[str, str] | None) -> str:
    return (
        f"from(bucket: {flux_string(bucket)})\n"
        "  |> range(start: 0)\n"
        f"  |> filter(fn: (r) => {flux_filter(measurement, tags)})\n"
        "  |> last()\n"
        '  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")\n'
    )


def tag_values_flux(bucket: str, measurement: str, tag: str) -> str:
    return (
        'import "influxdata/influxdb/schema"\n'
        f"schema.measurementTagValues(bucket: {flux_string(bucket)}, "
        f"measurement: {flux_string(measurement)}, tag: {flux_string(tag)})\n"
    )


class InfluxV2:
    """One influxdb-client connection bound to an org and bucket."""

    def __init__(self, url: str, token: str, org: str, bucket: str, timeout_s: float) -> None:
        from influxdb_client import InfluxDBClient

        self.url = url
        self.org = org
        self.bucket = bucket
        self._client = InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout_s * 1000), retries=False
        )
        self._write_api: Any = None

    def __repr__(self) -> str:
        return f"InfluxV2({self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def write(self, body: bytes) -> tuple[int, str]:
        """POST line protocol; (status, message), status 0 when the server was not reached."""
        from influxdb_client import WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.rest import ApiException

        if self._write_api is None:
            self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        try:
            self._write_api.write(
                bucket=self.bucket, org=self.org, record=body, write_precision=WritePrecision.NS
            )
        except ApiException as exc:
            return int(exc.status or 0), str(exc.body or exc.reason or "")
        except Exception as exc:  # urllib3 connection errors have no common public base
            return 0, f"{type(exc).__name__}: {exc}"
        return 204, ""

    def _tables(self, flux: str) -> list[Any]:
        from influxdb_client.rest import ApiException

        try:
            return list(self._client.query_api().query(flux, org=self.org))
        except ApiException as exc:
            if exc.status in (401, 403):
                raise StoreError(
                    f"InfluxDB at {self.url} rejected the token (HTTP {exc.status}): set "
                    "OPTUI_INFLUXDB_TOKEN to an API token with read access to the bucket"
                ) from None
            raise StoreError(f"InfluxDB query failed (HTTP {exc.status}): {exc.body}") from None
        except Exception as exc:
            raise StoreError(
                f"InfluxDB at {self.url} is not reachable ({type(exc).__name__}): "
                "start InfluxDB or fix store.url"
            ) from None

    def _rows(self, flux: str, tags_override: Mapping[str, str] | None = None) -> list[Row]:
        rows = []
        for table in self._tables(flux):
            key_cols = {c.label for c in table.columns if c.group}
            for record in table.records:
                values = record.values
                tags = {
                    k: str(v) for k, v in values.items()
                    if k in key_cols and k not in _META and not k.startswith("_") and v not in ("", None)
                }
                fields = {
                    k: v for k, v in values.items()
                    if k not in key_cols and k not in _META and v is not None
                }
                at = record.get_time()
                rows.append(Row(at, dict(tags_override) if tags_override is not None else tags, fields))
        return rows

    def query(self, measurement: str, start: datetime, end: datetime,
              tags: Mapping[str, str] | None, limit: int | None) -> list[Row]:
        return self._rows(query_flux(self.bucket, measurement, start, end, tags, limit))

    def aggregate(self, measurement: str, fields: Sequence[str], start: datetime, end: datetime,
                  every_s: int, offset_s: int, tags: Mapping[str, str] | None, fn: str) -> list[Row]:
        flux = aggregate_flux(self.bucket, measurement, fields, start, end, every_s, offset_s, tags, fn)
        rows = [r for r in self._rows(flux, dict(tags or {})) if r.fields]
        if fn == "mean":
            rows = [Row(r.time, r.tags, {k: float(v) for k, v in r.fields.items()}) for r in rows]
        return sorted(rows, key=lambda r: r.time)

    def latest(self, measurement: str, tags: Mapping[str, str] | None) -> Row | None:
        rows = self._rows(latest_flux(self.bucket, measurement, tags))
        return max(rows, key=lambda r: r.time) if rows else None

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        values = set()
        for table in self._tables(tag_values_flux(self.bucket, measurement, tag)):
            for record in table.records:
                values.add(str(record.get_value()))
        return sorted(values)

    def ensure_bucket(self, version: str) -> str:
        """Create the bucket with infinite retention, or make an existing one infinite."""
        from influxdb_client.rest import ApiException

        api = self._client.buckets_api()
        try:
            found = api.find_bucket_by_name(self.bucket)
            if found is None:
                api.create_bucket(bucket_name=self.bucket, org=self.org, retention_rules=[])
                return f"InfluxDB {version}: bucket {self.bucket!r} created with infinite retention"
            rules = [r for r in (found.retention_rules or []) if (r.every_seconds or 0) > 0]
            if rules:
                found.retention_rules = []
                api.update_bucket(found)
                return f"InfluxDB {version}: bucket {self.bucket!r} now keeps data forever"
            return f"InfluxDB {version}: bucket {self.bucket!r} ready, keeps data forever"
        except ApiException as exc:
            if exc.status in (401, 403):
                raise StoreError(
                    f"InfluxDB refused to create bucket {self.bucket!r} (HTTP {exc.status}): set "
                    "OPTUI_INFLUXDB_TOKEN to a token allowed to manage buckets in org "
                    f"{self.org!r}, or create the bucket in the InfluxDB UI"
                ) from None
            raise StoreError(f"InfluxDB bucket setup failed (HTTP {exc.status}): {exc.body}") from None
        except Exception as exc:
            raise StoreError(
                f"InfluxDB at {self.url} is not reachable ({type(exc).__name__}): "
                "start InfluxDB or fix store.url"
            ) from None

    def close(self) -> None:
        if self._write_api is not None:
            self._write_api.close()
        self._client.close()
