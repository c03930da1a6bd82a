"""The alerts engine: rules over every snapshot and capture, cooldowns, and where alerts go.

One `AlertEngine` per collection feed (the app's dashboard and `optui collect` build it the same
way, through optui.collectors.engine.build_engine). Each alert that passes its cooldown is logged,
written to the store (measurement `alerts`), queued for webhooks, and kept in `recent` for the
screen. Cooldowns count exchange time (the snapshot's timestamp, the capture's clock), so a
simulated day at any speed behaves like a real one.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from optui.alerts.market_rules import MarketRules, _alert
from optui.alerts.model import SEVERITIES, Alert, AlertCounts, ParticipantFigures, parse_overrides
from optui.alerts.participant_rules import participant_alerts
from optui.alerts.thresholds import Thresholds
from optui.alerts.webhooks import WebhookDispatcher, WebhookTarget, detect_format
from optui.errors import ConfigError, OptuiError, StoreError
from optui.models import Snapshot, SnapshotWarning, WarningKind

log = logging.getLogger(__name__)

MEASUREMENT = "alerts"
"""Store measurement: tags rule, severity, subject (and index when there is one); fields message,
value, threshold, unit."""

RECENT_KEPT = 500


class Cooldowns:
    """Lets an alert through at most once per cooldown per (rule, subject), by exchange time.

    An alert is let through when no earlier one of its key passed, or the last that passed is at
    least the rule's cooldown older. A time earlier than the last pass (a replay or a restarted
    simulated day) starts the key afresh.
    """

    KEYS_KEPT = 512
    """Keys past which the passes that no longer hold anything back are dropped: a day raises
    alerts on ever new subjects (strikes entering the money, new contracts), so the map would
    grow with the days run. A pass at least the longest cooldown older than the alert now
    judged lets every later alert of its key through exactly as no pass would, so dropping it
    changes no decision (a pass later than it, after a replay went back, is kept)."""

    def __init__(self, default_s: float, per_rule: dict[str, float] | None = None) -> None:
        self.default_s = default_s
        self.per_rule = dict(per_rule or {})
        self._last: dict[tuple[str, str], datetime] = {}

    def cooldown_s(self, rule: str) -> float:
        return self.per_rule.get(rule, self.default_s)

    def allow(self, alert: Alert) -> bool:
        last = self._last.get(alert.key)
        if last is not None:
            elapsed = alert.at - last
            if timedelta(0) <= elapsed < timedelta(seconds=self.cooldown_s(alert.rule)):
                return False
        self._last[alert.key] = alert.at
        if len(self._last) > self.KEYS_KEPT:
            self._drop_spent(alert.at)
        return True

    def _drop_spent(self, now: datetime) -> None:
        """Forget the passes that hold no alert back at `now` (see KEYS_KEPT)."""
        longest = timedelta(seconds=max([self.default_s, *self.per_rule.values()]))
        self._last = {k: at for k, at in self._last.items() if now - at < longest}


class AlertEngine:
    """Evaluates every rule, applies cooldowns and severities, and sends alerts on.

    `store` (optui.storage.base.Store) and `webhooks` are optional; the engine never raises for
    a failing sink: a store failure becomes a returned warning, webhooks run in their own thread.
    """

    def __init__(self, thresholds: Thresholds | None = None, *, cooldown_s: float = 300.0,
                 cooldowns: dict[str, float] | None = None, severities: dict[str, str] | None = None,
                 store: Any = None, webhooks: WebhookDispatcher | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.cooldowns = Cooldowns(cooldown_s, cooldowns)
        self.severities = dict(severities or {})
        self.store = store
        self.webhooks = webhooks
        self.market = MarketRules(self.thresholds)
        self.recent: deque[Alert] = deque(maxlen=RECENT_KEPT)
        self.counts = AlertCounts()
        self.last: list[Alert] = []
        """Alerts raised by the latest call (a snapshot or a capture)."""
        self.warnings: list[SnapshotWarning] = []
        """Problems of the latest call (a store write that failed)."""
        self._pending: list[Alert] = []  # raised by captures since the last snapshot
        self._eod_raised: set[tuple[str, str]] = set()  # (rule, trade date): once per day's figures

    @classmethod
    def from_settings(cls, settings: Any, store: Any = None) -> AlertEngine:
        """From optui.config.Settings: thresholds, cooldowns, severities and webhooks."""
        a = settings.alerts
        webhooks = None
        if a.webhook_url.strip():
            parts = urlsplit(a.webhook_url.strip())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"alerts.webhook_url is not an http(s) URL (scheme {parts.scheme!r}): "
                                  "give the webhook's https://HOST/PATH, or leave it empty")
            fmt = detect_format(a.webhook_url.strip(), a.webhook_format)
            if fmt == "telegram" and not a.telegram_chat_id.strip():
                raise ConfigError("alerts.webhook_url is a Telegram bot URL but alerts.telegram_chat_id "
                                  "is empty: set the chat id the bot posts to")
            target = WebhookTarget(a.webhook_url.strip(), fmt, a.telegram_chat_id.strip(),
                                   a.webhook_min_severity)
            webhooks = WebhookDispatcher([target], retries=a.webhook_retries)
            log.info("alerts go to the %s", target.shown)
        return cls(
            Thresholds.from_settings(a), cooldown_s=a.cooldown_s,
            cooldowns=parse_overrides("alerts.cooldowns", a.cooldowns, "seconds"),
            severities=parse_overrides("alerts.severities", a.severities, "severity"),
            store=store, webhooks=webhooks,
        )

    def describe(self) -> str:
        """One line for status output: thresholds that are on, cooldown, webhook (redacted)."""
        t = self.thresholds
        on = [name for name, value in (
            ("premium_flow", t.single_flow_cr), ("volume_spike", t.volume_spike_pct),
            ("oi_change", t.oi_change_pct), ("oi_change_daily", t.oi_change_daily_avg_pct),
            ("pcr_shift", t.pcr_shift), ("max_pain_shift", t.max_pain_shift_steps),
            ("buildup_flip", float(t.buildup_flip)), ("fii_flow", t.fii_flow_cr),
            ("dii_flow", t.dii_flow_cr), ("pro_client_divergence", t.pro_client_divergence_pct),
        ) if value > 0]
        hooks = ", ".join(x.shown for x in self.webhooks.targets) if self.webhooks else "no webhook"
        return (f"{len(on)} rules on, window {t.window_min:g} min, cooldown "
                f"{self.cooldowns.default_s:g} s, {hooks}")

    # ---- feeds ---------------------------------------------------------------------------

    def on_snapshot(self, snap: Snapshot) -> list[Alert]:
        """Evaluate the market rules on one collection cycle; returns the alerts raised, after
        those that captures raised since the previous snapshot (so the screen shows them too)."""
        pending, self._pending = self._pending, []
        return pending + self._raise(self.market.evaluate(snap))

    def on_participants(self, figures: ParticipantFigures, at: datetime) -> list[Alert]:
        """Evaluate the participant rules on one trade date's end-of-day figures, captured at
        exchange time `at`; returns the alerts raised."""
        fresh = [a for a in participant_alerts(figures, at, self.thresholds)
                 if a.key not in self._eod_raised]
        raised = self._captured(fresh)
        self._eod_raised.update(a.key for a in raised)
        return raised

    def on_capture_failed(self, at: datetime, reason: str, trade_date: date | None = None,
                          severity: str | None = None) -> list[Alert]:
        """A pre-market capture failed at exchange time `at`: one alert per cooldown per trade
        date. `severity` (e.g. warning while retries remain) replaces the rule's default unless
        alerts.severities sets one."""
        subject = f"capture {trade_date.isoformat()}" if trade_date else "capture"
        what = f" of {trade_date.isoformat()}" if trade_date else ""
        alert = _alert(at, "capture_failed", subject, f"pre-market capture{what} failed: {reason}")
        if severity in SEVERITIES:
            alert = replace(alert, severity=severity)
        return self._captured([alert])

    def on_capture_event(self, event: Any) -> None:
        """Listener for the pre-market scheduler (optui.collectors.premarket): a CaptureStored
        (`kind` "participants_captured") evaluates the participant rules on the figures stored
        for its trade date; a CaptureFailed (anything else with `at`, `trade_date`, `severity` and
        `message()`) raises a capture_failed alert."""
        if getattr(event, "kind", "") == "participants_captured":
            if self.store is None:
                return
            from optui.alerts.participant_feed import stored_figures

            try:
                figures = stored_figures(self.store, event.trade_date)
            except (OptuiError, ValueError) as exc:
                log.warning("alerts: cannot read the participant figures of %s: %s", event.trade_date, exc)
                return
            self.on_participants(figures, event.at)
            return
        self.on_capture_failed(event.at, event.message(), getattr(event, "trade_date", None),
                               getattr(event, "severity", None))

    def _captured(self, candidates: list[Alert]) -> list[Alert]:
        raised = self._raise(candidates)
        self._pending += raised
        del self._pending[:-RECENT_KEPT]
        return raised

    # ---- sinks ---------------------------------------------------------------------------

    def _raise(self, candidates: list[Alert]) -> list[Alert]:
        self.warnings = []
        out: list[Alert] = []
        for alert in candidates:
            severity = self.severities.get(alert.rule, alert.severity)
            if severity != alert.severity:
                alert = replace(alert, severity=severity)
            if not self.cooldowns.allow(alert):
                self.counts.suppressed[alert.rule] = self.counts.suppressed.get(alert.rule, 0) + 1
                continue
            self.counts.raised[alert.rule] = self.counts.raised.get(alert.rule, 0) + 1
            out.append(alert)
        for alert in out:
            log.info("ALERT %s %s: %s", alert.severity.upper(), alert.rule, alert.message)
            self.recent.append(alert)
            if self.webhooks is not None:
                self.webhooks.submit(alert)
        if out and self.store is not None:
            self._store(out)
        self.last = out
        return out

    def _store(self, alerts: list[Alert]) -> None:
        from optui.storage.base import clean_fields
        from optui.storage.points import Point

        points = []
        for a in alerts:
            tags = {"rule": a.rule, "severity": a.severity, "subject": a.subject}
            if a.index:
                tags["index"] = a.index
            fields = clean_fields({"message": a.message, "value": float(a.value),
                                   "threshold": float(a.threshold), "unit": a.unit})
            points.append(Point(MEASUREMENT, tags, fields, a.at))
        try:
            self.store.write(points)
        except StoreError as exc:
            warning = SnapshotWarning(WarningKind.ALERT_STORE, "alerts",
                                      f"cannot store {len(points)} alert(s): {exc}")
            log.warning("%s", warning)
            self.warnings.append(warning)

    def close(self) -> None:
        """Post what the webhook queue holds (a few seconds at most) and stop its thread."""
        if self.webhooks is not None:
            self.webhooks.close()
