"""Alerts in the core: rules over snapshots and end-of-day figures, cooldowns, store and webhooks.

Textual-free: the app shows what the engine raises; `optui collect` prints and posts the same.
"""

from optui.alerts.engine import MEASUREMENT, AlertEngine, Cooldowns
from optui.alerts.model import RULES, SEVERITIES, Alert, ParticipantFigures
from optui.alerts.thresholds import Thresholds

__all__ = ["MEASUREMENT", "RULES", "SEVERITIES", "Alert", "AlertEngine", "Cooldowns",
           "ParticipantFigures", "Thresholds"]
