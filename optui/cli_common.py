"""What every `optui` command shares: the -c option, settings loading, one-line errors, output.

The Typer app and its command table live in `optui.cli`; the commands live in `optui.cli_*`
modules and import only from here, so `python -m optui.cli` loads each of them once.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer


def _fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr and exit with `code` (2: bad input, 1: the work failed)."""
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

StoreOpt = Annotated[str | None, typer.Option("--store", help="sqlite:///PATH or influxdb://HOST:PORT.")]


class SourceKind(StrEnum):
    """Which exchange feed a command uses: the built-in simulator or Kite Connect."""

    sim = "sim"
    kite = "kite"


def _check_port(port: int | None, name: str = "--port") -> None:
    """Exit with a one-line error unless `port` (when given) is a TCP port, 0 to 65535 (0: any
    free port); the socket layer otherwise raises OverflowError, which is no OSError."""
    if port is not None and not 0 <= port <= 65535:
        _fail(f"{name} {port}: allowed 0 to 65535 (0: any free port)")


def _parse_day(text: str, name: str):  # noqa: ANN202 - datetime.date
    """The date in `text` (YYYY-MM-DD); exits with a one-line error naming option `name` otherwise."""
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        _fail(f"{name} {text!r}: use YYYY-MM-DD")


def _printer():  # noqa: ANN202
    """Rich colours on a terminal, plain lines otherwise (logs, systemd, pipes)."""
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console(highlight=False)
        return lambda line, style="": console.print(line, style=style or None, markup=False)

    def plain(line: str, style: str = "") -> None:
        print(line, flush=True)

    return plain
