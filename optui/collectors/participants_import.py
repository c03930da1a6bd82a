"""Load NSE participant files and FII/DII cash JSON from disk into the store.

For servers the exchange blocks: files or folders in any order; each file is parsed completely
before anything of it is written, and a re-import of a day replaces that day (the store keys a
day by its trade date), so importing twice never duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from optui.analytics.participants import (
    ParticipantFileError,
    parse_cash_json,
    parse_participant_csv,
)
from optui.errors import OptuiError
from optui.storage.base import Store
from optui.storage.participants_store import save_cash, save_participant_file

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import did: `stored` entries are (kind, trade date, file); kind is oi, vol or
    cash. `rejected` holds one message per refused file (file, line, reason)."""

    stored: list[tuple[str, date, str]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def candidate_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Files to import from files and folders (folders: their *.csv and *.json, recursively),
    sorted by name; plus one message per path that does not exist."""
    found: list[Path] = []
    missing: list[str] = []
    for path in paths:
        if path.is_dir():
            found.extend(p for p in path.rglob("*") if p.is_file()
                         and p.suffix.lower() in (".csv", ".json"))
        elif path.is_file():
            found.append(path)
        else:
            missing.append(f"{path}: no such file or folder")
    return sorted(set(found), key=lambda p: (p.name, str(p))), missing


def import_file(store: Store, path: Path, report: ImportReport) -> None:
    """Parse one file (CSV: participant OI/volume; JSON: FII/DII cash) and store it whole."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        report.rejected.append(f"{path}: cannot read ({exc.strerror})")
        return
    try:
        if path.suffix.lower() == ".json":
            flows = parse_cash_json(text, str(path))
            save_cash(store, flows)
            report.stored.append(("cash", flows[0].trade_date, str(path)))
            return
        parsed = parse_participant_csv(text, str(path))
        save_participant_file(store, parsed)
    except ParticipantFileError as exc:
        report.rejected.append(str(exc))
        return
    except OptuiError as exc:  # the store refused: nothing of this file is counted as stored
        report.rejected.append(f"{path}: not stored: {exc}")
        return
    report.warnings.extend(parsed.warnings)
    report.stored.append((parsed.kind, parsed.trade_date, str(path)))


def import_paths(store: Store, paths: Iterable[Path]) -> ImportReport:
    """Import every participant CSV and cash JSON under `paths` (see candidate_files)."""
    report = ImportReport()
    files, missing = candidate_files(paths)
    report.rejected.extend(missing)
    for path in files:
        import_file(store, path, report)
    for line in report.rejected:
        log.warning("participants import: %s", line)
    return report
