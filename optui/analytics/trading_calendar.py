"""The NSE equity-derivatives trading calendar used to step over trade dates.

Trading days are weekdays that are not holidays, plus special sessions (a Saturday budget or
Muhurat session). The built-in holiday table is NSE's published list (optui.simulator.calendar,
2025-2027); `[participants] holidays` and `special_sessions` in the configuration add to it, so a
new year's circular needs no code change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from optui.errors import ConfigError
from optui.simulator.calendar import NSE_HOLIDAYS


def parse_dates(values: Iterable[str], key: str) -> frozenset[date]:
    """Dates from "YYYY-MM-DD" strings; ConfigError names `key` and the bad value."""
    out: set[date] = set()
    for value in values:
        try:
            out.add(date.fromisoformat(str(value).strip()))
        except ValueError:
            raise ConfigError(f"{key}: {value!r} is not a date (use YYYY-MM-DD)") from None
    return frozenset(out)


@dataclass(frozen=True)
class TradingCalendar:
    """Trading days: weekdays not in `holidays`, plus `special_sessions` (any weekday)."""

    holidays: frozenset[date] = NSE_HOLIDAYS
    special_sessions: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def from_settings(cls, settings: object) -> TradingCalendar:
        """The built-in NSE table plus `participants.holidays` / `participants.special_sessions`."""
        section = getattr(settings, "participants", None)
        extra = parse_dates(getattr(section, "holidays", []) or [], "participants.holidays")
        special = parse_dates(getattr(section, "special_sessions", []) or [],
                              "participants.special_sessions")
        return cls(NSE_HOLIDAYS | extra, special)

    def is_trading_day(self, day: date) -> bool:
        """True when NSE's F&O segment trades on `day`."""
        if day in self.special_sessions:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def previous(self, day: date, steps: int = 1) -> date:
        """The trading day `steps` trading days strictly before `day` (steps >= 1)."""
        if steps < 1:
            raise ValueError("steps must be at least 1")
        for _ in range(steps):
            day -= timedelta(days=1)
            while not self.is_trading_day(day):
                day -= timedelta(days=1)
        return day

    def on_or_before(self, day: date) -> date:
        """`day` when it trades, else the latest trading day before it."""
        return day if self.is_trading_day(day) else self.previous(day)

    def next(self, day: date) -> date:
        """The first trading day strictly after `day`."""
        day += timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def between(self, start: date, end: date) -> list[date]:
        """Trading days with start <= day <= end, oldest first."""
        out: list[date] = []
        day = start
        while day <= end:
            if self.is_trading_day(day):
                out.append(day)
            day += timedelta(days=1)
        return out

    def last_n(self, end: date, n: int) -> list[date]:
        """The `n` trading days ending on `end` (included when it trades), oldest first."""
        days: list[date] = []
        day = self.on_or_before(end)
        while len(days) < n:
            days.append(day)
            day = self.previous(day)
        return days[::-1]
