"""Number, time and session formatting for the dashboard, so every panel reads the same units.

Units are stated once here: ₹ crore with 2 decimals, IV in percent with 1 decimal, OI and volume
in lakhs (1 lakh = 100,000) with 2 decimals, prices with 2 decimals and thousands separators,
times in IST. NaN renders as an em dash so an unknown value never looks like a zero.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from optui.models import SOURCE_BADGES, source_badge  # noqa: F401 - formatting names in one place
from optui.timeutil import IST, MARKET_CLOSE, MARKET_OPEN, PRE_OPEN, fmt_duration

DASH = "—"
LAKH = 100_000.0

PRE_OPEN_STATE = "PRE-OPEN"
OPEN_STATE = "OPEN"
CLOSED_STATE = "CLOSED"
HOLIDAY_STATE = "HOLIDAY"

BUILDUP_SHORT: dict[str, str] = {
    "long_buildup": "LB",
    "short_buildup": "SB",
    "short_covering": "SC",
    "long_unwinding": "LU",
}
"""Two-letter codes for the chain's narrow buildup column."""

BUILDUP_LONG: dict[str, str] = {
    "long_buildup": "Long buildup",
    "short_buildup": "Short buildup",
    "short_covering": "Short covering",
    "long_unwinding": "Long unwinding",
}



def finite(value: float | None) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def fmt_price(value: float | None) -> str:
    """Index level or premium: 2 decimals with thousands separators."""
    return f"{value:,.2f}" if finite(value) else DASH


def fmt_strike(value: float | None) -> str:
    """Strikes are whole numbers on every index except a rare half-step: drop '.00'."""
    if not finite(value):
        return DASH
    assert value is not None
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def fmt_signed(value: float | None, decimals: int = 2) -> str:
    return f"{value:+,.{decimals}f}" if finite(value) else DASH


def fmt_pct(value: float | None) -> str:
    """A percent change, signed, 2 decimals."""
    return f"{value:+.2f}%" if finite(value) else DASH


def fmt_iv(value: float | None) -> str:
    """Implied volatility already in percent (12.5 means 12.5 %), 1 decimal."""
    return f"{value:.1f}" if finite(value) else DASH


def fmt_ratio(value: float | None) -> str:
    return f"{value:.2f}" if finite(value) else DASH


def fmt_delta(value: float | None) -> str:
    return f"{value:+.2f}" if finite(value) else DASH


def fmt_count(value: float | None, per: float = LAKH, signed: bool = False) -> str:
    """A count (OI, volume, their changes) in units of `per`: LAKH (100,000) or a lot size.

    Lakhs get 2 decimals and lots none, but a count that is not zero never reads as zero: it
    gets the decimals it needs (up to 5), so a change of one 75-unit lot is "+0.001" lakh, not
    "+0.00" or "-0.00". A real zero reads "0". Signed for changes.
    """
    if not finite(value):
        return DASH
    assert value is not None
    if value == 0:
        return "0"
    x = value / per
    decimals = 2 if per == LAKH else 0
    while decimals < 5 and round(abs(x), decimals) == 0:
        decimals += 1
    return f"{x:+,.{decimals}f}" if signed else f"{x:,.{decimals}f}"


def fmt_lakh(value: float | None, signed: bool = False) -> str:
    """A count (OI, volume) in lakhs, 2 decimals (more for a small non-zero); signed for changes."""
    return fmt_count(value, LAKH, signed)


def fmt_crore(value: float | None, signed: bool = False) -> str:
    """Rupees already in crore, 2 decimals, with the ₹ sign."""
    if not finite(value):
        return DASH
    assert value is not None
    if signed:
        sign = "+" if value >= 0 else "-"
        return f"{sign}₹{abs(value):,.2f} cr"
    return f"₹{value:,.2f} cr"


def fmt_expiry(value: date | None) -> str:
    return value.strftime("%d %b") if value else DASH


def fmt_age(seconds: float | None) -> str:
    """Data age for the header: '4s', '2m 05s', '3h 10m'."""
    if not finite(seconds):
        return DASH
    assert seconds is not None
    return fmt_duration(seconds)


def fmt_clock(at: datetime) -> str:
    """Wall time in IST for the header clock: '26 Nov 11:30:00 IST'."""
    return at.astimezone(IST).strftime("%d %b %H:%M:%S IST")


def buildup_short(name: str) -> str:
    return BUILDUP_SHORT.get(name, "")


def buildup_long(name: str) -> str:
    return BUILDUP_LONG.get(name, name.replace("_", " ") if name else DASH)


FLAG_MARKS: dict[str, tuple[str, str]] = {
    "stale": ("stale", "last trade older than analytics.stale_after_s before the quote"),
    "no_bid": ("no bid", "no bid in the book"),
    "no_ask": ("no ask", "no ask in the book"),
    "crossed": ("crossed", "bid above ask (a broken or mid-update book)"),
    "below_intrinsic": ("<intrin", "last price below the discounted intrinsic value"),
    "wide_spread": ("wide", "bid-ask spread above analytics.wide_spread_pct of the mid"),
    "no_price": ("no LTP", "no last price"),
    "no_iv": ("no IV", "no implied volatility solved for the price"),
}
"""Per-leg quality flag (optui.analytics.quality) to its mark in the chain's Flag column and
its meaning (the help screen's legend). Marks are at most 7 characters so that with '+N' a
mark fits QUALITY_MARK_WIDTH."""

QUALITY_MARK_WIDTH = 7 + len("+7")
"""The widest quality_mark: the longest mark and a count of the other flags (8 flags at most)."""


def quality_mark(flags: str) -> str:
    """Quality column: blank when clean, else the first flag's short mark (FLAG_MARKS) and '+N'
    when there are more; never wider than QUALITY_MARK_WIDTH (an unknown name is cut)."""
    if not flags:
        return ""
    names = [f for f in flags.split(",") if f]
    if not names:
        return ""
    more = f"+{len(names) - 1}" if len(names) > 1 else ""
    first = FLAG_MARKS.get(names[0], (names[0], ""))[0]
    return first[:QUALITY_MARK_WIDTH - len(more)] + more


def session_state(at: datetime, holiday: bool = False) -> str:
    """NSE/BSE session at an instant: pre-open 09:00-09:15, open 09:15-15:30 IST on weekdays.

    Exchange holidays are not computable from the clock; the caller passes what the source says.
    """
    local = at.astimezone(IST)
    if holiday:
        return HOLIDAY_STATE
    if local.weekday() >= 5:
        return CLOSED_STATE
    now = local.time()
    if PRE_OPEN <= now < MARKET_OPEN:
        return PRE_OPEN_STATE
    if MARKET_OPEN <= now < MARKET_CLOSE:
        return OPEN_STATE
    return CLOSED_STATE
