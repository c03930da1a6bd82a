"""The per-day instrument dump cache: written atomically, checked before it is trusted.

File format: Kite's instrument CSV (`instruments.INSTRUMENT_COLUMNS`), UTF-8, LF, followed by one
trailer comment line `# optui-instruments rows=N` (comment lines are ignored by the CSV parser).
A file without the trailer, with a different row count, with bytes that are not UTF-8, with
malformed rows, or without options for an index configured on its exchange was cut short or
damaged: the caller fetches the dump again instead of collecting from a partial listing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from optui.collectors.instruments import instruments_to_csv, parse_instruments_csv
from optui.indices import INDEX_SPECS
from optui.models import Instrument

_TRAILER = re.compile(r"^# optui-instruments rows=(\d+)\s*$", re.MULTILINE)


def write_instrument_cache(path: Path, instruments: Iterable[Instrument]) -> None:
    """Write the cache via a temporary file, fsync and rename: readers see the old file or the whole new one.

    Raises OSError when the directory is not writable or the disk is full (the temporary file is removed).
    """
    rows = list(instruments)
    text = instruments_to_csv(rows) + f"# optui-instruments rows={len(rows)}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def read_instrument_cache(path: Path, indices: Sequence[str]) -> tuple[list[Instrument] | None, str]:
    """The cached instruments, or (None, why) when the file must not be trusted.

    `indices`: the configured indices whose options trade on this file's exchange; each must have
    at least one call and one put listed.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read it ({exc.strerror or exc})"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (bad byte at offset {exc.start})"
    trailer = _TRAILER.search(text)
    if trailer is None:
        return None, "incomplete (no end marker: cut short or written by an older version)"
    parsed = parse_instruments_csv(text, str(path))
    expected = int(trailer[1])
    if parsed.skipped or len(parsed.instruments) != expected or expected == 0:
        return None, (f"{len(parsed.instruments)} readable rows of {expected} "
                      f"({parsed.skipped} malformed{': ' + parsed.first_error if parsed.first_error else ''})")
    listed: dict[str, set[str]] = {}
    for inst in parsed.instruments:
        spec = INDEX_SPECS.get(inst.name)
        if spec is not None and inst.segment == spec.options_segment:
            listed.setdefault(inst.name, set()).add(inst.instrument_type)
    missing = [k for k in indices if not {"CE", "PE"} <= listed.get(k, set())]
    if missing:
        return None, f"no options listed for {', '.join(missing)}"
    return parsed.instruments, ""
