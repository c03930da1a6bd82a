"""Index and expiry buckets per cycle: quotes in, leg records and chain statistics out.

This is the glue between the pure analytics and the records: it takes the cycle's quotes as
columns (optui.collectors.quote_table), stacks the legs of every bucket of every index, calls
the vectorised functions once over all of them (sums stay per bucket) and builds typed
records, the legs as columns (optui.leg_rows.LegRows).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import chain, repeat
from typing import Any

import numpy as np

from optui.analytics.black_scholes import black76_greeks
from optui.analytics.buildup import classify_buildup
from optui.analytics.chain import ChainAggregates, chain_aggregates_batch
from optui.analytics.exposure import CRORE, gamma_exposure
from optui.analytics.forward import synthetic_forward
from optui.analytics.implied_vol import IV_BAD_INPUT, IV_OK, solve_black76
from optui.analytics.premium_flow import leg_flow, prevailing_mid
from optui.analytics.quality import NO_IV, flag_names, quality_mask
from optui.collectors.chain_plan import BucketPlan
from optui.collectors.day_state import DayState, PrevQuote
from optui.collectors.quote_table import QuoteTable
from optui.config import AnalyticsSettings
from optui.indices import offset_label
from optui.leg_rows import LEG_FIELDS, LegRows
from optui.models import BucketStats, LegRecord, Quote
from optui.timeutil import IST, MARKET_OPEN, UTC, years_to_expiry

NAN = float("nan")


@dataclass(slots=True)
class BucketResult:
    """What one bucket produced: records, statistics and per-instrument flow (rupees).

    `tokens`, `inflow`, `outflow` and `is_call` cover the instruments that quoted this cycle.
    """

    legs: Sequence[LegRecord]
    """The recorded legs (a LegRows over `columns` from `analyse_buckets`)."""
    stats: BucketStats
    tokens: np.ndarray
    inflow: np.ndarray  # rupees per leg since the previous quote; NaN where there was none
    outflow: np.ndarray
    is_call: np.ndarray
    missing: int  # planned strikes with at least one side the source returned no quote for
    prev_at_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per quoted instrument, the time of its previous quote in the cycle's frozen view (epoch
    seconds, NaN when there was none), usable or not."""

    @property
    def columns(self) -> dict[str, Any]:
        """The recorded legs as columns, by LegRecord field name, in `legs` order (arrays or
        lists holding the values the LegRecords hold): what the store writes."""
        legs = self.legs
        return (legs if isinstance(legs, LegRows) else LegRows.of(legs)).columns


def _pct(change: float, base: float) -> float:
    return change / base * 100.0 if base and math.isfinite(base) else NAN


def session_open(at: datetime) -> bool:
    """Whether `at` (the exchange clock) is at or after 09:15 IST: the day's prices can anchor."""
    return at.astimezone(IST).time() >= MARKET_OPEN


def traded_today(quote: Quote | None, at: datetime) -> bool:
    """Whether the instrument has traded in today's session, judged from the quote alone.

    Before its first trade Kite sends ohlc open/high/low of 0 (NaN once parsed), a day volume
    of 0 and the previous session's last trade time; any of these says "not yet".
    """
    if quote is None or not session_open(at):
        return False
    if not (math.isfinite(quote.open) and quote.open > 0 and quote.volume > 0):
        return False
    if quote.last_trade_time is not None:
        return quote.last_trade_time.astimezone(IST).date() == at.astimezone(IST).date()
    return True


def _last_known_oi(token: int, prev: Mapping[int, PrevQuote], state: DayState,
                   before_s: float = math.inf) -> float:
    """An instrument's latest OI seen this day before `before_s` (epoch seconds, the cycle's
    moment) or at the previous close, NaN if never seen.

    A previous quote stamped at or after the cycle's moment is not known then: a rerun over the
    same minutes (a restart's day state holds the first run's later quotes, a replay jumped
    back) would otherwise count OI the live run had not yet seen, and store another coverage.
    """
    p = prev.get(token)
    if p is not None and math.isfinite(p.oi) and p.at_s < before_s:
        return p.oi
    return state.oi_prev_close.get(token, NAN)


def oi_coverage(quoted_oi: np.ndarray, unquoted_oi: np.ndarray) -> float:
    """Share of a chain's open interest the aggregates include, 0..1.

    `quoted_oi` holds the OI of the instruments quoted this cycle; `unquoted_oi` the last known
    OI of each listed instrument that did not quote (NaN when never seen, then estimated as the
    mean OI of the quoted instruments). 1.0 when nothing is missing; NaN when no OI is known.
    """
    if unquoted_oi.size == 0:
        return 1.0
    quoted = quoted_oi[np.isfinite(quoted_oi)]
    mean = float(quoted.mean()) if quoted.size else NAN
    missing = np.where(np.isfinite(unquoted_oi), unquoted_oi, mean)
    total = float(quoted.sum() + missing.sum())
    return float(quoted.sum()) / total if total > 0 else NAN


def traded_mask(quotes: dict[str, np.ndarray], at: datetime) -> np.ndarray:
    """`traded_today` of every row of QuoteTable columns (`QuoteTable.take`) at once."""
    has = quotes["has"]
    if not session_open(at):
        return np.zeros(has.shape, dtype=bool)
    open_, volume, day = quotes["open"], quotes["volume"], quotes["last_trade_day"]
    with np.errstate(invalid="ignore"):
        ok = has & np.isfinite(open_) & (open_ > 0) & (volume > 0)
        return ok & (np.isnan(day) | (day == at.astimezone(IST).date().toordinal()))


def _pct_of(change: np.ndarray, base: np.ndarray) -> np.ndarray:
    """`_pct` element by element: change / base * 100, NaN where base is 0 or not finite."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((base != 0) & np.isfinite(base), change / base * 100.0, NAN)


NO_LEGS = LegRows({name: [] for name in LEG_FIELDS})
"""No legs (a result's until its legs are set)."""

_NO_PREV = PrevQuote(NAN, NAN, NAN, NAN, NAN, NAN)  # read where a leg has no previous quote


def prev_columns(view: Mapping[int, PrevQuote], tokens: list[int]) -> np.ndarray:
    """The previous quote of each token as rows (value, volume, mid, last, oi, at_s), float64
    (len(tokens) x 6), NaN where `view` holds none; read in C (a PrevQuote is a tuple of the
    six), not by a Python call per leg."""
    n = len(tokens)
    return np.fromiter(chain.from_iterable(map(view.get, tokens, repeat(_NO_PREV, n))),
                       dtype=float, count=6 * n).reshape(n, 6)


@lru_cache(maxsize=1024)
def _offset_label(offset: int) -> str:
    return offset_label(offset)


def _isclose(values: np.ndarray, target: float) -> np.ndarray:
    """`np.isclose(values, target)` (rtol 1e-5, atol 1e-8) for finite values and target,
    without its general-purpose overhead."""
    if not math.isfinite(target):
        return np.isclose(values, target)
    with np.errstate(invalid="ignore"):
        return np.abs(values - target) <= 1e-8 + 1e-5 * abs(target)


def analyse_bucket(
    plan: BucketPlan,
    quotes: QuoteTable | Mapping[str, Quote],
    spot: float,
    at: datetime,
    cfg: AnalyticsSettings,
    offsets: list[int],
    state: DayState,
    prev_quotes: Mapping[int, PrevQuote] | None = None,
    max_gap_s: float = float("inf"),
) -> BucketResult:
    """Compute IV, greeks, flow, buildup, quality and aggregates for one bucket's quoted chain
    (`analyse_buckets` of one bucket)."""
    return analyse_buckets([(plan, spot)], quotes, at, cfg, offsets, state, prev_quotes,
                           max_gap_s)[0]


@dataclass(slots=True)
class _Bucket:
    """Where one bucket sits in the cycle's stacked legs, and its per-expiry scalars."""

    plan: BucketPlan
    spot: float
    start: int  # first leg (its calls, then its puts: 2 * n legs)
    n: int
    t: float = 0.0
    forward: float = NAN
    model_fwd: float = NAN
    tick: float = 0.05

    @property
    def calls(self) -> slice:
        return slice(self.start, self.start + self.n)

    @property
    def puts(self) -> slice:
        return slice(self.start + self.n, self.start + 2 * self.n)

    @property
    def legs(self) -> slice:
        return slice(self.start, self.start + 2 * self.n)


def analyse_buckets(
    jobs: Sequence[tuple[BucketPlan, float]],
    quotes: QuoteTable | Mapping[str, Quote],
    at: datetime,
    cfg: AnalyticsSettings,
    offsets: list[int],
    state: DayState,
    prev_quotes: Mapping[int, PrevQuote] | None = None,
    max_gap_s: float = float("inf"),
    prev_later: list[PrevUpdate] | None = None,
) -> list[BucketResult]:
    """IV, greeks, flow, buildup, quality and aggregates of every (plan, spot of its index) in
    `jobs`, in one vectorised pass over all their legs; one BucketResult per job, in order.

    `quotes` holds the cycle's quotes as columns (a QuoteTable holding the plans' keys; a
    mapping of key to Quote is converted). Every planned strike stays in the arrays whether or
    not its quotes arrived (a missing side is NaN), so the ATM strike is the listed strike
    nearest the spot, never moved by a missing quote; a missing leg is still recorded, flagged
    `no_price`. Previous quotes are read from `prev_quotes` (default `state.prev`) before any is
    replaced by this cycle's: two buckets on one expiry both compare with the last cycle, not
    with each other. A previous quote older than `max_gap_s` gives no flow (what traded during
    an outage cannot be classified). Day anchors (the opening ATM IV, day change) are taken only
    from 09:15 IST on the exchange clock `at` and from legs that have traded today; OI change
    keeps the previous close's OI as its reference. The day state is updated as analysing the
    buckets one by one in order would: reference OI, the opening IVs and the previous quotes.

    Each figure is the same elementwise arithmetic per leg as a bucket analysed alone, and each
    sum is taken over one bucket's legs, so a bucket's results do not depend on its companions.

    With `prev_later` the previous quotes are not replaced here: a PrevUpdate is appended to it,
    whose `apply(state)` replaces them as this call would have (before the next cycle reads
    them), so a collector shows the cycle before it pays for that bookkeeping.
    """
    buckets: list[_Bucket] = []
    call_tokens, put_tokens, keys, symbols = [], [], [], []
    start = 0
    for plan, spot in jobs:
        chain_cols = plan.chain.columns()
        pos = plan.positions()
        n = pos.size
        tick = float(chain_cols.call_ticks[pos[0]]) if n else 0.05
        buckets.append(_Bucket(plan, spot, start, n, tick=tick))
        keys += plan.pick(chain_cols.call_keys)
        keys += plan.pick(chain_cols.put_keys)
        symbols += plan.pick(chain_cols.call_symbols)
        symbols += plan.pick(chain_cols.put_symbols)
        call_tokens.append(chain_cols.call_tokens[pos])
        put_tokens.append(chain_cols.put_tokens[pos])
        start += 2 * n
    total = start
    tokens = np.concatenate([x for c, p in zip(call_tokens, put_tokens, strict=True)
                             for x in (c, p)]) if buckets else np.zeros(0, np.int64)
    k2 = np.concatenate([b.plan.strikes for b in buckets for _side in (0, 1)]) if buckets \
        else np.zeros(0)
    is_call = np.zeros(total, dtype=bool)
    for b in buckets:
        is_call[b.calls] = True

    table = quotes if isinstance(quotes, QuoteTable) else QuoteTable.from_quotes(keys, quotes)
    q = table.take(table.rows(keys))
    has_quote = q["has"]
    r, q_div = cfg.rate, cfg.dividend_yield
    opened = session_open(at)

    # Each bucket's legs stacked: calls then puts; a missing quote is NaN (no book: 0).
    last = q["last_price"]
    bid = q["bid"]
    ask = q["ask"]
    mid = prevailing_mid(bid, ask, last)
    volume = q["volume"]
    avg = q["average_price"]
    oi = q["oi"]
    open_ = q["open"]
    high = q["high"]
    low = q["low"]
    close = q["close"]
    traded = traded_mask(q, at)

    for b in buckets:
        b.t = years_to_expiry(b.plan.expiry, at)
        b.forward = synthetic_forward(b.plan.strikes, mid[b.calls], mid[b.puts], b.t, r, b.spot)
        # Black-Scholes on spot is Black-76 on the carry forward S*e^{(r-q)T}: one solver serves both.
        b.model_fwd = (b.forward if cfg.iv_model == "black76"
                       else b.spot * math.exp((r - q_div) * b.t))
    # Each bucket's scalars on each of its legs.
    per_bucket = [2 * b.n for b in buckets]
    t_leg = np.repeat(np.array([b.t for b in buckets], dtype=float), per_bucket)
    fwd_leg = np.repeat(np.array([b.forward for b in buckets], dtype=float), per_bucket)  # parity
    model_leg = np.repeat(np.array([b.model_fwd for b in buckets], dtype=float), per_bucket)
    disc_leg = np.repeat(np.array([math.exp(-r * b.t) for b in buckets], dtype=float), per_bucket)
    tick_leg = np.repeat(np.array([b.tick or 0.05 for b in buckets], dtype=float), per_bucket)

    iv, iv_code = solve_black76(last, model_leg, k2, t_leg, r, is_call)
    g = black76_greeks(model_leg, k2, t_leg, np.nan_to_num(iv, nan=0.0), r, is_call)
    has_iv = np.isfinite(iv)
    delta = np.where(has_iv, g.delta, NAN)
    gamma = np.where(has_iv, g.gamma, NAN)
    theta = np.where(has_iv, g.theta, NAN)
    vega = np.where(has_iv, g.vega, NAN)

    tok_list = tokens.tolist()
    ref_oi = state.reference_oi_many(tok_list, oi, has_quote)
    view = state.prev if prev_quotes is None else prev_quotes
    now_s = at.timestamp()
    # The previous quote of each leg as (value, volume, mid, last, oi, at_s); NaN where none.
    seen = prev_columns(view, tok_list)
    prev_at = seen[:, 5]
    # A previous quote from the same or a later moment (a restart re-collecting earlier
    # minutes) is no "previous": it gives neither flow nor a snapshot OI change.
    with np.errstate(invalid="ignore"):
        earlier = has_quote & (prev_at < now_s)
        prev_oi = np.where(earlier, seen[:, 4], oi)
        has_prev = earlier & (now_s - prev_at <= max_gap_s)
    oi_chg = oi - ref_oi
    buildup = classify_buildup(last - close, oi_chg)

    value = avg * volume
    inflow, outflow = leg_flow(
        np.where(has_prev, seen[:, 0], NAN),
        np.where(has_prev, seen[:, 1], NAN),
        np.where(has_prev, seen[:, 2], NAN),
        np.where(has_prev, seen[:, 3], NAN),
        value, volume, last, mid=mid,
    )
    # Without a usable previous quote a leg's flow is unknown (NaN), not zero.
    inflow = np.where(has_prev, inflow, NAN)
    outflow = np.where(has_prev, outflow, NAN)

    intrinsic = np.where(is_call, np.maximum(fwd_leg - k2, 0.0), np.maximum(k2 - fwd_leg, 0.0)) * disc_leg
    mask = quality_mask(q["age_s"], bid, ask, last, intrinsic, tick_leg, cfg.stale_after_s,
                        cfg.wide_spread_pct)
    # A leg without an IV is flagged (a missing price already says no_price), never silent.
    mask |= np.where((iv_code != IV_OK) & (iv_code != IV_BAD_INPUT), NO_IV, 0)
    flags = flag_names(mask)
    iv_pct = iv * 100.0
    aggs = _aggregates(buckets, last, oi, volume, iv_pct, oi_chg, cfg.skew_steps)
    # Day change against today's open: none before 09:15 IST or before the leg's first trade.
    day_change = np.where(opened, last - open_, NAN)

    out: list[BucketResult] = []
    chosen: list[np.ndarray] = []
    labels: list[str] = []
    for b, agg in zip(buckets, aggs, strict=True):
        stats, picked, offs = _bucket_stats(b, agg, at, cfg, offsets, state, view, tokens,
                                            has_quote, last, oi, traded, opened, gamma)
        chosen.append(b.start + picked)
        named = list(map(_offset_label, offs))
        labels += chain.from_iterable(zip(named, named, strict=True))  # its call, then its put
        quoted = b.start + np.flatnonzero(has_quote[b.legs])
        missing = int((~(has_quote[b.calls] & has_quote[b.puts])).sum())
        out.append(BucketResult(NO_LEGS, stats, tokens[quoted], inflow[quoted], outflow[quoted],
                                is_call[quoted], missing, prev_at[quoted]))

    # Legs: each bucket's chosen strikes ascending, each strike's call then its put.
    sel_parts = [np.column_stack([c, c + b.n]).ravel() for b, c in zip(buckets, chosen, strict=True)]
    sel = np.concatenate(sel_parts) if sel_parts else np.zeros(0, dtype=np.intp)
    counts = [part.size for part in sel_parts]
    owner = np.repeat(np.arange(len(buckets)), counts)
    m = sel.size

    def each(value: Callable[[_Bucket], Any]) -> list[Any]:  # one value per leg of a bucket
        return list(chain.from_iterable(repeat(value(b), count)
                                        for b, count in zip(buckets, counts, strict=True)))

    net = (last - close)[sel]
    legs_close = close[sel]
    legs_open = open_[sel]
    legs_day = day_change[sel]
    stamp = at.astimezone(UTC)
    columns: dict[str, Any] = {
        "timestamp": [stamp] * m,
        "index": each(lambda b: b.plan.index),
        "bucket": each(lambda b: b.plan.bucket),
        "side": ["CALL", "PUT"] * (m // 2),
        "expiry": each(lambda b: b.plan.expiry),
        "atm_strike": np.array([aggs[i].atm_strike for i in range(len(buckets))])[owner]
        if m else np.zeros(0),
        "strike": k2[sel],
        "strike_offset": labels,
        "last_price": last[sel],
        "average_price": avg[sel],
        "volume": np.where(has_quote[sel], volume[sel], 0.0).astype(np.int64),
        "oi": oi[sel],
        "oi_open": ref_oi[sel],
        "oi_change": oi_chg[sel],
        "iv": iv_pct[sel],
        "days_to_expiry": (t_leg * 365.0)[sel],
        "ohlc_open": legs_open,
        "ohlc_high": high[sel],
        "ohlc_low": low[sel],
        "ohlc_close": legs_close,
        "net_change": net,
        "net_change_percent": _pct_of(net, legs_close),
        "day_change": legs_day,
        "day_change_percent": _pct_of(legs_day, legs_open),
        "tradingsymbol": list(map(symbols.__getitem__, sel.tolist())),
        "instrument_token": tokens[sel],
        "bid": bid[sel],
        "ask": ask[sel],
        "delta": delta[sel],
        "gamma": gamma[sel],
        "theta": theta[sel],
        "vega": vega[sel],
        "oi_change_snapshot": (oi - prev_oi)[sel],
        "buildup": buildup[sel],
        "flags": flags[sel],
    }
    records = LegRows(columns)  # a LegRecord is built only where a row is read
    first = 0
    for res, count in zip(out, counts, strict=True):
        res.legs = records[first:first + count]
        first += count

    quoted_at = np.flatnonzero(has_quote)
    update = PrevUpdate(tokens[quoted_at], value[quoted_at], volume[quoted_at], mid[quoted_at],
                        last[quoted_at], oi[quoted_at], now_s)
    if prev_later is None:
        update.apply(state)
    else:
        prev_later.append(update)
    return out


@dataclass(slots=True)
class PrevUpdate:
    """One cycle's quotes that become the previous quotes of its legs (DayState.prev): the
    quoted legs' tokens and their value, volume, mid, last and OI columns, at `at_s` (epoch
    seconds of the cycle's moment)."""

    tokens: np.ndarray
    value: np.ndarray
    volume: np.ndarray
    mid: np.ndarray
    last: np.ndarray
    oi: np.ndarray
    at_s: float

    def apply(self, state: DayState) -> None:
        """Replace the tokens' previous quotes in `state.prev`."""
        state.prev.update(zip(self.tokens.tolist(), PrevQuote.of(zip(
            self.value.tolist(), self.volume.tolist(), self.mid.tolist(), self.last.tolist(),
            self.oi.tolist(), repeat(self.at_s, self.tokens.size), strict=True,
        )), strict=True))


def _aggregates(buckets: list[_Bucket], last: np.ndarray, oi: np.ndarray, volume: np.ndarray,
                iv_pct: np.ndarray, oi_chg: np.ndarray, skew_steps: int) -> list[ChainAggregates]:
    """`chain_aggregates` of every bucket in one batch, chains padded with NaN strikes (a padded
    chain's figures equal the chain's alone: optui.analytics.chain)."""
    if not buckets:
        return []
    width = max(b.n for b in buckets)
    # Where each chain's strikes sit among the legs (its calls; its puts are n further), -1
    # where a shorter chain is padded: one gather per field fills every row.
    at = np.full((len(buckets), width), -1, dtype=np.intp)
    for i, b in enumerate(buckets):
        at[i, : b.n] = np.arange(b.start, b.start + b.n)
    padded = at < 0
    put_at = np.where(padded, -1, at + np.array([b.n for b in buckets])[:, None])

    def rows(values: np.ndarray, side: str) -> np.ndarray:
        block = values[put_at if side == "puts" else at]
        block[padded] = NAN
        return block

    strikes = np.full((len(buckets), width), NAN)
    for i, b in enumerate(buckets):
        strikes[i, : b.n] = b.plan.strikes
    return chain_aggregates_batch(
        np.array([b.spot for b in buckets], dtype=float), strikes,
        rows(last, "calls"), rows(last, "puts"), rows(oi, "calls"), rows(oi, "puts"),
        rows(volume, "calls"), rows(volume, "puts"), rows(iv_pct, "calls"), rows(iv_pct, "puts"),
        rows(oi_chg, "calls"), rows(oi_chg, "puts"),
        np.array([b.plan.spacing for b in buckets], dtype=float), skew_steps,
    )


def _strikes_at(strikes: np.ndarray, wanted: list[float]) -> list[int]:
    """The position of each wanted strike among `strikes` (the last of equal ones), -1 where
    it is not listed: exact float equality, as a dict of strike -> position answers."""
    if strikes.size > 1 and not bool((strikes[1:] > strikes[:-1]).all()):
        index_of = {float(k): i for i, k in enumerate(strikes)}  # unsorted: as a dict
        return [index_of.get(k, -1) for k in wanted]
    want = np.asarray(wanted, dtype=float)
    if not strikes.size:
        return [-1] * want.size
    at = np.minimum(np.searchsorted(strikes, want), strikes.size - 1)
    return np.where(strikes[at] == want, at, -1).tolist()


def _chain_gex_cr(gamma: np.ndarray, oi: np.ndarray, n: int, spot: float) -> float:
    """Net gamma exposure (₹ crore per 1 % move, calls + and puts −) of a bucket's legs, calls
    first then puts (`n` each); Kite's OI is in units. NaN when no leg has both gamma and OI."""
    per = gamma_exposure(gamma, oi, 1.0, spot) / CRORE
    known = np.isfinite(per)
    if not known.any():
        return NAN
    sign = np.where(np.arange(per.size) < n, 1.0, -1.0)
    return float(np.sum(np.where(known, per * sign, 0.0)))


def _bucket_stats(b: _Bucket, agg: ChainAggregates, at: datetime, cfg: AnalyticsSettings,
                  offsets: list[int], state: DayState, view: Mapping[int, PrevQuote],
                  tokens: np.ndarray, has_quote: np.ndarray, last: np.ndarray, oi: np.ndarray,
                  traded: np.ndarray, opened: bool,
                  gamma: np.ndarray) -> tuple[BucketStats, np.ndarray, list[int]]:
    """One bucket's statistics and flags, and the strikes (positions in the plan) and offsets of
    the legs it records."""
    plan, n = b.plan, b.n
    strikes = plan.strikes
    legs = b.legs
    b_has, b_last, b_traded = has_quote[legs], last[legs], traded[legs]
    atm = agg.atm_strike
    atm_at = np.flatnonzero(strikes == atm)
    atm_legs = np.array([atm_at[0], atm_at[0] + n]) if atm_at.size else np.array([], dtype=int)
    with np.errstate(invalid="ignore"):
        atm_priced = bool(atm_legs.size) and bool(np.all(np.isfinite(b_last[atm_legs]) & (b_last[atm_legs] > 0)))
    atm_traded = bool(atm_legs.size) and bool(np.all(b_traded[atm_legs]))
    # The skew's wings: the put `skew_steps` strikes below ATM, the call as far above.
    wing = cfg.skew_steps * plan.spacing
    wings = np.concatenate([n + np.flatnonzero(_isclose(strikes, atm - wing)),
                            np.flatnonzero(_isclose(strikes, atm + wing))])
    wings_traded = bool(np.all(b_traded[wings] | ~b_has[wings]))

    # Coverage: quoted OI against the last known OI of every listed instrument that did not quote.
    listed = plan.chain.strikes
    unquoted_tokens = tokens[legs][~b_has].tolist()
    if listed.size != n:
        chain_cols = plan.chain.columns()
        outside = np.flatnonzero(~np.isin(listed, strikes))
        unquoted_tokens += np.column_stack([chain_cols.call_tokens[outside],
                                            chain_cols.put_tokens[outside]]).ravel().tolist()
    now_s = at.timestamp()
    known = np.array([_last_known_oi(tok, view, state, now_s) for tok in unquoted_tokens], dtype=float)
    coverage = oi_coverage(oi[legs][b_has], known)
    bucket_flags = [
        name for name, bad in (
            ("no_price", not atm_priced),
            ("not_traded", (atm_priced and not atm_traded) or not wings_traded),
            ("partial_chain", bool(unquoted_tokens)),
        ) if bad
    ]
    # The day's opening ATM IV: only once the session is open and both ATM legs traded today.
    anchor = agg.atm_iv if opened and atm_priced and atm_traded else NAN
    stats = BucketStats(
        bucket=plan.bucket, expiry=plan.expiry, days_to_expiry=b.t * 365.0,
        forward=float(b.forward), atm_strike=atm, atm_iv=agg.atm_iv,
        iv_open=state.first_iv(f"{plan.index}/{plan.bucket}/{plan.expiry}", anchor, at.timestamp()),
        straddle=agg.straddle, pcr_oi=agg.pcr_oi, pcr_volume=agg.pcr_volume, max_pain=agg.max_pain,
        skew=agg.skew, ce_oi=agg.ce_oi, pe_oi=agg.pe_oi, ce_oi_change=agg.ce_oi_change,
        pe_oi_change=agg.pe_oi_change, strikes=int((b_has[:n] & b_has[n:]).sum()),
        listed_strikes=int(listed.size), oi_coverage=coverage, flags=",".join(bucket_flags),
        gex_cr=_chain_gex_cr(gamma[legs], oi[legs], n, b.spot),
    )
    # Legs: the configured offsets around ATM, or every quoted strike in full-chain mode.
    if plan.full_chain:
        picked = np.argsort(strikes, kind="stable")
        offs = np.rint((strikes[picked] - atm) / plan.spacing).astype(np.int64).tolist()
    else:
        wanted = sorted({atm + o * plan.spacing: o for o in offsets}.items())
        found = _strikes_at(strikes, [float(k) for k, _ in wanted])
        picked = np.array([i for i in found if i >= 0], dtype=np.intp)
        offs = [o for i, (_, o) in zip(found, wanted, strict=True) if i >= 0]
    return stats, picked, offs
