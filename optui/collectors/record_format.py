"""The recording file format: record kinds, the record header, file names and the per-frame
packing of payloads.

File format (one file per IST trading day and source, ``YYYY-MM-DD.optrec.zst``):

- The file is a sequence of standard Zstandard frames (RFC 8878), so ``zstd -dc FILE`` reads it.
  A frame covers at most `FRAME_SPAN_S` seconds of the session; inside a frame the compressor
  flushes a block at least every `FLUSH_S` second, so a killed process loses at most the last
  second and a cut frame decodes up to the cut.
- The decompressed stream is a sequence of records: a 13-byte little-endian header
  (kind ``u8``, time ``i64`` microseconds since the Unix epoch UTC, payload length ``u32``) and
  the payload. The time is the source's clock (the exchange's) when the answer was asked for;
  for raw ticks it is the receive time.
- Kinds (`KIND_NAMES`): `META` (JSON: format version, source name and label, and a streamed
  session's tick cadence `snapshot_s` when on, written once per session), `INSTRUMENTS` (JSON: the instrument dump rows and the dump warnings),
  `QUOTE_COLUMNS` (JSON: the requested keys and Kite's ``data`` object as the source returned
  it, in the exact columnar form of `optui.collectors.quote_columns`; format 1, read, not
  written), `QUOTE_PACKED` (the same answer as binary columns, each a change against the
  previous answer for the same instruments in the same frame: `optui.collectors.quote_pack`;
  format 2 on), `QUOTES` (the answer as plain ``{"keys", "data"}`` JSON; read, not written),
  `TICKS` (a raw binary WebSocket frame as received, on the exchange clock at receipt, kept so
  when it is not a well-formed Kite frame), `TICK_PACKED` (format 2, read, not written: a
  well-formed frame as byte planes of word changes, `optui.collectors.tick_pack`),
  `TICK_COLUMNS` (format 3: a well-formed frame as a bitmask of the fields that changed since
  each instrument's previous tick and those changes, `optui.collectors.tick_columns`); the
  reader gives both packed tick kinds back as the `TICKS` record of the frame's exact bytes.
  `STREAM_QUOTES` (JSON: one quote call answered by a streaming source: the requested keys, the
  keys answered from the ticks recorded before it with their instrument tokens as ``stream``
  and ``tokens``, and the rest, polled, in the columnar form of `QUOTE_COLUMNS`; format 4
  writes it for the first call of each key list in a frame), `STREAM_CALL` (format 4: a
  streamed call whose keys, streamed keys and tokens are those of an earlier `STREAM_QUOTES`
  record of its frame: ``u32`` that record's position among the frame's `STREAM_QUOTES`
  records, then its polled answer as `QUOTE_COLUMNS` JSON, nothing when none was polled; at the
  tick cadence every snapshot repeats the same calls, so a call costs a few bytes instead of its
  key lists; the reader gives it back as the `STREAM_QUOTES` record it stands for),
  `TICK_BOOK_COLUMNS` (format 4: the session's tick book at the frame start, as ticker frames
  holding every instrument's last packet of each mode (`optui.collectors.tick_checkpoint`),
  packed as `TICK_COLUMNS` are; given back as `TICK_BOOK` with the frames' exact bytes: a
  replay starting at the frame applies it before any tick, one reading on from earlier frames
  skips it), `NOTICE` (format 5, JSON ``{"kind", "subject", "message"}``: a health line the
  live source said about its stream as it happened, on the exchange clock: a stall, a drop,
  a reconnect, a gap with its span, a bad frame skipped; a replay says it again when its clock
  passes it; format 6 adds ``"cycle": true`` NOTICE records: every health line of the stream
  a collection cycle said (the event lines again, the feed tier's changes, ticks of instruments
  not subscribed, a failed REST fallback, ...), recorded when the cycle took them, after its
  quote calls; a replay says each with the replayed cycle that answers those calls. From
  format 6 on, a stream event is recorded only as its cycle's line). Unknown kinds are skipped and counted by the reader. A packed record needs the
  records before it in its frame (`FrameCodecs`), so frames are read from their start (the
  index's seek points are frame starts).
- Beside each day file, ``YYYY-MM-DD.optrec.idx`` lists every frame (byte offset and the time
  of its first record, one ``offset time_us`` line per frame, ``offset time_us b`` when the
  session's tick book is whole at the frame start: it opens with the `TICK_BOOK_COLUMNS`
  checkpoint, or the session had recorded no tick before it) for seeking by time
  (`optui.collectors.record_index`).

Format versions: 1 wrote quotes as `QUOTE_COLUMNS`; 2 as `QUOTE_PACKED`, ticks as
`TICK_PACKED`; 3 ticks as `TICK_COLUMNS`; 4 writes repeated streamed calls as `STREAM_CALL` and
a tick-book checkpoint at each frame start; 5 adds `NOTICE` records (a reader of format 4
skips them as unknown kinds and replays the rest unchanged); 6 adds the cycle's notices (a
reader of format 5 says them when its clock passes them, as event lines, later by a cycle).
Every version is read.

A new record kind is a constant here and an entry in `KIND_NAMES` (the reader skips kinds not
named there, as unknown); a kind packed against the records before it in its frame also gets an
entry in `UNPACKERS` (and its state in `FrameCodecs`).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from optui.collectors.quote_columns import decode_quotes, encode_quotes
from optui.collectors.quote_pack import PackError, PackState, unpack_columns
from optui.collectors.tick_columns import (
    TickColumnsError,
    TickColumnsState,
    pack_frame_columns,
    unpack_frame_columns,
)
from optui.collectors.tick_pack import TickPackError, TickState, unpack_ticks
from optui.models import Instrument, SnapshotWarning, WarningKind

FORMAT_VERSION = 6
SUFFIX = ".optrec.zst"
INDEX_SUFFIX = ".optrec.idx"
FRAME_SPAN_S = 300.0
"""A new Zstandard frame (a seek point, opened by the session's tick-book checkpoint) every five
minutes of recorded time: a longer frame lets the compressor refer back to earlier cycles of the
same instruments, a shorter one bounds the ticks a seek reads. A full-chain day at the tick
cadence: 1 min frames 213 MB and a seek of 0.7 s of CPU at most, 5 min 176 MB and 3.4 s, 10 min
171 MB and 5.6 s (benchmarks/bench_recording.py)."""
FLUSH_S = 1.0
"""Compressed data reaches the file at least this often (seconds of real time)."""
LEVEL = 9
"""Zstandard level: about 270 KB per full-chain cycle of Kite JSON at 45 ms of CPU, against
350 KB at level 3; a full-chain day of packed full-mode ticks about 140 MB at under 1 % of a
core, against 152 MB at level 3 and 124 MB at level 19 for 2.5 % (benchmarks/bench_recording.py)."""

META, INSTRUMENTS, QUOTES, TICKS, QUOTE_COLUMNS, QUOTE_PACKED, TICK_PACKED = 1, 2, 3, 4, 5, 6, 7
STREAM_QUOTES = 8
TICK_COLUMNS = 10
STREAM_CALL, TICK_BOOK, TICK_BOOK_COLUMNS = 11, 12, 13
NOTICE = 14
KIND_NAMES = {META: "meta", INSTRUMENTS: "instruments", QUOTES: "quotes", TICKS: "ticks",
              QUOTE_COLUMNS: "quote columns", QUOTE_PACKED: "packed quotes",
              TICK_PACKED: "packed ticks", STREAM_QUOTES: "stream quotes",
              TICK_COLUMNS: "tick columns", STREAM_CALL: "stream call",
              TICK_BOOK: "tick book", TICK_BOOK_COLUMNS: "tick book columns",
              NOTICE: "notice"}
QUOTE_KINDS = (QUOTES, QUOTE_COLUMNS, QUOTE_PACKED, STREAM_QUOTES, STREAM_CALL)
_CALL_REF = struct.Struct("<I")
HEADER = struct.Struct("<BqI")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_PAYLOAD = 256 * 1024 * 1024


def _us(at: datetime) -> int:
    """Microseconds since the Unix epoch of an aware time. Raises ValueError when naive."""
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


def recorded_days(directory: Path) -> list[date]:
    """The days recorded under `directory`, oldest first."""
    out = []
    for p in directory.glob(f"*{SUFFIX}"):
        try:
            out.append(date.fromisoformat(p.name[: -len(SUFFIX)]))
        except ValueError:
            continue
    return sorted(out)


def _jsonable(value: object) -> str:
    """Kite's client returns datetimes; they are written as ISO text (IST, as Kite sends them)."""
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    raise TypeError(f"{type(value).__name__} is not recordable")


def encode_json(obj: object) -> bytes:
    """JSON bytes of a recorded answer; floats round-trip exactly (shortest repr), NaN as NaN."""
    return json.dumps(obj, default=_jsonable, separators=(",", ":")).encode()


_INSTRUMENT_FIELDS = tuple(f.name for f in fields(Instrument))
_instrument_values = attrgetter(*_INSTRUMENT_FIELDS)


def instrument_rows(instruments: Sequence[Instrument]) -> list[dict[str, Any]]:
    """The rows of an INSTRUMENTS record: each Instrument as a dict of its fields (what
    `dataclasses.asdict` gives, the expiry as ISO text), read with one C-level attribute
    getter per row. `asdict` deep-copies every value through Python calls: a simulated dump
    of 6,339 rows took 1.2 s of the recorder's start, this about 0.02 s (a Kite-sized dump of
    100,000 rows, seconds against a few tenths)."""
    iso: dict[date, str] = {}
    rows = []
    for values in map(_instrument_values, instruments):
        row = dict(zip(_INSTRUMENT_FIELDS, values, strict=True))
        expiry = row["expiry"]
        if expiry is not None:
            text = iso.get(expiry)
            if text is None:
                text = iso[expiry] = expiry.isoformat()
            row["expiry"] = text
        rows.append(row)
    return rows


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


@dataclass(frozen=True)
class StreamCall:
    """One quote call of a streaming source as recorded: the keys asked for, those answered
    from the ticks recorded before it (`stream`, instrument `tokens`), the `polled` answer."""

    keys: list[str]
    stream: list[str]
    tokens: list[int]
    polled: dict[str, dict]

    def shape(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
        return tuple(self.keys), tuple(self.stream), tuple(self.tokens)


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


def notice_payload(warning: SnapshotWarning, *, cycle: bool = False) -> bytes:
    """The payload of a NOTICE record: the health line as JSON, marked ``"cycle": true`` when
    a collection cycle said it (format 6)."""
    body: dict[str, Any] = {"kind": warning.kind.value, "subject": warning.subject,
                            "message": warning.message}
    if cycle:
        body["cycle"] = True
    return encode_json(body)


def is_cycle_notice(payload: Any) -> bool:
    """Whether a NOTICE record's decoded JSON is a line a collection cycle said (format 6)."""
    return isinstance(payload, dict) and payload.get("cycle") is True


def notice_from_record(payload: Any) -> SnapshotWarning:
    """The health line of a NOTICE record's decoded JSON. Raises ValueError, TypeError or
    KeyError on a malformed payload (an unknown warning kind is a ValueError)."""
    return SnapshotWarning(WarningKind(payload["kind"]), str(payload["subject"]),
                           str(payload["message"]))


class FrameCodecs:
    """What packed records refer back to within one Zstandard frame: the quote answers
    (`PackState`), format 2's tick words (`TickState`) and format 3's tick columns
    (`TickColumnsState`). Cleared at each frame start, by the writer and the reader alike."""

    def __init__(self) -> None:
        self.quotes = PackState()
        self.ticks_v2 = TickState()
        self.ticks = TickColumnsState()
        self.calls: list[Record] = []  # reading: the frame's STREAM_QUOTES records in order
        self.shapes: dict[tuple, int] = {}  # writing: each call shape's STREAM_QUOTES position

    def clear(self) -> None:
        """Forget everything (a new frame begins)."""
        self.quotes.clear()
        self.ticks_v2.clear()
        self.ticks.clear()
        self.calls.clear()
        self.shapes.clear()

    def pack(self, kind: int, payload: bytes) -> tuple[int, bytes]:
        """The (kind, payload) to write for a record: a well-formed tick frame packed as
        `TICK_COLUMNS` (a `TICK_BOOK` frame as `TICK_BOOK_COLUMNS`), anything else as it is."""
        if kind in (TICKS, TICK_BOOK):
            packed = pack_frame_columns(payload, self.ticks)
            if packed is not None:
                return (TICK_COLUMNS if kind == TICKS else TICK_BOOK_COLUMNS), packed
        return kind, payload

    def pack_call(self, call: StreamCall) -> tuple[int, bytes]:
        """The (kind, payload) of a streamed call: `STREAM_CALL` referring to the frame's
        earlier call of the same shape, else `STREAM_QUOTES` in full (and remembered)."""
        shape = call.shape()
        polled = encode_json(encode_quotes(call.polled)) if call.polled else b""
        ref = self.shapes.get(shape)
        if ref is not None:
            return STREAM_CALL, _CALL_REF.pack(ref) + polled
        self.shapes[shape] = len(self.shapes)
        body = {"keys": call.keys, "stream": call.stream, "tokens": call.tokens,
                **encode_quotes(call.polled)}
        return STREAM_QUOTES, encode_json(body)


def _unpack_quotes(rec: Record, codecs: FrameCodecs) -> Record:
    try:
        rec._body = unpack_columns(rec.payload, codecs.quotes)
    except PackError as exc:
        rec._body = exc  # raised again by json() and quotes()
    return rec


def _unpack_ticks_v2(rec: Record, codecs: FrameCodecs) -> Record:
    try:
        return Record(TICKS, rec.at_us, unpack_ticks(rec.payload, codecs.ticks_v2))
    except TickPackError as exc:
        rec._body = exc  # left packed: counted as a bad record by read_day
        return rec


def _unpack_ticks(rec: Record, codecs: FrameCodecs) -> Record:
    try:
        return Record(TICKS, rec.at_us, unpack_frame_columns(rec.payload, codecs.ticks))
    except TickColumnsError as exc:
        rec._body = exc
        return rec


def _unpack_book(rec: Record, codecs: FrameCodecs) -> Record:
    try:
        return Record(TICK_BOOK, rec.at_us, unpack_frame_columns(rec.payload, codecs.ticks))
    except TickColumnsError as exc:
        rec._body = exc
        return rec


def _keep_call(rec: Record, codecs: FrameCodecs) -> Record:
    codecs.calls.append(rec)  # later STREAM_CALL records of the frame refer to it
    return rec


def _unpack_call(rec: Record, codecs: FrameCodecs) -> Record:
    try:
        (ref,) = _CALL_REF.unpack_from(rec.payload, 0)
        if ref >= len(codecs.calls):
            raise ValueError(f"a streamed call refers to call {ref} of {len(codecs.calls)}")
        base = codecs.calls[ref].json()
        polled = rec.payload[_CALL_REF.size:]
        columns = json.loads(polled) if polled else encode_quotes({})
        if not isinstance(base, dict) or not isinstance(columns, dict):
            raise ValueError("a streamed call's answer is not an object")
        body = {"keys": base["keys"], "stream": base["stream"], "tokens": base["tokens"],
                **columns}
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        rec._body = ValueError(f"streamed call does not unpack: {exc}")
        return rec
    return Record(STREAM_QUOTES, rec.at_us, rec.payload, body)


UNPACKERS: dict[int, Callable[[Record, FrameCodecs], Record]] = {
    QUOTE_PACKED: _unpack_quotes, TICK_PACKED: _unpack_ticks_v2, TICK_COLUMNS: _unpack_ticks,
    TICK_BOOK_COLUMNS: _unpack_book, STREAM_QUOTES: _keep_call, STREAM_CALL: _unpack_call,
}
"""Per packed kind: the record as read, unpacked against the records before it in its frame."""
PACKED_TICKS = (TICK_PACKED, TICK_COLUMNS)
"""Kinds a tick frame is packed as: one still of such a kind after reading did not unpack."""
LEFT_PACKED = (*PACKED_TICKS, TICK_BOOK_COLUMNS, STREAM_CALL)
"""Kinds the reader unpacks into others: one still of such a kind after reading did not unpack
(a STREAM_CALL read without unpacking keeps its kind)."""
