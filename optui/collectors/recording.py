"""Session recordings: every answer a market source gives, in compressed append-only day files.

File format (one file per IST trading day and source, ``YYYY-MM-DD.optrec.zst``):

- The file is a sequence of standard Zstandard frames (RFC 8878), so ``zstd -dc FILE`` reads it.
  A frame covers at most `FRAME_SPAN_S` seconds of the session; inside a frame the compressor
  flushes a block at least every `FLUSH_S` second, so a killed process loses at most the last
  second and a cut frame decodes up to the cut.
- The decompressed stream is a sequence of records: a 13-byte little-endian header
  (kind ``u8``, time ``i64`` microseconds since the Unix epoch UTC, payload length ``u32``) and
  the payload. The time is the source's clock (the exchange's) when the answer was asked for;
  for raw ticks it is the receive time.
- Kinds: `META` (JSON: format version, source name and label, written once per session),
  `INSTRUMENTS` (JSON: the instrument dump rows and the dump warnings), `QUOTE_COLUMNS` (JSON:
  the requested keys and Kite's ``data`` object as the source returned it, in the exact
  columnar form of `optui.collectors.quote_columns`; format 1, read, not written),
  `QUOTE_PACKED` (the same answer as binary columns, each a change against the previous answer
  for the same instruments in the same frame: `optui.collectors.quote_pack`; format 2),
  `QUOTES` (the answer as plain ``{"keys", "data"}`` JSON; read, not written), `TICKS` (a raw
  binary WebSocket frame as received, on the exchange clock at receipt, kept so when it is not
  a well-formed Kite frame), `TICK_PACKED` (a well-formed frame packed against the ticks before
  it in the same Zstandard frame: `optui.collectors.tick_pack`; format 2; the reader gives it
  back as the `TICKS` record of the frame's exact bytes), `STREAM_QUOTES` (JSON: one quote call
  answered by a streaming source: the requested keys, the keys answered from the ticks
  recorded before it with their instrument tokens as ``stream`` and ``tokens``, and the rest,
  polled, in the columnar form of `QUOTE_COLUMNS`). Unknown kinds are skipped and counted by
  the reader. A packed record needs the records before it in its frame, so frames are read
  from their start (the index's seek points are frame starts).
- Beside each day file, ``YYYY-MM-DD.optrec.idx`` lists every frame (byte offset and the time
  of its first record, one ``offset time_us`` line per frame) for seeking by time. The index is
  a help, never the truth: a missing or short index is rebuilt by scanning frame headers.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from optui.collectors.quote_columns import decode_quotes, encode_quotes
from optui.collectors.quote_pack import PackError, PackState, pack_quotes, unpack_columns
from optui.collectors.source import MarketSource
from optui.collectors.tick_pack import TickPackError, TickState, pack_ticks, unpack_ticks
from optui.models import Instrument, SnapshotWarning, WarningKind
from optui.timeutil import IST

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
SUFFIX = ".optrec.zst"
INDEX_SUFFIX = ".optrec.idx"
FRAME_SPAN_S = 300.0
"""A new Zstandard frame (a seek point) every five minutes of recorded time: a longer frame
lets the compressor refer back to earlier cycles of the same instruments."""
FLUSH_S = 1.0
"""Compressed data reaches the file at least this often (seconds of real time)."""
LEVEL = 9
"""Zstandard level: about 270 KB per full-chain cycle of Kite JSON at 45 ms of CPU, against
350 KB at level 3 (benchmarks/bench_recording.py)."""

META, INSTRUMENTS, QUOTES, TICKS, QUOTE_COLUMNS, QUOTE_PACKED, TICK_PACKED = 1, 2, 3, 4, 5, 6, 7
STREAM_QUOTES = 8
KIND_NAMES = {META: "meta", INSTRUMENTS: "instruments", QUOTES: "quotes", TICKS: "ticks",
              QUOTE_COLUMNS: "quote columns", QUOTE_PACKED: "packed quotes",
              TICK_PACKED: "packed ticks", STREAM_QUOTES: "stream quotes"}
QUOTE_KINDS = (QUOTES, QUOTE_COLUMNS, QUOTE_PACKED, STREAM_QUOTES)
_HEADER = struct.Struct("<BqI")
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_PAYLOAD = 256 * 1024 * 1024


def _us(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError("recording times must be timezone-aware")
    delta = at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)


def day_path(directory: Path, day: date) -> Path:
    """The recording of one IST trading day under `directory`."""
    return directory / f"{day.isoformat()}{SUFFIX}"


def index_path(path: Path) -> Path:
    """The frame index beside a day file."""
    return path.with_name(path.name[: -len(SUFFIX)] + INDEX_SUFFIX)


def recordings_dir(data_dir: Path, simulated: bool, configured: str = "") -> Path:
    """Where recordings go, kept apart by source like the stores: ``data/sim/recordings`` for
    simulated sessions, ``data/recordings`` for live ones; a configured `record.dir` is the
    root of both (its ``sim`` subfolder for simulated sessions)."""
    root = Path(configured) if configured else data_dir
    if configured:
        return root / "sim" if simulated else root
    return root / "sim" / "recordings" if simulated else root / "recordings"


def _jsonable(value: object) -> str:
    """Kite's client returns datetimes; they are written as ISO text (IST, as Kite sends them)."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    raise TypeError(f"{type(value).__name__} is not recordable")


def encode_json(obj: object) -> bytes:
    """JSON bytes of a recorded answer; floats round-trip exactly (shortest repr), NaN as NaN."""
    return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Writing


class RecordingBusy(OSError):
    """Another process holds the day file (a dashboard and `optui collect` on one source)."""


class DayWriter:
    """Appends records to one day file: frames of at most `FRAME_SPAN_S` recorded seconds,
    a block flushed to the file at least every `FLUSH_S` real second. Not thread-safe on its
    own (the Recorder holds the lock)."""

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
        self.pack_state = PackState()  # packed quotes and ticks refer back only within
        self.tick_state = TickState()  # their frame
        self._frame_start_us = 0
        self._mono = monotonic
        self._last_flush = monotonic()
        self._dirty = False
        self.bytes_in = 0

    def write(self, kind: int, at_us: int, payload: bytes | Callable[[PackState], bytes]) -> None:
        """Append one record; starts a new frame when the current one spans `FRAME_SPAN_S`.

        `payload` may be a function of the frame's PackState (a packed quote answer), called
        once the record's frame is known.
        """
        if self._cobj is not None and at_us - self._frame_start_us >= FRAME_SPAN_S * 1e6:
            self._end_frame()
        if self._cobj is None:
            offset = self._fh.tell()
            self._cobj = self._cctx.compressobj()
            self.pack_state.clear()
            self.tick_state.clear()
            self._frame_start_us = at_us
            self._idx.write(f"{offset} {at_us}\n")
            self._idx.flush()
        if callable(payload):
            payload = payload(self.pack_state)
        elif kind == TICKS:
            packed = pack_ticks(payload, self.tick_state)
            if packed is not None:
                kind, payload = TICK_PACKED, packed
        head = _HEADER.pack(kind, at_us, len(payload))
        out = self._cobj.compress(head) + self._cobj.compress(payload)
        if out:
            self._fh.write(out)
        self.bytes_in += len(head) + len(payload)
        self._dirty = True
        if self._mono() - self._last_flush >= FLUSH_S:
            self.flush()

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

    def _write(self, kind: int, at: datetime, payload: bytes | Callable[[PackState], bytes]) -> None:
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
                    meta = {"format": FORMAT_VERSION, "source": self.source_name,
                            "label": self.source_label}
                    self._writer.write(META, _us(at), encode_json(meta))
                self._writer.write(kind, _us(at), payload)
                self.records += 1
            except OSError as exc:
                self._fail(exc)

    def record_instruments(self, at: datetime, instruments: Sequence[Instrument],
                           warnings: Sequence[SnapshotWarning | str]) -> None:
        """One instrument dump (once per day) with the warnings the source gave with it."""
        rows = [asdict(i) for i in instruments]
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
        body = {"keys": list(keys), "stream": list(stream), "tokens": [int(t) for t in tokens],
                **encode_quotes(polled)}
        self._write(STREAM_QUOTES, at, encode_json(body))

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


class RecordingSource(MarketSource):
    """Any MarketSource, with every instrument dump and quote answer it gives recorded.

    Everything else (name, label, clock, calendar) is the wrapped source's.
    """

    def __init__(self, inner: MarketSource, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder
        self.name = inner.name
        self.label = inner.label

    def __getattr__(self, attr: str) -> Any:  # the wrapped source's own extras (e.g. exchange)
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    @property
    def dump_warnings(self) -> list[SnapshotWarning]:  # type: ignore[override]
        return self.inner.dump_warnings

    @property
    def calendar(self):  # type: ignore[override]  # noqa: ANN201
        return self.inner.calendar

    @calendar.setter
    def calendar(self, value) -> None:  # noqa: ANN001
        self.inner.calendar = value

    def instruments(self) -> list[Instrument]:
        out = self.inner.instruments()
        self.recorder.record_instruments(self.inner.now(), out, self.inner.dump_warnings)
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        asked = self.inner.now()
        data = self.inner.quote_batch(keys)
        self.recorder.record_quotes(asked, keys, data)
        return data

    def now(self) -> datetime:
        return self.inner.now()

    @property
    def clock_offset_s(self) -> float | None:
        return self.inner.clock_offset_s

    def real_seconds(self, exchange_seconds: float) -> float:
        return self.inner.real_seconds(exchange_seconds)

    def sync_clock(self) -> None:
        self.inner.sync_clock()

    @property
    def accepts_token(self) -> bool:  # type: ignore[override]
        return self.inner.accepts_token

    def set_access_token(self, token: str) -> None:
        self.inner.set_access_token(token)

    def probe(self) -> None:
        self.inner.probe()

    def is_trading_day(self, at: datetime) -> bool:
        return self.inner.is_trading_day(at)

    def is_holiday(self, at: datetime) -> bool:
        return self.inner.is_holiday(at)

    def take_notices(self) -> list[SnapshotWarning]:
        """The recorder's health lines (the engine adds them to the cycle's warnings)."""
        return self.recorder.take_notices()

    def close(self) -> None:
        try:
            self.recorder.close()
        finally:
            self.inner.close()


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class Record:
    """One recorded answer: its kind, time (aware UTC) and raw payload."""

    kind: int
    at_us: int
    payload: bytes
    _body: Any = field(default=None, repr=False, compare=False)

    @property
    def at(self) -> datetime:
        return _from_us(self.at_us)

    def json(self) -> Any:
        """The decoded JSON payload (decoded once); for a packed quote answer, its columnar
        form as unpacked by the reader. Raises ValueError when it does not decode."""
        if isinstance(self._body, Exception):
            raise ValueError(str(self._body))
        if self._body is None:
            if self.kind == QUOTE_PACKED:
                raise ValueError("a packed quote answer is read with the records before it "
                                 "(read_day)")
            self._body = json.loads(self.payload)
        return self._body

    def quotes(self) -> tuple[list[str], dict[str, dict]]:
        """A quote record's requested keys and answer. Raises ValueError (also for a
        malformed columnar payload) when the payload does not decode."""
        body = self.json()
        try:
            columnar = self.kind in (QUOTE_COLUMNS, QUOTE_PACKED, STREAM_QUOTES)
            data = decode_quotes(body) if columnar else body.get("data") or {}
            return list(body["keys"]), data
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            raise ValueError(f"malformed quote record: {exc!r}") from None


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


def frame_offsets(path: Path) -> list[tuple[int, int]]:
    """(byte offset, first record time µs) of each frame, from the index when it is whole,
    else by walking the frame headers (offsets only, time -1)."""
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
    return [(o, -1) for o in _scan_frames(path)]


def _scan_frames(path: Path) -> list[int]:
    """Frame start offsets found by the Zstandard magic number (the index is missing or bad)."""
    data = path.read_bytes()
    out, at = [], data.find(_ZSTD_MAGIC)
    while at >= 0:
        out.append(at)
        at = data.find(_ZSTD_MAGIC, at + 1)
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
    ValueError when its json() or quotes() is asked for, a tick frame stays TICK_PACKED.
    """
    out: list[Record] = []
    state, ticks = PackState(), TickState()
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < _HEADER.size:
            return out, True
        kind, at_us, length = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        if length > MAX_PAYLOAD:
            raise ValueError(f"record of {length} bytes")
        if n - pos < length:
            return out, True
        rec = Record(kind, at_us, data[pos : pos + length])
        if kind == QUOTE_PACKED and unpack:
            try:
                rec._body = unpack_columns(rec.payload, state)
            except PackError as exc:
                rec._body = exc
        elif kind == TICK_PACKED and unpack:
            try:
                rec = Record(TICKS, at_us, unpack_ticks(rec.payload, ticks))
            except TickPackError as exc:
                rec._body = exc  # counted as a bad record by read_day
        out.append(rec)
        pos += length
    return out, False


def read_day(path: Path, since: datetime | None = None,
             health: ReadHealth | None = None) -> Iterator[Record]:
    """Records of a day file in order, from the frame holding `since` on (all when None).

    A frame that fails to decompress is skipped and counted; a frame cut at the end of the
    file is read up to the cut and marks `health.cut`. Records of unknown kinds are counted
    in `health.unknown` and skipped. Raises OSError when the file cannot be opened.
    """
    health = health if health is not None else ReadHealth()
    frames = frame_offsets(path)
    size = path.stat().st_size
    first = 0
    if since is not None and frames and all(t >= 0 for _, t in frames):
        first = max(bisect.bisect_right([t for _, t in frames], _us(since)) - 1, 0)
    with open(path, "rb") as fh:
        for i in range(first, len(frames)):
            offset = frames[i][0]
            end = frames[i + 1][0] if i + 1 < len(frames) else None
            data, complete, corrupt = _decode_frame(fh, offset, end)
            try:
                records, partial = _parse_records(data)
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
                if rec.kind == TICK_PACKED:  # left packed: it did not unpack
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
    frames = frame_offsets(path)
    if not frames:
        return []
    offset, first_us = frames[-1]
    with open(path, "rb") as fh:
        data, complete, corrupt = _decode_frame(fh, offset, None)
    if complete and not corrupt:
        return []
    try:
        records, _ = _parse_records(data, unpack=False)
    except ValueError:
        records = []
    cctx = zstandard.ZstdCompressor(level=LEVEL)
    blob = b"".join(_HEADER.pack(r.kind, r.at_us, len(r.payload)) + r.payload for r in records)
    with open(path, "r+b") as fh:
        fh.truncate(offset)
        fh.seek(offset)
        if records:
            fh.write(cctx.compress(blob))
    idx = [f"{o} {t}\n" for o, t in frames[:-1]]
    if records:
        idx.append(f"{offset} {records[0].at_us if first_us < 0 else first_us}\n")
    index_path(path).write_text("".join(idx), encoding="ascii")
    return [f"recording {path.name}: the previous session was cut mid-write; "
            f"{len(records)} record(s) of its last frame kept, appending after them"]


def recorded_days(directory: Path) -> list[date]:
    """The days recorded under `directory`, oldest first."""
    out = []
    for p in directory.glob(f"*{SUFFIX}"):
        try:
            out.append(date.fromisoformat(p.name[: -len(SUFFIX)]))
        except ValueError:
            continue
    return sorted(out)


def instruments_from_record(payload: dict) -> tuple[list[Instrument], list[SnapshotWarning]]:
    """The Instrument rows and dump warnings of an INSTRUMENTS record. Raises ValueError,
    TypeError or KeyError on a malformed payload."""
    rows = []
    for row in payload.get("rows", []):
        expiry = row.get("expiry")
        rows.append(Instrument(**{**row, "expiry": date.fromisoformat(expiry) if expiry else None}))
    notes = []
    for w in payload.get("warnings", []):
        if isinstance(w, dict):
            notes.append(SnapshotWarning(WarningKind(w["kind"]), str(w["subject"]), str(w["message"])))
        else:
            notes.append(SnapshotWarning(WarningKind.DUMP_MALFORMED, "", str(w)))
    return rows, notes


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
