"""The cycle's sinks besides the store: the JSON/CSV leg files and the cache's per-index summaries.

A failing sink becomes a `SnapshotWarning` in the list it is given, never a lost snapshot.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from optui.collectors.cycle_stats import CycleStats
from optui.config import Settings
from optui.errors import StoreError
from optui.models import Snapshot, SnapshotWarning, WarningKind

log = logging.getLogger(__name__)


def write_leg_files(settings: Settings, store: Any, out_dir: Path, snap: Snapshot,
                    stats: CycleStats, warnings: list[SnapshotWarning], reconciled: bool) -> bool:
    """Write the snapshot's leg files under `out_dir` (JSON per leg, CSV rows, as
    `settings.export` asks), counting them in `stats`. Until `reconciled`, the files are first
    caught up with `store` (once per run, after a crash). Returns whether they now are."""
    from optui.storage.legacy_files import reconcile_with_store, write_legacy_files

    export = settings.export
    try:
        if store is not None and export.write_csv and not reconciled:
            try:  # once per run: catch up with the store after a crash
                reconcile_with_store(store, out_dir, snap.timestamp, export.write_json)
                reconciled = True
            except StoreError as exc:  # the store is down: try again next cycle
                log.warning("legacy files not yet checked against the store: %s", exc)
        stats.json_files, stats.csv_rows = write_legacy_files(
            snap, out_dir, json_files=export.write_json, csv_rows=export.write_csv,
        )
    except (OSError, StoreError) as exc:
        warnings.append(SnapshotWarning(WarningKind.FILES, "files", f"cannot write under {out_dir}: {exc}"))
    return reconciled


def publish_summaries(cache: Any, snap: Snapshot, warnings: list[SnapshotWarning]) -> None:
    """Set each index's overview summary (legacy fields, timestamp, source, net flow in ₹ crore,
    leg count) in `cache` (optui.storage cache); the whole cycle is published by the feed."""
    summaries = {
        key: {
            **idx.overview.legacy_fields(),
            "timestamp": snap.timestamp.isoformat(),
            "source": snap.source,
            "net_flow_cr": idx.overview.flow.net_cr,
            "legs": len(idx.legs),
        }
        for key, idx in snap.indices.items()
    }
    try:
        cache.set_snapshots(summaries)
    except StoreError as exc:
        warnings.append(SnapshotWarning(WarningKind.CACHE, "cache", str(exc)))
