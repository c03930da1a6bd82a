"""The market-data source interface and the conversion of Kite quote dicts to typed quotes."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from optui.models import Instrument, Quote, SnapshotWarning
from optui.timeutil import IST, now_utc, parse_kite_time

if TYPE_CHECKING:
    from optui.analytics.trading_calendar import TradingCalendar
    from optui.collectors.quote_table import QuoteTable

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

    def sync_clock(self) -> None:  # noqa: B027 - most sources need no round trip
        """Re-measure the exchange clock (a cheap request); sources without a remote clock do nothing."""

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


class ExchangeClock:
    """The exchange's time, from observations carried forward on the local monotonic clock.

    Each observation is an exchange instant (a server's `Date` header, whole seconds, so the
    middle of that second is taken). Between observations the clock advances with
    `time.monotonic`, so a jump of the machine's wall clock never moves it. Before the first
    observation it reads the machine's clock. Thread-safe.
    """

    def __init__(self, wall: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._wall = wall
        self._mono = monotonic
        self._lock = threading.Lock()
        self._seen: tuple[datetime, float] | None = None
        self._offset: float | None = None

    def observe(self, at: datetime, resolution_s: float = 1.0) -> None:
        """Record that the exchange's clock read `at` (aware, truncated to `resolution_s`) just now."""
        if at.tzinfo is None:
            raise ValueError("exchange times must be timezone-aware")
        middle = at.astimezone(UTC) + timedelta(seconds=resolution_s / 2.0)
        with self._lock:
            self._seen = (middle, self._mono())
            self._offset = self._wall() - middle.timestamp()

    def now(self) -> datetime:
        """The exchange's time now (aware UTC); the machine's clock until the first observation."""
        with self._lock:
            seen = self._seen
            if seen is None:
                return datetime.fromtimestamp(self._wall(), UTC)
            return seen[0] + timedelta(seconds=self._mono() - seen[1])

    @property
    def offset_s(self) -> float | None:
        """Local wall clock minus exchange time at the last observation, seconds; None before one."""
        with self._lock:
            return self._offset
