"""Live market routes: the overview of every index, one index per expiry bucket, one chain.

All read the newest collection cycle held by ApiState (no store access), so they answer in
well under a millisecond of work; 503 before the first cycle, saying why none came.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from optui.api.errors import ApiError, JsonResponse
from optui.api.serialise import chain_json, index_detail, ordered_buckets
from optui.api.state import ApiState, Latest
from optui.indices import BUCKETS, INDEX_KEYS

router = APIRouter(prefix="/api", tags=["market"])


def state_of(request: Request) -> ApiState:
    return request.app.state.optui  # type: ignore[no-any-return]


def no_cycle_message(state: ApiState) -> str:
    """Why there is no cycle to serve: waiting for one, or no collector to follow."""
    collector = state.collector
    if collector.mode == "none":
        where = state.store.describe() if state.store is not None else "the configured store"
        return (f"no collector is running for {where}: start `optui collect` (or `optui collect "
                "--serve`); this server never collects. Stored history is at /api/history")
    return f"no collection cycle received yet ({collector.description or collector.mode}): retry shortly"


def need_latest(state: ApiState) -> Latest:
    latest = state.latest
    if latest is None:
        raise ApiError(503, no_cycle_message(state), {"Retry-After": str(max(1, int(state.interval_s)))})
    return latest


def index_key(latest: Latest, index: str) -> str:
    """The collected index named `index` (any case); 404 naming what is served otherwise."""
    key = index.strip().upper()
    snap = latest.snapshot
    if key in snap.indices:
        return key
    served = ", ".join(snap.indices) or "none"
    if key not in INDEX_KEYS:
        raise ApiError(404, f"unknown index {index!r}: choose one of {', '.join(INDEX_KEYS)} "
                            f"(collected now: {served})")
    raise ApiError(404, f"index {key} is not collected (source.indices); collected now: {served}")


@router.get("/overview/indices", summary="Every collected index with its nearest expiry")
async def overview_indices(request: Request) -> Any:
    """Each index's level and changes, and its nearest expiry bucket's ATM, ATM IV (percent),
    PCR by OI and volume, max pain, straddle, skew and days to expiry, as the dashboard's
    overview table shows them; with the cycle's exchange time, source badge and data age."""
    state = state_of(request)
    latest = need_latest(state)
    return JsonResponse({**state.header(), "indices": latest.summary})


@router.get("/overview/indices/{index}", summary="One index, every expiry bucket")
async def overview_index(index: str, request: Request) -> Any:
    """One index per expiry bucket: spot, ATM, ATM IV, PCR (OI and volume), max pain, straddle,
    skew (put minus call IV, volatility points), days to expiry, OI totals and quality flags,
    plus this cycle's premium flow (₹ crore); with source badge and data age."""
    state = state_of(request)
    latest = need_latest(state)
    key = index_key(latest, index)
    return JsonResponse({**state.header(), **index_detail(key, latest.snapshot.indices[key])})


@router.get("/chain/{index}/{bucket}", summary="Every leg of one index and expiry bucket")
async def chain(index: str, bucket: str, request: Request) -> Any:
    """Rows by strike, each with the call and the put: last price, bid/ask, volume, OI, OI change
    (vs the reference OI, and vs the previous cycle), IV (percent), delta, gamma, theta (₹ per
    day), vega (₹ per vol point), buildup and data-quality flags."""
    state = state_of(request)
    latest = need_latest(state)
    key = index_key(latest, index)
    snap = latest.snapshot.indices[key]
    present = ordered_buckets(snap.overview)
    name = bucket.strip().lower()
    if name not in present:
        what = "unknown expiry bucket" if name not in BUCKETS else "no such expiry bucket for " + key
        raise ApiError(404, f"{what} {bucket!r}: {key} has {', '.join(present) or 'none'}")
    return JsonResponse({**state.header(), **chain_json(key, snap, name)})


__all__ = ["index_key", "need_latest", "no_cycle_message", "router", "state_of"]
