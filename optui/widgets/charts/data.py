"""What the charts screen draws, assembled from the latest snapshot and the store.

No Textual here: `load_chart_data` runs in a thread worker and its result is handed to the
widgets, which keep what they were given (`ChartData`) so tests can check values, not pixels.
Times are the exchange's (the snapshot's); a store failure leaves that part empty and is named
in `ChartData.problems`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from optui.analytics.exposure import GexProfile, gex_profile, running_vwap
from optui.analytics.premium_flow import FLOW_BARS, FlowSeries
from optui.analytics.vol_history import IvStanding, iv_standing, realised_vol
from optui.errors import OptuiError
from optui.leg_rows import legs_where
from optui.models import LegRecord, Snapshot
from optui.storage.close_chain import CLOSE_LEGS_LOOKBACK, close_moment
from optui.storage.flow_queries import query_flow_series
from optui.storage.iv_history import day_time, iv_history
from optui.storage.records import LEGS, OVERVIEW
from optui.timeutil import IST


@dataclass
class Smile:
    """IV (percent) by strike: the out-of-the-money side (puts below the forward, calls above)."""

    strikes: list[float] = field(default_factory=list)
    ivs: list[float] = field(default_factory=list)


@dataclass
class ChartData:
    """Everything one charts screen shows for (index, bucket) at the snapshot's moment."""

    index: str
    bucket: str
    at: datetime | None = None
    spot: float = math.nan
    atm_strike: float = math.nan
    expiry: str = ""  # ISO date of the bucket's contract
    strikes: list[float] = field(default_factory=list)  # OI window around the money
    ce_oi: list[float] = field(default_factory=list)  # units
    pe_oi: list[float] = field(default_factory=list)
    ce_oi_change: list[float] = field(default_factory=list)
    pe_oi_change: list[float] = field(default_factory=list)
    smile: Smile = field(default_factory=Smile)
    prev_smile: Smile = field(default_factory=Smile)
    prev_smile_day: date | None = None
    times: list[datetime] = field(default_factory=list)  # day series, IST
    atm_iv: list[float] = field(default_factory=list)
    straddle: list[float] = field(default_factory=list)
    vwap_times: list[datetime] = field(default_factory=list)
    vwap_straddle: list[float] = field(default_factory=list)
    straddle_vwap: list[float] = field(default_factory=list)
    flow: FlowSeries | None = None
    heat_strikes: list[float] = field(default_factory=list)  # ascending
    heat_times: list[datetime] = field(default_factory=list)  # bar starts, IST
    heat_net_cr: list[list[float]] = field(default_factory=list)  # [strike][time], CE + PE net
    gex: GexProfile | None = None  # by strike over the snapshot's legs of the bucket
    chain_gex_cr: float = math.nan  # the quoted chain's net GEX (BucketStats.gex_cr)
    chain_oi_coverage: float = math.nan  # share of the chain's OI it includes
    standing: IvStanding | None = None
    current_iv: float = math.nan
    rv20: float = math.nan
    history_days: int = 0
    problems: list[str] = field(default_factory=list)


def oi_window(legs: list[LegRecord], atm: float, each_side: int) -> tuple[list[float], ...]:
    """(strikes, CE OI, PE OI, CE OI change, PE OI change) for `each_side` strikes either side
    of `atm`, strikes ascending; a side missing at a strike is NaN."""
    by: dict[float, dict[str, LegRecord]] = {}
    for leg in legs:
        by.setdefault(leg.strike, {})[leg.side] = leg
    strikes = sorted(by)
    if not strikes:
        return [], [], [], [], []
    centre = int(np.argmin(np.abs(np.asarray(strikes) - atm)))
    window = strikes[max(0, centre - each_side): centre + each_side + 1]

    def col(side: str, name: str) -> list[float]:
        return [float(getattr(by[k][side], name)) if side in by[k] else math.nan for k in window]

    return (window, col("CALL", "oi"), col("PUT", "oi"), col("CALL", "oi_change"),
            col("PUT", "oi_change"))


def otm_smile(strikes: list[float], sides: list[str], ivs: list[float], forward: float) -> Smile:
    """The smile from the out-of-the-money leg of each strike (puts below `forward`, calls at or
    above); NaN IVs are dropped."""
    pick: dict[float, float] = {}
    for k, side, iv in zip(strikes, sides, ivs, strict=True):
        want = "PUT" if k < forward else "CALL"
        if side == want and math.isfinite(iv):
            pick[k] = iv
    ordered = sorted(pick)
    return Smile(ordered, [pick[k] for k in ordered])


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def load_chart_data(store: Any, snapshot: Snapshot | None, index: str, bucket: str,
                    timeframe: str = "5m", each_side: int = 10) -> ChartData:
    """Assemble ChartData for (index, bucket) from `snapshot` and `store` (either may be None)."""
    data = ChartData(index, bucket)
    idx = snapshot.indices.get(index) if snapshot is not None else None
    if idx is None or snapshot is None:
        return data
    ov = idx.overview
    stats = ov.buckets.get(bucket)
    data.at = ov.timestamp
    data.spot = ov.last_price
    legs = list(legs_where(idx.legs, bucket=bucket))
    if stats is not None:
        data.atm_strike = stats.atm_strike
        data.current_iv = stats.atm_iv
        data.expiry = stats.expiry.isoformat()
        data.chain_gex_cr = stats.gex_cr
        data.chain_oi_coverage = stats.oi_coverage
        (data.strikes, data.ce_oi, data.pe_oi, data.ce_oi_change,
         data.pe_oi_change) = oi_window(legs, stats.atm_strike, each_side)
        data.smile = otm_smile([lg.strike for lg in legs], [lg.side for lg in legs],
                               [lg.iv for lg in legs], stats.forward)
    if legs:
        data.gex = gex_profile(
            [lg.strike for lg in legs], [lg.side == "CALL" for lg in legs],
            [lg.gamma for lg in legs], [lg.oi for lg in legs], [lg.iv for lg in legs],
            [lg.days_to_expiry / 365.0 for lg in legs], ov.last_price,
        )
    if store is None:
        return data
    day = ov.timestamp.astimezone(IST).date()
    parts = (
        ("IV history", lambda: _history(store, data, day)),
        ("day series", lambda: _day_series(store, data, day)),
        ("straddle VWAP", lambda: _straddle_vwap(store, data, day)),
        ("premium flow", lambda: _flow(store, data, timeframe)),
        ("flow by strike", lambda: _heatmap(store, data, day, timeframe)),
    )
    for name, load in parts:
        try:
            load()
        except OptuiError as exc:
            data.problems.append(f"{name}: {exc}")
    return data


def _history(store: Any, data: ChartData, day: date) -> None:
    closes = iv_history(store, data.index, data.bucket, day, days=400)
    ivs = [c.atm_iv for c in closes]
    data.history_days = sum(1 for v in ivs if math.isfinite(v))
    data.standing = iv_standing(data.current_iv, ivs)
    spots = [c.spot for c in closes]
    if math.isfinite(data.spot):
        spots.append(data.spot)  # today's close so far
    data.rv20 = realised_vol(spots)
    found = close_moment(store, data.index, data.bucket, day)
    if found is None or not data.expiry:
        return  # no close, or a backfilled one: no stored chain to draw a smile from
    last_day, at = found
    # The same contract, whichever bucket it sat in at that close (next week becomes this week).
    # Leg rows are stored once per interval_s (at the tick cadence the close's snapshot stores
    # only the overview), so the smile is the newest chain stored at or before the close.
    legs = store.query(LEGS, at - CLOSE_LEGS_LOOKBACK, at + timedelta(seconds=1),
                       {"index": data.index, "expiry": data.expiry}, fields=["strike", "iv"])
    if not legs:
        return
    newest = max(r.time for r in legs)
    legs = list({(r.fields.get("strike"), r.tags.get("side")): r
                 for r in legs if r.time == newest}.values())
    # Its forward then is that bucket's (on expiry eve the contract was next week's).
    fwd = _prev_forward(store, data, newest, legs[0].tags.get("bucket") or data.bucket)
    data.prev_smile = otm_smile([_num(r.fields.get("strike")) for r in legs],
                                [r.tags.get("side", "") for r in legs],
                                [_num(r.fields.get("iv")) for r in legs], fwd)
    data.prev_smile_day = last_day


def _prev_forward(store: Any, data: ChartData, at: datetime, bucket: str) -> float:
    rows = store.query(OVERVIEW, at, at + timedelta(seconds=1), {"index": data.index},
                       fields=[f"{bucket}_forward", "last_price"])
    if not rows:
        return data.atm_strike
    fwd = _num(rows[-1].fields.get(f"{bucket}_forward"))
    return fwd if math.isfinite(fwd) else _num(rows[-1].fields.get("last_price"))


def _day_series(store: Any, data: ChartData, day: date) -> None:
    assert data.at is not None
    iv_f, tp_f = f"{data.bucket}_atm_iv", f"{data.bucket}_TP"
    rows = store.query(OVERVIEW, day_time(day), data.at + timedelta(microseconds=1),
                       {"index": data.index}, fields=[iv_f, tp_f])
    for r in rows:
        data.times.append(r.time.astimezone(IST))
        data.atm_iv.append(_num(r.fields.get(iv_f)))
        data.straddle.append(_num(r.fields.get(tp_f)))


def straddle_volumes(strikes: list[float], volumes: list[float]) -> list[float]:
    """Volume traded between consecutive samples of the ATM straddle (call + put day volume):
    the increase while the ATM strike stays, NaN at the first sample and when the ATM strike
    changed (another contract's day volume is no increment)."""
    out: list[float] = []
    for i, (k, v) in enumerate(zip(strikes, volumes, strict=True)):
        if i == 0 or k != strikes[i - 1] or not math.isfinite(v + volumes[i - 1]):
            out.append(math.nan)
        else:
            out.append(max(v - volumes[i - 1], 0.0))
    return out


def _straddle_vwap(store: Any, data: ChartData, day: date) -> None:
    assert data.at is not None
    rows = store.query(LEGS, day_time(day), data.at + timedelta(microseconds=1),
                       {"index": data.index, "bucket": data.bucket, "strike_offset": "atm"},
                       fields=["strike", "last_price", "volume"])
    at: dict[datetime, dict[str, tuple[float, float, float]]] = {}
    for r in rows:
        at.setdefault(r.time, {})[r.tags.get("side", "")] = (
            _num(r.fields.get("strike")), _num(r.fields.get("last_price")),
            _num(r.fields.get("volume")))
    times, strikes, prices, volumes = [], [], [], []
    for t in sorted(at):
        legs = at[t]
        if "CALL" not in legs or "PUT" not in legs or legs["CALL"][0] != legs["PUT"][0]:
            continue
        times.append(t.astimezone(IST))
        strikes.append(legs["CALL"][0])
        prices.append(legs["CALL"][1] + legs["PUT"][1])
        volumes.append(legs["CALL"][2] + legs["PUT"][2])
    data.vwap_times = times
    data.vwap_straddle = prices
    data.straddle_vwap = [float(v) for v in running_vwap(prices, straddle_volumes(strikes, volumes))]


def _flow(store: Any, data: ChartData, timeframe: str) -> None:
    from optui.analytics.timeframes import timeframe_seconds

    assert data.at is not None
    end = data.at + timedelta(microseconds=1)
    start = end - timedelta(seconds=FLOW_BARS * timeframe_seconds(timeframe))
    data.flow = query_flow_series(store, data.index, timeframe, start, end)


def heat_matrix(rows: list[tuple[datetime, float, float]], every_s: int,
                bars: int = 40) -> tuple[list[float], list[datetime], list[list[float]]]:
    """(strikes ascending, bar starts, net[strike][bar]) from (minute, strike, net crore) rows:
    minutes summed into `every_s` bars (epoch-aligned; 1d bars are not offered), the last `bars`
    bars kept; a strike with no flow in a bar is 0."""
    sums: dict[tuple[int, float], float] = {}
    for at, strike, net in rows:
        start = int(at.timestamp()) // every_s * every_s
        sums[(start, strike)] = sums.get((start, strike), 0.0) + net
    starts = sorted({s for s, _ in sums})[-bars:]
    strikes = sorted({k for _, k in sums})
    matrix = [[sums.get((s, k), 0.0) for s in starts] for k in strikes]
    return strikes, [datetime.fromtimestamp(s, IST) for s in starts], matrix


def _heatmap(store: Any, data: ChartData, day: date, timeframe: str) -> None:
    from optui.analytics.timeframes import timeframe_seconds
    from optui.storage.strike_flow import STRIKE_FLOW

    assert data.at is not None
    if not data.expiry:
        return
    every = min(timeframe_seconds(timeframe), 3600)
    rows = store.query(STRIKE_FLOW, day_time(day), data.at + timedelta(microseconds=1),
                       {"index": data.index, "expiry": data.expiry})
    flat = []
    for r in rows:
        try:
            strike = float(r.tags.get("strike", ""))
        except ValueError:
            continue
        net = _num(r.fields.get("ce_net_cr")) + _num(r.fields.get("pe_net_cr"))
        if math.isfinite(net):
            flat.append((r.time, strike, net))
    data.heat_strikes, data.heat_times, data.heat_net_cr = heat_matrix(flat, every)
