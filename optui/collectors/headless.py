"""`optui collect`: the collection loop for servers, one status line per cycle, clean shutdown."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from optui.collectors.engine import CollectionEngine
from optui.errors import ConfigError, OptuiError, RateLimitedError, SourceError, TokenExpiredError
from optui.models import Snapshot
from optui.timeutil import fmt_ist

log = logging.getLogger(__name__)


def status_line(snap: Snapshot, engine: CollectionEngine) -> str:
    """One line per cycle: IST time, source, indices, legs, flags, duration, rows stored in the
    database and rows kept in the spool while it is unreachable."""
    stats = engine.last
    parts = [
        fmt_ist(snap.timestamp),
        f"source={engine.source_label.lower()}",
        f"indices={','.join(snap.indices) or '-'}",
        f"legs={snap.leg_count}",
        f"flagged={snap.flagged_count}",
        f"duration={snap.duration_s:.2f}s",
        f"stored={stats.rows_written - stats.rows_spooled}",
        f"spooled={stats.rows_spooled}",
    ]
    if stats.json_files or stats.csv_rows:
        parts.append(f"files={stats.json_files}json/{stats.csv_rows}csv")
    if snap.warnings:
        parts.append(f"warnings={len(snap.warnings)}")
    return " ".join(parts)


class Collector:
    """Runs cycles every `interval` seconds until stopped; never overlaps cycles."""

    def __init__(self, engine: CollectionEngine, interval: float, out: TextIO = sys.stdout,
                 printer: Callable[[str, str], None] | None = None) -> None:
        self.engine = engine
        self.interval = interval
        self.out = out
        self.stop_event = threading.Event()
        self.cycles = 0  # cycles collected (for --summary-json)
        self.points = 0  # points the store accepted (stored or spooled)
        self._print = printer or self._plain

    def _plain(self, line: str, style: str = "") -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def install_signal_handlers(self) -> None:
        """SIGINT and SIGTERM finish the current cycle (its write included), then stop."""
        def handler(signum: int, _frame: object) -> None:
            self._print(f"received {signal.Signals(signum).name}: stopping after the current cycle", "yellow")
            self.stop_event.set()

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)

    def run(self, once: bool = False) -> int:
        """Exit code: 0 on a clean stop, 2 on a configuration or login problem; with `once`, 1
        when the cycle collected nothing or could not persist it (cron must see that)."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                snap = self.engine.collect_once()
                failures = 0
                self.cycles += 1
                self.points += self.engine.last.rows_written
                self._print(status_line(snap, self.engine), "green" if not snap.warnings else "yellow")
                for warning in snap.warnings[:5]:
                    self._print(f"  warning: {warning}", "yellow")
                for warning in snap.warnings:
                    log.warning("cycle %s: %s", fmt_ist(snap.timestamp), warning)
                lost = [w for w in snap.warnings if w.startswith(("store:", "files:"))]
                if once and (lost or not snap.indices):
                    return 1
            except (TokenExpiredError, ConfigError) as exc:
                log.error("collect stopped: %s", exc)
                self._print(f"error: {exc}", "red")
                return 2
            except RateLimitedError as exc:
                log.warning("%s", exc)
                self._print(f"warning: {exc}", "yellow")
                if once:
                    return 1
            except SourceError as exc:
                failures += 1
                log.error("source error (attempt %d): %s", failures, exc)
                self._print(f"error: {exc} (attempt {failures}; retrying next cycle)", "red")
                if once:
                    return 1
            except OptuiError as exc:
                log.error("%s", exc)
                self._print(f"error: {exc}", "red")
                if once:
                    return 1
            if once:
                break
            # Back off on repeated failures, up to 5 minutes, so an outage does not hammer the API.
            wait = self.interval if failures == 0 else min(self.interval * (2 ** min(failures, 4)), 300.0)
            self.stop_event.wait(wait)
        return 0


def exit_report(collector: Collector, summary_json: Path | None = None) -> int:
    """After the engine is closed: say how many points are still spooled and where (also to the
    log), and write `{"cycles": N, "points": M, "pending": P}` to `summary_json` when given.

    `points` counts points the store accepted (stored or spooled); `pending` those still in the
    spool. Returns `pending`. Raises OSError when the summary cannot be written.
    """
    store = collector.engine.store
    pending, where = store.pending() if store is not None else (0, "")
    if pending:
        text = (f"{pending} point(s) still spooled in {where}: they are written when the store answers "
                "again (the next optui collect replays them first)")
        log.warning("%s", text)
        collector._print(f"warning: {text}", "yellow")
    if summary_json is not None:
        from optui.storage.legacy_files import write_atomic

        summary = {"cycles": collector.cycles, "points": collector.points, "pending": pending}
        write_atomic(Path(summary_json), json.dumps(summary) + "\n")
    return pending
