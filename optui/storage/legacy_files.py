"""The original collectors' files: a JSON file per leg and a daily 24-column CSV sidecar.

Users' scripts and dashboards read these, so names, columns and order are the originals'.
Layout under `out_dir` (usually `data/`):

- `raw_snapshots/options/{bucket}/{INDEX}_{SIDE}_{bucket}_{expiry}_{YYYYmmdd_HHMMSS}.json` for
  the ATM leg; the other offsets add `_{strike_offset}` before `.json` (the originals wrote all
  five offsets to the ATM name, so four of five legs were overwritten every cycle).
  The `YYYYmmdd_HHMMSS` stamp is the snapshot time in IST.
- `raw_snapshots/options/options_{YYYYmmdd}.csv`: one row per leg and moment, exactly
  `optui.models.LEG_CSV_COLUMNS` in order, header written once per file, one file per IST day;
  collecting a moment again replaces its rows (as the JSON files are replaced).

Times inside both are ISO 8601 with the +05:30 offset (the originals' users read IST). NaN is
`null` in JSON and an empty cell in CSV. Lines end with LF only.

Crash safety: each JSON file is written to a temporary name, fsync'd and renamed, so a reader
never sees a partial file. CSV rows are appended in one write and fsync'd; after a crash,
`reconcile_with_store` cuts a torn last line and appends the cycles the store holds but the CSV
lacks (the store is written first), so files and store agree again.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import operator
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from optui.errors import StoreError
from optui.leg_rows import LegRows, leg_column
from optui.models import LEG_CSV_COLUMNS, LegRecord, Snapshot
from optui.timeutil import IST

log = logging.getLogger(__name__)

OPTIONS_DIR = Path("raw_snapshots") / "options"
JSON_EXTRA_FIELDS: tuple[str, ...] = (
    "tradingsymbol", "instrument_token", "bid", "ask", "delta", "gamma", "theta", "vega",
    "oi_change_snapshot", "buildup", "flags",
)
"""Fields after the 24 legacy ones in each leg's JSON (additions; old readers ignore them)."""


def ist_iso(at: datetime) -> str:
    """An aware instant as ISO 8601 in IST, e.g. 2026-11-24T09:15:30+05:30."""
    if at.tzinfo is None:
        raise ValueError("legacy files need timezone-aware timestamps")
    return at.astimezone(IST).isoformat(timespec="seconds")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return ist_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


_LEGACY_NAMES = (*LEG_CSV_COLUMNS, *(n for n in JSON_EXTRA_FIELDS if n not in LEG_CSV_COLUMNS))
_legacy_fields = operator.attrgetter(*_LEGACY_NAMES)


def legacy_values(leg: LegRecord) -> dict[str, Any]:
    """A leg as the originals' record: the 24 columns in order, then the additions."""
    # _clean on each value, with the plain ones (most) passed through without a call.
    return dict(zip(_LEGACY_NAMES, [
        v if (c := v.__class__) is str or c is int or (c is float and math.isfinite(v))
        else _clean(v) for v in _legacy_fields(leg)], strict=True))


def _legacy_column(column: Any) -> list[Any]:
    """`legacy_values`' value of each of a LegRows column's values: a float array's in a few
    numpy calls (NaN and ±Inf as None), each distinct time or date object's text made once."""
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        out = column.tolist()
        for i in np.flatnonzero(~np.isfinite(column)).tolist():
            out[i] = None
        return out  # type: ignore[no-any-return]
    made: dict[int, Any] = {}
    return [v if (c := v.__class__) is str or c is int or (c is float and math.isfinite(v))
            else made[key] if (key := id(v)) in made else made.setdefault(key, _clean(v))
            for v in (column.tolist() if isinstance(column, np.ndarray) else column)]


def _legacy_records(legs: Sequence[LegRecord]) -> list[dict[str, Any]]:
    """`legacy_values` of each leg; a LegRows' read from its columns, no LegRecord built."""
    if not isinstance(legs, LegRows):
        return [legacy_values(leg) for leg in legs]
    columns = [_legacy_column(legs.column(name)) for name in _LEGACY_NAMES]
    return [dict(zip(_LEGACY_NAMES, row, strict=True)) for row in zip(*columns, strict=True)]


_PATH_FIELDS = ("timestamp", "index", "side", "bucket", "expiry", "strike_offset")
"""The fields a leg's file name and CSV day are made of."""

_FLAT_JSON = json.JSONEncoder(allow_nan=False, separators=(",\n  ", ": "))
"""The C encoder with indent=2's item separator: on a flat object of scalars it writes the same
text as the pure-Python pretty printer, but for the outer braces' line breaks (ensure_ascii keeps
every newline inside a string escaped, so the separator is the only raw one)."""


_SCALARS = {str, int, float, bool, type(None)}


def legacy_json(values: Mapping[str, Any]) -> str:
    """`json.dumps(values, indent=2, allow_nan=False)`, the leg file's text.

    A leg's record is one flat object of scalars, which the C encoder writes with indent=2's
    separators (see `_FLAT_JSON`); json.dumps's pretty printer is pure Python and cost most of a
    full-chain cycle (2,400 files). Anything nested goes to json.dumps itself.
    """
    if not values or not set(map(type, values.values())) <= _SCALARS:
        return json.dumps(values, indent=2, allow_nan=False)
    text = _FLAT_JSON.encode(values)
    return "{\n  " + text[1:-1] + "\n}"


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for None/NaN/inf, ISO for times and dates, str() otherwise."""
    value = _clean(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_row(values: Mapping[str, Any]) -> list[str]:
    """The 24 legacy cells, in order, from a mapping of legacy names (missing names are empty)."""
    return [csv_cell(values.get(name)) for name in LEG_CSV_COLUMNS]


_csv_fields = operator.itemgetter(*LEG_CSV_COLUMNS)
"""The 24 legacy cells' values of a legacy_values record, in order."""


def json_path(out_dir: Path, leg: LegRecord) -> Path:
    """Where a leg's JSON file goes (see the module docstring for the naming rule)."""
    stamp = leg.timestamp.astimezone(IST).strftime("%Y%m%d_%H%M%S")
    suffix = "" if leg.strike_offset == "atm" else f"_{leg.strike_offset}"
    name = (
        f"{leg.index}_{leg.side}_{leg.bucket}_{leg.expiry.isoformat()}_{stamp}{suffix}.json"
    )
    return Path(out_dir) / OPTIONS_DIR / leg.bucket / name


def csv_path(out_dir: Path, at: datetime) -> Path:
    """The daily CSV sidecar for the IST date of `at`."""
    return Path(out_dir) / OPTIONS_DIR / f"options_{at.astimezone(IST):%Y%m%d}.csv"


_KEY_COLUMNS = tuple(LEG_CSV_COLUMNS.index(n) for n in
                     ("timestamp", "index", "bucket", "expiry", "side", "strike_offset"))
"""A CSV row's identity: one leg series at one market moment."""


def _last_timestamp(path: Path) -> str | None:
    """The timestamp cell of a CSV file's last row (reads only the file's tail)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 8192))
        tail = fh.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(tail):
        if line.strip():
            cells = next(csv.reader([line]), [])
            return cells[0] if cells and cells[0] != LEG_CSV_COLUMNS[0] else None
    return None


def _merge_csv(path: Path, rows: list[list[str]]) -> None:
    """Rewrite a CSV with `rows` replacing those of the same leg and moment, in time order."""
    with path.open(newline="", encoding="utf-8") as fh:
        kept = list(csv.reader(fh))[1:]
    merged = {tuple(r[i] for i in _KEY_COLUMNS): r for r in kept if len(r) == len(LEG_CSV_COLUMNS)}
    merged.update((tuple(r[i] for i in _KEY_COLUMNS), r) for r in rows)
    # ISO times with the same +05:30 offset sort as text in time order; the sort is stable.
    ordered = sorted(merged.values(), key=lambda r: r[0])
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LEG_CSV_COLUMNS)
        writer.writerows(ordered)
    os.replace(tmp, path)


def write_atomic(path: Path | str, text: str, durable: bool = False, make_dirs: bool = True) -> None:
    """Write a whole text file via a temporary file and a rename: readers see old or new, never half.

    A killed process leaves the old file or the new one; `durable` adds an fsync before the
    rename, for a power loss too (costs a disk flush per file). Text is UTF-8, newlines as
    given. `make_dirs=False` when the caller made the folder already.
    """
    if make_dirs:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    name = os.fspath(path)
    head, tail = os.path.split(name)
    tmp = os.path.join(head, f".{tail}.tmp")
    data = memoryview(text.encode("utf-8"))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            while data:
                data = data[os.write(fd, data):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _cut_torn_line(path: Path) -> int:
    """Cut a last line left without its newline by a crash; return the file's size after."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) == b"\n":
            return size
        block = min(size, 1 << 16)
        handle.seek(size - block)
        tail = handle.read(block)
        keep = size - block + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        handle.truncate(keep)
        os.fsync(handle.fileno())
    log.warning("legacy CSV %s: cut a torn last line (%d bytes) left by an interrupted write", path, size - keep)
    return keep


def append_csv(path: Path, rows: Iterable[list[str]]) -> int:
    """Append rows to a legacy CSV in one write (fsync'd), header first when the file is new or empty.

    A torn last line left by a crash is cut first. Rows of a moment the file already reaches (a
    collector re-collecting earlier minutes) are merged instead: each leg and moment appears once,
    the newest values win, rows stay in time order, and the day's file is replaced atomically.
    """
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists() or _cut_torn_line(path) == 0
    if not fresh and rows:
        last = _last_timestamp(path)
        if last is not None and last >= min(r[0] for r in rows):
            _merge_csv(path, rows)
            return len(rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if fresh:
        writer.writerow(LEG_CSV_COLUMNS)
    writer.writerows(rows)
    data = memoryview(buf.getvalue().encode("utf-8"))
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while data:  # one write call in practice: a kill lands before or after it
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(rows)


_TAIL = 8 << 20  # bytes read from a CSV's end to find its last cycle (a full chain is ~1 MB)


def _last_cycle(path: Path) -> tuple[datetime | None, int]:
    """The timestamp of the last whole row of a legacy CSV and the byte offset where that
    cycle's rows begin; (None, size) when it has no rows."""
    if not path.exists():
        return None, 0
    size = path.stat().st_size
    base = max(0, size - _TAIL)
    with open(path, "rb") as handle:
        handle.seek(base)
        data = handle.read()
    last: datetime | None = None
    start = size
    end = len(data)
    while end > 0:
        begin = data.rfind(b"\n", 0, end - 1) + 1
        if begin == 0 and base > 0:
            break  # a fragment cut by the tail window
        first = data[begin:end].split(b",", 1)[0].decode("utf-8", "replace")
        try:
            at = datetime.fromisoformat(first)
        except ValueError:
            break  # the header
        if last is not None and at != last:
            break
        last, start = at, base + begin
        end = begin
    return last, start if last is not None else size


def last_csv_time(path: Path) -> datetime | None:
    """The timestamp of the last whole row of a legacy CSV (None when it has no rows)."""
    return _last_cycle(path)[0]


def reconcile_with_store(store: Any, out_dir: str | Path, at: datetime, json_files: bool = True) -> int:
    """Bring the legacy files of `at`'s IST day up to the store after a crash; return rows added.

    The store is written before the files, so a crash between the two leaves stored cycles
    missing from the CSV (and their JSON files). Those legs are read back from the store
    (`Store.query` of `atm_options`) and appended; a torn last CSV line is cut first.
    """
    from optui.storage.records import LEGS

    day_start = at.astimezone(IST).replace(hour=0, minute=0, second=0, microsecond=0)
    path = csv_path(Path(out_dir), at)
    if path.exists():
        _cut_torn_line(path)
    last, cycle_start = _last_cycle(path)
    start = day_start if last is None else last
    if start >= at:
        return 0
    rows = store.query(LEGS, start, at)
    if last is not None:
        # The CSV keeps whole seconds: a stored cycle at 09:20:15.4 is the CSV's 09:20:15.
        in_last = [r for r in rows if r.time.replace(microsecond=0) == last]
        rows = [r for r in rows if r.time.replace(microsecond=0) > last]
        with open(path, "rb") as handle:
            handle.seek(cycle_start)
            had = handle.read().count(b"\n")
        if len(in_last) > had:
            # The crash cut the last cycle short: rewrite it whole from the store.
            with open(path, "r+b") as handle:
                handle.truncate(cycle_start)
            rows = in_last + rows
    if not rows:
        return 0
    values = []
    for row in rows:
        v: dict[str, Any] = {name: None for name in (*LEG_CSV_COLUMNS, *JSON_EXTRA_FIELDS)}
        v.update(row.fields)
        v.update(row.tags)
        v["timestamp"] = row.time
        values.append(v)
    append_csv(path, (csv_row(v) for v in values))
    if json_files:
        for v in values:
            target = _json_path_of(Path(out_dir), v)
            if target is not None and not target.exists():
                write_atomic(target, json.dumps({k: _clean(x) for k, x in v.items()}, indent=2, allow_nan=False) + "\n")
    log.warning("legacy files %s: added %d stored leg row(s) missing after an interrupted run", path, len(rows))
    return len(rows)


def _json_path_of(out_dir: Path, v: dict[str, Any]) -> Path | None:
    try:
        stamp = v["timestamp"].astimezone(IST).strftime("%Y%m%d_%H%M%S")
        offset = v["strike_offset"]
        suffix = "" if offset == "atm" else f"_{offset}"
        name = f"{v['index']}_{v['side']}_{v['bucket']}_{v['expiry']}_{stamp}{suffix}.json"
        return out_dir / OPTIONS_DIR / str(v["bucket"]) / name
    except (KeyError, AttributeError, TypeError):
        return None


_BATCH = 128
"""Leg files handed to a writer thread at a time."""
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Two threads writing leg files: a full chain's 2,400 files a cycle are mostly system
    calls (create, write, rename), which run outside the GIL, beside the encoding."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="optui-leg-files")
        return _POOL


def _write_files(batch: list[tuple[str, str]], failed: threading.Event) -> None:
    """write_atomic each (path, text); after a failure anywhere, write nothing more."""
    for path, text in batch:
        if failed.is_set():
            return
        try:
            write_atomic(path, text, make_dirs=False)
        except OSError:
            failed.set()
            raise


def write_legacy_files(
    snapshot: Snapshot, out_dir: str | Path, json_files: bool = True, csv_rows: bool = True
) -> tuple[int, int]:
    """Write a snapshot's legs in the original layout; return (json files, CSV rows) written.

    `json_files` / `csv_rows` switch each kind off (settings export.write_json / write_csv).
    """
    write_json, write_csv = json_files, csv_rows
    out = Path(out_dir)
    parts = [snap.legs for snap in snapshot.indices.values()]
    # Each leg's (timestamp, index, side, bucket, expiry, strike_offset), read from columns.
    idents = list(chain.from_iterable(
        zip(*(leg_column(legs, name) for name in _PATH_FIELDS), strict=True) for legs in parts))
    values = (list(chain.from_iterable(map(_legacy_records, parts)))
              if write_json or write_csv else [])
    json_count = row_count = 0
    target = out
    try:
        if write_json:
            made: set[str] = set()
            stamps: dict[datetime, str] = {}
            batch: list[tuple[str, str]] = []
            writes: list[Future[None]] = []
            failed = threading.Event()
            base = os.fspath(out / OPTIONS_DIR)
            for (at, index, side, bucket, expiry, offset), record in zip(idents, values,
                                                                         strict=True):
                # json_path(out, leg), built as text: a full chain writes 2,400 files a cycle.
                stamp = stamps.get(at)
                if stamp is None:
                    stamp = stamps[at] = at.astimezone(IST).strftime("%Y%m%d_%H%M%S")
                suffix = "" if offset == "atm" else f"_{offset}"
                folder = os.path.join(base, bucket)
                if folder not in made:
                    os.makedirs(folder, exist_ok=True)
                    made.add(folder)
                name = f"{index}_{side}_{bucket}_{expiry.isoformat()}_{stamp}{suffix}.json"
                batch.append((os.path.join(folder, name), legacy_json(record) + "\n"))
                if len(batch) >= _BATCH:
                    writes.append(_pool().submit(_write_files, batch, failed))
                    batch = []
                json_count += 1
            if batch:
                writes.append(_pool().submit(_write_files, batch, failed))
            for done in writes:  # every file is in place before the CSV, as written in order
                done.result()
        if write_csv and idents:
            by_day: dict[Path, list[list[str]]] = {}
            days: dict[datetime, Path] = {}
            for (at, *_), record in zip(idents, values, strict=True):
                day = days.get(at)
                if day is None:
                    day = days[at] = csv_path(out, at)
                by_day.setdefault(day, []).append(
                    ["" if v is None else "true" if v is True else "false" if v is False
                     else str(v) for v in _csv_fields(record)])
            for target, rows in by_day.items():
                row_count += append_csv(target, rows)
    except OSError as exc:
        if getattr(exc, "filename", None):
            target = exc.filename
        raise StoreError(
            f"cannot write legacy file {target}: {exc.strerror or exc}; free disk space or set "
            "export.out_dir to a writable directory (or turn off export.write_json/write_csv)"
        ) from exc
    return json_count, row_count
