"""GET /instruments/historical/{instrument_token}/{interval}: daily candles as Kite serves them.

Kite's answer is `{"candles": [[timestamp, open, high, low, close, volume(, oi)], ...]}` with
timestamps in ISO form with the +0530 offset ("2026-08-19T00:00:00+0530"); `oi=1` appends the
day's closing open interest. Like Kite, only instruments listed now are served (an expired
option's token is unknown; `continuous=1` is for futures only and is refused for options), and
a contract has candles only from its listing (here `LISTED_DAYS` calendar days before its
expiry) up to the simulated clock's last completed session. The simulator serves the `day`
interval only.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np

from optui.simulator import calendar as cal
from optui.simulator.chain import build_chain_day, round_tick
from optui.simulator.instruments import Listing
from optui.simulator.market import SERIES_START, SESSION_SECONDS, MarketModel

LISTED_DAYS = 91
"""Calendar days before expiry from which an option or future has candles."""
KITE_CANDLE_TIME = "%Y-%m-%dT%H:%M:%S%z"
INTERVALS = ("day",)


class HistoricalError(ValueError):
    """A request Kite would refuse with an InputException (message says why)."""


def parse_kite_date(text: str) -> date:
    """'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS' (Kite's from/to forms) to a date."""
    text = (text or "").strip()
    for form in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise HistoricalError(f"invalid date {text!r}: use yyyy-mm-dd or yyyy-mm-dd hh:mm:ss")


def _stamp(day: date) -> str:
    from optui.timeutil import IST

    return datetime.combine(day, datetime.min.time(), tzinfo=IST).strftime(KITE_CANDLE_TIME)


def trading_days(start: date, end: date) -> list[date]:
    """Trading days in [start, end] inside the simulator's series."""
    day, out = max(start, SERIES_START + timedelta(days=1)), []
    while day <= end:
        if cal.is_trading_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def day_candles(model: MarketModel, row: Listing, start: date, end: date, last_done: date,
                continuous: bool, with_oi: bool) -> list[list[object]]:
    """Daily candles of one listed instrument for trading days in [start, end] up to `last_done`.

    Raises HistoricalError for `continuous` on an option (Kite serves it for futures only).
    """
    if continuous and row.instrument_type in ("CE", "PE"):
        raise HistoricalError("continuous data is available for futures only, not options")
    end = min(end, last_done)
    if row.expiry is not None:
        start = max(start, row.expiry - timedelta(days=LISTED_DAYS))
        end = min(end, row.expiry)
    out: list[list[object]] = []
    for day in trading_days(start, end):
        try:
            model.close(row.index_key, day)
        except ValueError:
            continue  # outside the simulated series
        if row.is_index:
            path, high, low = model.spot_path(row.index_key, day)
            candle: list[object] = [_stamp(day), float(path[0]), float(high[-1]), float(low[-1]),
                                    float(path[-1]), 0]
            if with_oi:
                candle.append(0)
            out.append(candle)
            continue
        assert row.expiry is not None
        chain = build_chain_day(model, row.index_key, row.expiry, day, [row])
        trade = chain.trade[0]
        tick = float(chain.tick[0])
        last = float(round_tick(np.asarray(trade[-1]), tick))
        volume = int(round(float(chain.lots[0, -1]))) * chain.lot
        candle = [_stamp(day), float(trade[0]), float(max(chain.high[0, -1], last)),
                  float(min(chain.low[0, -1], last)), last, volume]
        if with_oi:
            candle.append(int(chain.oi[0, -1]))
        out.append(candle)
    return out


def last_completed_session(now: datetime) -> date:
    """The newest trading day whose session had closed at `now` (aware)."""
    from optui.simulator.market import session_point

    day, second = session_point(now)
    return day if second >= SESSION_SECONDS else cal.previous_trading_day(day)
