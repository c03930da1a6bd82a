"""The embedded store: SQLite in WAL mode, nothing to install, every point kept forever.

Why frames: a SQLite row costs a few microseconds however narrow, so one row per leg caps ingest
near 150,000 points/s here. Points of one measurement that share a timestamp (a snapshot's legs,
a minute's flow bars) are stored as one *frame* (optui.storage.sqlite_frames encodes them).
Replace-on-identity merges into the frame at that time; `(layout_id, time_ns)` is indexed so one
series' history and `latest` touch only frames that contain it. This module owns the file: schema,
connections, transactions and reads; `sqlite_series` makes series and layout ids, `sqlite_upkeep`
keeps the WAL bounded and checks the file's integrity.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from optui.errors import StoreError
from optui.storage.base import FieldValue, Row, Store, ns_to_time, time_to_ns
from optui.storage.points import Point
from optui.storage.sqlite_frames import (
    Catalogue,
    Frame,
    Plan,
    View,
    covers,
    field_columns,
    frame_rows,
    merge_frame,
    pack_texts,
    plain,
    roll_up,
)
from optui.storage.sqlite_series import layout_id as layout_id_of
from optui.storage.sqlite_series import series_ids
from optui.storage.sqlite_upkeep import (
    QUICK_CHECK_S,
    WAL_CAP,
    WalBound,
    checkpoint_loop,
    halt,
    quick_check,
    recovery_hint,
)

__all__ = ["SQLiteStore", "quick_check", "recovery_hint"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, measurement_id INTEGER NOT NULL,
    tags TEXT NOT NULL, UNIQUE (measurement_id, tags));
CREATE TABLE IF NOT EXISTS layouts (id INTEGER PRIMARY KEY, measurement_id INTEGER NOT NULL,
    digest TEXT NOT NULL UNIQUE, sids BLOB NOT NULL, fields TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS frames (measurement_id INTEGER NOT NULL, time_ns INTEGER NOT NULL,
    layout_id INTEGER NOT NULL, nums BLOB NOT NULL, strs TEXT,
    PRIMARY KEY (measurement_id, time_ns));
CREATE INDEX IF NOT EXISTS frames_by_layout ON frames (layout_id, time_ns);
"""
_IDLE_READERS = 4
_FRAME_COLUMNS = "time_ns, layout_id, nums, strs"


class SQLiteStore(Store):
    """A `Store` in one SQLite file (WAL): one writer thread and any number of reader threads."""

    def __init__(self, path: str | Path, batch_size: int = 5000, wal_cap_bytes: int = WAL_CAP,
                 quick_check_s: float = QUICK_CHECK_S) -> None:
        self._wal_cap_bytes = wal_cap_bytes
        self._damage: list[str] = []
        self._checking = threading.Event()  # set while the periodic quick_check reads the file
        self._wal: WalBound | None = None  # with the checkpoint thread (a file in WAL mode)
        self._memory = str(path) == ":memory:"
        self.path: Path | str = ":memory:" if self._memory else Path(path)
        self.batch_size = max(1, int(batch_size))
        self._lock = threading.RLock()  # the writer's, held for a whole transaction
        self._meta_lock = threading.RLock()  # short: guards the in-memory catalogue
        self._cat = Catalogue()
        self._versions: dict[int, int] = {}  # id(connection) -> data_version its refresh saw
        self._idle: list[sqlite3.Connection] = []  # pooled reader connections
        self._closed = False
        self._in_transaction = False  # a `transaction` block is open (under self._lock)
        self.journal_mode = "?"
        if not self._memory:
            target = Path(self.path)
            if target.is_dir():
                raise StoreError(
                    f"SQLite store {target} is a directory: set store.url to a file path "
                    "such as sqlite:///data/optui.db"
                )
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"SQLite store {target}: cannot create directory {target.parent} "
                    f"({exc.strerror or exc}); set store.url to sqlite:///A/WRITABLE/PATH.db"
                ) from exc
        self._writer = self._connect()
        try:
            # Frames are tens of kB: 16 kB pages (new files only) halve the overflow-page chains.
            self._writer.execute("PRAGMA page_size=16384")
            self.journal_mode = str(self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            self._writer.execute("PRAGMA synchronous=NORMAL")
            self._writer.executescript(_SCHEMA)
            self._refresh_from(self._writer)
        except sqlite3.Error as exc:
            self._writer.close()
            raise self._error(exc, "open") from exc
        self._committed = threading.Event()
        self._stop = threading.Event()
        self._wrote = False
        self._checkpointer: threading.Thread | None = None
        if not self._memory and self.journal_mode == "wal":
            # Copying the WAL into the database (and its fsync) happens on this thread instead
            # of inside whichever write crosses the threshold, so ingest never stalls on it.
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(
                target=checkpoint_loop,
                args=(str(self.path), self._committed, self._stop, self._damage, quick_check_s,
                      self._checking),
                name=f"sqlite-checkpoint {Path(self.path).name}",
                daemon=True,
            )
            self._checkpointer.start()
            weakref.finalize(self, halt, self._stop, self._committed)
            self._wal = WalBound(self.path, wal_cap_bytes, self._checking)

    @property
    def wal_cap_bytes(self) -> int:
        """WAL size past which each write tries a non-blocking checkpoint (and warns if pinned)."""
        return self._wal.cap_bytes if self._wal is not None else self._wal_cap_bytes

    # -- connections and errors -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        with self._meta_lock:  # a new connection may reuse a closed one's id
            self._versions.pop(id(conn), None)
        return conn

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        """A reader connection from a small pool (WAL readers never wait for the writer).

        Pooled rather than per thread: UI workers run on short-lived threads, and a connection
        per thread would leak one file handle per worker.
        """
        if self._closed:
            raise StoreError(f"SQLite store {self.path} is closed")
        try:
            if self._memory:  # one connection only: take turns with the writer
                with self._lock:
                    self._refresh_from(self._writer)
                    yield self._writer
                return
            with self._meta_lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = self._connect()
            try:
                self._refresh_from(conn)
                yield conn
            finally:
                with self._meta_lock:
                    if self._closed or len(self._idle) >= _IDLE_READERS:
                        self._versions.pop(id(conn), None)  # else one entry per reader ever opened
                        conn.close()
                    else:
                        self._idle.append(conn)
        except sqlite3.Error as exc:
            raise self._error(exc, action) from exc

    def _error(self, exc: BaseException, action: str) -> StoreError:
        text = str(exc).lower()
        if "full" in text:
            hint = "the disk is full: free space or point store.url at another disk"
        elif "readonly" in text or "read-only" in text:
            hint = "the file or its directory is read-only: fix permissions or point store.url elsewhere"
        elif "not a database" in text or "malformed" in text or "corrupt" in text:
            hint = (
                "the file is corrupt or not a SQLite database: move it aside (recover with "
                "`sqlite3 FILE .recover`) and optui will start a new one"
            )
        elif "unable to open" in text:
            hint = "cannot open the file: check that its directory exists and is writable"
        elif "locked" in text or "busy" in text:
            hint = "the file is locked by another process: stop the other writer and retry"
        else:
            hint = str(exc)
        return StoreError(f"SQLite store {self.path}: {action} failed: {hint}")

    def _refresh_from(self, conn: sqlite3.Connection) -> None:
        """Load catalogue rows another connection committed since `conn` last looked (SQLite's
        `data_version` moves only then: one cheap pragma instead of three queries a write)."""
        with self._meta_lock:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if self._versions.get(id(conn)) != version:
                self._cat.refresh(conn)
                self._versions[id(conn)] = version

    def _reload_from(self, conn: sqlite3.Connection) -> None:
        """Load catalogue rows now (after this connection inserted some)."""
        with self._meta_lock:
            self._cat.refresh(conn)

    # -- writes ---------------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> int:
        groups: dict[str, list[Point]] = {}
        for p in points:
            groups.setdefault(p.measurement, []).append(p)
        total = 0
        for measurement, group in groups.items():
            names = list(dict.fromkeys(name for p in group for name in p.fields))
            columns = {name: [p.fields.get(name) for p in group] for name in names}
            times = [p.time_ns for p in group]
            total += self.write_columns(measurement, [p.tags for p in group], times, columns)
        return total

    def _write_columns(self, measurement: str, tags_list: Sequence[Mapping[str, str]],
                       times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        with self.transaction(f"write to {measurement!r}"):
            try:
                self._write_locked(self._writer, measurement, tags_list, times_ns, fields_columns)
            except sqlite3.Error as exc:
                raise self._error(exc, f"write to {measurement!r}") from exc
        return len(times_ns)

    @contextmanager
    def transaction(self, action: str = "write") -> Iterator[None]:
        """Every write inside (on this thread) is one transaction: committed together when the
        block ends, rolled back together when it raises (the error propagates; SQLite errors as
        StoreError). A cycle's measurements then cost one commit instead of one each. Nested
        blocks join the outer one."""
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.path} is closed")
            if self._in_transaction:
                yield
                return
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc, action) from exc
            self._in_transaction = True
            try:
                yield
                conn.execute("COMMIT")
                self._wrote = True
                self._committed.set()
                if self._wal is not None:
                    self._wal.bound(conn)
            except BaseException as failure:
                # SQLite may have rolled back already (SQLITE_FULL does): a second ROLLBACK
                # would replace the real error with "no transaction is active".
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                except sqlite3.Error:
                    log.warning("rollback after a failed write to %s failed", self.path, exc_info=True)
                finally:
                    self._forget_uncommitted(conn)
                if isinstance(failure, sqlite3.Error):
                    raise self._error(failure, action) from failure
                raise
            finally:
                self._in_transaction = False

    def _forget_uncommitted(self, conn: sqlite3.Connection) -> None:
        """Drop catalogue ids a rolled-back write created; reload what the file really holds."""
        with self._meta_lock:
            self._cat = Catalogue()
            self._versions.clear()
            try:
                self._cat.refresh(conn)
            except sqlite3.Error:
                log.warning("catalogue reload of %s failed; it reloads on the next write", self.path)

    def _write_locked(
        self,
        conn: sqlite3.Connection,
        measurement: str,
        tags_list: Sequence[Mapping[str, str]],
        times_ns: Sequence[int],
        fields_columns: Mapping[str, Sequence[Any]],
    ) -> None:
        self._refresh_from(conn)
        cat = self._cat
        mid = cat.mids.get(measurement)
        if mid is None:
            conn.execute("INSERT INTO measurements (name) VALUES (?)", (measurement,))
            self._reload_from(conn)
            mid = cat.mids[measurement]
        sid_arr = np.asarray(series_ids(conn, self._cat, self._reload_from, mid, tags_list), dtype=np.int64)
        fields, matrix, str_cols = field_columns(
            measurement, fields_columns, cat.kinds.setdefault(mid, {}), len(sid_arr)
        )
        # Points grouped by time (one frame each), series ascending inside a group.
        times = np.asarray(plain(times_ns), dtype=np.int64)
        order = np.lexsort((sid_arr, times))
        times_sorted = times[order]
        cuts = np.flatnonzero(np.diff(times_sorted)) + 1
        starts = np.concatenate(([0], cuts))
        ends = np.concatenate((cuts, [len(order)]))
        distinct = times_sorted[starts].tolist()
        existing = self._frames_at(conn, mid, distinct)
        rows: list[tuple[int, int, int, bytes, str | None]] = []
        for t, a, b in zip(distinct, starts.tolist(), ends.tolist(), strict=True):
            idx = order[a:b]
            group_sids = sid_arr[idx]
            unique = len(idx) == 1 or bool(np.all(group_sids[1:] != group_sids[:-1]))
            found = existing.get(t)
            if found is not None:
                with self._meta_lock:
                    found_layout = cat.layout(conn, found[0])
            if found is not None and unique and covers(found_layout, group_sids, idx,
                                                       fields, matrix, str_cols):
                found = None  # every old value is replaced: the merge is the new frame
            if found is not None or not unique:
                old = None if found is None else (found_layout, found[1], found[2])
                sids, frame_fields, mat, strs = merge_frame(
                    old, group_sids, idx, fields, matrix, str_cols
                )
            else:
                sids, frame_fields, mat = group_sids, fields, matrix[idx]
                strs = {k: col[idx].tolist() for k, col in str_cols.items()}
            with self._meta_lock:
                layout_id = layout_id_of(conn, self._cat, self._reload_from, mid, sids, frame_fields)
            nums = np.ascontiguousarray(mat, dtype=np.float64).tobytes()
            rows.append((mid, t, layout_id, nums, pack_texts(strs)))
            if len(rows) >= self.batch_size:
                self._put_frames(conn, rows)
                rows = []
        self._put_frames(conn, rows)

    @staticmethod
    def _put_frames(conn: sqlite3.Connection, rows: list[Any]) -> None:
        conn.executemany(
            "INSERT OR REPLACE INTO frames (measurement_id, time_ns, layout_id, nums, strs) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    @property
    def damage(self) -> str | None:
        """The last `quick_check` damage report (with the recovery command), None while clean."""
        return self._damage[-1] if self._damage else None

    def take_notices(self) -> list[str]:
        """The damage report, every call while the file is damaged (it needs the user)."""
        damage = self.damage
        return [damage] if damage else []

    def check_integrity(self) -> str | None:
        """Run `PRAGMA quick_check` now (seconds on a large file); the report, or None when clean."""
        with self._reading("integrity check") as conn:
            report = quick_check(conn, self.path)
        if report and report not in self._damage:
            self._damage.append(report)
            log.error("%s", report)
        return report

    def _frames_at(
        self, conn: sqlite3.Connection, mid: int, times: list[int]
    ) -> dict[int, tuple[int, bytes, str | None]]:
        cur = conn.execute(
            f"SELECT {_FRAME_COLUMNS} FROM frames WHERE measurement_id = ? "
            "AND time_ns IN (SELECT value FROM json_each(?))",
            (mid, json.dumps(times)),
        )
        return {t: (lid, nums, strs) for t, lid, nums, strs in cur}

    # -- reads ----------------------------------------------------------------------------------

    def _plan(
        self, conn: sqlite3.Connection, measurement: str, tags: Mapping[str, str] | None,
        fields: Sequence[str] | None,
    ) -> Plan | None:
        with self._meta_lock:
            return self._cat.plan(conn, measurement, tags, fields)

    def _views(self, plan: Plan, lids: list[int]) -> dict[int, View]:
        """The views of layouts `lids` that hold wanted series and fields (layouts not kept in
        memory are read from the file)."""
        with self._meta_lock:
            found = {lid: plan.view(lid) for lid in lids}
        return {lid: view for lid, view in found.items() if view is not None}

    def _frames(self, conn: sqlite3.Connection, plan: Plan, start: datetime,
                end: datetime) -> tuple[dict[int, View], Iterable[Frame]]:
        """The frames of the plan's measurement in [start, end) holding wanted series, oldest
        first, with the views of their layouts. The layouts are those of the frames in the
        range (read first, without the frames' blobs), not every layout ever stored."""
        bounds = (plan.mid, time_to_ns(start), time_to_ns(end))
        with self._meta_lock:
            lids = self._cat.layouts_holding(plan.mid, plan.sids)
        if lids is None:  # the catalogue no longer holds every layout: those of the range
            lids = [lid for (lid,) in conn.execute(
                "SELECT DISTINCT layout_id FROM frames WHERE measurement_id = ? "
                "AND time_ns >= ? AND time_ns < ?", bounds)]
        views = self._views(plan, lids)
        if not views:
            return views, []
        frames: Iterable[Frame] = conn.execute(
            f"SELECT {_FRAME_COLUMNS} FROM frames WHERE measurement_id = ? "
            "AND time_ns >= ? AND time_ns < ? AND layout_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY time_ns",
            (*bounds, json.dumps(list(views))),
        )
        return views, frames

    def _query(self, measurement: str, start: datetime, end: datetime,
               tags: Mapping[str, str] | None, fields: Sequence[str] | None,
               limit: int | None) -> list[Row]:
        out: list[Row] = []
        with self._reading(f"query {measurement!r}") as conn:
            plan = self._plan(conn, measurement, tags, fields)
            if plan is None:
                return []
            views, frames = self._frames(conn, plan, start, end)
            for frame in frames:
                out.extend(frame_rows(frame, views[frame[1]], self._cat.tags))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def _aggregate(self, measurement: str, names: list[str], start: datetime, end: datetime,
                   every: str, tags: Mapping[str, str] | None, fn: str) -> list[Row]:
        from optui.analytics.timeframes import bucket_start_ns

        with self._reading(f"aggregate {measurement!r}") as conn:
            plan = self._plan(conn, measurement, tags, names)
            if plan is None:
                return []
            views, found = self._frames(conn, plan, start, end)
            frames = list(found)
        if not frames:
            return []
        kinds = {n: k for v in views.values() for _j, n, k in v.nums}
        starts, values, counts = roll_up(frames, views, names, every, fn, bucket_start_ns)
        out: list[Row] = []
        for b, vals, cnts in zip(starts.tolist(), values.tolist(), counts.tolist(), strict=True):
            row: dict[str, FieldValue] = {}
            for name, v, n in zip(names, vals, cnts, strict=True):
                if n > 0:
                    row[name] = int(v) if kinds.get(name) == "int" and fn != "mean" else v
            if row:
                out.append(Row(ns_to_time(b), dict(tags or {}), row))
        return out

    def latest(self, measurement: str, tags: Mapping[str, str] | None = None) -> Row | None:
        with self._reading(f"read latest {measurement!r}") as conn:
            plan = self._plan(conn, measurement, tags, None)
            if plan is None:
                return None
            newest: tuple[int, View] | None = None
            with self._meta_lock:
                lids = self._cat.layouts_holding(plan.mid, plan.sids)
            if lids is not None:
                views = self._views(plan, lids)
                # One index seek per layout beats sorting every frame by time.
                found = conn.execute(
                    "SELECT (SELECT max(time_ns) FROM frames WHERE layout_id = l.value) AS t, "
                    "l.value FROM json_each(?) l WHERE t IS NOT NULL ORDER BY t DESC LIMIT 1",
                    (json.dumps(list(views)),),
                ).fetchone()
                if found is None:
                    return None
                newest = (found[0], views[found[1]])
            # Else the newest frame whose layout holds a wanted series: frames newest first (the
            # primary key's order, without their blobs), in pages, each layout judged once.
            before = None
            while newest is None:
                page = conn.execute(
                    "SELECT time_ns, layout_id FROM frames WHERE measurement_id = ? "
                    "AND time_ns < coalesce(?, 9223372036854775807) ORDER BY time_ns DESC LIMIT 64",
                    (plan.mid, before),
                ).fetchall()
                if not page:
                    return None
                views = self._views(plan, list(dict.fromkeys(lid for _t, lid in page)))
                newest = next(((t, views[lid]) for t, lid in page if lid in views), None)
                before = page[-1][0]
            frame = conn.execute(
                f"SELECT {_FRAME_COLUMNS} FROM frames WHERE measurement_id = ? AND time_ns = ?",
                (plan.mid, newest[0]),
            ).fetchone()
        rows = frame_rows(frame, newest[1], self._cat.tags)
        return rows[-1] if rows else None

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        with self._reading(f"read tags of {measurement!r}"):
            pass  # refreshes the catalogue
        with self._meta_lock:
            mid = self._cat.mids.get(measurement)
            if mid is None:
                return []
            sids = list(self._cat.series.get(mid, {}).values())
            return sorted({self._cat.tags[s][tag] for s in sids if tag in self._cat.tags[s]})

    def measurements(self) -> list[str]:
        """Names of the measurements stored so far."""
        with self._reading("list measurements"):
            pass  # refreshes the catalogue
        with self._meta_lock:
            return sorted(self._cat.mids)

    # -- lifecycle ------------------------------------------------------------------------------

    def ping(self) -> bool:
        try:
            with self._reading("ping") as conn:
                conn.execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreError):
            return False
        return True

    def describe(self) -> str:
        where = "in memory" if self._memory else str(Path(self.path).resolve())
        return f"SQLite {where} (journal {self.journal_mode})"

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            halt(self._stop, self._committed)
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=30)
        with self._lock:
            with self._meta_lock:
                for conn in self._idle:
                    conn.close()
                self._idle.clear()
            if self._checkpointer is not None and self._wrote:
                try:  # a reader-only store (the TUI beside a collector) never waits here
                    self._writer.execute("PRAGMA busy_timeout=2000")
                    self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                except sqlite3.Error:
                    pass  # the WAL stays beside the file and is replayed on next open
            self._writer.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"
