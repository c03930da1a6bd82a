"""Reading recording day files (`optui.collectors.record_format`): records in order, from the
frame holding a start time on, with what reading met (a cut tail, corrupt frames, unknown kinds)."""

from __future__ import annotations

import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import zstandard

from optui.collectors.record_format import (
    HEADER,
    KIND_NAMES,
    LEFT_PACKED,
    LEVEL,
    MAX_PAYLOAD,
    UNPACKERS,
    FrameCodecs,
    Record,
    _us,
)
from optui.collectors.record_index import frame_offsets, read_index, write_index
from optui.timeutil import IST

log = logging.getLogger(__name__)


@dataclass
class ReadHealth:
    """What reading a day file met: records read, frames skipped, a cut tail."""

    records: int = 0
    unknown: int = 0  # records of a kind this version does not know, skipped
    bad_frames: int = 0  # frames that failed to decompress or parse, skipped
    cut: bool = False  # the file ends inside a frame (a killed recorder): read up to the cut
    cut_at: datetime | None = None  # time of the last record before the cut
    notes: list[str] = field(default_factory=list)

    def messages(self, path: Path) -> list[str]:
        """Health lines naming the file and what was done."""
        out = list(self.notes)
        if self.cut:
            when = f" (last record {self.cut_at.astimezone(IST):%H:%M:%S} IST)" if self.cut_at else ""
            out.append(f"replay {path.name}: file cut mid-write (a recorder was stopped hard): "
                       f"read up to the cut{when}")
        if self.bad_frames:
            out.append(f"replay {path.name}: {self.bad_frames} corrupt frame(s) skipped")
        if self.unknown:
            out.append(f"replay {path.name}: {self.unknown} record(s) of an unknown kind skipped")
        return out


def _decode_frame(fh: BinaryIO, offset: int, end: int | None) -> tuple[bytes, bool, bool]:
    """Decompress the frame at `offset`: (data, complete, corrupt). An incomplete frame at the
    end of the file gives what decodes up to the cut."""
    fh.seek(offset)
    raw = fh.read() if end is None else fh.read(end - offset)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    try:
        step = 1 << 20
        for start in range(0, len(raw), step):
            out += dobj.decompress(raw[start : start + step])
            if dobj.eof:
                break
    except zstandard.ZstdError:
        return bytes(out), False, True
    return bytes(out), bool(dobj.eof), False


def _parse_records(data: bytes, unpack: bool = True) -> tuple[list[Record], bool]:
    """Records in a decompressed frame; True when the data ends inside a record.

    Packed quote answers and tick frames are unpacked in order (each refers to those before it
    in the frame) unless `unpack` is False; a quote answer that does not unpack raises
    ValueError when its json() or quotes() is asked for, a tick frame stays packed (its kind
    one of PACKED_TICKS). Raises ValueError for a record longer than MAX_PAYLOAD.
    """
    out: list[Record] = []
    codecs = FrameCodecs()
    pos, n = 0, len(data)
    view = memoryview(data)
    while pos < n:
        if n - pos < HEADER.size:
            return out, True
        kind, at_us, length = HEADER.unpack_from(data, pos)
        pos += HEADER.size
        if length > MAX_PAYLOAD:
            raise ValueError(f"record of {length} bytes")
        if n - pos < length:
            return out, True
        rec = Record(kind, at_us, bytes(view[pos : pos + length]))
        unpacker = UNPACKERS.get(kind) if unpack else None
        out.append(rec if unpacker is None else unpacker(rec, codecs))
        pos += length
    return out, False


def read_day(path: Path, since: datetime | None = None,
             health: ReadHealth | None = None, *, unpack: bool = True,
             span: tuple[int, int | None] | None = None) -> Iterator[Record]:
    """Records of a day file in order, from the frame holding `since` on (all when None).
    With `unpack` False packed records are given as stored (kind and time are right; their
    answers are not read): a quick look at a file's head. `span` (first byte, end byte or None
    for the end of the file) reads only the frames starting in it: one collector session of a
    day recorded by several (optui.collectors.record_sessions), `since` sought within it.

    A frame that fails to decompress is skipped and counted; a frame cut at the end of the
    file is read up to the cut and marks `health.cut`. Records of unknown kinds are counted
    in `health.unknown` and skipped. Raises OSError when the file cannot be opened.
    """
    health = health if health is not None else ReadHealth()
    frames = frame_offsets(path)
    size = path.stat().st_size
    lo, hi = 0, len(frames)
    if span is not None:
        lo = bisect.bisect_left([o for o, _ in frames], span[0])
        hi = hi if span[1] is None else bisect.bisect_left([o for o, _ in frames], span[1])
    first = lo
    if since is not None and frames[lo:hi] and all(t >= 0 for _, t in frames[lo:hi]):
        first = lo + max(bisect.bisect_right([t for _, t in frames[lo:hi]], _us(since)) - 1, 0)
    with open(path, "rb") as fh:
        for i in range(first, hi):
            offset = frames[i][0]
            end = frames[i + 1][0] if i + 1 < len(frames) else None
            data, complete, corrupt = _decode_frame(fh, offset, end)
            try:
                records, partial = _parse_records(data, unpack)
            except ValueError:
                records, partial, corrupt = [], False, True
            if corrupt:
                health.bad_frames += 1
                log.warning("%s: frame at byte %d does not decode: skipped", path, offset)
                continue
            for rec in records:
                if rec.kind not in KIND_NAMES:
                    health.unknown += 1
                    continue
                if rec.kind in LEFT_PACKED and unpack:  # left packed: it did not unpack
                    health.bad_frames += 1
                    continue
                health.records += 1
                yield rec
            if not complete or partial:
                if end is None or end >= size:
                    health.cut = True
                    health.cut_at = records[-1].at if records else None
                else:
                    health.bad_frames += 1


def repair_tail(path: Path) -> list[str]:
    """Before appending to a day file: a last frame cut by a killed recorder is rewritten as a
    complete frame of the records it holds (so later frames stay readable). Returns health
    lines saying what was done; an empty list when the file is whole or new."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    frames = read_index(path)
    if not frames:
        return []
    offset, first_us, book = frames[-1]
    with open(path, "rb") as fh:
        data, complete, corrupt = _decode_frame(fh, offset, None)
    if complete and not corrupt:
        return []
    try:
        records, _ = _parse_records(data, unpack=False)
    except ValueError:
        records = []
    cctx = zstandard.ZstdCompressor(level=LEVEL)
    blob = b"".join(HEADER.pack(r.kind, r.at_us, len(r.payload)) + r.payload for r in records)
    with open(path, "r+b") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        if records:
            fh.write(cctx.compress(blob))
    kept = frames[:-1]
    if records:
        kept.append((offset, records[0].at_us if first_us < 0 else first_us, book))
    write_index(path, kept)
    return [f"recording {path.name}: the previous session was cut mid-write; "
            f"{len(records)} record(s) of its last frame kept, appending after them"]
