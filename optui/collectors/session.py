"""When the exchange is open for collection, by the exchange's own clock.

NSE/BSE index options: pre-open 09:00-09:08 (order matching till 09:15), continuous trading
09:15-15:30 IST on trading days. A collector runs from the pre-open to the close; outside it
quotes only repeat the last close, so nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from optui.timeutil import IST, MARKET_CLOSE, PRE_OPEN

TradingDayProbe = Callable[[datetime], bool]
"""Whether the exchange trades on the IST date of an instant (a source's `is_trading_day`)."""


def in_collection_hours(at: datetime, is_trading_day: TradingDayProbe) -> bool:
    """True from 09:00:00 (pre-open) to 15:30:00 IST inclusive on a trading day."""
    local = at.astimezone(IST)
    return is_trading_day(local) and PRE_OPEN <= local.time() <= MARKET_CLOSE


def next_pre_open(at: datetime, is_trading_day: TradingDayProbe) -> datetime:
    """The next 09:00 IST pre-open strictly after `at` on a trading day (aware, IST)."""
    local = at.astimezone(IST)
    day = local.date()
    if local.time() >= PRE_OPEN:
        day += timedelta(days=1)
    for _ in range(30):  # no exchange closes for a month
        candidate = datetime.combine(day, PRE_OPEN, tzinfo=IST)
        if is_trading_day(candidate):
            return candidate
        day += timedelta(days=1)
    raise ValueError(f"no trading day within 30 days after {local:%Y-%m-%d}")


def closed_message(at: datetime, opens: datetime, is_trading_day: TradingDayProbe,
                   local_clock: bool = False) -> str:
    """What the collector prints while the market is closed: why, and the next pre-open; `at`
    marked '(local clock)' when it is the machine's time (the source has not answered yet)."""
    local = at.astimezone(IST)
    if is_trading_day(local):
        why = "outside 09:00-15:30 IST"
    elif local.weekday() >= 5:
        why = "weekend"
    else:
        why = "exchange holiday"
    clock = " (local clock)" if local_clock else ""
    return (f"market closed at {local:%a %d %b %Y %H:%M:%S} IST{clock} ({why}): no quotes written; "
            f"next pre-open {opens.astimezone(IST):%a %d %b %Y %H:%M} IST")
