"""InfluxDB 1.x reads and setup over InfluxQL (httpx), for InfluxStore.

Kept apart from the write/spool path and from the 2.x Flux path so each reads on its own. Values
come back as JSON, where 5.0 reads as 5, so field types from SHOW FIELD KEYS restore floats;
chunked responses are merged per series so large ranges never hit a server row limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from optui.errors import StoreError
from optui.storage.base import Row, ns_to_time, time_to_ns


def ident(name: str) -> str:
    """An InfluxQL double-quoted identifier."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def series_values(series_list: list[dict[str, Any]]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(tags, column -> value) for every value row of every series."""
    out = []
    for series in series_list:
        columns = series.get("columns", [])
        for values in series.get("values", []):
            out.append((series.get("tags", {}), dict(zip(columns, values, strict=False))))
    return out


class InfluxQL:
    """InfluxQL against one 1.x database through the store's httpx client."""

    def __init__(
        self,
        client: Callable[[], httpx.Client],
        url: str,
        database: str,
        unreachable: Callable[[str], StoreError],
        auth_hint: Callable[[], str],
    ) -> None:
        self._client = client
        self.url = url
        self.database = database
        self._unreachable = unreachable
        self._auth_hint = auth_hint
        self._field_types: dict[str, dict[str, str]] = {}

    def run(self, q: str, write: bool = False) -> list[dict[str, Any]]:
        """Run InfluxQL; returns series (name, tags, columns, values) merged across chunks."""
        params = {"q": q, "db": self.database, "epoch": "ns", "chunked": "true"}
        try:
            if write:
                response = self._client().post("/query", params=params)
            else:
                response = self._client().get("/query", params=params)
        except httpx.TransportError as exc:
            raise self._unreachable(str(exc)) from None
        if response.status_code in (401, 403):
            raise StoreError(
                f"InfluxDB at {self.url} rejected the credentials (HTTP {response.status_code}): "
                f"{self._auth_hint()}"
            )
        if response.status_code >= 500:
            raise self._unreachable(f"HTTP {response.status_code}")
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
        for raw in response.text.split("\n"):  # not splitlines(): U+0085 etc. may be in values
            if not raw.strip():
                continue
            doc = json.loads(raw)
            if doc.get("error"):
                raise StoreError(f"InfluxDB query failed: {doc['error']}")
            for result in doc.get("results", []):
                if result.get("error"):
                    if "database not found" in result["error"]:
                        return []
                    raise StoreError(f"InfluxDB query failed: {result['error']}")
                for series in result.get("series", []):
                    key = (series.get("name", ""), tuple(sorted(series.get("tags", {}).items())))
                    have = merged.get(key)
                    if have is None:
                        merged[key] = {**series, "values": list(series.get("values", []))}
                    else:
                        have["values"].extend(series.get("values", []))
        if response.status_code >= 400 and not merged:
            raise StoreError(f"InfluxDB query failed (HTTP {response.status_code})")
        return list(merged.values())

    def _types(self, measurement: str, names: Sequence[str]) -> dict[str, str]:
        """Field types (float/integer/string/boolean), refreshed when a new field shows up."""
        known = self._field_types.get(measurement)
        if known is None or any(n not in known for n in names):
            known = {}
            for series in self.run(f"SHOW FIELD KEYS FROM {ident(measurement)}"):
                for key, kind in series.get("values", []):
                    # A field written as float in one shard and integer in another reads as float.
                    if known.get(key) != "float":
                        known[key] = kind
            self._field_types[measurement] = known
        return known

    def _where(self, start: datetime | None, end: datetime | None, tags: Mapping[str, str] | None) -> str:
        terms = []
        if start is not None:
            terms.append(f"time >= {time_to_ns(start)}")
        if end is not None:
            terms.append(f"time < {time_to_ns(end)}")
        terms += [f"{ident(k)} = {literal(str(v))}" for k, v in sorted((tags or {}).items())]
        return (" WHERE " + " AND ".join(terms)) if terms else ""

    def _rows(self, series_list: list[dict[str, Any]], measurement: str) -> list[Row]:
        rows: list[Row] = []
        columns_seen = {c for s in series_list for c in s.get("columns", [])[1:]}
        types = self._types(measurement, sorted(columns_seen)) if columns_seen else {}
        floats = {k for k, v in types.items() if v == "float"}
        for series in series_list:
            tags = {k: v for k, v in series.get("tags", {}).items() if v != ""}
            columns = series["columns"]
            for values in series.get("values", []):
                fields = {}
                for name, value in zip(columns[1:], values[1:], strict=True):
                    if value is None:
                        continue
                    fields[name] = float(value) if name in floats else value
                rows.append(Row(ns_to_time(values[0]), dict(tags), fields))
        return rows

    def init_database(self, version: str) -> str:
        """CREATE DATABASE, and make its default retention policy infinite; say what was done."""
        db = ident(self.database)
        self.run(f"CREATE DATABASE {db}", write=True)
        result = self.run(f"SHOW RETENTION POLICIES ON {db}")
        default = next((v for _t, v in series_values(result) if v.get("default")), None)
        if default is not None and default.get("duration") not in ("0s", "0"):
            name = str(default["name"])
            self.run(f"ALTER RETENTION POLICY {ident(name)} ON {db} DURATION INF", write=True)
            return (
                f"InfluxDB {version}: database {self.database!r} ready; retention policy "
                f"{name!r} changed from {default['duration']} to infinite"
            )
        name = default["name"] if default else "autogen"
        return (
            f"InfluxDB {version}: database {self.database!r} ready; retention policy "
            f"{name!r} keeps data forever"
        )

    def query(self, measurement: str, start: datetime, end: datetime,
              tags: Mapping[str, str] | None, limit: int | None) -> list[Row]:
        q = f"SELECT * FROM {ident(measurement)}{self._where(start, end, tags)} GROUP BY *"
        if limit is not None:
            q += f" LIMIT {int(limit)}"  # per series; the store merges and cuts
        return self._rows(self.run(q), measurement)

    def aggregate(self, measurement: str, fields: Sequence[str], start: datetime, end: datetime,
                  every_s: int, offset_s: int, tags: Mapping[str, str] | None, fn: str) -> list[Row]:
        select = ", ".join(f"{fn}({ident(f)}) AS {ident(f)}" for f in fields)
        q = (
            f"SELECT {select} FROM {ident(measurement)}{self._where(start, end, tags)} "
            f"GROUP BY time({every_s}s, {offset_s}s) fill(none)"
        )
        series_list = self.run(q)
        types = self._types(measurement, []) if series_list else {}
        rows = []
        for series in series_list:
            columns = series["columns"]
            for values in series.get("values", []):
                out: dict[str, Any] = {}
                for name, value in zip(columns[1:], values[1:], strict=True):
                    if value is None:
                        continue
                    if fn == "mean" or types.get(name) == "float":
                        value = float(value)
                    out[name] = value
                if out:
                    rows.append(Row(ns_to_time(values[0]), dict(tags or {}), out))
        rows.sort(key=lambda r: r.time)
        return rows

    def latest(self, measurement: str, tags: Mapping[str, str] | None) -> Row | None:
        q = (
            f"SELECT * FROM {ident(measurement)}{self._where(None, None, tags)} "
            "GROUP BY * ORDER BY time DESC LIMIT 1"
        )
        rows = self._rows(self.run(q), measurement)
        return max(rows, key=lambda r: r.time) if rows else None

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        q = f"SHOW TAG VALUES FROM {ident(measurement)} WITH KEY = {ident(tag)}"
        return sorted({str(v["value"]) for _t, v in series_values(self.run(q))})
