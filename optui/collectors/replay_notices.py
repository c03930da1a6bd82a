"""The health lines a replay says: the live source's own, as recorded, then the file's.

A day recorded from format 5 on holds the streaming source's health lines as NOTICE records
(optui.collectors.record_format) at the exchange moment the live run said them; the replay
says each again, once, in its recorded words and kind, with the first cycle whose quote calls
read past it (a notice recorded before a `--from` start was said before it: not again). From
format 6 on every line of the stream a live cycle said (the event lines again, the feed tier's
changes, ticks of instruments not subscribed, ...) is recorded after that cycle's quote calls,
marked as the cycle's, and the replay says exactly those, each with the replayed cycle that
answered the same calls (ReplaySource.take_notices reads on to them), and no event line by
itself: the same lines at the same cycles as the live run. After them come the lines about the
file itself (`ReadHealth`: a cut file, frames skipped), and for a
day recorded before format 5 the count of malformed tick frames the replay skipped, as the live
run did (from format 5 on the live run's own line says each one).
"""

from __future__ import annotations

from pathlib import Path

from optui.collectors.recording import ReadHealth, Record, is_cycle_notice, notice_from_record
from optui.models import SnapshotWarning, WarningKind


class ReplayNotices:
    """The health lines of one replayed day file `path` whose reading health is `health`.

    `said_live` tells whether the recording holds the live run's notices (format 5 on),
    `cycle_said` whether those are the lines its cycles said (format 6 on: `recorded_by`);
    `begin_us` is the replay's start (µs since the epoch): notices recorded before it are not
    said."""

    def __init__(self, path: Path, health: ReadHealth) -> None:
        self.path = path
        self.health = health
        self.said_live = False
        self.cycle_said = False
        self.begin_us = 0
        self._said: list[SnapshotWarning] = []  # recorded notices the replayed clock passed
        self._reported = 0  # file health lines already said
        self._bad_reported = 0  # malformed tick frames already counted in a line

    def recorded_by(self, version: int) -> None:
        """The recording's format `version` (its session's META record) says which notices it
        holds."""
        self.said_live = version >= 5
        self.cycle_said = version >= 6

    def passed(self, rec: Record) -> None:
        """The replayed clock read past the NOTICE record `rec`: it is said with the next
        `take` (unless recorded before the start, or, from format 6 on, it is an event line
        the cycle's record says). A malformed one is counted in health."""
        if rec.at_us < self.begin_us:
            return
        try:
            body = rec.json()
            if self.cycle_said and not is_cycle_notice(body):
                return
            self._said.append(notice_from_record(body))
        except (ValueError, TypeError, KeyError):
            self.health.bad_frames += 1

    def take(self, bad_tick_frames: int) -> list[SnapshotWarning]:
        """Health lines not yet said, each once: the recorded notices passed, then the file's;
        `bad_tick_frames` is how many malformed tick frames the replay has skipped so far."""
        said, self._said = self._said, []
        lines = self.health.messages(self.path)
        new, self._reported = lines[self._reported :], len(lines)
        bad, self._bad_reported = bad_tick_frames - self._bad_reported, bad_tick_frames
        if bad and not self.said_live:
            new.append(f"replay {self.path.name}: {bad} malformed tick frame(s) skipped, as the "
                       "live run did")
        return [*said, *(SnapshotWarning(WarningKind.REPLAY, "", line) for line in new)]

    def rearm(self) -> None:
        """Say the file's health lines (cut, skipped frames) again with the next `take`: the
        cycles that took them were not shown (a replay primed before its start)."""
        self._reported = 0
        self._bad_reported = 0


__all__ = ["ReplayNotices"]
