"""The embedded store: SQLite in WAL mode, nothing to install, every point kept forever.

Why frames: a SQLite row costs a few microseconds however narrow, so one row per leg caps ingest
near 150,000 points/s here. Points of one measurement that share a timestamp (a snapshot's legs,
a minute's flow bars) are stored as one *frame*: the sorted series ids (a shared *layout*) and a
float64 matrix of the numeric fields, plus a JSON object for text fields. Replace-on-identity
merges into the frame at that time; `(layout_id, time_ns)` is indexed so one series' history and
`latest` touch only frames that contain it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from optui.errors import StoreError
from optui.storage.base import (
    AGGREGATE_FNS,
    FieldValue,
    FrozenTags,
    Row,
    Store,
    ns_to_time,
    time_to_ns,
)
from optui.storage.points import Point

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
_NUMERIC = ("float", "int", "bool")
_IDLE_READERS = 4
_WAL_CAP = 256 * 1024 * 1024  # bytes of WAL before the writer checkpoints itself
_DTYPE_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool"}
_SEP = "\x1f"  # unit separator: joins a frame's text column when no value contains it


@dataclass(slots=True)
class _Layout:
    """The series (sorted ids) and fields of a frame; `nums` are the numeric fields in order."""

    id: int
    mid: int
    sids: np.ndarray
    fields: list[tuple[str, str]]
    nums: list[str] = field(default_factory=list)
    strs: list[str] = field(default_factory=list)
    sid_set: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        self.nums = [n for n, k in self.fields if k in _NUMERIC]
        self.strs = [n for n, k in self.fields if k not in _NUMERIC]
        self.sid_set = frozenset(self.sids.tolist())


class _Catalogue:
    """In-memory copy of measurements, series and layouts; grows only, refreshed by id."""

    def __init__(self) -> None:
        self.mids: dict[str, int] = {}
        self.series: dict[int, dict[tuple[tuple[str, str], ...], int]] = {}
        self.fast: dict[int, dict[Any, int]] = {}  # unsorted items tuple -> series id
        self.by_id: dict[int, dict[int, int]] = {}  # id(FrozenTags) -> series id
        self.kept: list[Any] = []  # the FrozenTags whose ids are in by_id
        self.layout_memo: dict[tuple[int, bytes, tuple[tuple[str, str], ...]], int] = {}
        self.tags: dict[int, dict[str, str]] = {}
        self.series_mid: dict[int, int] = {}
        self.layouts: dict[int, _Layout] = {}
        self.by_digest: dict[str, int] = {}
        self.kinds: dict[int, dict[str, str]] = {}
        self.last_series = 0
        self.last_layout = 0

    def refresh(self, conn: sqlite3.Connection) -> None:
        for mid, name in conn.execute("SELECT id, name FROM measurements"):
            self.mids.setdefault(name, mid)
            self.series.setdefault(mid, {})
            self.kinds.setdefault(mid, {})
        for sid, mid, text in conn.execute(
            "SELECT id, measurement_id, tags FROM series WHERE id > ? ORDER BY id",
            (self.last_series,),
        ):
            tags = json.loads(text)
            self.series.setdefault(mid, {})[tuple(sorted(tags.items()))] = sid
            self.tags[sid] = tags
            self.series_mid[sid] = mid
            self.last_series = sid
        for lid, mid, digest, sids, text in conn.execute(
            "SELECT id, measurement_id, digest, sids, fields FROM layouts WHERE id > ? ORDER BY id",
            (self.last_layout,),
        ):
            fields = [(n, k) for n, k in json.loads(text)]
            self.layouts[lid] = _Layout(lid, mid, np.frombuffer(sids, dtype=np.int64), fields)
            self.by_digest[digest] = lid
            for n, k in fields:
                self.kinds.setdefault(mid, {}).setdefault(n, k)
            self.last_layout = lid


def _kind_of(values: Sequence[Any]) -> str:
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, bool | np.bool_):
            return "bool"
        if isinstance(v, int | np.integer):
            return "int"
        if isinstance(v, str):
            return "str"
        return "float"
    return "float"


def _plain(column: Any) -> list[Any]:
    if isinstance(column, list):
        return column
    tolist = getattr(column, "tolist", None)
    return tolist() if callable(tolist) else list(column)


def _halt(stop: threading.Event, committed: threading.Event) -> None:
    stop.set()
    committed.set()  # wake the loop now rather than at its next timeout


def _checkpoint_loop(path: str, committed: threading.Event, stop: threading.Event) -> None:
    """Checkpoint passively (never blocking readers or the writer) after commits, twice a
    second at most, until `stop`; SQLiteStore.close() does the final full checkpoint.

    Holds no reference to the store, so a store that is dropped without close() can still be
    collected (its writer connection closes, and `stop` is set by its finaliser).
    """
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    except sqlite3.Error:
        return
    try:
        while not stop.is_set():
            if not committed.wait(timeout=1.0):
                continue
            committed.clear()
            if stop.is_set():
                break
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                pass  # busy or failing disk: the next write reports it with a clear message
            stop.wait(0.5)
    finally:
        conn.close()


def _pack_texts(columns: Mapping[str, list[str | None]]) -> str | None:
    """Text columns as JSON; a column without None or separators is one joined string (fast)."""
    if not columns:
        return None
    out: dict[str, str | list[str | None]] = {}
    for name, values in columns.items():
        try:
            joined = _SEP.join(values)  # type: ignore[arg-type]
        except TypeError:
            out[name] = values
            continue
        out[name] = joined if joined.count(_SEP) == len(values) - 1 else values
    return json.dumps(out, separators=(",", ":"))


def _unpack_texts(text: str | None) -> dict[str, list[str | None]]:
    if not text:
        return {}
    out: dict[str, list[str | None]] = {}
    for name, value in json.loads(text).items():
        out[name] = list(value.split(_SEP)) if isinstance(value, str) else value
    return out


def _decode(value: float, kind: str) -> FieldValue:
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return value


class SQLiteStore(Store):
    """A `Store` in one SQLite file (WAL): one writer thread and any number of reader threads."""

    def __init__(self, path: str | Path, batch_size: int = 5000) -> None:
        self._memory = str(path) == ":memory:"
        self.path: Path | str = ":memory:" if self._memory else Path(path)
        self.batch_size = max(1, int(batch_size))
        self._lock = threading.RLock()  # the writer's, held for a whole transaction
        self._meta_lock = threading.RLock()  # short: guards the in-memory catalogue
        self._cat = _Catalogue()
        self._idle: list[sqlite3.Connection] = []  # pooled reader connections
        self._closed = False
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
                target=_checkpoint_loop,
                args=(str(self.path), self._committed, self._stop),
                name=f"sqlite-checkpoint {Path(self.path).name}",
                daemon=True,
            )
            self._checkpointer.start()
            weakref.finalize(self, _halt, self._stop, self._committed)
            self._wal_path = f"{self.path}-wal"

    # -- connections and errors -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
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

    def write_columns(
        self,
        measurement: str,
        tags_list: Sequence[Mapping[str, str]],
        times_ns: Sequence[int],
        fields_columns: Mapping[str, Sequence[Any]],
    ) -> int:
        n = len(times_ns)
        if len(tags_list) != n or any(len(c) != n for c in fields_columns.values()):
            raise ValueError("write_columns: tags_list, times_ns and every field column must match")
        if n == 0:
            return 0
        with self._lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.path} is closed")
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    self._write_locked(conn, measurement, tags_list, times_ns, fields_columns)
                    conn.execute("COMMIT")
                    self._wrote = True
                    self._committed.set()
                    self._bound_wal(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    with self._meta_lock:  # forget ids the rollback took back
                        self._cat = _Catalogue()
                        self._cat.refresh(conn)
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc, f"write to {measurement!r}") from exc
        return n

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
            mid = int(conn.execute("INSERT INTO measurements (name) VALUES (?)", (measurement,)).lastrowid or 0)
            self._refresh_from(conn)
        sids = self._series_ids(conn, mid, tags_list)
        kinds = cat.kinds.setdefault(mid, {})
        fields: list[tuple[str, str]] = []
        num_cols: list[np.ndarray] = []
        str_cols: dict[str, np.ndarray] = {}
        for name in sorted(fields_columns):
            given = fields_columns[name]
            if isinstance(given, np.ndarray) and given.dtype.kind in "fiub":
                # Numeric arrays go straight in: no per-value Python work.
                kind = kinds.get(name) or _DTYPE_KINDS[given.dtype.kind]
                if kind in _NUMERIC:
                    fields.append((name, kind))
                    num_cols.append(given.astype(np.float64, copy=False))
                    continue
            values = _plain(given)
            kind = kinds.get(name) or _kind_of(values)
            fields.append((name, kind))
            if kind in _NUMERIC:
                try:
                    num_cols.append(np.asarray(values, dtype=np.float64))
                except (TypeError, ValueError) as exc:
                    bad = next((v for v in values if not isinstance(v, int | float | None)), None)
                    raise StoreError(
                        f"field {name!r} of {measurement!r} is numeric ({kind}) but got "
                        f"{type(bad).__name__} values such as {str(bad)[:20]!r}: "
                        "write numbers, or use a new field name for text"
                    ) from exc
            else:
                str_cols[name] = np.asarray(values, dtype=object)
        matrix = np.column_stack(num_cols) if num_cols else np.empty((len(sids), 0))
        times = np.asarray(_plain(times_ns), dtype=np.int64)
        sid_arr = np.asarray(sids, dtype=np.int64)
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
            if t in existing or not unique:
                merged = self._merged(existing.get(t), group_sids, idx, fields, matrix, str_cols)
                layout_id, nums, strs = self._encode(conn, mid, *merged)
            else:
                strs_obj = {k: col[idx].tolist() for k, col in str_cols.items()}
                layout_id, nums, strs = self._encode(
                    conn, mid, group_sids, fields, matrix[idx], strs_obj
                )
            rows.append((mid, t, layout_id, nums, strs))
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

    def _bound_wal(self, conn: sqlite3.Connection) -> None:
        """Under sustained writes passive checkpoints never catch up and the WAL would grow
        without end; past _WAL_CAP bytes the writer checkpoints and restarts it itself."""
        if self._checkpointer is None:
            return
        try:
            size = os.stat(self._wal_path).st_size
        except OSError:
            return
        if size > _WAL_CAP:
            conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()

    def _series_ids(
        self, conn: sqlite3.Connection, mid: int, tags_list: Sequence[Mapping[str, str]]
    ) -> list[int]:
        cat = self._cat
        fast = cat.fast.setdefault(mid, {})
        by_id = cat.by_id.setdefault(mid, {})
        # FrozenTags are immutable and kept alive in `cat.kept`, so their id() cannot be reused:
        # one C-level probe per point. Plain dicts take the slower items-tuple path below.
        out: list[int | None] = list(map(by_id.get, map(id, tags_list)))
        if None not in out:
            return out  # type: ignore[return-value]
        if len(cat.kept) > 100_000:
            cat.kept.clear()
            for ids in cat.by_id.values():
                ids.clear()
        for i, tags in enumerate(tags_list):
            if out[i] is not None:
                continue
            frozen = tags.__class__ is FrozenTags
            quick = tuple(tags.items())
            sid = fast.get(quick)
            if sid is None:
                key = tuple(sorted((str(k), str(v)) for k, v in tags.items()))
                sid = cat.series[mid].get(key)
                if sid is None:
                    text = json.dumps(dict(key), separators=(",", ":"))
                    conn.execute(
                        "INSERT OR IGNORE INTO series (measurement_id, tags) VALUES (?, ?)",
                        (mid, text),
                    )
                    self._refresh_from(conn)
                    sid = cat.series[mid][key]
                fast[quick] = sid
            if frozen:
                cat.kept.append(tags)
                by_id[id(tags)] = sid
            out[i] = sid
        return out  # type: ignore[return-value]

    def _frames_at(self, conn: sqlite3.Connection, mid: int, times: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        cur = conn.execute(
            "SELECT time_ns, layout_id, nums, strs FROM frames WHERE measurement_id = ? "
            "AND time_ns IN (SELECT value FROM json_each(?))",
            (mid, json.dumps(times)),
        )
        for t, lid, nums, strs in cur:
            found[t] = (lid, nums, strs)
        return found

    def _merged(
        self,
        old: Any,
        sids: np.ndarray,
        idx: np.ndarray,
        fields: list[tuple[str, str]],
        matrix: np.ndarray,
        str_cols: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray, dict[str, list[Any]]]:
        """Union of an existing frame and new points: new values win, missing ones keep old."""
        points: dict[int, dict[str, Any]] = {}
        kinds = dict(fields)
        if old is not None:
            layout = self._cat.layouts[old[0]]
            kinds = {**dict(layout.fields), **kinds}
            for sid, fields_of in zip(layout.sids.tolist(), self._frame_dicts(layout, old), strict=True):
                points[sid] = fields_of
        nums = [n for n, k in fields if k in _NUMERIC]
        for row, sid in zip(idx.tolist(), sids.tolist(), strict=True):
            target = points.setdefault(sid, {})
            for j, name in enumerate(nums):
                v = matrix[row, j]
                if not math.isnan(v):
                    target[name] = v
            for name, col in str_cols.items():
                if col[row] is not None:
                    target[name] = col[row]
        all_fields = sorted(kinds.items())
        out_sids = np.asarray(sorted(points), dtype=np.int64)
        num_names = [n for n, k in all_fields if k in _NUMERIC]
        mat = np.array(
            [[points[s].get(n, math.nan) for n in num_names] for s in out_sids.tolist()],
            dtype=np.float64,
        ).reshape(len(out_sids), len(num_names))
        strs = {
            n: [points[s].get(n) for s in out_sids.tolist()]
            for n, k in all_fields if k not in _NUMERIC
        }
        return out_sids, all_fields, mat, strs

    @staticmethod
    def _frame_dicts(layout: _Layout, frame: Any) -> list[dict[str, Any]]:
        _lid, nums, strs = frame
        mat = np.frombuffer(nums, dtype=np.float64).reshape(len(layout.sids), len(layout.nums))
        texts = _unpack_texts(strs)
        out: list[dict[str, Any]] = []
        for i, values in enumerate(mat.tolist()):
            d: dict[str, Any] = {
                n: v for n, v in zip(layout.nums, values, strict=True) if not math.isnan(v)
            }
            for n in layout.strs:
                col = texts.get(n)
                if col is not None and col[i] is not None:
                    d[n] = col[i]
            out.append(d)
        return out

    def _encode(
        self,
        conn: sqlite3.Connection,
        mid: int,
        sids: np.ndarray,
        fields: list[tuple[str, str]],
        matrix: np.ndarray,
        strs: dict[str, list[Any]],
    ) -> tuple[int, bytes, str | None]:
        sid_bytes = np.ascontiguousarray(sids, dtype=np.int64).tobytes()
        memo_key = (mid, sid_bytes, tuple(fields))
        lid = self._cat.layout_memo.get(memo_key)
        if lid is not None:
            nums = np.ascontiguousarray(matrix, dtype=np.float64).tobytes()
            return lid, nums, _pack_texts(strs)
        fields_json = json.dumps(fields, separators=(",", ":"))
        digest = hashlib.blake2b(
            sid_bytes + fields_json.encode() + str(mid).encode(), digest_size=16
        ).hexdigest()
        lid = self._cat.by_digest.get(digest)
        if lid is None:
            conn.execute(
                "INSERT INTO layouts (measurement_id, digest, sids, fields) VALUES (?, ?, ?, ?)",
                (mid, digest, sid_bytes, fields_json),
            )
            self._refresh_from(conn)
            lid = self._cat.by_digest[digest]
        self._cat.layout_memo[memo_key] = lid
        nums = np.ascontiguousarray(matrix, dtype=np.float64).tobytes()
        return lid, nums, _pack_texts(strs)

    # -- reads ----------------------------------------------------------------------------------

    def _plan(
        self, measurement: str, tags: Mapping[str, str] | None, fields: Sequence[str] | None
    ) -> tuple[int, dict[int, _View]] | None:
        """The layouts holding matching series, each with the row positions and fields to read."""
        with self._meta_lock:
            cat = self._cat
            mid = cat.mids.get(measurement)
            if mid is None:
                return None
            want = {str(k): str(v) for k, v in (tags or {}).items()}
            sids = {
                sid for key, sid in cat.series.get(mid, {}).items()
                if all(cat.tags[sid].get(k) == v for k, v in want.items())
            }
            layouts = [lay for lay in cat.layouts.values() if lay.mid == mid]
        views: dict[int, _View] = {}
        wanted = None if fields is None else set(fields)
        for lay in layouts:
            if not (lay.sid_set & sids):
                continue
            pos = np.flatnonzero(np.isin(lay.sids, np.fromiter(sids, dtype=np.int64)))
            nums = [(j, n, k) for j, n in enumerate(lay.nums)
                    for k in [dict(lay.fields)[n]] if wanted is None or n in wanted]
            strs = [n for n in lay.strs if wanted is None or n in wanted]
            if nums or strs:
                views[lay.id] = _View(lay, pos.tolist(), nums, strs)
        return (mid, views) if views else None

    def _rows(self, frame: tuple[int, int, bytes, str | None], views: dict[int, _View]) -> list[Row]:
        t, lid, nums, strs = frame
        view = views[lid]
        lay = view.layout
        mat = np.frombuffer(nums, dtype=np.float64).reshape(len(lay.sids), len(lay.nums))
        sub = mat[np.ix_(view.pos_arr, view.cols)]  # the wanted series x the wanted fields
        clean = not np.isnan(sub).any()
        texts = _unpack_texts(strs) if view.strs else {}
        text_cols = [(name, texts.get(name)) for name in view.strs]
        when = ns_to_time(t)
        tags = self._cat.tags
        names = view.num_names
        out: list[Row] = []
        for i, sid, values in zip(view.pos, view.sids, sub.tolist(), strict=True):
            if clean:
                fields: dict[str, FieldValue] = dict(zip(names, values, strict=True))
            else:
                fields = {n: v for n, v in zip(names, values, strict=True) if v == v}  # v == v: not NaN
            for name, kind in view.casts:
                if name in fields:
                    fields[name] = _decode(fields[name], kind)  # type: ignore[arg-type]
            for name, col in text_cols:
                text = None if col is None else col[i]
                if text is not None:
                    fields[name] = text
            if fields:  # a point without any field does not exist (as in InfluxDB)
                out.append(Row(when, dict(tags[sid]), fields))
        return out

    def _frames(self, conn: sqlite3.Connection, mid: int, views: dict[int, _View],
                start: datetime, end: datetime) -> sqlite3.Cursor:
        return conn.execute(
            "SELECT time_ns, layout_id, nums, strs FROM frames WHERE measurement_id = ? "
            "AND time_ns >= ? AND time_ns < ? AND layout_id IN (SELECT value FROM json_each(?)) "
            "ORDER BY time_ns",
            (mid, time_to_ns(start), time_to_ns(end), json.dumps(list(views))),
        )

    def query(
        self,
        measurement: str,
        start: datetime,
        end: datetime,
        tags: Mapping[str, str] | None = None,
        fields: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        out: list[Row] = []
        with self._reading(f"query {measurement!r}") as conn:
            plan = self._plan(measurement, tags, fields)
            if plan is None:
                return []
            mid, views = plan
            for frame in self._frames(conn, mid, views, start, end):
                out.extend(self._rows(frame, views))
                if limit is not None and len(out) >= limit:
                    break
        return out if limit is None else out[: max(0, limit)]

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
        from optui.analytics.timeframes import TIMEFRAMES, bucket_start_ns

        if every not in TIMEFRAMES:
            raise ValueError(f"aggregate every={every!r}: choose from {', '.join(TIMEFRAMES)}")
        if fn not in AGGREGATE_FNS:
            raise ValueError(f"aggregate fn={fn!r}: choose from {', '.join(AGGREGATE_FNS)}")
        names = list(dict.fromkeys(fields))
        with self._reading(f"aggregate {measurement!r}") as conn:
            plan = self._plan(measurement, tags, names)
            if plan is None:
                return []
            mid, views = plan
            frames = self._frames(conn, mid, views, start, end).fetchall()
        if not frames:
            return []
        kinds = {n: k for v in views.values() for _j, n, k in v.nums}
        starts, values, counts = _roll_up(frames, views, names, every, fn, bucket_start_ns)
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
            plan = self._plan(measurement, tags, None)
            if plan is None:
                return None
            mid, views = plan
            # One index seek per layout beats sorting every frame by time.
            newest = conn.execute(
                "SELECT (SELECT max(time_ns) FROM frames WHERE layout_id = l.value) AS t "
                "FROM json_each(?) l WHERE t IS NOT NULL ORDER BY t DESC LIMIT 1",
                (json.dumps(list(views)),),
            ).fetchone()
            if newest is None:
                return None
            frame = conn.execute(
                "SELECT time_ns, layout_id, nums, strs FROM frames "
                "WHERE measurement_id = ? AND time_ns = ?",
                (mid, newest[0]),
            ).fetchone()
        rows = self._rows(frame, views)
        return rows[-1] if rows else None

    def tag_values(self, measurement: str, tag: str) -> list[str]:
        with self._reading(f"read tags of {measurement!r}"):
            pass
        with self._meta_lock:
            mid = self._cat.mids.get(measurement)
            if mid is None:
                return []
            sids = list(self._cat.series.get(mid, {}).values())
            return sorted({self._cat.tags[s][tag] for s in sids if tag in self._cat.tags[s]})

    def measurements(self) -> list[str]:
        """Names of the measurements stored so far."""
        with self._reading("list measurements"):
            pass
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
            self._stop.set()
            self._committed.set()
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


@dataclass(slots=True)
class _View:
    """What a read takes from frames of one layout: row positions, numeric and text fields."""

    layout: _Layout
    pos: list[int]
    nums: list[tuple[int, str, str]]
    strs: list[str]
    pos_arr: np.ndarray = field(init=False)
    cols: np.ndarray = field(init=False)
    sids: list[int] = field(init=False)
    num_names: list[str] = field(init=False)
    casts: list[tuple[str, str]] = field(init=False)  # int and bool fields to convert back

    def __post_init__(self) -> None:
        self.pos_arr = np.asarray(self.pos, dtype=np.intp)
        self.cols = np.asarray([j for j, _n, _k in self.nums], dtype=np.intp)
        self.sids = [int(self.layout.sids[i]) for i in self.pos]
        self.num_names = [n for _j, n, _k in self.nums]
        self.casts = [(n, k) for _j, n, k in self.nums if k != "float"]


def _roll_up(
    frames: list[tuple[int, int, bytes, str | None]],
    views: dict[int, _View],
    names: list[str],
    every: str,
    fn: str,
    bucket_start_ns: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket starts, per-bucket values and counts (buckets x names), vectorised per layout.

    Frames of one layout stack into a (frames x series x fields) array, so a week of minute
    bars is a handful of numpy calls rather than thousands of small ones.
    """
    times = np.fromiter((f[0] for f in frames), dtype=np.int64, count=len(frames))
    starts, frame_bucket = np.unique(np.asarray(bucket_start_ns(times, every)), return_inverse=True)
    nb, k = len(starts), len(names)
    slot = {n: i for i, n in enumerate(names)}
    total = np.zeros((nb, k))
    count = np.zeros((nb, k), dtype=np.int64)
    best = np.full((nb, k), -np.inf if fn == "max" else np.inf)
    last_keys: list[np.ndarray] = []
    last_times: list[np.ndarray] = []
    last_vals: list[np.ndarray] = []
    layout_of = np.fromiter((f[1] for f in frames), dtype=np.int64, count=len(frames))
    for lid, view in views.items():
        if not view.nums:
            continue
        rows = np.flatnonzero(layout_of == lid)
        if not len(rows):
            continue
        lay = view.layout
        blob = b"".join(frames[r][2] for r in rows.tolist())
        cube = np.frombuffer(blob, dtype=np.float64).reshape(len(rows), len(lay.sids), len(lay.nums))
        cols = np.asarray([j for j, _n, _k in view.nums], dtype=np.intp)
        where = np.asarray([slot[n] for _j, n, _k in view.nums], dtype=np.intp)
        sub = cube[:, np.asarray(view.pos, dtype=np.intp)][:, :, cols]  # frames x series x fields
        valid = ~np.isnan(sub)
        fb = frame_bucket[rows][:, None]
        cells = (np.broadcast_to(fb, (len(rows), len(where))), np.broadcast_to(where, (len(rows), len(where))))
        np.add.at(count, cells, valid.sum(axis=1))
        if fn in ("sum", "mean"):
            np.add.at(total, cells, np.where(valid, sub, 0.0).sum(axis=1))
        elif fn == "max":
            np.maximum.at(best, cells, np.where(valid, sub, -np.inf).max(axis=1))
        elif fn == "min":
            np.minimum.at(best, cells, np.where(valid, sub, np.inf).min(axis=1))
        else:  # last: the last present value of each frame, then the latest frame per cell
            has = valid.any(axis=1)
            pos = valid.shape[1] - 1 - np.argmax(valid[:, ::-1, :], axis=1)
            vals = np.take_along_axis(sub, pos[:, None, :], axis=1)[:, 0, :]
            f_idx, c_idx = np.nonzero(has)
            last_keys.append(frame_bucket[rows][f_idx] * k + where[c_idx])
            last_times.append(times[rows][f_idx])
            last_vals.append(vals[f_idx, c_idx])
    if fn == "sum":
        values = total
    elif fn == "mean":
        values = total / np.maximum(count, 1)
    elif fn in ("max", "min"):
        values = best
    else:
        values = np.full((nb, k), np.nan)
        keys, ts, vs = (np.concatenate(a) if a else np.empty(0) for a in (last_keys, last_times, last_vals))
        if keys.size:
            order = np.lexsort((ts, keys))
            keys, vs = keys[order], vs[order]
            final = np.r_[keys[1:] != keys[:-1], True]  # the latest entry of each cell
            values.reshape(-1)[keys[final]] = vs[final]
    return starts, values, count
