"""Upkeep of a SQLite store's file while it runs: WAL checkpoints and integrity checks.

In WAL mode the WAL only shrinks when a checkpoint copies it into the database, and SQLite's own
automatic checkpoint runs inside whichever write crosses its threshold (stalling ingest for the
copy and its fsync) and waits on readers. Here passive checkpoints run on their own thread after
commits; past a cap the writer tries a non-blocking truncating checkpoint (`WalBound`) and warns,
rather than waits, when a reader pins the WAL; `PRAGMA quick_check` runs periodically to catch
damage that opening the file does not read (data pages), with the command that recovers it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

WAL_CAP = 256 * 1024 * 1024
"""Bytes of WAL before the writer checkpoints itself."""
QUICK_CHECK_S = 6 * 3600.0
"""Seconds between integrity checks of a running store (the first: a minute after open)."""
# Between passive checkpoints under sustained writes: short, so the WAL is mostly copied while
# ingest runs (the final checkpoint in close() then has little left), long enough to batch fsyncs.
_CHECKPOINT_PAUSE_S = 0.1
_PINNED_WARN_S = 300.0  # repeat the pinned-reader warning at most this often


def recovery_hint(path: str | Path) -> str:
    """The command that salvages a damaged SQLite store into a new file."""
    return (f"stop optui, run `sqlite3 {path} .recover | sqlite3 {path}.recovered`, then move "
            f"{path} aside and rename the .recovered file to it (or point store.url at it)")


def quick_check(conn: sqlite3.Connection, path: str | Path) -> str | None:
    """Run `PRAGMA quick_check` (b-tree pages, the damage `open` does not read); None when clean,
    else a one-line report naming the recovery command."""
    try:
        rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        rows = [(str(exc),)]
    problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
    if not problems:
        return None
    return f"SQLite store {path} is damaged ({'; '.join(problems)[:240]}): {recovery_hint(path)}"



def halt(stop: threading.Event, committed: threading.Event) -> None:
    stop.set()
    committed.set()  # wake the loop now rather than at its next timeout


def checkpoint_loop(path: str, committed: threading.Event, stop: threading.Event,
                     damage: list[str], check_every: float, checking: threading.Event) -> None:
    """Checkpoint passively (never blocking readers or the writer) after commits, ten times a
    second at most, until `stop`; SQLiteStore.close() does the final full checkpoint. Every
    `check_every` seconds (first after a sixth of it, at most a minute) runs `quick_check` and
    puts a damage report into `damage` (logged as an error).

    Holds no reference to the store, so a store that is dropped without close() can still be
    collected (its writer connection closes, and `stop` is set by its finaliser).
    """
    try:
        conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False, isolation_level=None)
    except sqlite3.Error:
        return
    next_check = time.monotonic() + min(check_every / 6, 60.0)
    try:
        while not stop.is_set():
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + check_every
                checking.set()  # a read transaction: the writer's WAL warning names it
                try:
                    report = quick_check(conn, path)
                finally:
                    checking.clear()
                if report and report not in damage:
                    damage.append(report)
                    log.error("%s", report)
            if not committed.wait(timeout=min(1.0, max(0.01, next_check - time.monotonic()))):
                continue
            committed.clear()
            if stop.is_set():
                break
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                pass  # busy or failing disk: the next write reports it with a clear message
            stop.wait(_CHECKPOINT_PAUSE_S)
    finally:
        conn.close()


class WalBound:
    """Keeps the WAL of the file at `path` near `cap_bytes` from the writer's side (see `bound`)."""

    def __init__(self, path: str | Path, cap_bytes: int, checking: threading.Event) -> None:
        self.path = path
        self.wal_path = f"{path}-wal"
        self.cap_bytes = cap_bytes
        self.checking = checking  # set while our own quick_check holds a read snapshot
        self.pinned_since = self.warned_at = 0.0
        self.next_try = 0.0
        """Monotonic time of the next truncation attempt while a reader pins the WAL."""

    def bound(self, conn: sqlite3.Connection) -> None:
        """Under sustained writes passive checkpoints never catch up and the WAL would grow
        without end; past `cap_bytes` the writer (`conn`, after a commit) checkpoints and
        truncates it itself.

        Never waits: a reader holding an old snapshot (a long query, a backup tool in another
        process) makes the checkpoint stop short instead of stalling every write for the busy
        timeout. The WAL then grows; that is warned about, and it is truncated on the first
        write after the reader lets go.
        """
        try:
            size = os.stat(self.wal_path).st_size
        except OSError:
            return
        now = time.monotonic()
        if size <= self.cap_bytes or now < self.next_try:
            return
        conn.execute("PRAGMA busy_timeout=0")
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute("PRAGMA busy_timeout=30000")
        if not busy and copied >= frames:
            if self.pinned_since:
                log.warning("SQLite store %s: the reader let go; the WAL (%.1f MB) was checkpointed "
                            "and truncated", self.path, size / 1e6)
                self.pinned_since = self.warned_at = 0.0
            return
        self.next_try = now + 1.0  # retry at most once a second while pinned
        self.pinned_since = self.pinned_since or now
        if self.checking.is_set():
            return  # our own integrity check holds the snapshot; it ends by itself
        if not self.warned_at or now - self.warned_at >= _PINNED_WARN_S:
            self.warned_at = now
            log.warning(
                "SQLite store %s: another connection holds a long read transaction (a query or a "
                "backup tool), so the WAL %s (%.1f MB) cannot be checkpointed; writes go on and the "
                "WAL shrinks when that reader ends: end it if it is stuck",
                self.path, self.wal_path, size / 1e6,
            )
