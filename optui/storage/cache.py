"""The latest-snapshot cache and pub/sub channel: in-process by default, Redis when configured.

A collector publishes each cycle's per-index summary; the dashboard (in the same process, or on a
laptop over Redis while the collector runs on a server) reads the latest summaries and follows the
channel. Values are JSON; bulk writes use one MSET so a cycle costs one round trip.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from optui.errors import ConfigError, StoreError

KEY_PREFIX = "optui:latest:"
"""Redis key prefix of the latest summary per index (optui:latest:NIFTY)."""

SNAPSHOT_CHANNEL = "optui:snapshots"
"""Channel a collector publishes each cycle's summaries on."""


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(value: Any) -> Any:
    """NaN/inf become null: JSON has no NaN and a non-Python reader would choke on it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class EncodedJSON:
    """JSON text `dumps` already made, handed to the cache as a value: it is sent as it is, not
    encoded again (a full chain's cycle is ~2 MB, tens of ms of json.dumps holding the GIL)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any) -> str:
    """Compact JSON for the cache (datetimes ISO 8601, numpy scalars as numbers, NaN as null);
    an EncodedJSON is its text."""
    if type(value) is EncodedJSON:
        return value.text
    try:
        return json.dumps(value, default=_default, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_clean(value), default=_default, separators=(",", ":"))


class Subscription(ABC):
    """Messages published on one channel after subscribing, decoded from JSON."""

    _closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, timeout: float | None = None) -> Any | None:
        """The next message, or None if none arrived within `timeout` seconds (or when closed)."""
        return None if self._closed else self._receive(timeout)

    def close(self) -> None:
        """Stop receiving; safe to call twice."""
        if not self._closed:
            self._closed = True
            self._release()

    @abstractmethod
    def _receive(self, timeout: float | None) -> Any | None:
        """`get` on an open subscription."""

    @abstractmethod
    def _release(self) -> None:
        """Let go of the channel, once, after `closed` became true."""

    def __iter__(self) -> Iterator[Any]:
        """Messages until closed (blocking); wakes every second to notice a close."""
        while not self.closed:
            message = self.get(timeout=1.0)
            if message is not None:
                yield message

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cache(ABC):
    """Latest value per key (JSON) plus publish/subscribe."""

    @abstractmethod
    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None: ...

    @abstractmethod
    def get(self, key: str) -> Any | None: ...

    @abstractmethod
    def set_many(self, values: Mapping[str, Any]) -> None:
        """Set several keys in one operation."""

    @abstractmethod
    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """Values of the keys that exist."""

    @abstractmethod
    def publish(self, channel: str, payload: Any) -> int:
        """Send a JSON message; returns how many subscribers received it."""

    @abstractmethod
    def subscribe(self, channel: str) -> Subscription: ...

    @abstractmethod
    def ping(self) -> bool:
        """True when the cache answers now; never raises."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the backend; never contains a password."""

    @abstractmethod
    def close(self) -> None: ...

    def set_snapshot(self, index: str, summary: Mapping[str, Any]) -> None:
        """Store the latest snapshot summary of one index."""
        self.set(KEY_PREFIX + index, dict(summary))

    def get_snapshot(self, index: str) -> dict[str, Any] | None:
        return self.get(KEY_PREFIX + index)

    def set_snapshots(self, summaries: Mapping[str, Mapping[str, Any]]) -> None:
        """Latest summaries of several indices in one operation."""
        self.set_many({KEY_PREFIX + k: dict(v) for k, v in summaries.items()})

    def get_snapshots(self, indices: list[str]) -> dict[str, dict[str, Any]]:
        found = self.get_many([KEY_PREFIX + k for k in indices])
        return {k[len(KEY_PREFIX):]: v for k, v in found.items()}

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _MemorySubscription(Subscription):
    def __init__(self, owner: MemoryCache, channel: str) -> None:
        self._owner = owner
        self.channel = channel
        self.queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def _receive(self, timeout: float | None) -> Any | None:
        try:
            raw = self.queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if raw is None else json.loads(raw)

    def _release(self) -> None:
        self._owner._unsubscribe(self)
        self.queue.put(None)  # wake a blocked get()


class MemoryCache(Cache):
    """In-process cache and pub/sub; values are stored as JSON so callers never share objects."""

    def __init__(self) -> None:
        self._data: dict[str, str] = {}
        self._subs: dict[str, list[_MemorySubscription]] = {}
        self._lock = threading.Lock()

    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        self._data[key] = dumps(value)

    def get(self, key: str) -> Any | None:
        raw = self._data.get(key)
        return None if raw is None else json.loads(raw)

    def set_many(self, values: Mapping[str, Any]) -> None:
        encoded = {k: dumps(v) for k, v in values.items()}
        with self._lock:
            self._data.update(encoded)

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        return {k: json.loads(self._data[k]) for k in keys if k in self._data}

    def publish(self, channel: str, payload: Any) -> int:
        raw = dumps(payload)
        with self._lock:
            subs = list(self._subs.get(channel, ()))
        for sub in subs:
            sub.queue.put(raw)
        return len(subs)

    def subscribe(self, channel: str) -> Subscription:
        sub = _MemorySubscription(self, channel)
        with self._lock:
            self._subs.setdefault(channel, []).append(sub)
        return sub

    def _unsubscribe(self, sub: _MemorySubscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.channel, [])
            if sub in subs:
                subs.remove(sub)

    def ping(self) -> bool:
        return True

    def describe(self) -> str:
        return "in-process cache"

    def close(self) -> None:
        with self._lock:
            subs = [s for group in self._subs.values() for s in group]
        for sub in subs:
            sub.close()


def open_cache(url: str | None = None) -> Cache:
    """`memory://` (default) or `redis://[:PASSWORD@]HOST:PORT/DB` (`rediss://` for TLS)."""
    text = (url or "memory://").strip()
    if text == "memory://":
        return MemoryCache()
    scheme = urlsplit(text).scheme
    if scheme in ("redis", "rediss"):
        return RedisCache(text)
    raise ConfigError(f"cache.url {text!r} is not supported: use memory:// or redis://HOST:PORT/DB")


CACHE_ADVICE = "start redis-server, or set cache.url = memory:// to use the in-process cache"
"""What to do when the configured cache's Redis does not answer."""


def unreachable(where: str, detail: str, advice: str = CACHE_ADVICE) -> StoreError:
    """The StoreError for a Redis at `where` (no password) that did not answer, with `advice`."""
    return StoreError(f"Redis at {where} is not reachable ({detail}): {advice}")


class _RedisSubscription(Subscription):
    def __init__(self, owner: RedisCache, channel: str) -> None:
        self._owner = owner
        self._pubsub = owner._client.pubsub(ignore_subscribe_messages=True)
        with owner._errors("subscribe"):
            self._pubsub.subscribe(channel)

    def _receive(self, timeout: float | None) -> Any | None:
        # Subscribe confirmations come back as None: keep waiting until a message or the deadline.
        wait = 3600.0 if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            with self._owner._errors("receive"):
                message = self._pubsub.get_message(timeout=max(0.0, wait))
            if message is not None and message.get("type") == "message":
                data = message["data"]
                return json.loads(data.decode("utf-8") if isinstance(data, bytes) else data)
            wait = deadline - time.monotonic()
            if wait <= 0 or self._closed:
                return None

    def _release(self) -> None:
        try:
            self._pubsub.close()
        except Exception:  # closing a dead connection must not raise
            pass


class RedisCache(Cache):
    """Redis (redis-py) with one connection pool; unreachable Redis raises a StoreError."""

    def __init__(self, url: str, timeout_s: float = 5.0, advice: str = CACHE_ADVICE) -> None:
        import redis

        self.advice = advice
        """Said after "not reachable": what to do (the configured cache's fix by default)."""

        parts = urlsplit(url)
        netloc = parts.hostname or "localhost"
        if parts.port:
            netloc += f":{parts.port}"
        self.where = f"{parts.scheme}://{netloc}{parts.path or '/0'}"  # no password
        try:
            self._client = redis.Redis.from_url(
                url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        except ValueError as exc:
            raise ConfigError(f"cache.url: {exc}: use redis://HOST:PORT/DB") from None
        self._redis = redis

    def __repr__(self) -> str:
        return f"RedisCache({self.where!r})"

    def _errors(self, action: str) -> _RedisErrors:
        return _RedisErrors(self, action)

    def set(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        with self._errors("set"):
            self._client.set(key, dumps(value), px=int(ttl_s * 1000) if ttl_s else None)

    def get(self, key: str) -> Any | None:
        with self._errors("get"):
            raw = self._client.get(key)
        return None if raw is None else json.loads(raw)

    def set_many(self, values: Mapping[str, Any]) -> None:
        if values:
            with self._errors("set"):
                self._client.mset({k: dumps(v) for k, v in values.items()})

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        if not keys:
            return {}
        with self._errors("get"):
            raws = self._client.mget(keys)
        return {k: json.loads(r) for k, r in zip(keys, raws, strict=True) if r is not None}

    def publish(self, channel: str, payload: Any) -> int:
        with self._errors("publish"):
            return int(self._client.publish(channel, dumps(payload)))

    def subscribe(self, channel: str) -> Subscription:
        return _RedisSubscription(self, channel)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except Exception:
            return False

    def describe(self) -> str:
        return f"Redis {self.where}"

    def close(self) -> None:
        self._client.close()


class _RedisErrors:
    """Turns redis-py connection and auth errors into one-line StoreErrors naming the fix."""

    def __init__(self, cache: RedisCache, action: str) -> None:
        self.cache = cache
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        errors = self.cache._redis.exceptions
        if isinstance(exc, errors.AuthenticationError):
            raise StoreError(
                f"Redis at {self.cache.where} refused the password: put the right one in "
                "cache.url (redis://:PASSWORD@HOST:PORT/DB)"
            ) from None
        if isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
            raise unreachable(self.cache.where, str(exc) or type(exc).__name__,
                              self.cache.advice) from None
        if isinstance(exc, errors.RedisError):
            raise StoreError(f"Redis {self.action} failed at {self.cache.where}: {exc}") from None
