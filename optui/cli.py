"""The `optui` command line: the Typer app, its command table and the commands that open the app.

Commands are grouped in `optui.cli_collect` (collect, serve, replay, simulate), `optui.cli_store`
(export, backup, restore), `optui.cli_participants` and `optui.cli_iv`; what they share is in
`optui.cli_common`. Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from optui.cli_collect import collect, replay, serve, simulate
from optui.cli_common import _GLOBAL_OPTIONS, ConfigOpt, _fail, _parse_day, _root_param, _settings
from optui.cli_iv import iv_app
from optui.cli_participants import participants_app, premarket
from optui.cli_store import backup, export, restore

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
app.add_typer(iv_app, name="iv")


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
    the start time are valid and the recording holds a cycle at or after it (one-line errors,
    exit 2)."""
    from optui.collectors.replay import plan_parts, plan_replay, recorded_sessions
    from optui.collectors.replay_source import replay_start
    from optui.errors import OptuiError

    day = _parse_day(day_text, "--replay")
    if not 0 < speed <= 100000:
        _fail(f"--speed {speed}: allowed above 0 up to 100000")
    try:
        start = replay_start(day, hhmm)
        plan = plan_replay(settings, day)
        if start is not None:  # as `optui replay` refuses a time after the recording
            plan_parts(recorded_sessions(plan.recording), start, first_holding=True)
    except OptuiError as exc:
        _fail(str(exc))
    from optui.screens.dashboard import ReplayRequest

    return ReplayRequest(day, speed, hhmm)


def login(
    config: ConfigOpt = None,
    no_mouse: Annotated[bool, typer.Option("--no-mouse", help="Do not capture the mouse.")] = False,
) -> None:
    """Log in to Kite Connect and store the day's access token (a running collector picks it up)."""
    _run_app("login", config, no_mouse)


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


class Mode(StrEnum):
    """Which menu `optui setup` runs."""

    setup = "setup"
    development = "development"
    production = "production"


def doctor(config: ConfigOpt = None) -> None:
    """Print the collector's current health, check each configured service and the Kite token."""
    settings = _settings(config)
    from optui.ops.doctor import run_doctor

    raise typer.Exit(run_doctor(settings, sys.stdout))


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


# The command table, in the order `optui --help` lists it (groups follow the commands).
for _command in (dashboard, login, collect, serve, replay, simulate, export, premarket, doctor,
                 setup, backup, restore):
    app.command()(_command)
app.add_typer(participants_app, name="participants")


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
