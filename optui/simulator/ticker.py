"""The simulated exchange's WebSocket ticker, speaking Kite Connect's streaming protocol.

Served on the REST port: a GET with `Upgrade: websocket` and `?api_key=..&access_token=..` is
handed here by the HTTP server. As Kite (v3 "WebSocket streaming" docs) does:
- a bad key or token refuses the upgrade with HTTP 403, which KiteTicker reports through
  on_error/on_close as "WebSocket connection upgrade failed (403 - Forbidden)";
- text messages `{"a": "subscribe", "v": [tokens]}`, `{"a": "unsubscribe", "v": [tokens]}` and
  `{"a": "mode", "v": ["ltp"|"quote"|"full", [tokens]]}`; subscribing sets quote mode;
- binary frames of packets in Kite's layouts (optui.tick_packets), one per tick interval holding
  only the instruments whose quote changed since their last packet on the connection, with the
  new instruments' full ticks sent at once after a subscribe or mode change; a one-byte heartbeat
  when nothing is subscribed or nothing changed;
- text `{"type": "error", "data": ...}` for a bad message and `{"type": "message", ...}` notices;
- at most 3,000 instruments per connection: the rest of a subscribe is refused with an error.
Ticks are the simulator's full quotes at the simulated now, so a tick and GET /quote at the same
simulated moment carry the same numbers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.sync.connection import Connection

from optui.simulator.exchange import KiteApiError, SimulatedExchange
from optui.tick_packets import (
    DEPTH_LEVELS,
    HEARTBEAT,
    MODE_NAMES,
    MODE_QUOTE,
    TickBatch,
    pack_frame,
)
from optui.timeutil import IST

log = logging.getLogger(__name__)

MAX_INSTRUMENTS = 3000
"""Kite's limit of instruments subscribed on one WebSocket connection."""
TICK_INTERVAL_S = 1.0
"""Seconds (real) between tick frames: Kite streams about one tick a second per instrument."""
_KITE_TIME = "%Y-%m-%d %H:%M:%S"


@lru_cache(maxsize=64)
def _unix(stamp: str | None) -> int:
    if not stamp:
        return 0
    return int(datetime.strptime(stamp, _KITE_TIME).replace(tzinfo=IST).timestamp())


def quotes_to_batch(quotes: dict[int, dict], modes: dict[int, int]) -> TickBatch:
    """Ticks (in `modes` order) from full Kite quotes keyed by token; tokens without a quote drop.

    The per-quote route from GET /quote's dicts; the ticker itself packs the exchange's arrays
    (`exchange_frame`), and tests hold the two to the same bytes.
    """
    tokens = [t for t in modes if t in quotes]
    b = TickBatch.empty(len(tokens))
    for j, tok in enumerate(tokens):
        q = quotes[tok]
        ohlc = q["ohlc"]
        b.instrument_token[j] = tok
        b.mode[j] = modes[tok]
        b.last_price[j] = q["last_price"]
        b.last_quantity[j] = q["last_quantity"]
        b.average_price[j] = q["average_price"]
        b.volume[j] = q["volume"]
        b.buy_quantity[j] = q["buy_quantity"]
        b.sell_quantity[j] = q["sell_quantity"]
        b.open[j], b.high[j], b.low[j], b.close[j] = (ohlc["open"], ohlc["high"], ohlc["low"],
                                                      ohlc["close"])
        b.oi[j], b.oi_day_high[j], b.oi_day_low[j] = q["oi"], q["oi_day_high"], q["oi_day_low"]
        b.exchange_timestamp[j] = _unix(q.get("timestamp"))
        b.last_trade_time[j] = _unix(q.get("last_trade_time"))
        for s, side in enumerate(("buy", "sell")):
            levels = q["depth"][side][:DEPTH_LEVELS]
            for k, level in enumerate(levels):
                b.depth_price[j, s, k] = level["price"]
                b.depth_quantity[j, s, k] = level["quantity"]
                b.depth_orders[j, s, k] = level["orders"]
    b.tradable = (b.instrument_token & 0xFF) != 9
    return b


def exchange_frame(exchange: SimulatedExchange, modes: dict[int, int],
                   changes: ChangedTicks | None = None) -> bytes:
    """One binary frame with the ticks of `modes` (token -> mode code) at the simulated now;
    with `changes` (a connection's memory), only of the instruments whose packet changed since
    the last one sent: b"" when none did.

    Built from the exchange's per-instrument arrays and packed with numpy record dtypes.
    """
    tokens = np.fromiter(modes, dtype=np.int64, count=len(modes))
    codes = np.fromiter(modes.values(), dtype=np.int8, count=len(modes))
    batch = exchange.stream_batch(tokens, codes)
    if changes is not None:
        batch = changes.filter(batch)
        if len(batch) == 0:
            return b""
    return pack_frame(batch)


_COMPARED = ("mode", "last_price", "last_quantity", "average_price", "volume", "buy_quantity",
             "sell_quantity", "open", "high", "low", "close", "oi", "oi_day_high", "oi_day_low",
             "depth_price", "depth_quantity", "depth_orders")
"""Fields whose change makes an instrument's next packet due (its timestamps alone do not)."""


def _take(batch: TickBatch, rows: np.ndarray) -> TickBatch:
    """The listed rows of `batch`, in order."""
    names = [f for f in TickBatch.__slots__ if f != "skipped_packets"]  # type: ignore[attr-defined]
    return TickBatch(*(getattr(batch, name)[rows] for name in names))  # type: ignore[arg-type]


class ChangedTicks:
    """One connection's memory of what it last sent each instrument, to send only changes.

    As Kite does, an instrument's packet goes out only when something it carries changed since
    the last packet on that connection (its exchange timestamp and last trade time ride along
    but do not count as a change); `forget` makes the next one a full snapshot (a subscribe or
    a mode change).
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple] = {}

    def forget(self, tokens: Iterable[int]) -> None:
        """Send these instruments' next packet whatever it holds."""
        for tok in tokens:
            self._last.pop(int(tok), None)

    def filter(self, batch: TickBatch) -> TickBatch:
        """The rows of `batch` that changed since they were last passed (all for new tokens)."""
        n = len(batch)
        if n == 0:
            return batch
        cols = [getattr(batch, name).reshape(n, -1) for name in _COMPARED]
        flat = np.concatenate([c.astype(np.float64) for c in cols], axis=1)
        last = self._last
        keep = np.zeros(n, dtype=bool)
        for j, tok in enumerate(batch.instrument_token.tolist()):
            row = flat[j].tobytes()
            if last.get(tok) != row:
                last[tok] = row
                keep[j] = True
        if keep.all():
            return batch
        return _take(batch, np.flatnonzero(keep))


def _error(text: str) -> str:
    return json.dumps({"type": "error", "data": text})


class TickerSession:
    """One WebSocket connection's subscriptions and its tick sender."""

    def __init__(self, exchange: SimulatedExchange, conn: Connection,
                 interval: float = TICK_INTERVAL_S, max_instruments: int = MAX_INSTRUMENTS) -> None:
        self.exchange = exchange
        self.conn = conn
        self.interval = interval
        self.max_instruments = max_instruments
        self.modes: dict[int, int] = {}
        self._fresh: dict[int, int] = {}
        self._changes = ChangedTicks()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.paused = threading.Event()  # set: send nothing at all (a stalled exchange)

    def run(self) -> None:
        """Serve until the client goes away or close() is called."""
        sender = threading.Thread(target=self._send_loop, name="optui-sim-ticker", daemon=True)
        sender.start()
        try:
            for message in self.conn:
                if isinstance(message, str):
                    self.handle(message)
        except ConnectionClosed:
            pass
        finally:
            self._closed.set()
            self._wake.set()
            sender.join(timeout=5)

    def close(self) -> None:
        """Close the connection (normal closure)."""
        self._closed.set()
        self._wake.set()
        self.conn.close()

    def drop(self) -> None:
        """Cut the TCP connection without a closing handshake, as a dying server would."""
        self._closed.set()
        self._wake.set()
        try:
            self.conn.socket.shutdown(2)
        except OSError:
            pass
        self.conn.socket.close()

    def send_text(self, payload: dict) -> None:
        """Send a text frame (a `message` or `error` notice)."""
        self._send(json.dumps(payload))

    def send_raw(self, frame: bytes) -> None:
        """Send a binary frame as given (used to exercise clients with bad frames)."""
        self._send(frame)

    def _send(self, data: str | bytes) -> None:
        try:
            self.conn.send(data)
        except (ConnectionClosed, OSError):
            self._closed.set()

    def handle(self, text: str) -> None:
        """Apply one client text message; answer a bad one with an error frame."""
        try:
            msg = json.loads(text)
            action, value = msg["a"], msg["v"]
        except (ValueError, KeyError, TypeError):
            self._send(_error(f"Invalid message: {text[:100]!r}"))
            return
        try:
            if action == "subscribe":
                self._subscribe(self._tokens(value), MODE_QUOTE)
            elif action == "unsubscribe":
                with self._lock:
                    for tok in self._tokens(value):
                        self.modes.pop(tok, None)
                        self._fresh.pop(tok, None)
                    self._changes.forget(self._tokens(value))
            elif action == "mode":
                if not isinstance(value, list) or len(value) != 2 or value[0] not in MODE_NAMES:
                    raise ValueError(f"Invalid mode message {value!r}: use "
                                     '["ltp"|"quote"|"full", [tokens]]')
                code = MODE_NAMES.index(value[0])
                with self._lock:
                    for tok in self._tokens(value[1]):
                        if tok in self.modes:
                            self.modes[tok] = code
                            self._fresh[tok] = code
                self._wake.set()
            else:
                raise ValueError(f"Unknown action {action!r}: use subscribe, unsubscribe or mode")
        except ValueError as exc:
            self._send(_error(str(exc)))

    @staticmethod
    def _tokens(value: object) -> list[int]:
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ValueError(f"Invalid instrument tokens {value!r}: send a list of integers")
        return [int(v) for v in value]

    def _subscribe(self, tokens: Iterable[int], mode: int) -> None:
        refused = 0
        with self._lock:
            for tok in tokens:
                if tok in self.modes:
                    continue
                if len(self.modes) >= self.max_instruments:
                    refused += 1
                    continue
                self.modes[tok] = mode
                self._fresh[tok] = mode
        if refused:
            self._send(_error(f"Maximum of {self.max_instruments} instruments per connection: "
                              f"{refused} not subscribed"))
        self._wake.set()

    def _send_loop(self) -> None:
        # Frames fall on a fixed grid of `interval` (real time): building and sending one does
        # not push the next one later, as Kite's ticks keep their cadence.
        due = time.monotonic() + self.interval
        while not self._closed.is_set():
            woke = self._wake.wait(max(due - time.monotonic(), 0.0))
            self._wake.clear()
            if self._closed.is_set():
                return
            if not woke:
                due = max(due + self.interval, time.monotonic())
            if self.paused.is_set():
                continue
            with self._lock:
                modes = dict(self._fresh) if woke else dict(self.modes)
                self._changes.forget(self._fresh)  # (re)subscribed: a full packet first
                self._fresh.clear()
            if not modes:
                if not woke:
                    self._send(HEARTBEAT)
                continue
            try:
                with self._lock:
                    frame = exchange_frame(self.exchange, modes, self._changes)
            except Exception:  # a bug must not kill the stream silently
                log.exception("ticker frame failed")
                continue
            if frame:
                self._send(frame)
            elif not woke:  # nothing changed this interval: the connection is still alive
                self._send(HEARTBEAT)


def accept(exchange: SimulatedExchange, sock: object, path: str,
           headers: Iterable[tuple[str, str]]) -> Connection | None:
    """Do the WebSocket handshake on an HTTP request already read; None when refused.

    A bad api_key/access_token is answered with HTTP 403 (as Kite does) and the socket closed.
    """
    protocol = ServerProtocol(max_size=2**20)
    # The sans-I/O protocol parses the request itself, so it knows the handshake is done.
    lines = [f"GET {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers), "", ""]
    protocol.receive_data("\r\n".join(lines).encode("latin-1"))
    events = protocol.events_received()
    if not events or not isinstance(events[0], Request):
        return None
    request = events[0]
    query = parse_qs(urlsplit(path).query)
    api_key = (query.get("api_key") or [""])[0]
    token = (query.get("access_token") or [""])[0]
    try:
        exchange.check_auth(api_key, token)
    except KiteApiError as err:
        response = protocol.reject(403, f"{err.error_type}: {err.message}\n")
    else:
        response = protocol.accept(request)
    protocol.send_response(response)
    data = b"".join(protocol.data_to_send())
    sock.sendall(data)  # type: ignore[attr-defined]
    if response.status_code != 101:
        return None
    # The handshake is done, so the generic connection (frames only) takes over.
    return Connection(sock, protocol)  # type: ignore[arg-type]

