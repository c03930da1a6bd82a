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
    previous quote) counts as 0 when the other side is known, a strike with neither is left out."""
    strikes = plan.chain.strikes
    if strikes.size == 0 or not math.isfinite(res.stats.atm_strike):
        return {}
    centre = int(np.argmin(np.abs(strikes - res.stats.atm_strike)))
    window = strikes[max(0, centre - each_side): centre + each_side + 1]
    lo, hi = float(window[0]), float(window[-1])
    token_strike = {inst.instrument_token: k for k, inst in plan.chain.calls.items()}
    token_strike.update({inst.instrument_token: k for k, inst in plan.chain.puts.items()})
    out: dict[float, list[float]] = {}
    for tok, i_, o_, call in zip(res.tokens, res.inflow, res.outflow, res.is_call, strict=True):
        k = token_strike.get(int(tok))
        if k is None or not lo <= k <= hi or not (math.isfinite(i_) and math.isfinite(o_)):
            continue
        sides = out.setdefault(float(k), [0.0, 0.0])
        sides[0 if call else 1] += (float(i_) - float(o_)) / CRORE
    return {k: (v[0], v[1]) for k, v in out.items()}
