"""When the exchange is open for collection, by the exchange's own clock.

NSE/BSE index options: pre-open 09:00-09:08 (order matching till 09:15), continuous trading
09:15-15:30 IST on trading days. A collector runs from the pre-open to the close; outside it
quotes only repeat the last close, so nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from optui.timeutil import IST, MARKET_CLOSE, PRE_OPEN

HolidayProbe = Callable[[datetime], bool]
"""Whether an instant falls on an exchange holiday (a source's `is_holiday`)."""


def is_trading_day(at: datetime, is_holiday: HolidayProbe) -> bool:
    """A weekday that is not an exchange holiday, on the IST date of `at` (aware)."""
    return at.astimezone(IST).weekday() < 5 and not is_holiday(at)


def in_collection_hours(at: datetime, is_holiday: HolidayProbe) -> bool:
    """True from 09:00:00 (pre-open) to 15:30:00 IST inclusive on a trading day."""
    local = at.astimezone(IST)
    return is_trading_day(local, is_holiday) and PRE_OPEN <= local.time() <= MARKET_CLOSE


def next_pre_open(at: datetime, is_holiday: HolidayProbe) -> datetime:
    """The next 09:00 IST pre-open strictly after `at` on a trading day (aware, IST)."""
    local = at.astimezone(IST)
    day = local.date()
    if local.time() >= PRE_OPEN:
        day += timedelta(days=1)
    for _ in range(30):  # no exchange closes for a month
        candidate = datetime.combine(day, PRE_OPEN, tzinfo=IST)
        if is_trading_day(candidate, is_holiday):
            return candidate
        day += timedelta(days=1)
    raise ValueError(f"no trading day within 30 days after {local:%Y-%m-%d}")


def closed_message(at: datetime, opens: datetime, is_holiday: HolidayProbe) -> str:
    """What the collector prints while the market is closed: why, and the next pre-open."""
    local = at.astimezone(IST)
    if local.weekday() >= 5:
        why = "weekend"
    elif is_holiday(local):
        why = "exchange holiday"
    else:
        why = "outside 09:00-15:30 IST"
    return (f"market closed at {local:%a %d %b %Y %H:%M:%S} IST ({why}): no quotes written; "
            f"next pre-open {opens.astimezone(IST):%a %d %b %Y %H:%M} IST")
