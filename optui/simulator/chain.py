"""Intraday trading of one index's derivatives for one expiry: prices, book, volume, OI.

Every quantity is a deterministic function of the seed, the instrument and the session time,
computed on a one-minute grid and cached per (index, expiry, day): day volume only grows,
average_price is cumulative traded value over volume (so premium flow is recoverable), OI moves
from the previous close towards today's close as trading happens, and trades print at the bid
or ask depending on who was aggressive in that minute, of the book of the second they trade in
(the traded value follows the book as the index moves within the minute, see `print_prices`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from optui.analytics.black_scholes import black76_price
from optui.simulator import calendar as cal
from optui.simulator.instruments import CONTRACTS, Listing, option_expiries
from optui.simulator.market import (
    DYNAMICS,
    RATE,
    SESSION_MINUTES,
    SESSION_SECONDS,
    MarketModel,
    hash_normal,
    hash_uniform,
    session_close,
    session_open,
)
from optui.simulator.smile import smile_vol
from optui.timeutil import SECONDS_PER_YEAR, expiry_datetime

MIN_YEARS = 60.0 / SECONDS_PER_YEAR
# Relative change of the put-call ratio by OI per daily standard deviation of the index's move
# since the previous close (writers sell puts into a rally, calls into a fall).
PCR_BETA = 0.15
# Open interest by strike: writers sit out of the money, about OI_CENTRE standard deviations of
# the move to expiry (MARKET.md, 19 Aug 2026: the 6-day weekly's largest call OI 1.8 % and 3.8 %
# above spot, largest put OI 0.3 %, 2.4 % and 4.5 % below).
OI_CENTRE = 1.4
_MINUTES = np.arange(SESSION_MINUTES + 1)
# Intraday activity: busy open, quiet middle, busy close; mean 1 over the session.
_U = 1.0 + 1.5 * np.exp(-_MINUTES[:-1] / 30.0) + 1.0 * np.exp(-(373 - _MINUTES[:-1]) / 25.0)
_U = _U / _U.mean()


# Option volume by days to expiry, against the nearest expiry 6 days before it (1.0;
# IndexDynamics.call_volume: MARKET.md, 19 Aug 2026, 20 million call and 18.5 million put
# contracts in NIFTY's 6-day weekly). Real figures it follows:
# - Within the last week a traded option's premium shrinks about as the square root of the time
#   left, and premium turnover does not shrink with it: NSE's index options averaged about
#   45,000 crore of premium a day from December 2024 to March 2025 (NSE Market Pulse FY25 in
#   Business Standard, 28 Apr 2025: Rs 9.1 trillion a month), NIFTY's nearest weekly the bulk of
#   it: about 100 crore a minute. Expiry days trade the most: on 2 Sep 2025 NSE's index options
#   traded Rs 687 billion of premium, 304 of the 361 million contracts NIFTY's expiring weekly
#   (Informist, 2 Sep 2025; August's expiry days averaged Rs 578 billion), about 130-150 crore
#   a minute for it. So the nearest expiry's volume grows as 1 / sqrt(time left) into the
#   expiry, and by EXPIRY_DAY_SURGE more on the day; further out it falls off steeply.
# - The later expiries trade far less than the nearest: the 41-day monthly 0.36 + 0.28 million
#   contracts against the 6-day weekly's 38.5 million (MARKET.md), 1.7 %; on 2 Sep 2025 every
#   other NSE index option together was 57 million contracts against the expiring NIFTY weekly's
#   304. LATER_EXPIRY_SHARE x 7 / (1 + days) gives the monthly's 1.7 % at 41 days.
# Measured (tests/test_simulator_turnover.py, seed 7, 11-17 Nov 2026): NIFTY's nearest weekly
# 89-116 crore a minute on the days before its expiry and 138 on it, every NIFTY expiry together
# 132-180; before this calibration the nearest traded 61 on its expiry day and up to 182 on the
# days before, every expiry together 234-321 (the later expiries as much as the nearest).
EXPIRY_DAY_SURGE = 1.7
LATER_EXPIRY_SHARE = 0.1


def day_volume_factor(dte: int, nearest: bool = True) -> float:
    """Option lots traded in a day `dte` calendar days before expiry, relative to the nearest
    expiry 6 days before it (1.0); `nearest`: the index's nearest listed expiry that day. See
    the comment above for the real figures it follows."""
    ratio = 7.0 / (1.0 + max(dte, 0))
    if not nearest:
        return LATER_EXPIRY_SHARE * ratio
    if dte >= 6:
        return ratio ** 1.9
    return ratio ** 0.5 * (EXPIRY_DAY_SURGE if dte == 0 else 1.0)


def years_left(expiry: date, at_seconds: np.ndarray | float, day: date) -> np.ndarray:
    """Years from `at_seconds` after 09:15 on `day` to expiry, floored at one minute."""
    left = (expiry_datetime(expiry) - session_open(day)).total_seconds() - np.asarray(at_seconds)
    return np.maximum(left / SECONDS_PER_YEAR, MIN_YEARS)


def round_tick(price: np.ndarray, tick: np.ndarray | float) -> np.ndarray:
    """Round to the nearest tick, kept at two decimals like Kite's prices."""
    return np.round(np.round(np.asarray(price) / tick) * tick, 2)


def book_top(
    fair: np.ndarray, tick: np.ndarray | float, is_fut: np.ndarray | bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Best bid and ask around a fair price; bid 0 means no buyer (only far OTM options).

    Option spreads widen with the premium (about 0.1 %); futures trade a tick wide.
    """
    spread_ticks = np.maximum(1.0, np.rint(fair * np.where(is_fut, 0.0, 0.001) / tick))
    bid = np.floor((fair - 0.5 * spread_ticks * tick) / tick + 1e-9) * tick
    bid = np.round(np.maximum(bid, 0.0), 2)
    ask = np.round(np.maximum(bid + spread_ticks * tick, tick), 2)
    return bid, ask


@dataclass(frozen=True, slots=True)
class ChainDay:
    """One (index, expiry, day) of derivatives on the minute grid; rows follow `tokens`."""

    day: date
    expiry: date
    row_of: dict[int, int]
    strikes: np.ndarray
    is_call: np.ndarray
    is_fut: np.ndarray
    tick: np.ndarray
    lot: int
    atm_vol: float
    side: np.ndarray  # (n, 375) +1 buyer-initiated, -1 seller-initiated
    trade: np.ndarray  # (n, 375) price printed in each minute
    high: np.ndarray  # (n, 375) running high of printed prices
    low: np.ndarray
    lots: np.ndarray  # (n, 376) cumulative lots traded at each minute boundary
    value: np.ndarray  # (n, 376) cumulative traded value in rupees
    spot_sum: np.ndarray  # (SESSION_SECONDS + 1,) running sum of the per-second spot path
    oi: np.ndarray  # (n, 376) open interest in units at each minute boundary
    oi_high: np.ndarray
    oi_low: np.ndarray
    prev_close: np.ndarray  # (n,) previous session's closing price


def fair_prices(
    model: MarketModel, key: str, day: date, rows_strike: np.ndarray, is_call: np.ndarray,
    is_fut: np.ndarray, spot: np.ndarray | float, t_years: np.ndarray,
    seconds: np.ndarray | float,
) -> np.ndarray:
    """Model prices: Black-76 on the smile for options, the carry forward for futures.

    `seconds` (into the session of `day`, broadcast like `spot`) picks the ATM vol of that moment.
    """
    forward = model.forward(spot, t_years)
    atm = model.atm_vol_at(key, day, seconds)
    strikes = np.where(is_fut, forward, rows_strike)
    vol = smile_vol(atm, strikes, forward, t_years)
    opt = black76_price(forward, strikes, t_years, vol, RATE, is_call)
    return np.where(is_fut, forward, opt)


def print_prices(
    model: MarketModel, key: str, day: date, expiry: date, tokens: np.ndarray,
    strikes: np.ndarray, is_call: np.ndarray, is_fut: np.ndarray, tick: np.ndarray,
    side: np.ndarray, spot_sum: np.ndarray, first: np.ndarray | int, last: np.ndarray | int,
) -> np.ndarray:
    """The mean price of the trades printed in seconds `first + 1` to `last` of the session,
    each at the ask (buyer-initiated, `side` > 0, or no bid) or the bid of its own second's book.

    Lots trade evenly through a minute, so the mean print is the print of the book at the mean
    spot of those seconds (and their mean time): a buyer lifting offers while the index rises
    pays the rising asks, not the minute's first. `first` and `last` broadcast against the rows
    (a column of rows against a row of minutes gives a (rows, minutes) array); `spot_sum` is
    the running sum of the per-second spot path."""
    count = np.maximum(last - first, 1)
    mean_spot = (spot_sum[last] - spot_sum[first]) / count
    mean_second = (first + last + 1) / 2.0
    t = years_left(expiry, mean_second, day)
    fair = fair_prices(model, key, day, strikes, is_call, is_fut, mean_spot, t, mean_second)
    bid, ask = book_top(fair, tick, is_fut)
    bid = np.where(no_bid(model.seed, tokens, day, fair, is_fut), 0.0, bid)
    return np.where((side > 0) | (bid <= 0), ask, bid)


def no_bid(seed: int, tokens: np.ndarray, day: date, fair: np.ndarray,
           is_fut: np.ndarray) -> np.ndarray:
    """Options worth under 0.30 that nobody bids for (about three in ten, drawn per instrument
    and day): their book has no buy side."""
    return ~is_fut & (fair < 0.3) & (hash_uniform(seed, 62, tokens, day.toordinal()) < 0.3)


def _oi_lots(
    model: MarketModel, key: str, expiry: date, day: date, tokens: np.ndarray,
    strikes: np.ndarray, is_call: np.ndarray, is_fut: np.ndarray, monthly: bool,
    spot: np.ndarray | float, seconds: np.ndarray | float,
) -> np.ndarray:
    """Open interest (lots) that positions settle at with the index at `spot`, `seconds` into
    the session of `day`: piled at round strikes, OTM-heavy, centred on the money of that moment.

    Rows follow `tokens`; `spot` and `seconds` broadcast against them (a column of rows against
    a row of minutes gives a (rows, minutes) array). Writers add puts as the index rises above
    the previous close and calls as it falls, so the put-call ratio follows the day's move
    (PCR_BETA per daily standard deviation).
    """
    contract, dyn = CONTRACTS[key], DYNAMICS[key]
    dte = max((expiry - day).days, 0)
    left = (expiry_datetime(expiry) - session_open(day)).total_seconds() - np.asarray(seconds)
    t = np.maximum(left / SECONDS_PER_YEAR, 5.0 / 365.0)
    fwd = model.forward(spot, t)
    sd = model.atm_vol(key, day) * np.sqrt(t)
    z = np.log(np.where(is_fut, fwd, strikes) / fwd) / sd
    sign = np.where(is_call, 1.0, -1.0)
    width = 1.3
    weight = np.exp(-0.5 * ((z - OI_CENTRE * sign) / width) ** 2)
    step = contract.near_step
    rounded = np.where(strikes % (10 * step) == 0, 3.0, np.where(strikes % (2 * step) == 0, 1.6,
                                                                   1.0))
    noise = np.exp(0.25 * hash_normal(model.seed, 41, tokens, day.toordinal()) - 0.03)
    # Normalise by the integral over a continuous strike grid so a strike's OI never depends on
    # which other strikes are listed; 1.44 is the mean of the round-strike multiplier.
    per_strike = fwd * sd / step
    norm = np.sqrt(2.0 * np.pi) * width * per_strike * 1.44
    total = dyn.call_oi * (0.25 + 0.75 * np.exp(-dte / 12.0))
    pcr = 1.3 if monthly else 0.7
    move = np.log(spot / model.previous_close(key, day)) / dyn.daily_vol
    tilt = np.exp(0.5 * PCR_BETA * np.clip(move, -4.0, 4.0) * -sign)
    lots = total * np.where(is_call, 1.0, pcr) * tilt * weight * rounded * noise / norm
    fut_lots = dyn.future_oi * np.exp(-dte / 45.0) * noise
    return np.rint(np.where(is_fut, fut_lots, lots))


def build_chain_day(
    model: MarketModel, key: str, expiry: date, day: date, rows: Sequence[Listing]
) -> ChainDay:
    """Simulate one session of the given contracts (all of one index and expiry)."""
    contract, dyn = CONTRACTS[key], DYNAMICS[key]
    tokens = np.array([r.instrument_token for r in rows], dtype=np.int64)
    strikes = np.array([r.strike for r in rows])
    is_call = np.array([r.instrument_type == "CE" for r in rows])
    is_fut = np.array([r.instrument_type == "FUT" for r in rows])
    tick = np.array([r.tick_size for r in rows])
    monthly = any(r.monthly for r in rows)
    lot = contract.lot_size
    n = len(rows)
    path = model.spot_path(key, day)[0]
    spot_m = path[:: 60]
    seconds = _MINUTES * 60.0
    t_m = years_left(expiry, seconds, day)
    fair = fair_prices(model, key, day, strikes[:, None], is_call[:, None], is_fut[:, None],
                       spot_m[None, :], t_m[None, :], seconds[None, :])[:, :-1]
    tok = tokens[:, None]
    minute = _MINUTES[None, :-1]
    dayo = day.toordinal()
    # Who is aggressive: random, tilted towards buyers of whatever gained this minute.
    dz = np.diff(np.log(spot_m)) / (dyn.daily_vol / np.sqrt(SESSION_MINUTES))
    direction = np.where(is_call | is_fut, 1.0, -1.0)[:, None]
    side = np.where(hash_normal(model.seed, 51, tok, dayo, minute) + 0.8 * dz * direction >= 0,
                    1, -1).astype(np.int8)
    bid, ask = book_top(fair, tick[:, None], is_fut[:, None])
    trade = np.where((side > 0) | (bid <= 0), ask, bid)
    # Volume: concentrated near and just out of the money, following the spot through the day.
    atm = model.atm_vol(key, day)
    sd = atm * np.sqrt(np.maximum(t_m[:-1], 1.0 / 365.0))
    fwd_m = model.forward(spot_m[:-1], t_m[:-1])
    z = np.log(np.where(is_fut[:, None], fwd_m[None, :], strikes[:, None]) / fwd_m) / sd
    weight = np.exp(-0.5 * (z - 0.3 * direction) ** 2) + 0.01 * np.exp(-np.abs(z) / 3.0)
    dte = max((expiry - day).days, 0)
    nearest = option_expiries(contract, day)[0][0] == expiry
    day_lots = dyn.call_volume * day_volume_factor(dte, nearest)
    norm = np.sqrt(2.0 * np.pi) * fwd_m[0] * sd[0] / contract.near_step
    opt_rate = day_lots * np.where(is_call, 1.0, 0.93) / norm
    fut_rate = dyn.future_volume * (1.0 + dte / 30.0) ** -2.0
    rate = np.where(is_fut, fut_rate, opt_rate)[:, None]
    noise = np.exp(0.6 * hash_normal(model.seed, 52, tok, dayo, minute) - 0.18)
    per_min = rate * np.where(is_fut[:, None], 1.0, weight) * _U[None, :] / SESSION_MINUTES * noise
    lots = np.concatenate((np.zeros((n, 1)), np.cumsum(per_min, axis=1)), axis=1)
    # Each minute's lots are valued at the mean of its seconds' prints (see print_prices).
    spot_sum = np.concatenate(([0.0], np.cumsum(path[1:])))
    starts = _MINUTES[None, :-1] * 60
    paid = print_prices(model, key, day, expiry, tok, strikes[:, None], is_call[:, None],
                        is_fut[:, None], tick[:, None], side, spot_sum, starts, starts + 60)
    value = np.concatenate((np.zeros((n, 1)), np.cumsum(per_min * lot * paid, axis=1)), axis=1)
    # OI: from yesterday's close as the day's trading happens, towards what positions would
    # settle at with the index where it is now; at the close that is today's closing OI.
    prev_day = cal.previous_trading_day(day)
    oi_open = _oi_lots(model, key, expiry, prev_day, tokens, strikes, is_call, is_fut, monthly,
                       model.close(key, prev_day), float(SESSION_SECONDS))
    oi_target = _oi_lots(model, key, expiry, day, tokens[:, None], strikes[:, None],
                         is_call[:, None], is_fut[:, None], monthly, spot_m[None, :],
                         seconds[None, :])
    done = lots / np.maximum(lots[:, -1:], 1e-12)
    wiggle = 0.04 * np.maximum(oi_open[:, None], oi_target) * np.sqrt(done * (1.0 - done))
    wiggle = wiggle * hash_normal(model.seed, 53, tok, dayo)
    oi_lots = np.maximum(np.rint(oi_open[:, None] + (oi_target - oi_open[:, None]) * done
                                 + wiggle), 0.0)
    oi = (oi_lots * lot).astype(np.int64)
    # Previous session's closing price.
    t_prev = np.maximum((expiry_datetime(expiry) - session_close(prev_day)).total_seconds()
                        / SECONDS_PER_YEAR, MIN_YEARS)
    prev_fair = fair_prices(model, key, prev_day, strikes, is_call, is_fut,
                            model.close(key, prev_day), np.full(n, t_prev),
                            float(SESSION_SECONDS))
    prev_close = np.maximum(round_tick(prev_fair, tick), tick)
    return ChainDay(
        day=day, expiry=expiry, row_of={int(t): i for i, t in enumerate(tokens)},
        strikes=strikes, is_call=is_call, is_fut=is_fut, tick=tick, lot=lot, atm_vol=atm,
        side=side, trade=trade, high=np.maximum.accumulate(trade, axis=1),
        low=np.minimum.accumulate(trade, axis=1), lots=lots, value=value, spot_sum=spot_sum, oi=oi,
        oi_high=np.maximum.accumulate(oi, axis=1), oi_low=np.minimum.accumulate(oi, axis=1),
        prev_close=prev_close,
    )


def empty_depth() -> dict[str, list[dict[str, float | int]]]:
    """A book with no orders, as Kite sends for indices."""
    level = {"price": 0, "quantity": 0, "orders": 0}
    return {"buy": [dict(level) for _ in range(5)], "sell": [dict(level) for _ in range(5)]}


BOOK_MEMORY = 4
"""Book draws averaged into each level's lots: a move of the book replaces one of them."""
BOOK_PERIOD_S = (3, 30)
"""Seconds between moves of an instrument's book: each instrument's own period in this range."""


def book_epoch(seed: int, tokens: np.ndarray, day: date, second: int) -> np.ndarray:
    """How many times each instrument's book has moved by `second` of `day` (int64, shape of
    `tokens`): every `period` seconds from a per-instrument phase, with period and phase drawn
    from (seed, token), so the book at a second is the same however it is asked for."""
    lo, hi = BOOK_PERIOD_S
    period = lo + np.floor(hash_uniform(seed, 65, tokens) * (hi - lo + 1)).astype(np.int64)
    phase = np.floor(hash_uniform(seed, 66, tokens, day.toordinal()) * period).astype(np.int64)
    return (int(second) + phase) // period


def depth_book(
    seed: int, tokens: np.ndarray, day: date, second: int, bid: np.ndarray, ask: np.ndarray,
    tick: np.ndarray, lot: int, liquidity: np.ndarray, no_bids: np.ndarray,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Five levels each side for many instruments: (price, quantity, orders) arrays (n, 5).

    Levels sit a few ticks apart and hold whole lots; an empty level is all zeros, as in Kite.
    The lots resting at each level evolve rather than being redrawn: they change only when the
    instrument's book moves (`book_epoch`), and then as a moving average of the last
    BOOK_MEMORY draws, so each move shifts them part of the way (see book_epoch).
    """
    spread_ticks = np.rint((ask - bid) / tick)
    step = np.where(bid > 0, np.maximum(spread_ticks // 4, 1.0), 1.0) * tick
    levels = np.arange(5)[None, :]
    epoch = book_epoch(seed, tokens, day, second)[:, None, None]
    dayo = day.toordinal()
    draws = sum(hash_uniform(seed, 61, tokens[:, None, None], dayo, epoch - k,
                             levels[:, :, None], np.arange(2)[None, None, :])
                for k in range(BOOK_MEMORY)) / BOOK_MEMORY
    lots = 1.0 + np.floor(draws * liquidity[:, None, None])
    out: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for j, (name, price) in enumerate((("buy", bid[:, None] - levels * step[:, None]),
                                        ("sell", ask[:, None] + levels * step[:, None]))):
        empty = price <= 1e-9
        if name == "buy":
            empty = empty | no_bids[:, None]
        qty = np.where(empty, 0, lots[:, :, j] * lot).astype(np.int64)
        orders = np.where(empty, 0, np.maximum(1, lots[:, :, j] // 3)).astype(np.int64)
        out[name] = (np.where(empty, 0.0, np.round(price, 2)), qty, orders)
    return out
