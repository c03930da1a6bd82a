"""The market-data source interface and the conversion of Kite quote dicts to typed quotes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime

from optui.models import Instrument, Quote
from optui.timeutil import now_utc, parse_kite_time

MAX_QUOTE_INSTRUMENTS = 500


class MarketSource(ABC):
    """Where instruments and quotes come from (Kite, the simulator, a replay)."""

    name: str = "source"
    label: str = "SOURCE"  # badge shown in the UI: LIVE, SIMULATED, REPLAY
    # What the last instruments() call skipped, one line per dump ("NFO dump: skipped 3 ...").
    dump_warnings: list[str] = []  # noqa: RUF012 - replaced, never mutated, by instruments()

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

    def now(self) -> datetime:
        """The source's current time (aware); the simulator runs its own clock."""
        return now_utc()

    def is_holiday(self, at: datetime) -> bool:
        """Whether `at` falls on an exchange holiday; Kite publishes no calendar, so unknown = False."""
        return False

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        """Release connections."""


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
