"""The frame index beside a recording day file: where each Zstandard frame starts and when.

``YYYY-MM-DD.optrec.idx`` holds one ``offset time_us`` line per frame of the day file (byte offset
of the frame, time of its first record in microseconds since the Unix epoch UTC), appended as the
writer starts each frame; format 4 adds `` b`` when the session's tick book is whole at the frame
start (a tick-book checkpoint opens the frame, or the session had no tick before it): a replay of
a streamed day may start reading there. The index is a help, never the truth: a missing, short or
inconsistent index is replaced by a scan of the file for frame headers (offsets only, no seek
points).
"""

from __future__ import annotations

from pathlib import Path

from optui.collectors.record_format import ZSTD_MAGIC, index_path

BOOK_MARK = "b"


def read_index(path: Path) -> list[tuple[int, int, bool]]:
    """(byte offset, first record time µs, tick book whole at its start) of each frame, from the
    index when it is whole, else by walking the frame headers (time -1, no book points). Raises
    OSError when the day file cannot be read."""
    size = path.stat().st_size
    try:
        lines = index_path(path).read_text(encoding="ascii").split("\n")
        rows = []
        for line in lines:
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != BOOK_MARK):
                raise ValueError(f"index line {line!r}")
            rows.append((int(parts[0]), int(parts[1]), len(parts) == 3))
        rows = [r for r in rows if r[0] < size]  # a frame begun as the process was killed
        if rows and rows[0][0] == 0 and \
                all(a[0] < b[0] for a, b in zip(rows, rows[1:], strict=False)):
            return rows
    except (OSError, ValueError):
        pass
    return [(o, -1, False) for o in scan_frames(path)]


def frame_offsets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, first record time µs) of each frame (see `read_index`). Raises OSError when
    the day file cannot be read."""
    return [(o, t) for o, t, _ in read_index(path)]


def book_point(path: Path, at_us: int,
               span: tuple[int, int | None] | None = None) -> int | None:
    """The first record time (µs) of the last frame starting at or before `at_us` whose tick
    book is whole at its start (a streamed replay may read from there without the frames before
    it), among the frames starting in the byte `span` (one session, as `read_day` takes it;
    None: all), or None when the index marks none (a day recorded before format 4). Raises
    OSError."""
    lo, hi = (0, None) if span is None else span
    best = None
    for offset, t, book in read_index(path):
        if offset < lo or (hi is not None and offset >= hi):
            continue
        if book and 0 <= t <= at_us:
            best = t if best is None else max(best, t)
    return best


def scan_frames(path: Path) -> list[int]:
    """Frame start offsets found by the Zstandard magic number (the index is missing or bad)."""
    data = path.read_bytes()
    out, at = [], data.find(ZSTD_MAGIC)
    while at >= 0:
        out.append(at)
        at = data.find(ZSTD_MAGIC, at + 1)
    return out


def write_index(path: Path, frames: list[tuple[int, int]] | list[tuple[int, int, bool]]) -> None:
    """Replace the index of day file `path` with these (offset, time µs[, book point]) frames."""
    index_path(path).write_text(
        "".join(f"{f[0]} {f[1]}{' ' + BOOK_MARK if len(f) > 2 and f[2] else ''}\n"
                for f in frames), encoding="ascii")
