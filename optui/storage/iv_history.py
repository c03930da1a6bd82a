"""The `iv_daily` measurement: one ATM IV close per index, expiry bucket and session day.

Identity is (index, bucket, day): the point's time is 00:00 IST of the session day (stored in
UTC), so every in-session cycle of a day rewrites the same point and the last one of the
session (on the exchange clock, at or before 15:30 IST) is what stays: the day's close.
Collecting a day again, or backfilling it, replaces it the same way.

Fields: `atm_iv` (percent), `spot` (index level at that moment, for realised volatility),
`straddle` (ATM call + put, rupees; absent from backfill), `expiry` (ISO date), `at_s` (epoch
seconds of the measurement), `origin` ("collect" or "backfill").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from optui.analytics.trading_calendar import TradingCalendar
from optui.models import Snapshot
from optui.storage.base import Store, clean_fields
from optui.storage.points import Point
from optui.timeutil import IST, MARKET_CLOSE, MARKET_OPEN, UTC

IV_DAILY = "iv_daily"
_NSE = TradingCalendar()


def day_time(day: date) -> datetime:
    """The stored time of a session day's point: 00:00 IST of `day`, in UTC."""
    return datetime.combine(day, time(0, 0), tzinfo=IST).astimezone(UTC)


def in_session(at: datetime) -> bool:
    """Whether exchange time `at` is within 09:15-15:30 IST (inclusive) on its IST date."""
    local = at.astimezone(IST).time()
    return MARKET_OPEN <= local <= MARKET_CLOSE


def iv_point(index: str, bucket: str, day: date, fields: dict[str, Any]) -> Point:
    """One `iv_daily` point (NaN / None fields dropped)."""
    return Point(IV_DAILY, {"index": index, "bucket": bucket}, clean_fields(fields), day_time(day))


def iv_daily_points(snapshot: Snapshot, calendar: TradingCalendar | None = None) -> list[Point]:
    """The day's running close of every index and bucket with a finite ATM IV, when the
    snapshot's exchange time is in session on a trading day (`calendar`, default NSE's);
    nothing otherwise (a post-close or holiday cycle's quotes must not become a close)."""
    cal = calendar or _NSE
    out: list[Point] = []
    for key, snap in snapshot.indices.items():
        ov = snap.overview
        day = ov.timestamp.astimezone(IST).date()
        if not in_session(ov.timestamp) or not cal.is_trading_day(day):
            continue
        for name, b in ov.buckets.items():
            if not math.isfinite(b.atm_iv):
                continue
            out.append(iv_point(key, name, day, {
                "atm_iv": b.atm_iv, "spot": ov.last_price, "straddle": b.straddle,
                "expiry": b.expiry.isoformat(), "at_s": ov.timestamp.timestamp(),
                "origin": "collect",
            }))
    return out


@dataclass(frozen=True, slots=True)
class IvClose:
    """One stored session close: the day, ATM IV (percent) and the index level."""

    day: date
    atm_iv: float
    spot: float
    origin: str


def iv_history(store: Store, index: str, bucket: str, before: date,
               days: int = 400) -> list[IvClose]:
    """Stored closes of the `days` calendar days before `before` (exclusive), oldest first."""
    start = day_time(before - timedelta(days=days))
    rows = store.query(IV_DAILY, start, day_time(before), {"index": index, "bucket": bucket})
    out: list[IvClose] = []
    for row in rows:
        iv, spot = row.fields.get("atm_iv"), row.fields.get("spot")
        out.append(IvClose(
            row.time.astimezone(IST).date(),
            float(iv) if isinstance(iv, int | float) else math.nan,
            float(spot) if isinstance(spot, int | float) else math.nan,
            str(row.fields.get("origin", "")),
        ))
    return out
