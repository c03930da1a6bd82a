"""One collector per store and source: a lock file on this machine and a Redis lease.

The lock file (`fcntl.flock`, held for the collector's life) records the holder as JSON
`{"pid", "host", "since", "store", "source"}`; the kernel releases it when the process dies, so
a killed collector never leaves a stale lock behind. With a Redis cache configured the collector
also holds a lease in Redis (`SET NX PX`, renewed every third of its length, deleted on exit) so
collectors on other machines writing the same store see it; a SIGKILLed holder's lease expires
after `cache.lease_s` seconds. `since` is the wall-clock time the lock was taken (shown in IST):
it is the collector's age, not a market moment.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from optui.errors import OptuiError
from optui.timeutil import fmt_ist

log = logging.getLogger(__name__)

LEASE_PREFIX = "optui:collector:"
"""Redis key prefix of a collector's lease (optui:collector:<store key>)."""

SELF_RELEASE_WAIT_S = 15.0
"""How long a new lock waits for this same process's previous holder (a closing dashboard feed,
which may be flushing a spool) before giving up."""

_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
)


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a collector lock: process id, host name, since when (aware UTC), what for."""

    pid: int
    host: str
    since: datetime
    store: str = ""
    source: str = ""

    def describe(self) -> str:
        """'pid 4242 on box, since 2026-11-29 14:02:11 IST'."""
        return f"pid {self.pid} on {self.host}, since {fmt_ist(self.since, with_date=True)}"

    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def as_json(self) -> str:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Holder | None:
        """The holder a lock file or lease recorded; None when it is empty or unreadable."""
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), datetime.fromisoformat(data["since"]),
                       str(data.get("store", "")), str(data.get("source", "")))
        except (ValueError, KeyError, TypeError):
            return None


class CollectorRunning(OptuiError):
    """Another collector holds the lock of this store and source; `holder` says which."""

    def __init__(self, holder: Holder | None, store: str, where: str) -> None:
        who = holder.describe() if holder is not None else "another process"
        super().__init__(
            f"a collector is already writing {store} ({who}; lock {where}): stop it first, or "
            "watch it with optui dashboard (it attaches to the running collector)"
        )
        self.holder = holder


def redact(url: str) -> str:
    """A store or cache URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def store_key(store_url: str, source: str) -> str:
    """A short stable name for a store and source (a SQLite file by its absolute path)."""
    text = store_url
    if store_url.startswith("sqlite:///"):
        text = "sqlite:///" + str(Path(store_url[len("sqlite:///"):]).expanduser().resolve())
    return hashlib.sha256(f"{redact(text)}|{source}".encode()).hexdigest()[:16]


def lock_path(store_url: str, source: str, data_dir: Path) -> Path:
    """Where the lock file of a store and source lives: next to a SQLite file, else under
    `data_dir/run`."""
    key = store_key(store_url, source)
    if store_url.startswith("sqlite:///"):
        db = Path(store_url[len("sqlite:///"):]).expanduser().resolve()
        return db.with_name(f"{db.name}.collect-{source}.lock")
    return data_dir / "run" / f"collect-{key}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(path: Path) -> Holder | None:
    """The live holder of a lock file, or None (no file, nobody holds it, or its pid is dead on
    this host)."""
    try:
        with open(path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: read who holds it
            else:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
                return None
            holder = Holder.from_json(handle.read())
    except FileNotFoundError:
        return None
    if holder is not None and holder.host == socket.gethostname() and not _pid_alive(holder.pid):
        return None
    return holder


def read_lease(cache_url: str, store_url: str, source: str) -> Holder | None:
    """The holder of the Redis lease of a store and source, or None (none, or Redis down)."""
    import redis

    client = redis.Redis.from_url(cache_url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        raw = client.get(LEASE_PREFIX + store_key(store_url, source))
    except redis.RedisError as exc:
        log.warning("cannot read the collector lease at %s: %s", redact(cache_url), exc)
        return None
    finally:
        client.close()
    return Holder.from_json(raw) if raw else None


class CollectorLock:
    """Held by the one collector of a store and source; `acquire()` or CollectorRunning.

    `cache_url` (redis://...) adds the Redis lease; `lease_s` is its length in seconds;
    `self_wait_s` how long to wait when this same process holds the lock (a closing feed).
    """

    def __init__(self, store_url: str, source: str, data_dir: Path, cache_url: str = "",
                 lease_s: float = 30.0, self_wait_s: float = SELF_RELEASE_WAIT_S) -> None:
        self.store = redact(store_url)
        self.self_wait_s = self_wait_s
        self.source = source
        self.path = lock_path(store_url, source, data_dir)
        self.key = LEASE_PREFIX + store_key(store_url, source)
        self.cache_url = cache_url if cache_url.startswith(("redis://", "rediss://")) else ""
        self.lease_ms = max(1000, int(lease_s * 1000))
        self.holder = Holder(os.getpid(), socket.gethostname(), datetime.now(UTC), self.store, source)
        self._fd: int | None = None
        self._client: Any = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False
        """True once the lease was found taken by another collector (renewal came too late)."""

    def acquire(self) -> CollectorLock:
        """Take the lock file, then the lease; raises CollectorRunning naming the holder, or
        OptuiError when the lock file cannot be created."""
        self._take_file()
        if self.cache_url:
            try:
                self._take_lease()
            except BaseException:
                self._drop_file()
                raise
        return self

    def _take_file(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OptuiError(f"cannot create the collector lock {self.path}: {exc.strerror}") from None
        deadline = time.monotonic() + self.self_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = Holder.from_json(os.pread(fd, 4096, 0))
                if holder is not None and holder.is_this_process() and time.monotonic() < deadline:
                    time.sleep(0.1)  # this process's previous feed is still closing
                    continue
                os.close(fd)
                raise CollectorRunning(holder, self.store, str(self.path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.holder.as_json().encode() + b"\n", 0)
        self._fd = fd

    def _drop_file(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def _take_lease(self) -> None:
        import redis

        from optui.storage.cache import unreachable

        self._client = redis.Redis.from_url(self.cache_url, socket_timeout=5.0, socket_connect_timeout=5.0)
        value = self.holder.as_json()
        try:
            taken = self._client.set(self.key, value, nx=True, px=self.lease_ms)
            if not taken:
                raw = self._client.get(self.key)
                raise CollectorRunning(Holder.from_json(raw) if raw else None, self.store,
                                       f"redis lease {self.key}")
        except redis.RedisError as exc:
            # Redis down at start must not stop collection (the store side holds up without
            # it): the lock file guards this machine and the lease is taken once Redis answers.
            log.warning("%s: collecting without the lease until Redis answers",
                        unreachable(redact(self.cache_url), str(exc)))
        except BaseException:
            self._client.close()
            self._client = None
            raise
        self._value = value
        self._renewer = threading.Thread(target=self._renew, name="optui-lease", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        import redis

        every = self.lease_ms / 3000.0
        down = False
        while not self._stop.wait(every):
            try:
                kept = self._client.eval(_RENEW, 1, self.key, self._value, self.lease_ms)
            except redis.RedisError as exc:
                if not down:  # once per outage
                    log.warning("cannot renew the collector lease %s: %s", self.key, exc)
                down = True
                continue
            down = False
            if not kept:
                # Gone (expired while Redis was away): take it again unless another holds it.
                try:
                    if not self._client.set(self.key, self._value, nx=True, px=self.lease_ms):
                        if not self.lost:
                            log.error("the collector lease %s was taken by %s", self.key,
                                      self._client.get(self.key))
                        self.lost = True
                except redis.RedisError as exc:
                    log.warning("cannot renew the collector lease %s: %s", self.key, exc)

    def release(self) -> None:
        """Give up the lease and the lock file; safe to call twice."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10.0)
            self._renewer = None
        if self._client is not None:
            try:
                self._client.eval(_RELEASE, 1, self.key, self._value)
            except Exception as exc:  # noqa: BLE001 - the lease then expires on its own
                log.warning("cannot release the collector lease %s: %s", self.key, exc)
            self._client.close()
            self._client = None
        self._drop_file()

    def __enter__(self) -> CollectorLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def running_collector(store_url: str, source: str, data_dir: Path, cache_url: str = "") -> Holder | None:
    """The collector holding this store and source (lock file first, then the Redis lease), or
    None when no collector runs."""
    holder = read_holder(lock_path(store_url, source, data_dir))
    if holder is None and cache_url.startswith(("redis://", "rediss://")):
        holder = read_lease(cache_url, store_url, source)
    return holder
