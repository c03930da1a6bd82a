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
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from optui.errors import StoreError
from optui.models import LEG_CSV_COLUMNS, LegRecord, Snapshot
from optui.timeutil import IST

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


def legacy_values(leg: LegRecord) -> dict[str, Any]:
    """A leg as the originals' record: the 24 columns in order, then the additions."""
    out = {name: _clean(getattr(leg, name)) for name in LEG_CSV_COLUMNS}
    out.update({name: _clean(getattr(leg, name)) for name in JSON_EXTRA_FIELDS})
    return out


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


def append_csv(path: Path, rows: Iterable[list[str]]) -> int:
    """Append rows to a legacy CSV, writing the header first when the file is new or empty.

    Rows of a moment the file already reaches (a collector re-collecting earlier minutes) are
    merged instead: each leg and moment appears once, the newest values win, rows stay in time
    order. That rewrites the day's file, which only happens after such a restart.
    """
    rows = list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists() or path.stat().st_size == 0
    if not fresh and rows:
        last = _last_timestamp(path)
        if last is not None and last >= min(r[0] for r in rows):
            _merge_csv(path, rows)
            return len(rows)
    with path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if fresh:
            writer.writerow(LEG_CSV_COLUMNS)
        writer.writerows(rows)
    return len(rows)


def write_legacy_files(
    snapshot: Snapshot, out_dir: str | Path, json_files: bool = True, csv_rows: bool = True
) -> tuple[int, int]:
    """Write a snapshot's legs in the original layout; return (json files, CSV rows) written.

    `json_files` / `csv_rows` switch each kind off (settings export.write_json / write_csv).
    """
    write_json, write_csv = json_files, csv_rows
    out = Path(out_dir)
    legs = [leg for snap in snapshot.indices.values() for leg in snap.legs]
    json_count = row_count = 0
    target = out
    try:
        if write_json:
            for leg in legs:
                target = json_path(out, leg)
                target.parent.mkdir(parents=True, exist_ok=True)
                text = json.dumps(legacy_values(leg), indent=2, allow_nan=False)
                target.write_text(text + "\n", encoding="utf-8", newline="\n")
                json_count += 1
        if write_csv and legs:
            by_day: dict[Path, list[list[str]]] = {}
            for leg in legs:
                by_day.setdefault(csv_path(out, leg.timestamp), []).append(
                    csv_row(legacy_values(leg))
                )
            for target, rows in by_day.items():
                row_count += append_csv(target, rows)
    except OSError as exc:
        raise StoreError(
            f"cannot write legacy file {target}: {exc.strerror or exc}; free disk space or set "
            "export.out_dir to a writable directory (or turn off export.write_json/write_csv)"
        ) from exc
    return json_count, row_count
