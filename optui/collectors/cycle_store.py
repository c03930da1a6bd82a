"""The store half of a collection cycle: a shown snapshot's day state, store rows, leg files and
cache, written after `CollectionEngine.collect_shown` returned it.

Kept apart from the engine's quote-and-analyse half so a screen can show a snapshot before it is
stored (`CollectionEngine.store_pending` delegates here). A failing sink becomes a
`SnapshotWarning`, never a lost snapshot.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING

from optui.collectors.cycle_sinks import publish_summaries, write_leg_files
from optui.collectors.cycle_stats import CycleStats
from optui.errors import StoreError
from optui.models import Snapshot, SnapshotWarning, WarningKind

if TYPE_CHECKING:
    from optui.collectors.engine import CollectionEngine


def store_pending(engine: CollectionEngine, late: bool = True) -> None:
    """Store the snapshot `engine.collect_shown` returned, as `CollectionEngine.store_pending`
    describes: the day's state file (when its legs are due), then store rows, leg files and
    cache; the sinks' warnings ride on the next snapshot with `late`, else join this one's
    before its alerts' warnings. Nothing pending: nothing done."""
    pending, engine._pending = engine._pending, None
    if pending is None:
        return
    snap, stats = pending.snapshot, pending.stats
    sinks: list[SnapshotWarning] = []
    if engine._state is not None:
        for update in pending.prev:
            update.apply(engine._state)
        if pending.legs:
            engine._state.save()
    persist(engine, snap, stats, pending.legs, sinks)
    if late:
        engine._late_warnings.extend(sinks)
    else:
        snap.warnings[pending.sinks_at:pending.sinks_at] = sinks


def persist(engine: CollectionEngine, snap: Snapshot, stats: CycleStats, legs: bool,
            warnings: list[SnapshotWarning]) -> None:
    """Store, files and cache of `engine`; a failing sink becomes one of `warnings`, never a lost
    snapshot. Without `legs` the leg rows and leg files are not written (see `legs_due`)."""
    if engine.store is not None:
        from optui.storage.records import FlowBarAccumulator, write_snapshot

        spooled_before = engine.store.spooled_total
        stored_before = engine.store.stored_total
        # One transaction for the cycle where the store has them (SQLite): one commit.
        together = getattr(engine.store, "transaction", None)
        try:
            if engine._flow_bars is None:
                engine._flow_bars = FlowBarAccumulator(engine.store)
            with together() if together is not None else nullcontext():
                # The legs' rows from their columns (optui.leg_rows), no record per leg.
                stats.rows_written = write_snapshot(engine.store, snap, engine._flow_bars,
                                                    store_legs=legs)
                strike_points = engine._strike_bars.points(snap)
                if strike_points:
                    stats.rows_written += engine.store.write(strike_points)
        except StoreError as exc:
            if together is not None:
                stats.rows_written = 0  # rolled back together
            warnings.append(SnapshotWarning(WarningKind.STORE, "store", str(exc)))
        stats.rows_spooled = engine.store.spooled_total - spooled_before
        stored_after = engine.store.stored_total
        stats.rows_stored = (stats.rows_written - stats.rows_spooled
                             if stored_before is None or stored_after is None
                             else stored_after - stored_before)
        stats.rows_inflight = engine.store.inflight_points
        warnings.extend(SnapshotWarning(WarningKind.STORE, "store", notice)
                        for notice in engine.store.take_notices())
    if legs and engine.out_dir is not None and (engine.settings.export.write_json
                                                or engine.settings.export.write_csv):
        engine._files_reconciled = write_leg_files(engine.settings, engine.store, engine.out_dir,
                                                   snap, stats, warnings, engine._files_reconciled)
    if engine.cache is not None:
        publish_summaries(engine.cache, snap, warnings)


__all__ = ["persist", "store_pending"]
