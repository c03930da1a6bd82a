"""Writing recordings: every answer a market source gives, appended to per-day files in the
format of `optui.collectors.record_format` (Zstandard frames of records, a frame index beside).

`Recorder` appends a session's records (thread-safe; a daemon thread pushes compressed blocks
to the file at least every `FLUSH_S` second, so a killed process loses at most the last second);
`RecordingSource` wraps any MarketSource and records its instrument dumps and quote answers.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from optui.collectors.quote_pack import PackState, pack_quotes
from optui.collectors.record_format import (
    FLUSH_S,
    FORMAT_VERSION,
    FRAME_SPAN_S,
    HEADER,
    INSTRUMENTS,
    LEVEL,
    META,
    NOTICE,
    QUOTE_PACKED,
    STREAM_QUOTES,
    TICK_BOOK,
    TICK_COLUMNS,
    TICKS,
    FrameCodecs,
    StreamCall,
    _us,
    day_path,
    encode_json,
    index_path,
    instrument_rows,
    notice_payload,
    recordings_dir,
)
from optui.collectors.record_reader import repair_tail
from optui.collectors.source import MarketSource
from optui.collectors.tick_checkpoint import LastPackets
from optui.collectors.wrapped_source import WrappedSource
from optui.models import Instrument, SnapshotWarning, WarningKind
from optui.timeutil import IST

log = logging.getLogger(__name__)


class RecordingBusy(OSError):
    """Another process holds the day file (a dashboard and `optui collect` on one source)."""


class DayWriter:
    """Appends records to one day file: frames of at most `FRAME_SPAN_S` recorded seconds,
    a block flushed to the file at least every `FLUSH_S` real second. Each frame after the
    session's first tick opens with the session's tick book (`TICK_BOOK` checkpoint frames of
    every instrument's last packets), so every frame it writes is a seek point of the tick book
    (marked ``b`` in the index). Not thread-safe on its own (the Recorder holds the lock)."""

    def __init__(self, path: Path, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.notes: list[str] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: BinaryIO = open(path, "ab")  # noqa: SIM115 - held open for the session
        try:  # one writer per day file: a second process would interleave its frames
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.close()
            raise RecordingBusy(f"recording {path.name}: another optui process is recording "
                                "this day; this session is not recorded") from None
        self.notes.extend(repair_tail(path))
        self._fh.seek(0, 2)
        self._idx = open(index_path(path), "a", encoding="ascii")  # noqa: SIM115
        self._cctx = zstandard.ZstdCompressor(level=LEVEL)
        self._cobj: Any = None
        self.codecs = FrameCodecs()  # packed quotes and ticks refer back only within their frame
        self.book = LastPackets()  # the session's last packets: each frame's checkpoint
        self.frame_span_s = FRAME_SPAN_S
        self._frame_start_us = 0
        self._mono = monotonic
        self._last_flush = monotonic()
        self._dirty = False
        self.bytes_in = 0

    def write(self, kind: int, at_us: int,
              payload: bytes | StreamCall | Callable[[PackState], bytes]) -> None:
        """Append one record; starts a new frame (opened by the tick-book checkpoint) when the
        current one spans `frame_span_s` (`FRAME_SPAN_S`).

        `payload` may be a function of the frame's PackState (a packed quote answer), called
        once the record's frame is known, or a StreamCall (written whole or as a reference to
        the frame's earlier call of the same keys).
        """
        if self._cobj is not None and at_us - self._frame_start_us >= self.frame_span_s * 1e6:
            self._end_frame()
        if self._cobj is None:
            self._start_frame(at_us)
        if isinstance(payload, StreamCall):
            kind, payload = self.codecs.pack_call(payload)
        elif callable(payload):
            payload = payload(self.codecs.quotes)
        else:
            raw = payload
            kind, payload = self.codecs.pack(kind, payload)
            if kind == TICK_COLUMNS:  # a well-formed frame: into the session's book
                self.book.add(raw)
        self._append(kind, at_us, payload)
        if self._mono() - self._last_flush >= FLUSH_S:
            self.flush()

    def _start_frame(self, at_us: int) -> None:
        """A new Zstandard frame at `at_us`, indexed as a tick-book seek point and opened by
        the book's checkpoint (nothing when the session has no tick yet)."""
        offset = self._fh.tell()
        self._cobj = self._cctx.compressobj()
        self.codecs.clear()
        self._frame_start_us = at_us
        self._idx.write(f"{offset} {at_us} b\n")
        self._idx.flush()
        for frame in self.book.frames():
            kind, payload = self.codecs.pack(TICK_BOOK, frame)
            self._append(kind, at_us, payload)

    def _append(self, kind: int, at_us: int, payload: bytes) -> None:
        head = HEADER.pack(kind, at_us, len(payload))
        out = self._cobj.compress(head) + self._cobj.compress(payload)
        if out:
            self._fh.write(out)
        self.bytes_in += len(head) + len(payload)
        self._dirty = True

    def flush(self) -> None:
        """Push everything written so far to the file as complete compressed blocks."""
        self._last_flush = self._mono()
        if self._cobj is not None and self._dirty:
            self._fh.write(self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK))
            self._fh.flush()
        self._dirty = False

    def _end_frame(self) -> None:
        self._fh.write(self._cobj.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        self._fh.flush()
        self._cobj = None
        self._dirty = False

    def close(self) -> None:
        """End the open frame and close the files."""
        if self._cobj is not None:
            self._end_frame()
        self._fh.close()
        self._idx.close()


class Recorder:
    """Records a session's answers into per-day files under `directory` (thread-safe).

    A daemon thread flushes at least every `FLUSH_S` second while records wait in the
    compressor. Write failures (a full disk) never stop collection: the recorder turns itself
    off and says why in `notes` (taken by the engine's health lines) and the log.
    """

    def __init__(self, directory: Path, source_name: str, source_label: str,
                 monotonic: Callable[[], float] = time.monotonic, flusher: bool = True) -> None:
        self.directory = directory
        self.source_name = source_name
        self.source_label = source_label
        self._mono = monotonic
        self._lock = threading.Lock()
        self._writer: DayWriter | None = None
        self._day: date | None = None
        self._notes: list[SnapshotWarning] = []
        self.failed = False
        self.records = 0
        self.meta: dict[str, Any] = {}
        """Extra fields of each session's META record (a streaming source's `snapshot_s`)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if flusher:
            self._thread = threading.Thread(target=self._flush_loop, name="optui-recorder", daemon=True)
            self._thread.start()

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_S / 2):
            with self._lock:
                if self._writer is not None:
                    try:
                        self._writer.flush()
                    except OSError as exc:
                        self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        text = (str(exc) if isinstance(exc, RecordingBusy) else
                f"recording stopped: cannot write under {self.directory} ({exc.strerror or exc})")
        log.error("%s", text)
        self._notes.append(SnapshotWarning(WarningKind.RECORDING, "", text))
        self.failed = True
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except OSError:
                log.debug("closing a failed recording", exc_info=True)

    def _write(self, kind: int, at: datetime,
               payload: bytes | StreamCall | Callable[[PackState], bytes]) -> None:
        if self.failed:
            return
        with self._lock:
            try:
                day = at.astimezone(IST).date()
                if self._writer is None or day != self._day:
                    if self._writer is not None:
                        self._writer.close()
                    self._writer = DayWriter(day_path(self.directory, day), self._mono)
                    self._day = day
                    self._notes.extend(SnapshotWarning(WarningKind.RECORDING, "", note)
                                       for note in self._writer.notes)
                    meta = {**self.meta, "format": FORMAT_VERSION, "source": self.source_name,
                            "label": self.source_label}
                    self._writer.write(META, _us(at), encode_json(meta))
                self._writer.write(kind, _us(at), payload)
                self.records += 1
            except OSError as exc:
                self._fail(exc)

    def record_instruments(self, at: datetime, instruments: Sequence[Instrument],
                           warnings: Sequence[SnapshotWarning | str]) -> None:
        """One instrument dump (once per day) with the warnings the source gave with it."""
        rows = instrument_rows(instruments)
        notes = [{"kind": w.kind.value, "subject": w.subject, "message": w.message}
                 if isinstance(w, SnapshotWarning) else str(w) for w in warnings]
        self._write(INSTRUMENTS, at, encode_json({"rows": rows, "warnings": notes}))

    def record_quotes(self, at: datetime, keys: Sequence[str], data: dict[str, dict]) -> None:
        """One quote call: the keys asked for and Kite's answer, at the source's clock `at`."""
        keys = list(keys)
        self._write(QUOTE_PACKED, at, lambda state: pack_quotes(keys, data, state))

    def record_ticks(self, at: datetime, payload: bytes) -> None:
        """One raw binary WebSocket frame from Kite's ticker, as received at `at`."""
        self._write(TICKS, at, bytes(payload))

    def record_stream_answer(self, at: datetime, keys: Sequence[str], stream: Sequence[str],
                             tokens: Sequence[int], polled: dict[str, dict]) -> None:
        """One quote call of a streaming source: `stream` keys (instrument `tokens`) answered
        from the ticks recorded before this record, the `polled` answer for the others."""
        call = StreamCall(list(keys), list(stream), [int(t) for t in tokens], polled)
        self._write(STREAM_QUOTES, at, call)

    def record_notice(self, at: datetime, warning: SnapshotWarning) -> None:
        """One health line the live source said about its stream at `at` (exchange clock): a
        replay says it again at the same moment. Format 5 wrote these; from format 6 on the
        stream's lines are recorded with the cycle that said them (`record_said`)."""
        self._write(NOTICE, at, notice_payload(warning))

    def record_said(self, at: datetime, warnings: Sequence[SnapshotWarning]) -> None:
        """The stream's health lines a collection cycle said at `at` (exchange clock), after
        its quote calls (format 6: NOTICE records marked as the cycle's): a replay says the
        same lines with the same cycle. Lines of other kinds (the recording's own) are not
        recorded."""
        for warning in warnings:
            if isinstance(warning, SnapshotWarning) and warning.kind is WarningKind.STREAM:
                self._write(NOTICE, at, notice_payload(warning, cycle=True))

    def take_notices(self) -> list[SnapshotWarning]:
        """Health lines since the last call (a repaired cut file, a write failure)."""
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def flush(self) -> None:
        """Flush now (a clean stop, a test)."""
        with self._lock:
            if self._writer is not None:
                try:
                    self._writer.flush()
                except OSError as exc:
                    self._fail(exc)

    def close(self) -> None:
        """Stop the flusher and close the day file with a complete frame."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._writer is not None:
                try:
                    self._writer.close()
                except OSError as exc:
                    log.error("recording: cannot close %s: %s", self._writer.path, exc)
                self._writer = None


class RecordingSource(WrappedSource):
    """Any MarketSource, with every instrument dump and quote answer it gives recorded.

    Everything else (name, label, clock, calendar) is the wrapped source's.
    """

    def __init__(self, inner: MarketSource, recorder: Recorder) -> None:
        super().__init__(inner)
        self.recorder = recorder

    @property
    def dump_warnings(self) -> list[SnapshotWarning]:  # type: ignore[override]
        return self.inner.dump_warnings

    def instruments(self) -> list[Instrument]:
        out = self.inner.instruments()
        self.recorder.record_instruments(self.inner.now(), out, self.inner.dump_warnings)
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        asked = self.inner.now()
        data = self.inner.quote_batch(keys)
        self.recorder.record_quotes(asked, keys, data)
        return data

    def take_notices(self) -> list[SnapshotWarning]:
        """The recorder's health lines (the engine adds them to the cycle's warnings)."""
        return self.recorder.take_notices()

    def close(self) -> None:
        try:
            self.recorder.close()
        finally:
            self.inner.close()


def record_said(source: MarketSource, warnings: Sequence[SnapshotWarning]) -> None:
    """Record the stream's health lines a cycle of `source` said (`Recorder.record_said`) when
    `source` records (its `recorder`), at its clock; nothing otherwise."""
    recorder = getattr(source, "recorder", None)
    if isinstance(recorder, Recorder) and warnings:
        recorder.record_said(source.now(), warnings)


def make_recorder(settings: Any, source: MarketSource, simulated: bool) -> Recorder | None:
    """The Recorder for `source`'s session when `record.enabled` (Settings), else None; the
    recordings of simulated sessions go apart from live ones (see `recordings_dir`)."""
    if not settings.record.enabled:
        return None
    directory = recordings_dir(Path(settings.general.data_dir), simulated, settings.record.dir)
    return Recorder(directory, source.name, source.label)


def with_recording(settings: Any, source: MarketSource, simulated: bool) -> MarketSource:
    """`source` wrapped in a RecordingSource when `record.enabled` (Settings); the recordings
    of simulated sessions go apart from live ones (see `recordings_dir`)."""
    recorder = make_recorder(settings, source, simulated)
    return source if recorder is None else RecordingSource(source, recorder)
