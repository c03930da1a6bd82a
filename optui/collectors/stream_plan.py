"""What the streaming source subscribes and how a cycle's feed is named.

`stream_modes` ranks the planned chains' instruments for the ticker (index spots first, then legs
nearest the money); `feed_tier` names the tier a cycle used; `is_spot_call` tells the cycle's
spot call from leg calls; `ticker_root` gives the ticker URL for a Kite REST root. Pure: no I/O.

Why every subscribed instrument is in `full` mode (Kite's ticker packet layouts):
- a leg: PCR, max pain, the OI totals and buildup need its open interest, and premium flow needs
  its best bid and offer (the mid a trade is judged against). Only the 184-byte full packet
  carries OI and depth; the 44-byte quote packet has neither, the 8-byte ltp packet only the price.
- an index spot: the 32-byte full packet carries the exchange timestamp that dates each snapshot
  (the 28-byte quote packet does not).
A planned instrument that needed neither would be subscribed in quote or ltp mode; the planned
chains hold none. Nor does a lighter mode make room: the ticker's limit (3,000 instruments a
connection, 3 connections a key) counts instruments whatever their mode, so the legs past it
are polled over REST (the far wings first, see `stream_modes`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np

from optui.collectors.ticker_source import KITE_TICKER_ROOT, MAX_CONNECTIONS, MAX_PER_CONNECTION
from optui.indices import INDEX_SPECS

if TYPE_CHECKING:
    from optui.collectors.chain_plan import BucketPlan
    from optui.models import Quote


STREAM, MIXED, REST_FALLBACK = "stream", "stream+rest", "rest-fallback"
"""Feed tiers of a cycle: every quote from the ticker, some polled, all polled."""


def feed_tier(streamed: int, polled: int) -> str:
    """The tier a cycle used from how many of its quotes were streamed and polled."""
    if streamed and not polled:
        return STREAM
    return MIXED if streamed else REST_FALLBACK


def feed_tier_line(tier: str, streamed: int, polled: int) -> str:
    """The health line saying a cycle's feed changed to `tier` (`feed_tier`), with its counts."""
    if tier == STREAM:
        return f"feed: stream (all {streamed} quotes from the ticker)"
    if tier == MIXED:
        return (f"feed: stream+rest ({streamed} quotes from the ticker, {polled} polled over "
                "REST: not yet ticked, beyond the streamed limit or on a connection that is down)")
    return f"feed: rest-fallback (all {polled} quotes polled over REST: the ticker is not streaming)"


SPOT_KEYS = frozenset(spec.spot_symbol for spec in INDEX_SPECS.values())


def is_spot_call(keys: Sequence[str]) -> bool:
    """A quote call of index spots only: the engine's first call of a cycle, which dates it
    (polled while REST answers; not counted in the feed tier)."""
    return bool(keys) and SPOT_KEYS.issuperset(keys)


def ticker_root(rest_root: str) -> str:
    """The ticker's URL for a Kite REST root: Zerodha's for api.kite.trade, the same host and
    port over ws:// (wss:// for https) for anything else (`optui simulate` serves both)."""
    parts = urlsplit(rest_root)
    if parts.hostname in (None, "", "api.kite.trade"):
        return KITE_TICKER_ROOT
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}"


def stream_modes(plans: Mapping[str, Sequence[BucketPlan]], spots: Mapping[str, Quote],
                 capacity: int = MAX_CONNECTIONS * MAX_PER_CONNECTION) -> tuple[dict[int, str], int]:
    """Token -> ticker mode for the planned chains, and how many planned legs did not fit.

    Index spots come first, then legs by their distance from the money in strikes (the ATM
    strike of every planned expiry, then one either side, ...), so when the chains exceed
    `capacity` the legs left to REST polling are the far wings. Every instrument is `full`
    (the module's docstring says why).
    """
    ranked: list[tuple[int, int, int]] = []  # (distance in strikes, order planned, token)
    order = 0
    for key, index_plans in plans.items():
        spot = spots.get(key)
        price = spot.last_price if spot is not None else float("nan")
        for plan in index_plans:
            strikes = plan.strikes
            if strikes.size == 0:
                continue
            if np.isfinite(price):
                centre = int(np.argmin(np.abs(strikes - price)))
            else:
                centre = strikes.size // 2
            distance = np.abs(np.arange(strikes.size) - centre)
            for k, strike in enumerate(strikes.tolist()):
                for side in (plan.chain.calls, plan.chain.puts):
                    inst = side.get(strike)
                    if inst is not None:
                        ranked.append((int(distance[k]), order, inst.instrument_token))
                        order += 1
    modes: dict[int, str] = {}
    for spot in spots.values():
        if spot.instrument_token and len(modes) < capacity:
            modes[spot.instrument_token] = "full"
    wanted = dict.fromkeys(t for _, _, t in sorted(ranked))
    left = 0
    for tok in wanted:
        if tok in modes:
            continue
        if len(modes) < capacity:
            modes[tok] = "full"
        else:
            left += 1
    return modes, left
