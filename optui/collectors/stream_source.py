"""The WebSocket ticker as the engine's primary quote path, REST polling as the fallback tier.

`StreamingSource` wraps a polling MarketSource (Kite's REST API, or the in-process simulator with
its ticker served on a loopback port) and a `TickerSource` (optui.collectors.ticker_source):

- Each cycle the engine hands it the chain plan (`follow_plan`); it subscribes the index spots
  and every planned leg, nearest the money first when more are planned than `capacity` (Kite:
  3 connections x 3,000 instruments), all in `full` mode: every leg the analytics read needs OI
  (PCR, max pain, OI change) and the best bid and ask (the premium-flow mid), and only a full
  index packet carries an exchange timestamp. A changed plan (an expiry rolls, a window follows
  the money) subscribes only the new and unsubscribes the gone.
- The cycle's first call, the index spots, dates the cycle. At the tick cadence
  (`snapshot_s` set: the collector takes a snapshot when the index ticks of a new exchange
  second arrive, `wait_snapshot`) it is answered from the index ticks while they stream, so no
  REST call is made per snapshot (Kite's one quote call a second stays free for the fallback
  tier); otherwise, and whenever the index ticks are not live, it is one REST call (with the
  ticks answering when REST fails).
- Premium flow of the streamed legs is measured per trade from the full ticks
  (optui.collectors.tick_flow.TickFlow, fed on the event-loop thread with the book); `take_tick_flow`
  gives the engine the flow of the legs streamed since its previous call.
- Ticks fold into a TickBook (optui.collectors.tick_book) on the ticker's event-loop thread. A
  quote call is answered from the book for instruments subscribed and ticking on a connection
  that is up; the rest (no tick yet, beyond the streamed limit, a connection down, stalled or
  refused) are polled from the wrapped source in the same call (a batch answered whole keeps
  its per-key lookups between cycles: optui.collectors.batch_lookup). The tier each cycle used
  is `take_feed()`: "stream", "stream+rest" or "rest-fallback".
- Drops, stalls, gaps, bad frames, exchange error frames and ticks of instruments not
  subscribed become health lines (`take_notices`); a gap is reported for the time a connection
  was down, never filled in.
- With a Recorder, every binary frame is recorded as received, and each answered call as one
  STREAM_QUOTES record (the keys answered from the ticks recorded before it, and the polled
  answer), both written on the event-loop thread in the order the book saw them, so a replay
  through the same parser and book answers every call with the same values; the health lines
  a cycle says are recorded with it (record_writer.record_said), so a replay says them again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from optui.collectors.batch_lookup import BatchLookups, fresh_shards, mode_codes
from optui.collectors.source import MarketSource
from optui.collectors.stream_plan import feed_tier, feed_tier_line, is_spot_call, stream_modes
from optui.collectors.tick_book import TickBook
from optui.collectors.tick_flow import INDEX_SEGMENT, FlowTable, TickFlow
from optui.collectors.ticker_source import (
    MAX_CONNECTIONS,
    MAX_PER_CONNECTION,
    FrameSkipped,
    TickerAuthFailed,
    TickerConnected,
    TickerDisconnected,
    TickerEvent,
    TickerGap,
    TickerSource,
    TickerStalled,
    health_line,
)
from optui.collectors.wrapped_source import WrappedSource
from optui.errors import SourceError, TokenExpiredError
from optui.models import Instrument, Quote, SnapshotWarning, WarningKind
from optui.tick_packets import TickBatch

if TYPE_CHECKING:
    from optui.collectors.chain_plan import BucketPlan
    from optui.collectors.quote_table import QuoteTable
    from optui.collectors.recording import Recorder

log = logging.getLogger(__name__)

MAX_TICK_AGE_S = 3.0
"""A connection whose newest tick is older than this (exchange seconds) at a quote call is
polled instead: Kite sends a frame about every second while anything on it changes."""

COALESCE_S = 0.05
"""At the tick cadence, how long (real seconds) a snapshot waits, after the first index tick of
a new exchange second, for the other connections' frames of that second."""


class StreamingSource(WrappedSource):
    """`rest` answered from Kite's WebSocket ticker where it can (see the module docstring).

    `api_key`/`access_token`/`root`: the ticker's login and URL. `server`: an object with a
    `close()` serving the ticker (the in-process simulator's), closed with the source.
    `max_age_s`: a connection's ticks answer only while its newest tick is at most this many
    exchange seconds old. `snapshot_s`: the tick cadence in exchange seconds (None: the
    collector's interval, spots polled per cycle).
    Raises nothing at construction; the ticker starts on the first `follow_plan`.
    """

    _OWN = (*WrappedSource._OWN, "rest")

    def __init__(self, rest: MarketSource, api_key: str, access_token: str, root: str,
                 recorder: Recorder | None = None,
                 capacity: int = MAX_CONNECTIONS * MAX_PER_CONNECTION,
                 stall_after_s: float = 10.0, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, server: Any = None,
                 max_age_s: float = MAX_TICK_AGE_S, snapshot_s: float | None = None) -> None:
        super().__init__(rest)
        self.rest = rest  # the polled tier: `inner` by its role here
        self.recorder = recorder
        self.capacity = int(capacity)
        self._api_key = api_key
        self._token = access_token
        self._root = root
        self._ticker_kw = {"stall_after_s": stall_after_s, "backoff_base_s": backoff_base_s,
                           "backoff_max_s": backoff_max_s}
        self._server = server
        self.max_age_s = float(max_age_s)
        self.book = TickBook()
        self.flow = TickFlow()
        self.snapshot_s = snapshot_s
        if recorder is not None and snapshot_s is not None:  # a replay takes the same cadence
            recorder.meta["snapshot_s"] = float(snapshot_s)
        self.rest_calls = 0  # quote calls polled over REST since the source started
        self.token_check_s = 30.0  # at the tick cadence, the login is checked this often
        self._checked_s = float("-inf")  # exchange time of the last check
        self._login_rejected: TokenExpiredError | None = None  # by a check between snapshots
        self._cadence = threading.Condition()
        self._spot_s = 0.0  # newest exchange second of an index tick
        self._shard_s: dict[int, float] = {}  # newest exchange second of each connection's ticks
        self._key_token: dict[str, int] = {}
        self._modes: dict[int, str] = {}
        self._subscribed = np.zeros(0, dtype=np.int64)  # the tokens of `_modes`, sorted
        self._streamed: set[int] = set()  # subscribed now (event-loop thread)
        self._shard_of: dict[int, int] = {}
        self._refused = False
        self.left_to_rest = 0  # planned legs beyond `capacity`, polled
        self._notes: list[SnapshotWarning] = []
        self._notes_lock = threading.Lock()
        self._fed = [0, 0]  # quotes streamed, polled since the last take_feed
        self._last_tier = ""
        self._unknown_seen = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.ticker: TickerSource | None = None
        self._run_task: asyncio.Future | None = None
        # What a whole-batch answer looks up per key, kept per batch position while the keys,
        # subscriptions and instrument tokens stay as they were.
        self._lookups = BatchLookups()

    def __repr__(self) -> str:  # the ticker URL carries the access token: never print it
        return f"StreamingSource(rest={self.rest!r}, streamed={len(self._modes)})"

    # -- the event loop ------------------------------------------------------------------------

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="optui-ticker",
                                            daemon=True)
            self._thread.start()
        return self._loop

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` on the event-loop thread (where ticks are applied) and return its
        result; directly when the loop is not running (nothing streams)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args)
        done: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(timeout=30)

    def _note(self, message: str) -> None:
        with self._notes_lock:
            self._notes.append(SnapshotWarning(WarningKind.STREAM, "", message))

    # -- subscriptions -------------------------------------------------------------------------

    def follow_plan(self, plans: Mapping[str, Sequence[BucketPlan]],
                    spots: Mapping[str, Quote]) -> None:
        """Subscribe what the cycle's plan quotes (index key -> bucket plans, index key -> spot
        quote); only a changed set reaches the ticker."""
        if self._subscribed.size and self._same_plan(plans, spots):
            self.left_to_rest = 0  # all of it streams, as now: nothing to rank or change
            return
        modes, left = stream_modes(plans, spots, self.capacity)
        if left and left != self.left_to_rest:
            self._note(f"ticker: {left} planned legs beyond the {self.capacity} streamed "
                       "instruments are polled over REST (the far wings; nearest the money "
                       "streams)")
        self.left_to_rest = left
        if modes == self._modes or self._refused:
            return
        self._modes = modes
        self._lookups.invalidate()
        self._subscribed = np.unique(np.fromiter(modes, dtype=np.int64, count=len(modes)))
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(self._apply_modes(dict(modes)), loop)
        future.add_done_callback(self._log_failure)

    def _same_plan(self, plans: Mapping[str, Sequence[BucketPlan]],
                   spots: Mapping[str, Quote]) -> bool:
        """Whether the plan's instruments (spots and legs) are exactly those subscribed now and
        all fit: then `stream_modes` would give the same modes (a dict compares unordered)."""
        parts = [np.array([s.instrument_token for s in spots.values() if s.instrument_token],
                          dtype=np.int64)]
        for index_plans in plans.values():
            for plan in index_plans:
                if plan.strikes.size:
                    cols, pos = plan.chain.columns(), plan.positions()
                    parts += [cols.call_tokens[pos], cols.put_tokens[pos]]
        wanted = np.unique(np.concatenate(parts))
        return wanted.size <= self.capacity and np.array_equal(wanted, self._subscribed)

    @staticmethod
    def _log_failure(future: concurrent.futures.Future) -> None:
        exc = future.exception()
        if exc is not None:
            log.error("ticker subscription update failed", exc_info=exc)

    async def _apply_modes(self, modes: dict[int, str]) -> None:
        gone = [t for t in self._streamed if t not in modes]
        if gone:
            self.book.mark_stale(gone)
        self._streamed = set(modes)
        self._lookups.invalidate()
        if self.ticker is None:
            self._start_ticker(modes)
        else:
            await self.ticker.update(modes)
        self._index_shards()

    def _start_ticker(self, modes: Mapping[int, str]) -> None:
        self.ticker = TickerSource(self._api_key, self._token, modes, self._on_ticks,
                                   self._on_event, root=self._root, on_frame=self._on_frame,
                                   **self._ticker_kw)  # type: ignore[arg-type]
        self._run_task = asyncio.ensure_future(self.ticker.run())

    def _index_shards(self) -> None:
        if self.ticker is not None:
            self._shard_of = {t: s.index for s in self.ticker.shards for t in s.modes}
        self._lookups.invalidate()

    # -- the ticker's callbacks (event-loop thread) ----------------------------------------------

    def _on_frame(self, shard: int, frame: bytes, batch: TickBatch | None) -> None:
        if self.recorder is not None:
            self.recorder.record_ticks(self.rest.now(), frame)
        if batch is not None and len(batch):
            self.book.add(batch)
            self.flow.fold(batch)
            stamps = batch.exchange_timestamp
            index = stamps[~batch.tradable]
            newest = float(stamps.max())
            with self._cadence:
                if index.size and float(index.max()) > self._spot_s:
                    self._spot_s = float(index.max())
                if newest > self._shard_s.get(shard, 0.0):
                    self._shard_s[shard] = newest
                self._cadence.notify_all()

    def _on_ticks(self, shard: int, batch: TickBatch) -> None:
        """Ticks of subscribed instruments (already in the book through `_on_frame`)."""

    def _shard_tokens(self, shard: int) -> list[int]:
        if self.ticker is None:
            return []
        return list(self.ticker.shards[shard].modes)

    def _on_event(self, event: TickerEvent) -> None:
        if isinstance(event, TickerDisconnected | TickerStalled):
            self.book.mark_stale(self._shard_tokens(event.shard))  # polled until ticks resume
        if isinstance(event, TickerAuthFailed):
            self.book.mark_stale(self._shard_tokens(event.shard))
            self._refused = True
        if isinstance(event, TickerConnected) and not event.reconnect:
            log.info("%s", health_line(event))
            return  # the first connection is no news; reconnections are
        line = health_line(event)
        if isinstance(event, TickerDisconnected | TickerStalled):
            line += "; its instruments are polled over REST meanwhile"
        elif isinstance(event, TickerGap):
            line += " (the gap stays a gap in the recording)"
        elif isinstance(event, FrameSkipped):
            line += "; collection goes on"
        (log.warning if not isinstance(event, TickerConnected) else log.info)("%s", line)
        self._note(line)  # recorded with the cycle that says it (engine: record_said)

    # -- quotes --------------------------------------------------------------------------------

    def _split(self, keys: Sequence[str], now_s: float) -> list[str]:
        """The keys answered from the book: subscribed, ticked since their connection last came
        up, on a connection whose newest tick is within `max_age_s` of `now_s` (a tick stamped
        far after the clock, a clock set back, is no answer either)."""
        ticker = self.ticker
        if ticker is None:
            return []
        fresh = {s.index for s in ticker.shards if s.ws is not None
                 and s.last_exchange_time is not None
                 and abs(now_s - s.last_exchange_time) <= self.max_age_s}
        if not keys:
            return []
        n = len(keys)
        # Looked up in C (map over the dicts and sets), not by a Python step per key.
        tokens = list(map(self._key_token.get, keys, repeat(-1, n)))
        live = self.book.is_live(np.fromiter(tokens, dtype=np.int64, count=n),
                                 self._mode_codes(tokens))
        live &= np.fromiter(map(self._streamed.__contains__, tokens), dtype=bool, count=n)
        live &= np.fromiter(map(fresh.__contains__, map(self._shard_of.get, tokens)),
                            dtype=bool, count=n)
        return list(compress(keys, live.tolist()))

    def _mode_codes(self, tokens: Sequence[int]) -> np.ndarray:
        """The MODE_* code each token is subscribed in (ltp when not subscribed): a leg answers
        from the book only once it ticked in that mode since it was (re)subscribed, since a
        subscription ticks in quote mode until its mode message applies, and a quote packet
        has no depth or OI and is not a flow reference (the leg's flow since its previous
        answer would go unmeasured)."""
        return mode_codes(self._modes, tokens)

    def _answer(self, keys: Sequence[str], streamed: Sequence[str],
                polled: dict[str, dict]) -> dict[str, dict]:
        tokens = [self._key_token[k] for k in streamed]
        from_book = {k: self.book.quote(t) for k, t in zip(streamed, tokens, strict=True)}
        self.flow.answered(tokens, polled)
        if self.recorder is not None:
            self.recorder.record_stream_answer(self.rest.now(), keys, streamed, tokens, polled)
        out: dict[str, dict] = {}
        for key in keys:
            quote = from_book.get(key) or polled.get(key)
            if quote is not None:
                out[key] = quote
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        """Kite-shaped full quotes: streamed where live, polled from the wrapped source for
        the rest. A call of index spots only (the engine's first of a cycle: they date it) is
        polled while REST answers, so a cycle's moment is the exchange's now as without the
        ticker, and streamed when it does not. Raises SourceError when polling fails and the
        ticks cannot answer instead, and TokenExpiredError whenever the login is rejected (the
        collector pauses for a new login, streamed or not)."""
        keys = list(keys)
        if self._login_rejected is not None:  # found while waiting for this snapshot's ticks
            rejected, self._login_rejected = self._login_rejected, None
            raise rejected
        now_s = self.rest.now().timestamp()
        spots = is_spot_call(keys)
        live = self.ticker is not None
        streamed = self._on_loop(self._split, keys, now_s) if live and not spots else []
        if live and spots and self.snapshot_s is not None:  # the tick cadence: spots from ticks
            streamed = self._on_loop(self._split, keys, now_s)
            if len(streamed) != len(keys):
                streamed = []  # one clock per cycle: all spots streamed, or all polled
            elif now_s - self._checked_s >= self.token_check_s:
                self._check_login(now_s)
        chosen = set(streamed)
        rest = [k for k in keys if k not in chosen]
        polled: dict[str, dict] = {}
        if rest:
            self.rest_calls += 1
            try:
                polled = self.rest.quote_batch(rest)
            except TokenExpiredError:
                raise  # a rejected login pauses collection until the next one, streamed or not
            except SourceError as exc:
                if spots and live:
                    streamed = self._on_loop(self._split, keys, now_s)
                    rest = [k for k in keys if k not in set(streamed)]
                    if rest:
                        raise
                    self._note(f"index spots streamed: their REST call failed ({exc})")
                elif not streamed:
                    raise
                else:
                    self._note(f"REST fallback for {len(rest)} instruments failed ({exc}); "
                               f"{len(streamed)} streamed quotes used")
            for key, data in polled.items():
                tok = data.get("instrument_token") if isinstance(data, dict) else None
                if isinstance(tok, int) and tok > 0 and key not in self._key_token:
                    self._key_token[key] = tok
                    self._lookups.invalidate()
        if not spots:
            self._fed[0] += len(streamed)
            self._fed[1] += len(rest)
        return self._on_loop(self._answer, keys, streamed, polled)

    def quote_tables(self, batches: Sequence[Sequence[str]]) -> list[QuoteTable]:
        """`quote_batch` for each batch, in order, answered as columns: the streamed rows
        straight from the book's arrays (no dict per instrument). Consecutive batches that the
        ticks answer whole take one trip to the event-loop thread; a batch with keys to poll
        goes through `quote_batch` (and `quote_from_kite`) as before."""
        if self.ticker is None or not batches:
            return super().quote_tables(batches)
        now_s = self.rest.now().timestamp()
        out: list[QuoteTable] = []
        while len(out) < len(batches):
            out.extend(self._on_loop(self._streamed_tables, batches, len(out), now_s))
            if len(out) < len(batches):  # this one polls some of its keys
                batch = batches[len(out)]
                out.extend(super().quote_tables([batch]))
        return out

    def _streamed_tables(self, batches: Sequence[Sequence[str]], first: int,
                         now_s: float) -> list[QuoteTable]:
        """Answer batches from `first` on from the book while the ticks answer a batch whole
        (event-loop thread); stops at the first batch with keys to poll (or a spot call)."""
        out: list[QuoteTable] = []
        fresh = fresh_shards(self.ticker, now_s, self.max_age_s)
        for at, batch in enumerate(batches[first:], first):
            keys = list(batch)
            if is_spot_call(keys):
                break
            look = self._lookups.lookup(at, keys, self._key_token, self._streamed,
                                        self._shard_of, self._mode_codes, self.book)
            if look is None or not look.all_live(fresh, self.book):
                break
            self._fed[0] += len(keys)
            self.flow.answered(look.tokens, {})  # the per-trade flow of these legs, as `_answer`
            if self.recorder is not None:
                self.recorder.record_stream_answer(self.rest.now(), keys, keys, look.token_list,
                                                   {})
            out.append(self.book.quote_table_at(keys, look.slots))
        return out

    def _check_login(self, now_s: float) -> None:
        """No quote call polls while the ticks answer, so once per `token_check_s` the login is
        checked with the cheap profile call (not counted against the quote limit): an expired
        token pauses collection (TokenExpiredError) as a polled cycle's would; any other
        failure is a health line and the ticks go on answering."""
        self._checked_s = now_s
        try:
            self.rest.probe()
        except TokenExpiredError:
            raise
        except SourceError as exc:
            self._note(f"login check failed ({exc}); the ticks keep answering")

    def _check_login_between(self) -> None:
        """The login check that falls due, made while waiting for a snapshot's ticks instead of
        in its spot call (a round trip off the path from tick to screen); a rejected login is
        raised by the next quote call, as the check there would."""
        now_s = self.rest.now().timestamp()
        if now_s - self._checked_s < self.token_check_s:
            return
        try:
            self._check_login(now_s)
        except TokenExpiredError as exc:
            self._login_rejected = exc

    def take_tick_flow(self) -> FlowTable:
        """The per-trade flow (a FlowTable: tokens ascending, inflow and outflow in rupees, NaN
        not measured) of the legs answered from the ticks since the previous call; legs polled
        meanwhile are left to the REST definition."""
        return self._on_loop(self.flow.take_table)

    def streaming_spots(self) -> bool:
        """Whether the index spots are answered from ticks now (the tick cadence is on and
        every subscribed index is live on a connection that is up)."""
        if self.snapshot_s is None or self.ticker is None or self._loop is None:
            return False
        keys = [k for k, t in self._key_token.items()
                if t & 0xFF == INDEX_SEGMENT and t in self._streamed]
        if not keys:
            return False
        return len(self._on_loop(self._split, keys, self.rest.now().timestamp())) == len(keys)

    @property
    def ticking(self) -> bool:
        """The tick cadence is on and the ticker runs (a refused login stops it)."""
        return self.snapshot_s is not None and self.ticker is not None and not self._refused

    def _shards_at(self, second: float) -> bool:
        ticker = self.ticker
        if ticker is None:
            return True
        return all(self._shard_s.get(s.index, 0.0) >= second
                   for s in ticker.shards if s.modes and s.ws is not None)

    def wait_snapshot(self, after: datetime, timeout_s: float,
                      stop: threading.Event | None = None) -> datetime | None:
        """Block until index ticks of the first cadence mark after `after` (exchange time) have
        arrived, then up to COALESCE_S for every connection's frame of that second; returns
        the newest index tick's exchange time (UTC); the exchange now when `timeout_s` real
        seconds pass first (nothing ticks: a cycle with the spots polled is due); None when
        `stop` is set or the tick cadence is off. A second with no index tick gives no
        snapshot."""
        if not self.ticking:
            return None
        self._check_login_between()
        step = float(self.snapshot_s)  # type: ignore[arg-type]
        mark = (math.floor(after.timestamp() / step) + 1) * step
        end = time.monotonic() + timeout_s
        with self._cadence:
            while self._spot_s < mark:
                left = end - time.monotonic()
                if stop is not None and stop.is_set():
                    return None
                if left <= 0:
                    return self.now()  # silent for the whole wait: a cycle with spots polled
                self._cadence.wait(min(left, 0.25))
            second = self._spot_s
            until = time.monotonic() + COALESCE_S
            while not self._shards_at(second) and (left := until - time.monotonic()) > 0:
                self._cadence.wait(left)
            return datetime.fromtimestamp(self._spot_s, UTC)

    def take_feed(self) -> tuple[str, int, int]:
        """(tier, quotes streamed, quotes polled) since the last call; a change of tier is also
        a health line."""
        streamed, polled = self._fed
        self._fed = [0, 0]
        tier = feed_tier(streamed, polled)
        if tier != self._last_tier and (streamed or polled):
            self._note(feed_tier_line(tier, streamed, polled))
            self._last_tier = tier
        return tier, streamed, polled

    def take_notices(self) -> list[SnapshotWarning]:
        """Ticker health lines since the last call, then the recorder's."""
        ticker = self.ticker
        if ticker is not None:
            unknown = sum(s.unknown_ticks for s in ticker.stats)
            if unknown > self._unknown_seen:
                self._note(f"ticker: {unknown - self._unknown_seen} tick(s) of instruments not "
                           "subscribed on their connection ignored")
                self._unknown_seen = unknown
        with self._notes_lock:
            notes, self._notes = self._notes, []
        if self.recorder is not None:
            notes += self.recorder.take_notices()
        return notes

    # -- everything else is the polled source's ------------------------------------------------

    def instruments(self) -> list[Instrument]:
        out = self.rest.instruments()
        self.dump_warnings = self.rest.dump_warnings
        self._key_token.update((i.key, i.instrument_token) for i in out)
        self._lookups.invalidate()
        if self.recorder is not None:
            self.recorder.record_instruments(self.rest.now(), out, self.dump_warnings)
        return out

    def set_access_token(self, token: str) -> None:
        """A new login: the polled source takes it (when it has a login) and the ticker
        reconnects with it."""
        if self.rest.accepts_token:
            self.rest.set_access_token(token)
        self._token = token
        self._refused = False
        if self._loop is not None and self.ticker is not None:
            asyncio.run_coroutine_threadsafe(self._restart(), self._loop).result(timeout=30)

    async def _restart(self) -> None:
        old, self.ticker = self.ticker, None
        if old is not None:
            await old.stop()
        if self._modes:
            self._start_ticker(self._modes)
            self._index_shards()

    def close(self) -> None:
        """Stop the ticker and its loop, the simulator's server, the recorder and the source."""
        loop = self._loop
        try:
            if loop is not None:
                if self.ticker is not None:
                    try:
                        asyncio.run_coroutine_threadsafe(self.ticker.stop(), loop).result(timeout=10)
                        if self._run_task is not None:
                            asyncio.run_coroutine_threadsafe(
                                asyncio.wait_for(asyncio.shield(self._run_task), 5), loop
                            ).result(timeout=10)
                    except Exception:  # noqa: BLE001 - closing must not hide the real error
                        log.debug("ticker stop", exc_info=True)
                loop.call_soon_threadsafe(loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=10)
                loop.close()
                self._loop = None
            if self._server is not None:
                self._server.close()
            if self.recorder is not None:
                self.recorder.close()
        finally:
            self.rest.close()
