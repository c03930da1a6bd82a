"""End-of-day figures for the participant rules, read back from the store after a capture.

The pre-market capture (optui.collectors.premarket) stores NSE's files; each `CaptureStored`
event names the trade date, and the figures the rules need are read here from what was stored:
FII and DII provisional cash net (₹ crore, `fii_dii_cash`) and the Pro versus Client divergence
of that day's volume file (optui.analytics.participants.ProClientVolume.divergence_pct: Pro's
bullish share minus Client's, percentage points).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from optui.alerts.model import ParticipantFigures


def stored_figures(store: Any, trade_date: date) -> ParticipantFigures:
    """The figures stored for `trade_date`; a part not stored yet is None. Raises StoreError."""
    from optui.analytics.participants import pro_client_volume
    from optui.storage.participants_store import load_cash, load_participant_files

    cash = load_cash(store, trade_date, trade_date).get(trade_date, {})
    fii, dii = cash.get("FII"), cash.get("DII")
    vol = load_participant_files(store, trade_date, trade_date, "vol").get(trade_date)
    divergence = pro_client_volume(vol).divergence_pct if vol is not None else None
    return ParticipantFigures(trade_date, fii.net_cr if fii is not None else None,
                              dii.net_cr if dii is not None else None, divergence)
