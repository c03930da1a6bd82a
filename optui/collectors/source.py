"""The market-data source interface and the conversion of Kite quote dicts to typed quotes."""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from optui.models import Instrument, Quote, SnapshotWarning
from optui.timeutil import IST, now_utc, parse_kite_time

if TYPE_CHECKING:
    from optui.analytics.trading_calendar import TradingCalendar
    from optui.collectors.quote_table import QuoteTable

log = logging.getLogger(__name__)

MAX_QUOTE_INSTRUMENTS = 500


class MarketSource(ABC):
    """Where instruments and quotes come from (Kite, the simulator, a replay)."""

    name: str = "source"
    label: str = "SOURCE"  # badge shown in the UI: LIVE, SIMULATED, REPLAY
    # What the last instruments() call skipped, one line per dump ("NFO dump: skipped 3 ...").
    dump_warnings: list[SnapshotWarning] = []  # noqa: RUF012 - replaced, never mutated, by instruments()

    @abstractmethod
    def instruments(self) -> list[Instrument]:
        """Today's option, future and index rows for NFO and BFO plus the index spots."""

    @abstractmethod
    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        """Kite-shaped full quotes for at most 500 'EXCHANGE:SYMBOL' keys (one API call)."""

    def quotes(self, keys: Sequence[str]) -> dict[str, Quote]:
        """Typed quotes for any number of keys, in calls of at most 500 instruments."""
        out: dict[str, Quote] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), MAX_QUOTE_INSTRUMENTS):
            raw = self.quote_batch(unique[start : start + MAX_QUOTE_INSTRUMENTS])
            for key, data in raw.items():
                out[key] = quote_from_kite(data)
        return out

    def quote_tables(self, batches: Sequence[Sequence[str]]) -> list[QuoteTable]:
        """One quote call per batch of at most 500 unique keys, each answer as columns (in
        batch order; see optui.collectors.quote_table). Raises as `quote_batch` does."""
        from optui.collectors.quote_table import QuoteTable

        return [QuoteTable.from_quotes(batch, self.quotes(batch)) for batch in batches]

    def now(self) -> datetime:
        """The exchange's current time (aware); the simulator runs its own clock."""
        return now_utc()

    @property
    def clock_offset_s(self) -> float | None:
        """Seconds the local clock runs ahead of the exchange's (negative: behind); None when
        the source's clock is not the real one (the in-process simulator) or not yet measured."""
        return None

    def real_seconds(self, exchange_seconds: float) -> float:
        """Real seconds to wait for `exchange_seconds` to pass on the exchange clock."""
        return exchange_seconds

    @property
    def judges_slow_cycles(self) -> bool:
        """True when a cycle slower than its cadence is a fault of this collection (SLOW_CYCLE).
        A replay is False: it re-runs recorded cycles at a pace it chooses (as fast as possible,
        or --speed times the recording), so its cycle times say nothing of the market's."""
        return True

    def sync_clock(self) -> None:  # noqa: B027 - most sources need no round trip
        """Re-measure the exchange clock (a cheap request); sources without a remote clock do nothing."""

    def tighten_clock(self, budget_s: float) -> None:  # noqa: B027 - most sources need no probe
        """Narrow the bounds on a remote exchange clock with timed cheap requests taking at most
        `budget_s` real seconds (none when tight already); sources without one do nothing."""

    calendar: TradingCalendar | None = None
    """The exchange calendar; None means NSE's published table (build_engine sets the configured one)."""

    def is_trading_day(self, at: datetime) -> bool:
        """Whether the exchange trades on the IST date of `at` (holidays, special sessions)."""
        from optui.analytics.trading_calendar import TradingCalendar

        return (self.calendar or TradingCalendar()).is_trading_day(at.astimezone(IST).date())

    def is_holiday(self, at: datetime) -> bool:
        """Whether `at` falls on a weekday the exchange closes (Kite publishes no calendar:
        NSE's published list, see optui.analytics.trading_calendar)."""
        return at.astimezone(IST).weekday() < 5 and not self.is_trading_day(at)

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release connections."""

    accepts_token: bool = False
    """Whether `set_access_token` can resume the source after its token was rejected."""

    def set_access_token(self, token: str) -> None:
        """Use a new access token from now on (Kite); sources without a login raise ValueError."""
        raise ValueError(f"{self.name} takes no access token")

    def probe(self) -> None:  # noqa: B027 - a local source always answers
        """One cheap request that raises SourceError while the source is down (a backoff probe)."""


def reads_local_clock(source: MarketSource) -> bool:
    """True while `source.now()` is only this machine's clock: a Kite source (streaming or
    recorded alike, which forward its clock) before Kite's first answer carried a `Date` header.

    Simulated and replayed sources run their own clock, never the machine's. Times stamped while
    this holds are shown with "(local clock)".
    """
    return source.name == "kite" and source.label != "REPLAY" and source.clock_offset_s is None


def _f(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _i(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _ohlc(value: object) -> float:
    """An ohlc price; Kite's 0 means "no trade yet today" (or no previous close): NaN."""
    price = _f(value)
    return price if price > 0 else float("nan")


def quote_from_kite(data: dict) -> Quote:
    """Convert one instrument of Kite's /quote `data` into a Quote; missing numbers become NaN/0.

    Before an instrument's first trade of the day Kite sends ohlc open, high and low of 0, and
    a newly listed contract has a close of 0: those become NaN, so nothing derived from them
    (day change, day range, net change) is computed from zero.
    """
    ohlc = data.get("ohlc") or {}
    depth = data.get("depth") or {}
    buys = depth.get("buy") or []
    sells = depth.get("sell") or []
    best_bid = buys[0] if buys else {}
    best_ask = sells[0] if sells else {}
    return Quote(
        instrument_token=_i(data.get("instrument_token")),
        timestamp=parse_kite_time(data.get("timestamp")),
        last_trade_time=parse_kite_time(data.get("last_trade_time")),
        last_price=_f(data.get("last_price")),
        last_quantity=_i(data.get("last_quantity")),
        buy_quantity=_i(data.get("buy_quantity")),
        sell_quantity=_i(data.get("sell_quantity")),
        volume=_i(data.get("volume")),
        average_price=_f(data.get("average_price")),
        oi=_f(data.get("oi", 0)),
        oi_day_high=_f(data.get("oi_day_high", 0)),
        oi_day_low=_f(data.get("oi_day_low", 0)),
        net_change=_f(data.get("net_change", 0)),
        open=_ohlc(ohlc.get("open")),
        high=_ohlc(ohlc.get("high")),
        low=_ohlc(ohlc.get("low")),
        close=_ohlc(ohlc.get("close")),
        bid=_f(best_bid.get("price", 0)) or 0.0,
        ask=_f(best_ask.get("price", 0)) or 0.0,
        bid_quantity=_i(best_bid.get("quantity")),
        ask_quantity=_i(best_ask.get("quantity")),
    )


def exchange_time(quotes: Iterable[Quote]) -> datetime | None:
    """The newest exchange timestamp among quotes (aware), or None when none carries one.

    Kite stamps each quote with the exchange's time in whole seconds; the index quotes tick
    every second in a session, so their newest stamp is the market moment a cycle shows.
    """
    stamps = [q.timestamp for q in quotes if q.timestamp is not None]
    return max(stamps).astimezone(UTC) if stamps else None


DRIFT_PPM = 50.0
"""How fast this machine's monotonic clock may run against the exchange's, parts per million:
the bounds an old reading gives widen by this much per second since it (a quartz clock without
NTP keeps within some 20 ppm; NTP-disciplined, well within 1)."""

TIGHT_S = 0.02
"""The width of the bounds on the exchange clock below which no probe is sent, seconds (on top
of the round trip, which no reading can beat)."""


class ExchangeClock:
    """The exchange's time, bounded from `Date` headers and carried on the local monotonic clock.

    A `Date` header reads whole seconds: a reply stamped D left the server in [D, D + 1) of
    exchange time, and the server stamped it between the request's send and the reply's
    arrival on the monotonic clock. Each reading so bounds the offset (exchange minus
    monotonic) from below by `D - received` and from above by `D + 1 - sent`. The clock keeps
    the tightest of all readings (the classic NTP-style min-filter), each widened by
    `DRIFT_PPM` per second of its age, and reads at the lower bound: never ahead of the
    exchange, behind it by at most `error_s`. Readings that contradict the kept bounds by less
    than the header's resolution (servers a fraction of a second apart) widen them to cover
    both; by more (the server's clock stepped), they start afresh. A reading sent just after a second change is
    tight: `probe_at` says when to send one (a binary search of the second's phase), so a few
    cheap requests bound the clock within the round trip.

    Between readings the clock advances with `monotonic`, so a jump of the machine's wall clock
    never moves it. Before the first reading it reads the machine's clock. Thread-safe.
    """

    def __init__(self, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None,
                 drift_ppm: float = DRIFT_PPM) -> None:
        self._wall = wall
        self._mono = monotonic
        if sleep is None:  # the monotonic clock's own (SimTime.sleep), else the real one's
            own = getattr(monotonic, "sleep", None)
            sleep = own if callable(own) else time.sleep if monotonic is time.monotonic else None
        self.sleep = sleep
        """Waits seconds on the same clock as `monotonic` (for a timed probe); None when that
        clock cannot be waited on (no probes are sent)."""
        self._drift = drift_ppm * 1e-6
        self._lock = threading.Lock()
        self._bounds: tuple[float, float, float] | None = None  # (low, high, at mono)
        self._offset: float | None = None
        self._trips: deque[float] = deque(maxlen=16)  # the last readings' round trips
        self.readings = 0
        """Readings taken (for tests and the log)."""

    def _aged(self, now: float) -> tuple[float, float] | None:
        if self._bounds is None:
            return None
        low, high, at = self._bounds
        widen = self._drift * max(now - at, 0.0)
        return low - widen, high + widen

    def observe(self, at: datetime, resolution_s: float = 1.0, sent: float | None = None,
                received: float | None = None) -> None:
        """Record that the exchange's clock read `at` (aware, truncated to `resolution_s`) at a
        moment between `sent` and `received` on the monotonic clock (`received` defaults to
        now, `sent` to `received`: a reading taken at once). Raises ValueError for a naive `at`."""
        if at.tzinfo is None:
            raise ValueError("exchange times must be timezone-aware")
        stamp = at.astimezone(UTC).timestamp()
        with self._lock:
            now = self._mono()
            got = now if received is None else received
            low = stamp - got
            out = got if sent is None else min(sent, got)
            high = stamp + resolution_s - out
            kept = self._aged(got)
            if kept is not None and low <= kept[1] and high >= kept[0]:
                low, high = max(low, kept[0]), min(high, kept[1])
            elif kept is not None:
                apart = low - kept[1] if low > kept[1] else kept[0] - high
                if apart < resolution_s:
                    # Servers (behind one API host) a fraction of a second apart: the narrowest
                    # bounds that meet both, so the clock is ahead of neither; probes narrow them.
                    low, high = min(kept[0], high), max(kept[1], low)
                else:
                    log.info("exchange clock: a Date header of %s contradicts the clock kept so "
                             "far by %.3f s: the bounds start afresh", at.isoformat(), apart)
            self._bounds = (low, high, got)
            self._trips.append(got - out)
            self.readings += 1
            self._offset = self._wall() - (now + low)

    def now(self) -> datetime:
        """The exchange's time now (aware UTC) at the lower bound: never ahead of it, behind by at
        most `error_s`; the machine's clock until the first reading."""
        with self._lock:
            now = self._mono()
            bounds = self._aged(now)
            if bounds is None:
                return datetime.fromtimestamp(self._wall(), UTC)
            return datetime.fromtimestamp(now + bounds[0], UTC)

    @property
    def error_s(self) -> float | None:
        """How far behind the exchange `now()` may read, seconds (the width of the bounds);
        None before the first reading."""
        with self._lock:
            bounds = self._aged(self._mono())
            return None if bounds is None else bounds[1] - bounds[0]

    def probe_at(self, tight_s: float = TIGHT_S) -> float | None:
        """The monotonic time at which to send a request whose `Date` narrows the bounds most:
        its stamp falls on a second change if the exchange sits mid-bounds, so either the next
        second shows (the lower bound rises to about the middle) or it does not (the upper
        bound falls to it). None when the bounds are within `tight_s` plus the shortest recent
        round trip (no reading can do better), or before the first reading."""
        with self._lock:
            now = self._mono()
            bounds = self._aged(now)
            trip = min(self._trips, default=0.0)
            if bounds is None or bounds[1] - bounds[0] <= tight_s + trip:
                return None
            middle = (bounds[0] + bounds[1]) / 2.0
            # Exchange time (at the middle) of the stamp of a request sent now, half a trip in.
            stamped = now + trip / 2.0 + middle
            change = math.ceil(stamped + 0.05)  # the next second change not too close to make
            return change - middle - trip / 2.0

    @property
    def offset_s(self) -> float | None:
        """Local wall clock minus exchange time at the last reading, seconds; None before one."""
        with self._lock:
            return self._offset
