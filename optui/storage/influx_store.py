"""The production store: InfluxDB 1.x (InfluxQL over httpx) or 2.x (influxdb-client and Flux).

Every collected point is kept forever, so writes never depend on the server being up: batches the
server cannot take now (unreachable, 5xx) go to an on-disk spool and are replayed in order before
anything newer once it answers. Rejections a retry cannot fix (bad token, bad data) raise a
StoreError naming the fix. The version is read from /ping's X-Influxdb-Version header.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from optui.config import redact_url
from optui.errors import ConfigError, StoreError
from optui.storage.base import Row, Store
from optui.storage.influx_v2 import InfluxV2
from optui.storage.influxql import InfluxQL
from optui.storage.line_protocol import LineBatch, LineFormatter, log_dropped
from optui.storage.points import Point
from optui.storage.spool import Spool, SpoolStatus

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5.0
"""After a failed write, later writes go straight to the spool this long (flush() always tries)."""

_MAX_BODY = 8 << 20  # bytes of line protocol per POST at most (a batch is split to stay under)
_IST_MONDAY_S = 4 * 86400 - 19800  # 1970-01-05 00:00 IST (a Monday) in UTC epoch seconds


class Unavailable(Exception):
    """The server cannot take the write now (unreachable or 5xx): spool and retry later."""


class Rejected(StoreError):
    """The server refused the data itself (HTTP 400): retrying the same lines cannot succeed.

    `reason` is the server's message; InfluxDB 1.x writes every line it could take and says
    "partial write" for the rest.
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class TooLarge(Rejected):
    """The server refused a batch for its size (HTTP 413): smaller batches can succeed."""


class CredentialsRejected(StoreError):
    """The server refused the credentials (401/403): the data is fine, keep it until fixed."""


def bucket_offset_s(every_s: int) -> int:
    """GROUP BY time() offset that puts bucket starts on the IST clock (midnight, Monday)."""
    return _IST_MONDAY_S % every_s


def token_hint(version: str) -> str:
    if version.startswith("1"):
        return "set OPTUI_INFLUXDB_TOKEN to USER:PASSWORD of an InfluxDB 1.x user"
    return "set OPTUI_INFLUXDB_TOKEN to an API token with read/write access to the bucket"


class InfluxStore(Store):
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
        self._formatter = LineFormatter()
        self._http: httpx.Client | None = None
        self._v2: InfluxV2 | None = None
        self._influxql: InfluxQL | None = None
        self._closed = False
        host = urlsplit(self.url).netloc.replace(":", "_") or "influxdb"
        target = _safe(database) if database == bucket else f"{_safe(database)}-{_safe(bucket)}"
        self.spool = (
            Spool(Path(spool_dir).expanduser() / f"influxdb-{host}-{target}")
            if spool_dir is not None
            else None
        )
        self._spool_pending: bool | None = None  # unknown until first write
        self._refused: CredentialsRejected | None = None  # credentials the server last refused
        self._retry_at = 0.0  # monotonic time before which writes spool without trying the server
        self._replayed = 0
        self._pool: ThreadPoolExecutor | None = None  # sends one chunk while the next is formatted
        self.rejected_total = 0
        """Lines the server refused (set aside in `rejected_path`) since this store was opened."""
        self._notices: list[str] = []
        rejected_dir = self.spool.directory if self.spool is not None else Path("data") / "rejected"
        self.rejected_path = rejected_dir / "rejected.lp"
        """Where refused lines go: `# <UTC time> <server's reason>` then the lines, appended."""
        self.write_budget_s: float | None = None
        """Seconds a caller waits for a write (None: until it is done). A write still running
        then finishes (or spools) on the writer thread, and writes arriving meanwhile go straight
        to the spool, so a hung server (SIGSTOP, a stalled disk) never stalls collection."""
        self.over_budget = 0
        """Writes that outlived the budget, and batches spooled because one was still running."""
        self._fmt_lock = threading.Lock()
        self._spool_formatter = LineFormatter()  # formats for the spool while a write hangs
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: Future[int] | None = None

    @property
    def _v2_known(self) -> bool:
        return self._version is not None and not self._version.lstrip("v").startswith("1")

    @classmethod
    def from_url(cls, url: str, settings: Any = None) -> InfluxStore:
        """`influxdb://HOST:PORT[?version=1|2&db=..&org=..&bucket=..]`, or `influxdbs://` (TLS)."""
        from optui.config import Settings, load_secrets

        settings = settings if settings is not None else Settings()
        parts = urlsplit(url.strip())
        if parts.scheme not in ("influxdb", "influxdbs") or not parts.hostname:
            raise ConfigError(f"store.url {redact_url(url)!r}: use influxdb://HOST:PORT (influxdbs:// for TLS)")
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
            reason = _server_error(text)
            raise Rejected(f"InfluxDB rejected points (HTTP {status}): {reason}", reason)
        raise StoreError(f"InfluxDB at {self.url}: database {self.database!r} could not be created")

    def write(self, points: Sequence[Point]) -> int:
        pts = points if isinstance(points, list) else list(points)
        return self._budgeted(lambda: self._write_points_now(pts), len(pts),
                              lambda f: f.format_points(pts))

    def _write_columns(self, measurement: str, tags_list: Sequence[Mapping[str, str]],
                       times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        return self._budgeted(
            lambda: self._write_columns_now(measurement, tags_list, times_ns, fields_columns),
            len(times_ns), lambda f: f.format_columns(measurement, tags_list, times_ns, fields_columns))

    def _budgeted(self, write: Callable[[], int], points: int,
                  fmt: Callable[[LineFormatter], LineBatch]) -> int:
        """Run `write` within `write_budget_s` (see there); returns the points stored or spooled."""
        budget = self.write_budget_s
        if budget is None or self.spool is None:
            return write()
        inflight = self._inflight
        if inflight is not None and not inflight.done():
            self.over_budget += 1
            with self._fmt_lock:
                batch = fmt(self._spool_formatter)
            return self._spool_batch(batch)
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="optui-influx-budget")
        future = self._writer.submit(write)
        self._inflight = future
        try:
            return future.result(timeout=budget)
        except FutureTimeout:
            self.over_budget += 1
            log.warning("InfluxDB %s: a write of %d point(s) outlived its %.1fs budget: it finishes "
                        "or spools in the background, later writes spool", self.url, points, budget)
            return points

    def _spool_batch(self, batch: LineBatch) -> int:
        """Append a formatted batch to the spool without touching the server (no store lock:
        the spool holds its own file lock)."""
        log_dropped(batch, f"InfluxDB {self.url}")
        lines = batch.lines
        for start in range(0, len(lines), self.batch_size):
            self._spool_chunk(lines[start : start + self.batch_size])
        return len(lines)

    def _write_points_now(self, pts: list[Point]) -> int:
        with self._lock:
            size = self.batch_size
            fmt = self._formatter.format_points
            return self._write_chunks(fmt(pts[i : i + size]) for i in range(0, len(pts), size))

    def _write_columns_now(self, measurement: str, tags_list: Sequence[Mapping[str, str]],
                           times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        with self._lock:
            size = self.batch_size
            fmt = self._formatter.format_columns
            return self._write_chunks(
                fmt(measurement, tags_list[i : i + size], times_ns[i : i + size],
                    {name: column[i : i + size] for name, column in fields_columns.items()})
                for i in range(0, len(times_ns), size)
            )

    def _sender(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-write")
        return self._pool

    def _write_chunks(self, batches: Iterator[LineBatch]) -> int:
        """Send formatted chunks in order, formatting the next while the last is in flight;
        spool what the server cannot take. Returns the points accepted (written or spooled).

        Formatting is the client's cost and the POST the server's, so overlapping them brings a
        write close to the rate of posting ready-made lines.
        """
        dropped = LineBatch()
        chunks = self._chunks(batches, dropped)
        first = next(chunks, None)
        if first is None:
            log_dropped(dropped, f"InfluxDB {self.url}")
            return 0
        if self._spool_pending is None:
            self._spool_pending = self.spool is not None and self.spool.status().points > 0
        if self._spool_pending and time.monotonic() >= self._retry_at:
            self.flush()  # older spooled points must land first
        accepted = 0
        in_flight: tuple[list[str], Future[int]] | None = None
        for chunk in itertools.chain([first], chunks):  # next() formats while a POST is in flight
            if in_flight is not None:
                accepted += self._settle(*in_flight)
                in_flight = None
            if self._spool_pending:
                accepted += self._spool_chunk(chunk)
            elif first is chunk and len(chunk) < self.batch_size:
                accepted += self._settle(chunk, None)  # a single small write: no thread hop
            else:
                in_flight = (chunk, self._sender().submit(self._send_isolating, chunk))
        if in_flight is not None:
            accepted += self._settle(*in_flight)
        log_dropped(dropped, f"InfluxDB {self.url}")
        if self._refused is not None:
            raise CredentialsRejected(f"{self._refused} (points kept in the spool: {self.spool_dir_hint()})")
        return accepted

    def _chunks(self, batches: Iterator[LineBatch], dropped: LineBatch) -> Iterator[list[str]]:
        """Non-empty line lists of at most batch_size lines and _MAX_BODY bytes; drops are
        gathered into `dropped` (logged once per write)."""
        for batch in batches:
            dropped.dropped += batch.dropped
            dropped.reasons.extend(batch.reasons[: 5 - len(dropped.reasons)])
            lines = batch.lines
            if not lines:
                continue
            if sum(map(len, lines)) + len(lines) > _MAX_BODY and len(lines) > 1:
                half = len(lines) // 2
                yield from self._chunks(iter([LineBatch(lines[:half]), LineBatch(lines[half:])]), dropped)
                continue
            yield lines

    def _settle(self, chunk: list[str], sent: Future[int] | None) -> int:
        """The outcome of sending `chunk` (sent on this thread when `sent` is None): lines
        written, or the chunk spooled when the server is unavailable or refuses the credentials."""
        try:
            return self._send_isolating(chunk) if sent is None else sent.result()
        except Unavailable as exc:
            if self.spool is None:
                raise self.unreachable(str(exc)) from None
            log.warning("InfluxDB %s unavailable (%s): spooling writes", self.url, exc)
        except CredentialsRejected as exc:
            if self.spool is None:
                raise
            # Good data, wrong token: keep it until the credentials are fixed.
            self._refused = exc
        self._retry_at = time.monotonic() + self.retry_after_s
        return self._spool_chunk(chunk)

    def _spool_chunk(self, chunk: list[str]) -> int:
        assert self.spool is not None
        self.spool.append(_body(chunk), len(chunk))
        self._spool_pending = True
        self.spooled_total += len(chunk)
        return len(chunk)

    def _send_isolating(self, lines: list[str]) -> int:
        """Send lines; when the server refuses some, write every other line and set the refused
        ones aside (`_set_aside`). Returns the lines written. Unavailable/CredentialsRejected pass.

        InfluxDB 1.x answers a batch with a field type conflict or a point outside the retention
        policy with 400 "partial write" after writing the rest; it does not say which lines, so
        the batch is split in halves until each refused line stands alone (re-sending a line the
        server already took replaces it with the same values).
        """
        try:
            self._send(_body(lines), len(lines))
            return len(lines)
        except TooLarge as exc:
            if len(lines) < 2:
                self._set_aside(lines, str(exc))
                return 0
        except Rejected as exc:
            if len(lines) == 1:
                self._set_aside(lines, exc.reason)
                return 0
            suspects = _conflicting_lines(lines, exc.reason)
            if suspects and len(suspects) < len(lines):
                # The server named the field: set those lines aside at once, retry the others.
                self._set_aside(suspects, exc.reason)
                bad = set(suspects)
                return self._send_isolating([ln for ln in lines if ln not in bad])
        half = len(lines) // 2
        return self._send_isolating(lines[:half]) + self._send_isolating(lines[half:])

    def _set_aside(self, lines: list[str], reason: str) -> None:
        """Append refused lines to `rejected_path` under a comment with the server's reason."""
        from optui.timeutil import now_utc

        self.rejected_total += len(lines)
        note = f"InfluxDB refused {len(lines)} line(s): {reason}; set aside in {self.rejected_path}"
        try:
            self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.rejected_path, "a", encoding="utf-8") as handle:
                handle.write(f"# {now_utc().isoformat(timespec='seconds')} {reason}\n")
                handle.write("\n".join(lines) + "\n")
        except OSError as exc:
            note = f"InfluxDB refused {len(lines)} line(s): {reason}; cannot set them aside ({exc.strerror or exc})"
        log.warning("%s", note)
        self._notices.append(note)

    def take_notices(self) -> list[str]:
        """Refused lines since the last call, as one-line notices (then forgotten)."""
        with self._lock:
            out, self._notices = self._notices, []
        return out

    def spool_dir_hint(self) -> str:
        return str(self.spool.directory) if self.spool is not None else "no spool"

    def flush(self) -> int:
        """Replay spooled points in order now; returns how many were written before any failure."""
        if self.spool is None:
            return 0
        with self._lock:
            self._replayed = 0
            self._refused = None
            try:
                self.spool.replay(self._replay_one, self.batch_size)
            except (Unavailable, CredentialsRejected) as exc:
                log.info("InfluxDB %s cannot take the spool yet (%s): points stay spooled", self.url, exc)
                if isinstance(exc, CredentialsRejected):
                    self._refused = exc
                self._spool_pending = True
                self._retry_at = time.monotonic() + self.retry_after_s
                return self._replayed
            self._spool_pending = False
            if self._replayed:
                log.info("InfluxDB %s: replayed %d spooled point(s)", self.url, self._replayed)
            return self._replayed

    def _replay_one(self, body: bytes, points: int) -> None:
        # Refused lines are set aside; what the server can take is in (never blocks the spool).
        self._replayed += self._send_isolating(body.decode("utf-8").splitlines())

    def pending(self) -> tuple[int, str]:
        """Points waiting in the spool and its directory (read from disk: after close() too)."""
        if self.spool is None:
            return 0, ""
        return self.spool.status().points, str(self.spool.directory)

    def spool_status(self) -> SpoolStatus | None:
        """What is waiting in the spool (None when spooling is off)."""
        return self.spool.status() if self.spool is not None else None

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
        if self._writer is not None:
            self._writer.shutdown(wait=True)  # a write in flight finishes or spools first
            self._writer = None
        with self._lock:
            if self._closed:
                return
            if self._spool_pending:
                try:
                    self.flush()
                except StoreError as exc:
                    log.warning("InfluxDB %s: spool not flushed on close: %s", self.url, exc)
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            if self._http is not None:
                self._http.close()
            if self._v2 is not None:
                self._v2.close()


def _body(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode("utf-8")


_CONFLICT = re.compile(r'input field \\?"([^"\\]+)\\?" on measurement \\?"([^"\\]+)\\?" is type (\w+)')


def _conflicting_lines(lines: list[str], reason: str) -> list[str]:
    """The lines a 1.x "field type conflict" message points at (field, measurement and the type
    sent are named); [] when the message names no field."""
    match = _CONFLICT.search(reason)
    if match is None:
        return []
    field, measurement, sent = match[1], match[2], match[3]
    value = {"integer": r"-?\d+i", "float": r"-?[\d.]+(?:[eE][-+]?\d+)?", "string": r'"',
             "boolean": r"(?:t|f|true|false|T|F|TRUE|FALSE)(?=[ ,])", "unsigned": r"\d+u"}.get(sent)
    if value is None:
        return []
    pattern = re.compile(rf"(?:^|[ ,]){re.escape(field)}={value}")
    out = []
    for line in lines:
        key, _, rest = line.partition(" ")
        if key.split(",", 1)[0] == measurement and pattern.search(" " + rest.rsplit(" ", 1)[0]):
            out.append(line)
    return out


def _server_error(text: str) -> str:
    try:
        message = str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        message = text
    message = message.strip()[:300]
    if "field type conflict" in message:
        message += " (a field changed type: keep each field's type, or use a new field name)"
    return message


def _safe(name: str) -> str:
    return quote(name, safe="").replace("%", "_")
