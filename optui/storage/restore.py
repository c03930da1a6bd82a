"""Restore of a backup `optui backup` wrote (optui.storage.backup describes the layout).

Every file's size and SHA-256 are checked against the manifest before anything changes; a
non-empty store or directory is replaced only with `force`, and what is replaced is renamed aside
(`*.before-restore-STAMP`), never deleted. Each file or directory is staged beside its target and
renamed into place, so a reader never sees half of it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from optui.storage.backup import (
    BACKUP_FORMAT,
    BACKUP_VERSION,
    MANIFEST,
    BackupError,
    _is_full,
    _no_space,
    _private,
    _tree_size,
    backup_dirs,
    check_space,
    ist_minute,
    sha256_file,
    sqlite_path,
)


@dataclass
class RestoreReport:
    """What a restore put back: (what, where) pairs, what it set aside, and notes."""

    restored: list[tuple[str, Path]] = field(default_factory=list)
    kept_aside: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup at `src`; BackupError when it is missing or not an optui backup."""
    path = src / MANIFEST
    if not src.is_dir():
        raise BackupError(f"{src} is not a directory: give the directory `optui backup` wrote")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(f"{src} has no {MANIFEST}: it is not an optui backup (or it is "
                          "incomplete)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} cannot be read ({exc}): the backup is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BACKUP_FORMAT:
        raise BackupError(f"{path} is not an optui backup manifest")
    if int(manifest.get("version", 0)) > BACKUP_VERSION:
        raise BackupError(f"{src} is a version {manifest.get('version')} backup; this optui reads "
                          f"version {BACKUP_VERSION}: upgrade optui to restore it")
    return manifest


def verify(src: Path) -> dict[str, Any]:
    """Check every file the manifest lists (present, same size, same SHA-256); the manifest.

    Raises BackupError naming the first file that is missing or differs."""
    manifest = read_manifest(src)
    entries = manifest.get("files")
    if not isinstance(entries, list) or not entries:
        raise BackupError(f"{src / MANIFEST} lists no files: the backup is damaged")
    for entry in entries:
        rel = str(entry.get("path", ""))
        path = (src / rel).resolve()
        if not rel or src.resolve() not in path.parents:
            raise BackupError(f"{src / MANIFEST} names a file outside the backup ({rel!r}): refused")
        if not path.is_file():
            raise BackupError(f"backup file {rel} is missing from {src}: the backup is incomplete; "
                              "nothing was restored")
        size = path.stat().st_size
        if size != entry.get("size") or sha256_file(path) != entry.get("sha256"):
            raise BackupError(f"backup file {rel} in {src} does not match its checksum (corrupted "
                              f"or changed since the backup): nothing was restored")
    return manifest


_SHM_DMS_BYTE = 128  # SQLite's WAL-index "dead man switch": every open connection read-locks it


def open_elsewhere(path: Path) -> int | None:
    """The PID of a process that has the SQLite store at `path` open (WAL mode), else None.

    Asks the kernel who holds the POSIX read lock every WAL connection keeps on byte 128 of the
    `-shm` file (https://www.sqlite.org/walformat.html#locks), without taking any lock. Closing
    the descriptor drops this process's own POSIX locks on that file, so call it only where this
    process has no connection to the store (a restore).
    """
    import fcntl
    import struct

    layout = "hhqqi4x"  # struct flock on 64-bit Linux: type, whence, start, len, pid
    if sys.platform != "linux" or struct.calcsize("P") != 8:
        return None
    try:
        fd = os.open(f"{path}-shm", os.O_RDONLY)
    except OSError:
        return None  # no WAL index: nobody has it open in WAL mode
    try:
        probe = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, _SHM_DMS_BYTE, 1, 0)
        kind, _whence, _start, _len, pid = struct.unpack(layout, fcntl.fcntl(fd, fcntl.F_GETLK, probe))
    except OSError:
        return None
    finally:
        os.close(fd)
    return None if kind == fcntl.F_UNLCK else int(pid)


def _refuse_open(target: Path) -> None:
    pid = open_elsewhere(target)
    if pid is not None:
        raise BackupError(f"the store {target} is open in another process (pid {pid}): stop "
                          "`optui collect` and the app using it, then restore again")


def _is_empty_store(path: Path) -> bool:
    """No file, an empty file, or an optui store holding no frames."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT 1 FROM frames LIMIT 1").fetchone() is None
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # unreadable or not ours: never treated as empty


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Copy `source` to `target` (0600) and check the copy's SHA-256."""
    shutil.copyfile(source, target)
    _private(target)
    if sha256_file(target) != sha256:
        raise BackupError(f"the copy of {source} at {target} does not match its checksum: the "
                          "disk may be failing; nothing was replaced")


def _restore_store(src: Path, manifest: dict[str, Any], target: Path, force: bool,
                   report: RestoreReport) -> None:
    info = manifest["store"]
    sums = {e["path"]: e["sha256"] for e in manifest["files"]}
    if not force:
        _refuse_store(target)
    if target.exists() and force:
        _checkpoint(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.restore-{os.getpid()}")
    try:
        _copy_verified(src / info["file"], staged, sums[info["file"]])
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    if target.exists():
        aside = target.with_name(f"{target.name}.before-restore-{_stamp()}")
        os.replace(target, aside)
        report.kept_aside.append(aside)
    for suffix in ("-wal", "-shm", "-journal"):  # a stale WAL would be replayed into the new file
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(staged, target)
    counts = ", ".join(f"{name} {m['frames']:,} moments {ist_minute(m['first'])[:-4]}..{ist_minute(m['last'])}"
                       for name, m in info.get("measurements", {}).items())
    report.restored.append((f"SQLite store ({counts or 'empty'})", target))


def _checkpoint(path: Path) -> None:
    """Fold a store's WAL into its file, so the file set aside is complete by itself."""
    try:
        conn = sqlite3.connect(str(path), timeout=5.0)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot take over the store {path} ({exc}): stop `optui collect` and "
                          "the app using it, then restore again") from exc


def _refuse_store(target: Path) -> None:
    if not _is_empty_store(target):
        raise BackupError(f"the store {target} is not empty: restore over it with --force (it is "
                          "kept beside as a .before-restore file) or point --store at a new file")


def _refuse_dir(target: Path, what: str) -> None:
    if target.is_dir() and any(target.iterdir()):
        raise BackupError(f"{target} ({what}) is not empty: restore over it with --force (it is "
                          "kept beside as a .before-restore directory)")


def _restore_tree(source: Path, target: Path, force: bool, report: RestoreReport, what: str) -> None:
    if not force:
        _refuse_dir(target, what)
    staged = target.with_name(f".{target.name}.restore-{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, staged)
    if target.exists():
        aside = target.with_name(f"{target.name}.before-restore-{_stamp()}")
        os.replace(target, aside)
        report.kept_aside.append(aside)
    os.replace(staged, target)
    report.restored.append((what, target))


def restore(settings: Any, src: Path, store_url: str, force: bool = False,
            config_target: Path | None = None, influx_rpc: str | None = None) -> RestoreReport:
    """Put a backup back: verify every checksum first, then the store (SQLite; InfluxDB backups
    go through the server's restore), the day-state and recordings directories, and the
    configuration when none exists at `config_target`.

    Refuses (BackupError, nothing changed) a damaged backup, or a non-empty store or directory
    without `force`; with `force` what is replaced is kept beside it (`*.before-restore-STAMP`).
    """
    src = src.expanduser()
    manifest = verify(src)
    report = RestoreReport()
    info = manifest.get("store") or {}
    dirs_now = backup_dirs(settings)
    dirs = manifest.get("dirs") or {}
    targets = {name: dirs_now.get(name) or Path(d["source"]) for name, d in dirs.items()}
    target: Path | None = None
    if info.get("kind") == "sqlite":
        target = sqlite_path(store_url)
        if target is None:
            raise BackupError(f"this backup holds a SQLite store; store {store_url!r} is not "
                              "sqlite:///PATH: give --store sqlite:///PATH")
        # Every refusal before the first change.
        _refuse_open(target)
        if not force:
            _refuse_store(target)
    if not force:
        for name, path in targets.items():
            _refuse_dir(path, name)
    if target is not None:
        needed = _tree_size(src / info["file"]) + sum(_tree_size(src / d["path"]) for d in dirs.values())
        check_space(target.parent, needed)
        try:
            _restore_store(src, manifest, target, force, report)
        except OSError as exc:
            raise _restore_failed(target, exc) from exc
    elif str(info.get("kind", "")).startswith("influxdb"):
        from optui.storage.influx_backup import influx_restore

        report.notes.append(influx_restore(settings, src, info, store_url, rpc=influx_rpc))
    else:
        raise BackupError(f"{src / MANIFEST}: unknown store kind {info.get('kind')!r}")
    for name, path in targets.items():
        try:
            _restore_tree(src / dirs[name]["path"], path, force, report, name)
        except OSError as exc:
            raise _restore_failed(path, exc) from exc
    _restore_config(src, manifest, config_target, report)
    return report


def _restore_failed(target: Path, exc: OSError) -> BackupError:
    if _is_full(exc):
        return _no_space(target.parent, exc)
    return BackupError(f"restoring {target} failed: {exc.strerror or exc}; what was there is kept "
                       "(a .before-restore copy if it was moved)")


def _restore_config(src: Path, manifest: dict[str, Any], target: Path | None,
                    report: RestoreReport) -> None:
    entry = manifest.get("config")
    if not entry:
        return
    copy = src / entry["path"]
    if target is None or target.exists():
        where = f"{target} exists" if target is not None else "no configuration path"
        report.notes.append(f"configuration not restored ({where}): the backed-up one is "
                            f"{copy}; secrets were never in it")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(copy, target)
    _private(target)
    report.restored.append(("configuration (without secrets)", target))
