"""The market rules over legs as columns raise exactly what the per-leg rules raised.

The oracle is the per-leg implementation (tests/reference_market_rules.py); both are fed the
same snapshots: several indices, an expiry in two buckets, OI jumping past the threshold and
back, OI unknown (NaN) now and then, legs leaving and coming back, volume falling as well as
rising, a moment repeated, the clock going back a few seconds and a new day.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

import numpy as np
from reference_market_rules import MarketRules as PerLegRules

from optui.alerts import Thresholds
from optui.alerts.market_rules import MarketRules
from optui.leg_rows import LegRows
from optui.models import (
    BucketStats,
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
)
from optui.timeutil import IST, UTC

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=IST).astimezone(UTC)
WEEK, MONTH = date(2026, 11, 26), date(2026, 12, 31)
STRIKES = [24400.0 + 25.0 * i for i in range(9)]  # spaced apart from the indices' steps
BUILDUPS = ["", "long_buildup", "short_buildup", "short_covering", "long_unwinding"]


def _leg(at: datetime, index: str, bucket: str, expiry: date, side: str, strike: float,
         oi: float, volume: int, buildup: str) -> LegRecord:
    return LegRecord(
        timestamp=at, index=index, bucket=bucket, side=side, expiry=expiry, atm_strike=24500.0,
        strike=strike, strike_offset="", last_price=100.0, average_price=100.0, volume=volume,
        oi=oi, oi_open=oi, oi_change=0.0, iv=12.0, days_to_expiry=5.0, ohlc_open=100.0,
        ohlc_high=100.0, ohlc_low=100.0, ohlc_close=100.0, net_change=0.0,
        net_change_percent=0.0, day_change=0.0, day_change_percent=0.0, buildup=buildup,
    )


def _snapshots(rng: np.random.Generator, count: int) -> list[Snapshot]:
    """A market of two indices, the monthly expiry also this week's on one of them."""
    books = {(ix, side, k): [float(rng.integers(2_000, 60_000)), 0]
             for ix in ("NIFTY", "BANKNIFTY") for side in ("CALL", "PUT") for k in STRIKES}
    at = T0
    out = []
    for n in range(count):
        step = rng.choice([5, 5, 5, 5, 1, 0, -3, 30])
        at = at + timedelta(seconds=int(step))
        if n == count * 3 // 4:
            at = at + timedelta(days=1)  # a new day: the windows start again
        indices = {}
        for ix in ("NIFTY", "BANKNIFTY"):
            legs = []
            buckets = [("this_week", WEEK), ("this_month", MONTH)] if ix == "NIFTY" else \
                [("this_week", MONTH), ("this_month", MONTH)]  # one expiry in two buckets
            for bucket, expiry in buckets:
                for side in ("CALL", "PUT"):
                    for k in STRIKES:
                        if rng.random() < 0.05:
                            continue  # not quoted this cycle
                        book = books[ix, side, k]
                        if bucket == "this_week" or ix == "NIFTY":
                            book[0] = max(0.0, book[0] * float(rng.choice([1.0, 1.01, 0.99, 1.3, 0.7])))
                            burst = 30 if (n // 12) % 9 == 4 else 1  # a busy minute now and then
                            book[1] += int(rng.integers(0, 400)) * burst * int(rng.choice([1, 1, 1, -1]))
                        oi = math.nan if rng.random() < 0.05 else book[0]
                        legs.append(_leg(at, ix, bucket, expiry, side, k, oi, max(book[1], 0),
                                         BUILDUPS[int(rng.integers(0, 5))]))
            stats = {b: BucketStats(b, e, 5.0, 24500.0, 24500.0, 12.0, 12.0, 200.0,
                                    float(rng.uniform(0.6, 1.4)), 1.0,
                                    float(rng.choice(STRIKES)), 0.0,
                                    float(rng.uniform(1e4, 4e5)), float(rng.uniform(1e4, 4e5)),
                                    0.0, 0.0, 9)
                     for b, e in buckets}
            if ix == "BANKNIFTY" and n % 7 == 0:
                del stats["this_month"]  # a bucket without statistics: its legs' share is 0
            ov = OverviewRecord(at, ix, 24500.0, 24510.0, 24400.0, 24600.0, 24380.0, 24450.0,
                                60.0, 0.25, 110.0, 0.45, 220.0, 0.9, stats,
                                FlowSummary(inflow_cr=float(rng.uniform(0, 3)),
                                            outflow_cr=float(rng.uniform(0, 3))))
            indices[ix] = IndexSnapshot(ix, ov, legs)
        out.append(Snapshot(at, "sim", indices))
    return out


def _as_columns(snap: Snapshot) -> Snapshot:
    """The snapshot with each index's legs held as columns, numbers in arrays, as the collector
    holds them (optui.leg_rows)."""
    indices = {}
    for key, idx in snap.indices.items():
        cols = LegRows.of(idx.legs).columns
        arrays = {name: np.asarray(col) if name in ("strike", "oi", "volume", "oi_change") else col
                  for name, col in cols.items()}
        indices[key] = IndexSnapshot(key, idx.overview, LegRows(arrays))
    return Snapshot(snap.timestamp, snap.source, indices)


def test_columns_raise_what_the_per_leg_rules_raised() -> None:
    """Over lists of LegRecords and over legs held as columns alike."""
    thresholds = Thresholds(window_min=4.0, oi_change_pct=20.0, volume_spike_pct=30.0,
                            single_flow_cr=2.5, oi_change_daily_avg_pct=50.0, pcr_shift=0.3,
                            max_pain_shift_steps=2.0, buildup_flip=True)
    columns, per_leg = MarketRules(thresholds), PerLegRules(thresholds)
    held = MarketRules(thresholds)
    raised = dict.fromkeys(("oi_change", "volume_spike", "max_pain_shift", "buildup_flip"), 0)
    for snap in _snapshots(np.random.default_rng(5), 420):
        want = per_leg.evaluate(snap)
        got = columns.evaluate(snap)
        assert [repr(a) for a in got] == [repr(a) for a in want], snap.timestamp
        got = held.evaluate(_as_columns(snap))
        assert [repr(a) for a in got] == [repr(a) for a in want], snap.timestamp
        for a in want:
            if a.rule in raised:
                raised[a.rule] += 1
    assert raised["oi_change"] > 50 and min(raised.values()) > 0  # the rules were exercised
