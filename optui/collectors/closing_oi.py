"""The previous trading day's closing OI of the tracked options and its index closes.

Before the open, Kite's quote (and the simulator's) still carries the previous session: `oi` is
the contracts open at its close and `ohlc.close` the index's close. The 08:00 IST capture (and a
collector that starts a new day before the open without the previous day's state) quotes the
tracked options and the index spots once, validates them, and stores:

- `closing_oi`: tags index, expiry (YYYY-MM-DD), strike, side (CE/PE), instrument_token; field oi
  (contracts, a non-negative integer);
- `index_close`: tag index; field close (index points, > 0);

both at the previous trading day's close, 15:30 IST, so a re-capture replaces its rows. The
day's OI change (DayState.reference_oi) is anchored on the stored closing OI, so a collector that
first starts after the open, or on a new machine sharing the store, measures it from the close.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from optui.collectors.chain_plan import plan_index
from optui.collectors.instruments import IndexCatalog
from optui.collectors.source import MarketSource
from optui.errors import OptuiError
from optui.indices import INDEX_SPECS
from optui.storage.base import Store
from optui.storage.points import Point
from optui.timeutil import IST, MARKET_CLOSE

CLOSING_OI = "closing_oi"
INDEX_CLOSE = "index_close"


def close_time(trade_date: date) -> datetime:
    """The session close of `trade_date`, 15:30 IST, as aware UTC (the rows' timestamp)."""
    return datetime.combine(trade_date, MARKET_CLOSE, tzinfo=IST).astimezone(UTC)


@dataclass
class ClosesResult:
    """One capture of closes: rows stored per measurement and the reasons it was rejected."""

    trade_date: date
    options: int = 0
    indices: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors


def _whole(value: float) -> bool:
    return math.isfinite(value) and value >= 0 and float(value).is_integer()


def capture_closes(source: MarketSource, store: Store, catalogs: Mapping[str, IndexCatalog],
                   indices: Sequence[str], trade_date: date, at: datetime, *,
                   each_side: int, offsets: list[int], full_chain_expiries: int) -> ClosesResult:
    """Quote the index spots and the options a cycle at `at` would track (before the open: the
    previous session's close and OI), validate, and store them for `trade_date`.

    Valid: each index's close > 0, every option's OI a non-negative integer, at least one
    option per index. Anything invalid stores nothing and is named in `errors`; quote and store
    failures (SourceError, StoreError) are reported there too, never raised.
    """
    result = ClosesResult(trade_date)
    spot_keys = {k: INDEX_SPECS[k].spot_symbol for k in indices}
    try:
        spots = source.quotes(list(spot_keys.values()))
        closes: dict[str, float] = {}
        wanted: dict[str, list[tuple[str, date, float, str, int]]] = {}
        for key in indices:
            q = spots.get(spot_keys[key])
            close = q.close if q is not None else float("nan")
            if not (math.isfinite(close) and close > 0):
                result.errors.append(f"{key}: no previous close in the quote of {spot_keys[key]}")
                continue
            closes[key] = close
            catalog = catalogs.get(key)
            legs: list[tuple[str, date, float, str, int]] = []
            for plan in plan_index(catalog, close, at, each_side, offsets, full_chain_expiries) \
                    if catalog is not None else []:
                for strike in plan.strikes:
                    for side, inst in (("CE", plan.chain.calls[strike]), ("PE", plan.chain.puts[strike])):
                        legs.append((inst.key, plan.expiry, float(strike), side, inst.instrument_token))
            wanted[key] = list(dict.fromkeys(legs))
        keys = [leg[0] for legs in wanted.values() for leg in legs]
        quotes = source.quotes(keys) if keys else {}  # batched by the source
    except OptuiError as exc:
        result.errors.append(f"quotes failed: {exc}")
        return result
    stamp = close_time(trade_date)
    points = [Point(INDEX_CLOSE, {"index": k}, {"close": float(c)}, stamp) for k, c in closes.items()]
    options: list[Point] = []
    for key, legs in wanted.items():
        count = 0
        for inst_key, expiry, strike, side, token in legs:
            q = quotes.get(inst_key)
            if q is None:
                continue
            if not _whole(q.oi):
                result.errors.append(f"{inst_key}: OI {q.oi!r} is not a non-negative integer")
                continue
            options.append(Point(CLOSING_OI, {
                "index": key, "expiry": expiry.isoformat(), "strike": f"{strike:g}", "side": side,
                "instrument_token": str(token)}, {"oi": int(q.oi)}, stamp))
            count += 1
        if count == 0:
            result.errors.append(f"{key}: no option quote with a closing OI")
    if result.errors:
        return result
    try:
        store.write(points + options)
    except OptuiError as exc:  # StoreError: the database refused the rows
        result.errors.append(f"cannot store the closes: {exc}")
        return result
    result.indices, result.options = len(points), len(options)
    return result


def load_closing_oi(store: Store, trade_date: date) -> dict[int, float]:
    """Stored closing OI of `trade_date` by instrument token (empty when none was captured)."""
    stamp = close_time(trade_date)
    rows = store.query(CLOSING_OI, stamp, stamp + timedelta(seconds=1), fields=["oi"])
    out: dict[int, float] = {}
    for row in rows:
        token, oi = row.tags.get("instrument_token"), row.fields.get("oi")
        if token and isinstance(oi, int | float):
            out[int(token)] = float(oi)
    return out


def load_index_closes(store: Store, trade_date: date) -> dict[str, float]:
    """Stored index closes of `trade_date` by index key."""
    stamp = close_time(trade_date)
    rows = store.query(INDEX_CLOSE, stamp, stamp + timedelta(seconds=1), fields=["close"])
    return {row.tags["index"]: float(row.fields["close"]) for row in rows if "index" in row.tags}
