"""The production store: InfluxDB 1.x (InfluxQL over httpx) or 2.x (influxdb-client and Flux).

This module holds the connection (version from /ping's X-Influxdb-Version header, credentials,
one POST and what its answer means) and the reads; the write path (chunks, spool, lines set aside)
is `influx_writes.InfluxWriter`, the 1.x reads `influxql`, the 2.x client `influx_v2`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from optui.config import redact_url
from optui.errors import ConfigError, StoreError
from optui.storage.base import Row
from optui.storage.influx_answers import (
    CredentialsRejected,
    Rejected,
    TooLarge,
    Unavailable,
    server_error,
    token_hint,
)
from optui.storage.influx_v2 import InfluxV2
from optui.storage.influx_writes import InfluxWriter
from optui.storage.influxql import InfluxQL
from optui.storage.spool import Spool

__all__ = ["CredentialsRejected", "InfluxStore", "Rejected", "TooLarge", "Unavailable",
           "bucket_offset_s", "token_hint"]

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0
"""After a failed write, later writes go straight to the spool this long (flush() always tries)."""

_IST_MONDAY_S = 4 * 86400 - 19800  # 1970-01-05 00:00 IST (a Monday) in UTC epoch seconds


def bucket_offset_s(every_s: int) -> int:
    """GROUP BY time() offset that puts bucket starts on the IST clock (midnight, Monday)."""
    return _IST_MONDAY_S % every_s


class InfluxStore(InfluxWriter):
    """InfluxDB behind the Store interface, with spooling of writes the server cannot take now."""

    def __init__(
        self,
        url: str,
        *,
        database: str = "options-data",
        org: str = "optui",
        bucket: str = "options-data",
        token: str | None = None,
        batch_size: int = 5000,
        spool_dir: str | Path | None = "data/spool",
        version: str | None = None,
        timeout_s: float = 10.0,
        retry_after_s: float = RETRY_AFTER_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.org = org
        self.bucket = bucket
        self.batch_size = max(1, int(batch_size))
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self._token = token or ""
        self._version = version  # "1.6.7", "v2.7.1", ... None until the server answered /ping
        self._lock = threading.RLock()
        self._http: httpx.Client | None = None
        self._v2: InfluxV2 | None = None
        self._influxql: InfluxQL | None = None
        self._closed = False
        host = urlsplit(self.url).netloc.replace(":", "_") or "influxdb"
        target = _safe(database) if database == bucket else f"{_safe(database)}-{_safe(bucket)}"
        self._init_writes(
            Spool(Path(spool_dir).expanduser() / f"influxdb-{host}-{target}")
            if spool_dir is not None
            else None
        )

    @property
    def _v2_known(self) -> bool:
        return self._version is not None and not self._version.lstrip("v").startswith("1")

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> InfluxStore:
        """`influxdb://HOST:PORT[?version=1|2&db=..&org=..&bucket=..]`, or `influxdbs://` (TLS);
        `influxdb1://` and `influxdb2://` stand for `version=1` and `version=2`. Raises ConfigError
        naming the right form."""
        from optui.config import Settings, canonical_store_url, load_secrets

        settings = settings if settings is not None else Settings()
        parts = urlsplit(canonical_store_url(url))
        if parts.scheme not in ("influxdb", "influxdbs") or not parts.hostname:
            raise ConfigError(f"store.url {redact_url(url)!r}: use influxdb://HOST:PORT[?version=1|2] "
                              "(influxdbs:// for TLS)")
        try:
            port = parts.port or 8086
        except ValueError:
            raise ConfigError(f"store.url {redact_url(url)!r}: the port is not a number") from None
        scheme = "https" if parts.scheme == "influxdbs" else "http"
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        version = params.get("version")
        if version not in (None, "1", "2"):
            raise ConfigError(f"store.url {redact_url(url)!r}: version must be 1 or 2")
        token = load_secrets().get("influxdb_token")
        if parts.password:
            token = f"{parts.username or ''}:{parts.password}"
        influx = settings.influxdb
        return cls(
            f"{scheme}://{parts.hostname}:{port}",
            database=params.get("db", influx.database),
            org=params.get("org", influx.org),
            bucket=params.get("bucket", influx.bucket),
            token=token,
            batch_size=settings.store.batch_size,
            spool_dir=settings.store.spool_dir,
            version={"1": "1.x", "2": "v2.x", None: None}[version],
        )

    def __repr__(self) -> str:
        return f"InfluxStore({self.url!r}, database={self.database!r}, bucket={self.bucket!r})"

    # -- connection and version -----------------------------------------------------------------

    def _client(self) -> httpx.Client:
        if self._closed:
            raise StoreError(f"InfluxDB store {self.url} is closed")
        if self._http is None:
            headers: dict[str, str] = {}
            auth: tuple[str, str] | None = None
            if self._token:
                if ":" in self._token:
                    user, _, password = self._token.partition(":")
                    auth = (user, password)
                else:
                    headers["Authorization"] = f"Token {self._token}"
            self._http = httpx.Client(
                base_url=self.url, headers=headers, auth=auth, timeout=self.timeout_s
            )
        return self._http

    def version(self) -> str:
        """The server's version (from /ping); raises Unavailable when it does not answer."""
        if self._version is None:
            try:
                response = self._client().get("/ping")
            except httpx.TransportError as exc:
                raise Unavailable(str(exc)) from None
            if response.status_code >= 500:
                raise Unavailable(f"HTTP {response.status_code}")
            # VictoriaMetrics and other line-protocol servers send no header: treat as 1.x.
            self._version = response.headers.get("X-Influxdb-Version", "1.x")
        return self._version

    def _is_v2(self) -> bool:
        return not self.version().lstrip("v").startswith("1")

    def _v2_client(self) -> InfluxV2:
        if self._v2 is None:
            self._v2 = InfluxV2(self.url, self._token, self.org, self.bucket, self.timeout_s)
        return self._v2

    def ping(self) -> bool:
        try:
            return self._client().get("/ping").status_code in (200, 204)
        except (httpx.HTTPError, StoreError):
            return False

    def describe(self) -> str:
        version = self._version or "version unknown"
        where = f"bucket {self.bucket} (org {self.org})" if self._v2_known else f"db {self.database}"
        text = f"InfluxDB {version} at {self.url}, {where}"
        if self._spool_pending and self.spool is not None:
            text += f"; spooled: {self.spool.status()}"
        return text

    def unreachable(self, detail: str) -> StoreError:
        return StoreError(
            f"InfluxDB at {self.url} is not reachable ({detail}): start influxd or fix store.url"
        )

    # -- writes ---------------------------------------------------------------------------------

    def _send(self, body: bytes, points: int) -> None:
        """POST one batch; Unavailable to spool, StoreError (Rejected) for what retry cannot fix."""
        for attempt in range(2):
            if self._is_v2():
                status, text = self._v2_client().write(body)
            else:
                try:
                    response = self._client().post(
                        "/write",
                        params={"db": self.database, "precision": "ns"},
                        content=body,
                        headers={"Content-Type": "text/plain; charset=utf-8"},
                    )
                except httpx.TransportError as exc:
                    raise Unavailable(str(exc)) from None
                status, text = response.status_code, response.text
            if status in (200, 204):
                return
            if status == 0 or status >= 500 or status == 429:
                raise Unavailable(f"HTTP {status} {text[:200]}")
            if status in (401, 403):
                raise CredentialsRejected(
                    f"InfluxDB at {self.url} rejected the credentials (HTTP {status}): "
                    f"{token_hint(self.version())}"
                )
            if status == 404 and attempt == 0 and "not found" in text:
                self.init_database()
                continue
            if status == 413:
                raise TooLarge(
                    f"InfluxDB refused a batch of {points} points as too large: "
                    "lower store.batch_size"
                )
            reason = server_error(text)
            raise Rejected(f"InfluxDB rejected points (HTTP {status}): {reason}", reason)
        raise StoreError(f"InfluxDB at {self.url}: database {self.database!r} could not be created")

    # -- setup ----------------------------------------------------------------------------------

    def init_database(self) -> str:
        """Create the database (1.x) or bucket (2.x) with infinite retention; say what was done."""
        try:
            version = self.version()
        except Unavailable as exc:
            raise self.unreachable(str(exc)) from None
        if self._is_v2():
            return self._v2_client().ensure_bucket(version)
        return self._v1().init_database(version)

    # -- reads ----------------------------------------------------------------------------------

    def _v1(self) -> InfluxQL:
        if self._influxql is None:
            self._influxql = InfluxQL(
                self._client, self.url, self.database, self.unreachable,
                lambda: token_hint(self._version or "1"),
            )
        return self._influxql

    def _reader(self) -> InfluxQL | InfluxV2:
        try:
            return self._v2_client() if self._is_v2() else self._v1()
        except Unavailable as exc:
            raise self.unreachable(str(exc)) from None

    def _query(self, measurement: str, start: datetime, end: datetime,
               tags: Mapping[str, str] | None, fields: Sequence[str] | None,
               limit: int | None) -> list[Row]:
        with self._lock:
            rows = self._reader().query(measurement, start, end, tags, limit)
        rows.sort(key=lambda r: (r.time, sorted(r.tags.items())))
        if fields is not None:
            wanted = set(fields)
            rows = [Row(r.time, r.tags, {k: v for k, v in r.fields.items() if k in wanted}) for r in rows]
        return rows

    def _aggregate(self, measurement: str, names: list[str], start: datetime, end: datetime,
                   every: str, tags: Mapping[str, str] | None, fn: str) -> list[Row]:
        from optui.analytics.timeframes import timeframe_seconds

        every_s = timeframe_seconds(every)
        with self._lock:
            return self._reader().aggregate(
                measurement, names, start, end, every_s, bucket_offset_s(every_s), tags, fn
            )

    def latest(self, measurement: str, tags: Mapping[str, str] | None = None) -> Row | None:
        with self._lock:
            return self._reader().latest(measurement, tags)

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        with self._lock:
            return self._reader().tag_values(measurement, tag)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._close_writes()  # a write in flight finishes or spools first
        with self._lock:
            if self._closed:
                return
            if self._spool_pending:
                try:
                    self.flush()
                except StoreError as exc:
                    log.warning("InfluxDB %s: spool not flushed on close: %s", self.url, exc)
            self._closed = True
            self._close_sender()
            if self._http is not None:
                self._http.close()
            if self._v2 is not None:
                self._v2.close()


def _safe(name: str) -> str:
    return quote(name, safe="").replace("%", "_")
