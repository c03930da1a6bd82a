"""A deterministic, hand-built Snapshot of all five indices, for snapshot tests and benchmarks.

Fixed times and values (no clock, no randomness), so a rendered dashboard is byte-for-byte stable
and every number on screen can be traced back to a field here.
"""

from __future__ import annotations

from datetime import date, datetime

from optui.indices import BASE_OFFSETS, INDEX_SPECS, offset_label
from optui.models import (
    BucketStats,
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
    SnapshotWarning,
    WarningKind,
)
from optui.timeutil import IST, UTC

SAMPLE_TIME = datetime(2026, 11, 26, 11, 30, 0, tzinfo=IST).astimezone(UTC)
"""A Thursday, mid-session."""

_SPOTS = {"NIFTY": 26012.35, "BANKNIFTY": 58875.6, "FINNIFTY": 27390.15,
          "MIDCPNIFTY": 13624.8, "SENSEX": 84950.2}
_EXPIRIES = {
    "this_week": date(2026, 12, 1), "next_week": date(2026, 12, 8),
    "this_month": date(2026, 12, 29), "next_month": date(2027, 1, 25),
}
_MONTHLY_ONLY = ("BANKNIFTY", "FINNIFTY", "MIDCPNIFTY")


def _buckets(key: str) -> list[str]:
    if key in _MONTHLY_ONLY:
        return ["this_month", "next_month"]
    return ["this_week", "next_week", "this_month", "next_month"]


def _leg(
    key: str, bucket: str, side: str, atm: float, step: int, off: int, n: int, tick: int
) -> LegRecord:
    strike = atm + off * step
    intrinsic = max(atm - strike, 0) if side == "CALL" else max(strike - atm, 0)
    price = round(intrinsic + 120.0 / (1 + abs(off)) + n % 50 + 0.05 * tick, 2)
    oi = 1_000_000.0 + 137_500.0 * (n % 7) + (250_000.0 if off == 0 else 0.0) + 75.0 * tick
    change = (n % 5 - 2) * 41_250.0 + 75.0 * tick
    # Price change against the previous close alternates in sign, and the buildup label follows
    # from the signs of price and OI change as the collector derives it.
    price_chg = 2.0 if n % 3 else -1.5
    if change == 0:
        buildup = ""
    elif change > 0:
        buildup = "long_buildup" if price_chg > 0 else "short_buildup"
    else:
        buildup = "short_covering" if price_chg > 0 else "long_unwinding"
    return LegRecord(
        timestamp=SAMPLE_TIME, index=key, bucket=bucket, side=side, expiry=_EXPIRIES[bucket],
        atm_strike=atm, strike=strike, strike_offset=offset_label(off), last_price=price,
        average_price=price * 0.98, volume=2_500_000 + 120_000 * n, oi=oi, oi_open=oi - change,
        oi_change=change, iv=11.5 + abs(off) * 0.6 + (0.8 if side == "PUT" else 0.0),
        days_to_expiry=(_EXPIRIES[bucket] - SAMPLE_TIME.astimezone(IST).date()).days + 0.17,
        ohlc_open=price - 3, ohlc_high=price + 9, ohlc_low=price - 11, ohlc_close=price - price_chg,
        net_change=price_chg, net_change_percent=round(price_chg / (price - price_chg) * 100, 2),
        day_change=3.0, day_change_percent=2.1,
        tradingsymbol=f"{key}{int(strike)}{'CE' if side == 'CALL' else 'PE'}",
        delta=(0.5 - 0.1 * off) if side == "CALL" else (-0.5 - 0.1 * off),
        buildup=buildup,
        flags="wide_spread" if n % 11 == 3 else "",
    )


_LOTS = {"NIFTY": 75, "BANKNIFTY": 35, "FINNIFTY": 65, "MIDCPNIFTY": 140, "SENSEX": 20}
"""Lot sizes as NSE and BSE set them for late 2025 contracts."""


def sample_snapshot(
    source: str = "sim", at: datetime = SAMPLE_TIME, strikes_each_side: int = 2, tick: int = 0
) -> Snapshot:
    """Five indices, every bucket, legs at +-`strikes_each_side` strikes around the ATM.

    The same arguments give the same snapshot; `tick` moves prices and OI a little, as one
    collection cycle later would.
    """
    offsets = list(BASE_OFFSETS) if strikes_each_side == 2 else list(
        range(-strikes_each_side, strikes_each_side + 1)
    )
    snap = Snapshot(timestamp=at, source=source, duration_s=0.42,
                    warnings=[SnapshotWarning(WarningKind.MISSING_QUOTES, "MIDCPNIFTY next_month",
                                              "2 strikes without a quote")])
    for i, (key, spot) in enumerate(_SPOTS.items()):
        step = INDEX_SPECS[key].step
        atm = float(round(spot / step) * step)
        close = round(spot * (1 - 0.004 * (i - 2)), 2)
        buckets: dict[str, BucketStats] = {}
        legs: list[LegRecord] = []
        n = 0
        for j, bucket in enumerate(_buckets(key)):
            buckets[bucket] = BucketStats(
                bucket=bucket, expiry=_EXPIRIES[bucket], days_to_expiry=0.17 + 7 * j,
                forward=spot + 5, atm_strike=atm, atm_iv=11.8 + i + 0.4 * j, iv_open=12.0 + i,
                straddle=round(180.0 + 35.0 * i + 60.0 * j, 2), pcr_oi=0.82 + 0.07 * i,
                pcr_volume=0.9, max_pain=atm - step * (i % 3), skew=1.2, ce_oi=4.1e7,
                pe_oi=3.6e7, ce_oi_change=2.1e6, pe_oi_change=-0.8e6, strikes=61,
            )
            for off in offsets:
                for side in ("CALL", "PUT"):
                    n += 1
                    legs.append(_leg(key, bucket, side, atm, step, off, n, tick))
        overview = OverviewRecord(
            timestamp=at, symbol=key, atm_strike=atm, last_price=round(spot + 0.35 * tick, 2), open=close + 10,
            high=spot + 80, low=spot - 95, close=close, net_change=round(spot - close, 2),
            net_change_percent=round((spot - close) / close * 100, 4), day_change=spot - close - 10,
            day_change_percent=0.1, day_width=175.0, day_width_percent=0.6, buckets=buckets,
            flow=FlowSummary(inflow_cr=12.5 + i, outflow_cr=10.25 + 2 * i, ce_inflow_cr=7.0,
                             ce_outflow_cr=5.0, pe_inflow_cr=5.5 + i, pe_outflow_cr=5.25 + 2 * i),
        )
        snap.indices[key] = IndexSnapshot(
            key, overview, legs, {bucket: _LOTS[key] for bucket in buckets}
        )
    return snap
