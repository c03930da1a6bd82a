"""The alerts panel: what the core's alerts engine raised, newest last, filtered by severity."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from optui.alerts.model import Alert
from optui.timeutil import IST
from optui.widgets.dashboard_model import ALERT_FILTER_LABELS, visible_alerts

SEVERITY_STYLE = {"info": "cyan", "warning": "bold yellow", "critical": "bold red"}


class AlertsPanel(RichLog):
    """Bounded list of alerts (IST exchange time, severity, message); `min_severity` filters."""

    DEFAULT_CSS = """
    AlertsPanel { height: 1fr; overflow-x: hidden; }
    """

    def __init__(self, max_alerts: int = 300, **kwargs: object) -> None:
        super().__init__(max_lines=max_alerts, wrap=True, markup=False, **kwargs)  # type: ignore[arg-type]
        self.alerts: deque[Alert] = deque(maxlen=max_alerts)
        self.min_severity = "info"

    def on_mount(self) -> None:
        self._subtitle()

    def add_alerts(self, alerts: Iterable[Alert]) -> None:
        """Keep the alerts and show those the filter lets through."""
        new = list(alerts)
        self.alerts.extend(new)
        for alert in visible_alerts(new, self.min_severity):
            self._write(alert)
        self._subtitle()

    def set_min_severity(self, severity: str) -> None:
        """Show only alerts of `severity` or above (info shows all); redraws the list."""
        self.min_severity = severity
        self.clear()
        for alert in visible_alerts(self.alerts, severity):
            self._write(alert)
        self._subtitle()

    @property
    def shown(self) -> list[Alert]:
        return visible_alerts(self.alerts, self.min_severity)

    def _write(self, alert: Alert) -> None:
        stamp = alert.at.astimezone(IST).strftime("%H:%M:%S")
        style = SEVERITY_STYLE.get(alert.severity, "")
        self.write(Text.assemble((stamp + " ", "dim"), (f"{alert.severity.upper():8}", style),
                                 (alert.message, "")))

    def _subtitle(self) -> None:
        text = f"{ALERT_FILTER_LABELS[self.min_severity]} · {len(self.shown)} of {len(self.alerts)} · a: filter"
        if self.border_subtitle != text:
            self.border_subtitle = text
