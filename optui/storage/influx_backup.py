"""InfluxDB backups through the server's own tools: `influxd backup -portable` (1.x, over the
server's RPC port, 8088 by default) and `influx backup` (2.x, over HTTP with a token).

Where the tool is not on this machine, the error says exactly what to run on the server. Tokens
go to the tool through its environment (INFLUX_TOKEN), never on a command line or into the
manifest. Formats: https://docs.influxdata.com/influxdb/v1/administration/backup_and_restore/
and https://docs.influxdata.com/influxdb/v2/admin/backup-restore/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from optui.storage.backup import BackupError

RPC_PORT = 8088
_TIMEOUT_S = 6 * 3600.0


def _server(settings: Any, store_url: str) -> tuple[Any, str]:
    """The InfluxStore for the URL and its version string ("1.6.7", "v2.7.1")."""
    from optui.config import redact_url
    from optui.errors import OptuiError
    from optui.storage.influx_store import InfluxStore, Unavailable

    try:
        store = InfluxStore.from_url(store_url, settings)
    except OptuiError as exc:
        raise BackupError(str(exc)) from exc
    try:
        version = store.version()
    except (OptuiError, Unavailable) as exc:
        store.close()
        raise BackupError(f"cannot reach the InfluxDB server {redact_url(store_url)} ({exc}): "
                          "start it or check store.url") from exc
    return store, version


def _rpc_address(store_url: str, rpc: str | None) -> str:
    return rpc or f"{urlsplit(store_url).hostname}:{RPC_PORT}"


def _probe(address: str, manual: str) -> None:
    """Fail fast when nothing listens on the RPC address (influxd itself retries for minutes)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5.0):
            pass
    except ValueError:
        raise BackupError(f"InfluxDB RPC address {address!r}: use HOST:PORT") from None
    except OSError as exc:
        raise BackupError(
            f"nothing answers on InfluxDB's RPC address {address} ({exc.strerror or exc}): the "
            "backup service listens on influxd's top-level bind-address (127.0.0.1:8088 by "
            "default, so only on the server itself); give --influx-rpc HOST:PORT or run on the "
            f"server: {manual}"
        ) from None


def _run(argv: list[str], env: dict[str, str] | None, what: str, manual: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S,
                              env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise BackupError(f"cannot run {argv[0]} ({exc.strerror or exc}); on the server run: "
                          f"{manual}") from exc
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} did not finish in {_TIMEOUT_S / 3600:g} h; on the server run: "
                          f"{manual}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
        raise BackupError(f"{what} failed ({lines[-1] if lines else f'exit {done.returncode}'}); "
                          f"check the server's RPC bind-address (--influx-rpc HOST:PORT) or run "
                          f"on the server: {manual}")


def _tool(name: str, binary: str | None) -> str | None:
    return binary if binary is not None else shutil.which(name)


def influx_backup(settings: Any, store_url: str, target: Path, rpc: str | None = None,
                  binary: str | None = None) -> dict[str, Any]:
    """Drive the server's portable backup into `target` (a new directory); the manifest's store
    entry (kind, database or bucket, directory). Raises BackupError saying what to run by hand
    when the tool is missing or fails."""
    store, version = _server(settings, store_url)
    try:
        if version.lstrip("v").startswith("1"):
            address = _rpc_address(store_url, rpc)
            manual = f"influxd backup -portable -host {address} -db {store.database} DIR"
            tool = _tool("influxd", binary)
            if tool is None:
                raise BackupError(f"influxd is not installed here, so the InfluxDB {version} "
                                  f"database cannot be backed up from this machine; on the "
                                  f"server run: {manual} (then copy DIR next to this backup)")
            _probe(address, manual)
            _run([tool, "backup", "-portable", "-host", address, "-db", store.database,
                  str(target)], None, "influxd backup", manual)
            return {"kind": "influxdb-1", "database": store.database, "rpc": address,
                    "dir": "influx", "server_version": version}
        host = store.url
        manual = (f"INFLUX_TOKEN=... influx backup DIR --host {host} --org {store.org} "
                  f"--bucket {store.bucket}")
        tool = _tool("influx", binary)
        if tool is None or not _is_v2_cli(tool):
            raise BackupError(f"the InfluxDB 2 `influx` CLI is not installed here; on the server "
                              f"run: {manual} (with the operator token)")
        token = store._token or ""
        _run([tool, "backup", str(target), "--host", host, "--org", store.org, "--bucket",
              store.bucket], {"INFLUX_TOKEN": token}, "influx backup", manual)
        return {"kind": "influxdb-2", "org": store.org, "bucket": store.bucket, "dir": "influx",
                "server_version": version}
    finally:
        store.close()


def _is_v2_cli(tool: str) -> bool:
    try:
        done = subprocess.run([tool, "version"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "Influx CLI" in done.stdout


def influx_restore(settings: Any, src: Path, info: dict[str, Any], store_url: str,
                   rpc: str | None = None, binary: str | None = None) -> str:
    """Drive the server's restore of a backup `influx_backup` made; a line saying what was done.

    1.x: `influxd restore -portable` refuses a database that already exists (drop it first, or
    restore under another name with influxd's -newdb). 2.x: said, not run (it needs the operator
    token). Raises BackupError with the command to run by hand."""
    directory = src / str(info.get("dir", "influx"))
    if not store_url.startswith(("influxdb://", "influxdbs://")):
        raise BackupError(f"this backup holds an InfluxDB database; store {store_url!r} is not "
                          "InfluxDB: give --store influxdb://HOST:PORT")
    if info.get("kind") == "influxdb-1":
        database = str(info["database"])
        address = _rpc_address(store_url, rpc)
        manual = f"influxd restore -portable -host {address} -db {database} {directory}"
        tool = _tool("influxd", binary)
        if tool is None:
            raise BackupError(f"influxd is not installed here; on the server run: {manual}")
        _probe(address, manual)
        _run([tool, "restore", "-portable", "-host", address, "-db", database, str(directory)],
             None, "influxd restore", manual + " (a database of that name must not exist: drop "
             "it first or add -newdb NAME)")
        return f"InfluxDB database {database} restored through {address}"
    bucket = info.get("bucket", "")
    raise BackupError("InfluxDB 2 restores need the operator token; on the server run: "
                      f"INFLUX_TOKEN=... influx restore {directory} --host "
                      f"{urlsplit(store_url)._replace(scheme='http').geturl().split('?')[0]} "
                      f"--bucket {bucket}")
