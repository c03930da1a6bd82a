"""Premium flow by strike for one cycle, around the money, for the strike-by-time heatmap.

Uses the per-instrument flow `analyse_bucket` already measured (last trade against the
prevailing mid, rupees). Bounded: only `EACH_SIDE` strikes either side of the bucket's ATM and
only the first `EXPIRIES` expiries of an index are kept.
"""

from __future__ import annotations

import math

import numpy as np

from optui.collectors.bucket_analytics import BucketResult
from optui.collectors.chain_plan import BucketPlan

EACH_SIDE = 15
EXPIRIES = 2
CRORE = 1e7


def strike_flow(plan: BucketPlan, res: BucketResult,
                 each_side: int = EACH_SIDE) -> dict[float, tuple[float, float]]:
    """{strike: (CE net, PE net)} in rupees crore this cycle (inflow - outflow) for the strikes
    within `each_side` listed strikes of the bucket's ATM; a side with unknown flow (no usable
    previous quote) counts as 0 when the other side is known, a strike with neither is left out.
    Strikes in the order the result's legs first name them (its calls, then its puts).

    Over the result's legs as columns (numpy): each side of a strike sums its legs in leg order
    from 0.0 (`np.add.at`), as adding them one by one does, so the figures are the same bits."""
    strikes = plan.chain.strikes
    if strikes.size == 0 or not math.isfinite(res.stats.atm_strike):
        return {}
    centre = int(np.argmin(np.abs(strikes - res.stats.atm_strike)))
    window = strikes[max(0, centre - each_side): centre + each_side + 1]
    lo, hi = float(window[0]), float(window[-1])
    listed, listed_strike = _token_strikes(plan)
    tokens = np.asarray(res.tokens, dtype=np.int64)
    if tokens.size == 0 or listed.size == 0:
        return {}
    # The last of equal tokens (a put listed with its call's token), as a dict built calls
    # then puts would map it.
    at = np.maximum(np.searchsorted(listed, tokens, side="right") - 1, 0)
    found = listed[at] == tokens
    k = listed_strike[at]
    inflow = np.asarray(res.inflow, dtype=float)
    outflow = np.asarray(res.outflow, dtype=float)
    with np.errstate(invalid="ignore"):
        use = found & (lo <= k) & (k <= hi) & np.isfinite(inflow) & np.isfinite(outflow)
    rows = np.flatnonzero(use)
    if not rows.size:
        return {}
    ks = k[rows]
    order, first = np.unique(ks, return_index=True)  # the distinct strikes, ascending
    slot = np.searchsorted(order, ks)
    sums = np.zeros((order.size, 2))
    side = np.where(np.asarray(res.is_call, dtype=bool)[rows], 0, 1)
    np.add.at(sums, (slot, side), (inflow[rows] - outflow[rows]) / CRORE)
    seen = np.argsort(first, kind="stable")  # first named first
    return {float(order[j]): (float(sums[j, 0]), float(sums[j, 1])) for j in seen.tolist()}


def _token_strikes(plan: BucketPlan) -> tuple[np.ndarray, np.ndarray]:
    """The instrument tokens of the chain's listed strikes (calls, then puts), sorted stably,
    and the strike each is listed at."""
    chain = plan.chain
    cols = chain.columns()
    tokens = np.concatenate([cols.call_tokens, cols.put_tokens])
    strikes = np.concatenate([chain.strikes, chain.strikes]).astype(float)
    order = np.argsort(tokens, kind="stable")
    return tokens[order], strikes[order]
