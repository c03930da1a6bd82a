"""Rule thresholds, read from the `[alerts]` settings; zero (or false) turns a rule off."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What each rule compares against (see optui.alerts.model.RULES for the rules).

    Money in ₹ crore, percentages in percent, `window_min` in minutes of exchange time,
    `max_pain_shift_steps` in strike steps of the index's chain.
    """

    fii_flow_cr: float = 500.0
    dii_flow_cr: float = 300.0
    pro_client_divergence_pct: float = 20.0
    volume_spike_pct: float = 200.0
    single_flow_cr: float = 1000.0
    oi_change_pct: float = 50.0
    window_min: float = 15.0
    oi_change_daily_avg_pct: float = 100.0
    pcr_shift: float = 0.2
    max_pain_shift_steps: float = 2.0
    buildup_flip: bool = True

    @property
    def window_s(self) -> float:
        return self.window_min * 60.0

    @classmethod
    def from_settings(cls, alerts: Any) -> Thresholds:
        """From optui.config.AlertSettings (`oi_change_window_min` is the window of every
        windowed rule)."""
        return cls(
            fii_flow_cr=alerts.fii_flow_cr, dii_flow_cr=alerts.dii_flow_cr,
            pro_client_divergence_pct=alerts.pro_client_divergence_pct,
            volume_spike_pct=alerts.volume_spike_pct, single_flow_cr=alerts.single_flow_cr,
            oi_change_pct=alerts.oi_change_pct, window_min=float(alerts.oi_change_window_min),
            oi_change_daily_avg_pct=alerts.oi_change_daily_avg_pct, pcr_shift=alerts.pcr_shift,
            max_pain_shift_steps=alerts.max_pain_shift_steps, buildup_flip=alerts.buildup_flip,
        )
