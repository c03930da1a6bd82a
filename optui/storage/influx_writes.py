"""InfluxStore's write side: format, cut into POST-sized chunks, send, spool or set aside.

Writes never depend on the server being up: chunks the server cannot take now (unreachable, 5xx,
refused credentials) go to the on-disk spool and are replayed in order before anything newer once
it answers. Lines the server refuses (HTTP 400: a field type conflict, a point outside the
retention policy) are set aside in `rejected.lp` with the server's reason while every other line is
written. Formatting is the client's cost and the POST the server's, so a write keeps up to two
chunks queued on one sender thread while the next is formatted: the sender goes from one POST
straight to the next and a write runs close to the rate of posting ready-made lines.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import threading
import time
from abc import abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optui.errors import StoreError
from optui.storage.base import Store
from optui.storage.influx_answers import (
    CredentialsRejected,
    Rejected,
    TooLarge,
    Unavailable,
    conflicting_lines,
)
from optui.storage.line_protocol import LineBatch, LineFormatter, log_dropped
from optui.storage.points import Point
from optui.storage.spool import Spool, SpoolStatus

log = logging.getLogger(__name__)

HELD_DIR = "held"
"""Subdirectory of the spool holding, on disk, the batches that arrive while a write outlives its
budget (a spool of its own, moved into the spool behind that write once its outcome is known)."""
_HELD_OWNER = ".owner"  # flock held by the process whose writes are held there

MAX_BODY = 8 << 20
"""Bytes of line protocol per POST at most (a chunk is split to stay under)."""
_QUEUED = 2  # chunks handed to the sender thread at once: one in flight, the next waiting
# While the next chunk is formatted the sender thread waits for the GIL to read each answer and
# send the next chunk, by default up to 5 ms each time (sys.getswitchinterval): a tenth of a
# 5000-line POST to a local server. A shorter interval while chunks are in flight lets it in sooner.
_SWITCH_S = 0.0005
_switching = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def _prompt_sender() -> Iterator[None]:
    """A short GIL switch interval for the duration (restored when the last user leaves)."""
    global _switch_users, _switch_saved
    with _switching:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_SWITCH_S, _switch_saved))
        _switch_users += 1
    try:
        yield
    finally:
        with _switching:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


class _Skipped(Exception):
    """A queued chunk not sent because an earlier chunk of the same write could not be: it is
    spooled behind that one, keeping the order."""


class InfluxWriter(Store):
    """The write path of InfluxStore (see the module docstring); the subclass supplies `_send`
    (one POST) and `unreachable` (the error for a server that does not answer)."""

    url: str
    batch_size: int
    retry_after_s: float
    _lock: threading.RLock

    def _init_writes(self, spool: Spool | None) -> None:
        self.spool = spool
        self._formatter = LineFormatter()
        self._spool_pending: bool | None = None  # unknown until first write
        self._refused: CredentialsRejected | None = None  # credentials the server last refused
        self._retry_at = 0.0  # monotonic time before which writes spool without trying the server
        self._replayed = 0
        self._pool: ThreadPoolExecutor | None = None  # sends chunks while the next is formatted
        self.rejected_total = 0
        """Lines the server refused (set aside in `rejected_path`) since this store was opened."""
        self._notices: list[str] = []
        # Its own lock: a cycle takes the notices while a write may hold _lock on a hung server.
        self._notices_lock = threading.Lock()
        rejected_dir = spool.directory if spool is not None else Path("data") / "rejected"
        self.rejected_path = rejected_dir / "rejected.lp"
        """Where refused lines go: `# <UTC time> <server's reason>` then the lines, appended."""
        self.write_budget_s: float | None = None
        """Seconds a caller waits for a write (None: until it is done). A write still running
        then finishes (or spools) on the writer thread, and writes arriving meanwhile are held on
        disk (`held`) and spooled behind it once its outcome is known, so a hung server (SIGSTOP,
        a stalled disk) never stalls collection and a crash during the hang loses nothing held."""
        self.over_budget = 0
        """Writes that outlived the budget, and batches spooled because one was still running."""
        self._fmt_lock = threading.Lock()
        self._spool_formatter = LineFormatter()  # formats for the spool while a write hangs
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: Future[int] | None = None
        self._defer_lock = threading.Lock()
        self._busy = False  # a budgeted write runs on the budget thread
        self._deferred: list[LineBatch] = []  # held in memory only when the held spool fails
        self.held = Spool(spool.directory / HELD_DIR) if spool is not None else None
        """Batches that arrived while a write outlived its budget, on disk (see `_hold`)."""
        self._held_fd: int | None = None  # this process's lock on the held spool
        self._held_checked = False  # a held spool left by a process that died was looked for
        self._counts = threading.Lock()  # acknowledgements arrive on the writer and sender threads
        self.stored_total = 0
        self.inflight_points = 0

    @abstractmethod
    def _send(self, body: bytes, points: int) -> None:
        """POST one body; Unavailable to spool, StoreError (Rejected) for what retry cannot fix."""

    @abstractmethod
    def unreachable(self, detail: str) -> StoreError:
        """The error for a server that does not answer, saying what to do."""

    # -- entry points ---------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> int:
        pts = points if isinstance(points, list) else list(points)
        return self._budgeted(lambda: self._write_points_now(pts), len(pts),
                              lambda f: f.format_points(pts))

    def _write_columns(self, measurement: str, tags_list: Sequence[Mapping[str, str]],
                       times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        return self._budgeted(
            lambda: self._write_columns_now(measurement, tags_list, times_ns, fields_columns),
            len(times_ns), lambda f: f.format_columns(measurement, tags_list, times_ns, fields_columns))

    def _budgeted(self, write: Callable[[], int], points: int,
                  fmt: Callable[[LineFormatter], LineBatch]) -> int:
        """Run `write` within `write_budget_s` (see there); returns the points stored or spooled."""
        budget = self.write_budget_s
        if not self._held_checked:
            self._recover_held()
        if budget is None or self.spool is None:
            return write()
        with self._defer_lock:
            if self._busy:
                # Held behind the write in flight, spooled once its outcome is known: were it
                # spooled now and that write spooled later, replay would send the older value
                # of a bar after the newer one (the server keeps the last write of a key).
                self.over_budget += 1
                with self._fmt_lock:
                    self._hold(fmt(self._spool_formatter))
                self.inflight_points += points
                return points
            self._busy = True
            self.inflight_points = points
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="optui-influx-budget")
        future = self._writer.submit(self._then_deferred, write)
        self._inflight = future
        try:
            return future.result(timeout=budget)
        except FutureTimeout:
            self.over_budget += 1
            log.warning("InfluxDB %s: a write of %d point(s) outlived its %.1fs budget: it finishes "
                        "or spools in the background, later writes spool", self.url, points, budget)
            return points

    def _then_deferred(self, write: Callable[[], int]) -> int:
        """Run `write` on the budget thread, then spool the batches held behind it, in order."""
        try:
            return write()
        finally:
            with self._defer_lock:
                try:
                    self._release_held()
                finally:
                    self._busy = False
                    self.inflight_points = 0

    # -- writes held behind one that outlived its budget -----------------------------------------

    def _own_held(self) -> bool:
        """Take the lock that says whose writes the held spool holds (kept until they are moved
        into the spool: a process that dies holding it lets it go); False when another live
        process holds it."""
        if self._held_fd is not None:
            return True
        if self.held is None:
            return False
        try:
            self.held.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.held.directory / _HELD_OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.warning("InfluxDB %s: cannot use %s (%s)", self.url, self.held.directory, exc.strerror)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._held_fd = fd
        return True

    def _hold(self, batch: LineBatch) -> None:
        """Keep a batch behind the write in flight: durably in the held spool (a crash during a
        long hang loses nothing held), in memory only when that cannot be written (and then
        every later batch too, so that they keep their order)."""
        log_dropped(batch, f"InfluxDB {self.url}")
        lines = batch.lines
        if not self._deferred and self.held is not None and self._own_held():
            start = 0
            try:
                for start in range(0, len(lines), self.batch_size):
                    chunk = lines[start : start + self.batch_size]
                    self.held.append(body(chunk), len(chunk))
                return
            except StoreError as exc:
                log.warning("InfluxDB %s: held writes kept in memory: %s", self.url, exc)
                lines = lines[start:]
        self._deferred.append(LineBatch(lines))

    def _release_held(self) -> None:
        """Move the held batches into the spool in the order they came (after the write they
        waited for, which has landed or spooled by now)."""
        if self.held is not None and self._held_fd is not None and self.held.directory.exists():
            self.held.replay(self._spool_body, self.batch_size)
            os.close(self._held_fd)  # nothing of this process is held now
            self._held_fd = None
        while self._deferred:
            self._spool_batch(self._deferred[0])
            self._deferred.pop(0)

    def _spool_body(self, data: bytes, points: int) -> None:
        assert self.spool is not None
        self.spool.append(data, points)
        self._spool_pending = True
        with self._counts:
            self.spooled_total += points

    def _recover_held(self) -> None:
        """Before this process's first write: batches a process that died during a hang held
        (its write in flight never settled) go into the spool, behind what it had spooled and
        before anything newer. A held spool whose process still runs is left alone."""
        self._held_checked = True
        held = self.held
        if held is None or not held.directory.exists() or not self._own_held():
            return
        with self._defer_lock:
            if self._busy:
                return
            waiting = held.status().points
            if waiting:
                log.warning("InfluxDB %s: %d point(s) held behind a write that never settled "
                            "(the collector stopped during a hang): spooled now", self.url, waiting)
            self._release_held()  # and lets the lock go

    def _spool_batch(self, batch: LineBatch) -> int:
        """Append a formatted batch to the spool without touching the server (no store lock:
        the spool holds its own file lock)."""
        lines = batch.lines
        for start in range(0, len(lines), self.batch_size):
            self._spool_chunk(lines[start : start + self.batch_size])
        return len(lines)

    def _write_points_now(self, pts: list[Point]) -> int:
        with self._lock:
            size = self.batch_size
            fmt = self._formatter.format_points
            return self._write_chunks(fmt(pts[i : i + size]) for i in range(0, len(pts), size))

    def _write_columns_now(self, measurement: str, tags_list: Sequence[Mapping[str, str]],
                           times_ns: Sequence[int], fields_columns: Mapping[str, Sequence[Any]]) -> int:
        with self._lock:
            size = self.batch_size
            fmt = self._formatter.format_columns
            return self._write_chunks(
                fmt(measurement, tags_list[i : i + size], times_ns[i : i + size],
                    {name: column[i : i + size] for name, column in fields_columns.items()})
                for i in range(0, len(times_ns), size)
            )

    # -- chunks in order, spooled when the server cannot take them -------------------------------

    def _sender(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="influx-write")
        return self._pool

    def _write_chunks(self, batches: Iterator[LineBatch]) -> int:
        """Send formatted chunks in order, formatting the next while earlier ones are sent;
        spool what the server cannot take. Returns the points accepted (written or spooled)."""
        dropped = LineBatch()
        chunks = self._chunks(batches, dropped)
        first = next(chunks, None)
        if first is None:
            log_dropped(dropped, f"InfluxDB {self.url}")
            return 0
        if self._spool_pending is None:
            self._spool_pending = self.spool is not None and self.spool.status().points > 0
        if self._spool_pending and time.monotonic() >= self._retry_at:
            self.flush()  # older spooled points must land first
        if len(first) < self.batch_size:
            accepted = self._send_all(first, chunks)  # one small chunk: sent on this thread
        else:
            with _prompt_sender():
                accepted = self._send_all(first, chunks)
        log_dropped(dropped, f"InfluxDB {self.url}")
        if self._refused is not None:
            raise CredentialsRejected(f"{self._refused} (points kept in the spool: {self.spool_dir_hint()})")
        return accepted

    def _send_all(self, first: list[str], chunks: Iterator[list[str]]) -> int:
        """Send or spool `first` and the rest of `chunks` in order (see `_write_chunks`)."""
        accepted = 0
        queued: deque[tuple[list[str], Future[int]]] = deque()
        failed = threading.Event()  # set by the sender when a chunk could not be sent
        chunk: list[str] | None = first
        while chunk is not None:
            if self._spool_pending:  # an earlier chunk went to the spool: the rest follow it
                while queued:
                    accepted += self._settle(*queued.popleft())
                accepted += self._spool_chunk(chunk)
            elif chunk is first and len(chunk) < self.batch_size:
                accepted += self._settle(chunk, None)
            else:
                if len(queued) >= _QUEUED:
                    accepted += self._settle(*queued.popleft())
                queued.append((chunk, self._sender().submit(self._send_unless_failed, chunk, failed)))
            chunk = next(chunks, None)  # formatted while the queued chunks are sent
        while queued:
            accepted += self._settle(*queued.popleft())
        return accepted

    def _send_unless_failed(self, chunk: list[str], failed: threading.Event) -> int:
        """`_send_isolating` on the sender thread, unless an earlier chunk of this write failed."""
        if failed.is_set():
            raise _Skipped
        try:
            return self._send_isolating(chunk)
        except (Unavailable, CredentialsRejected):
            failed.set()
            raise

    def _chunks(self, batches: Iterator[LineBatch], dropped: LineBatch) -> Iterator[list[str]]:
        """Non-empty line lists of at most batch_size lines and MAX_BODY bytes; drops are
        gathered into `dropped` (logged once per write)."""
        for batch in batches:
            dropped.dropped += batch.dropped
            dropped.reasons.extend(batch.reasons[: 5 - len(dropped.reasons)])
            lines = batch.lines
            if not lines:
                continue
            if sum(map(len, lines)) + len(lines) > MAX_BODY and len(lines) > 1:
                half = len(lines) // 2
                yield from self._chunks(iter([LineBatch(lines[:half]), LineBatch(lines[half:])]), dropped)
                continue
            yield lines

    def _settle(self, chunk: list[str], sent: Future[int] | None) -> int:
        """The outcome of sending `chunk` (sent on this thread when `sent` is None): lines
        written, or the chunk spooled when the server is unavailable or refuses the credentials."""
        try:
            return self._send_isolating(chunk) if sent is None else sent.result()
        except _Skipped:
            return self._spool_chunk(chunk)
        except Unavailable as exc:
            if self.spool is None:
                raise self.unreachable(str(exc)) from None
            log.warning("InfluxDB %s unavailable (%s): spooling writes", self.url, exc)
        except CredentialsRejected as exc:
            if self.spool is None:
                raise
            # Good data, wrong token: keep it until the credentials are fixed.
            self._refused = exc
        self._retry_at = time.monotonic() + self.retry_after_s
        return self._spool_chunk(chunk)

    def _spool_chunk(self, chunk: list[str]) -> int:
        if self.spool is None:
            raise self.unreachable("an earlier batch of this write could not be sent")
        self.spool.append(body(chunk), len(chunk))
        self._spool_pending = True
        with self._counts:
            self.spooled_total += len(chunk)
        return len(chunk)

    # -- lines the server refuses --------------------------------------------------------------

    def _send_isolating(self, lines: list[str]) -> int:
        """Send lines; when the server refuses some, write every other line and set the refused
        ones aside (`_set_aside`). Returns the lines written. Unavailable/CredentialsRejected pass.

        InfluxDB 1.x answers a batch with a field type conflict or a point outside the retention
        policy with 400 "partial write" after writing the rest; it does not say which lines, so
        the batch is split in halves until each refused line stands alone (re-sending a line the
        server already took replaces it with the same values).
        """
        try:
            self._send(body(lines), len(lines))
            with self._counts:
                self.stored_total = (self.stored_total or 0) + len(lines)
            return len(lines)
        except TooLarge as exc:
            if len(lines) < 2:
                self._set_aside(lines, str(exc))
                return 0
        except Rejected as exc:
            if len(lines) == 1:
                self._set_aside(lines, exc.reason)
                return 0
            suspects = conflicting_lines(lines, exc.reason)
            if suspects and len(suspects) < len(lines):
                # The server named the field: set those lines aside at once, retry the others.
                self._set_aside(suspects, exc.reason)
                bad = set(suspects)
                return self._send_isolating([ln for ln in lines if ln not in bad])
        half = len(lines) // 2
        return self._send_isolating(lines[:half]) + self._send_isolating(lines[half:])

    def _set_aside(self, lines: list[str], reason: str) -> None:
        """Append refused lines to `rejected_path` under a comment with the server's reason."""
        from optui.timeutil import now_utc

        self.rejected_total += len(lines)
        note = f"InfluxDB refused {len(lines)} line(s): {reason}; set aside in {self.rejected_path}"
        try:
            self.rejected_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.rejected_path, "a", encoding="utf-8") as handle:
                handle.write(f"# {now_utc().isoformat(timespec='seconds')} {reason}\n")
                handle.write("\n".join(lines) + "\n")
        except OSError as exc:
            note = f"InfluxDB refused {len(lines)} line(s): {reason}; cannot set them aside ({exc.strerror or exc})"
        log.warning("%s", note)
        with self._notices_lock:
            self._notices.append(note)

    @property
    def spooling(self) -> bool:
        """True while writes go to the spool or one is still in flight past its budget (the
        server is down or hung): a read on the collection path would wait out its timeout."""
        inflight = self._inflight
        return bool(self._spool_pending) or (inflight is not None and not inflight.done())

    def take_notices(self) -> list[str]:
        """Refused lines since the last call, as one-line notices (then forgotten); never waits
        for a write in flight."""
        with self._notices_lock:
            out, self._notices = self._notices, []
        return out

    # -- the spool ------------------------------------------------------------------------------

    def spool_dir_hint(self) -> str:
        """The spool's directory, or "no spool"."""
        return str(self.spool.directory) if self.spool is not None else "no spool"

    def flush(self) -> int:
        """Replay spooled points in order now; returns how many were written before any failure."""
        if self.spool is None:
            return 0
        with self._lock:
            self._replayed = 0
            self._refused = None
            try:
                self.spool.replay(self._replay_one, self.batch_size)
            except (Unavailable, CredentialsRejected) as exc:
                log.info("InfluxDB %s cannot take the spool yet (%s): points stay spooled", self.url, exc)
                if isinstance(exc, CredentialsRejected):
                    self._refused = exc
                self._spool_pending = True
                self._retry_at = time.monotonic() + self.retry_after_s
                return self._replayed
            self._spool_pending = False
            if self._replayed:
                log.info("InfluxDB %s: replayed %d spooled point(s)", self.url, self._replayed)
            return self._replayed

    def _replay_one(self, data: bytes, points: int) -> None:
        # Refused lines are set aside; what the server can take is in (never blocks the spool).
        self._replayed += self._send_isolating(data.decode("utf-8").splitlines())

    def pending(self) -> tuple[int, str]:
        """Points waiting in the spool and its directory (read from disk: after close() too)."""
        if self.spool is None:
            return 0, ""
        held = self.held.status().points if self.held is not None and self.held.directory.exists() else 0
        return self.spool.status().points + held, str(self.spool.directory)

    def spool_status(self) -> SpoolStatus | None:
        """What is waiting in the spool (None when spooling is off)."""
        return self.spool.status() if self.spool is not None else None

    def _close_writes(self) -> None:
        """Let a write in flight finish (or spool), then flush the spool; before the connection closes."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._held_fd is not None:
            os.close(self._held_fd)
            self._held_fd = None

    def _close_sender(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def body(lines: list[str]) -> bytes:
    """Lines as one newline-terminated UTF-8 request body."""
    return ("\n".join(lines) + "\n").encode("utf-8")
