"""The simulator's array-based quote state: ticks packed from arrays equal GET /quote's dicts."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from optui.simulator.exchange import SimulatedExchange
from optui.simulator.quote_state import interp_rows
from optui.simulator.ticker import ChangedTicks, exchange_frame, quotes_to_batch
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, pack_frame, parse_frame
from optui.timeutil import IST


class _Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.parametrize("start", [datetime(2026, 11, 17, 11, 0, 30), datetime(2026, 11, 17, 9, 0),
                                   datetime(2026, 11, 17, 15, 29, 59), datetime(2026, 11, 21, 12, 0)])
def test_array_frame_equals_the_per_quote_frame(start: datetime) -> None:
    """Open, pre-open (frozen at the close), the last second and a Saturday; every mode, indices,
    futures, an unknown token and an unpriced one, in a mixed order."""
    clock = _Clock()
    exchange = SimulatedExchange(seed=11, start=start.replace(tzinfo=IST), clock=clock)
    rows = exchange.instruments()
    picked = rows[::9] + [r for r in rows if r.is_index or r.instrument_type == "FUT"]
    tokens = [r.instrument_token for r in picked][::-1] + [999_999_999]
    modes = {t: (MODE_FULL, MODE_QUOTE, MODE_LTP)[i % 3] for i, t in enumerate(tokens)}
    exchange.omit([str(tokens[5])])
    for step in (0.0, 1.0, 61.0):
        clock.t = step
        reference = pack_frame(quotes_to_batch(exchange.stream_quotes(modes), modes))
        assert exchange_frame(exchange, modes) == reference
    assert len(reference) > 40_000  # the frame is not trivially empty


def test_rows_interpolate_as_numpy_does() -> None:
    rng = np.random.default_rng(3)
    xp = np.concatenate((np.zeros((50, 1)), np.cumsum(rng.exponential(2.0, (50, 30)), axis=1)), axis=1)
    xp[7, 5:9] = xp[7, 5]  # knots repeated (no trades for a few minutes)
    fp = np.cumsum(rng.exponential(100.0, xp.shape), axis=1)
    x = np.floor(rng.uniform(-2.0, 1.1, 50) * xp[:, -1])
    x[0], x[1], x[2] = xp[0, 4], xp[1, -1], 0.0  # on a knot, the last knot, zero
    x[7] = xp[7, 5]
    got = interp_rows(x, xp, fp)
    want = np.array([np.interp(x[j], xp[j], fp[j]) for j in range(50)])
    assert np.array_equal(got, want)


def _full_options(exchange: SimulatedExchange) -> dict[int, int]:
    rows = exchange.instruments()
    nifty = [r for r in rows if r.index_key == "NIFTY" and r.instrument_type in ("CE", "PE")]
    expiry = min(r.expiry for r in nifty if r.expiry)
    return {r.instrument_token: MODE_FULL for r in nifty if r.expiry == expiry}


def test_the_book_evolves_and_is_the_same_for_a_seed_and_second() -> None:
    """Depth quantities, orders and book totals move only when an instrument's book moves (every
    3 to 30 s), and part of the way; a second's book is the same however it is reached."""
    clock = _Clock()
    start = datetime(2026, 11, 17, 11, 0, 30, tzinfo=IST)
    exchange = SimulatedExchange(seed=11, start=start, clock=clock)
    modes = _full_options(exchange)
    tokens = np.fromiter(modes, dtype=np.int64)
    codes = np.full(tokens.size, MODE_FULL, dtype=np.int8)
    books = []
    for second in range(40):
        clock.t = float(second)
        b = exchange.stream_batch(tokens, codes)
        books.append(np.concatenate((b.depth_quantity.reshape(len(b), -1), b.depth_orders.reshape(
            len(b), -1), b.buy_quantity[:, None], b.sell_quantity[:, None]), axis=1))
    moved = np.array([(books[s] != books[s - 1]).any(axis=1).mean() for s in range(1, 40)])
    # Redrawn every second, every book would differ from the one before; here a few do a second
    # (each book moves every 3-30 s; a new minute moves them all as liquidity is re-read).
    assert np.median(moved) < 0.35
    assert (np.stack(books) != books[0]).any(axis=2).any(axis=0).mean() > 0.95  # all move in time
    clock2 = _Clock()
    again = SimulatedExchange(seed=11, start=start, clock=clock2)
    clock2.t = 17.0
    b = again.stream_batch(tokens, codes)
    assert np.array_equal(b.depth_quantity.reshape(len(b), -1), books[17][:, :10])


def test_a_connection_gets_only_the_instruments_that_changed() -> None:
    """A frame per second holds the packets whose fields changed since the last one sent; the
    first (a subscribe) holds all; a forgotten token (re-subscribed) is sent in full again."""
    clock = _Clock()
    exchange = SimulatedExchange(seed=11, start=datetime(2026, 11, 17, 11, 0, 30, tzinfo=IST),
                                 clock=clock)
    modes = _full_options(exchange)
    changes = ChangedTicks()
    first = parse_frame(exchange_frame(exchange, modes, changes))
    assert sorted(first.instrument_token.tolist()) == sorted(modes)
    assert exchange_frame(exchange, modes, changes) == b""  # the same second: nothing changed
    sent = []
    for second in range(1, 20):
        clock.t = float(second)
        frame = exchange_frame(exchange, modes, changes)
        batch = parse_frame(frame) if frame else None
        sent.append(len(batch) if batch is not None else 0)
        if batch is not None:  # what is sent is the instrument's quote at that second, in full
            whole = exchange.stream_batch(batch.instrument_token,
                                          np.full(len(batch), MODE_FULL, dtype=np.int8))
            assert pack_frame(whole) == frame
    assert 0 < sum(sent) < 0.8 * len(modes) * len(sent)  # quiet strikes send nothing
    token = next(iter(modes))
    changes.forget([token])
    assert token in parse_frame(exchange_frame(exchange, modes, changes)).instrument_token
