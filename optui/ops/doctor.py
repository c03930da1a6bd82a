"""`optui doctor`: the collector's current health, each configured service, and the Kite token.

Reads what a running (or the last) `optui collect` wrote after its latest attempt
(optui.collectors.health.HEALTH_FILE beside the day state), pings the configured InfluxDB and
Redis, and checks the stored access token: its expiry (06:00 IST the morning after a login), and,
with an API key set, whether Kite accepts it now. Times are Kite's clock when Kite answered (its
`Date` header), else the machine's, and the report says which.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TextIO

from optui.collectors.health import HealthEvent, Severity, at_ist
from optui.config import Settings, load_secrets
from optui.errors import OptuiError, TokenExpiredError
from optui.ops.checks import NET_TIMEOUT_S, Check, passed, service_checks
from optui.timeutil import now_utc

LOGIN_FIX = "log in: optui login (or optui → 3 Production → 2 Kite Connect authentication)"

STALE_AFTER_INTERVALS = 3.0
"""A health file older than this many intervals means the collector is not running."""


def _health_path(settings: Settings) -> Path:
    from optui.collectors.engine import is_simulated
    from optui.collectors.health import HEALTH_FILE

    kind = "sim" if is_simulated(settings) else settings.source.kind
    return Path(settings.general.data_dir) / "state" / kind / HEALTH_FILE


def format_age(seconds: float) -> str:
    """A duration for a person, e.g. "3m 20s ago", "1h 05m ago"; never negative (a clock that
    stamped the event a little ahead reads "0s ago")."""
    total = max(0, int(round(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m ago"
    if minutes:
        return f"{minutes}m {secs:02d}s ago"
    return f"{secs}s ago"


def collector_checks(settings: Settings, now: datetime | None) -> list[Check]:
    """The last health summary: one row for the collector, one per open fault (with its fix).

    `now` is the exchange clock (the one that stamped the summary's "at"); None when it is not
    known (no Kite answer, or a simulator whose clock runs apart from this machine's): then the age
    is measured on the machine's clock alone, from the file's modification time.
    """
    from optui.collectors.health import read_health_file

    path = _health_path(settings)
    doc = read_health_file(path)
    if doc is None:
        return [Check("Collector", None, f"no health recorded at {path}: optui collect has not run here",
                      "start it: optui collect (or the optui-collect systemd service)")]
    try:
        at = datetime.fromisoformat(str(doc["at"]))
    except (KeyError, ValueError):
        return [Check("Collector", False, f"{path} is not a health summary", "delete it; the collector rewrites it")]
    if now is not None:
        age = (now - at).total_seconds()
    else:
        try:
            age = now_utc().timestamp() - path.stat().st_mtime
        except OSError:
            age = 0.0
    age = max(0.0, age)
    when = at_ist(at, doc.get("local_clock") is True, "%Y-%m-%d %H:%M:%S")
    detail = (f"last attempt {when} ({format_age(age)}), {doc.get('cycles', 0)} attempts, "
              f"{doc.get('gaps', 0)} gaps, source {doc.get('source', '?')}")
    if doc.get("cached_age_s") is not None:
        detail += f"; showing cached data {float(doc['cached_age_s']):.0f}s old"
    stale = age > STALE_AFTER_INTERVALS * settings.source.interval_s
    opened = health_events(doc.get("open"))
    # An open error (data not collected) fails the row; open warnings inform in their own rows.
    failing = stale or any(event.severity is Severity.ERROR for event in opened)
    rows = [Check("Collector", not failing, detail + ("; not running?" if stale else ""),
                  "check: systemctl status optui-collect (or journalctl -u optui-collect)" if stale else "")]
    for event in opened:
        ok = False if event.severity is Severity.ERROR else None  # a warning informs, an error fails
        since = f" (since {event.when()})" if event.at is not None else ""
        rows.append(Check(f"  {event.level} {event.kind.value}", ok, event.message + since, event.action))
    return rows


def health_events(entries: object) -> list[HealthEvent]:
    """The typed events of a health file's "open" or "recent" list (HealthEvent.as_dict each);
    entries that are not events are skipped."""
    if not isinstance(entries, list):
        return []
    events = []
    for entry in entries:
        try:
            events.append(HealthEvent.from_dict(entry))
        except (TypeError, ValueError, AttributeError):
            continue
    return events


def spool_checks(settings: Settings) -> list[Check]:
    """Points waiting in the InfluxDB spool (nothing for SQLite, which has none)."""
    from optui.ops.checks import influx_url

    url = influx_url(settings)
    if not settings.store.url.startswith(("influxdb", "influxdbs")) or not url:
        return []
    from optui.storage.influx_store import InfluxStore

    try:
        store = InfluxStore.from_url(settings.store.url, settings)
        if store.spool is None or not store.spool.directory.exists():  # never spooled: create nothing
            return [Check("Spool", True, "empty: nothing was ever spooled here")]
        pending, where = store.pending()
    except OptuiError as exc:
        return [Check("Spool", False, str(exc), "fix store.url or store.spool_dir")]
    if not pending:
        return [Check("Spool", True, "empty: every collected point reached InfluxDB")]
    return [Check("Spool", None, f"{pending} point(s) waiting in {where}",
                  "they are written when InfluxDB answers (the collector replays them first)")]


def token_checks(settings: Settings) -> tuple[list[Check], datetime | None]:
    """The stored token's expiry and Kite's answer to it; also Kite's clock when it answered."""
    if settings.source.kind != "kite":
        return [Check("Kite token", None, f"not needed: source is {settings.source.kind}")], None
    from optui.collectors.kite_auth import token_status

    try:
        secrets = load_secrets()
    except OptuiError as exc:
        return [Check("Kite token", False, str(exc), "fix or delete the secrets file")], None
    token = secrets.get("kite_access_token", "")
    exchange_now: datetime | None = None
    rows: list[Check] = []
    if token and settings.kite.api_key:
        from optui.collectors.kite_source import KiteSource

        try:
            source = KiteSource(settings.kite.api_key, token, root=settings.kite.root, timeout=NET_TIMEOUT_S * 2)
            source.probe()
            exchange_now = source.now()
            rows.append(Check("Kite login", True, f"{settings.kite.root} accepts the stored token"))
        except TokenExpiredError as exc:
            rows.append(Check("Kite login", False, str(exc), LOGIN_FIX))
        except OptuiError as exc:  # not a login fault: Kite did not answer, or answered an error
            rows.append(Check("Kite login", False, str(exc),
                              f"check the network and kite.root ({settings.kite.root}); the token is "
                              "checked once Kite answers"))
    status = token_status(settings, secrets, exchange_now or now_utc())
    ok: bool | None = None if status.present and status.expires_at is None else (status.present and not status.expired)
    fix = "" if ok else LOGIN_FIX
    return [Check("Kite token", ok, status.describe(), fix), *rows], exchange_now


def doctor(settings: Settings) -> tuple[list[Check], str]:
    """Every row of the report and which clock it used."""
    tokens, exchange_now = token_checks(settings)
    clock = "Kite's clock" if exchange_now is not None else "this machine's clock"
    return collector_checks(settings, exchange_now) + service_checks(settings) + spool_checks(settings) + tokens, clock


def run_doctor(settings: Settings, out: TextIO) -> int:
    """Print the report; exit status 0 when nothing failed, 1 otherwise."""
    rows, clock = doctor(settings)
    width = max(len(r.name) for r in rows)
    for row in rows:
        out.write(f"{row.status}  {row.name.ljust(width)}  {row.detail}\n")
        if row.fix and row.ok is not True:
            out.write(f"      {' ' * width}  fix: {row.fix}\n")
    failed = sum(r.ok is False for r in rows)
    out.write(f"{'all checks passed' if not failed else f'{failed} check(s) failed'} (times by {clock})\n")
    return 0 if passed(rows) else 1
