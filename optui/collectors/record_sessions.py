"""The collector sessions of one recording day file, in the order they were recorded.

Every collector process (and every engine a supervisor builds anew) that records a day appends
its own frames to the day file, beginning with a frame whose first record is `META`
(optui.collectors.record_writer.Recorder). A day collected by several sessions is therefore a
sequence of sessions, each a run of frames in time order; the sessions themselves may come in
any time order (a simulator restarted at an earlier moment records an earlier stretch after a
later one), overlap, or leave gaps between them. A replay plays them one after another in
recorded order, each as its own collector run (optui.collectors.replay), so the store it fills
is the store the live sessions left: the last session to store a moment is the one whose
values stay.

Finding them reads only the head of each frame (the first block) and, per session, the frames
up to its first quote call and back from its end to its last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import zstandard

from optui.collectors.record_format import HEADER, META, QUOTE_KINDS, _from_us
from optui.collectors.record_index import frame_offsets
from optui.collectors.record_reader import ReadHealth, read_day
from optui.timeutil import IST

HEAD_CHUNK = 1 << 16


@dataclass(frozen=True)
class RecordedSession:
    """One collector session of a day file: its frames' bytes [`start`, `end`) (`end` None: to
    the end of the file), and when it first and last asked for quotes (aware UTC; None when it
    recorded no quote call)."""

    number: int  # 1-based, in recorded order
    start: int
    end: int | None
    first_call: datetime | None
    last_call: datetime | None

    @property
    def span(self) -> tuple[int, int | None]:
        """The byte span to read (`read_day(..., span=...)`)."""
        return self.start, self.end

    def holds(self, at: datetime) -> bool:
        """Whether `at` falls between the session's first and last quote call."""
        return (self.first_call is not None and self.last_call is not None
                and self.first_call <= at <= self.last_call)

    def describe(self) -> str:
        """'session 2 (11:00:00 to 12:00:10 IST)'."""
        if self.first_call is None or self.last_call is None:
            return f"session {self.number} (no quote call)"
        return (f"session {self.number} ({self.first_call.astimezone(IST):%H:%M:%S} to "
                f"{self.last_call.astimezone(IST):%H:%M:%S} IST)")


def _head_kind(fh, offset: int, end: int | None) -> int | None:  # noqa: ANN001 - a binary file
    """The kind of the first record of the frame at `offset`, or None when it does not decode."""
    fh.seek(offset)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    out = b""
    left = None if end is None else end - offset
    try:
        while len(out) < HEADER.size and not dobj.eof:
            chunk = fh.read(HEAD_CHUNK if left is None else min(HEAD_CHUNK, left))
            if not chunk:
                return None
            if left is not None:
                left -= len(chunk)
            out += dobj.decompress(chunk)
    except zstandard.ZstdError:
        return None
    return out[0] if len(out) >= HEADER.size else None


def _session_starts(path: Path) -> list[int]:
    """Byte offsets of the frames that begin a session (the first frame always does)."""
    frames = frame_offsets(path)
    if not frames:
        return []
    starts = [frames[0][0]]
    with open(path, "rb") as fh:
        for i in range(1, len(frames)):
            end = frames[i + 1][0] if i + 1 < len(frames) else None
            if _head_kind(fh, frames[i][0], end) == META:
                starts.append(frames[i][0])
    return starts


def _first_call(path: Path, span: tuple[int, int | None]) -> datetime | None:
    for rec in read_day(path, None, ReadHealth(), unpack=False, span=span):
        if rec.kind in QUOTE_KINDS:
            return rec.at
    return None


def _last_call(path: Path, span: tuple[int, int | None]) -> datetime | None:
    """The session's last quote call: its frames read from the last one back."""
    offsets = [o for o, _ in frame_offsets(path)
               if o >= span[0] and (span[1] is None or o < span[1])]
    for i in range(len(offsets) - 1, -1, -1):
        last = None
        for rec in read_day(path, None, ReadHealth(), unpack=False, span=(offsets[i], span[1])):
            if rec.kind in QUOTE_KINDS:
                last = rec.at_us
        if last is not None:
            return _from_us(last)
    return None


def day_sessions(path: Path) -> list[RecordedSession]:
    """The sessions of a day file in recorded order, those that asked for quotes (a session
    that recorded none collected nothing). Raises OSError when the file cannot be read."""
    starts = _session_starts(path)
    out: list[RecordedSession] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        first = _first_call(path, (start, end))
        if first is None:
            continue
        out.append(RecordedSession(len(out) + 1, start, end, first, _last_call(path, (start, end))))
    return out


__all__ = ["RecordedSession", "day_sessions"]
