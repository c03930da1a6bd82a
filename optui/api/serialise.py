"""The API's JSON shapes, built from the same records the app shows (pure functions, no I/O).

Conventions of every response: times are ISO 8601 in IST with the offset (`+05:30`), dates
`YYYY-MM-DD`; NaN and ±Inf become null (unknown, never zero); money is in ₹ crore in fields whose
name ends `_cr`; IV and percentages in percent (`_pct`, `atm_iv_pct`); OI, volume and OI
changes in contracts' units as Kite reports them; strikes and prices in index points / rupees.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from optui.alerts.model import Alert
from optui.analytics.positions import oi_change_pct
from optui.analytics.premium_flow import FlowBar, FlowSeries, sentiment_of
from optui.indices import BUCKETS, INDEX_KEYS
from optui.leg_rows import legs_where
from optui.models import (
    BucketStats,
    FlowSummary,
    IndexSnapshot,
    LegRecord,
    OverviewRecord,
    Snapshot,
)
from optui.timeutil import IST

TIMEZONE = "IST (+05:30)"
"""Said in responses: the zone every timestamp is written in."""

MONEY_UNIT = "INR crore"


def iso(at: datetime | date | None) -> str | None:
    """An aware datetime as ISO 8601 in IST (+05:30); a date as YYYY-MM-DD; None stays None."""
    if at is None:
        return None
    if isinstance(at, datetime):
        return at.astimezone(IST).isoformat()
    return at.isoformat()


def num(value: Any) -> Any:
    """A JSON-safe number: NaN and ±Inf as None, numpy scalars as Python numbers."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):
        return num(value.item())
    return value


def flags(text: str) -> list[str]:
    """A comma list of quality flags as a JSON list ([] when clean)."""
    return [f for f in text.split(",") if f] if text else []


def ordered_buckets(overview: OverviewRecord) -> list[str]:
    """The index's expiry buckets in the standard order (monthly-only indices have two)."""
    names = [b for b in BUCKETS if b in overview.buckets]
    return names + [b for b in overview.buckets if b not in names]


def ordered_indices(snapshot: Snapshot) -> list[str]:
    """The snapshot's indices in the standard order."""
    keys = [k for k in INDEX_KEYS if k in snapshot.indices]
    return keys + [k for k in snapshot.indices if k not in keys]


def bucket_json(overview: OverviewRecord, b: BucketStats) -> dict[str, Any]:
    """One expiry bucket's aggregates. `atm_strike` is the bucket's own (its straddle's strike)
    when known, else the index's, as the dashboard's overview shows it."""
    atm = b.atm_strike if b.atm_strike == b.atm_strike else overview.atm_strike
    return {
        "bucket": b.bucket,
        "expiry": iso(b.expiry),
        "days_to_expiry": num(b.days_to_expiry),
        "spot": num(overview.last_price),
        "forward": num(b.forward),
        "atm_strike": num(atm),
        "atm_iv_pct": num(b.atm_iv),
        "iv_open_pct": num(b.iv_open),
        "iv_day_change_pts": num(b.iv_day_change),
        "pcr_oi": num(b.pcr_oi),
        "pcr_volume": num(b.pcr_volume),
        "max_pain": num(b.max_pain),
        "straddle": num(b.straddle),
        "skew_vol_pts": num(b.skew),
        "ce_oi": num(b.ce_oi),
        "pe_oi": num(b.pe_oi),
        "ce_oi_change": num(b.ce_oi_change),
        "pe_oi_change": num(b.pe_oi_change),
        "strikes": b.strikes,
        "listed_strikes": b.listed_strikes,
        "oi_coverage": num(b.oi_coverage),
        "flags": flags(b.flags),
    }


def flow_summary_json(flow: FlowSummary) -> dict[str, Any]:
    """This cycle's premium flow of one index (₹ crore); all null when it was not measured."""
    measured = flow.measured

    def cr(value: float) -> Any:
        return num(value) if measured else None

    return {
        "measured": measured,
        "since": iso(flow.since) if measured else None,
        "buying_cr": cr(flow.inflow_cr),
        "selling_cr": cr(flow.outflow_cr),
        "net_cr": cr(flow.net_cr),
        "ce_buying_cr": cr(flow.ce_inflow_cr),
        "ce_selling_cr": cr(flow.ce_outflow_cr),
        "pe_buying_cr": cr(flow.pe_inflow_cr),
        "pe_selling_cr": cr(flow.pe_outflow_cr),
        "bullish_cr": cr(flow.bullish_cr),
        "buying_pressure": cr(flow.buying_pressure),
        "pressure_ratio": cr(flow.pressure_ratio),
        "sentiment": sentiment_of(flow.inflow_cr, flow.outflow_cr) if measured else None,
        "unit": MONEY_UNIT,
    }


def index_head(key: str, overview: OverviewRecord) -> dict[str, Any]:
    """An index's level and changes."""
    return {
        "index": key,
        "spot": num(overview.last_price),
        "atm_strike": num(overview.atm_strike),
        "open": num(overview.open),
        "high": num(overview.high),
        "low": num(overview.low),
        "prev_close": num(overview.close),
        "net_change": num(overview.net_change),
        "net_change_pct": num(overview.net_change_percent),
        "day_change": num(overview.day_change),
        "day_change_pct": num(overview.day_change_percent),
        "day_width": num(overview.day_width),
        "day_width_pct": num(overview.day_width_percent),
        "as_of": iso(overview.timestamp),
    }


def index_detail(key: str, snap: IndexSnapshot) -> dict[str, Any]:
    """An index with every expiry bucket's aggregates and this cycle's premium flow."""
    ov = snap.overview
    out = index_head(key, ov)
    out["buckets"] = {name: bucket_json(ov, ov.buckets[name]) for name in ordered_buckets(ov)}
    out["lot_sizes"] = dict(snap.lot_sizes)
    out["flow"] = flow_summary_json(ov.flow)
    return out


def index_summary(key: str, snap: IndexSnapshot) -> dict[str, Any]:
    """An index with its nearest expiry bucket (as the overview table shows without a
    selection) and the names of all its buckets."""
    ov = snap.overview
    out = index_head(key, ov)
    names = ordered_buckets(ov)
    out["buckets"] = names
    out["nearest"] = bucket_json(ov, ov.buckets[names[0]]) if names else None
    return out


def leg_json(leg: LegRecord) -> dict[str, Any]:
    """One option leg: quote, OI and its changes, IV (percent), greeks, buildup, quality flags.
    Theta is rupees per calendar day, vega rupees per volatility point."""
    return {
        "tradingsymbol": leg.tradingsymbol,
        "instrument_token": leg.instrument_token,
        "side": leg.side,
        "strike": num(leg.strike),
        "strike_offset": leg.strike_offset,
        "expiry": iso(leg.expiry),
        "last_price": num(leg.last_price),
        "bid": num(leg.bid),
        "ask": num(leg.ask),
        "average_price": num(leg.average_price),
        "volume": leg.volume,
        "oi": num(leg.oi),
        "oi_open": num(leg.oi_open),
        "oi_change": num(leg.oi_change),
        "oi_change_pct": num(oi_change_pct(leg)),
        "oi_change_snapshot": num(leg.oi_change_snapshot),
        "iv_pct": num(leg.iv),
        "delta": num(leg.delta),
        "gamma": num(leg.gamma),
        "theta": num(leg.theta),
        "vega": num(leg.vega),
        "net_change": num(leg.net_change),
        "net_change_pct": num(leg.net_change_percent),
        "buildup": leg.buildup or None,
        "flags": flags(leg.flags),
    }


def chain_json(key: str, snap: IndexSnapshot, bucket: str) -> dict[str, Any]:
    """Every leg of one index and bucket, as rows by strike with the call and the put."""
    ov = snap.overview
    rows: dict[float, dict[str, Any]] = {}
    for leg in legs_where(snap.legs, bucket=bucket):
        row = rows.setdefault(leg.strike, {"strike": num(leg.strike), "call": None, "put": None})
        row["call" if leg.side == "CALL" else "put"] = leg_json(leg)
    stats = ov.buckets.get(bucket)
    return {
        "index": key,
        "bucket": bucket,
        "as_of": iso(ov.timestamp),
        "spot": num(ov.last_price),
        "stats": bucket_json(ov, stats) if stats is not None else None,
        "lot_size": snap.lot_sizes.get(bucket),
        "rows": [rows[k] for k in sorted(rows)],
    }


def position_json(rank: int, leg: LegRecord) -> dict[str, Any]:
    """One of the largest OI changes, as the positions table ranks it."""
    return {
        "rank": rank,
        "index": leg.index,
        "bucket": leg.bucket,
        "expiry": iso(leg.expiry),
        "strike": num(leg.strike),
        "side": leg.side,
        "tradingsymbol": leg.tradingsymbol,
        "last_price": num(leg.last_price),
        "oi": num(leg.oi),
        "oi_change": num(leg.oi_change),
        "oi_change_pct": num(oi_change_pct(leg)),
        "buildup": leg.buildup or None,
    }


def flow_bar_json(bar: FlowBar) -> dict[str, Any]:
    """One timeframe bar of premium flow (₹ crore); `start` is the bar's IST-aligned start."""
    total = bar.inflow_cr + bar.outflow_cr
    return {
        "start": iso(bar.start),
        "buying_cr": num(bar.inflow_cr),
        "selling_cr": num(bar.outflow_cr),
        "net_cr": num(bar.net_cr),
        "ce_net_cr": num(bar.ce_net_cr),
        "pe_net_cr": num(bar.pe_net_cr),
        "buying_pressure": num(bar.inflow_cr / total) if total > 0 else None,
        "buy_sell_ratio": num(bar.buy_sell_ratio),
        "sentiment": bar.sentiment,
    }


def flow_series_json(series: FlowSeries) -> dict[str, Any]:
    """One index's bars, oldest first, and their net sum."""
    return {
        "index": series.index,
        "timeframe": series.timeframe,
        "net_cr": num(series.net_cr),
        "bars": [flow_bar_json(b) for b in series.bars],
    }


def alert_json(alert: Alert) -> dict[str, Any]:
    """One raised alert; `value` and `threshold` are in `unit`."""
    return {
        "time": iso(alert.at),
        "rule": alert.rule,
        "severity": alert.severity,
        "subject": alert.subject,
        "index": alert.index or None,
        "message": alert.message,
        "value": num(alert.value),
        "threshold": num(alert.threshold),
        "unit": alert.unit,
    }


def plain(value: Any) -> Any:
    """Any tree of dicts, lists, numbers, dates and times as JSON-ready values (times in IST,
    NaN as None)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return iso(value)
    return num(value)


MISSING = {
    "positions": "participant OI (NSE's fao_participant_oi file)",
    "volume": "participant volume (NSE's fao_participant_vol file)",
    "cash": "FII/DII cash (NSE's provisional cash figures)",
}
"""What each part of a participants answer comes from, named when it is not stored."""


def missing_note(trade_date: str, parts: list[str]) -> dict[str, Any]:
    """`missing` (the parts, in MISSING's terms) and, when any, a `note` naming their files."""
    if not parts:
        return {"missing": []}
    return {"missing": parts, "note": f"not stored for {trade_date}: "
            + "; ".join(MISSING[part] for part in parts)
            + " (import with `optui participants import PATH`)"}


__all__ = [
    "MONEY_UNIT", "TIMEZONE", "alert_json", "bucket_json", "chain_json", "flow_bar_json",
    "flow_series_json", "flow_summary_json", "index_detail", "index_summary", "iso", "leg_json",
    "MISSING", "missing_note", "num", "ordered_buckets", "ordered_indices", "plain", "position_json",
]
