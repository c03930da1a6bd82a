"""What one collection cycle did, for the status line and health: counters and the clock offset."""

from __future__ import annotations

from dataclasses import dataclass, field

from optui.models import SnapshotWarning, WarningKind


@dataclass
class CycleStats:
    """Counters of the last cycle, for the status line."""

    quote_calls: int = 0
    instruments: int = 0
    rows_written: int = 0  # accepted by the store: written, or kept in its spool
    rows_spooled: int = 0  # of rows_written, kept in the spool while the database is unreachable
    rows_stored: int = 0  # acknowledged by the database this cycle (replayed spool points too)
    rows_inflight: int = 0  # handed to a write still running past its budget, outcome unknown
    json_files: int = 0
    csv_rows: int = 0
    clock_offset_s: float | None = None  # local clock minus the exchange's, when measured
    feed: str = ""  # a streaming source's tier: stream, stream+rest or rest-fallback
    streamed: int = 0  # quotes of the cycle answered from the ticker
    legs_stored: bool = True  # stored its leg rows: every polled cycle; at the tick cadence
    # the first snapshot of each interval_s slot (its slow flag is judged against interval_s)
    warnings: list[SnapshotWarning] = field(default_factory=list)


CLOCK_OFFSET_WARN_S = 5.0
"""A local clock further than this from the exchange's is reported in health."""


def describe_offset(offset_s: float) -> str:
    """'local clock 2 min ahead of the exchange', coarsely rounded so the text stays stable."""
    size = abs(offset_s)
    if size < 120:
        amount = f"{5 * round(size / 5):.0f} s"
    elif size < 7200:
        amount = f"{size / 60:.0f} min"
    elif size < 172_800:
        amount = f"{size / 3600:.0f} h"
    else:
        amount = f"{size / 86400:.0f} days"
    side = "ahead of" if offset_s > 0 else "behind"
    return f"local clock {amount} {side} the exchange's: times shown and stored follow the exchange"


CLOCK_BACK_NOTE = "local clock back within"
"""How the note that a clock-offset episode ended begins (a return to health, not a problem)."""


class ClockOffsetEpisodes:
    """Says a local clock off the exchange's once per episode, and when it ends.

    An episode starts when the offset exceeds CLOCK_OFFSET_WARN_S and ends when it falls below
    `clear_share` of it (the gap keeps a reading hovering at the threshold from starting and
    ending an episode every cycle); the offset itself goes on every status line."""

    def __init__(self, clear_share: float = 0.8) -> None:
        self.clear_share = clear_share
        self.active = False

    def note(self, offset_s: float | None) -> SnapshotWarning | None:
        """The cycle's CLOCK_OFFSET warning: the offset described when an episode starts, the
        CLOCK_BACK_NOTE when it ends, else None (`offset_s` None: not measured, no change)."""
        if offset_s is None:
            return None
        size = abs(offset_s)
        if not self.active and size > CLOCK_OFFSET_WARN_S:
            self.active = True
            return SnapshotWarning(WarningKind.CLOCK_OFFSET, "", describe_offset(offset_s))
        if self.active and size < self.clear_share * CLOCK_OFFSET_WARN_S:
            self.active = False
            return SnapshotWarning(WarningKind.CLOCK_OFFSET, "",
                                   f"{CLOCK_BACK_NOTE} {CLOCK_OFFSET_WARN_S:g} s of the exchange's")
        return None
