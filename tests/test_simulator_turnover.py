"""The simulated exchange's NIFTY premium turnover against the real market's.

Real figures (see optui.simulator.chain's volume comment for the sources): NIFTY's nearest weekly
traded about 100 crore of premium a minute on an ordinary day (NSE's index options: about 45,000
crore a day, December 2024 - March 2025) and about 130-150 crore a minute on its expiry day (2 Sep
2025); 20 million call and 18.5 million put contracts 6 days before expiry (MARKET.md). The
simulated figures must land within 1.5x of them, and buyers and sellers must each take about
half of the traded premium (every trade has both; the aggressor is either).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from optui.simulator.chain import ChainDay, build_chain_day
from optui.simulator.exchange import _Listed
from optui.simulator.instruments import build_listings
from optui.simulator.market import INDEX_ORDER, SESSION_MINUTES, MarketModel

pytestmark = [pytest.mark.unit, pytest.mark.mock]

CRORE = 1e7
REAL_ORDINARY_CR_MIN = 100.0  # NIFTY's nearest weekly, an ordinary day
REAL_EXPIRY_CR_MIN = 140.0  # ... its expiry day
REAL_NIFTY_ALL_CR_MIN = 110.0  # every NIFTY expiry: NSE's ~45,000 crore a day, mostly NIFTY's
BAND = 1.5


def _chains(model: MarketModel, day: date, nearest_only: bool) -> list[ChainDay]:
    refs = {k: model.previous_close(k, day) for k in INDEX_ORDER}
    listed = _Listed(build_listings(day, refs))
    expiries = sorted(e for (k, e) in listed.groups if k == "NIFTY")
    out = []
    for expiry in expiries[:1] if nearest_only else expiries:
        options = [r for r in listed.groups[("NIFTY", expiry)] if r.instrument_type != "FUT"]
        if options:
            out.append(build_chain_day(model, "NIFTY", expiry, day, options))
    return out


def _per_minute_cr(chain: ChainDay) -> float:
    return float(chain.value[:, -1].sum()) / CRORE / SESSION_MINUTES


def _bought_share(chain: ChainDay) -> float:
    traded = np.diff(chain.value, axis=1)
    return float(traded[chain.side > 0].sum() / traded.sum())


def test_nearest_weekly_premium_turnover_through_a_week_is_within_the_real_band() -> None:
    model = MarketModel(7)
    # Wednesday 11 Nov 2026 (6 days to the Tuesday expiry) to the expiry day.
    days = [date(2026, 11, 11), date(2026, 11, 12), date(2026, 11, 13), date(2026, 11, 16),
            date(2026, 11, 17)]
    chains = {d: _chains(model, d, nearest_only=True)[0] for d in days}
    expiry_day = days[-1]
    assert chains[expiry_day].expiry == expiry_day
    for d, chain in chains.items():
        real = REAL_EXPIRY_CR_MIN if d == expiry_day else REAL_ORDINARY_CR_MIN
        got = _per_minute_cr(chain)
        assert real / BAND <= got <= real * BAND, (d, got)
        assert 0.45 <= _bought_share(chain) <= 0.55, d
    # The expiry day trades the most premium, as on NSE.
    assert _per_minute_cr(chains[expiry_day]) == max(_per_minute_cr(c) for c in chains.values())
    # Six days out: MARKET.md's contracts (lots) of the weekly.
    six = chains[days[0]]
    calls = float(six.lots[six.is_call, -1].sum())
    puts = float(six.lots[~six.is_call, -1].sum())
    assert 20e6 / 1.25 <= calls <= 20e6 * 1.25 and 18.5e6 / 1.25 <= puts <= 18.5e6 * 1.25


def test_every_nifty_expiry_together_is_within_the_real_band() -> None:
    chains = _chains(MarketModel(7), date(2026, 11, 13), nearest_only=False)
    total = sum(_per_minute_cr(c) for c in chains)
    nearest = _per_minute_cr(chains[0])
    assert REAL_NIFTY_ALL_CR_MIN / BAND <= total <= REAL_NIFTY_ALL_CR_MIN * BAND, total
    assert nearest > 0.6 * total  # the nearest weekly is the bulk of it
