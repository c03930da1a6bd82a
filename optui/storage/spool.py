"""An append-only on-disk queue of line-protocol batches, kept while the store is unreachable.

Nothing collected may be lost to an outage or a restart: each batch is appended as a checksummed
record and fsync'd before the write returns, records are replayed oldest first, and a segment is
deleted only after every record in it was confirmed written. A corrupt record (a damaged disk
block, a changed byte) is moved to `quarantine/` for inspection with a warning, and the records
after it still replay; a torn tail (a crash or a full disk in mid-append, never acknowledged) is
cut off. An append that fails (disk full) leaves the segment as it was before the append.
Replaying a record twice after a crash is harmless: InfluxDB replaces a point of the same identity.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from optui.errors import StoreError

log = logging.getLogger(__name__)

_MAGIC = b"#optui-spool1 "
_HEADER = re.compile(rb"#optui-spool1 (\d+) (\d+) ([0-9a-f]{8})\n")
_SUFFIX = ".spool"
_DONE = ".done"
_MAX_HEADER = 64
QUARANTINE_DIR = "quarantine"
"""Subdirectory of the spool holding damaged records' bytes (`<segment>-<byte offset>.bad`)."""


def _next_header(data: bytes, start: int) -> int:
    """Offset of the next record header at or after `start` (at a line start), else len(data)."""
    if start <= 0 and data.startswith(_MAGIC):
        return 0
    nxt = data.find(b"\n" + _MAGIC, max(start - 1, 0))
    return len(data) if nxt < 0 else nxt + 1


@dataclass(frozen=True, slots=True)
class SpoolStatus:
    """What is waiting to be written."""

    points: int
    bytes: int
    segments: int

    def __str__(self) -> str:
        return f"{self.points} point(s), {self.bytes} bytes in {self.segments} segment(s)"


@dataclass(frozen=True, slots=True)
class _Record:
    start: int
    end: int
    points: int
    payload: bytes | None  # None: corrupt, skip


class Spool:
    """Durable FIFO of line-protocol batches in `directory` (created on first use).

    Safe across processes: every operation holds an exclusive lock on `directory/.lock`.
    """

    def __init__(self, directory: str | Path, segment_bytes: int = 16 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.skipped = 0
        """Corrupt records skipped so far (each logged as a warning)."""
        self.quarantined = 0
        """Damaged regions copied to `quarantine/` so far."""
        self._verified: dict[Path, int] = {}  # segment -> size known to end on a record boundary

    # -- locking and files ----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(
                f"spool directory {self.directory} is not usable ({exc.strerror}): "
                "set store.spool_dir to a writable directory"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob("*" + _SUFFIX))

    @staticmethod
    def _done_path(segment: Path) -> Path:
        return segment.with_suffix(_DONE)

    def _done_offset(self, segment: Path) -> int:
        try:
            return int(self._done_path(segment).read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _set_done(self, segment: Path, offset: int) -> None:
        done = self._done_path(segment)
        tmp = done.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            handle.write(str(offset))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, done)

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading --------------------------------------------------------------------------------

    def _records(self, segment: Path, offset: int, with_payload: bool) -> Iterator[_Record]:
        """Records from `offset`; a damaged or torn region is yielded with payload None.

        A damaged region runs from the bad header to the next record header (so one changed
        byte costs one record, never the rest of the segment).
        """
        try:
            data = segment.read_bytes()
        except FileNotFoundError:
            return
        pos = offset
        size = len(data)
        while pos < size:
            match = _HEADER.match(data, pos, min(size, pos + _MAX_HEADER))
            if match is None:
                # Lost framing: resynchronise on the next record header, if any.
                end = _next_header(data, pos + 1)
                yield _Record(pos, end, 0, None)
                pos = end
                continue
            points, length, crc = int(match[1]), int(match[2]), match[3].decode()
            body_start = match.end()
            end = body_start + length
            if end > size:  # damaged length digit, or a torn tail
                nxt = _next_header(data, body_start)
                yield _Record(pos, nxt, points, None)
                pos = nxt
                continue
            payload = data[body_start:end]
            if f"{zlib.crc32(payload):08x}" == crc:
                points = payload.count(b"\n")  # the body is the truth, not a header digit
                yield _Record(pos, end, points, payload if with_payload else b"")
                pos = end
                continue
            if end < size and _HEADER.match(data, end, min(size, end + _MAX_HEADER)) is None:
                end = _next_header(data, body_start)  # the length was damaged: resynchronise
            yield _Record(pos, end, points, None)
            pos = end

    def _quarantine(self, segment: Path, rec: _Record, why: str) -> Path | None:
        """Copy a damaged region's bytes to quarantine/ (for inspection or a manual replay); warn."""
        target = self.directory / QUARANTINE_DIR / f"{segment.stem}-{rec.start:012d}.bad"
        kept: Path | None = target
        try:
            with open(segment, "rb") as handle:
                handle.seek(rec.start)
                data = handle.read(rec.end - rec.start)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            with open(tmp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            log.warning("spool %s: cannot quarantine %d bytes at byte %d (%s)", segment,
                        rec.end - rec.start, rec.start, exc.strerror or exc)
            kept = None
        self.skipped += 1
        self.quarantined += 1
        log.warning(
            "spool %s: %s at byte %d (%d bytes, about %d point(s)) set aside in %s; "
            "the records after it still replay", segment, why, rec.start, rec.end - rec.start,
            rec.points, kept or "(nowhere: see above)",
        )
        return kept

    def status(self) -> SpoolStatus:
        """Points, bytes and segments waiting (corrupt records not counted)."""
        with self._locked():
            points = size = segments = 0
            for segment in self._segments():
                offset = self._done_offset(segment)
                for rec in self._records(segment, offset, with_payload=False):
                    if rec.payload is not None:
                        points += rec.points
                        size += rec.end - rec.start
                segments += 1
            return SpoolStatus(points, size, segments)

    def __len__(self) -> int:
        return self.status().points

    # -- writing --------------------------------------------------------------------------------

    def append(self, body: bytes, points: int) -> None:
        """Durably add one batch (newline-terminated line protocol of `points` lines)."""
        if not body:
            return
        header = _MAGIC + f"{points} {len(body)} {zlib.crc32(body):08x}\n".encode()
        try:
            with self._locked():
                segments = self._segments()
                target = segments[-1] if segments else None
                if target is not None:
                    self._truncate_torn_tail(target)
                    if target.stat().st_size >= self.segment_bytes:
                        target = None
                new = target is None
                if target is None:
                    seq = int(segments[-1].stem) + 1 if segments else 1
                    target = self.directory / f"{seq:012d}{_SUFFIX}"
                before = target.stat().st_size if target.exists() else 0
                try:
                    with open(target, "ab") as handle:
                        handle.write(header + body)
                        handle.flush()
                        os.fsync(handle.fileno())
                        self._verified = {target: handle.tell()}
                except OSError:
                    self._undo_append(target, before, new)
                    raise
                if new:
                    self._fsync_dir()
        except OSError as exc:
            raise StoreError(
                f"cannot spool {points} point(s) to {self.directory} ({exc.strerror}): "
                "free disk space or set store.spool_dir to a writable directory"
            ) from None

    def _undo_append(self, target: Path, before: int, new: bool) -> None:
        """After a failed append (disk full), cut the segment back to its last whole record."""
        self._verified = {}
        try:
            if new and before == 0:
                target.unlink(missing_ok=True)
            else:
                with open(target, "r+b") as handle:
                    handle.truncate(before)
                    os.fsync(handle.fileno())
                self._verified = {target: before}
        except OSError as exc:  # the next append or replay cuts the torn tail instead
            log.warning("spool %s: cannot cut a failed append back (%s)", target, exc.strerror or exc)

    def _truncate_torn_tail(self, segment: Path) -> None:
        """Cut a half-written last record so the next append starts on a record boundary."""
        size = segment.stat().st_size
        if self._verified.get(segment) == size:
            return
        good = 0
        for rec in self._records(segment, 0, with_payload=False):
            if rec.payload is None and rec.end == size and _is_torn(segment, rec):
                log.warning(
                    "spool %s: cutting a torn record at byte %d (%d bytes) left by an "
                    "interrupted write (never acknowledged)", segment, rec.start, size - rec.start,
                )
                self._quarantine(segment, rec, "torn record")
                with open(segment, "r+b") as handle:
                    handle.truncate(good)
                    os.fsync(handle.fileno())
                return
            good = rec.end

    # -- replay ---------------------------------------------------------------------------------

    def _seal(self) -> list[Path]:
        """Under the lock: the segments a replay may read, with appends moved to a fresh segment.

        Appends go to the newest segment, so when it holds records an empty successor is
        created first: the segments returned are then read and removed by the replay alone.
        """
        with self._locked():
            segments = self._segments()
            if segments and segments[-1].stat().st_size > 0:
                self._truncate_torn_tail(segments[-1])
                fresh = self.directory / f"{int(segments[-1].stem) + 1:012d}{_SUFFIX}"
                fresh.touch()
                self._fsync_dir()
                self._verified = {fresh: 0}
            elif segments:
                segments = segments[:-1]  # the empty newest segment is the append target
            return segments

    @contextmanager
    def _replaying(self) -> Iterator[bool]:
        """One replay at a time across threads and processes; False when another is running."""
        fd = os.open(self.directory / ".replay.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def replay(self, send: Callable[[bytes, int], None], max_points: int = 5000) -> int:
        """Send waiting records oldest first, grouped up to `max_points` lines per call.

        `send(body, points)` must raise on failure; the failed group and everything after it stay
        spooled. Returns the number of points confirmed (0 when another replay is running).
        Corrupt records are quarantined (see `_quarantine`); the records after them are sent.
        The spool's lock is held only to seal the segments to send, never while `send` waits on
        a server, so appends (a collector spooling a write that outlived its budget) never wait
        for a hung database.
        """
        sent = 0
        self._locked_mkdir()
        with self._replaying() as mine:
            if not mine:
                return 0
            for segment in self._seal():
                offset = self._done_offset(segment)
                group: list[bytes] = []
                group_points = 0
                group_end = offset
                for rec in self._records(segment, offset, with_payload=True):
                    if rec.payload is None:
                        torn = rec.end == segment.stat().st_size and _is_torn(segment, rec)
                        self._quarantine(segment, rec, "torn record" if torn else "corrupt record")
                        if not group:
                            offset = group_end = rec.end
                            self._set_done(segment, offset)
                        else:
                            group_end = rec.end
                        continue
                    if group and group_points + rec.points > max_points:
                        send(b"".join(group), group_points)
                        sent += group_points
                        self._set_done(segment, group_end)
                        group, group_points = [], 0
                    group.append(rec.payload)
                    group_points += rec.points
                    group_end = rec.end
                if group:
                    send(b"".join(group), group_points)
                    sent += group_points
                # Every record of this segment is confirmed: it can go.
                with self._locked():
                    segment.unlink(missing_ok=True)
                    self._done_path(segment).unlink(missing_ok=True)
            with self._locked():  # an append target nothing was appended to meanwhile
                left = self._segments()
                if len(left) == 1 and left[0].stat().st_size == 0:
                    left[0].unlink()
                    self._verified = {}
        return sent

    def _locked_mkdir(self) -> None:
        """The spool directory exists (StoreError naming the fix when it cannot)."""
        with self._locked():
            pass


def _is_torn(segment: Path, rec: _Record) -> bool:
    """A bad record at the very end whose declared length runs past the file is torn."""
    with open(segment, "rb") as handle:
        handle.seek(rec.start)
        head = handle.read(_MAX_HEADER)
    match = _HEADER.match(head)
    if match is None:
        return True  # the header itself was cut short
    return rec.start + match.end() + int(match[2]) > segment.stat().st_size
