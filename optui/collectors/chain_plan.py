"""Which strikes to quote each cycle: every listed strike of each expiry bucket, or a window.

PCR, max pain and OI totals describe an expiry's whole chain, so by default every listed strike
is quoted (BANKNIFTY's monthly is some 214 instruments, far under one quote call's 500). A
positive `each_side` limits quoting to that many strikes either side of the money, for sources
with a tight request budget; the aggregates then report how much of the chain's OI they cover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np

from optui.collectors.instruments import ExpiryChain, IndexCatalog, expiry_buckets, strike_spacing
from optui.indices import INDEX_SPECS


@dataclass(slots=True)
class BucketPlan:
    """The strikes of one index and bucket quoted this cycle, and the legs recorded from them."""

    index: str
    bucket: str
    chain: ExpiryChain
    strikes: np.ndarray  # quoted strikes, ascending (every listed strike unless windowed)
    spacing: float
    full_chain: bool  # record a leg for every quoted strike, not only the offsets

    @property
    def expiry(self) -> date:
        return self.chain.expiry

    _pos: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _every: bool = field(default=False, init=False, repr=False, compare=False)

    def positions(self) -> np.ndarray:
        """Where each quoted strike sits in the chain's listed strikes (intp, found once per
        plan: do not modify it); KeyError for a strike the chain does not list."""
        pos = self._pos
        if pos is None:
            pos = self._pos = self._find_positions()
            self._every = bool(pos.size == self.chain.strikes.size
                               and np.array_equal(pos, np.arange(pos.size)))
        return pos

    def _find_positions(self) -> np.ndarray:
        listed, strikes = self.chain.strikes, self.strikes
        if listed.size:
            pos = np.minimum(np.searchsorted(listed, strikes), listed.size - 1)
            if np.array_equal(listed[pos], strikes):
                return pos
        index = {float(k): i for i, k in enumerate(listed)}  # unsorted, or a strike not listed
        return np.array([index[float(k)] for k in strikes], dtype=np.intp)

    def pick(self, per_listed: list[Any]) -> list[Any]:
        """The items of a list with one item per listed strike (ChainColumns), at the quoted
        strikes, in their order (a new list)."""
        pos = self.positions()
        if self._every:  # every listed strike, in order (a whole chain)
            return list(per_listed)
        return [per_listed[i] for i in pos.tolist()]

    def call_keys(self) -> list[str]:
        return self.pick(self.chain.columns().call_keys)

    def put_keys(self) -> list[str]:
        return self.pick(self.chain.columns().put_keys)


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
    """Plan the buckets of one index: the whole chain of each, or `each_side` strikes around spot.

    `each_side` <= 0 quotes every listed strike; a window always covers the recorded offsets.
    The strike spacing is measured near `spot`.
    """
    spec = INDEX_SPECS[catalog.index]
    expiries = catalog.expiries(at)
    buckets = expiry_buckets(expiries, catalog.future_expiries)
    full = set(expiries[:full_chain_expiries])
    reach = max([abs(o) for o in offsets] + [0])
    plans: list[BucketPlan] = []
    for bucket, expiry in buckets.items():
        chain = catalog.chains[expiry]
        spacing = strike_spacing(chain.strikes, spot, spec.step)
        if expiry in full or each_side <= 0:
            strikes = chain.strikes
        else:
            strikes = window(chain.strikes, spot, max(each_side, reach))
        plans.append(BucketPlan(catalog.index, bucket, chain, strikes, spacing, expiry in full))
    return plans


def quote_batches(groups: list[list[str]], limit: int) -> list[list[str]]:
    """Pack groups of quote keys (one expiry's chain each) into calls of at most `limit` keys.

    First-fit decreasing, so an expiry's chain is quoted in one call (one market moment) whenever
    it fits; a group larger than `limit` is split into full calls first. Keys keep their order
    within a group; duplicates across groups are quoted once.
    """
    global _LAST_BATCHES
    last = _LAST_BATCHES
    if last is not None and last[1] == limit and last[0] == groups:  # the plan of the last cycle
        return [list(batch) for batch in last[2]]
    batches = _pack(groups, limit)
    _LAST_BATCHES = ([list(g) for g in groups], limit, [list(batch) for batch in batches])
    return batches


_LAST_BATCHES: tuple[list[list[str]], int, list[list[str]]] | None = None
"""The last groups `quote_batches` packed, and their batches: a cycle quotes what the one before
did until the plan changes."""


def _pack(groups: list[list[str]], limit: int) -> list[list[str]]:
    seen: set[str] = set()
    pieces: list[list[str]] = []
    for group in groups:
        fresh = [k for k in dict.fromkeys(group) if k not in seen]
        seen.update(fresh)
        while len(fresh) > limit:
            pieces.append(fresh[:limit])
            fresh = fresh[limit:]
        if fresh:
            pieces.append(fresh)
    batches: list[list[str]] = []
    for piece in sorted(pieces, key=len, reverse=True):
        for batch in batches:
            if len(batch) + len(piece) <= limit:
                batch.extend(piece)
                break
        else:
            batches.append(list(piece))
    return batches
