"""Posting alerts to webhooks from a background queue: generic JSON, Slack-compatible, Telegram.

Collection never waits for a webhook: `WebhookDispatcher.submit` only queues, one daemon thread
posts with retries and backoff. A webhook URL carries its secret (Slack's path, Telegram's bot
token), so URLs are only ever logged through `optui.config.redact_url`, and a filter on httpx's
logger redacts the request lines httpx itself logs.

Payload shapes follow the public APIs:
- slack: an incoming webhook takes `{"text": ...}` (Slack's mrkdwn: *bold*); Mattermost, Rocket.Chat
  and Discord's /slack endpoints accept the same.
- telegram: Bot API `sendMessage`, POST https://api.telegram.org/bot<TOKEN>/sendMessage with
  `{"chat_id": ..., "text": ...}`; the answer is `{"ok": true, ...}`, and a 429 carries
  `parameters.retry_after` seconds.
- json: `{"source": "optui", "text": ..., "alert": Alert.as_dict()}`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from optui.alerts.model import Alert, severity_rank
from optui.config import redact_url
from optui.errors import ConfigError
from optui.timeutil import IST

log = logging.getLogger(__name__)

WEBHOOK_FORMATS: tuple[str, ...] = ("auto", "json", "slack", "telegram")
"""Values of alerts.webhook_format; auto picks from the URL's host."""

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def detect_format(url: str, fmt: str = "auto") -> str:
    """The payload flavour for a URL: `fmt` unless auto; hooks.slack.com → slack,
    api.telegram.org → telegram, anything else → json."""
    if fmt != "auto":
        if fmt not in WEBHOOK_FORMATS:
            raise ConfigError(f"alerts.webhook_format = {fmt!r}: choose one of {', '.join(WEBHOOK_FORMATS)}")
        return fmt
    host = (urlsplit(url).hostname or "").lower()
    if host == "api.telegram.org":
        return "telegram"
    if host.endswith("slack.com"):
        return "slack"
    return "json"


def alert_text(alert: Alert) -> str:
    """One line a person reads: severity, the message, the exchange time in IST."""
    stamp = alert.at.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S IST")
    return f"[{alert.severity.upper()}] {alert.message} · {stamp}"


def payload(alert: Alert, fmt: str, chat_id: str = "") -> dict[str, Any]:
    """The JSON body for one alert in flavour `fmt` (json, slack or telegram)."""
    text = alert_text(alert)
    if fmt == "slack":
        return {"text": f"*optui {alert.severity.upper()}* {alert.message}\n_{text.rsplit(' · ', 1)[-1]}_"}
    if fmt == "telegram":
        return {"chat_id": chat_id, "text": f"optui {text}", "disable_web_page_preview": True}
    return {"source": "optui", "text": text, "alert": alert.as_dict()}


@dataclass(frozen=True)
class WebhookTarget:
    """Where alerts go: URL (secret), flavour, Telegram chat id, least severity posted."""

    url: str
    fmt: str = "json"
    chat_id: str = ""
    min_severity: str = "info"

    def __repr__(self) -> str:  # never print the secret
        return f"WebhookTarget({redact_url(self.url)!r}, {self.fmt!r})"

    @property
    def shown(self) -> str:
        return f"{self.fmt} webhook {redact_url(self.url)}"


class _RedactUrls(logging.Filter):
    """Replaces URL arguments of httpx's own log lines with their redacted form."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(
                redact_url(str(a)) if str(a).startswith(("http://", "https://")) else a for a in args
            )
        elif isinstance(record.msg, str) and "://" in record.msg:
            record.msg = " ".join(
                redact_url(w) if w.startswith(("http://", "https://")) else w for w in record.msg.split(" ")
            )
        return True


def install_log_redaction() -> None:
    """Make httpx's request log lines safe to keep (idempotent)."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactUrls) for f in logger.filters):
        logger.addFilter(_RedactUrls())


class WebhookDispatcher:
    """Posts queued alerts to every target from one daemon thread, with retries.

    `retries` further attempts after a failed one, waiting `backoff_s`, 2×, 4× … (or the
    server's Retry-After / Telegram retry_after, at most 60 s). A full queue (`max_queue`) drops
    the new alert with a warning: the screen, log and store still have it.
    """

    def __init__(self, targets: list[WebhookTarget], *, retries: int = 3, backoff_s: float = 1.0,
                 timeout_s: float = 5.0, max_queue: int = 1000) -> None:
        install_log_redaction()
        self.targets = list(targets)
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=timeout_s, headers={"User-Agent": "optui-alerts"})
        self._thread = threading.Thread(target=self._run, name="optui-webhooks", daemon=True)
        self._thread.start()

    def submit(self, alert: Alert) -> bool:
        """Queue an alert for every target whose least severity it meets; never blocks."""
        if not any(severity_rank(alert.severity) >= severity_rank(t.min_severity) for t in self.targets):
            return False
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.warning("webhook queue full: alert %s/%s not posted (shown, logged and stored)",
                        alert.rule, alert.subject)
            return False
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued alert was posted or given up; True when the queue drained."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True, name="optui-webhooks-flush").start()
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Post what is queued (up to `timeout` seconds), then stop the thread; safe twice."""
        if self._stop.is_set():
            return
        self.flush(timeout)
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._client.close()

    # ---- the posting thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            try:
                if alert is None:
                    return
                for target in self.targets:
                    if severity_rank(alert.severity) >= severity_rank(target.min_severity):
                        self._deliver(target, alert)
            except Exception:  # noqa: BLE001 - the posting thread must outlive any one failure
                log.exception("webhook delivery failed unexpectedly")
            finally:
                self._queue.task_done()

    def _deliver(self, target: WebhookTarget, alert: Alert) -> None:
        body = json.dumps(payload(alert, target.fmt, target.chat_id), ensure_ascii=False).encode()
        wait = self.backoff_s
        for attempt in range(self.retries + 1):
            problem, retry_after = self._post(target, body)
            if problem is None:
                self.sent += 1
                log.debug("alert %s/%s posted to %s", alert.rule, alert.subject, target.shown)
                return
            if retry_after is None or attempt == self.retries:
                self.failed += 1
                log.warning("alert %s/%s not posted to %s: %s%s", alert.rule, alert.subject, target.shown,
                            problem, "" if retry_after is None else f" after {attempt + 1} attempt{'s' if attempt else ''}")
                return
            log.info("alert %s/%s: %s from %s, retrying", alert.rule, alert.subject, problem, target.shown)
            if self._stop.wait(min(max(retry_after, wait), 60.0)):
                pass  # closing: keep trying the remaining attempts without waiting long
            wait *= 2

    def _post(self, target: WebhookTarget, body: bytes) -> tuple[str | None, float | None]:
        """(problem or None, seconds to wait before a retry or None when retrying is pointless)."""
        try:
            resp = self._client.post(target.url, content=body,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        except httpx.TimeoutException:
            return f"no answer within {self.timeout_s:g} s", 0.0
        except httpx.HTTPError as exc:  # the message may hold the URL: name the kind only
            return f"cannot connect ({type(exc).__name__})", 0.0
        retry_after = _retry_after(resp)
        if resp.status_code in RETRY_STATUSES:
            return f"HTTP {resp.status_code}", retry_after
        if resp.status_code >= 300:
            return f"HTTP {resp.status_code} (check the webhook URL and format)", None
        if target.fmt == "telegram":
            try:
                ok = bool(resp.json().get("ok"))
            except (ValueError, AttributeError):
                ok = False
            if not ok:
                return "Telegram answered without ok: check alerts.telegram_chat_id", None
        return None, None


def _retry_after(resp: httpx.Response) -> float:
    """Seconds the server asked us to wait (Retry-After header or Telegram's retry_after), else 0."""
    header = resp.headers.get("Retry-After", "")
    try:
        if header:
            return max(float(header), 0.0)
    except ValueError:
        pass
    try:
        params = resp.json().get("parameters") or {}
        return max(float(params.get("retry_after", 0.0)), 0.0)
    except (ValueError, AttributeError, TypeError):
        return 0.0
