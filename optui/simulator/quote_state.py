"""The simulated market's quotes at one second, as per-instrument numpy arrays.

`chain_quotes` computes every field Kite's full quote carries (last price, OHLC, volume, VWAP,
OI, book totals, circuit limits and five levels of depth) for all contracts of one index and
expiry at once, from the one-minute grid of `optui.simulator.chain.ChainDay`. Every value is an
elementwise function of the instrument and the second, so a row is the same whichever other rows
are computed with it: GET /quote builds its dicts from these rows and the WebSocket ticker packs
them straight into Kite's binary layouts, so a tick and a quote at the same simulated second carry
the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from optui.simulator.chain import (
    ChainDay,
    book_epoch,
    book_top,
    depth_book,
    fair_prices,
    no_bid,
    print_prices,
    round_tick,
    years_left,
)
from optui.simulator.market import SESSION_SECONDS, MarketModel, hash_uniform


@dataclass(frozen=True, slots=True)
class ChainQuotes:
    """Full quotes of every row of one ChainDay at one session second (arrays of length n).

    Prices in rupees (float64, two decimals); quantities, volume and OI int64. Open, high and low
    are 0 before a contract's first trade of the day, as on Kite. Depth arrays are (n, 2, 5):
    side 0 buy, 1 sell, best level first; an empty level is all zeros.
    """

    last_price: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    average_price: np.ndarray
    last_quantity: np.ndarray
    buy_quantity: np.ndarray
    sell_quantity: np.ndarray
    oi: np.ndarray
    oi_day_high: np.ndarray
    oi_day_low: np.ndarray
    lower_circuit_limit: np.ndarray
    upper_circuit_limit: np.ndarray
    depth_price: np.ndarray
    depth_quantity: np.ndarray
    depth_orders: np.ndarray


def interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Row-wise `np.interp(x[j], xp[j], fp[j])` for increasing rows of `xp` (shape (n, m)).

    The same arithmetic as numpy's compiled interp (slope times the distance from the left
    knot, the knot's own value on a knot, the end values outside the range), so each result
    equals the per-row call bit for bit.
    """
    n, m = xp.shape
    rows = np.arange(n)
    # Index of the last knot at or left of x (numpy's binary search gives the same).
    j = (xp <= x[:, None]).sum(axis=1) - 1
    jl = np.clip(j, 0, m - 2)
    x0, x1 = xp[rows, jl], xp[rows, jl + 1]
    y0, y1 = fp[rows, jl], fp[rows, jl + 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (y1 - y0) / (x1 - x0)
        out = slope * (x - x0) + y0
        retry = np.isnan(out)
        if retry.any():
            out = np.where(retry, slope * (x - x1) + y1, out)
            out = np.where(np.isnan(out) & (y0 == y1), y0, out)
    out = np.where(x == x0, y0, out)
    out = np.where(j < 0, fp[:, 0], out)
    return np.where(x >= xp[:, -1], fp[:, -1], out)


def chain_quotes(market: MarketModel, seed: int, chain: ChainDay, tokens: np.ndarray,
                 key: str, day: date, second: int) -> ChainQuotes:
    """Quotes of every row of `chain` (`tokens` in row order) `second` seconds into the session
    of `day` (0 to SESSION_SECONDS)."""
    tick, is_fut = chain.tick, chain.is_fut
    boundary, rest = divmod(second, 60)
    last_boundary = SESSION_SECONDS // 60
    minute = min(boundary, last_boundary - 1)
    spot = market.spot(key, day, second)
    t = years_left(chain.expiry, float(second), day)
    fair = fair_prices(market, key, day, chain.strikes, chain.is_call, is_fut, spot, t,
                       float(second))
    bid, ask = book_top(fair, tick, is_fut)
    dayo = day.toordinal()
    no_bids = no_bid(seed, tokens, day, fair, is_fut)
    bid = np.where(no_bids, 0.0, bid)
    last = np.where((chain.side[:, minute] > 0) | (bid <= 0), ask, bid)
    open_ = chain.trade[:, 0]
    high = np.maximum(chain.high[:, minute], last)
    low = np.minimum(chain.low[:, minute], last)
    close = chain.prev_close
    lots = chain.lots
    if boundary >= last_boundary:
        lots_now = lots[:, -1]
    else:
        lots_now = lots[:, boundary] + rest / 60.0 * (lots[:, boundary + 1] - lots[:, boundary])
    whole = np.floor(lots_now + 1e-9)
    volume = whole.astype(np.int64) * chain.lot
    # Before its first trade of the day a contract's open, high and low are 0, as on Kite.
    untraded = volume <= 0
    open_, high, low = (np.where(untraded, 0.0, a) for a in (open_, high, low))
    # Traded value is piecewise linear in lots traded between minute marks (exact at the
    # whole-lot count); the current minute's lots so far are valued at the mean print of its
    # seconds so far (print_prices), so the value follows the book as the index moves.
    value = interp_rows(whole, lots, chain.value)
    start = lots[:, minute]
    if boundary < last_boundary and rest > 0:
        first = boundary * 60
        paid = print_prices(market, key, day, chain.expiry, tokens, chain.strikes, chain.is_call,
                            is_fut, tick, chain.side[:, minute], chain.spot_sum, first, second)
        value = np.where(whole > start, chain.value[:, minute] + (whole - start) * chain.lot * paid,
                         value)
    average = np.where(volume > 0, np.round(value / np.maximum(volume, 1), 2), 0.0)
    liquidity = np.clip((lots[:, minute + 1] - lots[:, minute]) * 0.5, 3.0, 400.0)
    book = depth_book(seed, tokens, day, second, bid, ask, tick, chain.lot, liquidity, no_bids)
    # The totals and the last trade's size move with the book and the trades, not the clock.
    epoch = book_epoch(seed, tokens, day, second)
    mult = 3.0 + 12.0 * hash_uniform(seed, 63, tokens, dayo, epoch)
    buy_q = (book["buy"][1].sum(axis=1) * mult).astype(np.int64)
    sell_q = (book["sell"][1].sum(axis=1) * mult).astype(np.int64)
    last_qty = chain.lot * (1 + np.floor(hash_uniform(seed, 64, tokens, dayo, whole)
                                         * 5).astype(np.int64))
    last_qty = np.where(volume > 0, last_qty, 0)
    lower = np.where(is_fut, round_tick(close * 0.9, tick), tick)
    upper = np.where(is_fut, round_tick(close * 1.1, tick),
                     round_tick(close + np.maximum(close, spot * 0.02), tick))
    depth = [np.stack((book["buy"][k], book["sell"][k]), axis=1) for k in range(3)]
    return ChainQuotes(
        last_price=last, open=open_, high=high, low=low, close=close, volume=volume,
        average_price=average, last_quantity=last_qty, buy_quantity=buy_q, sell_quantity=sell_q,
        oi=chain.oi[:, boundary], oi_day_high=chain.oi_high[:, boundary],
        oi_day_low=chain.oi_low[:, boundary], lower_circuit_limit=lower,
        upper_circuit_limit=upper, depth_price=depth[0], depth_quantity=depth[1],
        depth_orders=depth[2],
    )
