"""`optui participants ...` and `optui premarket`: NSE end-of-day participant and FII/DII files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from optui.cli_common import ConfigOpt, StoreOpt, _fail, _parse_day, _settings

participants_app = typer.Typer(help="NSE participant positions and FII/DII cash flows (end of day).",
                                 add_completion=False, rich_markup_mode=None)


def _participants_store(settings, store: str | None):  # noqa: ANN001, ANN202 - Store
    """The configured live store (participant data is exchange fact, never simulated); logging
    goes to the log file so a rejected file's details and any trace land there."""
    from optui.errors import OptuiError
    from optui.logs import setup_logging
    from optui.storage.base import open_store

    setup_logging(settings, to_stderr=False)
    try:
        return open_store(store or settings.store.url, settings)
    except OptuiError as exc:
        _fail(str(exc))


@participants_app.command("import")
def participants_import(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (fao_participant_*.csv, fii_dii_cash*.json).")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Import participant files and FII/DII cash JSON; a re-imported day replaces itself."""
    settings = _settings(config)
    from optui.collectors.participants_import import import_paths

    with _participants_store(settings, store) as db:
        report = import_paths(db, paths)
    for kind, day, source in report.stored:
        typer.echo(f"stored {kind:4} {day:%Y-%m-%d}  {source}")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    for line in report.rejected:
        typer.echo(f"rejected: {line}", err=True)
    typer.echo(f"{len(report.stored)} file(s) stored, {len(report.rejected)} rejected")
    if report.rejected or not report.stored:
        raise typer.Exit(1)


@participants_app.command("backfill")
def participants_backfill(
    from_: Annotated[str, typer.Option("--from", help="First trade date, YYYY-MM-DD.")],
    to: Annotated[str, typer.Option("--to", help="Last trade date, YYYY-MM-DD (included).")],
    offline: Annotated[bool, typer.Option("--offline", help="Only the download folder, no downloads.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Store each trading day in a range: from the download folder, else from NSE's archive."""
    settings = _settings(config)
    first, last = _parse_day(from_, "--from"), _parse_day(to, "--to")
    if last < first:
        _fail("--to must not be before --from")
    from optui.analytics.trading_calendar import TradingCalendar
    from optui.collectors.nse_archive import NseArchive
    from optui.collectors.premarket import capture_day
    from optui.errors import ConfigError

    try:
        calendar = TradingCalendar.from_settings(settings)
    except ConfigError as exc:
        _fail(str(exc))
    p = settings.participants
    folder = Path(p.download_dir).expanduser()
    days = calendar.between(first, last)
    failed = 0
    archive = None if offline else NseArchive(p.url_template, p.cash_url, timeout_s=p.timeout_s, save_dir=folder)
    try:
        with _participants_store(settings, store) as db:
            for day in days:
                # NSE serves cash figures for the latest day only: a backfill stores the
                # participant files, and cash where a file is in the download folder.
                result = capture_day(db, day, archive=archive, download_dir=folder, parts=("oi", "vol"))
                cash = capture_day(db, day, archive=None, download_dir=folder, parts=("cash",))
                done = result.stored + result.already + cash.stored + cash.already
                line = f"{day:%Y-%m-%d}  " + (", ".join(done) or "nothing")
                typer.echo(line)
                for part, message in result.errors.items():
                    failed += 1
                    typer.echo(f"  {part}: {message}", err=True)
    finally:
        if archive is not None:
            archive.close()
    typer.echo(f"{len(days)} trading day(s), {failed} file(s) missing")
    if failed:
        raise typer.Exit(1)


@participants_app.command("show")
def participants_show(
    date_: Annotated[str | None, typer.Option("--date", help="Trade date YYYY-MM-DD (default: the latest stored).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Participant positions, changes and FII/DII cash for one trade date (end of day).

    When no participant OI file is stored for the date but FII/DII cash figures are, the cash
    figures are shown and the missing OI is named on stderr (exit 1, as for any missing part)."""
    settings = _settings(config)
    day = _parse_day(date_, "--date") if date_ else None
    import json

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.errors import OptuiError
    from optui.storage.participants_store import ParticipantsDay, cash_day, participants_day

    try:
        calendar = TradingCalendar.from_settings(settings)
        with _participants_store(settings, store) as db:
            result = participants_day(db, calendar, day)
            cash_only = cash_day(db, calendar, day) if result is None else None
    except OptuiError as exc:
        _fail(str(exc))
    missing = ""
    if result is None:
        why = "" if day is None or calendar.is_trading_day(day) else " (not a trading day)"
        missing = (f"no participant OI stored for {day or 'any date'}{why}: run `optui participants "
                   "import PATH` or `optui participants backfill`")
        if cash_only is None:
            _fail(missing, 1)
            return
        result = ParticipantsDay(cash_only[0], {}, None, cash_only[1])
    if as_json:
        data = result.as_json()
        if missing:
            data["participants"] = None  # not stored, unlike an empty table
        typer.echo(json.dumps(data, indent=2))
    else:
        from optui.widgets.participants_format import participants_lines

        lines = participants_lines(result)
        if missing:  # the cash block only: the positions table would be an empty header
            lines = [f"Participants (index derivatives OI): not stored for {day or 'any date'}",
                     *lines[next(i for i, ln in enumerate(lines) if ln.startswith("FII/DII cash")):]]
        for line in lines:
            typer.echo(line)
    if missing:
        _fail(missing, 1)


def premarket(
    date_: Annotated[str | None, typer.Option("--date", help="Trading day whose pre-market capture to run (default: today IST).")] = None,
    offline: Annotated[bool, typer.Option("--offline", help="Only the download folder, no downloads.")] = False,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Run the 08:00 IST capture by hand: store the previous trading day's participant files and cash."""
    settings = _settings(config)
    from optui.collectors.premarket import build_premarket
    from optui.errors import OptuiError
    from optui.timeutil import IST, now_utc

    day = _parse_day(date_, "--date") if date_ else now_utc().astimezone(IST).date()
    try:
        with _participants_store(settings, store) as db:
            result = build_premarket(settings, db, offline=offline).run(day)
    except OptuiError as exc:
        _fail(str(exc))
    typer.echo(f"pre-market capture for {day:%Y-%m-%d}: trade date {result.trade_date:%Y-%m-%d}")
    for part in result.stored:
        typer.echo(f"  stored {part}")
    for part in result.already:
        typer.echo(f"  {part} already stored")
    for warning in result.warnings:
        typer.echo(f"  warning: {warning}")
    for part, message in result.errors.items():
        typer.echo(f"  {part} missing: {message}", err=True)
    if not result.complete:
        raise typer.Exit(1)
