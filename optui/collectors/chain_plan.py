"""Which strikes to quote each cycle: a window of the chain around the money per expiry bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from optui.collectors.instruments import ExpiryChain, IndexCatalog, expiry_buckets, strike_spacing
from optui.indices import INDEX_SPECS


@dataclass(slots=True)
class BucketPlan:
    """The strikes of one index and bucket quoted this cycle, and the legs recorded from them."""

    index: str
    bucket: str
    chain: ExpiryChain
    strikes: np.ndarray  # quoted strikes, ascending
    spacing: float
    full_chain: bool  # record a leg for every quoted strike, not only the offsets

    @property
    def expiry(self) -> date:
        return self.chain.expiry

    def call_keys(self) -> list[str]:
        return [self.chain.calls[k].key for k in self.strikes]

    def put_keys(self) -> list[str]:
        return [self.chain.puts[k].key for k in self.strikes]


def window(strikes: np.ndarray, spot: float, each_side: int) -> np.ndarray:
    """The listed strikes nearest the spot: `each_side` below and above the nearest one."""
    if strikes.size == 0 or not np.isfinite(spot):
        return strikes[:0]
    centre = int(np.argmin(np.abs(strikes - spot)))
    lo = max(centre - each_side, 0)
    hi = min(centre + each_side + 1, strikes.size)
    return strikes[lo:hi]


def plan_index(
    catalog: IndexCatalog,
    spot: float,
    at: datetime,
    each_side: int,
    offsets: list[int],
    full_chain_expiries: int,
) -> list[BucketPlan]:
    """Plan the buckets of one index; the window always covers the recorded offsets."""
    spec = INDEX_SPECS[catalog.index]
    expiries = catalog.expiries(at)
    buckets = expiry_buckets(expiries, catalog.future_expiries)
    full = set(expiries[:full_chain_expiries])
    reach = max([abs(o) for o in offsets] + [0])
    plans: list[BucketPlan] = []
    for bucket, expiry in buckets.items():
        chain = catalog.chains[expiry]
        spacing = strike_spacing(chain.strikes, spot, spec.step)
        if expiry in full:
            strikes = chain.strikes
        else:
            strikes = window(chain.strikes, spot, max(each_side, reach))
        plans.append(BucketPlan(catalog.index, bucket, chain, strikes, spacing, expiry in full))
    return plans
