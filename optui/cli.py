"""The `optui` command line. Heavy libraries are imported inside the commands that need them."""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="optui",
    help="Terminal workstation for Indian index options (NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, SENSEX).",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich's help renderer costs ~120 ms of imports on every `--help`.
    rich_markup_mode=None,
)
config_app = typer.Typer(help="Show the effective configuration.", add_completion=False, rich_markup_mode=None)
app.add_typer(config_app, name="config")

from optui.cli_iv import iv_app  # noqa: E402 - typer sub-app; its commands import lazily

app.add_typer(iv_app, name="iv")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


_GLOBAL_OPTIONS: dict[str, object] = {}
"""Options given before the subcommand (`optui -c FILE collect`), set by the main callback."""


def _root_param(name: str) -> object:
    """A global option's value, or None when it was not given before the subcommand."""
    return _GLOBAL_OPTIONS.get(name)


def _settings(config: Path | None = None):  # noqa: ANN202 - Settings, imported lazily
    """Settings from the file given with -c (before or after the subcommand), else the default file.

    A file given with -c must exist: it becomes $OPTUI_CONFIG_FILE for this process, so the
    secrets beside it, the wizard's saves and child processes all use it too.
    """
    from optui.config import load_settings, use_config_file
    from optui.errors import ConfigError

    given = _root_param("config")
    if isinstance(given, Path) and config is not None and given.expanduser().absolute() != config.expanduser().absolute():
        _fail(f"two configuration files given ({given} before the command, {config} after it): give one -c")
    chosen = config if config is not None else given if isinstance(given, Path) else None
    try:
        return load_settings(use_config_file(chosen) if chosen is not None else None)
    except ConfigError as exc:
        _fail(str(exc))


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML file (default: $OPTUI_CONFIG_FILE, ./optui.toml, ~/.config/optui/optui.toml).")]


def _run_app(start: str, config: Path | None, no_mouse: bool, attach: str | None = None,
             replay: tuple[str, float, str | None] | None = None) -> None:
    settings = _settings(config)
    no_mouse = no_mouse or bool(_root_param("no_mouse"))  # `optui --no-mouse dashboard` too
    request = _replay_request(settings, *replay) if replay is not None else None
    from optui.app import OptuiApp  # configures the log file itself

    app = OptuiApp(settings, start=start, mouse=not no_mouse and settings.ui.mouse)
    app.attach = attach
    app.replay = request
    app.run(mouse=not no_mouse and settings.ui.mouse)
    if app.return_code:  # an unexpected crash: logged by the app, and a failure for the shell
        raise typer.Exit(app.return_code)


@app.callback(invoke_without_command=True)
def main_callback(
    ctx: typer.Context,
    config: ConfigOpt = None,
    no_mouse: Annotated[bool, typer.Option("--no-mouse", help="Do not capture the mouse (plain terminal selection over SSH).")] = False,
) -> None:
    """With no command, open the full-screen app at the main menu."""
    _GLOBAL_OPTIONS.clear()
    _GLOBAL_OPTIONS.update(config=config, no_mouse=no_mouse)
    if ctx.invoked_subcommand is None:
        _run_app("main", config, no_mouse)


@app.command()
def dashboard(
    config: ConfigOpt = None,
    no_mouse: Annotated[bool, typer.Option("--no-mouse", help="Do not capture the mouse.")] = False,
    attach: Annotated[str | None, typer.Option("--attach", help="Watch a collector running elsewhere: redis://[:PASSWORD@]HOST:PORT/DB of its cache.")] = None,
    replay: Annotated[str | None, typer.Option("--replay", help="Replay a recorded day, YYYY-MM-DD (space pauses, . steps, +/- speed, j jumps).")] = None,
    speed: Annotated[float, typer.Option(help="With --replay: replayed seconds per real second.")] = 1.0,
    from_: Annotated[str | None, typer.Option("--from", help="With --replay: start at HH:MM IST.")] = None,
) -> None:
    """Open the live dashboard directly (collecting here, following a running collector, or
    replaying a recorded day)."""
    if attach is not None and not attach.startswith(("redis://", "rediss://")):
        _fail(f"--attach {attach!r}: give the collector's cache as redis://HOST:PORT/DB")
    if replay is None and from_ is not None:
        _fail("--from needs --replay YYYY-MM-DD")
    if replay is not None and attach is not None:
        _fail("--replay and --attach: give one")
    _run_app("dashboard", config, no_mouse, attach=attach,
             replay=(replay, speed, from_) if replay is not None else None)


def _replay_request(settings, day_text: str, speed: float, hhmm: str | None):  # noqa: ANN001, ANN202
    """A ReplayRequest checked before the app opens: the day's recording exists, the speed and
    the start time are valid (one-line errors, exit 2)."""
    from optui.collectors.replay import plan_replay
    from optui.collectors.replay_source import replay_start
    from optui.errors import OptuiError

    day = _parse_day(day_text, "--replay")
    if not 0 < speed <= 100000:
        _fail(f"--speed {speed}: allowed above 0 up to 100000")
    try:
        replay_start(day, hhmm)
        plan_replay(settings, day)
    except OptuiError as exc:
        _fail(str(exc))
    from optui.screens.dashboard import ReplayRequest

    return ReplayRequest(day, speed, hhmm)


@app.command()
def login(
    config: ConfigOpt = None,
    no_mouse: Annotated[bool, typer.Option("--no-mouse", help="Do not capture the mouse.")] = False,
) -> None:
    """Log in to Kite Connect and store the day's access token (a running collector picks it up)."""
    _run_app("login", config, no_mouse)


class SourceKind(StrEnum):
    sim = "sim"
    kite = "kite"


@app.command()
def collect(
    source: Annotated[SourceKind | None, typer.Option(help="sim (built-in simulated exchange) or kite.")] = None,
    indices: Annotated[str | None, typer.Option(help="Comma list, e.g. NIFTY,BANKNIFTY (default: all five).")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between cycles (default 30).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Run one cycle and exit.")] = False,
    store: Annotated[str | None, typer.Option(help="sqlite:///PATH or influxdb://HOST:PORT[?version=1|2] (influxdb1:// and influxdb2:// also work).")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for the JSON-per-leg files and CSV sidecar.")] = None,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help='On exit, write {"cycles": N, "points": M, "pending": P} here.')] = None,
    serve: Annotated[bool, typer.Option("--serve", help="Also serve the read-only API from this collector's own feed.")] = False,
    host: Annotated[str | None, typer.Option(help="With --serve: address to bind (default: api.host, loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="With --serve: TCP port (default: api.port, 8000).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Collect headless: one status line per cycle; SIGINT/SIGTERM stop after the current write."""
    settings = _settings(config)
    from optui.errors import ConfigError, OptuiError
    from optui.indices import parse_indices
    from optui.logs import setup_logging

    if indices:
        try:
            settings.source.indices = parse_indices(indices)
        except ValueError as exc:
            _fail(f"--indices: {exc}")
    if interval is not None:
        if not 1 <= interval <= 3600:
            _fail(f"--interval {interval}: allowed 1 to 3600 seconds")
        settings.source.interval_s = interval
    setup_logging(settings, to_stderr=True)
    from optui.collectors.headless import Collector, exit_report
    from optui.feed.local import LocalFeed

    # One collector per store and source: a second one is refused, naming the holder.
    feed = LocalFeed.from_settings(settings, source.value if source else None, store, out)
    try:
        feed.start()
    except (ConfigError, OptuiError) as exc:
        _fail(str(exc))
    engine = feed.engine
    assert engine is not None
    if once and not getattr(engine.source, "has_token", True):  # a one-shot has nothing to wait for
        from optui.collectors.kite_source import LOGIN_FIX, NO_TOKEN

        feed.close()
        _fail(f"{NO_TOKEN}: {LOGIN_FIX}; then run optui collect --once again")
    printer = _printer()
    collector = Collector(engine, settings.source.interval_s, printer=printer,
                          slow_share=settings.source.slow_cycle_share, feed=feed)
    from optui.collectors.health import HEALTH_FILE

    if engine.state_dir is not None:  # beside the day state: a simulated run never mixes in
        collector.supervisor.health_file = engine.state_dir / HEALTH_FILE
    collector.install_signal_handlers()
    printer(
        f"optui collect: source={engine.source_label.lower()} indices={','.join(engine.indices)} "
        f"interval={settings.source.interval_s:g}s store={engine.store.describe()}", "bold",
    )
    if engine.alerts is not None:
        printer(f"alerts: {engine.alerts.describe()}", "")
    api = None
    if serve:  # in a child process following this collector's cycles (see optui.api.child)
        from optui.api.serve import serve_collector
        from optui.collectors.engine import is_simulated, store_url_for

        bind_host = host or settings.api.host
        bind_port = settings.api.port if port is None else port
        kind = source.value if source else settings.source.kind
        try:
            api = serve_collector(settings, feed, store_url_for(settings, is_simulated(settings, kind), store),
                                  bind_host, bind_port, printer, collector.supervisor)
        except (OptuiError, OSError) as exc:
            feed.close()
            _fail(f"cannot serve the API on {bind_host}:{bind_port}: {getattr(exc, 'strerror', None) or exc}")
    try:
        code = collector.run(once=once)
    finally:
        if api is not None:
            api.stop()
        feed.close()
    try:
        exit_report(collector, summary_json)
    except (OSError, OptuiError) as exc:
        _fail(f"--summary-json {summary_json}: cannot write it ({getattr(exc, 'strerror', None) or exc})")
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: api.host, loopback; another address needs a token set beforehand).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: api.port, 8000).")] = None,
    attach: Annotated[str | None, typer.Option("--attach", help="Follow the collector publishing to this cache: redis://[:PASSWORD@]HOST:PORT/DB.")] = None,
    rotate_token: Annotated[bool, typer.Option("--rotate-token", help="Replace the API token, print the new one once, and exit (a running server takes it within a second).")] = False,
    config: ConfigOpt = None,
) -> None:
    """Serve the read-only REST and WebSocket API (docs at /docs) over the running collector's feed and the store; never collects."""
    settings = _settings(config)
    if attach is not None and not attach.startswith(("redis://", "rediss://")):
        _fail(f"--attach {attach!r}: give the collector's cache as redis://HOST:PORT/DB")
    bind_port = settings.api.port if port is None else port
    if not 0 <= bind_port <= 65535:
        _fail(f"--port {bind_port}: allowed 0 to 65535")
    from optui.errors import ConfigError
    from optui.logs import setup_logging

    setup_logging(settings, to_stderr=True)
    printer = _printer()
    if rotate_token:
        from optui.api.auth import TOKEN_ENV, ensure_token
        from optui.api.serve import announce_token

        try:
            info = ensure_token(rotate=True)
        except ConfigError as exc:
            _fail(str(exc))
        if info.origin == "environment":
            printer(f"stored a new api_token in {info.path}, but {TOKEN_ENV} is set and wins: change it there", "yellow")
        else:
            announce_token(info, printer)
        return
    import signal
    import threading

    from optui.api.serve import serve as run_serve

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    raise typer.Exit(run_serve(settings, host or settings.api.host, bind_port, attach, printer, stop))


@app.command()
def replay(
    date: Annotated[str, typer.Option("--date", help="The recorded day to play, YYYY-MM-DD.")],
    speed: Annotated[float | None, typer.Option(help="Replayed seconds per real second (default: as fast as possible).")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start at HH:MM IST (default: the first record).")] = None,
    store: Annotated[str | None, typer.Option(help="Store to write (default: data/replay, data/sim/replay for simulated days).")] = None,
    out: Annotated[Path | None, typer.Option(help="Directory for the JSON-per-leg files and CSV sidecar.")] = None,
    source: Annotated[SourceKind | None, typer.Option(help="Whose recording: sim (simulated) or kite (default: source.kind).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Play a recorded day headless through the collector's analytics and writers (source=replay)."""
    settings = _settings(config)
    import logging

    from optui.errors import OptuiError
    from optui.logs import setup_logging

    day = _parse_day(date, "--date")
    if speed is not None and not 0 < speed <= 100000:
        _fail(f"--speed {speed}: allowed above 0 up to 100000")
    setup_logging(settings, to_stderr=True)
    from optui.collectors.replay import plan_replay, replay_collector

    printer = _printer()
    try:
        plan = plan_replay(settings, day, source.value if source else None, store, out)
        collector, state = replay_collector(settings, plan, day, speed, from_, printer)
    except OptuiError as exc:
        _fail(str(exc))
    engine = collector.engine
    collector.install_signal_handlers()
    printer(
        f"optui replay: {plan.recording} source={engine.source_label.lower()} "
        f"speed={'max' if speed is None else f'{speed:g}x'} store={engine.store.describe()}", "bold",
    )
    try:
        code = collector.run()
    finally:
        for note in getattr(engine.source, "take_notices", list)():  # after the last cycle
            logging.getLogger("optui.replay").warning("%s", note)
            printer(f"  warning: {note}", "yellow")
        engine.close()
        state.cleanup()
    printer(f"replay done: {collector.cycles} cycle(s), {collector.points} point(s)", "bold")
    raise typer.Exit(code)


def _printer():  # noqa: ANN202
    """Rich colours on a terminal, plain lines otherwise (logs, systemd, pipes)."""
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        return lambda line, style="": console.print(line, style=style or None, markup=False)

    def plain(line: str, style: str = "") -> None:
        print(line, flush=True)

    return plain


@app.command()
def simulate(
    host: Annotated[str | None, typer.Option(help="Address to bind (default: simulator.host, loopback).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: simulator.port, 8765).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: same seed, same market (default: simulator.seed).")] = None,
    speed: Annotated[float | None, typer.Option(help="Simulated seconds per real second (default: simulator.speed).")] = None,
    start: Annotated[str | None, typer.Option(help='Simulated start, "YYYY-MM-DD HH:MM" IST (default: simulator.start, else the next open session).')] = None,
    api_key: Annotated[str | None, typer.Option(help="API key the simulator accepts (default: simulator.api_key).")] = None,
    access_token: Annotated[str | None, typer.Option(help="Access token the simulator accepts (default: simulator.access_token).")] = None,
    api_secret: Annotated[str | None, typer.Option(help="Check /session/token checksums against this secret (default: accept any).")] = None,
    faults: Annotated[str, typer.Option(help='Inject faults at rates, e.g. "429=0.05,5xx=0.05,timeout=0.02,token=0.01,malformed=0.02,slow=0.05,truncated=0.02,rotate=500".')] = "",
    config: ConfigOpt = None,
) -> None:
    """Serve the simulated exchange over the Kite Connect REST API and WebSocket ticker on one port ([simulator] settings as defaults)."""
    sim = _settings(config).simulator
    start_name = "--start" if start is not None else "simulator.start ="
    start = start if start is not None else sim.start or None
    start_at = None
    if not start:
        from optui.collectors.sim_source import demo_start

        start_at = demo_start()  # outside market hours: the next session's open, so prices move
    if start:
        from optui.timeutil import parse_ist_minute

        try:
            start_at = parse_ist_minute(start)
        except ValueError as exc:
            _fail(f"{start_name} {exc}")
    speed = sim.speed if speed is None else speed
    if not 0 < speed <= 10000:
        _fail(f"--speed {speed}: allowed above 0 up to 10000")
    host = host or sim.host
    port = sim.port if port is None else port
    from optui.errors import OptuiError
    from optui.simulator.server import run_simulator

    try:
        run_simulator(host, port, sim.seed if seed is None else seed, speed, start_at,
                      api_key or sim.api_key, access_token or sim.access_token, api_secret,
                      faults)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror}): choose another --port")
    except OptuiError as exc:
        _fail(str(exc))


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


@app.command()
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


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective configuration (file, then OPTUI_* environment); secrets masked."""
    settings = _settings(config)
    from optui.config import (
        SECRET_ENV,
        config_path,
        load_secrets,
        mask,
        redact_url,
        secrets_path,
        settings_dict,
    )
    from optui.errors import ConfigError

    typer.echo(f"# configuration file: {settings.path or config_path()} ({'found' if settings.path else 'not found: defaults in use'})")
    for section, values in settings_dict(settings).items():
        typer.echo(f"\n[{section}]")
        for key, value in values.items():
            if isinstance(value, str) and "://" in value:
                value = redact_url(value)
            typer.echo(f"{key} = {_toml_value(value)}")
    try:
        secrets = load_secrets()
    except ConfigError as exc:
        secrets = {}
        typer.echo(f"\n# secrets: {exc}")
    typer.echo(f"\n# secrets (environment or {secrets_path()}, mode 0600)")
    for name, env in SECRET_ENV.items():
        typer.echo(f"# {name} ({env}) = {mask(secrets.get(name, ''))}")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


participants_app = typer.Typer(help="NSE participant positions and FII/DII cash flows (end of day).",
                                 add_completion=False, rich_markup_mode=None)
app.add_typer(participants_app, name="participants")
StoreOpt = Annotated[str | None, typer.Option("--store", help="sqlite:///PATH or influxdb://HOST:PORT.")]


def _parse_day(text: str, name: str):  # noqa: ANN202 - datetime.date
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{name} {text!r}: use YYYY-MM-DD")


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
    """Participant positions, changes and FII/DII cash for one trade date (end of day)."""
    settings = _settings(config)
    day = _parse_day(date_, "--date") if date_ else None
    import json

    from optui.analytics.trading_calendar import TradingCalendar
    from optui.errors import OptuiError
    from optui.storage.participants_store import participants_day

    try:
        calendar = TradingCalendar.from_settings(settings)
        with _participants_store(settings, store) as db:
            result = participants_day(db, calendar, day)
    except OptuiError as exc:
        _fail(str(exc))
    if result is None:
        why = "" if day is None or calendar.is_trading_day(day) else " (not a trading day)"
        _fail(f"no participant OI stored for {day or 'any date'}{why}: run `optui participants "
              "import PATH` or `optui participants backfill`", 1)
        return
    if as_json:
        typer.echo(json.dumps(result.as_json(), indent=2))
        return
    from optui.widgets.participants_format import participants_lines

    for line in participants_lines(result):
        typer.echo(line)


@app.command()
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


class Mode(StrEnum):
    setup = "setup"
    development = "development"
    production = "production"


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Print the collector's current health, check each configured service and the Kite token."""
    settings = _settings(config)
    from optui.ops.doctor import run_doctor

    raise typer.Exit(run_doctor(settings, sys.stdout))


@app.command()
def setup(
    mode: Annotated[Mode, typer.Option(help="Which menu's steps to run.")] = Mode.setup,
    auto: Annotated[bool, typer.Option("--auto", help="Run every step without a screen.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run the setup, development or production menu's steps (headless with --auto)."""
    settings = _settings(config)
    if not auto:
        _run_app(mode.value, config, False)
        return
    from optui.ops import run_setup_auto

    raise typer.Exit(run_setup_auto(mode.value, settings))


@app.command()
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


@app.command()
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


def main() -> None:
    """Console-script entry point: an unexpected failure prints one line; the trace goes to the log."""
    try:
        app(standalone_mode=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - no traceback on a user's screen
        import logging

        logging.getLogger("optui").exception("unexpected error")
        where = _log_hint()
        typer.echo(f"error: unexpected {exc.__class__.__name__}: {exc} (details in {where})", err=True)
        sys.exit(1)


def _log_hint() -> str:
    import logging

    for handler in logging.getLogger().handlers:
        name = getattr(handler, "baseFilename", None)
        if name:
            return name
    return "the log file"


if __name__ == "__main__":
    main()
