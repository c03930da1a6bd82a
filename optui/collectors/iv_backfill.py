"""Backfill `iv_daily` from Kite's historical daily candles (`historical_data(..., oi=True)`).

What Kite can and cannot give: its historical API serves only instruments listed today (an
expired option's token is gone; `continuous` data exists for futures, not options). So a past
day's ATM IV can be rebuilt only from contracts still listed: for each expiry bucket the contract
now in it (e.g. this month's expiry), on the days it traded. Those days' figures are that
contract's IV (a longer tenor on earlier days than the bucket had then), stored with
`origin=backfill` and the contract's `expiry`; days before it was listed get the index close only
(realised volatility needs it). Days already collected live are never overwritten.

Per day: the index close picks the ATM strike (nearest listed strike); the ATM call and put
closes give the forward by put-call parity and each an IV from the product's solver
(optui.analytics.implied_vol, Black-76), time to expiry from 15:30 IST that day; the ATM IV is
their mean, as in live collection.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from optui.analytics.forward import synthetic_forward
from optui.analytics.implied_vol import solve_black76
from optui.collectors.instruments import build_catalogs, expiry_buckets
from optui.errors import SourceError
from optui.indices import INDEX_SPECS
from optui.storage.base import Store
from optui.storage.iv_history import IV_DAILY, day_time, iv_point
from optui.timeutil import IST, MARKET_CLOSE, years_to_expiry

log = logging.getLogger(__name__)


@dataclass
class BucketResult:
    """What one index and bucket got: days with an IV, days with only the index close."""

    index: str
    bucket: str
    expiry: date | None
    iv_days: int = 0
    spot_days: int = 0
    kept_collected: int = 0


@dataclass
class BackfillReport:
    """Everything `backfill_iv` did, for the command's output."""

    start: date
    end: date
    results: list[BucketResult] = field(default_factory=list)
    requests: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary, one line per bucket plus the limits of the method."""
        out = [f"IV backfill {self.start} to {self.end} from Kite's historical daily candles "
               f"({self.requests} requests):"]
        for r in self.results:
            exp = f"contract expiring {r.expiry}" if r.expiry else "no listed contract"
            kept = f", {r.kept_collected} collected days kept" if r.kept_collected else ""
            out.append(f"  {r.index} {r.bucket}: ATM IV on {r.iv_days} days from the {exp}; "
                       f"index close only on {r.spot_days} days{kept}")
        out.append("  Kite serves history only for contracts listed today (expired options are "
                   "not available; continuous data is for futures only): earlier days of a bucket "
                   "carry the IV of the contract now in it, not the one that was nearest then.")
        out.extend(f"  problem: {p}" for p in self.problems)
        return out


def _closes(candles: Sequence[dict[str, Any]]) -> dict[date, float]:
    out: dict[date, float] = {}
    for c in candles:
        at = c.get("date")
        close = c.get("close")
        if isinstance(at, datetime) and isinstance(close, int | float) and close > 0:
            out[(at if at.tzinfo else at.replace(tzinfo=IST)).astimezone(IST).date()] = float(close)
    return out


def atm_iv_from_closes(spot: float, strike: float, call: float, put: float, expiry: date,
                       day: date, rate: float) -> float:
    """ATM IV (percent) from one day's call and put closes at `strike`: parity forward, the
    Black-76 IV of each, their mean over the finite ones; NaN when neither solves."""
    at = datetime.combine(day, MARKET_CLOSE, tzinfo=IST)
    t = years_to_expiry(expiry, at)
    if t <= 0:
        return math.nan
    fwd = synthetic_forward([strike], [call], [put], t, rate, spot, n_pairs=1)
    iv, _ = solve_black76(np.array([call, put]), fwd, strike, t, rate, np.array([True, False]))
    finite = iv[np.isfinite(iv)]
    return float(finite.mean() * 100.0) if finite.size else math.nan


def backfill_iv(kite: Any, store: Store, indices: Sequence[str], start: date, end: date,
                rate: float, acquire: Callable[[str], object] | None = None,
                today: date | None = None) -> BackfillReport:
    """Fill `iv_daily` for trading days in [start, end] through a `kiteconnect.KiteConnect`.

    `acquire(kind)` paces calls ("historical": Kite allows 3 a second); `today` is the exchange
    day whose listing decides the buckets (default: `end`). Kite errors for one index are
    reported in `problems` and the others go on. Returns the report.
    """
    report = BackfillReport(start, end)
    pace = acquire or (lambda kind: None)
    first = datetime.combine(start, time(0, 0))
    last = datetime.combine(end, time(23, 59, 59))

    fetched: dict[int, dict[date, float]] = {}  # an expiry can sit in two buckets: fetch once

    def history(token: int) -> dict[date, float]:
        if token not in fetched:
            pace("historical")
            report.requests += 1
            fetched[token] = _closes(kite.historical_data(token, first, last, "day", oi=True))
        return fetched[token]

    instruments = None
    for index in indices:
        spec = INDEX_SPECS[index]
        try:
            if instruments is None:
                from optui.collectors.instruments import instruments_from_kite_rows

                rows: list[dict[str, Any]] = []
                for exchange in ("NFO", "BFO"):
                    pace("default")
                    rows.extend(kite.instruments(exchange))
                instruments = instruments_from_kite_rows(rows).instruments
            pace("default")
            quote = kite.ltp([spec.spot_symbol]).get(spec.spot_symbol)
            if not quote:
                report.problems.append(f"{index}: no index token for {spec.spot_symbol}")
                continue
            spots = history(int(quote["instrument_token"]))
            catalog = build_catalogs(instruments, [index])[index]
            ref = datetime.combine(today or end, time(9, 15), tzinfo=IST)
            buckets = expiry_buckets(catalog.expiries(ref), catalog.future_expiries)
            collected = _collected_days(store, index, start, end)
            for bucket, expiry in buckets.items():
                result = BucketResult(index, bucket, expiry)
                chain = catalog.chains[expiry]
                atm = {d: float(chain.strikes[np.argmin(np.abs(chain.strikes - s))])
                       for d, s in spots.items()}
                legs: dict[float, tuple[dict[date, float], dict[date, float]]] = {}
                for k in sorted(set(atm.values())):
                    legs[k] = (history(chain.calls[k].instrument_token),
                               history(chain.puts[k].instrument_token))
                points = []
                for day, spot in sorted(spots.items()):
                    if (bucket, day) in collected:
                        result.kept_collected += 1
                        continue
                    calls, puts = legs[atm[day]]
                    iv = math.nan
                    if day in calls and day in puts and day < expiry:
                        iv = atm_iv_from_closes(spot, atm[day], calls[day], puts[day], expiry,
                                                day, rate)
                    fields: dict[str, Any] = {"spot": spot, "origin": "backfill",
                                              "at_s": datetime.combine(day, MARKET_CLOSE,
                                                                       tzinfo=IST).timestamp()}
                    if math.isfinite(iv):
                        fields.update(atm_iv=iv, expiry=expiry.isoformat())
                        result.iv_days += 1
                    else:
                        result.spot_days += 1
                    points.append(iv_point(index, bucket, day, fields))
                if points:
                    store.write(points)
                report.results.append(result)
        except SourceError as exc:
            report.problems.append(f"{index}: {exc}")
        except Exception as exc:  # noqa: BLE001 - kiteconnect raises its own exception family
            from optui.collectors.kite_source import map_kite_error

            log.warning("IV backfill of %s failed", index, exc_info=True)
            report.problems.append(f"{index}: {map_kite_error(exc, 'historical candles')}")
    return report


def _collected_days(store: Store, index: str, start: date, end: date) -> set[tuple[str, date]]:
    """(bucket, day) pairs in [start, end] whose stored close came from live collection."""
    rows = store.query(IV_DAILY, day_time(start), day_time(end + timedelta(days=1)),
                       {"index": index}, fields=["origin"])
    return {(r.tags.get("bucket", ""), r.time.astimezone(IST).date()) for r in rows
            if r.fields.get("origin") == "collect"}
