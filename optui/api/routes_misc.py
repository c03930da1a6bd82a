"""Alerts, health and stored history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from optui.alerts.model import Alert
from optui.api.errors import ApiError, JsonResponse
from optui.api.routes_market import state_of
from optui.api.serialise import TIMEZONE, alert_json, iso, num, plain
from optui.api.state import ApiState
from optui.errors import OptuiError
from optui.timeutil import IST

router = APIRouter(prefix="/api", tags=["alerts, health, history"])

HISTORY_MEASUREMENTS: dict[str, str] = {
    "atm_options": "every option leg per cycle (tags index, bucket, side, expiry, strike_offset)",
    "index_overview": "every index's overview per cycle (tag index)",
    "premium_flow": "one-minute premium-flow bars, ₹ crore (tag index)",
    "iv_daily": "daily ATM IV and index closes (tags index, bucket)",
    "alerts": "raised alerts (tags rule, severity, subject, index)",
    "collector_health": "the collector's cycle health (tag source)",
    "participants": "NSE participant OI and volume, contracts (tags participant, kind)",
    "fii_dii_cash": "FII/DII provisional cash, ₹ crore (tag category)",
}
"""Measurements /api/history serves, with what they hold."""
_WITH_INDEX = ("atm_options", "index_overview", "premium_flow", "iv_daily", "alerts")
HISTORY_LIMIT = 50_000


def parse_when(text: str, name: str) -> datetime:
    """ISO 8601 (an offset, or IST when none) or YYYY-MM-DD (IST midnight); 422 otherwise."""
    try:
        at = datetime.fromisoformat(text.strip().replace(" ", "T").replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"bad parameter: {name}: {text!r} is not ISO 8601 "
                            "(e.g. 2026-11-25T09:15:00+05:30 or 2026-11-25)") from None
    return at if at.tzinfo else at.replace(tzinfo=IST)


def _alert_from_row(row: Any) -> Alert:
    def f(name: str) -> float:
        value = row.fields.get(name)
        return float(value) if isinstance(value, (int, float)) else float("nan")

    return Alert(row.time, row.tags.get("rule", ""), row.tags.get("severity", ""),
                 row.tags.get("subject", ""), str(row.fields.get("message", "")),
                 row.tags.get("index", ""), f("value"), f("threshold"), str(row.fields.get("unit", "")))


def _alerts_since(state: ApiState, since: datetime | None) -> tuple[datetime, list[Alert]]:
    from optui.alerts.engine import MEASUREMENT

    now = state.market_now()
    store = state.store
    if now is None and store is not None:
        try:
            newest = store.latest(MEASUREMENT)
        except OptuiError as exc:
            raise ApiError(503, f"the store did not answer: {exc}") from None
        now = newest.time if newest is not None else None
    if since is None:
        since = (now or datetime.now(IST)) - timedelta(days=1)
    found: dict[tuple[datetime, str, str], Alert] = {}
    if store is not None and now is not None:
        try:
            rows = store.query(MEASUREMENT, since, now + timedelta(days=1), limit=HISTORY_LIMIT)
        except OptuiError as exc:
            raise ApiError(503, f"the store did not answer: {exc}") from None
        for row in rows:
            a = _alert_from_row(row)
            found[(a.at, a.rule, a.subject)] = a
    for a in list(state.alerts):  # raised since this server started, stored or not yet
        if a.at >= since:
            found[(a.at, a.rule, a.subject)] = a
    return since, sorted(found.values(), key=lambda a: a.at)


@router.get("/alerts", summary="Alerts raised since a time")
def alerts(request: Request, since: Annotated[str | None, Query(
        description="ISO 8601 (default: one day before the newest cycle).")] = None) -> Any:
    """Alerts the collector's alerts engine raised at or after `since`, oldest first: rule,
    severity, subject, message, and value/threshold in `unit`."""
    state = state_of(request)
    start = parse_when(since, "since") if since is not None else None
    start, found = _alerts_since(state, start)
    return JsonResponse({"since": iso(start), "timezone": TIMEZONE,
                         "alerts": [alert_json(a) for a in found]})


@router.get("/health", summary="The API, the collector it follows and the store")
def health(request: Request) -> Any:
    """`status` ok (fresh cycles), stale (older than two intervals), gap (the collector's newest
    cycle collected nothing: `gap` says why), waiting (none yet) or no_collector; the
    collector's mode and host, the newest cycle's time, duration, legs and
    warnings, the store's reachability, WebSocket clients and recent health events."""
    state = state_of(request)
    latest = state.latest
    collector = state.collector
    gap = state.gap
    if collector.mode == "none":
        status = "no_collector"
    elif gap is not None:
        status = "gap"
    elif latest is None:
        status = "waiting"
    else:
        status = "stale" if state.is_stale() else "ok"
    cycle: dict[str, Any] | None = None
    if latest is not None:
        snap = latest.snapshot
        cycle = {
            "as_of": iso(snap.timestamp), "duration_s": num(snap.duration_s),
            "indices": list(snap.indices), "legs": snap.leg_count, "flagged_legs": snap.flagged_count,
            "warnings": [w.as_dict() for w in snap.warnings], "host": latest.cycle.host,
        }
    store = state.store
    hub = state.hub
    body = {
        "status": status,
        **state.header(),
        "collector": {"mode": collector.mode, "host": collector.host or None,
                      "description": collector.description},
        "interval_s": state.interval_s,
        "cycles_received": state.cycles_seen,
        "last_cycle": cycle,
        "gap": None if gap is None else {"reason": gap[0], "at": iso(gap[1])},
        "store": None if store is None else {"describe": store.describe(), "reachable": bool(store.ping())},
        "websocket_clients": hub.client_count() if hub is not None else 0,
        "websocket_dropped": hub.dropped if hub is not None else 0,
        "events": [{**e.as_dict(), "at": iso(e.at)} for e in list(state.health)[-50:]],
    }
    return JsonResponse(body)


@router.get("/history/{measurement}", summary="Stored rows of one measurement")
def history(
    measurement: str, request: Request,
    index: Annotated[str | None, Query(description="Only this index.")] = None,
    from_: Annotated[str | None, Query(alias="from", description="Start, ISO 8601 (default: a day before `to`).")] = None,
    to: Annotated[str | None, Query(description="End (exclusive), ISO 8601 (default: just after the newest row).")] = None,
    every: Annotated[str | None, Query(description="Roll up into 1m, 5m, 15m, 30m, 1h, 1d or 1w buckets (IST-aligned).")] = None,
    fn: Annotated[str | None, Query(description="With `every`: sum, mean, last, max or min (default: sum for premium_flow, last otherwise).")] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT, description="At most this many rows.")] = 5000,
) -> Any:
    """Rows of `measurement` in [from, to), oldest first, as the store holds them (fields
    named as stored: money in `_cr` fields is ₹ crore); with `every`, the numeric fields rolled up
    per bucket by `fn` (all series matching the tags combined)."""
    from optui.analytics.timeframes import TIMEFRAMES
    from optui.storage.base import AGGREGATE_FNS

    state = state_of(request)
    if measurement not in HISTORY_MEASUREMENTS:
        raise ApiError(404, f"unknown measurement {measurement!r}: choose one of {', '.join(HISTORY_MEASUREMENTS)}")
    store = state.store
    if store is None:
        raise ApiError(503, "no store is open: history is not available")
    tags: dict[str, str] = {}
    if index is not None:
        if measurement not in _WITH_INDEX:
            raise ApiError(422, f"bad parameter: index: {measurement} has no index tag")
        from optui.indices import INDEX_KEYS

        key = index.strip().upper()
        if key not in INDEX_KEYS:
            raise ApiError(404, f"unknown index {index!r}: choose one of {', '.join(INDEX_KEYS)}")
        tags["index"] = key
    if every is not None and every not in TIMEFRAMES:
        raise ApiError(422, f"bad parameter: every: {every!r}: choose one of {', '.join(TIMEFRAMES)}")
    how = fn or ("sum" if measurement == "premium_flow" else "last")
    if how not in AGGREGATE_FNS:
        raise ApiError(422, f"bad parameter: fn: {how!r}: choose one of {', '.join(AGGREGATE_FNS)}")
    if fn is not None and every is None:
        raise ApiError(422, "bad parameter: fn needs every")
    try:
        newest = store.latest(measurement, tags or None) if to is None else None
        end = parse_when(to, "to") if to is not None else (
            newest.time + timedelta(microseconds=1) if newest is not None else None)
        if end is None:
            return JsonResponse({"measurement": measurement, "tags": tags, "from": None, "to": None,
                                 "timezone": TIMEZONE, "rows": [], "truncated": False})
        start = parse_when(from_, "from") if from_ is not None else end - timedelta(days=1)
        if start >= end:
            raise ApiError(422, f"bad parameter: from {iso(start)} is not before to {iso(end)}")
        if every is not None:
            probe = newest or store.latest(measurement, tags or None)
            names = [k for k, v in (probe.fields.items() if probe is not None else ())
                     if isinstance(v, (int, float)) and not isinstance(v, bool)]
            rows = store.aggregate(measurement, names, start, end, every, tags or None, how) if names else []
        else:
            rows = store.query(measurement, start, end, tags or None, limit=limit + 1)
    except OptuiError as exc:
        raise ApiError(503, f"the store did not answer: {exc}") from None
    truncated = len(rows) > limit
    rows = rows[:limit]
    return JsonResponse({
        "measurement": measurement, "about": HISTORY_MEASUREMENTS[measurement], "tags": tags,
        "from": iso(start), "to": iso(end), "every": every, "fn": how if every else None,
        "timezone": TIMEZONE, "truncated": truncated,
        "rows": [{"time": iso(r.time), "tags": dict(r.tags), "fields": plain(r.fields)} for r in rows],
    })


__all__ = ["HISTORY_MEASUREMENTS", "router"]
