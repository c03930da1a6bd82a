"""Session recordings: every answer a market source gives, in compressed append-only day files.

The parts: `optui.collectors.record_format` (the file format, record kinds, per-frame packing),
`optui.collectors.record_writer` (Recorder, RecordingSource), `optui.collectors.record_reader`
(read_day, ReadHealth, the repair of a cut tail) and `optui.collectors.record_index` (the frame
index for seeking). This module gathers their public names for the collector, the replay and
the CLI.
"""

from __future__ import annotations

from optui.collectors.record_format import (
    FLUSH_S,
    FORMAT_VERSION,
    FRAME_SPAN_S,
    HEADER,
    INDEX_SUFFIX,
    INSTRUMENTS,
    KIND_NAMES,
    LEFT_PACKED,
    LEVEL,
    MAX_PAYLOAD,
    META,
    NOTICE,
    PACKED_TICKS,
    QUOTE_COLUMNS,
    QUOTE_KINDS,
    QUOTE_PACKED,
    QUOTES,
    STREAM_CALL,
    STREAM_QUOTES,
    SUFFIX,
    TICK_BOOK,
    TICK_BOOK_COLUMNS,
    TICK_COLUMNS,
    TICK_PACKED,
    TICKS,
    UNPACKERS,
    ZSTD_MAGIC,
    FrameCodecs,
    Record,
    StreamCall,
    _from_us,
    _jsonable,
    _us,
    day_path,
    encode_json,
    index_path,
    instruments_from_record,
    is_cycle_notice,
    notice_from_record,
    notice_payload,
    recorded_days,
    recordings_dir,
)
from optui.collectors.record_index import book_point, frame_offsets, read_index, scan_frames
from optui.collectors.record_reader import (
    ReadHealth,
    _decode_frame,
    _parse_records,
    read_day,
    repair_tail,
)
from optui.collectors.record_writer import (
    DayWriter,
    Recorder,
    RecordingBusy,
    RecordingSource,
    make_recorder,
    record_said,
    with_recording,
)

__all__ = [
    "FLUSH_S", "FORMAT_VERSION", "FRAME_SPAN_S", "HEADER", "INDEX_SUFFIX", "INSTRUMENTS",
    "KIND_NAMES", "LEFT_PACKED", "LEVEL", "MAX_PAYLOAD", "META", "NOTICE", "PACKED_TICKS", "QUOTES",
    "QUOTE_COLUMNS", "QUOTE_KINDS", "QUOTE_PACKED", "STREAM_CALL", "STREAM_QUOTES", "SUFFIX",
    "TICKS", "TICK_BOOK", "TICK_BOOK_COLUMNS", "TICK_COLUMNS", "TICK_PACKED", "UNPACKERS",
    "ZSTD_MAGIC", "DayWriter", "FrameCodecs", "ReadHealth", "Record", "Recorder",
    "RecordingBusy", "RecordingSource", "StreamCall", "_decode_frame", "_from_us", "_jsonable",
    "_parse_records", "_us", "book_point", "day_path", "encode_json", "frame_offsets",
    "index_path", "instruments_from_record", "is_cycle_notice", "make_recorder",
    "notice_from_record",
    "notice_payload", "read_day", "read_index",
    "record_said", "recorded_days", "recordings_dir", "repair_tail", "scan_frames", "with_recording",
]
