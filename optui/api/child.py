"""`optui collect --serve`: the API in a child process of the collector.

Serving from the collector's own process shares its interpreter lock with collection, so a
request can wait behind a long stretch of cycle work. Instead the collector binds the address
itself (a bad address fails at once, and the port stays the same when the child is restarted),
makes the token (shown once, stored 0600), and starts `python -m optui.api.child` with the
listening socket inherited and a pipe on its stdin. Over the pipe it sends one JSON line:

    {"settings": {...settings_dict...}, "store_url": str, "latest_file": str | null,
     "cache_url": str | null, "host": str, "token": str, "fd": int}

The child follows this collector's published cycles exactly as `optui serve` does (the
latest-cycle file, or the Redis channel when a Redis cache is configured) and reads history
from the same store; it never collects. It exits when the pipe reaches end of file: the
collector stopped, or died (even by SIGKILL, the kernel closes the pipe). The collector restarts
a child that dies, logs why, and raises a health event.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optui.api.server import bind

if TYPE_CHECKING:
    from optui.config import Settings
    from optui.feed.model import Feed

log = logging.getLogger("optui.api")

RESTART_FIRST_S = 1.0
"""Wait before restarting a child that died; doubled per quick death up to RESTART_MAX_S."""
RESTART_MAX_S = 30.0
STEADY_S = 60.0
"""A child that ran this long before dying is restarted after RESTART_FIRST_S again."""

STOP_GRACE_S = 2.0
"""A child that exited cleanly on its own is restarted only if the collector is not stopping
within this long."""

Fault = Callable[[str], None]


class ApiChild:
    """The collector's side: binds `host:port`, runs and supervises the API child process.

    `spec` is the JSON-ready description sent to each child (see the module docstring; "fd"
    is filled in here). `on_fault(message)` is called (from the watch thread) whenever a child
    exits unasked. Raises OSError from `start()` when the address cannot be bound.
    """

    def __init__(self, host: str, port: int, spec: dict[str, Any], on_fault: Fault) -> None:
        self.host = host
        self.port = port
        self.spec = spec
        self.on_fault = on_fault
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="optui-api-child", daemon=True)

    @property
    def url(self) -> str:
        """http://HOST:PORT of the bound socket."""
        assert self.sock is not None
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> ApiChild:
        """Bind, start the first child and the thread that restarts it."""
        self.sock = bind(self.host, self.port)
        self._spawn()
        self._thread.start()
        return self

    def _spawn(self) -> None:
        assert self.sock is not None
        fd = self.sock.fileno()
        proc = subprocess.Popen([sys.executable, "-m", "optui.api.child"], stdin=subprocess.PIPE,
                                pass_fds=(fd,), close_fds=True)
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps({**self.spec, "fd": fd}, default=str).encode() + b"\n")
            proc.stdin.flush()
        except OSError as exc:  # it died at once: the watch thread restarts it
            log.warning("cannot brief the API process: %s", exc)
        self.proc = proc  # stdin stays open: its end of file tells the child to stop

    def _watch(self) -> None:
        delay = RESTART_FIRST_S
        while not self._stopping.is_set():
            proc = self.proc
            assert proc is not None
            began = time.monotonic()
            code = proc.wait()
            if self._stopping.is_set():
                return
            if code == 0 and self._stopping.wait(STOP_GRACE_S):
                return  # a SIGTERM to the whole group (a service manager): the collector stops too
            if time.monotonic() - began >= STEADY_S:
                delay = RESTART_FIRST_S
            what = f"signal {-code}" if code < 0 else f"code {code}"
            message = f"the API process {proc.pid} exited ({what}); restarting it in {delay:g} s"
            log.error("%s", message)
            try:
                self.on_fault(message)
            except Exception:  # noqa: BLE001 - reporting never stops the restarts
                log.exception("reporting the API process failure failed")
            if proc.stdin is not None:
                proc.stdin.close()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)
            self.restarts += 1
            try:
                self._spawn()
            except OSError as exc:
                log.error("cannot start the API process: %s", exc)
                self.on_fault(f"cannot start the API process: {exc}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the child to stop (close its pipe), wait, then terminate/kill; close the socket."""
        self._stopping.set()
        proc = self.proc
        if proc is not None:
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.sock is not None:
            self.sock.close()


def collector_spec(settings: Settings, feed: Any, store_url: str, token: str) -> dict[str, Any]:
    """What a child needs to follow `feed` (a started LocalFeed): the settings as this
    collector runs them, its store URL, its latest-cycle file or Redis cache, its host."""
    from optui.config import settings_dict

    lock = getattr(feed, "lock", None)
    latest = getattr(feed, "latest_file", None)
    return {"settings": settings_dict(settings), "store_url": store_url,
            "latest_file": str(latest) if latest is not None else None,
            "cache_url": getattr(lock, "cache_url", None) or None, "host": getattr(feed, "host", ""),
            "token": token}


def _follow(settings: Settings, spec: dict[str, Any]) -> Callable[[], tuple[Feed | None, str]]:
    from optui.api.serve import FILE_POLL_S
    from optui.feed.attached import FileFeed, RedisFeed

    def follow() -> tuple[Feed | None, str]:
        if spec.get("cache_url"):
            return RedisFeed(spec["cache_url"], None, settings, host=spec.get("host", "")), "collecting"
        if spec.get("latest_file"):
            return (FileFeed(Path(spec["latest_file"]), None, settings, host=spec.get("host", ""),
                             poll_s=FILE_POLL_S), "collecting")
        return None, "the collector publishes no cycles"
    return follow


def main() -> int:
    """The child: read the brief, serve until the pipe closes or SIGTERM; exit code 0 (2 when
    the brief is unreadable)."""
    from optui.api.auth import TokenInfo
    from optui.api.serve import Follower, read_only_store, serve_until, start_server
    from optui.api.state import ApiState
    from optui.config import Settings, _apply
    from optui.logs import setup_logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the collector, which stops us
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    line = sys.stdin.buffer.readline()
    if not line:
        return 0
    try:
        spec = json.loads(line)
        settings = Settings()
        _apply(settings, spec["settings"], "collector")
    except (ValueError, KeyError, TypeError) as exc:
        print(f"optui API process: unreadable brief from the collector: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings, to_stderr=True)

    def parent_gone() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        finally:
            stop.set()

    threading.Thread(target=parent_gone, name="optui-api-parent", daemon=True).start()
    sock = socket.socket(fileno=int(spec["fd"]))
    state = ApiState(settings, read_only_store(settings, spec["store_url"]) if spec.get("store_url") else None)

    def quiet(text: str, style: str = "") -> None:
        log.log(logging.WARNING if style in ("yellow", "red") else logging.INFO, "%s", text)

    follower = Follower(settings, state, None, quiet, follow=_follow(settings, spec), mode="local")
    follower.connect()
    server = start_server(state, "", 0, TokenInfo(spec["token"], "collector"), sock=sock)
    follower.start()
    log.info("API process %d serving %s for the collector %d", os.getpid(), server.url, os.getppid())
    return serve_until(stop, server, follower, state)


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ApiChild", "collector_spec", "main"]
