"""Frame encoding for the SQLite store: the catalogue of series and layouts, and frame codecs.

Why a frame: a SQLite row costs a few microseconds however narrow, so points of one measurement
that share a timestamp are stored as one row: a *layout* (the sorted series ids and the field
names and kinds) plus a float64 matrix (series x numeric fields) and a JSON object for text
fields. This module turns columns into frames and frames back into rows or roll-ups; it never
touches a connection except to read the catalogue tables.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from optui.errors import StoreError
from optui.storage.base import FieldValue, Row, ns_to_time

NUMERIC = ("float", "int", "bool")
"""Field kinds kept in the float64 matrix (ints and bools are converted back on read)."""

_DTYPE_KINDS = {"f": "float", "i": "int", "u": "int", "b": "bool"}
_SEP = "\x1f"  # unit separator: joins a frame's text column when no value contains it

Frame = tuple[int, int, bytes, str | None]
"""A stored frame as read: (time_ns, layout_id, nums blob, strs JSON)."""


@dataclass(slots=True)
class Layout:
    """The series (sorted ids) and fields of a frame; `nums` are the numeric fields in order."""

    id: int
    mid: int
    sids: np.ndarray
    fields: list[tuple[str, str]]
    nums: list[str] = field(default_factory=list)
    strs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.nums = [n for n, k in self.fields if k in NUMERIC]
        self.strs = [n for n, k in self.fields if k not in NUMERIC]

    def matrix(self, nums: bytes) -> np.ndarray:
        """A frame's numeric blob as its (series x numeric fields) matrix."""
        return np.frombuffer(nums, dtype=np.float64).reshape(len(self.sids), len(self.nums))


@dataclass(slots=True)
class View:
    """What a read takes from frames of one layout: row positions, numeric and text fields."""

    layout: Layout
    pos: list[int]
    nums: list[tuple[int, str, str]]  # (column in the matrix, field name, kind)
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


LAYOUTS_KEPT = 128
"""Frame layouts kept whole in memory, least recently used evicted first; any other is read from
the file's `layouts` table when a frame of it is read or merged. A layout is made whenever the
set of series written at one moment changes (the strikes around the money move, an expiry
rolls), so a day adds hundreds (some 220 on bench_soak's 140-leg day): keeping every one (with
its series as a frozenset too, ~50 kB each) grew RSS 6 % over that day. A cycle's writes use a
few tens at most (one per measurement written)."""

MEMBERS_KEPT = 4096
"""Layouts whose measurement and series ids (int32, 4 bytes a series) the catalogue keeps to
choose a read's layouts without the file: this index grows with the day, by one entry per new
layout (bench_soak's day: some 220 entries of ~500 series, ~0.5 MB), so it is bounded to a few
days' layouts, oldest evicted first. A measurement with an evicted entry is read by finding the
layouts of the frames in the read's range instead (correct, slower)."""

LAYOUT_IDS_KEPT = 256
"""(measurement, series, fields) -> layout id entries kept for writes, least recently used
evicted first; a miss is one lookup by digest in the file."""


class Plan:
    """A read's selection: the measurement id, the wanted series ids and fields, and a `View`
    per layout met so far (None for a layout holding none of the wanted series or fields)."""

    def __init__(self, cat: Catalogue, conn: sqlite3.Connection, mid: int, sids: np.ndarray,
                 fields: set[str] | None) -> None:
        self.cat, self.conn, self.mid = cat, conn, mid
        self.sids = sids
        self.fields = fields
        self.views: dict[int, View | None] = {}

    def view(self, lid: int) -> View | None:
        """The view of layout `lid` (read from the file when not kept in memory)."""
        if lid in self.views:
            return self.views[lid]
        lay = self.cat.layout(self.conn, lid)
        out: View | None = None
        if lay.mid == self.mid:
            pos = np.flatnonzero(np.isin(lay.sids, self.sids))
            if pos.size:
                wanted = self.fields
                kinds = dict(lay.fields)
                nums = [(j, n, kinds[n]) for j, n in enumerate(lay.nums) if wanted is None or n in wanted]
                strs = [n for n in lay.strs if wanted is None or n in wanted]
                if nums or strs:
                    out = View(lay, pos.tolist(), nums, strs)
        self.views[lid] = out
        return out


class Catalogue:
    """In-memory copy of measurements, series and field kinds (these grow with what is stored:
    the instruments ever quoted, not the day's length), and bounded caches of frame layouts
    (LAYOUTS_KEPT) and layout ids (LAYOUT_IDS_KEPT), refreshed by id. Not thread-safe: the
    store guards it with its catalogue lock."""

    def __init__(self, layouts_kept: int = LAYOUTS_KEPT, ids_kept: int = LAYOUT_IDS_KEPT) -> None:
        self.mids: dict[str, int] = {}
        self.series: dict[int, dict[tuple[tuple[str, str], ...], int]] = {}
        self.fast: dict[int, dict[Any, int]] = {}  # unsorted items tuple -> series id
        self.by_id: dict[int, dict[int, int]] = {}  # id(FrozenTags) -> series id
        self.kept: list[Any] = []  # the FrozenTags whose ids are in by_id
        self.layout_memo: OrderedDict[tuple[int, bytes, tuple[tuple[str, str], ...]], int] = OrderedDict()
        self.tags: dict[int, dict[str, str]] = {}
        self.layouts: OrderedDict[int, Layout] = OrderedDict()
        self.kinds: dict[int, dict[str, str]] = {}
        self.last_series = 0
        self.last_layout = 0
        self.layouts_kept = max(1, layouts_kept)
        self.ids_kept = max(1, ids_kept)
        self.members: OrderedDict[int, tuple[int, np.ndarray]] = OrderedDict()  # lid -> (mid, sids)
        self.members_kept = MEMBERS_KEPT
        self.partial: set[int] = set()  # measurements with a layout evicted from `members`
        self.layout_reads = 0
        """Layouts read from the file because they were not kept (for tests and diagnosis)."""

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
            self.last_series = sid
        # New layouts: their field kinds (a field keeps its first kind) and series (`members`);
        # the layouts themselves are read when a frame needs them (`layout`).
        for lid, mid, sids, text in conn.execute(
            "SELECT id, measurement_id, sids, fields FROM layouts WHERE id > ? ORDER BY id",
            (self.last_layout,),
        ):
            for n, k in json.loads(text):
                self.kinds.setdefault(mid, {}).setdefault(n, k)
            self.members[lid] = (mid, np.frombuffer(sids, dtype=np.int64).astype(np.int32))
            while len(self.members) > self.members_kept:
                _lid, (gone, _sids) = self.members.popitem(last=False)
                self.partial.add(gone)
            self.last_layout = lid

    def layouts_holding(self, mid: int, sids: np.ndarray) -> list[int] | None:
        """The ids of measurement `mid`'s layouts holding any of `sids`, from `members`; None
        when an entry of `mid` was evicted (the caller finds them from the frames instead)."""
        if mid in self.partial:
            return None
        wanted = sids.astype(np.int32)
        return [lid for lid, (m, held) in self.members.items()
                if m == mid and np.isin(held, wanted).any()]

    def keep_layout(self, lay: Layout) -> Layout:
        """Keep `lay` as the most recently used layout, evicting the least recently used ones
        past `layouts_kept`."""
        self.layouts[lay.id] = lay
        self.layouts.move_to_end(lay.id)
        while len(self.layouts) > self.layouts_kept:
            self.layouts.popitem(last=False)
        return lay

    def layout(self, conn: sqlite3.Connection, lid: int) -> Layout:
        """Layout `lid`, from memory or else from the file through `conn`; StoreError when the
        file holds no such layout (a frame pointing at it is damage)."""
        lay = self.layouts.get(lid)
        if lay is not None:
            self.layouts.move_to_end(lid)
            return lay
        row = conn.execute("SELECT measurement_id, sids, fields FROM layouts WHERE id = ?",
                           (lid,)).fetchone()
        if row is None:
            raise StoreError(f"frame layout {lid} is missing from the layouts table: the file is "
                             "damaged (recover it with `sqlite3 FILE .recover`)")
        self.layout_reads += 1
        mid, sids, text = row
        return self.keep_layout(Layout(lid, mid, np.frombuffer(sids, dtype=np.int64),
                                       [(n, k) for n, k in json.loads(text)]))

    def remember_id(self, key: tuple[int, bytes, tuple[tuple[str, str], ...]], lid: int) -> None:
        """Keep a layout id by its (measurement, series bytes, fields) key (bounded, LRU)."""
        self.layout_memo[key] = lid
        self.layout_memo.move_to_end(key)
        while len(self.layout_memo) > self.ids_kept:
            self.layout_memo.popitem(last=False)

    def plan(
        self, conn: sqlite3.Connection, measurement: str, tags: Mapping[str, str] | None,
        fields: Sequence[str] | None,
    ) -> Plan | None:
        """The selection of a read: the series of `measurement` matching `tags` and the wanted
        `fields` (None: all); views of the layouts are made as frames of them are met. None when
        the measurement or a matching series does not exist."""
        mid = self.mids.get(measurement)
        if mid is None:
            return None
        want = {str(k): str(v) for k, v in (tags or {}).items()}
        sids = [
            sid for sid in self.series.get(mid, {}).values()
            if all(self.tags[sid].get(k) == v for k, v in want.items())
        ]
        if not sids:
            return None
        return Plan(self, conn, mid, np.asarray(sids, dtype=np.int64),
                    None if fields is None else set(fields))


# -- columns to frames ------------------------------------------------------------------------


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


def plain(column: Any) -> list[Any]:
    """A column as a list of Python values (numpy arrays through tolist, in C)."""
    if isinstance(column, list):
        return column
    tolist = getattr(column, "tolist", None)
    return tolist() if callable(tolist) else list(column)


def field_columns(
    measurement: str,
    fields_columns: Mapping[str, Sequence[Any]],
    kinds: Mapping[str, str],
    rows: int,
) -> tuple[list[tuple[str, str]], np.ndarray, dict[str, np.ndarray]]:
    """Fields sorted by name with their kinds, the numeric matrix (rows x numeric fields), and
    the text columns; a field keeps the kind it was first stored with (`kinds`)."""
    fields: list[tuple[str, str]] = []
    num_cols: list[np.ndarray] = []
    str_cols: dict[str, np.ndarray] = {}
    for name in sorted(fields_columns):
        given = fields_columns[name]
        if isinstance(given, np.ndarray) and given.dtype.kind in "fiub":
            # Numeric arrays go straight in: no per-value Python work.
            kind = kinds.get(name) or _DTYPE_KINDS[given.dtype.kind]
            if kind in NUMERIC:
                fields.append((name, kind))
                num_cols.append(given.astype(np.float64, copy=False))
                continue
        values = plain(given)
        kind = kinds.get(name) or _kind_of(values)
        fields.append((name, kind))
        if kind not in NUMERIC:
            str_cols[name] = np.asarray(values, dtype=object)
            continue
        try:
            num_cols.append(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            bad = next((v for v in values if not isinstance(v, int | float | None)), None)
            raise StoreError(
                f"field {name!r} of {measurement!r} is numeric ({kind}) but got "
                f"{type(bad).__name__} values such as {str(bad)[:20]!r}: "
                "write numbers, or use a new field name for text"
            ) from exc
    matrix = np.column_stack(num_cols) if num_cols else np.empty((rows, 0))
    if matrix.size and not np.isfinite(matrix).all():
        # +-inf is never stored (InfluxDB cannot hold it either): like NaN, it becomes "absent".
        matrix = np.where(np.isfinite(matrix), matrix, np.nan)
    return fields, matrix, str_cols


def pack_texts(columns: Mapping[str, list[str | None]]) -> str | None:
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


def unpack_texts(text: str | None) -> dict[str, list[str | None]]:
    if not text:
        return {}
    out: dict[str, list[str | None]] = {}
    for name, value in json.loads(text).items():
        out[name] = list(value.split(_SEP)) if isinstance(value, str) else value
    return out


def _frame_dicts(layout: Layout, nums: bytes, strs: str | None) -> list[dict[str, Any]]:
    """Each series' present fields in a stored frame, in layout order."""
    texts = unpack_texts(strs)
    out: list[dict[str, Any]] = []
    for i, values in enumerate(layout.matrix(nums).tolist()):
        d: dict[str, Any] = {
            n: v for n, v in zip(layout.nums, values, strict=True) if not math.isnan(v)
        }
        for n in layout.strs:
            col = texts.get(n)
            if col is not None and col[i] is not None:
                d[n] = col[i]
        out.append(d)
    return out


def covers(layout: Layout, sids: np.ndarray, idx: np.ndarray, fields: list[tuple[str, str]],
           matrix: np.ndarray, str_cols: dict[str, np.ndarray]) -> bool:
    """Whether new points (rows `idx`, series `sids`, sorted and unique) replace every value of
    a stored frame of `layout`: each of its series and fields is among the new ones and no new
    value is absent (NaN or None). `merge_frame` then gives the new points alone."""
    names = {n for n, _ in fields}
    if not all(n in names for n, _ in layout.fields):
        return False
    if not np.isin(layout.sids, sids).all():
        return False
    if matrix.size and np.isnan(matrix[idx]).any():
        return False
    return all(v is not None for col in str_cols.values() for v in col[idx].tolist())


def merge_frame(
    old: tuple[Layout, bytes, str | None] | None,
    sids: np.ndarray,
    idx: np.ndarray,
    fields: list[tuple[str, str]],
    matrix: np.ndarray,
    str_cols: dict[str, np.ndarray],
) -> tuple[np.ndarray, list[tuple[str, str]], np.ndarray, dict[str, list[Any]]]:
    """Union of an existing frame and new points (rows `idx`): new values win, missing ones
    keep the old; a later duplicate of a series in `idx` wins over an earlier one."""
    points: dict[int, dict[str, Any]] = {}
    kinds = dict(fields)
    if old is not None:
        layout, old_nums, old_strs = old
        kinds = {**dict(layout.fields), **kinds}
        for sid, fields_of in zip(
            layout.sids.tolist(), _frame_dicts(layout, old_nums, old_strs), strict=True
        ):
            points[sid] = fields_of
    nums = [n for n, k in fields if k in NUMERIC]
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
    out_sids = sorted(points)
    num_names = [n for n, k in all_fields if k in NUMERIC]
    mat = np.array(
        [[points[s].get(n, math.nan) for n in num_names] for s in out_sids], dtype=np.float64
    ).reshape(len(out_sids), len(num_names))
    strs = {n: [points[s].get(n) for s in out_sids] for n, k in all_fields if k not in NUMERIC}
    return np.asarray(out_sids, dtype=np.int64), all_fields, mat, strs


# -- frames to rows ---------------------------------------------------------------------------


def _decode(value: float, kind: str) -> FieldValue:
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    return value


def frame_rows(frame: Frame, view: View, tags: Mapping[int, dict[str, str]]) -> list[Row]:
    """The rows of one frame a view selects; series without any wanted field are left out."""
    t, _lid, nums, strs = frame
    sub = view.layout.matrix(nums)[np.ix_(view.pos_arr, view.cols)]  # series x wanted fields
    clean = not np.isnan(sub).any()
    texts = unpack_texts(strs) if view.strs else {}
    text_cols = [(name, texts.get(name)) for name in view.strs]
    when = ns_to_time(t)
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


def roll_up(
    frames: list[Frame],
    views: dict[int, View],
    names: list[str],
    every: str,
    fn: str,
    bucket_start_ns: Callable[[np.ndarray, str], Any],
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
        rows = np.flatnonzero(layout_of == lid)
        if not view.nums or not len(rows):
            continue
        lay = view.layout
        blob = b"".join(frames[r][2] for r in rows.tolist())
        cube = np.frombuffer(blob, dtype=np.float64).reshape(len(rows), len(lay.sids), len(lay.nums))
        where = np.asarray([slot[n] for n in view.num_names], dtype=np.intp)
        sub = cube[:, view.pos_arr][:, :, view.cols]  # frames x series x fields
        valid = ~np.isnan(sub)
        shape = (len(rows), len(where))
        cells = (np.broadcast_to(frame_bucket[rows][:, None], shape), np.broadcast_to(where, shape))
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
