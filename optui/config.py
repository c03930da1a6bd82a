"""Typed settings: defaults, overridden by the TOML file, overridden by OPTUI_* environment.

Secrets (Kite API secret and access token, InfluxDB token) never live in the main file: they come
from the environment or from a secrets file written with mode 0600.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date
from pathlib import Path
from typing import Any, get_type_hints

from optui.errors import ConfigError
from optui.indices import INDEX_KEYS


@dataclass
class GeneralSettings:
    data_dir: str = "data"
    log_dir: str = "logs"
    log_level: str = "INFO"


@dataclass
class SourceSettings:
    kind: str = "sim"  # sim | kite
    indices: list[str] = field(default_factory=lambda: list(INDEX_KEYS))
    interval_s: float = 30.0
    offsets: list[int] = field(default_factory=lambda: [-2, -1, 0, 1, 2])
    chain_strikes: int = 0  # 0: every listed strike quoted for PCR, max pain, OI and flow; N: N each side of ATM
    full_chain_expiries: int = 0  # > 0: legs for every listed strike of the first N expiries
    instruments_cache_dir: str = "data/instruments"
    slow_cycle_share: float = 0.8  # a cycle longer than this share of the interval is flagged
    simulated_fallback: bool = False  # while the live source fails, show simulated data (never stored)
    stream: bool = True  # quotes from the WebSocket ticker, REST polling as the fallback tier
    stream_instruments: int = 9000  # at most this many streamed (Kite: 3 connections x 3,000)
    stream_stall_s: float = 10.0  # a ticker connection silent this long (no heartbeat) is redialled


@dataclass
class AnalyticsSettings:
    rate: float = 0.065
    dividend_yield: float = 0.0
    iv_model: str = "black76"  # black76 | black_scholes
    skew_steps: int = 4  # skew = put IV - call IV this many strike steps from ATM
    stale_after_s: float = 120.0
    wide_spread_pct: float = 10.0


@dataclass
class SimulatorSettings:
    seed: int = 7
    speed: float = 1.0
    start: str = ""  # "YYYY-MM-DD HH:MM" IST; empty = now
    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str = "sim_key"
    access_token: str = "sim_token"


@dataclass
class KiteSettings:
    api_key: str = ""
    root: str = "https://api.kite.trade"
    login_url: str = "https://kite.zerodha.com/connect/login"
    redirect_url: str = "http://127.0.0.1:5000/success"


@dataclass
class StoreSettings:
    url: str = "sqlite:///data/optui.db"  # or influxdb://HOST:PORT
    batch_size: int = 5000
    spool_dir: str = "data/spool"


@dataclass
class InfluxSettings:
    url: str = ""
    org: str = "optui"
    bucket: str = "options-data"
    database: str = "options-data"  # InfluxDB 1.x


@dataclass
class CacheSettings:
    url: str = "memory://"  # or redis://127.0.0.1:6379/0
    lease_s: float = 30.0  # a collector's lease on its store in Redis; expires this long after a crash


@dataclass
class ExportSettings:
    out_dir: str = "data"
    write_json: bool = True
    write_csv: bool = True


@dataclass
class FlowSettings:
    retention_days: int = 90
    timeframe: str = "5m"


@dataclass
class PositionSettings:
    intervals: list[str] = field(default_factory=lambda: ["1m", "5m", "15m", "30m", "1h"])
    top_n: int = 10


@dataclass
class AlertSettings:
    fii_flow_cr: float = 500.0
    dii_flow_cr: float = 300.0
    pro_client_divergence_pct: float = 20.0
    volume_spike_pct: float = 200.0
    single_flow_cr: float = 1000.0
    oi_change_pct: float = 50.0
    oi_change_window_min: int = 15
    cooldown_s: float = 300.0
    webhook_url: str = ""
    oi_change_daily_avg_pct: float = 100.0
    pcr_shift: float = 0.2
    max_pain_shift_steps: float = 2.0
    buildup_flip: bool = True
    severities: list[str] = field(default_factory=list)  # ["rule=critical", ...]
    cooldowns: list[str] = field(default_factory=list)  # ["rule=SECONDS", ...]
    bell: bool = False
    webhook_format: str = "auto"  # auto | json | slack | telegram
    telegram_chat_id: str = ""
    webhook_min_severity: str = "warning"
    webhook_retries: int = 3


@dataclass
class ParticipantSettings:
    enabled: bool = True
    download_dir: str = "data/participants"  # NSE participant OI/volume and FII/DII cash files
    history_days: int = 30  # trading days the participants screen charts first
    url_template: str = (
        "https://nsearchives.nseindia.com/content/nsccl/fao_participant_{kind}_{ddmmyyyy}.csv"
    )
    cash_url: str = "https://www.nseindia.com/api/fiidiiTradeReact"  # FII/DII provisional
    capture_time: str = "08:00"  # IST, each trading day: store the previous day's files
    retry_min: float = 10.0  # minutes between capture retries until the open
    timeout_s: float = 15.0
    holidays: list[str] = field(default_factory=list)  # YYYY-MM-DD added to the NSE table
    special_sessions: list[str] = field(default_factory=list)  # weekend days that trade


@dataclass
class RecordSettings:
    enabled: bool = True  # record every collection's answers for `optui replay`
    dir: str = ""  # empty: data_dir/recordings (live) and data_dir/sim/recordings (simulated)


@dataclass
class UISettings:
    mouse: bool = True
    animations: bool = False
    theme: str = "textual-dark"
    chain_strikes: int = 10  # strikes each side of the ATM in the dashboard's chain
    oi_unit: str = "lakh"  # OI, OI change and volume in the chain: lakh (units / 100,000) | lots


@dataclass
class ApiSettings:
    """The read-only REST and WebSocket API (`optui serve`, `optui collect --serve`)."""

    host: str = "127.0.0.1"  # loopback; any other address needs a token set explicitly
    port: int = 8000
    cors_origins: list[str] = field(default_factory=list)  # empty: no cross-origin browser access
    rate_limit_per_min: int = 600  # requests per client address per minute (429 beyond)
    max_body_bytes: int = 16384  # larger request bodies are refused with 413
    ws_queue: int = 16  # messages a WebSocket client may fall behind before it is dropped


@dataclass
class Settings:
    general: GeneralSettings = field(default_factory=GeneralSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    kite: KiteSettings = field(default_factory=KiteSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    influxdb: InfluxSettings = field(default_factory=InfluxSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    flow: FlowSettings = field(default_factory=FlowSettings)
    positions: PositionSettings = field(default_factory=PositionSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    participants: ParticipantSettings = field(default_factory=ParticipantSettings)
    ui: UISettings = field(default_factory=UISettings)
    record: RecordSettings = field(default_factory=RecordSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    path: Path | None = None  # the TOML file these came from, if any


# Allowed values and ranges; the message of a failed check names key, value and what is allowed.
_CHOICES: dict[str, tuple[str, ...]] = {
    "general.log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "source.kind": ("sim", "kite"),
    "analytics.iv_model": ("black76", "black_scholes"),
    "flow.timeframe": ("1m", "5m", "15m", "30m", "1h", "1d", "1w"),
    "ui.oi_unit": ("lakh", "lots"),
    "alerts.webhook_format": ("auto", "json", "slack", "telegram"),
    "alerts.webhook_min_severity": ("info", "warning", "critical"),
}
_RANGES: dict[str, tuple[float, float]] = {
    "source.interval_s": (1.0, 3600.0),
    "source.chain_strikes": (0, 200),
    "source.full_chain_expiries": (0, 20),
    "source.stream_instruments": (1, 9000),
    "source.stream_stall_s": (1.0, 600.0),
    "analytics.rate": (-0.05, 0.5),
    "analytics.dividend_yield": (0.0, 0.5),
    "analytics.skew_steps": (1, 50),
    "analytics.stale_after_s": (1.0, 86400.0),
    "analytics.wide_spread_pct": (0.1, 1000.0),
    "simulator.speed": (0.01, 10000.0),
    "simulator.port": (1, 65535),
    "store.batch_size": (1, 1_000_000),
    "flow.retention_days": (1, 36500),
    "positions.top_n": (1, 100),
    "alerts.fii_flow_cr": (0.0, 1e6),
    "alerts.dii_flow_cr": (0.0, 1e6),
    "alerts.pro_client_divergence_pct": (0.0, 100.0),
    "alerts.volume_spike_pct": (0.0, 1e5),
    "alerts.single_flow_cr": (0.0, 1e6),
    "alerts.oi_change_pct": (0.0, 1e4),
    "alerts.oi_change_window_min": (1, 375),
    "alerts.oi_change_daily_avg_pct": (0.0, 1e5),
    "alerts.pcr_shift": (0.0, 100.0),
    "alerts.max_pain_shift_steps": (0.0, 1000.0),
    "alerts.cooldown_s": (0.0, 86400.0),
    "alerts.webhook_retries": (0, 10),
    "participants.history_days": (1, 3650),
    "participants.retry_min": (1.0, 120.0),
    "participants.timeout_s": (1.0, 300.0),
    "ui.chain_strikes": (1, 100),
    "api.port": (1, 65535),
    "api.rate_limit_per_min": (1, 1_000_000),
    "api.max_body_bytes": (0, 10_000_000),
    "api.ws_queue": (1, 10_000),
}
_INTERVALS = ("1m", "5m", "15m", "30m", "1h", "1d", "1w")

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
    for key, allowed in _CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not allowed: choose one of {', '.join(allowed)}")
    for key, (lo, hi) in _RANGES.items():
        section, name = key.split(".")
        value = getattr(getattr(settings, section), name)
        if not lo <= value <= hi:
            raise ConfigError(f"{key} = {value!r} is out of range: allowed {lo} to {hi}")
    bad = [k for k in settings.source.indices if k not in INDEX_KEYS]
    if bad or not settings.source.indices:
        raise ConfigError(
            f"source.indices = {settings.source.indices!r} is not allowed: choose from {', '.join(INDEX_KEYS)}"
        )
    if not settings.source.offsets or any(abs(o) > 50 for o in settings.source.offsets):
        raise ConfigError(f"source.offsets = {settings.source.offsets!r}: give offsets between -50 and 50")
    bad_iv = [i for i in settings.positions.intervals if i not in _INTERVALS]
    if bad_iv:
        raise ConfigError(
            f"positions.intervals = {settings.positions.intervals!r}: allowed {', '.join(_INTERVALS)}"
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
