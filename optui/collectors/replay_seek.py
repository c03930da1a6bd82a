"""Seeking in a recorded day: where a replay from a later moment starts reading, which of the
records before it a seek must apply, and whether a quote call is recorded further on.

A replay from `--from` (or a dashboard jump) reads from `SEEK_BACK` before it, so every key a
collector quoted has its newest answer before the start and a streamed day's tick book holds
every instrument that ticked in that span; a polled day (every cycle quotes all its keys) from a
few intervals back, and a streamed day recorded with tick-book checkpoints (format 4) from the
last checkpoint at or before the start. Of the records read before the start only the newest
call of each key list is applied (`newest_per_call`): the same answers for a fraction of the
decoding.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from optui.collectors.recording import (
    QUOTE_KINDS,
    ReadHealth,
    Record,
    _from_us,
    _us,
    book_point,
    read_day,
)
from optui.collectors.stream_plan import is_spot_call

SEEK_DEDUPE = 50
"""A catch-up over more records than this (a seek) applies only the newest call of each key
list; a cycle's own catch-up applies every record."""

SEEK_BACK = timedelta(hours=1)
"""Reading starts this far before `--from`: the longest collection interval, so every key a
collector quoted has its newest answer before the start moment, and a streamed day's tick book
holds every instrument that ticked in the hour. A polled day (every cycle quotes all its keys)
may start reading from a few intervals back (`polled_seek_back_s`); a streamed day recorded with
tick-book checkpoints (format 4) from the last checkpoint at or before the start (every streamed
call carries its own polled answer, so only the book reaches back)."""


SPOT_CALL_SCAN = 64
"""Quote calls read from a session's start for its first call of index spots only."""


def keys_of(rec: Record) -> tuple[str, ...] | None:
    """The keys a quote record asked for; None for any other record or an unreadable one."""
    if rec.kind not in QUOTE_KINDS:
        return None
    try:
        return tuple(rec.json().get("keys") or ())
    except (ValueError, AttributeError):
        return None


def read_from(path: Path, begin: datetime, *, sought: bool, streamed: bool,
              polled_seek_back_s: float | None,
              span: tuple[int, int | None] | None) -> datetime:
    """Where a replay whose clock starts at `begin` reads the day file `path` (or its session
    `span`) from: `SEEK_BACK` before it; a polled day's `polled_seek_back_s` when shorter; with
    `sought` (a start asked for) on a streamed day, the last tick-book checkpoint at or before
    `begin` when it is later (an unreadable index leaves SEEK_BACK)."""
    back = SEEK_BACK
    if polled_seek_back_s is not None and not streamed:
        back = min(back, timedelta(seconds=polled_seek_back_s))
    since = begin - back
    if streamed and sought:
        try:
            point = book_point(path, _us(begin), span)
        except OSError:
            point = None
        if point is not None:
            since = max(since, _from_us(point))
    return since


def call_after(path: Path, at_us: int, span: tuple[int, int | None] | None) -> int | None:
    """When the file (or its session `span`) records its first quote call after `at_us` (µs),
    or None: the frames from there on are read without unpacking or keeping them. Raises
    OSError when the file cannot be read."""
    for rec in read_day(path, _from_us(at_us), ReadHealth(), unpack=False, span=span):
        if rec.kind in QUOTE_KINDS and rec.at_us > at_us:
            return rec.at_us
    return None


def first_spot_call(path: Path, span: tuple[int, int | None] | None) -> tuple[str, ...]:
    """The keys of the first call of index spots only among the first `SPOT_CALL_SCAN` quote
    calls of the file (or its session `span`); () when there is none. A streamed call's keys
    are read without unpacking the frame's ticks, a packed (polled) answer's only with them.
    Raises OSError when the file cannot be read."""
    for unpack in (False, True):
        calls = 0
        for rec in read_day(path, None, ReadHealth(), unpack=unpack, span=span):
            if rec.kind not in QUOTE_KINDS:
                continue
            calls += 1
            asked = keys_of(rec) or ()
            if is_spot_call(asked):
                return asked
            if calls >= SPOT_CALL_SCAN:
                break
    return ()


def newest_per_call(records: list[Record],
                    keys: Callable[[Record], tuple[str, ...] | None] = keys_of) -> list[Record]:
    """`records` in order without the quote calls a later call of the same keys supersedes.
    Applying these gives every key the same newest answer as applying all (each key's newest
    answer is in the newest call of its key list), without decoding the rest: a seek (start
    or jump far into a day) costs the distinct calls, not the hour before it."""
    last: dict[tuple[str, ...], int] = {}
    for i, rec in enumerate(records):
        asked = keys(rec)
        if asked is not None:
            last[asked] = i
    keep = set(last.values())
    return [rec for i, rec in enumerate(records)
            if i in keep or rec.kind not in QUOTE_KINDS or keys(rec) is None]


__all__ = ["SEEK_BACK", "SEEK_DEDUPE", "SPOT_CALL_SCAN", "call_after", "first_spot_call", "keys_of",
           "newest_per_call", "read_from"]
