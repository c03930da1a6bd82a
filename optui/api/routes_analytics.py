"""Analytics routes: premium flow (cash flows) by timeframe, position changes, participants.

Premium flow is read from the store's one-minute bars summed into the timeframe, over the same
window the dashboard's flow panel shows (optui.analytics.premium_flow.flow_window, anchored at
the newest cycle's exchange time). Participants are end-of-day figures from the store
(optui.storage.participants_store), labelled with their trade date.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from optui.api.errors import ApiError, JsonResponse
from optui.api.routes_market import index_key, need_latest, state_of
from optui.api.serialise import (
    MONEY_UNIT,
    flow_series_json,
    iso,
    missing_note,
    ordered_indices,
    plain,
    position_json,
)
from optui.api.state import ApiState
from optui.errors import OptuiError

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

IndexQuery = Annotated[str | None, Query(description="Only this index (NIFTY, BANKNIFTY, ...).")]


def _store(state: ApiState) -> Any:
    if state.store is None:
        raise ApiError(503, "no store is open: history and participant data are not available")
    return state.store


def _store_failed(exc: Exception) -> ApiError:
    return ApiError(503, f"the store did not answer: {exc}")


@router.get("/cash-flows/position-changes", summary="Largest OI changes with their buildup")
async def position_changes(
    request: Request, index: IndexQuery = None,
    n: Annotated[int | None, Query(ge=1, le=100, description="How many per index (default positions.top_n).")] = None,
) -> Any:
    """Per index, the legs with the largest OI change against the reference OI (each contract
    once), largest first, with OI change in contracts' units and percent and the buildup — the
    dashboard's positions table."""
    from optui.analytics.positions import top_oi_changes

    state = state_of(request)
    latest = need_latest(state)
    snap = latest.snapshot
    keys = [index_key(latest, index)] if index else ordered_indices(snap)
    top_n = n or state.settings.positions.top_n
    out = {k: [position_json(i + 1, leg) for i, leg in enumerate(top_oi_changes(snap.indices[k].legs, top_n))]
           for k in keys}
    return JsonResponse({**state.header(), "indices": out})


@router.get("/cash-flows/{timeframe}", summary="Premium bought and sold per index, in timeframe bars")
def cash_flows(timeframe: str, request: Request, index: IndexQuery = None) -> Any:
    """Per index, the last 40 bars of `timeframe` (1m, 5m, 15m, 30m, 1h, 1d, 1w; IST-aligned)
    up to the newest cycle: premium bought (buying_cr) and sold (selling_cr), net, buying
    pressure (bought / traded), buy/sell ratio and sentiment, in ₹ crore."""
    from optui.analytics.premium_flow import flow_window
    from optui.analytics.timeframes import TIMEFRAMES, parse_timeframe
    from optui.storage.flow_queries import query_flow_series

    state = state_of(request)
    try:
        tf = parse_timeframe(timeframe)
    except ValueError:
        raise ApiError(404, f"unknown timeframe {timeframe!r}: choose one of {', '.join(TIMEFRAMES)}") from None
    store = _store(state)
    latest = state.latest
    if latest is not None:
        anchor = latest.snapshot.timestamp
        keys = [index_key(latest, index)] if index else ordered_indices(latest.snapshot)
    else:
        from optui.indices import INDEX_KEYS
        from optui.storage.records import FLOW

        row = _latest_row(store, FLOW)
        if row is None:
            raise ApiError(503, "no premium flow stored yet and no collection cycle received")
        anchor = row.time
        if index and index.strip().upper() not in INDEX_KEYS:
            raise ApiError(404, f"unknown index {index!r}: choose one of {', '.join(INDEX_KEYS)}")
        keys = [index.strip().upper()] if index else list(state.settings.source.indices)
    start, end = flow_window(anchor, tf, state.settings.flow.retention_days)
    try:
        series = {k: flow_series_json(query_flow_series(store, k, tf, start, end)) for k in keys}
    except OptuiError as exc:
        raise _store_failed(exc) from None
    return JsonResponse({**state.header(), "timeframe": tf, "from": iso(start), "to": iso(end),
                         "unit": MONEY_UNIT, "indices": series})


def _latest_row(store: Any, measurement: str) -> Any:
    try:
        return store.latest(measurement)
    except OptuiError as exc:
        raise _store_failed(exc) from None


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ApiError(422, f"bad parameter: date: {text!r} is not YYYY-MM-DD") from None


def _participants(state: ApiState, day: date | None) -> Any:
    """The stored end-of-day figures of `day` (default: the newest): positions from the OI file,
    else FII/DII cash alone (`_day_json` says what is missing); 404 only when nothing of the
    day is stored."""
    from optui.storage.participants_store import stored_day

    store = _store(state)
    try:
        result = stored_day(store, state.calendar(), day)
    except OptuiError as exc:
        raise _store_failed(exc) from None
    if result is None:
        why = ""
        if day is not None and not state.calendar().is_trading_day(day):
            why = " (not a trading day)"
        raise ApiError(404, f"no participant OI or FII/DII cash stored for {day or 'any date'}{why}: "
                            "run `optui participants import PATH` or `optui participants backfill`")
    return result


DateQuery = Annotated[str | None, Query(alias="date", description="Trade date YYYY-MM-DD (default: the newest stored).")]


def _day_json(result: Any) -> dict[str, Any]:
    """The day's figures with `missing` (parts not stored for the date: "positions", "volume",
    "cash"; their values are null or empty) and, when any is, a `note` naming the files."""
    body = plain(result.as_json())
    body["unit"] = {"positions": "contracts", "cash": MONEY_UNIT}
    body["end_of_day"] = True
    return {**body, **missing_note(body["trade_date"], result.missing)}


@router.get("/participants", summary="Participant positions and FII/DII cash for one trade date")
async def participants(request: Request, trade_date: DateQuery = None) -> Any:
    """FII, DII, Pro and Client index-derivative positions (contracts) with their day, week and
    month changes, Pro/Client volume shares, and FII/DII provisional cash (₹ crore) with streak
    and 5/20-day sums — end-of-day figures, as `optui participants show --json`."""
    state = state_of(request)
    day = _day(trade_date)
    result = await run_in_threadpool(_participants, state, day)
    return JsonResponse(_day_json(result))


def _one(request: Request, trade_date: str | None, name: str) -> Any:
    state = state_of(request)
    result = _participants(state, _day(trade_date))
    body = _day_json(result)
    return {
        "trade_date": body["trade_date"], "end_of_day": True, "participant": name,
        "positions": body["participants"].get(name),
        "cash": body["cash"].get(name),
        "unit": body["unit"],
        **missing_note(body["trade_date"], [part for part in body["missing"] if part != "volume"]),
    }


@router.get("/participants/fii", summary="FII positions and cash for one trade date")
def participants_fii(request: Request, trade_date: DateQuery = None) -> Any:
    """FII index-derivative positions and changes (contracts) and FII cash (₹ crore)."""
    return JsonResponse(_one(request, trade_date, "FII"))


@router.get("/participants/dii", summary="DII positions and cash for one trade date")
def participants_dii(request: Request, trade_date: DateQuery = None) -> Any:
    """DII index-derivative positions and changes (contracts) and DII cash (₹ crore)."""
    return JsonResponse(_one(request, trade_date, "DII"))


@router.get("/participants/pro-vs-client", summary="Pro versus Client positions and volume")
def participants_pro_client(request: Request, trade_date: DateQuery = None) -> Any:
    """Pro and Client positions (contracts), their volume shares and the divergence of their
    long shares in OI and volume (percentage points)."""
    state = state_of(request)
    body = _day_json(_participants(state, _day(trade_date)))
    return JsonResponse({
        "trade_date": body["trade_date"], "end_of_day": True,
        "pro": body["participants"].get("Pro"), "client": body["participants"].get("Client"),
        "volume": body["volume"],
        "pro_client_oi_divergence_pct": body["pro_client_oi_divergence_pct"],
        "unit": {"positions": "contracts"},
        **missing_note(body["trade_date"], [part for part in body["missing"] if part != "cash"]),
    })


@router.get("/participants/fii-dii-cash", summary="FII and DII cash-market flows")
def participants_cash(
    request: Request, trade_date: DateQuery = None,
    days: Annotated[int, Query(ge=1, le=250, description="Trading days of history.")] = 20,
) -> Any:
    """FII and DII provisional cash-market buy, sell and net (₹ crore) for the trade date, with
    streak and 5/20-day sums, and the daily figures of the last `days` trading days."""
    from optui.storage.participants_store import ParticipantsDay, cash_day, cash_history

    state = state_of(request)
    day = _day(trade_date)
    store = _store(state)
    try:
        found = cash_day(store, state.calendar(), day)
        if found is None:
            why = " (not a trading day)" if day is not None and not state.calendar().is_trading_day(day) else ""
            raise ApiError(404, f"no FII/DII cash figures stored for {day or 'any date'}{why}: run "
                                "`optui participants import PATH` (NSE's FII/DII cash JSON) or "
                                "`optui premarket`")
        last, summaries = found
        history = cash_history(store, state.calendar(), last, days)
    except OptuiError as exc:
        raise _store_failed(exc) from None
    body = plain(ParticipantsDay(last, {}, None, summaries).as_json())

    def flow(f: Any) -> Any:
        return None if f is None else {"buy_cr": f.buy_cr, "sell_cr": f.sell_cr, "net_cr": f.net_cr}

    return JsonResponse({
        "trade_date": body["trade_date"], "end_of_day": True, "provisional": True,
        "cash": body["cash"], "unit": MONEY_UNIT,
        "history": [{"trade_date": d.isoformat(), "FII": plain(flow(fii)), "DII": plain(flow(dii))}
                    for d, fii, dii in history],
    })


__all__ = ["router"]
