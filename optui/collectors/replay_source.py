"""A recorded day played back as a market source: the replayed clock, the recorded answers.

The clock starts at `--from` (or the day's first record) and runs `speed` times real time, or,
with no speed, only when the collector waits (as fast as the machine allows). A quote call at
replay time t is answered from the recorded answers asked for at or before t (the newest
recorded quote of each key). A cycle's later calls are recorded a little after its first one
(Kite serves one call a second), so a call whose exact key list is the next recorded call for
those keys within `lookahead_s` is answered from that call, and the replayed clock moves on to
the moment the live run asked it: the replay asks what the live run asked, gets what it got,
and its next cycle falls where the live run's did. A call the live run did not make at that
moment is answered by its next call when that is the next one recorded (the live run's cycle
fell later); when the live cycle never made it (it failed, or the file is cut there), the call
fails with NetworkError, as the live cycle did, and nothing stale is stored.

A streamed day replays through the same parser and book as the live run: every recorded tick
frame (TICKS) is parsed (optui.tick_packets) into a TickBook in file order, and a recorded
streamed call (STREAM_QUOTES) is answered from that book for the keys the live run answered
from its ticks, and from the recorded polled answer for the rest. A malformed frame is skipped
and counted in health, as live. The frames and calls also drive the same per-trade flow
(optui.collectors.tick_flow.TickFlow) in the same order, so the streamed legs' flow is the live
run's. A replay of a streamed day from a later moment reads from the last tick-book checkpoint
before it (format 4: TICK_BOOK frames of every instrument's last packets open each frame of the
file) instead of the hour before it; the checkpoint is applied only when no tick was read before
it. A day collected at the tick cadence (its META records `snapshot_s`) is replayed at the
recorded snapshot points: `wait_snapshot` moves the replayed clock to the next recorded call of
the index spots, so each snapshot falls at the frame position the live one did.

Where a later start reads from and which records a seek applies are
optui.collectors.replay_seek's; the health lines the replay says (the live run's recorded
notices, the file's own) are optui.collectors.replay_notices'.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from optui.collectors.quote_table import QuoteTable
from optui.collectors.recording import (
    INSTRUMENTS,
    META,
    NOTICE,
    QUOTE_KINDS,
    STREAM_CALL,
    STREAM_QUOTES,
    TICK_BOOK,
    TICKS,
    ReadHealth,
    Record,
    _from_us,
    _us,
    day_path,
    instruments_from_record,
    read_day,
)
from optui.collectors.replay_answers import RecordedAnswers, kept_rows
from optui.collectors.replay_notices import ReplayNotices
from optui.collectors.replay_seek import (
    SEEK_BACK,
    SEEK_DEDUPE,
    call_after,
    first_spot_call,
    keys_of,
    newest_per_call,
    read_from,
)
from optui.collectors.source import (
    MAX_QUOTE_INSTRUMENTS,
    MarketSource,
    exchange_time,
    quote_from_kite,
)
from optui.collectors.stream_plan import is_spot_call
from optui.collectors.tick_book import TickBook
from optui.collectors.tick_flow import FlowTable, TickFlow
from optui.errors import BadInputError, ConfigError, NetworkError
from optui.indices import INDEX_SPECS
from optui.models import Instrument, SnapshotWarning
from optui.tick_packets import FrameError, parse_frame
from optui.timeutil import IST, UTC

log = logging.getLogger(__name__)

@dataclass
class SeenQuotes:
    """What a stretch of the recording answered, by instrument token: the OI of the first
    answer (`first`) and the last answer as (cycle moment in epoch seconds, Kite quote)."""

    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, tuple[float, dict]] = field(default_factory=dict)


class ReplaySource(MarketSource):
    """MarketSource over one recorded day file. Raises ConfigError when the file is missing
    or holds no quotes."""

    label = "REPLAY"

    def __init__(self, path: Path, speed: float | None = None, start: datetime | None = None,
                 lookahead_s: float = 25.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 polled_seek_back_s: float | None = None,
                 span: tuple[int, int | None] | None = None) -> None:
        if not path.exists():
            raise ConfigError(f"no recording {path}: record a day with `optui collect` first "
                              "(record.enabled = true)")
        if speed is not None and not speed > 0:
            raise ConfigError(f"--speed {speed}: must be above 0")
        self.path = path
        self.span = span  # one session of a day recorded by several (record_sessions)
        self.speed = speed
        self.lookahead_us = int(lookahead_s * 1e6)
        self.health = ReadHealth()
        self._mono = monotonic
        self.name = "replay"
        self._instruments: list[Instrument] = []
        self._answers = RecordedAnswers()
        self._fresh: set[tuple[str, ...]] = set()  # key lists recorded and not yet answered
        self._asked: set[tuple[str, ...]] = set()  # key lists the recording has answered
        self._fresh_us: dict[tuple[str, ...], int] = {}  # when each fresh key list was recorded
        self._pending: list[Record] = []  # read ahead, not yet applied, in file order
        self.book = TickBook()
        self.flow = TickFlow()
        self.snapshot_s: float | None = None  # the live run's tick cadence (META), if any
        self.bad_tick_frames = 0
        self.notices = ReplayNotices(path, self.health)
        self._fed: list[int] | None = None  # quotes streamed, polled since take_feed (streamed days)
        self.streamed = False  # the day's first quote call was answered from the ticker
        self._next_call_us: int | None = None  # a quote call known to be recorded later on
        try:
            first = self._scan_head()
        except OSError as exc:
            raise ConfigError(f"cannot read the recording {path}: {exc.strerror or exc}") from None
        # A start before the recording begins waits for nothing: the replay starts with it.
        begin = max(start.astimezone(UTC), first) if start is not None else first
        since = read_from(path, begin, sought=start is not None, streamed=self.streamed,
                          polled_seek_back_s=polled_seek_back_s, span=span)
        self._booked = False  # a tick or a tick-book checkpoint has been applied
        self._records: Iterator[Record] = read_day(path, since, self.health, span=span)
        self._done = False
        self._t0_us = _us(begin)
        self.notices.begin_us = self._t0_us  # notices recorded before it are not said
        self._mono0 = monotonic()
        self._virtual_us = self._t0_us
        self._skew_us = 0  # at a set speed: how far answers taken ahead moved the clock on
        self.last_us = self._t0_us
        self.last_call_us = self._t0_us  # the last recorded quote call read so far

    def _scan_head(self) -> datetime:
        """The source name, the first instrument dump and the first quote time of the day."""
        head = ReadHealth()
        first: datetime | None = None
        for rec in read_day(self.path, None, head, unpack=False, span=self.span):
            if rec.kind == META and self.name == "replay":
                try:
                    meta = rec.json()
                    self.name = str(meta.get("source") or "replay")
                    self.notices.recorded_by(int(meta.get("format") or 0))
                    cadence = meta.get("snapshot_s")
                    self.snapshot_s = float(cadence) if isinstance(cadence, int | float) else None
                except (ValueError, TypeError, AttributeError):
                    head.bad_frames += 1
            elif rec.kind == INSTRUMENTS and not self._instruments:
                try:
                    self._instruments, self.dump_warnings = instruments_from_record(rec.json())
                except (ValueError, TypeError, AttributeError, KeyError):
                    head.bad_frames += 1
            elif rec.kind in QUOTE_KINDS and first is None:
                first = rec.at
                self.streamed = rec.kind in (STREAM_QUOTES, STREAM_CALL)
            if first is not None and self._instruments:
                break
        if first is None:
            raise ConfigError(f"recording {self.path.name} holds no quotes to replay")
        return first

    # -- the clock -----------------------------------------------------------------------------

    def recorded_indices(self) -> list[str]:
        """The indices the recorded session collected, in its order: those whose spot is in its
        first call of index spots only (a cycle asks the spots first; a capture of closing OI
        before the open may ask options before it); empty when none is found among its first
        quote calls or the file cannot be read there."""
        try:
            keys = first_spot_call(self.path, self.span)
        except OSError:
            return []
        if not keys:
            return []
        by_spot = {spec.spot_symbol: key for key, spec in INDEX_SPECS.items()}
        return [by_spot[k] for k in keys]

    def now(self) -> datetime:
        """The replayed clock (aware UTC)."""
        if self.speed is None:
            us = self._virtual_us
        else:
            us = self._t0_us + self._skew_us + int((self._mono() - self._mono0) * self.speed * 1e6)
        return datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)

    def advance(self, exchange_seconds: float) -> None:
        """As fast as possible: the collector's wait moves the replayed clock by that much."""
        if self.speed is None:
            self._virtual_us += max(int(exchange_seconds * 1e6), 0)

    def real_seconds(self, exchange_seconds: float) -> float:
        return exchange_seconds / self.speed if self.speed else exchange_seconds

    @property
    def judges_slow_cycles(self) -> bool:
        return False

    @property
    def finished(self) -> bool:
        """The clock has passed the last recorded quote call (no later one is in the file).

        Ticker frames recorded after it (a streamed collector records until it stops, which
        may be past its next cycle's mark) answer no cycle: they do not hold the replay open."""
        now = _us(self.now())
        self._fill(now + self.lookahead_us)
        if now <= self.last_call_us or any(rec.kind in QUOTE_KINDS for rec in self._pending):
            return False
        # Past every call read so far: finished unless the file records another one further on
        # (a live run that stopped collecting for a while; the ticks it recorded meanwhile, or
        # after its last cycle, answer no cycle).
        return not self._call_after(now)

    def _call_after(self, at_us: int) -> bool:
        """Whether the file records a quote call after `at_us`: its frames from there on are
        read without unpacking or keeping them; a call found is remembered."""
        if self._next_call_us is not None and self._next_call_us > at_us:
            return True
        try:
            found = call_after(self.path, at_us, self.span)
        except OSError:
            return False
        if found is not None:
            self._next_call_us = found
        return found is not None

    # -- the answers ---------------------------------------------------------------------------

    def _read_one(self) -> bool:
        """Read the next record into the pending list; False at the end of the file."""
        if self._done:
            return False
        try:
            rec = next(self._records)
        except StopIteration:
            self._done = True
            return False
        except OSError as exc:
            self._done = True
            self.health.notes.append(f"replay {self.path.name}: cannot read on ({exc})")
            return False
        self.last_us = max(self.last_us, rec.at_us)
        if rec.kind in QUOTE_KINDS:
            self.last_call_us = max(self.last_call_us, rec.at_us)
        self._pending.append(rec)
        return True

    def _fill(self, until_us: int) -> None:
        """Read ahead records up to `until_us` into the pending list."""
        while (not self._pending or self._pending[-1].at_us <= until_us) and self._read_one():
            pass

    def _scan(self, start: int, until_us: int, match: Callable[[Record], bool]) -> int | None:
        """Position in the pending list of the next record that `match`es, recorded no later
        than `until_us`, reading ahead as needed; None past `until_us` or the end."""
        i = start
        while True:
            if i >= len(self._pending) and not self._read_one():
                return None
            rec = self._pending[i]
            if rec.at_us > until_us:
                return None
            if match(rec):
                return i
            i += 1

    def _next_call(self, wanted: tuple[str, ...], start: int, until_us: int) -> int | None:
        """The next recorded call for exactly `wanted`, asked no later than `until_us`."""
        return self._scan(start, until_us, lambda rec: keys_of(rec) == wanted)

    def _first_call(self, start: int, until_us: int) -> int | None:
        """The next recorded quote call, whatever its keys, up to `until_us`."""
        return self._scan(start, until_us, lambda rec: rec.kind in QUOTE_KINDS)

    def unanswered(self, keys: Sequence[str], before: datetime) -> bool:
        """Whether the live run asked exactly `keys` before `before` in a call this replay has
        not answered yet (reading ahead as needed)."""
        wanted, before_us = tuple(keys), _us(before)
        return wanted in self._fresh or self._scan(
            0, before_us - 1, lambda rec: keys_of(rec) == wanted) is not None

    def next_call_at(self, keys: Sequence[str], after: datetime) -> datetime | None:
        """When the live run next asked exactly `keys` at or after `after` (reading ahead as
        needed), or None when the recording holds no such call."""
        wanted, after_us = tuple(keys), _us(after)
        found = self._scan(0, 2**62, lambda rec: rec.at_us >= after_us
                           and keys_of(rec) == wanted)
        return None if found is None else self._pending[found].at

    def _apply(self, rec: Record) -> list[str] | None:
        """Apply one record; a quote call's answered keys are returned (`_answers` gives each
        one's quote as the call answered it)."""
        if rec.kind == TICK_BOOK and self._booked:
            return None  # the book already holds what the checkpoint says (read from earlier)
        if rec.kind in (TICKS, TICK_BOOK):
            self._booked = True
            try:
                batch = parse_frame(rec.payload)
                self.book.add(batch)
                self.flow.fold(batch)
            except FrameError:
                self.bad_tick_frames += 1  # as live: the frame is skipped, the rest goes on
            return None
        if rec.kind in QUOTE_KINDS:
            try:
                keys, data = rec.quotes()
                booked: dict[str, tuple[TickBook, int]] = {}
                if rec.kind == STREAM_QUOTES:
                    body = rec.json()
                    self.flow.answered([int(t) for t in body["tokens"]], data)  # as live
                    booked = self._streamed(body)
            except (ValueError, TypeError, KeyError):
                self.health.bad_frames += 1
                return None
            answered = self._answers.record(data, booked)
            self._fresh.add(tuple(keys))
            self._fresh_us[tuple(keys)] = rec.at_us
            self._asked.add(tuple(keys))
            return answered
        if rec.kind == INSTRUMENTS:
            try:
                self._instruments, self.dump_warnings = instruments_from_record(rec.json())
            except (ValueError, TypeError, AttributeError, KeyError):
                self.health.bad_frames += 1
        if rec.kind == NOTICE:
            self.notices.passed(rec)
        elif rec.kind == META:  # a later session of the day, maybe by another build
            try:
                self.notices.recorded_by(int(rec.json().get("format") or 0))
            except (ValueError, TypeError, AttributeError):
                self.health.bad_frames += 1
        return None

    def read_through(self, until: datetime, spot_keys: Collection[str]) -> SeenQuotes:
        """Apply every record up to `until` in file order (each one, no seek shortcut) and
        gather what a live collector met of each instrument token in that span: the OI of the
        first answer that held it (`first`), and its last answer with the moment of the cycle
        that asked it (`last`: the newest stamp on the index quotes of the cycle's call for
        `spot_keys`, as optui.collectors.source.exchange_time, else the call's time)."""
        until_us = _us(until)
        seen = SeenQuotes()
        spots = set(spot_keys)
        cycle_at = 0.0
        i = 0
        while (i < len(self._pending) or self._read_one()) and self._pending[i].at_us <= until_us:
            rec = self._pending[i]
            answered = self._apply(rec)
            i += 1
            if not answered:
                continue
            data = {k: q for k in answered if (q := self._answers.quote(k)) is not None}
            if spots and spots.issuperset(data):
                moment = exchange_time(quote_from_kite(q) for q in data.values())
                cycle_at = moment.timestamp() if moment is not None else rec.at_us / 1e6
                continue
            for quote in data.values():
                token, oi = quote.get("instrument_token"), quote.get("oi")
                if not isinstance(token, int):
                    continue
                if isinstance(oi, int | float) and token not in seen.first:
                    seen.first[token] = float(oi)
                seen.last[token] = (cycle_at or rec.at_us / 1e6, quote)
        del self._pending[:i]
        return seen

    def run_at(self, speed: float | None) -> None:
        """From the current replayed moment on, run the clock at `speed` times real time (None:
        only when `advance` moves it)."""
        if speed is not None and not speed > 0:
            raise ConfigError(f"--speed {speed}: must be above 0")
        now = _us(self.now())
        self.speed = speed
        self._t0_us, self._virtual_us, self._skew_us = now, now, 0
        self._mono0 = self._mono()

    def rearm_notices(self) -> None:
        """Say the file's health lines (cut, skipped frames) again with the next cycle: the
        cycles that took them were not shown (a replay primed before its start)."""
        self.notices.rearm()

    def _streamed(self, body: dict) -> dict[str, tuple[TickBook, int]]:
        """The answers a STREAM_QUOTES record took from the ticks, as live: the book's rows of
        its streamed keys that ticked, kept as they are now (key -> (the kept rows, token))."""
        stream, tokens = list(body["stream"]), [int(t) for t in body["tokens"]]
        if len(stream) != len(tokens):
            raise ValueError("stream keys and tokens differ in length")
        out = kept_rows(self.book, stream, tokens)
        if self._fed is None:
            self._fed = [0, 0]
        if not is_spot_call(body["keys"]):  # counted as the live source counted them
            self._fed[0] += len(stream)
            self._fed[1] += len(body["keys"]) - len(stream)
        return out

    def take_tick_flow(self) -> FlowTable:
        """The per-trade flow of the legs the replayed calls answered from ticks (see
        optui.collectors.stream_source.StreamingSource.take_tick_flow)."""
        return self.flow.take_table()

    def next_snapshot_at(self) -> datetime | None:
        """At a recorded tick cadence, when the live run made its next call of the index spots
        (its next snapshot); None otherwise or at the end of the recording."""
        from optui.collectors.stream_plan import is_spot_call

        if self.snapshot_s is None:
            return None

        def spot_call(rec: Record) -> bool:
            keys = keys_of(rec)
            return keys is not None and is_spot_call(keys)

        found = self._scan(0, 2**62, spot_call)
        return None if found is None else _from_us(self._pending[found].at_us)

    def wait_snapshot(self, after: datetime, timeout_s: float,
                      stop: threading.Event | None = None) -> datetime | None:
        """At a recorded tick cadence: the replayed clock moves to the next recorded call of
        the index spots (the live run's next snapshot; at a set speed after the real time
        that takes) and that moment is returned; None when the day was not collected at the
        tick cadence, the recording holds no further snapshot, or `stop` is set."""
        due = self.next_snapshot_at()
        if due is None:
            return None
        target = _us(due)
        now = _us(self.now())
        if target > now:
            if self.speed is None:
                self._virtual_us += target - now
            elif stop is not None:
                if stop.wait((target - now) / 1e6 / self.speed):
                    return None
            else:
                time.sleep((target - now) / 1e6 / self.speed)
        return datetime.fromtimestamp(target / 1e6, UTC)

    def take_feed(self) -> tuple[str, int, int]:
        """(tier, quotes streamed, quotes polled) of the replayed calls since the last call, as
        the live streaming source reported them; ("", 0, 0) for a day polled over REST only."""
        from optui.collectors.stream_plan import feed_tier

        if self._fed is None:
            return "", 0, 0
        streamed, polled = self._fed
        self._fed = [0, 0]
        return feed_tier(streamed, polled), streamed, polled

    def _catch_up(self, at_us: int, keys: Sequence[str] | None = None) -> None:
        """Apply every answer asked for at or before `at_us`. With `keys`: also the next
        recorded call for exactly those keys within the look-ahead (and all before it); and
        when the live run made no call for them since the last one answered (it did not
        collect at this moment), its next call for them, wherever it is within an hour. An
        answer taken ahead moves the replayed clock to when the live run asked it."""
        self._fill(at_us + self.lookahead_us)
        cut = 0
        while cut < len(self._pending) and self._pending[cut].at_us <= at_us:
            cut += 1
        if keys is not None:
            wanted = tuple(keys)
            fresh = wanted in self._fresh or any(
                keys_of(rec) == wanted for rec in self._pending[:cut])
            found = None if fresh else self._next_call(wanted, cut, at_us + self.lookahead_us)
            if found is None and not fresh:
                nxt = self._first_call(cut, at_us + int(SEEK_BACK.total_seconds() * 1e6))
                if nxt is not None and keys_of(self._pending[nxt]) == wanted:
                    found = nxt
                elif wanted in self._asked:
                    self._drop_past(cut)  # what was recorded before now is past either way
                    raise NetworkError(
                        f"replay: the recording holds no answer for this call of {len(wanted)} "
                        f"instruments at {datetime.fromtimestamp(at_us / 1e6, IST):%H:%M:%S} IST "
                        "(the recorded cycle did not complete"
                        + (", the file is cut there)" if self.health.cut else ")"))
            if found is not None:
                cut = found + 1
        due = self._pending[:cut]
        for rec in newest_per_call(due) if len(due) > SEEK_DEDUPE else due:
            self._apply(rec)
        if cut and self._pending[cut - 1].at_us > at_us:
            # The live run asked for it later (its cycle took that long): the replayed clock
            # moves on to that moment, so the next cycle falls where the live run's did.
            ahead = self._pending[cut - 1].at_us - at_us
            if self.speed is None:
                self._virtual_us += ahead
            else:
                self._skew_us += ahead
        del self._pending[:cut]

    def _drop_past(self, cut: int) -> None:
        """Apply and drop the first `cut` pending records (recorded before the replayed now)."""
        for rec in self._pending[:cut]:
            self._apply(rec)
        del self._pending[:cut]

    def instruments(self) -> list[Instrument]:
        self._catch_up(_us(self.now()))
        return list(self._instruments)

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        self._call(keys)
        return {k: q for k in keys if (q := self._answers.quote(k)) is not None}

    def quote_tables(self, batches: Sequence[Sequence[str]]) -> list[QuoteTable]:
        """`quote_batch` for each batch, in order, answered as columns (as the live streaming
        source answers them): a streamed answer straight from the rows the recorded call was
        answered with (optui.collectors.tick_book.TickBook.quote_table, no dict per
        instrument), a polled one through `quote_from_kite`, field for field the same."""
        out = []
        for batch in batches:
            keys = list(dict.fromkeys(batch))
            if len(keys) > MAX_QUOTE_INSTRUMENTS:
                return super().quote_tables(batches)
            self._call(keys)
            out.append(self._answers.table(batch))
        return out

    def _call(self, keys: Sequence[str]) -> None:
        """Answer one quote call of `keys`: the recorded answers up to the call are applied
        (see `_catch_up`). Raises BadInputError (too many keys) and NetworkError (the live
        cycle never made the call)."""
        if len(keys) > MAX_QUOTE_INSTRUMENTS:
            raise BadInputError(f"{len(keys)} instruments in one quote call: Kite allows {MAX_QUOTE_INSTRUMENTS}")
        self._catch_up(_us(self.now()), keys)
        wanted = tuple(keys)
        self._fresh.discard(wanted)  # each recorded call answers one replayed call
        if is_spot_call(wanted) and wanted in self._fresh_us:
            # A cycle begins: the calls recorded before its spot call belong to earlier cycles
            # (ones this replay did not run: a seek, or cycles between the schedule's slots), so
            # the cycle's later calls are answered by the calls recorded after it, as live.
            began = self._fresh_us[wanted]
            self._fresh = {k for k in self._fresh if self._fresh_us.get(k, began) >= began}

    def take_notices(self) -> list[SnapshotWarning]:
        """Health lines not yet reported, each said once: the live source's recorded notices
        the replayed clock has passed (in their recorded words and kind), then the file's (a
        cut file, skipped frames). Malformed tick frames are counted here only for a day
        recorded before format 5 (from it on the live run's own line says each one)."""
        self._read_cycle_notices()
        return self.notices.take(self.bad_tick_frames)

    def _read_cycle_notices(self) -> None:
        """Pass the notices the live run's cycle said after the calls answered so far (format
        6: recorded before its next quote call, within the look-ahead of the replayed clock),
        so they are said with the replayed cycle that made the same calls; the other records
        stay pending in order."""
        if not self.notices.cycle_said:
            return
        limit = _us(self.now()) + self.lookahead_us
        i = 0
        while i < len(self._pending) or self._read_one():
            rec = self._pending[i]
            if rec.kind in QUOTE_KINDS or rec.at_us > limit:
                return
            if rec.kind == NOTICE:
                self.notices.passed(rec)
                del self._pending[i]
            else:
                i += 1


def replay_path(directory: Path, day: date) -> Path:
    """The recording of `day` under a recordings directory."""
    return day_path(directory, day)


def replay_start(day: date, hhmm: str | None) -> datetime | None:
    """`--from HH:MM` on the replayed day (IST), or None (from the first record)."""
    if not hhmm:
        return None
    try:
        parsed = datetime.strptime(hhmm.strip(), "%H:%M").time()
    except ValueError:
        raise ConfigError(f"--from {hhmm!r}: use HH:MM (IST)") from None
    return datetime.combine(day, parsed, tzinfo=IST)
