"""Backups a trader can restore: the embedded store, the configuration without secrets, the
collectors' day-state and any recordings, with a manifest of SHA-256 checksums.

A backup is a directory:

    manifest.json           format, version, created_at (UTC), optui version, the store URL
                            (redacted), and every file's relative path, size and SHA-256
    store/<name>.db         the SQLite store, one self-contained file (journal mode DELETE)
    config/optui.toml       the configuration file with secret-looking keys removed
    dirs/<name>/...         day-state (`state`) and recordings, each mirrored as found

The SQLite copy uses SQLite's online backup API (https://www.sqlite.org/backup.html) from one
read transaction held for the whole copy: in WAL mode a reader never blocks the writer, the
snapshot cannot change under the copy (so it never restarts however often a collector in this or
another process commits), and copying in steps of `step_pages` pages lets other work run between
steps. Secrets (secrets.toml, tokens, passwords) are never copied.

optui.storage.restore verifies every checksum before it touches anything, refuses to replace a
non-empty store without `force`, and swaps each file or directory in with a rename, keeping what
it replaced beside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optui.errors import OptuiError
from optui.timeutil import IST

log = logging.getLogger(__name__)

BACKUP_FORMAT = "optui-backup"
BACKUP_VERSION = 1
MANIFEST = "manifest.json"
STEP_PAGES = 256  # 4 MiB at the store's 16 KiB pages
SECRETS_NOTE = ("secrets are not included: secrets.toml, OPTUI_* secret variables, tokens, "
                "passwords and secret-looking keys were left out; set them again after a restore "
                "(`optui setup`, or the secrets file with mode 0600)")
_SECRET_KEY = re.compile(r"secret|token|password|passwd|api_key|apikey|credential|private",
                         re.IGNORECASE)
_CHUNK = 1 << 20
_SPACE_MARGIN = 1.05  # the copy plus 5 % (directory entries, filesystem rounding)


class BackupError(OptuiError):
    """A backup or restore that cannot go ahead; the message names the file and the fix."""


@dataclass
class BackupReport:
    """What a backup wrote: the directory, its files (relative path -> bytes), the store
    description and how long the store copy took (seconds)."""

    dest: Path
    files: dict[str, int] = field(default_factory=dict)
    store: str = ""
    store_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# -- files and checksums ------------------------------------------------------------------------


def ist_minute(moment: str) -> str:
    """An ISO 8601 moment of the manifest (UTC) as shown on screen: `YYYY-MM-DD HH:MM IST`;
    text that is not a moment is returned as it is."""
    try:
        at = datetime.fromisoformat(moment)
    except ValueError:
        return moment
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return f"{at.astimezone(IST):%Y-%m-%d %H:%M} IST"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes as lowercase hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _private(path: Path) -> None:
    os.chmod(path, 0o700 if path.is_dir() else 0o600)


def _is_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == 28 or "full" in str(exc).lower()


def _no_space(where: Path, exc: BaseException) -> BackupError:
    return BackupError(f"no space left on the disk of {where} ({exc}): free space or choose a "
                       "directory on another disk; nothing was kept of the partial copy")


def check_space(directory: Path, needed: int) -> None:
    """Raise BackupError when the filesystem holding `directory` has less than `needed` bytes
    (plus a 5 % margin) free."""
    where = directory
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < needed * _SPACE_MARGIN:
        raise BackupError(
            f"not enough space at {directory}: the copy needs about {needed / 1e6:,.1f} MB and "
            f"{free / 1e6:,.1f} MB are free; free space or choose a directory on another disk"
        )


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- what gets backed up ------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The file a `sqlite:///PATH` URL names (None for other URLs and `:memory:`)."""
    if not url.startswith("sqlite:///"):
        return None
    raw = url[len("sqlite:///"):]
    if not raw or raw == ":memory:":
        return None
    return Path(raw).expanduser()


def backup_dirs(settings: Any) -> dict[str, Path]:
    """The optional directories a backup carries, by name: `state` (the collectors' day-state,
    data_dir/state) and recordings (data_dir/recordings, data_dir/sim/recordings, and any
    non-empty `*dir` setting of a section whose name mentions `record`, such as `record.dir`, or
    any setting named `record*_dir`). Missing ones are skipped by the backup; a recording being
    appended to is copied as it stands at that moment."""
    data_dir = Path(settings.general.data_dir).expanduser()
    out: dict[str, Path] = {"state": data_dir / "state", "recordings": data_dir / "recordings",
                            "sim_recordings": data_dir / "sim" / "recordings"}
    for section_field in fields(settings):
        section = getattr(settings, section_field.name)
        if not is_dataclass(section):
            continue
        for f in fields(section):
            value = getattr(section, f.name)
            in_record_section = "record" in section_field.name and f.name.endswith("dir")
            named_record = "record" in f.name and f.name.endswith("dir")
            if isinstance(value, str) and value and (in_record_section or named_record):
                out.setdefault(f"{section_field.name}.{f.name}", Path(value).expanduser())
    unique: dict[str, Path] = {}
    seen: set[Path] = set()
    for name, path in out.items():
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique[name] = path
    return unique


def config_without_secrets(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of parsed TOML with secret-looking keys removed and passwords, tokens and webhook
    paths taken out of URLs; also the dotted names of what was removed (never the values)."""
    from optui.config import redact_url

    removed: list[str] = []

    def clean(node: Any, prefix: str) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                name = f"{prefix}{key}"
                if _SECRET_KEY.search(str(key)):
                    removed.append(name)
                    continue
                out[key] = clean(value, f"{name}.")
            return out
        if isinstance(node, list):
            return [clean(v, prefix) for v in node]
        if isinstance(node, str) and "://" in node:
            shown = redact_url(node)
            if shown != node:
                removed.append(f"{prefix.rstrip('.')} (credentials in the URL)")
                if shown.endswith("/****"):  # a webhook: the secret is its path, none of it is kept
                    return ""
                return shown.replace(":****@", "@")
        return node

    return clean(data, ""), removed


# -- the SQLite copy ----------------------------------------------------------------------------


def _open_source(path: Path) -> sqlite3.Connection:
    """A read-only connection to the store, or BackupError saying why it cannot be read."""
    if not path.exists():
        raise BackupError(f"no SQLite store at {path}: nothing to back up (check store.url or "
                          "--store)")
    if path.is_dir():
        raise BackupError(f"SQLite store {path} is a directory, not a store file")
    if not os.access(path, os.R_OK):
        raise BackupError(f"cannot read the SQLite store {path}: permission denied (run as the "
                          "user that owns it)")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0,
                               isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        from optui.storage.sqlite_store import recovery_hint

        raise BackupError(f"cannot read the SQLite store {path} ({exc}): it is not a SQLite "
                          f"database or it is damaged; {recovery_hint(path)}") from exc
    return conn


def store_summary(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per measurement: frames (one per stored moment) and the first and last moment (UTC ISO)."""
    from optui.storage.base import ns_to_time

    try:
        rows = conn.execute(
            "SELECT m.name, count(*), min(f.time_ns), max(f.time_ns) FROM frames f "
            "JOIN measurements m ON m.id = f.measurement_id GROUP BY m.name ORDER BY m.name"
        ).fetchall()
    except sqlite3.Error:
        return {}  # not an optui store (no frames table): copied all the same
    return {name: {"frames": n, "first": ns_to_time(lo).isoformat(), "last": ns_to_time(hi).isoformat()}
            for name, n, lo, hi in rows}


def copy_sqlite(source: Path, target: Path, step_pages: int = STEP_PAGES,
                pause_s: float = 0.0,
                progress: Callable[[int, int], None] | None = None,
                ) -> tuple[dict[str, dict[str, Any]], bool]:
    """Copy the store at `source` into the new file `target` as one consistent snapshot.

    In WAL mode one read transaction is held on the source for the whole copy, so writers (this
    process or another) go on committing and the copy never restarts (a store in rollback-journal
    mode is read a step at a time, and a write between steps restarts the copy); `step_pages` pages are copied
    per step, with `pause_s` between steps, and `progress(remaining, total)` called after each.
    The copy is switched to journal mode DELETE (one file), checked with `PRAGMA quick_check`, and
    its per-measurement summary returned with whether another connection committed during the
    copy (`PRAGMA data_version`). Raises BackupError (unreadable source, no space, damaged copy).
    """
    src = _open_source(source)
    try:
        dst = sqlite3.connect(str(target), isolation_level=None)
        try:
            # WAL: one read transaction for the whole copy (a WAL reader never blocks the
            # writer). Rollback journal (a file SQLite could not switch to WAL): a read lock
            # blocks writers, so it is taken per step and a write in between restarts the copy.
            wal = str(src.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            if wal:
                src.execute("BEGIN")
            summary = store_summary(src)  # in WAL mode, opens the read transaction's snapshot

            def step(_status: int, remaining: int, total: int) -> None:
                if progress is not None:
                    progress(remaining, total)
                if pause_s > 0:
                    time.sleep(pause_s)

            version = src.execute("PRAGMA data_version").fetchone()[0]
            src.backup(dst, pages=max(1, step_pages), progress=step)
            if wal:
                src.execute("COMMIT")
            written_meanwhile = src.execute("PRAGMA data_version").fetchone()[0] != version
            dst.execute("PRAGMA journal_mode=DELETE").fetchone()
            problems = [str(r[0]) for r in dst.execute("PRAGMA quick_check(5)").fetchall()
                        if str(r[0]) != "ok"]
        finally:
            dst.close()
    except sqlite3.Error as exc:
        if _is_full(exc):
            raise _no_space(target.parent, exc) from exc
        raise BackupError(f"copying the SQLite store {source} failed: {exc}") from exc
    finally:
        src.close()
    if problems:
        from optui.storage.sqlite_store import recovery_hint

        raise BackupError(f"the copy of {source} fails SQLite's quick_check ({'; '.join(problems)}"
                          f"): the store itself is damaged; {recovery_hint(source)}")
    return summary, written_meanwhile


# -- backup -------------------------------------------------------------------------------------


def _prepare_dest(dest: Path) -> Path:
    """The temporary directory beside `dest` the backup is written into (renamed at the end)."""
    if dest.exists() and not dest.is_dir():
        raise BackupError(f"{dest} exists and is a file: give a directory for the backup")
    if dest.is_dir() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty: give a new or empty directory (a "
                          "backup never writes over files)")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = dest.parent / f".{dest.name}.partial-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot create the backup directory beside {dest} "
                          f"({exc.strerror or exc}): choose a writable place") from exc
    return work


def _copy_tree(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir():
            (target / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file() and not path.name.endswith(".tmp"):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / rel)


def _finish(work: Path, dest: Path, manifest: dict[str, Any]) -> dict[str, int]:
    """Checksum every file, write the manifest, make everything private, rename into place."""
    files: dict[str, int] = {}
    entries = []
    for path in sorted(p for p in work.rglob("*") if p.is_file()):
        rel = path.relative_to(work).as_posix()
        size = path.stat().st_size
        entries.append({"path": rel, "size": size, "sha256": sha256_file(path)})
        files[rel] = size
    manifest["files"] = entries
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    files[MANIFEST] = (work / MANIFEST).stat().st_size
    for path in work.rglob("*"):
        _private(path)
    if dest.is_dir():
        dest.rmdir()  # empty (checked before starting)
    os.replace(work, dest)
    _private(dest)
    return files


def backup(settings: Any, dest: Path, store_url: str, *, step_pages: int = STEP_PAGES,
           pause_s: float = 0.0, influx_rpc: str | None = None,
           influx_binary: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> BackupReport:
    """Write a backup of the store `store_url`, the configuration (secrets removed), the
    day-state and recordings into the new or empty directory `dest`.

    SQLite stores are copied online (see `copy_sqlite`); InfluxDB stores through the server's own
    portable backup (optui.storage.influx_backup). `progress(remaining_pages, total_pages)` is
    called after each step of a SQLite copy. Nothing is left at `dest` when it fails.
    Raises BackupError with a message naming the problem and the fix.
    """
    from optui import __version__
    from optui.config import redact_url

    dest = dest.expanduser()
    db_path = sqlite_path(store_url)
    manifest: dict[str, Any] = {
        "format": BACKUP_FORMAT, "version": BACKUP_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "optui_version": __version__, "store_url": redact_url(store_url),
        "secrets_included": False, "secrets_note": SECRETS_NOTE,
    }
    if db_path is None and not store_url.startswith(("influxdb://", "influxdbs://")):
        raise BackupError(f"store {redact_url(store_url)!r} has nothing on disk to back up: "
                          "use a sqlite:///PATH or influxdb://HOST:PORT store")
    dirs = {name: p for name, p in backup_dirs(settings).items() if p.is_dir()}
    for name, path in dirs.items():
        if dest.resolve() == path.resolve() or path.resolve() in dest.resolve().parents:
            raise BackupError(f"{dest} is inside {path} ({name}), which the backup copies: "
                              "choose a directory outside it")
    needed = sum(_tree_size(p) for p in dirs.values())
    if db_path is not None:
        _open_source(db_path).close()  # a clear message before anything is created
        needed += db_path.stat().st_size + _size(Path(f"{db_path}-wal"))
    check_space(dest.parent if not dest.exists() else dest, needed)
    work = _prepare_dest(dest)
    report = BackupReport(dest)
    try:
        started = time.monotonic()
        if db_path is not None:
            (work / "store").mkdir()
            target = work / "store" / db_path.name
            summary, written = copy_sqlite(db_path, target, step_pages=step_pages,
                                           pause_s=pause_s, progress=progress)
            newest = max((m["last"] for m in summary.values()), default="")
            manifest["store"] = {"kind": "sqlite", "file": f"store/{db_path.name}",
                                 "measurements": summary, "newest": newest}
            report.store = (f"SQLite {db_path} ({len(summary)} measurement(s), newest moment "
                            f"{ist_minute(newest) if newest else 'none'})")
            if written:
                report.notes.append(
                    "the store was being written while it was copied (a running collector): the "
                    "backup is the consistent state of the moment the copy began; later cycles "
                    "are in the next backup")
        else:
            from optui.storage.influx_backup import influx_backup

            manifest["store"] = influx_backup(settings, store_url, work / "influx",
                                              rpc=influx_rpc, binary=influx_binary)
            report.store = f"InfluxDB {manifest['store']['kind']} {redact_url(store_url)}"
        report.store_seconds = time.monotonic() - started
        manifest["config"] = _backup_config(settings, work, report)
        manifest["dirs"] = {}
        for name, path in dirs.items():
            _copy_tree(path, work / "dirs" / name)
            manifest["dirs"][name] = {"path": f"dirs/{name}", "source": str(path)}
        report.files = _finish(work, dest, manifest)
    except BackupError as exc:
        shutil.rmtree(work, ignore_errors=True)
        text = str(exc)
        if str(work) in text:  # name the directory the user gave, not the one written first
            raise BackupError(text.replace(str(work / "store"), str(dest))
                              .replace(str(work), str(dest))) from exc
        raise
    except OptuiError as exc:  # the configuration file became unreadable since it was loaded
        shutil.rmtree(work, ignore_errors=True)
        raise BackupError(str(exc)) from exc
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if _is_full(exc):
            raise _no_space(dest, exc) from exc
        raise BackupError(f"writing the backup into {dest} failed: {exc.strerror or exc} "
                          f"({getattr(exc, 'filename', None) or dest})") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.notes.append(SECRETS_NOTE)
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _backup_config(settings: Any, work: Path, report: BackupReport) -> dict[str, Any] | None:
    """Copy the configuration file with secrets removed; its manifest entry (None: no file)."""
    import tomlkit

    from optui.config import read_toml

    path = getattr(settings, "path", None)
    if path is None or not Path(path).is_file():
        report.notes.append("no configuration file in use (defaults): none copied")
        return None
    clean, removed = config_without_secrets(read_toml(Path(path), "configuration"))
    (work / "config").mkdir()
    target = work / "config" / "optui.toml"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(tomlkit.dumps(clean))
    if removed:
        report.notes.append(f"left out of the configuration copy: {', '.join(removed)}")
    return {"path": "config/optui.toml", "source": str(path), "removed": removed}
