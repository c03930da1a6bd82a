"""The frame index beside a recording day file: where each Zstandard frame starts and when.

``YYYY-MM-DD.optrec.idx`` holds one ``offset time_us`` line per frame of the day file (byte offset
of the frame, time of its first record in microseconds since the Unix epoch UTC), appended as the
writer starts each frame. The index is a help, never the truth: a missing, short or inconsistent
index is replaced by a scan of the file for frame headers (offsets only).
"""

from __future__ import annotations

from pathlib import Path

from optui.collectors.record_format import ZSTD_MAGIC, index_path


def frame_offsets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, first record time µs) of each frame, from the index when it is whole,
    else by walking the frame headers (offsets only, time -1). Raises OSError when the day
    file cannot be read."""
    size = path.stat().st_size
    try:
        lines = index_path(path).read_text(encoding="ascii").split("\n")
        rows = [(int(a), int(b)) for a, b in (line.split() for line in lines if line.strip())]
        rows = [(o, t) for o, t in rows if o < size]  # a frame begun as the process was killed
        if rows and rows[0][0] == 0 and all(o < size for o, _ in rows) and \
                all(a[0] < b[0] for a, b in zip(rows, rows[1:], strict=False)):
            return rows
    except (OSError, ValueError):
        pass
    return [(o, -1) for o in scan_frames(path)]


def scan_frames(path: Path) -> list[int]:
    """Frame start offsets found by the Zstandard magic number (the index is missing or bad)."""
    data = path.read_bytes()
    out, at = [], data.find(ZSTD_MAGIC)
    while at >= 0:
        out.append(at)
        at = data.find(ZSTD_MAGIC, at + 1)
    return out


def write_index(path: Path, frames: list[tuple[int, int]]) -> None:
    """Replace the index of day file `path` with these (offset, time µs) frames."""
    index_path(path).write_text("".join(f"{o} {t}\n" for o, t in frames), encoding="ascii")
