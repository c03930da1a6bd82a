"""`optui serve` and `optui collect --serve`: the token, the state, the feed it follows, the server.

`optui serve` never collects: it follows the collector running on the configured store (over
its Redis cache, or its latest-cycle file on this machine), or the one `--attach redis://...`
names, and reads history from the configured store. With no collector running it says so and
serves stored history, and attaches as soon as one starts. `optui collect --serve` serves the
collector's own LocalFeed: each cycle is offered to the API as it is collected.
"""

from __future__ import annotations

import copy
import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optui.api.auth import TokenInfo, TokenSource, check_bind, ensure_token
from optui.api.server import ApiServer, bind
from optui.api.state import ApiState
from optui.errors import ConfigError, OptuiError

if TYPE_CHECKING:
    from optui.config import Settings
    from optui.feed.model import Feed

log = logging.getLogger("optui.api")

Printer = Callable[[str, str], None]
LOOK_AGAIN_S = 5.0
"""Without a collector, how often (real seconds) `optui serve` looks for one starting."""
FILE_POLL_S = 0.02
"""How often (real seconds) a latest-cycle file's modification time is checked: one stat call,
so a new cycle is served within about 20 ms of its write."""


def prepare_token(host: str, rotate: bool = False) -> TokenInfo:
    """The token to serve with (generated on first use, rotated on request); refuses a
    non-loopback `host` without a token set beforehand. Raises ConfigError."""
    import os

    from optui.api.auth import TOKEN_ENV, is_loopback, stored_token

    if not rotate and not is_loopback(host) and not os.environ.get(TOKEN_ENV) and not stored_token():
        check_bind(host, TokenInfo("", "generated"))  # refuses before a token is made unseen
    info = ensure_token(rotate=rotate)
    check_bind(host, info)
    return info


def announce_token(info: TokenInfo, printer: Printer) -> None:
    """Show a token this run created, once, on the console (never in the log)."""
    if info.new:
        what = "new API token" if info.origin == "rotated" else "API token generated"
        printer(f"{what} (shown once; stored 0600 in {info.path}): {info.token}", "bold")
    elif info.origin == "environment":
        printer("API token: from OPTUI_API_TOKEN", "")
    else:
        printer(f"API token: api_token in {info.path} (rotate with `optui serve --rotate-token`)", "")


def start_server(state: ApiState, host: str, port: int, info: TokenInfo,
                 sock: socket.socket | None = None) -> ApiServer:
    """Bind host:port (or serve on `sock`, already listening), build the app and the WebSocket
    hub, start serving (and the state's hub thread). Raises OSError when the address cannot be
    bound."""
    from optui.api.app import create_app
    from optui.api.hub import Hub

    if sock is None:
        sock = bind(host, port)
    hub = Hub(state.settings.api.ws_queue)
    state.hub = hub
    state.start()
    server = ApiServer(create_app(state, TokenSource(info.token)), sock, on_loop=hub.attach_loop)
    try:
        server.start()
    except BaseException:
        sock.close()
        raise
    return server


def read_only_store(settings: Settings, url: str) -> Any:
    """The store at `url` for reading (no spool of its own: a collector owns that); None with a
    warning when it cannot be opened."""
    from optui.storage.base import open_store

    quiet = copy.deepcopy(settings)
    quiet.store.spool_dir = None  # type: ignore[assignment]
    try:
        return open_store(url, quiet)
    except OptuiError as exc:
        log.warning("the API serves no history: %s", exc)
        return None


def collector_feed(settings: Settings, attach: str | None) -> tuple[Feed | None, str]:
    """A feed following the collector `attach` names, else the one running on the configured
    store and source; (None, why) when none runs. Never a LocalFeed."""
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.config import redact_url
    from optui.feed.attached import FileFeed, RedisFeed
    from optui.feed.lock import lock_path, running_collector

    if attach:
        return RedisFeed(attach, None, settings), f"following {redact_url(attach)}"
    kind = settings.source.kind
    url = store_url_for(settings, is_simulated(settings, kind))
    data_dir = Path(settings.general.data_dir)
    holder = running_collector(url, kind, data_dir, settings.cache.url)
    if holder is None:
        return None, f"no collector is running for {redact_url(url)} (source {kind})"
    if settings.cache.url.startswith(("redis://", "rediss://")):
        return RedisFeed(settings.cache.url, None, settings, host=holder.host), f"collector {holder.describe()}"
    latest = lock_path(url, kind, data_dir).with_suffix(".latest.json")
    return FileFeed(latest, None, settings, host=holder.host, poll_s=FILE_POLL_S), f"collector {holder.describe()}"


class Follower:
    """A thread feeding ApiState from a collector running elsewhere; without one it looks
    again every LOOK_AGAIN_S seconds (it never starts collecting)."""

    def __init__(self, settings: Settings, state: ApiState, attach: str | None,
                 printer: Printer, follow: Callable[[], tuple[Feed | None, str]] | None = None,
                 mode: str = "attached") -> None:
        self.follow = follow
        """The feed to follow, when given (the collector that started this server), else
        collector_feed's; `mode` is what /api/health calls the connection."""
        self.mode = mode
        self.settings = settings
        self.state = state
        self.attach = attach
        self.printer = printer
        self.stop_event = threading.Event()
        self.feed: Feed | None = None
        self._thread = threading.Thread(target=self._run, name="optui-api-feed", daemon=True)

    def connect(self) -> bool:
        """Find and start the collector's feed; True when attached."""
        from optui.api.state import Collector

        feed, why = self.follow() if self.follow is not None else collector_feed(self.settings, self.attach)
        if feed is None:
            if self.state.collector.mode != "none" or not self.state.collector.description:
                self.printer(f"{why}: serving stored history only; attaching when one starts "
                             "(this server never collects)", "yellow")
            self.state.collector = Collector("none", "", why)
            return False
        try:
            started = feed.start()
        except OptuiError as exc:
            feed.close()
            self.state.collector = Collector("none", "", f"cannot follow the collector: {exc}")
            self.printer(f"cannot follow the collector: {exc}", "yellow")
            return False
        self.feed = feed
        self.state.collector = Collector(self.mode, feed.attached_to, started)
        self.printer(started, "")
        return True

    def start(self) -> Follower:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self.stop_event.is_set():
            if self.feed is None and not self.connect():
                self.stop_event.wait(LOOK_AGAIN_S)
                continue
            feed = self.feed
            assert feed is not None
            try:
                cycle = feed.next_cycle(timeout_s=1.0)
            except OptuiError as exc:
                log.warning("following the collector: %s", exc)
                self.stop_event.wait(max(1.0, feed.delay_s()))
                continue
            except Exception:  # noqa: BLE001 - the API keeps serving
                log.exception("following the collector failed")
                self.stop_event.wait(LOOK_AGAIN_S)
                continue
            if cycle is not None:
                if cycle.host:
                    self.state.collector.host = cycle.host
                self.state.offer(cycle)

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(timeout=10.0)
        if self.feed is not None:
            self.feed.close()


def serve(settings: Settings, host: str, port: int, attach: str | None, printer: Printer,
          stop: threading.Event) -> int:
    """Run `optui serve` until `stop` is set; returns the exit code (2 for a setup problem)."""
    from optui.collectors.engine import is_simulated, store_url_for

    try:
        info = prepare_token(host)
    except ConfigError as exc:
        printer(f"error: {exc}", "red")
        return 2
    announce_token(info, printer)
    url = settings.store.url if attach else store_url_for(settings, is_simulated(settings))
    state = ApiState(settings, read_only_store(settings, url))
    follower = Follower(settings, state, attach, printer)
    follower.connect()
    try:
        server = start_server(state, host, port, info)
    except OSError as exc:
        follower.stop()
        printer(f"error: cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port", "red")
        return 2
    printer(f"optui API on {server.url} (docs at {server.url}/docs; bearer token required)", "bold")
    follower.start()
    return serve_until(stop, server, follower, state)


def serve_until(stop: Any, server: Any, follower: Any, state: Any) -> int:
    """Block until `stop` (a threading.Event) is set, then stop the server, the follower and
    the state and its store, in that order; returns 0 (the exit status)."""
    try:
        stop.wait()
    finally:
        server.stop()
        follower.stop()
        state.close()
        if state.store is not None:
            state.store.close()
    return 0


def serve_local_feed(settings: Settings, feed: Any, host: str, port: int,
                     printer: Printer) -> tuple[ApiServer, ApiState]:
    """Serve a collector's own LocalFeed (optui collect --serve): each collected cycle is
    offered to the API by the feed. Raises ConfigError (token, address) or OSError (bind)."""
    from optui.api.state import Collector

    info = prepare_token(host)
    announce_token(info, printer)
    state = ApiState(settings, feed.store)
    state.collector = Collector("local", getattr(feed, "host", ""), "collecting here")
    feed.listeners.append(state.offer)
    try:
        server = start_server(state, host, port, info)
    except BaseException:
        feed.listeners.remove(state.offer)
        state.close()
        raise
    printer(f"optui API on {server.url} (docs at {server.url}/docs; bearer token required)", "bold")
    return server, state


def serve_collector(settings: Settings, feed: Any, store_url: str, host: str, port: int,
                    printer: Printer, supervisor: Any = None) -> Any:
    """Serve a running collector's cycles from a child process (optui collect --serve; see
    optui.api.child): binds host:port here, shows the token once, starts the child. A child
    that dies is restarted, and its failure is printed, logged and, with `supervisor` (the
    collector's), raised as a health event. Returns the ApiChild (stop() it with the
    collector). Raises ConfigError (token, address) or OSError (bind, start)."""
    from optui.api.child import ApiChild, collector_spec

    info = prepare_token(host)
    announce_token(info, printer)

    def fault(message: str) -> None:
        printer(f"API: {message}", "red")
        if supervisor is not None:
            from optui.collectors.health import EventKind, Severity

            # In the health log now; the collector's next cycle writes it to the health file.
            supervisor._event(EventKind.OTHER, Severity.ERROR, message,
                              "the API is restarted; see logs/optui.log for why it stopped")

    child = ApiChild(host, port, collector_spec(settings, feed, store_url, info.token), fault)
    child.start()
    printer(f"optui API on {child.url} (docs at {child.url}/docs; bearer token required; "
            f"process {child.proc.pid if child.proc else '?'})", "bold")
    return child


__all__ = ["Follower", "announce_token", "collector_feed", "prepare_token", "serve",
           "serve_collector", "serve_local_feed", "start_server"]
