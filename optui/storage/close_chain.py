"""The previous close's chain: the stored rows the smile chart overlays as the previous close.

For an index and expiry bucket the charts (optui.widgets.charts.data) take the newest session
close before the shown day with a finite ATM IV (`iv_daily`); when it was collected (not
backfilled) its moment `at_s` leads to the chain: for the shown expiry, the newest leg rows
stored at or before that moment within `CLOSE_LEGS_LOOKBACK` (leg rows are stored once per
interval, at the tick cadence the close's snapshot may have stored only the overview), and the
index overview stored in the second from that chain's moment (the forward of the bucket the
contract sat in then). `close_chain_points` gathers exactly those rows of every index, bucket
and expiry, so a store that holds them (a dashboard replay's own) draws the same overlay as
the store they came from, without the rest of that day.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta

from optui.storage.base import Store
from optui.storage.iv_history import IV_DAILY, day_time, iv_history
from optui.storage.points import Point
from optui.storage.records import LEGS, OVERVIEW
from optui.timeutil import IST

CLOSE_LEGS_LOOKBACK = timedelta(hours=1)
"""How far before a stored close (`iv_daily.at_s`) the previous close's smile looks for the
newest stored chain: the longest `source.interval_s` between stored leg rows."""

HISTORY_DAYS = 400
"""Calendar days of closes the charts read (IV rank and percentile over a year and more)."""


def close_moment(store: Store, index: str, bucket: str, day: date) -> tuple[date, datetime] | None:
    """(the session day, the collected moment) of the newest close of `index` and `bucket`
    before `day` with a finite ATM IV, or None when there is none or it was backfilled (no
    chain was stored with it). Raises what the store's query raises (OptuiError)."""
    closes = iv_history(store, index, bucket, day, days=HISTORY_DAYS)
    last = next((c for c in reversed(closes) if math.isfinite(c.atm_iv)), None)
    if last is None:
        return None
    rows = store.query(IV_DAILY, day_time(last.day), day_time(last.day + timedelta(days=1)),
                       {"index": index, "bucket": bucket}, fields=["at_s", "origin"])
    at_s = rows[-1].fields.get("at_s") if rows else None
    if not rows or rows[-1].fields.get("origin") != "collect" or \
            not isinstance(at_s, int | float) or not math.isfinite(at_s):
        return None
    return last.day, datetime.fromtimestamp(at_s, IST)


def close_chain_points(store: Store, day: date) -> list[Point]:
    """Every row of `store` the previous close's smile of any index, bucket and expiry before
    `day` is drawn from (see the module): each expiry's newest leg rows at or before each
    collected close, and the overview rows in the second from their moments. Raises what the
    store's queries raise (OptuiError)."""
    pairs = {(r.tags.get("index", ""), r.tags.get("bucket", ""))
             for r in store.query(IV_DAILY, day_time(day - timedelta(days=HISTORY_DAYS)),
                                  day_time(day), fields=["atm_iv"])}
    moments: set[tuple[str, datetime]] = set()
    for index, bucket in sorted(pairs):
        found = close_moment(store, index, bucket, day) if index and bucket else None
        if found is not None:
            moments.add((index, found[1]))
    out: list[Point] = []
    copied: set[tuple[str, datetime]] = set()
    for index, at in sorted(moments):
        newest: dict[str, datetime] = {}  # expiry -> its newest chain's moment
        for r in store.query(LEGS, at - CLOSE_LEGS_LOOKBACK, at + timedelta(seconds=1),
                             {"index": index}, fields=["strike"]):
            expiry = r.tags.get("expiry", "")
            newest[expiry] = max(newest.get(expiry, r.time), r.time)
        for moment in sorted(set(newest.values())):
            if (index, moment) in copied:
                continue
            copied.add((index, moment))
            out.extend(Point(LEGS, dict(r.tags), dict(r.fields), r.time)
                       for r in store.query(LEGS, moment, moment + timedelta(microseconds=1),
                                            {"index": index})
                       if newest.get(r.tags.get("expiry", "")) == moment)
            out.extend(Point(OVERVIEW, dict(r.tags), dict(r.fields), r.time)
                       for r in store.query(OVERVIEW, moment, moment + timedelta(seconds=1),
                                            {"index": index}))
    return out


__all__ = ["CLOSE_LEGS_LOOKBACK", "close_chain_points", "close_moment"]
