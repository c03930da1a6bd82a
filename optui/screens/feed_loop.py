"""The dashboard's one long-lived thread worker: it owns the feed loop and only posts messages.

`FeedLoop.run` runs in a Textual thread worker for as long as the screen is mounted. It starts
the feed, takes each cycle when the feed says it is due (`Feed.delay_s`: the collector's
exchange-clock schedule, a replay's speed, or 0 for an attached feed that waits on its own), and
between cycles runs the store reads the screen asks for (premium flow, participants, IV
history). Every result leaves as one typed message (optui.ui_messages); the screen's handlers
alone touch widgets. The screen steers the loop with thread-safe calls: `collect_now`,
`restart` (a fresh feed after a re-login), `request` (a read), `control` (a replay's pause,
step, speed, jump) and `stop`.

A rejected access token pauses the loop (no retry against a dead token) until the screen calls
`restart` after a re-login, or `collect_now` when the user presses r.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any

from textual.message import Message

from optui.errors import OptuiError, TokenExpiredError
from optui.feed.model import Feed, FeedCycle
from optui.ui_messages import (
    CollectionFailed,
    CycleAwaited,
    EngineFailed,
    FeedNote,
    FeedStarted,
    FlowQueried,
    FlowQueryFailed,
    SnapshotCollected,
    TokenExpired,
)

log = logging.getLogger(__name__)

ATTACHED_WAIT_S = 0.25
"""An attached feed's wait for the collector's next cycle is cut into pieces this long, so a
read the screen asks for (or the screen going away) waits at most that long."""

FRAME_WAIT_S = 0.25
"""A cycle handed over before it is stored (`Feed.show_before_store`) is published for attached
consumers and stored once the screen wrote its frame (`frame_written`), or this long after it
was posted when no frame says so (the message superseded, the app suspended): the screen applies
it and writes its frame without sharing the GIL with the publication's encoding or the store
(tens of ms of CPU each); the next cycle is due no sooner than a second later."""

Job = Callable[[Feed | None], Message | None]
"""A read run between cycles with the current feed (None before one started); returns the
message to post, or None."""


def close_quietly(feed: Feed) -> None:
    """Close a feed; a failure goes to the log, never to the caller."""
    try:
        feed.close()
    except Exception:  # noqa: BLE001 - closing must never take the app down
        log.debug("closing the feed failed", exc_info=True)


def flow_job(index: str, timeframe: str, start: datetime, end: datetime) -> Job:
    """Premium flow of `index` in `timeframe` bars over [start, end) from the feed's store."""
    def run(feed: Feed | None) -> Message | None:
        if feed is None:
            return None
        try:
            return FlowQueried(feed.flow_series(index, timeframe, start, end))
        except OptuiError as exc:
            return FlowQueryFailed(index, timeframe, str(exc))
        except Exception as exc:  # noqa: BLE001 - the screen must keep running
            log.exception("premium flow query failed")
            return FlowQueryFailed(index, timeframe, f"{exc} (details in the log)")
    return run


class FeedLoop:
    """Owns one feed for a screen: start, cycles on the feed's cadence, reads on request.

    `feed` is used as given, else `make_feed()` builds one (in the worker; it may block).
    `post` delivers a message to the screen (thread-safe: Screen.post_message). `views(cycle)`
    formats display rows off the event loop (plain data for SnapshotCollected.views). With
    `collect` False the feed is started and read, never cycled. `owns_feed`: the loop closes the
    feed when it stops or restarts.
    """

    def __init__(self, post: Callable[[Message], Any], *, feed: Feed | None = None,
                 make_feed: Callable[[], Feed] | None = None, owns_feed: bool = True,
                 collect: bool = True,
                 views: Callable[[FeedCycle], dict] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if feed is None and make_feed is None:
            raise ValueError("FeedLoop needs a feed or a way to make one")
        self._post = post
        self._make_feed = make_feed
        self._owns_feed = owns_feed
        self._views = views
        self._mono = monotonic
        self.collect_enabled = collect
        self.feed: Feed | None = feed
        self.started = False
        self.paused = False
        """A rejected token or a failed start: no cycle until `collect_now` or `restart`."""
        self.collecting = False
        """A cycle is running (a second request for one is ignored: cycles never overlap)."""
        self._cond = threading.Condition()
        self._jobs: deque[Job] = deque()
        self._want_start = True
        self._want_cycle = False
        self._due: float | None = None  # monotonic time of the next cycle; None: ask the feed
        self._stopping = False
        self._waiting = False
        self._wait_until: float | None = None
        self._ended_said = False
        self._store_later = False  # the feed stores each cycle after it is posted
        self._framed: Message | None = None  # the last cycle message whose frame is written

    # ---- the screen's side (any thread) ------------------------------------------------

    @property
    def idle(self) -> bool:
        """Waiting with nothing asked of it: no read queued and no cycle due now."""
        with self._cond:
            if not self._waiting or self._jobs or self._want_cycle:
                return False
            if self._want_start and (self.collect_enabled or self.feed is not None):
                return False
            return self._wait_until is None or self._wait_until > self._mono()

    @property
    def scheduled(self) -> bool:
        """A next cycle will come on the feed's cadence (started, not paused, not ended)."""
        feed = self.feed
        return (self.started and not self.paused and self.collect_enabled and feed is not None
                and not feed.ended and math.isfinite(feed.delay_s() if feed.replay else 0.0))

    def _wake(self) -> None:
        self._cond.notify_all()

    def collect_now(self) -> None:
        """A cycle now (r): ignored while one runs; retries a failed start; resumes a pause."""
        with self._cond:
            if self.collecting:
                return
            if not self.started:
                self._want_start = True
            else:
                self.paused = False
                self._want_cycle = True
            self._wake()

    def restart(self) -> None:
        """Close the feed (when owned) and start a fresh one: a re-login's new token is read
        when the source is built."""
        with self._cond:
            if self._owns_feed and self._make_feed is not None:
                old, self.feed = self.feed, None
                self.started = False
                if old is not None:
                    self._jobs.append(lambda _feed: close_quietly(old))
                self._want_start = True
            else:
                self.paused = False
                self._want_cycle = True
            self._wake()

    def request(self, job: Job) -> None:
        """Run `job` between cycles and post what it returns."""
        with self._cond:
            self._jobs.append(job)
            self._wake()

    def control(self, change: Callable[[Feed], str | None], cycle: bool = False) -> None:
        """Apply `change` to the feed between cycles (a replay's pause, speed or jump), post the
        line it returns to the health log, re-read the feed's cadence, and with `cycle` take
        one cycle at once (a step, or the first cycle after a jump)."""
        def run(feed: Feed | None) -> Message | None:
            if feed is None:
                return None
            try:
                text = change(feed)
            except OptuiError as exc:
                return FeedNote("error", str(exc))
            with self._cond:
                self._due = None
                if cycle and not self.collecting:
                    self._want_cycle = True
                if not feed.ended:
                    self._ended_said = False
            return FeedNote("info", text) if text else None

        self.request(run)

    def reschedule(self) -> None:
        """Ask the feed again when its next cycle is due (its cadence changed)."""
        with self._cond:
            self._due = None
            self._wake()

    def frame_written(self, message: Message) -> None:
        """The screen wrote the frame of `message` (a SnapshotCollected): the cycle's
        publication and storing may start (any thread)."""
        with self._cond:
            self._framed = message
            self._wake()

    def stop(self) -> None:
        """End the loop after the current step; the worker closes an owned feed."""
        with self._cond:
            self._stopping = True
            self._wake()

    # ---- the worker's side ---------------------------------------------------------------

    def run(self, cancelled: Callable[[], bool] = lambda: False) -> None:
        """The worker's body: until `stop()` (or `cancelled()`), do the next thing due."""
        try:
            while True:
                step = self._next_step(cancelled)
                if step is None:
                    return
                step()
        finally:
            feed, self.feed = self.feed, None
            if feed is not None and self._owns_feed:
                close_quietly(feed)

    def _send(self, message: Message | None) -> None:
        if message is not None and not self._stopping:
            self._post(message)

    def _next_step(self, cancelled: Callable[[], bool]) -> Callable[[], None] | None:
        with self._cond:
            while True:
                if self._stopping or cancelled():
                    return None
                if self._jobs:
                    job = self._jobs.popleft()
                    feed = self.feed
                    return lambda: self._send(job(feed))
                if self._want_start and (self.collect_enabled or self.feed is not None):
                    self._want_start = False
                    return self._start
                wait: float | None = None
                if self.started and self.collect_enabled and not self.paused and self.feed is not None:
                    if self._want_cycle:
                        self._want_cycle = False
                        return self._cycle
                    if self._due is None:
                        delay = self.feed.delay_s()
                        self._due = self._mono() + delay if math.isfinite(delay) else math.inf
                    wait = self._due - self._mono()
                    if wait <= 0:
                        return self._cycle
                    if math.isinf(wait):
                        wait = None
                self._waiting = True
                self._wait_until = None if wait is None else self._mono() + wait
                try:  # at most a second at a time: a cancelled worker notices it
                    self._cond.wait(1.0 if wait is None else min(wait, 1.0))
                finally:
                    self._waiting = False

    def _start(self) -> None:
        try:
            feed = self.feed
            if feed is None:
                assert self._make_feed is not None
                feed = self._make_feed()
            description = feed.start()
        except OptuiError as exc:
            self._send(EngineFailed(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a message, trace to the log
            log.exception("starting the feed failed")
            self._send(EngineFailed(f"cannot start collection: {exc} (details in the log)"))
            return
        with self._cond:
            if self._stopping:
                if self._owns_feed:
                    close_quietly(feed)
                return
            self.feed = feed
            # A local feed hands each cycle over before storing it: the screen shows it first.
            self._store_later = self.collect_enabled and feed.show_before_store()
            self.started = True
            self.paused = False
            self._due = None
            self._want_cycle = self.collect_enabled
        self._send(FeedStarted(feed, description))

    def _cycle(self) -> None:
        feed = self.feed
        assert feed is not None
        with self._cond:
            self.collecting = True
        failed: Message | None = None
        try:
            message = self._collect(feed)
            self._send(message)
            if self._store_later:  # published, then stored (rows, files, day state), once on screen
                if isinstance(message, SnapshotCollected):
                    self._await_frame(message)
                failed = self._store(feed)
        finally:
            with self._cond:
                self.collecting = False
                self._due = None
        self._send(failed)

    def _await_frame(self, message: Message) -> None:
        """Wait until the screen wrote `message`'s frame (`frame_written`), the loop stops, or
        FRAME_WAIT_S passed."""
        until = time.monotonic() + FRAME_WAIT_S  # real seconds, whatever clock schedules cycles
        with self._cond:
            while self._framed is not message and not self._stopping:
                left = until - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(left)

    @staticmethod
    def _store(feed: Feed) -> Message | None:
        """Store the cycle just posted; the store's own failures ride on the next cycle as
        warnings, anything else is posted as a failed collection (trace to the log)."""
        try:
            feed.store_cycle()
        except OptuiError as exc:
            return CollectionFailed(str(exc), type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the screen must keep running
            log.exception("storing the cycle failed")
            return CollectionFailed(f"storing the cycle failed: {exc} (details in the log)",
                                    "unexpected")
        return None

    def _collect(self, feed: Feed) -> Message | None:
        try:
            cycle = feed.next_cycle(timeout_s=ATTACHED_WAIT_S)
        except TokenExpiredError as exc:
            with self._cond:
                self.paused = True  # no retry loop against a dead token
            return TokenExpired(str(exc))
        except OptuiError as exc:
            return CollectionFailed(str(exc), type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - the screen must keep running
            log.exception("collection cycle failed")
            return CollectionFailed(f"collection failed: {exc} (details in the log)", "unexpected")
        if cycle is None:
            if feed.ended and not self._ended_said:
                self._ended_said = True
                return FeedNote("info", "the replay reached the end of its recording: "
                                "j jumps to another time", ended=True)
            return None  # an attached feed's wait ended without a cycle: the loop waits again
        if cycle.snapshot is None:  # a gap the collector published: its events say why
            return CycleAwaited(cycle.health, cycle.cached_age_s)
        views = self._views(cycle) if self._views is not None else {}
        return SnapshotCollected(cycle.snapshot, views, cycle)


__all__ = ["ATTACHED_WAIT_S", "FRAME_WAIT_S", "FeedLoop", "Job", "close_quietly", "flow_job"]
