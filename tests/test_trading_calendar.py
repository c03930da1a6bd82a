"""The NSE trading calendar used for participant trade dates and the pre-market capture."""

from __future__ import annotations

from datetime import date

import pytest

from optui.analytics.trading_calendar import TradingCalendar
from optui.config import Settings
from optui.errors import ConfigError

pytestmark = pytest.mark.participants


def test_weekends_holidays_and_special_sessions() -> None:
    cal = TradingCalendar()
    assert cal.previous(date(2026, 8, 17)) == date(2026, 8, 14)  # Monday -> Friday
    assert not cal.is_trading_day(date(2026, 10, 2))  # Gandhi Jayanti
    assert cal.previous(date(2026, 10, 5)) == date(2026, 10, 1)  # over a holiday Friday
    assert cal.previous(date(2026, 8, 18), 5) == date(2026, 8, 11)  # a week by trading days
    assert cal.between(date(2026, 8, 14), date(2026, 8, 18)) == [
        date(2026, 8, 14), date(2026, 8, 17), date(2026, 8, 18)]
    assert cal.last_n(date(2026, 8, 16), 2) == [date(2026, 8, 13), date(2026, 8, 14)]
    settings = Settings()
    settings.participants.holidays = ["2026-08-17"]
    settings.participants.special_sessions = ["2026-08-15"]  # a Saturday session
    custom = TradingCalendar.from_settings(settings)
    assert custom.previous(date(2026, 8, 18)) == date(2026, 8, 15)
    assert custom.next(date(2026, 8, 14)) == date(2026, 8, 15)


def test_bad_configured_date_names_the_key() -> None:
    settings = Settings()
    settings.participants.holidays = ["2026-13-01"]
    with pytest.raises(ConfigError, match="participants.holidays: '2026-13-01'"):
        TradingCalendar.from_settings(settings)
