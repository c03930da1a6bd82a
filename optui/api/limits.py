"""Request limits in front of the API: body size and a per-client request rate.

Both answer JSON errors before a route runs: 413 for a body over `max_body_bytes` (by its
Content-Length, or counted as it streams in), 429 with `Retry-After` (whole seconds) when a client
address sends more than `per_minute` requests in a minute (a token bucket of that size refilled
evenly, so a burst of a minute's allowance is fine and a steady excess is not). WebSocket
handshakes count as requests; messages on an open WebSocket do not.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from optui.api.errors import send_json_error


class RateLimiter:
    """Token buckets per client key: `per_minute` requests per minute, bursts up to that."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic,
                 max_clients: int = 10000) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when a request from `key` may go ahead (one token taken), else seconds to wait."""
        now = self.clock()
        with self._lock:
            tokens, seen = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - seen) * self.rate)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self.max_clients:
            full = [k for k, (t, _) in self._buckets.items() if t >= self.capacity]
            for k in full or list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[k]
        self._buckets[key] = (tokens, now)


class TooLarge(Exception):
    """A streamed body went over the limit."""


class LimitsMiddleware:
    """ASGI middleware applying the body-size limit and the per-client rate limit."""

    def __init__(self, app: Any, per_minute: int, max_body_bytes: int) -> None:
        self.app = app
        self.limiter = RateLimiter(per_minute)
        self.max_body = max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        wait = self.limiter.take(str(client[0]))
        if wait > 0:
            retry = max(1, math.ceil(wait))
            message = (f"rate limit: at most {int(self.limiter.capacity)} requests per minute from "
                       f"one address; retry after {retry} s")
            if kind == "http":
                await send_json_error(send, 429, message, {"Retry-After": str(retry)})
            else:
                await send({"type": "websocket.close", "code": 1013, "reason": "rate limit: retry later"})
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    await send_json_error(send, 400, "Content-Length is not a number")
                    return
                if size > self.max_body:
                    await send_json_error(send, 413, self._too_large())
                    return
        seen = 0
        started = False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise TooLarge
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            if message.get("type") == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except TooLarge:
            if not started:
                await send_json_error(send, 413, self._too_large())

    def _too_large(self) -> str:
        return (f"request body too large: at most {self.max_body} bytes "
                "(the API is read-only: GET requests need no body)")


__all__ = ["LimitsMiddleware", "RateLimiter"]
