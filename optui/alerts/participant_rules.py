"""Rules over end-of-day participant figures: FII and DII cash flows, Pro versus Client divergence."""

from __future__ import annotations

from datetime import datetime

from optui.alerts.market_rules import _alert, fmt_cr
from optui.alerts.model import Alert, ParticipantFigures
from optui.alerts.thresholds import Thresholds


def participant_alerts(fig: ParticipantFigures, at: datetime, t: Thresholds) -> list[Alert]:
    """Candidate alerts for one trade date's figures; `at` is the exchange time they arrived.

    Fires when |FII net| ≥ `fii_flow_cr`, |DII net| ≥ `dii_flow_cr` (₹ crore, either direction)
    or |Pro − Client divergence| ≥ `pro_client_divergence_pct`; the subject is the trade date,
    so each day's figures alert once however often they are captured.
    """
    day = fig.trade_date.isoformat()
    out: list[Alert] = []
    for rule, who, value, limit in (
        ("fii_flow", "FII/FPI", fig.fii_cash_net_cr, t.fii_flow_cr),
        ("dii_flow", "DII", fig.dii_cash_net_cr, t.dii_flow_cr),
    ):
        if value is None or limit <= 0 or not abs(value) >= limit:
            continue
        verb = "bought" if value > 0 else "sold"
        out.append(_alert(
            at, rule, day,
            f"{who} net {verb} {fmt_cr(abs(value))} in the cash market on {day} "
            f"(end of day, provisional; threshold {fmt_cr(limit)})",
            value=value, threshold=limit, unit="cr"))
    div = fig.pro_client_divergence_pct
    limit = t.pro_client_divergence_pct
    if div is not None and limit > 0 and abs(div) >= limit:
        out.append(_alert(
            at, "pro_client_divergence", day,
            f"Pro versus Client divergence {div:+.1f} points on {day} (end of day; "
            f"threshold {limit:g})",
            value=div, threshold=limit, unit="%"))
    return out
