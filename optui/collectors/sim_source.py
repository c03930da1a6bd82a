"""The built-in simulated exchange as an in-process source (no port, no account)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from optui.collectors.instruments import parse_instruments_csv
from optui.collectors.kite_source import OPTION_EXCHANGES
from optui.collectors.source import MAX_QUOTE_INSTRUMENTS, MarketSource
from optui.errors import BadInputError
from optui.models import Instrument


class SimulatedSource(MarketSource):
    """Reads the seeded market model directly, in the same shapes Kite's API returns."""

    name = "sim"
    label = "SIMULATED"

    def __init__(self, seed: int = 7, speed: float = 1.0, start: datetime | None = None) -> None:
        from optui.simulator.exchange import SimulatedExchange

        self.exchange = SimulatedExchange(seed=seed, speed=speed, start=start)

    def instruments(self) -> list[Instrument]:
        out: list[Instrument] = []
        for exchange in OPTION_EXCHANGES:
            out.extend(parse_instruments_csv(self.exchange.instruments_csv(exchange), f"simulated {exchange} dump").instruments)
        return out

    def quote_batch(self, keys: Sequence[str]) -> dict[str, dict]:
        if len(keys) > MAX_QUOTE_INSTRUMENTS:
            raise BadInputError(f"{len(keys)} instruments in one quote call: Kite allows {MAX_QUOTE_INSTRUMENTS}")
        return self.exchange.quote(list(keys))

    def now(self) -> datetime:
        return self.exchange.now()
