"""Exchange time: IST on screen, UTC in storage, expiry at 15:30 IST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

IST = timezone(timedelta(hours=5, minutes=30), "IST")

MARKET_OPEN = time(9, 15)
MARKET_CLOSE = time(15, 30)
PRE_OPEN = time(9, 0)
EXPIRY_TIME = time(15, 30)

SECONDS_PER_YEAR = 365.0 * 86400.0


def now_utc() -> datetime:
    """The current instant, timezone-aware in UTC."""
    return datetime.now(UTC)


def expiry_datetime(expiry: date) -> datetime:
    """The instant an expiry settles: 15:30 IST on the expiry date."""
    return datetime.combine(expiry, EXPIRY_TIME, tzinfo=IST)


def years_to_expiry(expiry: date, at: datetime) -> float:
    """Calendar years from `at` (aware) to 15:30 IST on `expiry`; never negative."""
    if at.tzinfo is None:
        raise ValueError("years_to_expiry needs a timezone-aware datetime")
    seconds = (expiry_datetime(expiry) - at).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR


def days_to_expiry(expiry: date, at: datetime) -> float:
    """Calendar days (fractional) from `at` to 15:30 IST on `expiry`; never negative."""
    return years_to_expiry(expiry, at) * 365.0


def parse_kite_time(value: object) -> datetime | None:
    """Kite timestamps are IST without a zone ('2021-06-08 15:45:56' or a naive datetime)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=IST)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=IST)


def parse_ist_minute(text: str) -> datetime:
    """'YYYY-MM-DD HH:MM' read as IST (the simulator's start); ValueError names the form."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M").replace(tzinfo=IST)
    except ValueError:
        raise ValueError(f'{text!r}: use "YYYY-MM-DD HH:MM" (IST)') from None


def fmt_ist(at: datetime, with_date: bool = False) -> str:
    """Format an aware instant in IST for the screen."""
    local = at.astimezone(IST)
    return local.strftime("%Y-%m-%d %H:%M:%S IST" if with_date else "%H:%M:%S IST")


def fmt_duration(seconds: float) -> str:
    """A duration for status lines: '4s', '2m 05s', '3h 10m' (whole seconds, never negative)."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {(s % 3600) // 60:02d}m"


def cached_label(age_s: float) -> str:
    """'cached 2m 10s': what every panel title and status line says while the last good snapshot
    is served (the cached tier), `age_s` exchange seconds after its market moment."""
    return f"cached {fmt_duration(age_s)}"
