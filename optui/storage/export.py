"""Stored history out to files: `optui export csv|json --from --to`.

Why: traders move data into spreadsheets and their own scripts. `atm_options` as CSV uses the
original collectors' 24 columns so old tools read it; other measurements as CSV get a timestamp
column, their tags and their fields; JSON is one object per line for any measurement. Points
hold market data only, so nothing secret can leave this way.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from optui.errors import ConfigError, StoreError
from optui.indices import INDEX_KEYS
from optui.models import LEG_CSV_COLUMNS
from optui.storage.base import Row, Store
from optui.storage.legacy_files import csv_cell, csv_row, ist_iso
from optui.storage.records import FLOW, LEG_FIELDS, LEGS, OVERVIEW

EXPORT_KINDS: tuple[str, ...] = ("csv", "json")
EXPORT_MEASUREMENTS: tuple[str, ...] = (LEGS, OVERVIEW, FLOW)
"""The measurements optui writes, so the ones an export can read."""
_CHUNK = timedelta(days=1)  # read a day at a time so a year's export stays small in memory


def _chunks(
    store: Store, measurement: str, start: datetime, end: datetime, tags: dict[str, str] | None
) -> Iterator[Row]:
    at = start
    while at < end:
        stop = min(at + _CHUNK, end)
        yield from store.query(measurement, at, stop, tags=tags)
        at = stop


def _legacy_values(row: Row) -> dict[str, object]:
    values: dict[str, object] = dict(row.fields)
    values.update(row.tags)
    values["timestamp"] = row.time
    return values


def check_export_request(measurement: str, index: str | None, out: Path, overwrite: bool = False) -> str | None:
    """Validate what an export asks for before any work; returns the index key (upper case) or None.

    Raises ConfigError listing the known measurements or indices for an unknown one, when `out`
    is a directory, and when `out` exists and `overwrite` is False (an export never replaces a
    file unasked).
    """
    if measurement not in EXPORT_MEASUREMENTS:
        raise ConfigError(
            f"measurement {measurement!r} is not known: choose one of {', '.join(EXPORT_MEASUREMENTS)}"
        )
    key = None
    if index is not None:
        key = index.strip().upper()
        if key not in INDEX_KEYS:
            raise ConfigError(f"index {index!r} is not known: choose one of {', '.join(INDEX_KEYS)}")
    if Path(out).is_dir():
        raise ConfigError(f"{out} is a directory: give --out a file name, e.g. {Path(out) / 'export.csv'}")
    if not overwrite and Path(out).exists():
        raise ConfigError(f"{out} already exists: choose another --out, or add --force to replace it")
    return key


def export_rows(
    store: Store,
    kind: str,
    start: datetime,
    end: datetime,
    out: Path,
    measurement: str = LEGS,
    index: str | None = None,
    overwrite: bool = False,
) -> int:
    """Write rows with start <= time < end to `out`; return how many rows were written.

    `measurement` is one of EXPORT_MEASUREMENTS and `index` (any case) one of the index keys,
    else ConfigError lists the known ones. An existing `out` is replaced only with `overwrite`
    (else ConfigError). The file is written beside `out` and moved into place, so a failed
    export never leaves a half file under the requested name.
    """
    kind = kind.strip().lower()
    if kind not in EXPORT_KINDS:
        raise ConfigError(f"export format {kind!r} is not supported: use csv or json")
    out = Path(out)
    index = check_export_request(measurement, index, out, overwrite)
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("export --from/--to need a timezone (e.g. 2026-11-24T09:15+05:30)")
    if end <= start:
        raise ConfigError(f"export range is empty: --to {ist_iso(end)} is not after --from {ist_iso(start)}")
    tags = {"index": index} if index else None
    tmp = out.with_name(f".{out.name}.part")
    count = 0
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            rows = _chunks(store, measurement, start, end, tags)
            if kind == "json":
                for row in rows:
                    fh.write(json.dumps({
                        "measurement": measurement,
                        "timestamp": ist_iso(row.time),
                        "tags": row.tags,
                        "fields": _json_fields(row, measurement),
                    }, allow_nan=False, separators=(",", ":")) + "\n")
                    count += 1
            elif measurement == LEGS:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(LEG_CSV_COLUMNS)
                for row in rows:
                    writer.writerow(csv_row(_legacy_values(row)))
                    count += 1
            else:
                count = _generic_csv(fh, store, measurement, start, end, tags)
        _move_into_place(tmp, out, overwrite)
    except OSError as exc:
        _discard(tmp)
        raise StoreError(
            f"cannot write export file {out}: {exc.strerror or exc}; choose a writable path"
        ) from exc
    except BaseException:
        _discard(tmp)
        raise
    return count


def _move_into_place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename `tmp` to `out`; without `overwrite`, refuse (ConfigError) if `out` exists by now."""
    if overwrite:
        os.replace(tmp, out)
        return
    appeared = ConfigError(f"{out} appeared while exporting: choose another --out, or add --force to replace it")
    try:
        os.link(tmp, out)  # fails if out exists: no window in which another file is clobbered
    except FileExistsError:
        raise appeared from None
    except OSError:
        if out.exists():  # a filesystem without hard links: check, then rename
            raise appeared from None
        os.replace(tmp, out)
        return
    tmp.unlink()


def _json_fields(row: Row, measurement: str) -> dict[str, object]:
    """A row's fields for JSON: a leg lists every leg field, null where the value is missing."""
    fields = {k: _finite(v) for k, v in row.fields.items()}
    if measurement == LEGS:
        return {**dict.fromkeys(LEG_FIELDS), **fields}
    return fields


def _finite(value: object) -> object:
    """A field value for JSON: NaN and +-inf (kept by older SQLite files) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _discard(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # nothing was created there


def _generic_csv(
    fh: object,
    store: Store,
    measurement: str,
    start: datetime,
    end: datetime,
    tags: dict[str, str] | None,
) -> int:
    """CSV with timestamp, tag and field columns (two passes: the first finds the columns)."""
    tag_names: dict[str, None] = {}
    field_names: dict[str, None] = {}
    for row in _chunks(store, measurement, start, end, tags):
        tag_names.update(dict.fromkeys(row.tags))
        field_names.update(dict.fromkeys(row.fields))
    tag_cols = sorted(tag_names)
    field_cols = sorted(field_names)
    writer = csv.writer(fh, lineterminator="\n")  # type: ignore[arg-type]
    writer.writerow(["timestamp", *tag_cols, *field_cols])
    count = 0
    for row in _chunks(store, measurement, start, end, tags):
        writer.writerow([
            ist_iso(row.time),
            *(row.tags.get(t, "") for t in tag_cols),
            *(csv_cell(row.fields.get(f)) for f in field_cols),
        ])
        count += 1
    return count
