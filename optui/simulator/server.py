"""The simulated exchange over HTTP, speaking the Kite Connect REST API and its WebSocket ticker.

Same routes, JSON envelope, Content-Types, header checks, error types, status codes and rate
limits as api.kite.trade, so the official `kiteconnect` client pointed at it with
`root="http://127.0.0.1:PORT"` works unchanged in tests and demos. The same port serves the
ticker (optui.simulator.ticker) to `KiteTicker(..., root="ws://127.0.0.1:PORT")`.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from urllib.parse import parse_qs, unquote, urlsplit

from optui.errors import ConfigError
from optui.simulator.exchange import KiteApiError, SimulatedExchange
from optui.simulator.faults import FaultPlan, rotated_token
from optui.simulator.ticker import TICK_INTERVAL_S, TickerSession
from optui.simulator.ticker import accept as accept_ticker
from optui.timeutil import parse_ist_minute

# Requests per second per API key, by route group (Kite's published limits).
RATE_LIMITS: dict[str, int] = {"quote": 1, "quote/ltp": 1, "quote/ohlc": 1, "historical": 3,
                               "other": 10}


class RateLimiter:
    """Sliding one-second windows per (api key, route group); the clock is injectable."""

    def __init__(self, limits: dict[str, int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits or RATE_LIMITS)
        self.clock = clock
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, api_key: str, group: str) -> bool:
        """Record a request and say whether it is within the limit."""
        limit = self.limits.get(group, self.limits["other"])
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault((api_key, group), deque())
            while hits and now - hits[0] >= 1.0:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True


class SimulatorServer(ThreadingHTTPServer):
    """A threading HTTP server bound to one SimulatedExchange."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, exchange: SimulatedExchange, host: str, port: int,
                 limiter: RateLimiter | None = None, faults: FaultPlan | None = None) -> None:
        super().__init__((host, port), KiteHandler)
        self.exchange = exchange
        self.limiter = limiter or RateLimiter()
        self.faults = faults
        self.base_token = exchange.access_token
        self._serving = False
        self.tick_interval = TICK_INTERVAL_S
        self.ticker_sessions: set[TickerSession] = set()
        self._sessions_lock = threading.Lock()

    def rotate_token(self) -> str:
        """Accept only the next rotated access token from now on; returns it."""
        assert self.faults is not None
        token = rotated_token(self.base_token, self.faults.rotations)
        self.exchange.access_token = token
        return token

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving = True
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving = False

    def sessions(self) -> list[TickerSession]:
        """The open ticker connections."""
        with self._sessions_lock:
            return list(self.ticker_sessions)

    def close(self) -> None:
        """Stop serving (if running), close ticker connections and release the socket."""
        if self._serving:
            self.shutdown()
        for session in self.sessions():
            session.close()
        self.server_close()


class KiteHandler(BaseHTTPRequestHandler):
    """Routes Kite Connect requests to the exchange."""

    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "optui-sim"
    # Headers and body leave in separate writes; with Nagle on, the body waits for the client's
    # delayed ACK (some 40 ms on Linux loopback) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: a line per quote request would flood the terminal showing the URL."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The `Date` header reads the simulated clock, as Kite's reads the real one."""
        from email.utils import formatdate

        if timestamp is None:
            timestamp = self.server.exchange.now().timestamp()
        return formatdate(timestamp, usegmt=True)

    def do_GET(self) -> None:  # noqa: N802
        if (self.headers.get("Upgrade") or "").lower() == "websocket":
            self._ticker()
            return
        self._handle("GET")

    def _ticker(self) -> None:
        """Serve Kite's WebSocket ticker on this connection until it closes."""
        self.close_connection = True
        conn = accept_ticker(self.server.exchange, self.connection, self.path,
                             self.headers.items())
        if conn is None:
            return
        session = TickerSession(self.server.exchange, conn, self.server.tick_interval)
        with self.server._sessions_lock:
            self.server.ticker_sessions.add(session)
        try:
            session.run()
        finally:
            with self.server._sessions_lock:
                self.server.ticker_sessions.discard(session)

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    _truncate = False

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self._truncate:  # an injected fault: half the promised body, then hang up
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        self.wfile.write(body)

    def _json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _error(self, err: KiteApiError) -> None:
        self._json(err.status, {"status": "error", "message": err.message, "data": None,
                                "error_type": err.error_type})

    def _inject(self, fault: str) -> bool:
        """Apply an injected fault (optui.simulator.faults); True when the request is answered."""
        plan = self.server.faults
        assert plan is not None
        if fault == "429":
            raise KiteApiError(429, "NetworkException", "Too many requests")
        if fault == "5xx":
            status = (500, 502, 503)[plan.counts["5xx"] % 3]
            kind = "GeneralException" if status == 500 else "NetworkException"
            raise KiteApiError(status, kind, f"Simulated upstream failure (HTTP {status})")
        if fault == "token":
            raise KiteApiError(403, "TokenException", "Token is invalid or has expired.")
        if fault == "malformed":
            self._send(200, b'{"status": "success", "data": {"NSE:', "application/json")
            return True
        if fault == "timeout":  # hold the request past the client's timeout, then drop it
            time.sleep(plan.timeout_s)
            self.close_connection = True
            return True
        if fault == "slow":
            time.sleep(plan.slow_s)
        elif fault == "truncated":
            self._truncate = True
        return False

    def _handle(self, method: str) -> None:
        self._truncate = False
        plan = self.server.faults
        fault = plan.pick() if plan is not None and not self.path.startswith("/session/") else None
        try:
            try:
                if fault is not None and self._inject(fault):
                    return
                self._route(method)
            except KiteApiError as err:
                self._error(err)
            except (BrokenPipeError, ConnectionResetError):
                raise
            except Exception as exc:  # a bug must still answer like Kite, not drop the socket
                self._error(KiteApiError(500, "GeneralException", f"Simulator error: {exc}"))
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            self.close_connection = True

    def _form(self) -> dict[str, list[str]]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        return parse_qs(body, keep_blank_values=True)

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        form = self._form() if method in ("POST", "PUT") else {}
        if self.headers.get("X-Kite-Version") != "3":
            raise KiteApiError(400, "InputException",
                               "Missing or invalid X-Kite-Version header: send X-Kite-Version: 3")
        exchange = self.server.exchange
        if path == "/session/token":
            if method == "POST":
                api_key = (form.get("api_key") or [""])[0]
                token = (form.get("request_token") or [""])[0]
                checksum = (form.get("checksum") or [""])[0]
                self._limit(api_key, "other")
                self._ok(exchange.generate_session(token, api_key=api_key, checksum=checksum))
                return
            if method == "DELETE":
                self._ok(True)
                return
        is_dump = path == "/instruments" or (path.startswith("/instruments/")
                                             and path.count("/") == 2
                                             and not path.startswith("/instruments/historical"))
        # The dump is public on Kite; a token sent with it is still checked.
        api_key = "" if is_dump and "Authorization" not in self.headers else self._authorise()
        if method != "GET":
            raise KiteApiError(405, "InputException", f"{method} is not allowed on {path}")
        if path == "/user/profile":
            self._limit(api_key, "other")
            self._ok(exchange.profile())
        elif is_dump:
            self._limit(api_key, "other")
            segment = path.split("/")[2] if path.count("/") == 2 else None
            self._send(200, exchange.instruments_csv(segment).encode(), "text/csv")
        elif path in ("/quote", "/quote/ltp", "/quote/ohlc"):
            group = path.strip("/")
            self._limit(api_key, group)
            keys = query.get("i", [])
            if group == "quote":
                self._ok(exchange.quote(keys))
            elif group == "quote/ltp":
                self._ok(exchange.ltp(keys))
            else:
                self._ok(exchange.ohlc(keys))
        elif path.startswith("/instruments/historical/") and path.count("/") == 4:
            self._limit(api_key, "historical")
            token, interval = path.split("/")[3:5]
            arg = {name: (query.get(name) or [""])[0] for name in ("from", "to", "continuous", "oi")}
            self._ok(exchange.historical(token, interval, arg["from"], arg["to"],
                                         arg["continuous"] == "1", arg["oi"] == "1"))
        else:
            raise KiteApiError(404, "GeneralException", f"Route not found: {path}")

    def _authorise(self) -> str:
        header = self.headers.get("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        api_key, sep, token = credentials.partition(":")
        if scheme != "token" or not sep:
            raise KiteApiError(403, "TokenException",
                               "Missing Authorization header: send 'token api_key:access_token'")
        self.server.exchange.check_auth(api_key, token)
        plan = self.server.faults
        if plan is not None and plan.authorised():
            self.server.rotate_token()
        return api_key

    def _limit(self, api_key: str, group: str) -> None:
        if not self.server.limiter.allow(api_key, group):
            raise KiteApiError(429, "NetworkException", "Too many requests")

    def _ok(self, data: object) -> None:
        self._json(200, {"status": "success", "data": data})


def serve(exchange: SimulatedExchange, host: str = "127.0.0.1", port: int = 0,
          limiter: RateLimiter | None = None, background: bool = True,
          faults: FaultPlan | None = None) -> SimulatorServer:
    """Bind the exchange to host:port (0 = any free port); serve in a daemon thread by default;
    `faults` injects failures into answers (optui.simulator.faults)."""
    server = SimulatorServer(exchange, host, port, limiter, faults)
    if background:
        server._serving = True  # close() before the thread starts must still stop it
        thread = threading.Thread(target=server.serve_forever, name="optui-sim-http", daemon=True)
        thread.start()
    return server


def parse_start(start: datetime | str | None) -> datetime | None:
    """`--start "YYYY-MM-DD HH:MM"` (IST) or an aware/naive datetime."""
    if start is None or isinstance(start, datetime):
        return start
    try:
        return parse_ist_minute(start)
    except ValueError as exc:
        raise ConfigError(f"start {exc}") from None


def run_simulator(host: str = "127.0.0.1", port: int = 8765, seed: int = 7, speed: float = 1.0,
                  start: datetime | str | None = None, api_key: str = "sim_key",
                  access_token: str = "sim_token", api_secret: str | None = None,
                  faults: str = "") -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM, after printing how to connect.

    `faults` is a FaultPlan spec ("429=0.05,5xx=0.05,rotate=500"); ConfigError when invalid."""
    plan = FaultPlan.parse(faults, seed=seed) if faults else None
    try:
        exchange = SimulatedExchange(seed=seed, speed=speed, start=parse_start(start),
                                     api_key=api_key, access_token=access_token,
                                     api_secret=api_secret)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    server = serve(exchange, host, port, background=False, faults=plan)
    token_hint = "sim_token" if access_token == "sim_token" else "<your --access-token>"
    print(f"Simulated Kite Connect at {server.url} (seed {seed}, speed {speed}x, "
          f"clock {exchange.now():%Y-%m-%d %H:%M} IST): "
          f'KiteConnect("{api_key}", access_token="{token_hint}", root="{server.url}"); '
          f'ticker KiteTicker("{api_key}", "{token_hint}", '
          f'root="{server.url.replace("http://", "ws://", 1)}")',
          flush=True)
    if plan is not None:
        rates = ", ".join(f"{k} {v:.0%}" for k, v in plan.rates.items()) or "none"
        rotate = (f"; the access token rotates every {plan.rotate_after} authorised requests to "
                  f"{access_token}_r1, _r2, ..." if plan.rotate_after else "")
        print(f"Injecting faults: {rates}{rotate}", flush=True)

    def _stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
