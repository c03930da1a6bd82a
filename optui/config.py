"""Typed settings: defaults, overridden by the TOML file, overridden by OPTUI_* environment.

The sections' dataclasses and allowed values live in `optui.config_schema` (re-exported here);
this module finds, reads, checks and writes them. Secrets (Kite API secret and access token,
InfluxDB token) never live in the main file: they come from the environment or from a secrets
file written with mode 0600.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import fields, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any, get_type_hints

from optui.config_schema import CHOICES, INTERVALS, RANGES
from optui.config_schema import AlertSettings as AlertSettings
from optui.config_schema import AnalyticsSettings as AnalyticsSettings
from optui.config_schema import ApiSettings as ApiSettings
from optui.config_schema import CacheSettings as CacheSettings
from optui.config_schema import ExportSettings as ExportSettings
from optui.config_schema import FlowSettings as FlowSettings
from optui.config_schema import GeneralSettings as GeneralSettings
from optui.config_schema import InfluxSettings as InfluxSettings
from optui.config_schema import KiteSettings as KiteSettings
from optui.config_schema import ParticipantSettings as ParticipantSettings
from optui.config_schema import PositionSettings as PositionSettings
from optui.config_schema import RecordSettings as RecordSettings
from optui.config_schema import Settings as Settings
from optui.config_schema import SimulatorSettings as SimulatorSettings
from optui.config_schema import SourceSettings as SourceSettings
from optui.config_schema import StoreSettings as StoreSettings
from optui.config_schema import UISettings as UISettings
from optui.errors import ConfigError
from optui.indices import INDEX_KEYS

SECRET_ENV = {
    "kite_api_secret": "OPTUI_KITE_API_SECRET",
    "kite_access_token": "OPTUI_KITE_ACCESS_TOKEN",
    "influxdb_token": "OPTUI_INFLUXDB_TOKEN",
    "api_token": "OPTUI_API_TOKEN",  # bearer token of the read-only API (optui serve)
}


def config_path() -> Path:
    """Where the configuration file lives: $OPTUI_CONFIG_FILE, ./optui.toml, or ~/.config/optui."""
    env = os.environ.get("OPTUI_CONFIG_FILE")
    if env:
        return Path(env).expanduser()
    local = Path("optui.toml")
    if local.exists():
        return local
    base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
    return base / "optui" / "optui.toml"


def use_config_file(path: Path) -> Path:
    """Make an explicitly chosen file (`optui -c FILE`) the configuration for this process.

    Sets $OPTUI_CONFIG_FILE so that everything reading or writing the configuration (the wizard,
    the secrets file beside it, child processes) uses the same file. Returns the absolute path;
    raises ConfigError naming the file when it does not exist or is not a regular file: a file
    the user named is never silently replaced by defaults.
    """
    file = path.expanduser()
    if not file.exists():
        raise ConfigError(
            f"configuration file {file} does not exist: check the path, copy "
            "config/optui.example.toml there, or leave out -c to use the default file"
        )
    if not file.is_file():
        raise ConfigError(f"configuration file {file} is not a regular file: give the path of a TOML file")
    file = file.absolute()
    os.environ["OPTUI_CONFIG_FILE"] = str(file)
    return file


def secrets_path() -> Path:
    """The 0600 file holding secrets not given in the environment."""
    env = os.environ.get("OPTUI_SECRETS_FILE")
    if env:
        return Path(env).expanduser()
    return config_path().with_name("secrets.toml")


def _coerce(key: str, raw: Any, hint: Any, default: Any) -> Any:
    """Convert a TOML or environment value to the field's type, or raise ConfigError."""
    try:
        if isinstance(default, bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if isinstance(default, float):
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if isinstance(default, list):
            items = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
            if default and isinstance(default[0], int):
                return [int(x) for x in items]
            return [str(x) for x in items]
        if isinstance(raw, (dict, list)):
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        kind = type(default).__name__ if not isinstance(default, list) else "list"
        raise ConfigError(f"{key} = {raw!r} is not a valid {kind}") from None


def _validate(settings: Settings) -> None:
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not allowed: choose one of {', '.join(allowed)}")
    for key, (lo, hi) in RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if not lo <= value <= hi:
            raise ConfigError(f"{key} = {value!r} is out of range: allowed {lo} to {hi}")
    cadence = settings.source.snapshot_s
    if cadence != 0 and not 1.0 <= cadence <= 60.0:
        raise ConfigError(f"source.snapshot_s = {cadence!r} is out of range: allowed 1.0 to 60.0 "
                          "(exchange seconds), or 0 for one cycle every interval_s")
    bad = [k for k in settings.source.indices if k not in INDEX_KEYS]
    if bad or not settings.source.indices:
        raise ConfigError(
            f"source.indices = {settings.source.indices!r} is not allowed: choose from {', '.join(INDEX_KEYS)}"
        )
    if not settings.source.offsets or any(abs(o) > 50 for o in settings.source.offsets):
        raise ConfigError(f"source.offsets = {settings.source.offsets!r}: give offsets between -50 and 50")
    bad_iv = [i for i in settings.positions.intervals if i not in INTERVALS]
    if bad_iv:
        raise ConfigError(
            f"positions.intervals = {settings.positions.intervals!r}: allowed {', '.join(INTERVALS)}"
        )
    url = settings.store.url = canonical_store_url(settings.store.url)
    if not (url.startswith("sqlite:///") or url.startswith("influxdb://") or url.startswith("influxdbs://")):
        raise ConfigError(f"store.url = {url!r}: use sqlite:///PATH or influxdb://HOST:PORT")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", settings.participants.capture_time):
        raise ConfigError(f"participants.capture_time = {settings.participants.capture_time!r}: "
                          "use HH:MM (IST)")
    for key in ("holidays", "special_sessions"):
        for value in getattr(settings.participants, key):
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"participants.{key}: {value!r} is not a date "
                                  "(use YYYY-MM-DD)") from None
    cache = settings.cache.url
    if not (cache == "memory://" or cache.startswith("redis://")):
        raise ConfigError(f"cache.url = {cache!r}: use memory:// or redis://HOST:PORT/DB")
    from optui.alerts.model import parse_overrides

    parse_overrides("alerts.severities", settings.alerts.severities, "severity")
    parse_overrides("alerts.cooldowns", settings.alerts.cooldowns, "seconds")


# Keys that moved: a file still using the old name keeps working (the new name wins if both).
_MOVED = {"positions.oi_change_pct": "alerts.oi_change_pct", "flow.threshold_cr": "alerts.single_flow_cr"}


def _apply(settings: Settings, data: dict[str, Any], origin: str) -> None:
    for section_name, values in data.items():
        section = getattr(settings, section_name, None)
        if section is None or not is_dataclass(section) or section_name == "path":
            raise ConfigError(f"{origin}: unknown section [{section_name}]")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: [{section_name}] must be a table")
        hints = get_type_hints(type(section))
        names = {f.name for f in fields(section)}
        for name, raw in values.items():
            key = f"{section_name}.{name}"
            if key in _MOVED:
                import logging

                logging.getLogger(__name__).warning("%s: %s is now %s: rename it there", origin, key, _MOVED[key])
                new_section, new_name = _MOVED[key].split(".")
                if new_name not in data.get(new_section, {}):
                    _apply(settings, {new_section: {new_name: raw}}, origin)
                continue
            if name not in names:
                raise ConfigError(f"{origin}: unknown key {section_name}.{name}")
            setattr(section, name, _coerce(key, raw, hints[name], getattr(section, name)))


def _env_overrides(environ: dict[str, str], settings: Settings) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for f in fields(settings):
        if f.name == "path":
            continue
        for sub in fields(getattr(settings, f.name)):
            env_name = f"OPTUI_{f.name.upper()}_{sub.name.upper()}"
            if env_name in environ:
                out.setdefault(f.name, {})[sub.name] = environ[env_name]
    return out


def canonical_store_url(url: str) -> str:
    """`influxdb1://HOST:PORT` and `influxdb2://HOST:PORT` (also `influxdb1s://`, `influxdb2s://`
    for TLS) as `influxdb://HOST:PORT?version=1|2`; other URLs unchanged. Raises ConfigError when
    the alias and a `version=` in the query disagree."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    alias = {"influxdb1": ("influxdb", "1"), "influxdb2": ("influxdb", "2"),
             "influxdb1s": ("influxdbs", "1"), "influxdb2s": ("influxdbs", "2")}.get(scheme.lower())
    if not sep or alias is None:
        return text
    base, version = alias
    where, _, query = rest.partition("?")
    from urllib.parse import parse_qsl, urlencode

    params = parse_qsl(query, keep_blank_values=True)
    given = [v for k, v in params if k == "version"]
    right = f"{base}://{redact_url(f'{base}://{where}').split('://', 1)[1]}?version={version}"
    if any(v != version for v in given):
        raise ConfigError(f"store.url {redact_url(text)!r}: {scheme}:// means version {version}; use {right}")
    params = [(k, v) for k, v in params if k != "version"] + [("version", version)]
    return f"{base}://{where}?{urlencode(params)}"


def read_text_file(file: Path, what: str) -> str:
    """A UTF-8 text file's content; ConfigError (one line naming the file) when unreadable or not UTF-8."""
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file}: {what} file is not UTF-8 text (bad byte at offset {exc.start}): "
            "save it as UTF-8 or remove it"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the {what} file ({exc.strerror or exc})") from None


def read_toml(file: Path, what: str) -> dict[str, Any]:
    """Parse a TOML file; ConfigError naming the file (and the line) when unreadable, not UTF-8 or not TOML."""
    text = read_text_file(file, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: {what} file is not valid TOML ({exc}): fix the file or remove it") from None


def _parse_tomlkit(file: Path, what: str) -> Any:
    """The file as a tomlkit document (comments kept); empty when missing; ConfigError when unreadable."""
    import tomlkit

    if not file.exists():
        return tomlkit.document()
    text = read_text_file(file, what)
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{file}: {what} file is not valid TOML ({exc}): fix the file or remove it") from None


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Defaults, then the TOML file (if it exists), then OPTUI_SECTION_KEY environment variables."""
    environ = dict(os.environ if environ is None else environ)
    settings = Settings()
    file = path if path is not None else config_path()
    if file.exists():
        data = read_toml(file, "configuration")
        _apply(settings, data, str(file))
        settings.path = file
    _apply(settings, _env_overrides(environ, settings), "environment")
    _validate(settings)
    return settings


def settings_dict(settings: Settings) -> dict[str, dict[str, Any]]:
    """The settings as nested plain values (no secrets live here)."""
    out: dict[str, dict[str, Any]] = {}
    for f in fields(settings):
        if f.name == "path":
            continue
        section = getattr(settings, f.name)
        out[f.name] = {s.name: getattr(section, s.name) for s in fields(section)}
    return out


def load_secrets(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Secrets from the environment first, then the 0600 secrets file; missing ones are absent."""
    environ = dict(os.environ if environ is None else environ)
    out: dict[str, str] = {}
    file = secrets_path()
    if file.exists():
        data = read_toml(file, "secrets")
        out.update({k: str(v) for k, v in data.items() if k in SECRET_ENV and v})
    for name, env_name in SECRET_ENV.items():
        if environ.get(env_name):
            out[name] = environ[env_name]
    return out


def save_secret(name: str, value: str) -> Path:
    """Store one secret in the secrets file, creating it with mode 0600."""
    if name not in SECRET_ENV:
        raise ConfigError(f"unknown secret {name!r}: one of {', '.join(SECRET_ENV)}")
    import tomlkit

    file = secrets_path()
    file.parent.mkdir(parents=True, exist_ok=True)
    doc = _parse_tomlkit(file, "secrets")
    doc[name] = value
    write_private(file, tomlkit.dumps(doc))
    return file


def write_private(file: Path, text: str) -> None:
    """Write a file readable by its owner only (0600), never briefly world-readable."""
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, file)


def redact_url(url: str) -> str:
    """A URL fit to print: any password in it becomes ****; webhook paths (tokens) are hidden."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "****"
    netloc = parts.netloc
    if parts.password:
        user = parts.username or ""
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{user}:****@{host}"
    path, query = parts.path, parts.query
    if parts.scheme in ("http", "https") and (path.strip("/") or query):
        path, query = "/****", ""  # webhook URLs carry their secret in the path or query
    if (netloc, path, query) == (parts.netloc, parts.path, parts.query):
        return url  # nothing secret: print it exactly (urlunsplit would fold sqlite:///)
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def mask(value: str) -> str:
    """Show that a secret is set without showing it."""
    if not value:
        return "(not set)"
    return "****" + (value[-2:] if len(value) >= 12 else "")


def check_value(key: str, raw: Any, settings: Settings | None = None) -> Any:
    """Convert and validate `section.name = raw` against `settings` (defaults when None).

    Returns the typed value; raises ConfigError naming the key, the value and what is allowed.
    Nothing is saved: the wizard calls this as the user types.
    """
    import copy

    section_name, _, name = key.partition(".")
    trial = copy.deepcopy(settings) if settings is not None else Settings()
    section = getattr(trial, section_name, None)
    if section is None or not is_dataclass(section) or name not in {f.name for f in fields(section)}:
        raise ConfigError(f"unknown setting {key}")
    value = _coerce(key, raw, get_type_hints(type(section))[name], getattr(section, name))
    setattr(section, name, value)
    _validate(trial)
    return value


def set_value(key: str, raw: Any, path: Path | None = None) -> Settings:
    """Validate `section.name = raw` and save it to the TOML file, keeping the user's comments."""
    import tomlkit

    section_name, _, name = key.partition(".")
    file = path if path is not None else config_path()
    current = load_settings(file, environ={})
    section = getattr(current, section_name, None)
    if section is None or not is_dataclass(section) or name not in {f.name for f in fields(section)}:
        raise ConfigError(f"unknown setting {key}")
    hints = get_type_hints(type(section))
    value = _coerce(key, raw, hints[name], getattr(section, name))
    setattr(section, name, value)
    _validate(current)
    doc = _parse_tomlkit(file, "configuration")
    if section_name not in doc:
        doc[section_name] = tomlkit.table()
    doc[section_name][name] = value  # type: ignore[index]
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(tomlkit.dumps(doc), encoding="utf-8")
    current.path = file
    return current
