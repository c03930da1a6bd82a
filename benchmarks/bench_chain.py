"""Full-chain analytics speed: about 20,000 options through IV, greeks, aggregates, flow, buildup
and quality flags, against a naive per-option Python loop measured in the same run.

Goal (design card): the whole chain in <= 50 ms, so a collector cycling every few seconds spends
its time waiting on the exchange, not on maths. Run: `python benchmarks/bench_chain.py`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from optui.analytics.black_scholes import (
    black76_greeks,
    black76_price,
    implied_volatility_black76,
)
from optui.analytics.buildup import classify_buildup
from optui.analytics.chain import chain_aggregates_batch, pad_chains
from optui.analytics.premium_flow import flow_totals, leg_flow
from optui.analytics.quality import discounted_intrinsic, quality_flags

GOAL_MS = 50.0
RATE = 0.065
# (index, spot, step, expiries, strikes in the nearest expiry); later expiries list 10 fewer
# strikes each, as real far expiries do. About 20,000 options, calls and puts.
INDICES = (
    ("NIFTY", 24078.3, 50.0, 15, 320),
    ("SENSEX", 79000.0, 100.0, 15, 320),
    ("BANKNIFTY", 53500.0, 100.0, 6, 280),
    ("FINNIFTY", 25600.0, 50.0, 3, 200),
    ("MIDCPNIFTY", 12800.0, 25.0, 3, 200),
)


@dataclass
class Chain:
    """A synthetic full chain laid out leg by leg, with per-expiry slices of the call rows."""

    index_id: np.ndarray
    forward: np.ndarray
    strike: np.ndarray
    t_years: np.ndarray
    is_call: np.ndarray
    price: np.ndarray
    prev: dict[str, np.ndarray]
    now: dict[str, np.ndarray]
    # (spot, step, call_rows, put_rows) per expiry; rows index the leg arrays.
    expiries: list[tuple[float, float, np.ndarray, np.ndarray]]

    @property
    def size(self) -> int:
        return int(self.strike.size)


def build_chain(seed: int = 7) -> Chain:
    """Prices on a skewed smile, two quotes per leg a minute apart, book, OI and volume."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("idx", "f", "k", "t", "call")}
    expiries: list[tuple[float, float, np.ndarray, np.ndarray]] = []
    row = 0
    for index_id, (_, spot, step, n_exp, n_near) in enumerate(INDICES):
        atm = round(spot / step) * step
        for e in range(n_exp):
            n_strikes = n_near - 10 * e
            strikes = atm + step * (np.arange(n_strikes) - n_strikes // 2)
            t = (2.0 + 7.0 * e) / 365.0
            fwd = spot * math.exp(RATE * t)
            for is_call in (True, False):
                cols["idx"].append(np.full(n_strikes, index_id))
                cols["f"].append(np.full(n_strikes, fwd))
                cols["k"].append(strikes)
                cols["t"].append(np.full(n_strikes, t))
                cols["call"].append(np.full(n_strikes, is_call))
            calls = np.arange(row, row + n_strikes)
            expiries.append((spot, step, calls, calls + n_strikes))
            row += 2 * n_strikes
    idx, f, k, t = (np.concatenate(cols[c]) for c in ("idx", "f", "k", "t"))
    call = np.concatenate(cols["call"])
    m = np.log(k / f) / np.sqrt(t)
    vol = 0.10 + 0.25 * m * m - 0.08 * m  # steeper on the put wing, as in MARKET.md
    price = np.maximum(np.round(black76_price(f, k, t, vol, RATE, call) / 0.05) * 0.05, 0.05)
    n = k.size
    volume0 = rng.integers(0, 2_000_000, n).astype(float)
    volume1 = volume0 + rng.integers(0, 20_000, n) * (rng.random(n) < 0.7)
    avg0 = price * (1 + rng.normal(0, 0.02, n))
    trade = price * (1 + rng.normal(0, 0.01, n))
    avg1 = np.where(volume1 > 0, (avg0 * volume0 + trade * (volume1 - volume0)) / volume1, avg0)
    half = np.maximum(0.05, np.round(price * 0.005 / 0.05) * 0.05)
    oi0 = rng.integers(0, 5_000_000, n).astype(float)
    prev = {
        "value": avg0 * volume0, "volume": volume0, "mid": price, "last": price, "oi": oi0,
    }
    last1 = np.maximum(trade, 0.05)
    now = {
        "value": avg1 * volume1, "volume": volume1, "last": last1,
        "bid": np.where(rng.random(n) < 0.03, 0.0, last1 - half), "ask": last1 + half,
        "oi": oi0 + rng.integers(-50_000, 50_000, n), "age": rng.exponential(60.0, n),
        "volume_day": volume1,
    }
    return Chain(idx, f, k, t, call, price, prev, now, expiries)


def vectorised(chain: Chain) -> dict[str, float]:
    """Run the whole pipeline once; return per-stage milliseconds."""
    stages: dict[str, float] = {}
    t0 = time.perf_counter()
    iv = implied_volatility_black76(
        chain.now["last"], chain.forward, chain.strike, chain.t_years, RATE, chain.is_call
    )
    t1 = time.perf_counter()
    black76_greeks(chain.forward, chain.strike, chain.t_years, iv, RATE, chain.is_call)
    t2 = time.perf_counter()
    iv_pct = iv * 100.0
    oi_change = chain.now["oi"] - chain.prev["oi"]
    # One (expiries x strikes) gather per field; -1 marks padding past a short expiry's strikes.
    call_idx = pad_chains([c for _, _, c, _ in chain.expiries], fill=-1).astype(np.intp)
    put_idx = pad_chains([p for _, _, _, p in chain.expiries], fill=-1).astype(np.intp)
    pad = call_idx < 0

    def block(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.where(pad, np.nan, values[idx])

    calls, puts = call_idx, put_idx
    chain_aggregates_batch(
        np.array([s for s, _, _, _ in chain.expiries]), block(chain.strike, calls),
        block(chain.now["last"], calls), block(chain.now["last"], puts),
        block(chain.now["oi"], calls), block(chain.now["oi"], puts),
        block(chain.now["volume"], calls), block(chain.now["volume"], puts),
        block(iv_pct, calls), block(iv_pct, puts), block(oi_change, calls),
        block(oi_change, puts), np.array([st for _, st, _, _ in chain.expiries]), 2,
    )
    t3 = time.perf_counter()
    inflow, outflow = leg_flow(
        chain.prev["value"], chain.prev["volume"], chain.prev["mid"], chain.prev["last"],
        chain.now["value"], chain.now["volume"], chain.now["last"],
    )
    for index_id in range(len(INDICES)):
        sel = chain.index_id == index_id
        flow_totals(inflow[sel], outflow[sel], chain.is_call[sel])
    t4 = time.perf_counter()
    classify_buildup(chain.now["last"] - chain.prev["last"], oi_change)
    t5 = time.perf_counter()
    intrinsic = discounted_intrinsic(
        chain.forward, chain.strike, chain.t_years, RATE, chain.is_call
    )
    quality_flags(
        chain.now["age"], chain.now["bid"], chain.now["ask"], chain.now["last"], intrinsic, 0.05
    )
    t6 = time.perf_counter()
    for name, a, b in (("iv", t0, t1), ("greeks", t1, t2), ("aggregates", t2, t3),
                       ("flow", t3, t4), ("buildup", t4, t5), ("quality", t5, t6)):
        stages[name] = (b - a) * 1e3
    stages["total"] = (t6 - t0) * 1e3
    return stages


# --- naive per-option baseline -----------------------------------------------------------------


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _b76(f: float, k: float, t: float, v: float, r: float, call: bool) -> float:
    sd = v * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    df = math.exp(-r * t)
    if call:
        return df * (f * _ncdf(d1) - k * _ncdf(d2))
    return df * (k * _ncdf(-d2) - f * _ncdf(-d1))


def _naive_iv(chain: Chain, i: int) -> float:
    f, k, t = float(chain.forward[i]), float(chain.strike[i]), float(chain.t_years[i])
    call, price = bool(chain.is_call[i]), float(chain.now["last"][i])
    try:
        return brentq(lambda v: _b76(f, k, t, v, RATE, call) - price, 1e-4, 5.0, xtol=1e-8)
    except ValueError:
        return float("nan")


def _naive_greeks(chain: Chain, i: int, iv: float) -> tuple[float, ...]:
    f, k, t = float(chain.forward[i]), float(chain.strike[i]), float(chain.t_years[i])
    call = bool(chain.is_call[i])
    if iv != iv:
        return (math.nan,) * 4
    sd = iv * math.sqrt(t)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    df = math.exp(-RATE * t)
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi)
    delta = df * (_ncdf(d1) if call else _ncdf(d1) - 1.0)
    gamma = df * pdf / (f * sd)
    vega = df * f * pdf * math.sqrt(t) / 100.0
    theta = (-df * f * pdf * iv / (2 * math.sqrt(t)) + RATE * _b76(f, k, t, iv, RATE, call)) / 365
    return delta, gamma, vega, theta


def _naive_flow(chain: Chain, i: int) -> tuple[float, float]:
    dvol = chain.now["volume"][i] - chain.prev["volume"][i]
    dval = chain.now["value"][i] - chain.prev["value"][i]
    if not dvol > 0:
        return 0.0, 0.0
    traded = max(dval, 0.0)
    price, mid = dval / dvol, chain.prev["mid"][i]
    slack = 0.005 * (chain.now["volume"][i] + chain.prev["volume"][i]) / dvol
    last, prev_last = chain.now["last"][i], chain.prev["last"][i]
    if price > mid + slack or (abs(price - mid) <= slack and last > mid):
        return traded, 0.0
    if price < mid - slack or (abs(price - mid) <= slack and last < mid):
        return 0.0, traded
    return (0.0, traded) if last < prev_last else (traded, 0.0)


def _naive_buildup(chain: Chain, i: int) -> str:
    dp = chain.now["last"][i] - chain.prev["last"][i]
    doi = chain.now["oi"][i] - chain.prev["oi"][i]
    if dp > 0 and doi > 0:
        return "long_buildup"
    if dp < 0 and doi > 0:
        return "short_buildup"
    if dp > 0 and doi < 0:
        return "short_covering"
    if dp < 0 and doi < 0:
        return "long_unwinding"
    return ""


def _naive_quality(chain: Chain, i: int) -> str:
    f, k, t = float(chain.forward[i]), float(chain.strike[i]), float(chain.t_years[i])
    payoff = f - k if chain.is_call[i] else k - f
    intrinsic = math.exp(-RATE * t) * max(payoff, 0.0)
    bid, ask, last = chain.now["bid"][i], chain.now["ask"][i], chain.now["last"][i]
    flags = []
    if chain.now["age"][i] > 300:
        flags.append("stale")
    if not bid > 0:
        flags.append("no_bid")
    if not ask > 0:
        flags.append("no_ask")
    if bid > 0 and ask > 0 and bid > ask:
        flags.append("crossed")
    if last > 0 and last < intrinsic - 0.05:
        flags.append("below_intrinsic")
    if bid > 0 and ask > 0 and bid <= ask and (ask - bid) / ((ask + bid) / 2) * 100 > 10:
        flags.append("wide_spread")
    if not last > 0:
        flags.append("no_price")
    return ",".join(flags)


def _naive_aggregates(chain: Chain, e: int) -> tuple[float, ...]:
    spot, _, c, p = chain.expiries[e]
    strikes = chain.strike[c].tolist()
    call_oi, put_oi = chain.now["oi"][c].tolist(), chain.now["oi"][p].tolist()
    atm = min(strikes, key=lambda k: (abs(k - spot), k))
    best, pain = math.inf, math.nan
    for s in strikes:
        pay = 0.0
        for k, co, po in zip(strikes, call_oi, put_oi, strict=True):
            pay += co * max(s - k, 0.0) + po * max(k - s, 0.0)
        if pay < best:
            best, pain = pay, s
    ce, pe = sum(call_oi), sum(put_oi)
    return atm, pain, pe / ce, sum(chain.now["volume"][p].tolist())


def naive_ms(chain: Chain, sample: int) -> dict[str, float]:
    """Per-option loops on `sample` legs (and per-chain loops on a few chains), scaled up."""
    rows = [int(i) for i in np.linspace(0, chain.size - 1, sample).astype(int)]
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    ivs = [_naive_iv(chain, i) for i in rows]
    t1 = time.perf_counter()
    for i, iv in zip(rows, ivs, strict=True):
        _naive_greeks(chain, i, iv)
    t2 = time.perf_counter()
    out["iv"], out["greeks"] = t1 - t0, t2 - t1
    for name, fn in (("flow", _naive_flow), ("buildup", _naive_buildup),
                     ("quality", _naive_quality)):
        start = time.perf_counter()
        for i in rows:
            fn(chain, i)
        out[name] = time.perf_counter() - start
    scale = chain.size / sample * 1e3
    out = {name: secs * scale for name, secs in out.items()}
    picks = range(0, len(chain.expiries), max(1, len(chain.expiries) // 6))
    start = time.perf_counter()
    for e in picks:
        _naive_aggregates(chain, e)
    out["aggregates"] = (time.perf_counter() - start) / len(picks) * len(chain.expiries) * 1e3
    out["total"] = sum(out.values())
    return out


def _median(fn: Callable[[], dict[str, float]], runs: int) -> dict[str, float]:
    results = [fn() for _ in range(runs)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main(runs: int = 9, sample: int = 400) -> dict[str, float]:
    chain = build_chain()
    vectorised(chain)  # warm caches and imports
    fast = _median(lambda: vectorised(chain), runs)
    slow = naive_ms(chain, sample)
    print(f"options: {chain.size:,} in {len(chain.expiries)} expiries of {len(INDICES)} indices; "
          f"vectorised: median of {runs} runs; naive: per-option Python loops (brentq IV, scalar "
          f"greeks) on {sample} sampled legs, scaled to the chain")
    print(f"  {'stage':<11} {'vectorised':>12} {'naive':>12} {'ratio':>8}")
    results: dict[str, float] = {"options": float(chain.size), "goal_ms": GOAL_MS}
    for name in ("iv", "greeks", "aggregates", "flow", "buildup", "quality", "total"):
        ratio = slow[name] / fast[name]
        print(f"  {name:<11} {fast[name]:9.2f} ms {slow[name]:9.1f} ms {ratio:7.0f}x")
        results[f"{name}_ms"] = fast[name]
        results[f"naive_{name}_ms"] = slow[name]
        results[f"{name}_speedup"] = ratio
    verdict = "met" if fast["total"] <= GOAL_MS else "MISSED"
    print(f"full chain: {fast['total']:.2f} ms for {chain.size:,} options "
          f"(goal <= {GOAL_MS:.0f} ms: {verdict})")
    return results


if __name__ == "__main__":
    main()
