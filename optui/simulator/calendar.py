"""NSE/BSE trading calendar for 2025-2027: holidays, trading days and expiry dates.

The simulator lists contracts the way the exchanges do, so it needs their calendar. The app takes
expiries from the instrument dump, never from here; it reads only the holidays, to know when the
session is closed (Kite publishes no calendar). Dates outside the table are treated as trading
days unless they fall on a weekend.
"""

from __future__ import annotations

from datetime import date, timedelta

# Equity-derivative trading holidays on weekdays, as published by NSE (BSE closes on the same
# days in these years). 2027 is provisional: built from the festival calendar until the
# exchanges publish their circular.
_HOLIDAYS_2025 = (
    "2025-02-26", "2025-03-14", "2025-03-31", "2025-04-10", "2025-04-14", "2025-04-18",
    "2025-05-01", "2025-08-15", "2025-08-27", "2025-10-02", "2025-10-21", "2025-10-22",
    "2025-11-05", "2025-12-25",
)
_HOLIDAYS_2026 = (
    "2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31", "2026-04-03",
    "2026-04-14", "2026-05-01", "2026-05-28", "2026-06-26", "2026-09-14", "2026-10-02",
    "2026-10-20", "2026-11-10", "2026-11-24", "2026-12-25",
)
_HOLIDAYS_2027 = (
    "2027-01-26", "2027-03-10", "2027-03-22", "2027-03-26", "2027-04-14", "2027-04-15",
    "2027-05-17", "2027-06-15", "2027-10-29",
)

NSE_HOLIDAYS: frozenset[date] = frozenset(
    date.fromisoformat(d) for d in _HOLIDAYS_2025 + _HOLIDAYS_2026 + _HOLIDAYS_2027
)
BSE_HOLIDAYS: frozenset[date] = NSE_HOLIDAYS

HOLIDAYS: dict[str, frozenset[date]] = {
    "NSE": NSE_HOLIDAYS,
    "NFO": NSE_HOLIDAYS,
    "BSE": BSE_HOLIDAYS,
    "BFO": BSE_HOLIDAYS,
}

COVERED_YEARS = (2025, 2026, 2027)

TUESDAY = 1
THURSDAY = 3


def _holidays(exchange: str) -> frozenset[date]:
    try:
        return HOLIDAYS[exchange]
    except KeyError:
        raise ValueError(f"unknown exchange {exchange!r}: use NSE, NFO, BSE or BFO") from None


def is_trading_day(day: date, exchange: str = "NSE") -> bool:
    """True when the exchange trades on `day` (a weekday that is not a holiday)."""
    return day.weekday() < 5 and day not in _holidays(exchange)


def trading_day_on_or_before(day: date, exchange: str = "NSE") -> date:
    """`day` if it trades, else the latest trading day before it."""
    while not is_trading_day(day, exchange):
        day -= timedelta(days=1)
    return day


def trading_day_on_or_after(day: date, exchange: str = "NSE") -> date:
    """`day` if it trades, else the next trading day."""
    while not is_trading_day(day, exchange):
        day += timedelta(days=1)
    return day


def previous_trading_day(day: date, exchange: str = "NSE") -> date:
    """The last trading day strictly before `day`."""
    return trading_day_on_or_before(day - timedelta(days=1), exchange)


def next_trading_day(day: date, exchange: str = "NSE") -> date:
    """The first trading day strictly after `day`."""
    return trading_day_on_or_after(day + timedelta(days=1), exchange)


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """The last `weekday` (Monday 0) of the month."""
    first_next = date(year + month // 12, month % 12 + 1, 1)
    last = first_next - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def monthly_expiry(year: int, month: int, weekday: int, exchange: str) -> date:
    """The month's expiry: its last `weekday`, moved to the previous trading day on a holiday."""
    return trading_day_on_or_before(last_weekday_of_month(year, month, weekday), exchange)


def weekly_expiries(start: date, count: int, weekday: int, exchange: str) -> list[date]:
    """The next `count` weekly expiries settling on or after `start`, holiday-shifted."""
    nominal = start + timedelta(days=(weekday - start.weekday()) % 7)
    out: list[date] = []
    while len(out) < count:
        actual = trading_day_on_or_before(nominal, exchange)
        if actual >= start:
            out.append(actual)
        nominal += timedelta(days=7)
    return out


def monthly_expiries(start: date, count: int, weekday: int, exchange: str) -> list[date]:
    """The next `count` monthly expiries settling on or after `start`."""
    out: list[date] = []
    year, month = start.year, start.month
    while len(out) < count:
        expiry = monthly_expiry(year, month, weekday, exchange)
        if expiry >= start:
            out.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def is_monthly_expiry(expiry: date, weekday: int, exchange: str) -> bool:
    """True when `expiry` is its month's (holiday-shifted) monthly expiry."""
    return monthly_expiry(expiry.year, expiry.month, weekday, exchange) == expiry
