"""`optui export`, `backup` and `restore`: commands over the stored records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from optui.cli_common import ConfigOpt, _fail, _settings


class ExportKind(StrEnum):
    csv = "csv"
    json = "json"


def _parse_when(text: str, name: str, whole_day_end: bool = False) -> datetime:
    """A CLI time in IST; with `whole_day_end` a bare date means the end of that day (next midnight)."""
    from datetime import timedelta

    from optui.timeutil import IST

    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=IST)
    except ValueError:
        pass
    else:
        return day + timedelta(days=1) if whole_day_end else day
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        _fail(f'{name} {text!r}: use "YYYY-MM-DD", "YYYY-MM-DD HH:MM" (IST) or ISO 8601')
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)


def export(
    kind: Annotated[ExportKind, typer.Argument(help="csv (the original 24 columns) or json (lines).")],
    from_: Annotated[str, typer.Option("--from", help='Start, "YYYY-MM-DD[ HH:MM]" IST.')],
    to: Annotated[str, typer.Option("--to", help='End, IST: a date includes that whole day ("--from D --to D" is day D); a time is exclusive.')],
    out: Annotated[Path | None, typer.Option(help="Output file (default: data/export_<from>_<to>.<kind>).")] = None,
    index: Annotated[str | None, typer.Option(help="Only this index (NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, SENSEX).")] = None,
    measurement: Annotated[str, typer.Option(help="atm_options, index_overview or premium_flow.")] = "atm_options",
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or influxdb://HOST:PORT[?version=1|2] (influxdb1:// and influxdb2:// also work).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Export stored records for a time range; an existing file is kept unless --force."""
    settings = _settings(config)
    start, end = _parse_when(from_, "--from"), _parse_when(to, "--to", whole_day_end=True)
    if end <= start:
        _fail(f"--to {to} is before --from {from_}: give an end after the start")
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.errors import OptuiError
    from optui.storage.base import open_store
    from optui.storage.export import check_export_request, export_rows

    target = out or Path(settings.general.data_dir) / f"export_{start:%Y%m%d%H%M}_{end:%Y%m%d%H%M}.{kind.value}"
    try:
        # Before opening the store: a typo or an existing file fails fast and touches nothing.
        check_export_request(measurement, index, target, overwrite=force)
        with open_store(store_url_for(settings, is_simulated(settings), store), settings) as db:
            count = export_rows(db, kind.value, start, end, target, measurement=measurement,
                                index=index, overwrite=force)
    except OptuiError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror}")
    typer.echo(f"exported {count} rows to {target}")



def backup(
    dest: Annotated[Path, typer.Argument(help="New or empty directory to write the backup into.")],
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or influxdb://HOST:PORT (default: the configured store).")] = None,
    influx_rpc: Annotated[str | None, typer.Option("--influx-rpc", help="InfluxDB 1.x RPC address for influxd backup (default: the store's host, port 8088).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Back up the store (online, while collecting), the configuration without secrets, the day-state and recordings."""
    settings = _settings(config)
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.config import redact_url
    from optui.logs import setup_logging
    from optui.storage.backup import BackupError
    from optui.storage.backup import backup as run_backup

    setup_logging(settings, to_stderr=False)
    url = store_url_for(settings, is_simulated(settings), store)
    typer.echo(f"backing up {redact_url(url)} into {dest} ...")
    try:
        report = run_backup(settings, dest, url, influx_rpc=influx_rpc)
    except BackupError as exc:
        _fail(str(exc), 1)
    total = sum(report.files.values())
    typer.echo(f"store: {report.store}, copied in {report.store_seconds:.1f} s")
    typer.echo(f"wrote {len(report.files)} file(s), {total / 1e6:,.1f} MB, with SHA-256 checksums in {report.dest / 'manifest.json'}")
    for note in report.notes:
        typer.echo(f"note: {note}")



def restore(
    src: Annotated[Path, typer.Argument(help="A directory `optui backup` wrote.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty store and directories (each kept beside as *.before-restore-*).")] = False,
    store: Annotated[str | None, typer.Option(help="Restore into this store (default: the configured store).")] = None,
    influx_rpc: Annotated[str | None, typer.Option("--influx-rpc", help="InfluxDB 1.x RPC address for influxd restore (default: the store's host, port 8088).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Verify a backup's checksums, then restore its store, day-state, recordings and configuration."""
    settings = _settings(config)
    from optui.collectors.engine import is_simulated, store_url_for
    from optui.config import config_path
    from optui.logs import setup_logging
    from optui.storage.backup import BackupError
    from optui.storage.restore import restore as run_restore

    setup_logging(settings, to_stderr=False)
    url = store_url_for(settings, is_simulated(settings), store)
    try:
        report = run_restore(settings, src, url, force=force, config_target=config or settings.path or config_path(),
                             influx_rpc=influx_rpc)
    except BackupError as exc:
        _fail(str(exc), 1)
    typer.echo(f"checksums of {src} verified")
    for what, where in report.restored:
        typer.echo(f"restored {what} -> {where}")
    for aside in report.kept_aside:
        typer.echo(f"kept the replaced {aside.name} beside it: {aside} (delete it when satisfied)")
    for note in report.notes:
        typer.echo(f"note: {note}")
