"""What an alert is, which rules exist, and the end-of-day figures participant rules read.

Plain records without I/O: the rules build `Alert`s, the engine gates them by cooldown and hands
them to the screen, the log, the store and webhooks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from optui.errors import ConfigError

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
"""Alert severities, least to most urgent."""


def severity_rank(severity: str) -> int:
    """0 for info, 1 for warning, 2 for critical; raises ValueError for anything else."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        raise ValueError(f"severity {severity!r}: choose one of {', '.join(SEVERITIES)}") from None


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One alert rule: its name (used in configuration and the store), default severity, meaning."""

    name: str
    severity: str
    title: str


RULES: dict[str, RuleSpec] = {
    spec.name: spec
    for spec in (
        RuleSpec("fii_flow", "warning", "FII cash-market net flow beyond alerts.fii_flow_cr"),
        RuleSpec("dii_flow", "warning", "DII cash-market net flow beyond alerts.dii_flow_cr"),
        RuleSpec("pro_client_divergence", "warning",
                 "Pro versus Client divergence beyond alerts.pro_client_divergence_pct"),
        RuleSpec("volume_spike", "info",
                 "an index's traded option volume in an exchange minute, above the average "
                 "minute of the window by alerts.volume_spike_pct"),
        RuleSpec("premium_flow", "warning",
                 "one cycle's premium bought or sold for an index at or above alerts.single_flow_cr"),
        RuleSpec("oi_change", "warning",
                 "a leg's OI changed by alerts.oi_change_pct over alerts.oi_change_window_min"),
        RuleSpec("oi_change_daily", "info",
                 "the nearest expiry's total call or put OI change over the window, above the "
                 "day's average window change by alerts.oi_change_daily_avg_pct"),
        RuleSpec("pcr_shift", "info", "nearest-expiry PCR (OI) moved by alerts.pcr_shift over the window"),
        RuleSpec("max_pain_shift", "info",
                 "nearest-expiry max pain moved by alerts.max_pain_shift_steps strikes over the window"),
        RuleSpec("buildup_flip", "info", "the ATM call or put buildup turned to another kind"),
        RuleSpec("capture_failed", "critical", "the pre-market capture failed"),
    )
}
"""Every rule the engine evaluates, by name."""


@dataclass(frozen=True, slots=True)
class Alert:
    """One raised alert.

    `at` is the exchange time of the data that raised it (aware UTC); `subject` names what it is
    about within the rule (an index, a leg such as "NIFTY this_week CE 24500", a trade date) and
    keys the cooldown with `rule`; `value` and `threshold` are in the rule's unit (`unit`).
    """

    at: datetime
    rule: str
    severity: str
    subject: str
    message: str
    index: str = ""
    value: float = float("nan")
    threshold: float = float("nan")
    unit: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What a cooldown is kept for: the rule and its subject."""
        return (self.rule, self.subject)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (time ISO 8601 UTC; NaN value or threshold as None)."""
        def num(x: float) -> float | None:
            return None if x != x else x

        return {
            "time": self.at.isoformat(), "rule": self.rule, "severity": self.severity,
            "subject": self.subject, "index": self.index, "message": self.message,
            "value": num(self.value), "threshold": num(self.threshold), "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class ParticipantFigures:
    """End-of-day participant and cash-market figures for one trade date, as the rules read them.

    Filled by the participant data code from NSE's files: `fii_cash_net_cr` and `dii_cash_net_cr`
    are the provisional cash-market net (buy − sell) in ₹ crore, positive for net buying;
    `pro_client_divergence_pct` is the Pro versus Client divergence in percentage points (the
    participants metrics define it). A figure that is not known is None and raises nothing.
    """

    trade_date: date
    fii_cash_net_cr: float | None = None
    dii_cash_net_cr: float | None = None
    pro_client_divergence_pct: float | None = None


@dataclass
class AlertCounts:
    """How many alerts an engine raised and how many a cooldown held back, by rule."""

    raised: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.raised.values())


def parse_overrides(key: str, items: Iterable[str], kind: str) -> dict[str, Any]:
    """`["rule=value", ...]` as {rule: value}; `kind` "severity" (info|warning|critical) or
    "seconds" (≥ 0). Raises ConfigError naming the key, the entry and what is allowed."""
    out: dict[str, Any] = {}
    for raw in items:
        rule, sep, value = (part.strip() for part in str(raw).partition("="))
        if not sep or rule not in RULES:
            raise ConfigError(f"{key}: {raw!r} is not RULE=VALUE with RULE one of {', '.join(RULES)}")
        if kind == "severity":
            if value not in SEVERITIES:
                raise ConfigError(f"{key}: {raw!r}: severity must be one of {', '.join(SEVERITIES)}")
            out[rule] = value
        else:
            try:
                seconds = float(value)
            except ValueError:
                seconds = -1.0
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ConfigError(f"{key}: {raw!r}: give the cooldown in seconds, 0 or more")
            out[rule] = seconds
    return out
