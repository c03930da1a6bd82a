"""The simulator's array-based quote state: ticks packed from arrays equal GET /quote's dicts."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from optui.simulator.exchange import SimulatedExchange
from optui.simulator.quote_state import interp_rows
from optui.simulator.ticker import exchange_frame, quotes_to_batch
from optui.tick_packets import MODE_FULL, MODE_LTP, MODE_QUOTE, pack_frame
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
