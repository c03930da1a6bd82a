"""Streaming quotes from Kite's WebSocket ticker (or the simulator's), sharded and self-healing.

Kite allows 3 WebSocket connections per API key and 3,000 instruments per connection, so at most
9,000 instruments stream at once. `plan_shards` spreads subscriptions over the connections,
keeping an instrument on its connection when the set changes (ATM moves, expiries roll), so an
update only subscribes the new and unsubscribes the gone.

Each connection (a shard) runs as an asyncio task on the `websockets` client:
- it subscribes its instruments and sets their modes (`full` for legs that need OI and depth,
  `quote` or `ltp` for the rest) on every (re)connection;
- binary frames are parsed (optui.tick_packets) and handed to `on_ticks` as TickBatches; a
  one-byte heartbeat only proves the socket alive; a malformed or truncated frame is skipped and
  counted (FrameSkipped), ticks of instruments the shard did not subscribe are counted;
- text `error` frames are reported (TickerError), `message` frames too (TickerMessage);
- a socket silent for `stall_after_s` (no tick, no heartbeat) is taken as stalled (TickerStalled)
  and dropped;
- after a drop it reconnects with exponential backoff and jitter, and when ticks flow again it
  records the outage as a TickerGap (exchange times of the last tick before and the first after):
  a gap is reported, never papered over, and what traded meanwhile cannot be classified.
A refused access token (HTTP 403) stops the shard with TickerAuthFailed: retrying a dead token only
hammers the API; a new login starts a new source.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import numpy as np
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from optui.tick_packets import MODE_NAMES, FrameError, TickBatch, parse_frame
from optui.timeutil import IST

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 3
"""Kite's WebSocket connections per API key."""
MAX_PER_CONNECTION = 3000
"""Kite's instruments per WebSocket connection."""
KITE_TICKER_ROOT = "wss://ws.kite.trade"


# -- events -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TickerConnected:
    """Shard `shard` connected and subscribed `instruments`; `reconnect` after a drop."""

    shard: int
    instruments: int
    reconnect: bool


@dataclass(frozen=True, slots=True)
class TickerDisconnected:
    """Shard `shard` lost its socket (`reason`); the next attempt is in `retry_in_s` seconds."""

    shard: int
    reason: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class TickerGap:
    """No ticks reached shard `shard` between two exchange times (UTC; None when unknown).

    `start` is the exchange time of its last tick before the drop, `end` that of its first tick
    after; `instruments` were subscribed on it; `down_s` is how long the socket was down.
    """

    shard: int
    start: datetime | None
    end: datetime | None
    instruments: int
    down_s: float


@dataclass(frozen=True, slots=True)
class TickerStalled:
    """Shard `shard` heard nothing (not even a heartbeat) for `silent_s` seconds: dropped."""

    shard: int
    silent_s: float


@dataclass(frozen=True, slots=True)
class FrameSkipped:
    """A binary frame on shard `shard` could not be parsed (`reason`); it was skipped."""

    shard: int
    reason: str
    skipped_total: int


@dataclass(frozen=True, slots=True)
class TickerError:
    """A text `error` frame from the exchange on shard `shard`."""

    shard: int
    message: str


@dataclass(frozen=True, slots=True)
class TickerMessage:
    """A text `message` frame (an exchange or broker notice) on shard `shard`."""

    shard: int
    message: str


@dataclass(frozen=True, slots=True)
class TickerAuthFailed:
    """The exchange refused the API key or access token (HTTP `status`): shard stopped."""

    shard: int
    status: int


TickerEvent = (TickerConnected | TickerDisconnected | TickerGap | TickerStalled | FrameSkipped
               | TickerError | TickerMessage | TickerAuthFailed)


def health_line(event: TickerEvent) -> str:
    """One line for the health log naming what happened and what was done about it (IST times)."""
    conn = f"ticker connection {event.shard + 1}"

    def ist(at: datetime | None) -> str:
        return "?" if at is None else at.astimezone(IST).strftime("%H:%M:%S")

    if isinstance(event, TickerConnected):
        verb = "reconnected" if event.reconnect else "connected"
        return f"{conn} {verb}: {event.instruments} instruments subscribed"
    if isinstance(event, TickerDisconnected):
        return f"{conn} lost ({event.reason}): reconnecting in {event.retry_in_s:.1f} s"
    if isinstance(event, TickerGap):
        return (f"{conn}: no ticks {ist(event.start)}-{ist(event.end)} IST for "
                f"{event.instruments} instruments (down {event.down_s:.1f} s); flow in the gap "
                "not classified")
    if isinstance(event, TickerStalled):
        return f"{conn} stalled: no data or heartbeat for {event.silent_s:g} s; reconnecting"
    if isinstance(event, FrameSkipped):
        return f"{conn}: bad binary frame skipped ({event.reason}); {event.skipped_total} so far"
    if isinstance(event, TickerError):
        return f"{conn}: exchange error: {event.message}"
    if isinstance(event, TickerMessage):
        return f"{conn}: exchange message: {event.message}"
    return (f"{conn}: access token refused (HTTP {event.status}); streaming stopped until a new "
            "login")


@dataclass(slots=True)
class ShardStats:
    """Counters of one connection since the source started."""

    frames: int = 0
    ticks: int = 0
    heartbeats: int = 0
    malformed_frames: int = 0
    skipped_packets: int = 0
    unknown_ticks: int = 0
    errors: int = 0
    connects: int = 0
    stalls: int = 0


# -- sharding ---------------------------------------------------------------------------------

def plan_shards(modes: Mapping[int, str], previous: Sequence[Mapping[int, str]] = (),
                max_connections: int = MAX_CONNECTIONS,
                per_connection: int = MAX_PER_CONNECTION) -> list[dict[int, str]]:
    """Spread token -> mode over at most `max_connections` maps of `per_connection` tokens.

    Tokens already on a shard in `previous` stay there; new ones fill the emptiest shard first.
    Raises ValueError when there are more tokens than the connections can carry, or a mode is not
    ltp, quote or full.
    """
    bad = {m for m in modes.values() if m not in MODE_NAMES}
    if bad:
        raise ValueError(f"unknown ticker mode(s) {sorted(bad)}: use ltp, quote or full")
    capacity = max_connections * per_connection
    if len(modes) > capacity:
        raise ValueError(f"{len(modes)} instruments exceed the ticker's {capacity} "
                         f"({max_connections} connections of {per_connection})")
    shards: list[dict[int, str]] = [{} for _ in range(max_connections)]
    placed: set[int] = set()
    for i, old in enumerate(list(previous)[:max_connections]):
        for tok in old:
            if tok in modes and len(shards[i]) < per_connection:
                shards[i][tok] = modes[tok]
                placed.add(tok)
    for tok, mode in modes.items():
        if tok in placed:
            continue
        i = min(range(max_connections), key=lambda k: len(shards[k]))
        shards[i][tok] = mode
    return shards


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): base x 2^attempt capped at max_s,
    times a uniform jitter in [0.5, 1] so many clients do not reconnect in lockstep."""
    return min(max_s, base_s * (2.0 ** min(attempt, 30))) * rng.uniform(0.5, 1.0)


def _subscribe_messages(modes: Mapping[int, str]) -> list[str]:
    tokens = list(modes)
    out = [json.dumps({"a": "subscribe", "v": tokens})] if tokens else []
    for name in MODE_NAMES:
        group = [t for t, m in modes.items() if m == name]
        if group:
            out.append(json.dumps({"a": "mode", "v": [name, group]}))
    return out


def _exchange_time(batch: TickBatch) -> float | None:
    stamps = batch.exchange_timestamp
    stamps = stamps[stamps > 0]
    return float(stamps.max()) if stamps.size else None


def _utc(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


# -- the source -------------------------------------------------------------------------------

@dataclass
class _Shard:
    index: int
    modes: dict[int, str]
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stats: ShardStats = field(default_factory=ShardStats)
    ws: object | None = None
    task: asyncio.Task | None = None
    last_exchange_time: float | None = None
    down_since: float | None = None  # monotonic time of the drop that opened the current gap
    gap_from: float | None = None  # exchange time of the last tick before that drop

    def set_modes(self, modes: dict[int, str]) -> None:
        self.modes = modes
        self.tokens = np.array(sorted(modes), dtype=np.int64)


class TickerSource:
    """Stream `modes` (token -> "ltp"/"quote"/"full") from the ticker at `root`.

    `on_ticks(shard, batch)` receives every parsed frame's ticks of subscribed instruments;
    `on_event(event)` receives the TickerEvent dataclasses; `on_frame(shard, frame, batch)`, when
    given, every binary frame but heartbeats as received (for recording) with all its parsed
    ticks (None when the frame is malformed), before `on_ticks`. All are called on the event
    loop and must not block. Run with `await source.run()` (returns after `stop()`, or when every shard
    has stopped on a refused token).
    """

    def __init__(self, api_key: str, access_token: str, modes: Mapping[int, str],
                 on_ticks: Callable[[int, TickBatch], None],
                 on_event: Callable[[TickerEvent], None] | None = None,
                 root: str = KITE_TICKER_ROOT, stall_after_s: float = 10.0,
                 backoff_base_s: float = 1.0, backoff_max_s: float = 60.0,
                 seed: int | None = None,
                 on_frame: Callable[[int, bytes, TickBatch | None], None] | None = None) -> None:
        self.url = f"{root.rstrip('/')}/?" + urlencode({"api_key": api_key,
                                                       "access_token": access_token})
        self.on_ticks = on_ticks
        self.on_event = on_event or (lambda event: None)
        self.on_frame = on_frame
        self.stall_after_s = stall_after_s
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self._rng = random.Random(seed)
        self._stopping = asyncio.Event()
        self.shards = [_Shard(i, {}) for i in range(MAX_CONNECTIONS)]
        for shard, planned in zip(self.shards, plan_shards(modes), strict=True):
            shard.set_modes(planned)

    def __repr__(self) -> str:  # the URL carries the access token: never print it
        return f"TickerSource(shards={[len(s.modes) for s in self.shards]})"

    @property
    def stats(self) -> list[ShardStats]:
        """Per-connection counters."""
        return [s.stats for s in self.shards]

    async def run(self) -> None:
        """Connect every non-empty shard and stream until stop()."""
        for shard in self.shards:
            if shard.modes:
                shard.task = asyncio.create_task(self._run_shard(shard))
        tasks = [s.task for s in self.shards if s.task is not None]
        if tasks:
            await asyncio.gather(*tasks)

    async def stop(self) -> None:
        """Close every connection and end run()."""
        self._stopping.set()
        for shard in self.shards:
            if shard.ws is not None:
                with contextlib.suppress(Exception):
                    await shard.ws.close()  # type: ignore[attr-defined]

    async def update(self, modes: Mapping[int, str]) -> None:
        """Change the subscriptions (re-balanced, instruments keep their connection)."""
        planned = plan_shards(modes, [s.modes for s in self.shards])
        for shard, new in zip(self.shards, planned, strict=True):
            old = shard.modes
            shard.set_modes(new)
            if shard.ws is None:
                if new and shard.task is None and not self._stopping.is_set():
                    shard.task = asyncio.create_task(self._run_shard(shard))
                continue
            gone = [t for t in old if t not in new]
            changed = {t: m for t, m in new.items() if old.get(t) != m}
            messages = [json.dumps({"a": "unsubscribe", "v": gone})] if gone else []
            messages += _subscribe_messages(changed)
            for text in messages:
                with contextlib.suppress(ConnectionClosed):
                    await shard.ws.send(text)  # type: ignore[attr-defined]

    async def _run_shard(self, shard: _Shard) -> None:
        attempt = 0
        while not self._stopping.is_set() and shard.modes:
            try:
                async with websockets.connect(self.url, open_timeout=10, ping_interval=None,
                                              max_size=2**22, close_timeout=2) as ws:
                    shard.ws = ws
                    for text in _subscribe_messages(shard.modes):
                        await ws.send(text)
                    shard.stats.connects += 1
                    attempt = 0
                    self.on_event(TickerConnected(shard.index, len(shard.modes),
                                                  shard.stats.connects > 1))
                    reason = await self._listen(shard, ws)
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    self.on_event(TickerAuthFailed(shard.index, status))
                    return
                reason = f"HTTP {status} on connect"
            except (OSError, TimeoutError, ConnectionClosed, websockets.InvalidHandshake) as exc:
                reason = f"{exc.__class__.__name__}: {exc}"
            finally:
                shard.ws = None
            if self._stopping.is_set():
                return
            if shard.down_since is None:  # the gap runs from the first drop until ticks resume
                shard.down_since = time.monotonic()
                shard.gap_from = shard.last_exchange_time
            delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s, self._rng)
            attempt += 1
            self.on_event(TickerDisconnected(shard.index, reason, delay))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _listen(self, shard: _Shard, ws: websockets.ClientConnection) -> str:
        """Receive until the socket closes or stalls (returned as the reason)."""
        while True:
            try:
                msg = await asyncio.wait_for(ws.recv(), timeout=self.stall_after_s)
            except TimeoutError:
                shard.stats.stalls += 1
                self.on_event(TickerStalled(shard.index, self.stall_after_s))
                return f"stalled: nothing for {self.stall_after_s:g} s"
            except ConnectionClosed as exc:
                return f"closed: {exc}"
            if isinstance(msg, str):
                self._text(shard, msg)
                continue
            if len(msg) <= 1:
                shard.stats.heartbeats += 1
                continue
            parsed = self._parse(shard, msg)
            if self.on_frame is not None:
                try:
                    self.on_frame(shard.index, msg, parsed)
                except Exception:  # a consumer's bug must not stop the stream; its trace is logged
                    log.exception("frame consumer failed on shard %d", shard.index)
            batch = None if parsed is None else self._known(shard, parsed)
            if batch is None or len(batch) == 0:
                continue
            now_ex = _exchange_time(batch)
            if shard.down_since is not None:
                self.on_event(TickerGap(shard.index, _utc(shard.gap_from), _utc(now_ex),
                                        len(shard.modes), time.monotonic() - shard.down_since))
                shard.down_since = None
            if now_ex is not None:
                shard.last_exchange_time = now_ex
            try:
                self.on_ticks(shard.index, batch)
            except Exception:  # a consumer's bug must not stop the stream; its trace is logged
                log.exception("tick consumer failed on shard %d", shard.index)

    def _parse(self, shard: _Shard, frame: bytes) -> TickBatch | None:
        shard.stats.frames += 1
        try:
            batch = parse_frame(frame)
        except FrameError as exc:
            shard.stats.malformed_frames += 1
            self.on_event(FrameSkipped(shard.index, str(exc), shard.stats.malformed_frames))
            return None
        if batch.skipped_packets:
            shard.stats.skipped_packets += batch.skipped_packets
            self.on_event(FrameSkipped(shard.index, f"{batch.skipped_packets} packet(s) of an "
                                       "unknown layout", shard.stats.malformed_frames))
        return batch

    def _known(self, shard: _Shard, batch: TickBatch) -> TickBatch:
        """The ticks of instruments subscribed on the shard; the others are counted."""
        subscribed, tok = shard.tokens, batch.instrument_token  # `tokens` is sorted
        if subscribed.size:
            at = np.minimum(np.searchsorted(subscribed, tok), subscribed.size - 1)
            known = subscribed[at] == tok
        else:
            known = np.zeros(tok.shape, dtype=bool)
        unknown = 0 if known.all() else int((~known).sum())
        if unknown:
            shard.stats.unknown_ticks += unknown
            batch = _take(batch, np.flatnonzero(known))
        shard.stats.ticks += len(batch)
        return batch

    def _text(self, shard: _Shard, text: str) -> None:
        try:
            data = json.loads(text)
            kind, payload = data.get("type"), data.get("data")
        except (ValueError, AttributeError):
            kind, payload = "error", f"unreadable text frame {text[:80]!r}"
        if kind == "error":
            shard.stats.errors += 1
            self.on_event(TickerError(shard.index, str(payload)))
        elif kind == "message":
            self.on_event(TickerMessage(shard.index, str(payload)))


def _take(batch: TickBatch, rows: np.ndarray) -> TickBatch:
    """The ticks `rows` of a batch."""
    names = [f for f in TickBatch.__slots__ if f != "skipped_packets"]  # type: ignore[attr-defined]
    return TickBatch(*(getattr(batch, n)[rows] for n in names))
