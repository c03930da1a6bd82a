"""What each configuration section's form holds, how a typed value is checked, and the form actions.

Kept apart from the screen so the fields can be read (and tested) as data; actions are plain
blocking functions that the form runs in a thread worker and that return (ok, report). Store,
Redis and directory checks are optui.ops.checks' (shared with `optui setup`), shown as its rows.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from optui import config
from optui.config import Settings, load_secrets, mask, save_secret, secrets_path, set_value
from optui.errors import ConfigError
from optui.logs import log_file, tail
from optui.ops import checks
from optui.timeutil import parse_ist_minute


@dataclass(frozen=True)
class FormField:
    """One numbered row: a setting (`key`), a secret (`secret`) or an action to run."""

    label: str
    key: str = ""
    secret: str = ""
    action: str = ""
    prompt: str = ""  # an action that first takes typed text (e.g. a file path)
    hint: str = ""
    help: str = ""
    button: str = ""

    @property
    def is_action(self) -> bool:
        return bool(self.action)


F = FormField
_REVIEW = F("Review and check this section", action="review", button="Check", hint="validate all")
_SNAPSHOT = F("Snapshot cadence (s)", key="source.snapshot_s", hint="0: every interval",
              help="streamed: a snapshot when each new exchange second's ticks arrive, at most one "
                   "per this many seconds (1 to 60); overview, flow and alerts stored every "
                   "snapshot, leg rows and files every interval_s; 0: one cycle every interval_s")

SECTIONS: dict[str, tuple[str, list[FormField]]] = {
    "kite": ("Kite credentials", [
        F("API key", key="kite.api_key", help="the app's API key from the Kite developer console"),
        F("API secret", secret="kite_api_secret", prompt="type the API secret (hidden)",
          help="kept in the 0600 secrets file, never shown"),
        F("Import from file", action="kite_import", prompt="path to a .env, TOML or JSON file",
          help="reads KITE_API_KEY / KITE_API_SECRET (or api_key / api_secret) from the file"),
        F("Test connection", action="kite_test", button="Test", hint="profile call or reachability"),
        F("OAuth login flow", action="kite_login", button="Log in", hint="browser or pasted URL"),
        F("Validate permissions", action="kite_permissions", button="Check", hint="profile, quote, ltp"),
        F("Complete: check everything", action="kite_complete", button="Check", hint="key, secret, token"),
    ]),
    "monitoring": ("Monitoring and health checks", [
        F("Collection interval (s)", key="source.interval_s"),
        _SNAPSHOT,
        F("Data stale after (s)", key="analytics.stale_after_s"),
        F("OI change alert (%)", key="alerts.oi_change_pct"),
        F("OI change window (min)", key="alerts.oi_change_window_min"),
        F("Alert cooldown (s)", key="alerts.cooldown_s"),
        F("Alert webhook URL", key="alerts.webhook_url", hint="empty: no webhook"),
        F("Send a test alert", action="alerts_test", button="Send", hint="to the webhook"),
        F("Run health checks now", action="health", button="Run", hint="store, cache, token, dirs"),
    ]),
    "database": ("Database", [
        F("Store URL", key="store.url", help="sqlite:///data/optui.db or influxdb://HOST:8086"),
        F("Write batch size", key="store.batch_size"),
        F("Spool directory", key="store.spool_dir"),
        F("InfluxDB URL", key="influxdb.url", hint="empty: from store.url"),
        F("InfluxDB org", key="influxdb.org"),
        F("InfluxDB bucket", key="influxdb.bucket"),
        F("InfluxDB token", secret="influxdb_token", prompt="type the token (hidden)"),
        F("Cache URL", key="cache.url", help="memory:// or redis://127.0.0.1:6379/0"),
        F("Test the store", action="store_test", button="Test", hint="open, ping"),
    ]),
    "logging": ("Logging", [
        F("Log level", key="general.log_level", help="DEBUG, INFO, WARNING or ERROR"),
        F("Log directory", key="general.log_dir"),
        F("Data directory", key="general.data_dir"),
        F("Export directory", key="export.out_dir"),
        F("Write JSON per leg", key="export.write_json", help="true or false"),
        F("Write CSV sidecar", key="export.write_csv", help="true or false"),
        F("View the newest log", action="view_log", button="View", hint="last lines"),
    ]),
    "source": ("Data source and market data", [
        F("Source (sim or kite)", key="source.kind"),
        F("Indices", key="source.indices", help="comma separated: NIFTY, BANKNIFTY, ..."),
        F("Collection interval (s)", key="source.interval_s"),
        F("Strike offsets", key="source.offsets", help="comma separated integers, e.g. -2,-1,0,1,2"),
        F("Chain strikes each side", key="source.chain_strikes", help="0: every listed strike"),
        F("Full-chain expiries", key="source.full_chain_expiries", help="0: offsets only"),
        F("Kite API root", key="kite.root"),
        F("Kite redirect URL", key="kite.redirect_url",
          help="http://127.0.0.1:5000/success; forward it with ssh -L 5000:127.0.0.1:5000"),
        F("Instrument cache directory", key="source.instruments_cache_dir"),
    ]),
    "performance": ("Performance", [
        F("Collection interval (s)", key="source.interval_s"),
        F("Chain strikes each side", key="source.chain_strikes", help="0: every listed strike"),
        F("Full-chain expiries", key="source.full_chain_expiries"),
        _SNAPSHOT,
        F("Animations", key="ui.animations", help="true or false (off suits SSH)"),
        F("Mouse", key="ui.mouse", help="true or false"),
        F("Dashboard chain strikes each side", key="ui.chain_strikes", help="1 to 100 (default 10)"),
        F("Chain OI unit", key="ui.oi_unit", help="lakh (units / 100,000) or lots"),
        _REVIEW,
    ]),
    "analytics": ("Options analytics", [
        F("Risk-free rate", key="analytics.rate", help="a fraction: 0.065 is 6.5 %"),
        F("Dividend yield", key="analytics.dividend_yield"),
        F("IV model", key="analytics.iv_model", help="black76 (on the future) or black_scholes"),
        F("Skew steps from ATM", key="analytics.skew_steps"),
        F("Quote stale after (s)", key="analytics.stale_after_s"),
        F("Wide spread flag (%)", key="analytics.wide_spread_pct"),
        _REVIEW,
    ]),
    "security": ("Security", [
        F("Kite API secret", secret="kite_api_secret", prompt="type the API secret (hidden)"),
        F("Enter access token", action="token_manual", button="Enter", hint="validated first"),
        F("Check stored token", action="token_previous", button="Check", hint="profile call"),
        F("InfluxDB token", secret="influxdb_token", prompt="type the token (hidden)"),
        F("Check secret file modes", action="secret_files", button="Check", hint="0600, fixes"),
    ]),
    "participants": ("Participant analysis", [
        F("FII flow alert (₹ cr)", key="alerts.fii_flow_cr"),
        F("DII flow alert (₹ cr)", key="alerts.dii_flow_cr"),
        F("Pro-Client divergence (%)", key="alerts.pro_client_divergence_pct"),
        F("All alert rules, bell and webhooks", action="alerts_section", button="Open",
          hint="thresholds, cooldowns, webhook"),
        F("Download folder", key="participants.download_dir",
          help="NSE participant CSVs and FII/DII JSON; imported before downloading"),
        F("Capture time (IST)", key="participants.capture_time",
          help="each trading day: store the previous day's files"),
        F("Complete: check", action="participants_check", button="Check", hint="directory, values"),
    ]),
    "cash_flow": ("Cash-flow tracking", [
        F("Retention (days)", key="flow.retention_days", help="default 90 days"),
        F("Default timeframe", key="flow.timeframe", help="1m 5m 15m 30m 1h 1d 1w"),
        F("Single flow alert (₹ cr)", key="alerts.single_flow_cr"),
        F("Volume spike alert (%)", key="alerts.volume_spike_pct"),
        F("Alert cooldown (s)", key="alerts.cooldown_s"),
        _REVIEW,
    ]),
    "positions": ("Position monitoring", [
        F("Intervals", key="positions.intervals", help="comma separated from 1m 5m 15m 30m 1h 1d 1w"),
        F("OI change alert (%)", key="alerts.oi_change_pct"),
        F("OI change window (min)", key="alerts.oi_change_window_min"),
        F("Rows shown (top N)", key="positions.top_n"),
        _REVIEW,
    ]),
    "alerts": ("Alert rules", [
        F("Premium flow in one cycle (₹ cr)", key="alerts.single_flow_cr", help="0 turns a rule off"),
        F("Volume spike above average (%)", key="alerts.volume_spike_pct"),
        F("OI change in the window (%)", key="alerts.oi_change_pct"),
        F("Window (min)", key="alerts.oi_change_window_min",
          help="for the OI, volume, PCR and max-pain rules"),
        F("OI change above daily average (%)", key="alerts.oi_change_daily_avg_pct"),
        F("PCR shift in the window", key="alerts.pcr_shift"),
        F("Max-pain shift (strike steps)", key="alerts.max_pain_shift_steps"),
        F("ATM buildup flips", key="alerts.buildup_flip", help="true or false"),
        F("Cooldowns, severities, bell, webhook", action="alert_delivery_section", button="Open",
          hint="where alerts go"),
    ]),
    "alert_delivery": ("Alert delivery", [
        F("Cooldown (s)", key="alerts.cooldown_s"),
        F("Cooldowns per rule", key="alerts.cooldowns", help="e.g. pcr_shift=900, buildup_flip=600"),
        F("Severities per rule", key="alerts.severities", help="e.g. oi_change=critical"),
        F("Terminal bell", key="alerts.bell", help="true or false"),
        F("Webhook URL", key="alerts.webhook_url", hint="empty: no webhook",
          help="Slack incoming webhook, https://api.telegram.org/bot<TOKEN>/sendMessage, or any JSON endpoint"),
        F("Webhook format", key="alerts.webhook_format", help="auto, json, slack or telegram"),
        F("Telegram chat id", key="alerts.telegram_chat_id"),
        F("Least severity posted", key="alerts.webhook_min_severity", help="info, warning or critical"),
        F("Webhook retries", key="alerts.webhook_retries", help="further attempts after a failed post"),
    ]),
    "simulator": ("Simulated market", [
        F("Seed", key="simulator.seed"),
        F("Speed (x real time)", key="simulator.speed"),
        F("Start (IST)", key="simulator.start", help="YYYY-MM-DD HH:MM, empty for now"),
        F("Host", key="simulator.host"),
        F("Port", key="simulator.port"),
        F("Source (sim or kite)", key="source.kind"),
        _REVIEW,
    ]),
    "fallback": ("Live-data fallback", [
        F("Source (sim or kite)", key="source.kind"),
        F("Quote stale after (s)", key="analytics.stale_after_s"),
        F("Cache URL", key="cache.url", help="memory:// or redis://HOST:6379/0"),
        F("Spool directory", key="store.spool_dir", help="points wait here while the store is down"),
        F("Run health checks now", action="health", button="Run"),
    ]),
    "debug": ("Debug tools", [
        F("Log level", key="general.log_level", help="DEBUG, INFO, WARNING or ERROR"),
        F("Log directory", key="general.log_dir"),
        F("View the newest log", action="view_log", button="View"),
    ]),
}

WIZARD_ORDER = ["kite", "monitoring", "database", "logging", "source", "performance", "analytics",
                "security", "participants"]


def _url_problem(key: str, text: str, schemes: tuple[str, ...], empty_ok: bool) -> str | None:
    if not text:
        return None if empty_ok else f"{key} is empty: give a URL such as {schemes[0]}://HOST"
    parts = urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        return f"{key} = {text!r} is not a {' or '.join(schemes)} URL: e.g. {schemes[0]}://HOST:PORT/PATH"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return f"{key} = {text!r} has an invalid port: use 1 to 65535"
    return None


def check_value(key: str, raw: str, settings: Settings) -> str | None:
    """Why `raw` is not acceptable for `key` (the message names the fix), or None when it is."""
    text = raw.strip()
    if key in ("kite.root", "kite.login_url"):
        return _url_problem(key, text, ("https", "http"), False)
    if key == "kite.redirect_url":
        return _url_problem(key, text, ("http",), False)
    if key in ("alerts.webhook_url", "influxdb.url"):
        return _url_problem(key, text, ("https", "http"), True)
    if key == "simulator.start" and text:
        try:
            parse_ist_minute(text)
        except ValueError as exc:
            return f"simulator.start = {exc}, or leave empty for now"
    if key.endswith("_dir") and not text:
        return f"{key} is empty: give a directory path"
    if key == "kite.api_key" and text and not text.isalnum():
        return f"kite.api_key = {text!r}: an API key has letters and digits only"
    try:
        config.check_value(key, text, settings)
    except ConfigError as exc:
        return str(exc)
    return None


def screen_for_action(action: str) -> Any:
    """The screen an action opens instead of running in the background, if any."""
    from optui.screens.kite_login import KiteLoginScreen, TokenPromptScreen
    from optui.screens.settings_form import section_screen

    makers: dict[str, Callable[[], Any]] = {
        "alerts_section": lambda: section_screen("alerts"),
        "alert_delivery_section": lambda: section_screen("alert_delivery"),
        "kite_login": KiteLoginScreen,
        "token_manual": lambda: TokenPromptScreen(mode="manual"),
        "token_previous": lambda: TokenPromptScreen(mode="previous"),
    }
    maker = makers.get(action)
    return maker() if maker else None


def _kite_import(settings: Settings, text: str | None) -> tuple[bool, str]:
    from optui.collectors.kite_auth import read_credentials_file

    if not text or not text.strip():
        return False, "type the path of the credentials file, then Enter"
    creds = read_credentials_file(Path(text.strip()))
    lines = []
    if "api_key" in creds:
        set_value("kite.api_key", creds["api_key"])
        lines.append(f"API key {creds['api_key']} saved to {config.config_path()}")
    for name, secret in (("api_secret", "kite_api_secret"), ("access_token", "kite_access_token")):
        if name in creds:
            path = save_secret(secret, creds[name])
            lines.append(f"{name.replace('_', ' ')} {mask(creds[name])} saved to {path} (0600)")
    return True, "\n".join(lines)


def _kite_test(settings: Settings, text: str | None) -> tuple[bool, str]:
    from optui.collectors.kite_auth import validate_token

    token = load_secrets().get("kite_access_token", "")
    if token and settings.kite.api_key:
        profile = validate_token(settings, settings.kite.api_key, token)
        return True, f"connected to {settings.kite.root} as {profile.get('user_name', '?')} ({profile.get('user_id', '?')})"
    import httpx

    try:
        resp = httpx.get(settings.kite.root, timeout=7.0)
    except httpx.HTTPError as exc:
        return False, f"cannot reach {settings.kite.root} ({exc.__class__.__name__}): check the network and kite.root"
    return True, (f"{settings.kite.root} reachable (HTTP {resp.status_code}); no access token yet: "
                  "use 5 OAuth login flow")


def _kite_permissions(settings: Settings, text: str | None) -> tuple[bool, str]:
    from optui.collectors.kite_auth import check_permissions

    token = load_secrets().get("kite_access_token", "")
    if not token:
        return False, "no access token: log in first (5 OAuth login flow)"
    rows = check_permissions(settings, settings.kite.api_key, token)
    return all(ok for _, ok, _ in rows), "\n".join(
        f"{'PASS' if ok else 'FAIL'}  {name:8} {detail}" for name, ok, detail in rows)


def _kite_complete(settings: Settings, text: str | None) -> tuple[bool, str]:
    from optui.collectors.kite_auth import token_status, validate_token

    secrets = load_secrets()
    status = token_status(settings, secrets)
    lines = [
        f"{'PASS' if settings.kite.api_key else 'FAIL'}  API key {settings.kite.api_key or '(not set: 1)'}",
        f"{'PASS' if secrets.get('kite_api_secret') else 'FAIL'}  API secret "
        f"{mask(secrets.get('kite_api_secret', ''))}",
        f"{'PASS' if status.present and not status.expired else 'FAIL'}  {status.describe()}",
    ]
    ok = all(line.startswith("PASS") for line in lines)
    if ok:
        profile = validate_token(settings, settings.kite.api_key, secrets["kite_access_token"])
        lines.append(f"PASS  profile: {profile.get('user_name', '?')} ({profile.get('user_id', '?')})")
    return ok, "\n".join(lines)


def _review(settings: Settings, section: str) -> tuple[bool, str]:
    from optui.screens.settings_form import shown_value

    secrets = load_secrets()
    _, fields = SECTIONS[section]
    lines = [f"{f.label}: {shown_value(f, settings, secrets)}" for f in fields if not f.is_action]
    return True, "configuration valid\n" + "\n".join(lines)


def _report(rows: list[checks.Check]) -> tuple[bool, str]:
    """Check rows as the form shows them: 'PASS  name detail', a failure followed by its fix."""
    lines = [f"{c.status}  {c.name} {c.detail}" + (f": {c.fix}" if c.ok is False and c.fix else "")
             for c in rows]
    return checks.passed(rows), "\n".join(lines)


def _store_test(settings: Settings) -> tuple[bool, str]:
    return _report([replace(checks.store_check(settings), name="store")])


def _health(settings: Settings) -> tuple[bool, str]:
    return _report(checks.health_checks(settings))


def _secret_files(settings: Settings) -> tuple[bool, str]:
    from optui.collectors.kite_auth import meta_path

    lines = []
    for path in (secrets_path(), meta_path()):
        if not path.exists():
            lines.append(f"{path}: not created yet")
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != 0o600:
            os.chmod(path, 0o600)
            lines.append(f"{path}: was {mode:o}, now 600")
        else:
            lines.append(f"{path}: 600")
    env = [n for n in config.SECRET_ENV.values() if os.environ.get(n)]
    lines.append(f"from the environment: {', '.join(env) if env else 'none'}")
    return True, "\n".join(lines)


def _view_log(settings: Settings) -> tuple[bool, str]:
    path = log_file(settings)
    lines = tail(path, 15)
    if not lines and not path.exists():
        return True, f"no log file in {path.parent} yet"
    return True, f"{path} (last {len(lines)} lines)\n" + "\n".join(lines)


def _participants_check(settings: Settings) -> tuple[bool, str]:
    target = Path(settings.participants.download_dir).expanduser()
    row = checks.directory_check("participants.download_dir", target)
    ok, review = _review(settings, "participants")
    shown = f"{target} ready for NSE participant files" if row.ok else f"{row.detail}: {row.fix}"
    return bool(row.ok) and ok, shown + "\n" + review


def _alerts_test(settings: Settings) -> tuple[bool, str]:
    from datetime import UTC, datetime

    from optui.alerts.model import Alert
    from optui.alerts.webhooks import WebhookDispatcher, WebhookTarget, detect_format

    url = settings.alerts.webhook_url.strip()
    if not url:
        return False, "alerts.webhook_url is empty: set it first"
    target = WebhookTarget(url, detect_format(url, settings.alerts.webhook_format),
                           settings.alerts.telegram_chat_id.strip(), "info")
    hooks = WebhookDispatcher([target], retries=0)
    try:
        hooks.submit(Alert(datetime.now(UTC), "premium_flow", "info", "test",
                           "optui test alert: the webhook works"))
        hooks.flush(15.0)
    finally:
        hooks.close()
    ok = hooks.sent == 1
    return ok, (f"posted a test alert to the {target.shown}" if ok else
                f"could not post to the {target.shown}: see the log for the reason")


def run_action(action: str, settings: Settings, section: str, text: str | None) -> tuple[bool, str]:
    """Run one form action (blocking: call it from a thread worker); (ok, report to show)."""
    simple: dict[str, Callable[[Settings], tuple[bool, str]]] = {
        "store_test": _store_test, "health": _health, "secret_files": _secret_files,
        "view_log": _view_log, "participants_check": _participants_check, "alerts_test": _alerts_test,
    }
    with_text: dict[str, Callable[[Settings, str | None], tuple[bool, str]]] = {
        "kite_import": _kite_import, "kite_test": _kite_test,
        "kite_permissions": _kite_permissions, "kite_complete": _kite_complete,
    }
    if action == "review":
        return _review(settings, section)
    if action in simple:
        return simple[action](settings)
    if action in with_text:
        return with_text[action](settings, text)
    raise ConfigError(f"unknown form action {action!r}")
