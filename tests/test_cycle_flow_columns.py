"""The cycle's per-leg steps now done over columns give what the per-leg definitions gave:
reference OI (DayState.reference_oi_many), flow by strike (strike_flow) and per-trade flow
(per_trade), bit for bit, on a simulated chain with flow unknown here and there."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from optui.collectors.bucket_analytics import BucketResult
from optui.collectors.chain_plan import BucketPlan, plan_index
from optui.collectors.day_state import DayState
from optui.collectors.instruments import build_catalogs
from optui.collectors.sim_source import SimulatedSource
from optui.collectors.strike_flow import CRORE, EACH_SIDE, strike_flow
from optui.collectors.tick_flow import FlowTable, per_trade
from optui.models import BucketStats
from optui.timeutil import IST

AT = datetime(2026, 11, 25, 11, 0, tzinfo=IST)


def _bits(a: object) -> str:
    return repr(np.asarray(a, dtype=float).tolist())


def test_reference_oi_over_columns_equals_it_leg_by_leg() -> None:
    rng = np.random.default_rng(3)
    tokens = [int(t) for t in rng.integers(1, 60, size=400)]  # repeats, as two buckets share legs
    oi = rng.uniform(0, 1e5, size=400)
    oi[rng.random(400) < 0.1] = math.nan
    quoted = rng.random(400) < 0.8
    close = {t: (math.nan if t % 7 == 0 else float(t * 10)) for t in range(1, 60, 3)}
    first = {t: float(t) for t in range(2, 60, 5)}
    one, other = DayState(AT.date()), DayState(AT.date())
    one.oi_prev_close, other.oi_prev_close = dict(close), dict(close)
    one.oi_first, other.oi_first = dict(first), dict(first)
    got = one.reference_oi_many(tokens, oi, quoted)
    want = [other.reference_oi(t, o) if q else math.nan
            for t, o, q in zip(tokens, oi.tolist(), quoted.tolist(), strict=True)]
    assert _bits(got) == _bits(want)
    assert repr(list(one.oi_first.items())) == repr(list(other.oi_first.items()))  # NaN too


def _strike_flow_per_leg(plan: BucketPlan, res: BucketResult) -> dict[float, tuple[float, float]]:
    """strike_flow as first written: a dict of token -> strike and a Python step per leg."""
    strikes = plan.chain.strikes
    if strikes.size == 0 or not math.isfinite(res.stats.atm_strike):
        return {}
    centre = int(np.argmin(np.abs(strikes - res.stats.atm_strike)))
    window = strikes[max(0, centre - EACH_SIDE): centre + EACH_SIDE + 1]
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


def _per_trade_per_leg(res: BucketResult, flow: dict[int, tuple[float, float]]) -> None:
    hits = [(i, flow[t]) for i, t in enumerate(res.tokens.tolist()) if t in flow]
    if not hits:
        return
    rows = np.array([i for i, _ in hits], dtype=np.int64)
    values = np.array([v for _, v in hits], dtype=float)
    res.inflow = res.inflow.astype(float, copy=True)
    res.outflow = res.outflow.astype(float, copy=True)
    res.inflow[rows] = values[:, 0]
    res.outflow[rows] = values[:, 1]


def _result(plan: BucketPlan, rng: np.random.Generator, atm: float) -> BucketResult:
    cols = plan.chain.columns()
    pos = plan.positions()
    tokens = np.concatenate([cols.call_tokens[pos], cols.put_tokens[pos]])
    is_call = np.repeat([True, False], pos.size)
    quoted = rng.random(tokens.size) < 0.9
    inflow = rng.uniform(0, 5e6, tokens.size)
    outflow = rng.uniform(0, 5e6, tokens.size)
    inflow[rng.random(tokens.size) < 0.15] = math.nan
    outflow[rng.random(tokens.size) < 0.05] = math.nan
    stats = BucketStats(plan.bucket, plan.expiry, 5.0, atm, atm, 12.0, 12.0, 200.0, 1.0, 1.0,
                        atm, 0.0, 1.0, 1.0, 0.0, 0.0, int(pos.size))
    return BucketResult([], stats, tokens[quoted], inflow[quoted], outflow[quoted],
                        is_call[quoted], 0)


@pytest.mark.parametrize("seed", [1, 2])
def test_flow_by_strike_and_per_trade_equal_their_per_leg_definitions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    source = SimulatedSource(seed=7, start=AT, clock=lambda: 0.0)
    catalog = build_catalogs(source.instruments(), ["NIFTY"])["NIFTY"]
    spot = source.quotes(["NSE:NIFTY 50"])["NSE:NIFTY 50"].last_price
    plans = plan_index(catalog, spot, AT, 0, [-2, -1, 0, 1, 2], 2)
    assert len(plans) >= 3
    for plan in plans:
        atm = float(plan.strikes[plan.strikes.size // 2])
        res, ref = _result(plan, rng, atm), None
        ref = BucketResult([], res.stats, res.tokens, res.inflow, res.outflow, res.is_call, 0)
        got, want = strike_flow(plan, res), _strike_flow_per_leg(plan, ref)
        assert list(got) == list(want) and len(want) > 20
        assert all(_bits(got[k]) == _bits(want[k]) for k in want)
        # per-trade flow of some legs (and of tokens not in this bucket), NaN: not measured
        chosen = rng.choice(res.tokens, size=res.tokens.size // 2, replace=False).tolist()
        flow = {int(t): (float(rng.uniform(0, 1e6)), math.nan if t % 5 == 0 else 7.0)
                for t in chosen + [1, 2, 3]}
        per_trade(res, FlowTable.of(flow))
        _per_trade_per_leg(ref, flow)
        assert _bits(res.inflow) == _bits(ref.inflow) and _bits(res.outflow) == _bits(ref.outflow)
