"""Kite trading symbols for index derivatives, in the exchanges' real conventions.

Weekly options carry the expiry day (`NIFTY26O0625000CE` = 6 Oct 2026), monthly options and
futures the month (`NIFTY26OCT25000CE`, `NIFTY26OCTFUT`); the last weekly of a month is the
monthly contract and uses the monthly form. Apps match these symbols, so they must be exact.
"""

from __future__ import annotations

from datetime import date

MONTH_ABBR = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# Weekly symbols use one character per month: 1-9, then O, N, D.
WEEKLY_MONTH_CODE = "123456789OND"


def format_strike(strike: float) -> str:
    """A strike as Kite writes it in symbols and the dump: 25000, 25050.5."""
    if float(strike).is_integer():
        return str(int(strike))
    return f"{strike:.2f}".rstrip("0").rstrip(".")


def monthly_code(expiry: date) -> str:
    """`26OCT` for any day of October 2026."""
    return f"{expiry.year % 100:02d}{MONTH_ABBR[expiry.month - 1]}"


def weekly_code(expiry: date) -> str:
    """`26O06` for 6 October 2026."""
    return f"{expiry.year % 100:02d}{WEEKLY_MONTH_CODE[expiry.month - 1]}{expiry.day:02d}"


def option_symbol(name: str, expiry: date, strike: float, kind: str, monthly: bool) -> str:
    """Trading symbol of an index option; `kind` is CE or PE."""
    if kind not in ("CE", "PE"):
        raise ValueError(f"option kind must be CE or PE, not {kind!r}")
    code = monthly_code(expiry) if monthly else weekly_code(expiry)
    return f"{name}{code}{format_strike(strike)}{kind}"


def future_symbol(name: str, expiry: date) -> str:
    """Trading symbol of an index future: NIFTY26OCTFUT."""
    return f"{name}{monthly_code(expiry)}FUT"
