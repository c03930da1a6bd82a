"""Setup checks and actions as plain functions returning Check rows, shared by the menus and `--auto`.

Textual-free so the same work runs headless (`optui setup --auto`) and in the app's thread workers.
"""

from __future__ import annotations

import copy
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import urlsplit

from optui.config import Settings, load_settings, redact_url

log = logging.getLogger(__name__)

MIN_PYTHON = (3, 11)
MIN_MEMORY_MB = 512
MIN_DISK_MB = 1024
MIN_TERMINAL = (80, 24)
MIN_COLORS = 16
NET_TIMEOUT_S = 1.5

_COLOR_COUNTS = {"truecolor": 16_777_216, "256": 256, "standard": 16, "windows": 16}


@dataclass(frozen=True)
class Check:
    """One line of a check table: ok is True (pass), False (fail) or None (information only)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "INFO"}[self.ok]


def passed(checks: list[Check]) -> bool:
    """True when no check failed (information rows do not count)."""
    return all(c.ok is not False for c in checks)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


# ---------------------------------------------------------------- system requirements


def read_meminfo(path: Path = Path("/proc/meminfo")) -> dict[str, int]:
    """Fields of /proc/meminfo in kB; empty when the file does not exist (not Linux)."""
    out: dict[str, int] = {}
    try:
        text = path.read_text(encoding="ascii")
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name.strip()] = int(parts[0])
    return out


def existing_ancestor(path: Path) -> Path:
    """The path itself or its nearest existing parent, for disk-usage queries."""
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def terminal_facts() -> tuple[tuple[int, int] | None, int | None]:
    """(columns, lines) and colour count of the terminal on stdout, or None when not a terminal."""
    if not sys.stdout.isatty():
        return None, None
    size = shutil.get_terminal_size()
    from rich.console import Console

    system = Console().color_system
    return (size.columns, size.lines), _COLOR_COUNTS.get(system or "", 0)


def color_count(color_system: str | None) -> int:
    """Colours a Rich colour system name stands for (0 for none)."""
    return _COLOR_COUNTS.get(color_system or "", 0)


def system_requirements(
    settings: Settings,
    terminal: tuple[int, int] | None = None,
    colors: int | None = None,
    meminfo: dict[str, int] | None = None,
) -> list[Check]:
    """Python version, memory, disk for the data directory, terminal size and colours."""
    checks: list[Check] = []
    have = sys.version_info[:3]
    checks.append(Check(
        "Python", have[:2] >= MIN_PYTHON,
        f"{platform.python_implementation()} {'.'.join(map(str, have))} (need {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+)",
        "" if have[:2] >= MIN_PYTHON else "install Python 3.11 or newer and reinstall optui in it",
    ))
    info = read_meminfo() if meminfo is None else meminfo
    if "MemAvailable" in info:
        avail_mb = info["MemAvailable"] // 1024
        total_mb = info.get("MemTotal", 0) // 1024
        ok = avail_mb >= MIN_MEMORY_MB
        checks.append(Check(
            "Memory", ok, f"{avail_mb:,} MB available of {total_mb:,} MB (need {MIN_MEMORY_MB} MB)",
            "" if ok else "close other programs or add memory/swap",
        ))
    else:
        checks.append(Check("Memory", None, "/proc/meminfo not readable: memory not checked"))
    data_dir = Path(settings.general.data_dir)
    where = existing_ancestor(data_dir)
    try:
        free_mb = shutil.disk_usage(where).free // (1024 * 1024)
        ok = free_mb >= MIN_DISK_MB
        checks.append(Check(
            "Disk", ok, f"{free_mb:,} MB free at {where} for {data_dir} (need {MIN_DISK_MB} MB)",
            "" if ok else "free disk space or set general.data_dir to a larger disk",
        ))
    except OSError as exc:
        checks.append(Check("Disk", False, f"cannot measure {where}: {exc.strerror}",
                            "set general.data_dir to a writable directory"))
    if terminal is None and colors is None:
        terminal, colors = terminal_facts()
    if terminal is None:
        checks.append(Check("Terminal size", None,
                            f"not a terminal (headless run); the app needs {MIN_TERMINAL[0]}x{MIN_TERMINAL[1]}"))
    else:
        cols, lines = terminal
        ok = cols >= MIN_TERMINAL[0] and lines >= MIN_TERMINAL[1]
        checks.append(Check(
            "Terminal size", ok, f"{cols}x{lines} (need {MIN_TERMINAL[0]}x{MIN_TERMINAL[1]})",
            "" if ok else "enlarge the window or reduce the font size",
        ))
    if os.environ.get("NO_COLOR"):
        checks.append(Check("Colours", None, "NO_COLOR is set: monochrome by request"))
    elif colors is None:
        checks.append(Check("Colours", None, "not a terminal: colours not checked"))
    else:
        ok = colors >= MIN_COLORS
        checks.append(Check(
            "Colours", ok, f"{colors:,} colours (need {MIN_COLORS})",
            "" if ok else "use a terminal with 256 colours (TERM=xterm-256color) or set NO_COLOR=1",
        ))
    return checks


# ---------------------------------------------------------------- prerequisites


def required_packages(dist: str = "optui") -> list[tuple[str, str]]:
    """(name, requirement) pairs of the installed distribution's dependencies (extras excluded)."""
    try:
        reqs = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return []
    out: list[tuple[str, str]] = []
    for req in reqs:
        if "extra ==" in req:
            continue
        spec = req.split(";")[0].strip()
        name = re.split(r"[\s<>=!~\[(]", spec, maxsplit=1)[0]
        out.append((name, spec))
    return out


def package_checks(packages: list[tuple[str, str]] | None = None) -> list[Check]:
    """Each required Python package with its installed version, or how to install it."""
    packages = required_packages() if packages is None else packages
    if not packages:
        return [Check("optui package", False, "optui is not installed as a distribution",
                      "pip install -e . in the optui checkout")]
    checks = []
    for name, spec in packages:
        try:
            checks.append(Check(f"package {name}", True, f"{metadata.version(name)} ({spec})"))
        except metadata.PackageNotFoundError:
            checks.append(Check(f"package {name}", False, "not installed", f"pip install '{spec}'"))
    return checks


def influx_http_url(url: str) -> str:
    """The HTTP(S) base URL of an influxdb:// or influxdbs:// (or http) store URL."""
    parts = urlsplit(url)
    scheme = {"influxdb": "http", "influxdbs": "https"}.get(parts.scheme, parts.scheme)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 8086
    return f"{scheme}://{host}:{port}"


def ping_influx(url: str, timeout: float = NET_TIMEOUT_S) -> str:
    """Ping an InfluxDB server (1.x and 2.x both answer /ping with 204); returns its version."""
    import httpx

    resp = httpx.get(influx_http_url(url) + "/ping", timeout=timeout)
    if resp.status_code != 204:
        raise ConnectionError(f"/ping answered HTTP {resp.status_code}, expected 204")
    return resp.headers.get("X-Influxdb-Version", "unknown version")


def ping_redis(url: str, timeout: float = NET_TIMEOUT_S) -> str:
    """Ping a Redis server; returns its version."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
        return str(client.info("server").get("redis_version", "unknown version"))
    finally:
        client.close()


REDIS_FIX = ("start it (apt-get install redis-server, or docker compose up -d redis) or use "
             "cache.url = memory://")


def redis_check(url: str, timeout: float = NET_TIMEOUT_S) -> Check:
    """Whether the Redis at `url` answers PING, as a "Redis" row (the URL's password redacted)."""
    try:
        version = ping_redis(url, timeout)
    except Exception as exc:
        return Check("Redis", False, f"{redact_url(url)} not reachable: {_one_line(exc)}", REDIS_FIX)
    return Check("Redis", True, f"{redact_url(url)} answers PONG ({version})")


def store_check(settings: Settings) -> Check:
    """Open the store the configured source writes (store.url, or the simulator's own store
    when store.url is left at its default) and ping it, as a "Store" row naming where it is."""
    try:
        from optui.collectors.make_source import store_in_use
        from optui.storage.base import open_store

        with open_store(store_in_use(settings), settings) as store:
            ok = store.ping()
            return Check("Store", ok, f"{store.describe()} {'answers' if ok else 'does not answer'}",
                         "" if ok else "start the server or fix store.url")
    except Exception as exc:
        return Check("Store", False, _one_line(exc), "fix store.url or start the server")


def writable_problem(path: Path) -> OSError | None:
    """Create `path` (and parents) and write and remove a probe file in it; the OSError that
    stopped it, or None when the directory is usable."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".optui-write-test"
        probe.write_text("ok", encoding="ascii")
        probe.unlink()
    except OSError as exc:
        return exc
    return None


def influx_url(settings: Settings) -> str:
    """The InfluxDB URL in use: the store URL when it is InfluxDB, else [influxdb] url, else ''."""
    if settings.store.url.startswith(("influxdb://", "influxdbs://")):
        return settings.store.url
    return settings.influxdb.url


def service_checks(settings: Settings, timeout: float = NET_TIMEOUT_S) -> list[Check]:
    """Reachability of the configured InfluxDB and Redis, or a note that the embedded ones are used."""
    checks = []
    url = influx_url(settings)
    if url:
        try:
            version = ping_influx(url, timeout)
            checks.append(Check("InfluxDB", True, f"{influx_http_url(url)} answers ({version})"))
        except Exception as exc:
            checks.append(Check(
                "InfluxDB", False, f"{influx_http_url(url)} not reachable: {_one_line(exc)}",
                "start it (docker compose up -d influxdb, see Production 8) or use "
                "store.url = sqlite:///data/optui.db",
            ))
    else:
        from optui.collectors.engine import is_simulated, store_url_for

        # The store the configured source writes: the simulator's is data/sim/optui.db by default.
        store = store_url_for(settings, is_simulated(settings))
        checks.append(Check("InfluxDB", None, f"not configured: embedded store {store}"))
    if settings.cache.url.startswith("redis://"):
        checks.append(redis_check(settings.cache.url, timeout))
    else:
        checks.append(Check("Redis", None, "not configured: in-process cache in use"))
    return checks


def directory_check(name: str, path: Path) -> Check:
    """Whether the directory of setting `name` can be created and written, as a row named `name`."""
    problem = writable_problem(path)
    if problem is None:
        return Check(name, True, f"{path} writable")
    return Check(name, False, f"{path} is not writable ({problem.strerror})",
                 "fix its permissions or choose another")


def health_checks(settings: Settings, timeout: float = 3.0) -> list[Check]:
    """What the running setup needs now: the store answers, the cache answers (Redis), the data
    and log directories are writable and, with source.kind = kite, the stored token is valid.

    Rows are named by what they check ("store", "cache", "general.data_dir", "general.log_dir",
    "Kite token"); a check that raises becomes a failed row, never hides the others.
    """
    from dataclasses import replace

    rows = [replace(store_check(settings), name="store")]
    if settings.cache.url.startswith("redis://"):
        rows.append(replace(redis_check(settings.cache.url, timeout), name="cache"))
    else:
        rows.append(Check("cache", True, "in memory"))
    for name in ("data_dir", "log_dir"):
        rows.append(directory_check(f"general.{name}", Path(getattr(settings.general, name)).expanduser()))
    if settings.source.kind == "kite":
        try:
            from optui.collectors.kite_auth import token_status
            from optui.config import load_secrets

            status = token_status(settings, load_secrets())
            ok = status.present and not status.expired
            rows.append(Check("Kite token", ok, status.describe(),
                              "" if ok else "log in again (Kite Connect authentication)"))
        except Exception as exc:
            rows.append(Check("Kite token", False, _one_line(exc), "fix or delete the secrets file"))
    return rows


def prerequisites(settings: Settings, timeout: float = NET_TIMEOUT_S) -> list[Check]:
    """Installed Python packages with versions, then Redis and InfluxDB reachability."""
    return package_checks() + service_checks(settings, timeout)


# ---------------------------------------------------------------- actions


def create_directories(settings: Settings) -> list[Check]:
    """Create the data, log, spool, instrument-cache and export directories."""
    wanted = {
        "data": settings.general.data_dir,
        "logs": settings.general.log_dir,
        "spool": settings.store.spool_dir,
        "instruments": settings.source.instruments_cache_dir,
        "exports": settings.export.out_dir,
    }
    checks = []
    seen: set[Path] = set()
    for label, raw in wanted.items():
        path = Path(raw).expanduser()
        if path.absolute() in seen:
            continue
        seen.add(path.absolute())
        existed = path.is_dir()
        problem = writable_problem(path)
        if problem is None:
            checks.append(Check(f"{label} dir", True, f"{path.absolute()} ({'exists' if existed else 'created'})"))
        else:
            checks.append(Check(f"{label} dir", False, f"{path}: {problem.strerror}",
                                "choose a writable directory in the configuration"))
    return checks


def initialise_services(settings: Settings) -> list[Check]:
    """InfluxDB bucket/database with infinite retention, Redis ping, or the embedded store opened."""
    checks = []
    url = settings.store.url
    if url.startswith(("influxdb://", "influxdbs://")):
        try:
            from optui.storage.influx_store import InfluxStore

            influx = InfluxStore.from_url(url, settings)
            try:
                result = influx.init_database()
            finally:
                influx.close()
            detail = f"{influx_http_url(url)}: {result}" if isinstance(result, str) and result else (
                f"{influx_http_url(url)}: {settings.influxdb.bucket} ready, infinite retention")
            checks.append(Check("InfluxDB", True, detail))
        except Exception as exc:
            checks.append(Check("InfluxDB", False, f"initialising {influx_http_url(url)} failed: {_one_line(exc)}",
                                "check the server runs and OPTUI_INFLUXDB_TOKEN is set"))
    else:
        try:
            from optui.collectors.make_source import store_in_use
            from optui.storage.base import open_store

            url = store_in_use(settings)  # the simulator's own store when store.url is the default
            with open_store(url, settings) as store:
                ok = store.ping()
                checks.append(Check("Store", ok, f"embedded {store.describe()} opened"
                                    + ("" if ok else " but does not answer"),
                                    "" if ok else "check the path in store.url is writable"))
        except Exception as exc:
            checks.append(Check("Store", False, f"{url}: {_one_line(exc)}",
                                "check store.url and that its directory is writable"))
        checks.append(Check("InfluxDB", None, "not configured: the embedded SQLite store is in use"))
    if settings.cache.url.startswith("redis://"):
        checks.append(redis_check(settings.cache.url))
    else:
        checks.append(Check("Redis", None, "not configured: the in-process cache is in use"))
    return checks


def source_login(settings: Settings) -> list[Check]:
    """Whether the configured source can be used: the simulator needs nothing; Kite needs the API
    key, a stored access token that has not expired, and Kite accepting it (`profile()`)."""
    if settings.source.kind != "kite":
        return [Check("Source", None, "source.kind = sim: the built-in simulated exchange, no login needed")]
    from optui.collectors.kite_auth import token_status, validate_token
    from optui.config import load_secrets
    from optui.errors import ConfigError, OptuiError

    login_fix = "log in: optui → 3 Production → 2 Kite Connect authentication (or 3: paste a token)"
    where = settings.kite.root
    if not settings.kite.api_key.strip():
        return [Check("Kite login", False, "kite.api_key is not set",
                      "enter it in the wizard (1 Setup → 4 → 1 Kite credentials) or set OPTUI_KITE_API_KEY")]
    try:
        secrets = load_secrets()
    except ConfigError as exc:
        return [Check("Kite login", False, str(exc), "fix or delete the secrets file, then log in again")]
    status = token_status(settings, secrets)
    if not status.present or status.expired:
        return [Check("Kite login", False, status.describe(), login_fix)]
    try:
        profile = validate_token(settings, settings.kite.api_key, secrets["kite_access_token"])
    except OptuiError as exc:
        return [Check("Kite login", False, f"{where}: {exc}", login_fix)]
    who = f"{profile.get('user_name') or '?'} ({profile.get('user_id') or '?'})"
    return [Check("Kite login", True, f"{where} accepts the access token: {who}; {status.describe()}")]


def validate_installation(settings: Settings) -> list[Check]:
    """The configuration loads, the store opens and answers, and a cycle of the configured source completes."""
    checks = []
    try:
        loaded = load_settings(settings.path) if settings.path else load_settings()
        where = loaded.path or "defaults (no file)"
        checks.append(Check("Configuration", True, f"loads from {where}"))
    except Exception as exc:
        checks.append(Check("Configuration", False, _one_line(exc), "fix the file or rerun the wizard"))
    checks.append(store_check(settings))
    checks.append(collection_cycle(settings))
    return checks


def collection_cycle(settings: Settings) -> Check:
    """One collection cycle from the configured source (source.kind) into a throwaway directory.

    The store, files and state go to a temporary directory so real data stays clean; a Kite
    source keeps its instrument cache (one dump a day). Failing to reach or log in to the
    configured source fails this check: it never falls back to the simulator.
    """
    kind = settings.source.kind
    what = "simulated cycle" if kind == "sim" else f"Kite cycle ({settings.kite.root})"
    with tempfile.TemporaryDirectory(prefix="optui-validate-") as tmp:
        trial = copy.deepcopy(settings)
        trial.general.data_dir = tmp
        trial.export.out_dir = tmp
        if kind == "sim":
            trial.source.instruments_cache_dir = str(Path(tmp) / "instruments")
        trial.store.url = f"sqlite:///{Path(tmp) / 'validate.db'}"
        trial.store.spool_dir = str(Path(tmp) / "spool")
        trial.cache.url = "memory://"
        try:
            from optui.collectors.engine import build_engine

            engine = build_engine(trial)
            try:
                snap = engine.collect_once()
            finally:
                engine.close()
            return Check("Collection cycle", True,
                         f"{what}: {len(snap.indices)} indices, {snap.leg_count} legs "
                         f"in {snap.duration_s:.2f} s")
        except Exception as exc:
            log.warning("validation %s failed", what, exc_info=True)
            fix = ("log in (optui → 3 Production → 2) and check kite.root" if kind == "kite"
                   else "see the log file for the trace")
            return Check("Collection cycle", False, f"{what} failed: {_one_line(exc)}", fix)


StepFn = Callable[[Settings], list[Check]]
