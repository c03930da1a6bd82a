"""A MarketSource that adds to another one and leaves it the rest.

`WrappedSource` hands the clock, calendar, login, probe and trading-day questions, and any
attribute it does not have itself (e.g. the simulator's `exchange`), to `inner`. The recording
source (optui.collectors.record_writer) and the streaming source (stream_source) override only
what they add: instrument dumps and quote answers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from optui.collectors.source import MarketSource


class WrappedSource(MarketSource):
    """`inner`, with name and label taken from it; see the module docstring.

    Subclasses list in `_OWN` the attributes that must never be looked up on `inner` (those
    they set in `__init__`, read before it has run, e.g. while unpickling)."""

    _OWN: tuple[str, ...] = ("inner", "__setstate__")

    def __init__(self, inner: MarketSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.label = inner.label

    def __getattr__(self, attr: str) -> Any:  # the wrapped source's own extras (e.g. exchange)
        if attr in self._OWN:
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    @property
    def calendar(self):  # type: ignore[override]  # noqa: ANN201
        return self.inner.calendar

    @calendar.setter
    def calendar(self, value) -> None:  # noqa: ANN001
        self.inner.calendar = value

    def now(self) -> datetime:
        return self.inner.now()

    @property
    def clock_offset_s(self) -> float | None:
        return self.inner.clock_offset_s

    def real_seconds(self, exchange_seconds: float) -> float:
        return self.inner.real_seconds(exchange_seconds)

    @property
    def judges_slow_cycles(self) -> bool:
        return self.inner.judges_slow_cycles

    def sync_clock(self) -> None:
        self.inner.sync_clock()

    def tighten_clock(self, budget_s: float) -> None:
        self.inner.tighten_clock(budget_s)

    @property
    def accepts_token(self) -> bool:  # type: ignore[override]
        return self.inner.accepts_token

    def set_access_token(self, token: str) -> None:
        self.inner.set_access_token(token)

    def probe(self) -> None:
        self.inner.probe()

    def is_trading_day(self, at: datetime) -> bool:
        return self.inner.is_trading_day(at)

    def is_holiday(self, at: datetime) -> bool:
        return self.inner.is_holiday(at)
